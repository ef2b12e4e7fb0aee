# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""SendTargets discovery: parsing iscsiadm's answers, discovery CHAP, and the plan of records to create.

What iscsiadm does (open-iscsi usr/iscsiadm.c, identical in 2.1.8 and 2.1.11):

* ``iscsiadm -m discoverydb -t st -p P --discover -o new`` reads the discovery record of P (``send_targets/<addr>,
  <port>/st_config``, creating it from iscsid.conf's defaults when missing), asks P for its targets and writes a node
  record only for each (target, address, port, tpgt, iface) that has no record file yet (``idbm_add_node`` with
  ``overwrite=0``).  Existing records keep every setting.  Plain ``-m discovery -t st`` (no ``-o``) means
  new+update+delete: it rewrites existing records and resets node.startup -- never used here.
* ``... --discover -o nonpersistent`` asks the portal and prints what it found, and writes nothing: neither node
  records nor the discovery record (``exec_discover`` skips ``idbm_add_discovery`` for a missing record).  That is
  check mode and ``create_nodes: false``.
* ``-P 1`` prints a tree (``Target:``, ``Portal: addr:port,tpgt``, ``Iface Name:``) instead of ``addr:port,tpgt
  target`` lines: only the tree names the iface each record is bound to.  Without ``-I`` iscsiadm binds the records to
  every non-default iface of the software transport in the iface DB, or to ``default`` when there is none.
* Discovery CHAP comes from the discovery record.  iscsiadm only takes values on its command line, so the secrets are
  written into ``st_config`` directly (the file format is the node DB's ``key = value``; iscsiadm derives the
  password lengths when it reads the file) and checked afterwards with iscsiadm's own reader.

Backends: anything that can answer "which (target, portal, tpgt) does this portal offer" fits behind
:data:`DiscoverFunction`; the module turns those triples into node-record plans with :func:`records_from_triples`.

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations

import collections
import fnmatch
import os
import re

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsiadm import describe
from ansible_collections.openiscsi.initiator.plugins.module_utils._kvconf import KVFile
from ansible_collections.openiscsi.initiator.plugins.module_utils._textrules import check_one_line
from ansible_collections.openiscsi.initiator.plugins.module_utils._portal import Portal
from ansible_collections.openiscsi.initiator.plugins.module_utils._rootfs import host_path

# A discovered (or planned) node record.  ``address`` is bare (no brackets), ``port`` and ``tpgt`` are ints.
Discovered = collections.namedtuple("Discovered", "target address port tpgt iface")

# The seam for other backends: ``fn(portals, auth) -> [(target, portal_text, tpgt), ...]`` where ``portals`` is a
# list of (address, port) pairs, ``auth`` the validated dict of :func:`validate_auth` (or None) and ``portal_text``
# ``addr:port`` with IPv6 in brackets.  Nothing is written by such a function.
DiscoverFunction = "callable(portals, auth) -> list of (target, portal_text, tpgt)"

UNSIGNED_MINUS_ONE = 4294967295  # some iscsiadm versions print tpgt -1 as an unsigned int
DEFAULT_IFACE = "default"

AUTH_PREFIX = "discovery.sendtargets.auth."
AUTH_KEYS = {
    "method": AUTH_PREFIX + "authmethod",
    "username": AUTH_PREFIX + "username",
    "password": AUTH_PREFIX + "password",
    "username_in": AUTH_PREFIX + "username_in",
    "password_in": AUTH_PREFIX + "password_in",
}
SECRET_FIELDS = ("password", "password_in")
SECRET_KEYS = frozenset(AUTH_KEYS[f] for f in SECRET_FIELDS)
MASK = "********"
# open-iscsi keeps CHAP strings in 256-byte buffers (AUTH_STR_MAX_LEN) including the NUL: 255 bytes of text at most.
AUTH_STR_MAX = 255
END_RECORD = "# END RECORD"

_PORTAL_RE = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<addr>\S+?)):(?P<port>[0-9]+)(?:,(?P<tpgt>-?[0-9]+))?\Z")


# ----------------------------------------------------------------------------------------------- portal text
def portal_text(address, port):
    """``addr:port`` as iscsiadm and the ``node`` module write it: IPv6 addresses in brackets."""
    return Portal(address, port).arg()


def split_portal_text(text):
    """``(address, port, tpgt_or_None)`` from ``10.0.0.1:3260,1`` / ``[fd00::1]:3260,1`` / ``::ffff:10.0.0.1:3260``.

    iscsiadm brackets an address only when it holds no '.', so an unbracketed address may still contain ':' (the
    port is then after the LAST colon).  Raises ValueError for anything else.
    """
    m = _PORTAL_RE.match(text.strip())
    if not m:
        raise ValueError("not a portal: %r" % (text,))
    address = m.group("v6") or m.group("addr")
    port = int(m.group("port"))
    tpgt = m.group("tpgt")
    if tpgt is not None:
        tpgt = int(tpgt)
        if tpgt == UNSIGNED_MINUS_ONE:
            tpgt = -1
    if not 0 < port < 65536:
        raise ValueError("port out of range in %r" % (text,))
    return address, port, tpgt


# ----------------------------------------------------------------------------------------------- iscsiadm output
def parse_tree(text):
    """Records from ``iscsiadm -m discoverydb ... --discover -P 1`` (the tree with ``Iface Name:`` lines).

    The tree prints a Target line once per target and a Portal line once per portal; each ``Iface Name`` line is one
    record of the last target and portal seen.  Unknown lines are ignored; a Portal or Iface line without its parent,
    or a Portal line that does not parse, raises ValueError (the output is not what this parser knows).
    """
    records = []
    target = None
    portal = None
    for raw in text.split("\n"):
        line = raw.strip()
        if line.startswith("Target:"):
            target = line[len("Target:"):].strip()
            portal = None
            if not target:
                raise ValueError("empty Target line in discovery output")
        elif line.startswith("Portal:"):
            if target is None:
                raise ValueError("Portal line before any Target line in discovery output: %r" % line)
            address, port, tpgt = split_portal_text(line[len("Portal:"):])
            portal = (address, port, -1 if tpgt is None else tpgt)
        elif line.startswith("Iface Name:"):
            if portal is None:
                raise ValueError("Iface Name line before any Portal line in discovery output: %r" % line)
            iface = line[len("Iface Name:"):].strip() or DEFAULT_IFACE
            records.append(Discovered(target, portal[0], portal[1], portal[2], iface))
    return unique(records)


def parse_flat(text, iface=DEFAULT_IFACE):
    """Records from the flat form ``addr:port,tpgt target`` (one per line); the iface is not printed there."""
    records = []
    for raw in text.split("\n"):
        line = raw.strip()
        if not line or line.startswith("iscsiadm:"):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError("unexpected discovery line: %r" % line)
        address, port, tpgt = split_portal_text(parts[0])
        records.append(Discovered(parts[1], address, port, -1 if tpgt is None else tpgt, iface))
    return unique(records)


def unique(records):
    """*records* without repeats, first occurrence kept."""
    seen = set()
    out = []
    for rec in records:
        if rec not in seen:
            seen.add(rec)
            out.append(rec)
    return out


def records_from_triples(triples, ifaces=None):
    """Turn a backend's ``[(target, portal_text, tpgt)]`` into :class:`Discovered` records, one per iface."""
    out = []
    for target, text, tpgt in triples:
        address, port, _ignored = split_portal_text(text)
        for iface in (ifaces or [DEFAULT_IFACE]):
            out.append(Discovered(target, address, port, int(tpgt), iface))
    return unique(out)


# ----------------------------------------------------------------------------------------------- planning
def existing_keys(nodes):
    """The keys iscsiadm's ``idbm_rec_read`` finds, from node dicts or tuples.

    Each node is a mapping with ``target``, ``address``, ``port``, ``tpgt``, ``iface`` (``tpgt``/``iface`` ``None``
    for the old flat layout, where one file ``<target>/<addr>,<port>`` stands for every tpgt and iface).
    Returns ``(full, flat)``: a set of 5-tuples and a set of (target, address, port).
    """
    full, flat = set(), set()
    for node in nodes:
        if isinstance(node, tuple):
            target, address, port, tpgt, iface = node
        else:
            target, address, port = node["target"], node["address"], node["port"]
            tpgt, iface = node.get("tpgt"), node.get("iface")
        if tpgt is None or iface is None:
            flat.add((target, address, int(port)))
        else:
            full.add((target, address, int(port), int(tpgt), iface))
    return full, flat


def plan_new_records(discovered, nodes):
    """Split *discovered* into ``(new, existing)`` exactly as ``-o new`` will.

    iscsiadm compares strings (the record path), so target names and addresses are compared as printed, not
    normalized.  A static record of the same target and portal with tpgt -1 does NOT stop iscsiadm from adding the
    discovered tpgt: such pairs are reported by :func:`static_twins`.
    """
    full, flat = existing_keys(nodes)
    new, existing = [], []
    for rec in discovered:
        if (rec.target, rec.address, rec.port) in flat or tuple(rec) in full:
            existing.append(rec)
        else:
            new.append(rec)
    return new, existing


def static_twins(new, nodes):
    """New records whose target, portal and iface already have a static (tpgt -1) record."""
    full, _flat = existing_keys(nodes)
    statics = set((t, a, p, i) for (t, a, p, g, i) in full if g == -1)
    return [rec for rec in new if rec.tpgt != -1 and (rec.target, rec.address, rec.port, rec.iface) in statics]


def validate_target_filter(patterns, field="only_targets"):
    """The target filter as lower-case patterns, or ``None`` (no filter) when *patterns* is ``None``.

    Each entry is an exact target name or a shell-style pattern (``*``, ``?``, ``[...]``); names are compared
    case-insensitively (iSCSI names are), the whole name, never a substring."""
    if patterns is None:
        return None
    if not patterns:
        raise InputError(field, "give at least one target name or pattern, or omit the option to keep every target")
    out = []
    for idx, pattern in enumerate(patterns):
        if not isinstance(pattern, str) or not pattern.strip() or pattern.strip() != pattern or " " in pattern:
            raise InputError("%s[%d]" % (field, idx), "%r is not a target name or pattern (no spaces, not empty)"
                             % (pattern,))
        out.append(pattern.lower())
    return out


def filter_targets(records, patterns):
    """``(kept, dropped_names)``: the records of *records* whose target matches one of *patterns* (from
    :func:`validate_target_filter`; ``None`` keeps all) and the sorted names of the targets left out."""
    if patterns is None:
        return list(records), []
    kept, dropped = [], set()
    for rec in records:
        name = rec.target.lower()
        if any(fnmatch.fnmatchcase(name, p) for p in patterns):
            kept.append(rec)
        else:
            dropped.add(rec.target)
    return kept, sorted(dropped)


def node_entries(records):
    """Records as dicts for the ``node`` module's ``nodes:`` option (target, portal, tpgt, iface), sorted."""
    out = [dict(target=r.target, portal=portal_text(r.address, r.port), tpgt=r.tpgt, iface=r.iface)
           for r in records]
    return sorted(out, key=lambda d: (d["target"], d["portal"], d["tpgt"], d["iface"]))


# ----------------------------------------------------------------------------------------------- discovery CHAP
def _check_auth_string(field, value, secret):
    if not isinstance(value, str):
        raise InputError(field, "must be a string")
    if value == "":
        raise InputError(field, "must not be empty")
    check_one_line(value, field, "the secret" if secret else "the value")
    if value != value.strip():
        what = "the secret" if secret else "the value"
        raise InputError(field, "must not start or end with white space (open-iscsi strips it, so %s would change)"
                         % what)
    size = len(value.encode("utf-8", "surrogateescape"))
    if size > AUTH_STR_MAX:
        raise InputError(field, "is %d bytes long; open-iscsi keeps at most %d bytes" % (size, AUTH_STR_MAX))


def validate_auth(auth, field="auth"):
    """The normalized discovery CHAP request, or ``None`` when *auth* is ``None`` (leave the record's auth alone).

    ``method`` is ``CHAP`` (username and password required; username_in and password_in together for mutual CHAP)
    or ``None`` (no other field allowed).  Raises :class:`InputError` naming the field.
    """
    if auth is None:
        return None
    if not isinstance(auth, dict):
        raise InputError(field, "must be a dictionary with method, username, password, username_in, password_in")
    unknown = sorted(set(auth) - set(AUTH_KEYS))
    if unknown:
        raise InputError(field, "unknown key(s) %s; known: %s" % (", ".join(unknown), ", ".join(sorted(AUTH_KEYS))))
    given = dict((k, v) for k, v in auth.items() if v is not None)
    method = given.get("method")
    if method is None:
        method = "CHAP" if any(k in given for k in ("username", "password")) else None
        if method is None:
            raise InputError(field + ".method", "is required: CHAP, or None to switch discovery CHAP off")
    if not isinstance(method, str) or method.lower() not in ("chap", "none"):
        raise InputError(field + ".method", "must be CHAP or None, got %r" % (method,))
    method = "CHAP" if method.lower() == "chap" else "None"
    if method == "None":
        extra = sorted(k for k in given if k != "method")
        if extra:
            raise InputError(field, "method None takes no credentials; remove %s or use method CHAP" % ", ".join(extra))
        return {"method": "None"}
    for name in ("username", "password"):
        if name not in given:
            raise InputError(field + "." + name, "is required with method CHAP")
    if ("username_in" in given) != ("password_in" in given):
        missing = "password_in" if "username_in" in given else "username_in"
        raise InputError(field + "." + missing, "is required for mutual CHAP (username_in and password_in go "
                                                "together)")
    out = {"method": "CHAP"}
    for name in ("username", "password", "username_in", "password_in"):
        if name in given:
            _check_auth_string(field + "." + name, given[name], name in SECRET_FIELDS)
            out[name] = given[name]
    return out


def auth_changes(current, desired):
    """``[(key, value_or_None), ...]`` that make the discovery record *current* (a mapping of its keys) match
    *desired* (from :func:`validate_auth`); ``None`` means "remove the line".  Empty when nothing differs.

    With method None every credential line is removed too, so no stale secret stays on disk.  With CHAP but no
    mutual credentials, username_in/password_in lines are removed (mutual CHAP off).
    """
    if desired is None:
        return []
    changes = []
    wanted = {AUTH_KEYS["method"]: desired["method"]}
    for field in ("username", "password", "username_in", "password_in"):
        wanted[AUTH_KEYS[field]] = desired.get(field)
    for key in (AUTH_KEYS[f] for f in ("method", "username", "password", "username_in", "password_in")):
        have = current.get(key)
        if have in ("", "<empty>"):
            have = None
        want = wanted[key]
        if key == AUTH_KEYS["method"] and have is None:
            have = "None"
        if have != want:
            changes.append((key, want))
    return changes


def masked_auth(values):
    """The discovery auth fields of a record mapping as a dict safe to show (secrets masked, empty left out)."""
    out = {}
    for field, key in AUTH_KEYS.items():
        value = values.get(key)
        if value in (None, "", "<empty>"):
            continue
        out[field] = MASK if key in SECRET_KEYS else value
    return out


def apply_auth_changes(text, changes):
    """The record text with *changes* applied (lines set before ``# END RECORD`` or removed)."""
    kv = KVFile.parse(text)
    for key, value in changes:
        if value is None:
            kv.remove(key)
        else:
            kv.set(key, value, before=END_RECORD)
    return kv.render()


def verify_auth_show(text, desired):
    """Check iscsiadm's own view of a discovery record (``iscsiadm -m discoverydb -t st -p P`` output, passwords
    masked) against *desired*.  Returns a list of human-readable mismatches (empty when all is right); never
    contains a secret.
    """
    kv = KVFile.parse(text)
    problems = []

    def show(key):
        value = kv.get(key)
        return None if value in (None, "", "<empty>") else value

    method = show(AUTH_KEYS["method"]) or "None"
    if method != desired["method"]:
        problems.append("%s is %s, expected %s" % (AUTH_KEYS["method"], method, desired["method"]))
    for field in ("username", "username_in"):
        if show(AUTH_KEYS[field]) != desired.get(field):
            problems.append("%s is %r, expected %r" % (AUTH_KEYS[field], show(AUTH_KEYS[field]), desired.get(field)))
    for field in SECRET_FIELDS:
        present = show(AUTH_KEYS[field]) is not None
        if present != (desired.get(field) is not None):
            problems.append("%s is %s, expected it %s" % (AUTH_KEYS[field], "set" if present else "empty",
                                                          "set" if desired.get(field) is not None else "empty"))
    return problems


# ----------------------------------------------------------------------------------------------- messages
def error_message(rc, portal, stderr="", auth_given=False):
    """A clear message for a failed discovery at *portal* (``addr:port``) from iscsiadm's exit code."""
    context = "discovery at %s" % portal
    if rc == 24:
        msg = ("%s: the portal refused the discovery login (authentication/authorization failure, iscsiadm exit code "
               "24). Check the discovery CHAP credentials: auth.username/auth.password (and auth.username_in/"
               "auth.password_in for mutual CHAP), kept as discovery.sendtargets.auth.* in the discovery record"
               % context)
        if not auth_given:
            msg += "; no auth option was given: the portal probably requires discovery CHAP"
        lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
        if lines:
            msg += ". iscsiadm said: " + " | ".join(lines[-6:])
        return msg
    return describe(rc, stderr, context=context, discovery=True)


# ----------------------------------------------------------------------------------------------- backends
BACKENDS = ("iscsiadm", "python", "auto")
TRANSPORT_MODULE = "iscsi_tcp"
SOFTWARE_TRANSPORT = "tcp"


def _has_module_line(path, name):
    """Whether a modules.dep / modules.builtin file under a kernel's module dir lists *name* (``.../name.ko[.xz]:``)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                entry = line.split(":", 1)[0].strip()
                base = entry.rsplit("/", 1)[-1]
                if base.split(".ko", 1)[0].replace("-", "_") == name:
                    return True
    except OSError:
        return False
    return False


def kernel_transport(root="/", release=None, name=TRANSPORT_MODULE):
    """How the kernel's iSCSI TCP transport stands: ``loaded`` (``/sys/module/iscsi_tcp``, also for a built-in
    driver), ``loadable`` (listed in ``/lib/modules/RELEASE/modules.dep`` or ``modules.builtin``) or ``missing``."""
    if os.path.isdir(host_path(root, "/sys/module/" + name)):
        return "loaded"
    if release:
        for base in ("lib/modules", "usr/lib/modules"):
            moddir = host_path(root, "/%s/%s" % (base, release))
            for listing in ("modules.dep", "modules.builtin"):
                if _has_module_line(os.path.join(moddir, listing), name):
                    return "loadable"
    return "missing"


def choose_backend(requested, transport, iscsiadm_path):
    """``(backend, reason)`` for the ``backend`` option: ``iscsiadm`` and ``python`` are taken as asked; ``auto``
    picks iscsiadm when the kernel transport is loaded or loadable AND iscsiadm is installed, else python."""
    if requested in ("iscsiadm", "python"):
        return requested, "requested"
    if requested != "auto":
        raise InputError("backend", "must be one of %s, got %r" % (", ".join(BACKENDS), requested))
    if not iscsiadm_path:
        return "python", "auto: iscsiadm is not installed"
    if transport in ("loaded", "loadable"):
        return "iscsiadm", "auto: kernel module %s is %s" % (TRANSPORT_MODULE, transport)
    return "python", "auto: kernel module %s is not available to this kernel" % TRANSPORT_MODULE


def default_ifaces(iface_records):
    """The ifaces iscsiadm binds discovered records to when no ``-I`` is given (``idbm_bind_ifaces_to_nodes``):
    every iface record of the software transport (tcp) other than ``default``, or ``[default]`` when there is none."""
    names = sorted(set(rec.get("name") for rec in iface_records
                       if rec.get("name") and rec.get("name") != DEFAULT_IFACE
                       and (rec.get("transport") or SOFTWARE_TRANSPORT) == SOFTWARE_TRANSPORT))
    return names or [DEFAULT_IFACE]


def auth_from_values(values):
    """The discovery auth dict (method, username, password, username_in, password_in) stored in a discovery
    record's (or iscsid.conf's) ``discovery.sendtargets.auth.*`` keys; empty values left out."""
    out = {}
    for field, key in AUTH_KEYS.items():
        value = values.get(key)
        if value in (None, "", "<empty>"):
            continue
        out[field] = value
    out.setdefault("method", "None")
    return out


# What ``iscsiadm -m discoverydb -t st --discover -o new`` writes that ``iscsiadm -m node -o new`` does not: the
# record remembers where it was discovered (idbm_add_node with a SendTargets discovery record), and the link from the
# discovery portal's directory to the record is in send_targets/ instead of static/ (setup_disc_to_node_link).
DISC_ADDRESS_KEY = "node.discovery_address"
DISC_PORT_KEY = "node.discovery_port"
DISC_TYPE_KEY = "node.discovery_type"


def as_discovered_record(text, disc_address, disc_port):
    """A node record made by ``iscsiadm -m node -o new`` (discovery_type static) turned into the record SendTargets
    discovery at *disc_address*:*disc_port* writes: the three discovery keys set, in iscsiadm's order."""
    kv = KVFile.parse(text)
    if kv.get(DISC_TYPE_KEY) is None or kv.get(DISC_PORT_KEY) is None:
        raise ValueError("the node record has no %s/%s line: not written by iscsiadm" % (DISC_TYPE_KEY, DISC_PORT_KEY))
    kv.set(DISC_ADDRESS_KEY, disc_address, before=DISC_PORT_KEY + " ")
    kv.set(DISC_PORT_KEY, str(int(disc_port)))
    kv.set(DISC_TYPE_KEY, "send_targets")
    return kv.render()


def link_name(target, address, port, tpgt, iface):
    """The name of the link from a discovery (or static/) directory to a node record: ``T,ADDR,PORT,TPGT,IFACE``."""
    return "%s,%s,%d,%d,%s" % (target, address, int(port), int(tpgt), iface)
