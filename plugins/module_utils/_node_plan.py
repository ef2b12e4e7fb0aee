# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""The pure planner of the ``node`` module: desired node records against the records on disk.

* :func:`parse_request` validates the module parameters (one record, or many under ``nodes:`` with the task-level
  options as defaults) into :class:`Desired` entries, raising :class:`InputError` that names the field and the fix.
* :func:`plan` compares them with the current records (dicts as :func:`_nodedb.read_nodes` returns them, read WITH
  secrets) and the live sessions, and returns one :class:`Step` per affected record: ``create``, ``update``,
  ``delete`` or ``none``, with the key changes (secrets kept apart, never in the printable views).
* the record TEXT (new records from a template, keys set in iscsiadm's order) is in :mod:`_record_text`, imported
  only when something is written.

How open-iscsi lays out records (2.1.8 ``idbm_rec_write``), which decides the conflicts refused here:

* a record without a portal group tag (tpgt -1, ``-o new`` without ``,tpgt``) is ONE FILE
  ``nodes/<target>/<addr>,<port>``; it holds one iface, and creating another iface's tpgt -1 record for the same
  portal REPLACES it;
* a record with a tag lives in ``nodes/<target>/<addr>,<port>,<tpgt>/<iface>``; creating it UNLINKS an existing
  ``<addr>,<port>`` file of the same portal.

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations

import hashlib
import re

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsid_conf import (
    AUTH_METHODS,
    MASK,
    NODE_KEYS,
    STARTUP_CHOICES,
    normalize_value,
    too_new,
    validate_node_settings,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._names import normalize_name
from ansible_collections.openiscsi.initiator.plugins.module_utils._portal import normalize_address, parse_portal
from ansible_collections.openiscsi.initiator.plugins.module_utils._textrules import ascii_int

DEFAULT_IFACE = "default"
AUTH_KEYS = {
    "method": "node.session.auth.authmethod",
    "username": "node.session.auth.username",
    "password": "node.session.auth.password",
    "username_in": "node.session.auth.username_in",
    "password_in": "node.session.auth.password_in",
    "chap_algs": "node.session.auth.chap_algs",
}
SECRET_NODE_KEYS = frozenset((AUTH_KEYS["password"], AUTH_KEYS["password_in"]))
ENTRY_KEYS = ("target", "portal", "iface", "tpgt", "state", "startup", "conn_startup", "auth", "settings")
AUTH_OPTION_KEYS = ("method", "username", "password", "username_in", "password_in", "chap_algs")
IFACE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}\Z")
EMPTY = "<empty>"


def unempty(value):
    return None if value in (None, "", EMPTY) else value


def fingerprint(value):
    """A short digest of a secret, to compare without keeping or showing the value."""
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()[:16] if value else None


# ----------------------------------------------------------------------------------------------- desired records
class Desired:
    """One requested record (validated)."""

    __slots__ = ("field", "target", "target_key", "portal", "iface", "tpgt", "state", "settings", "secrets")

    def __init__(self, field, target, portal, iface, tpgt, state, settings, secrets):
        self.field = field
        self.target = target
        self.target_key = target.lower()
        self.portal = portal
        self.iface = iface
        self.tpgt = tpgt
        self.state = state
        self.settings = settings  # {key: text}; "" = clear the key
        self.secrets = secrets  # {key: text}; "" = clear the secret

    def ident(self):
        return (self.target_key, self.portal.key(), self.iface, self.tpgt)

    def label(self):
        tag = "" if self.tpgt is None else ",%d" % self.tpgt
        return "%s %s%s iface %s" % (self.target, self.portal.arg(), tag, self.iface)


def _check_tpgt(value, field):
    if value is None:
        return None
    if isinstance(value, bool):
        raise InputError(field, "must be an integer portal group tag 0..65535 (or -1 for none), got %r" % value)
    if isinstance(value, str):
        number = ascii_int(value.strip(), signed=True)
        if number is None:
            raise InputError(field, "must be an integer portal group tag 0..65535 (or -1 for none), got %r" % value)
        value = number
    if not isinstance(value, int):
        raise InputError(field, "must be an integer portal group tag 0..65535 (or -1 for none), got %s"
                         % type(value).__name__)
    if value == 4294967295:  # iscsiadm prints -1 this way
        value = -1
    if not -1 <= value <= 65535:
        raise InputError(field, "portal group tag %d is out of range; give 0..65535 (the target's TPGT, often 1) or "
                                "-1 for a record without one" % value)
    return value


def check_iface_name(value, field):
    if value is None:
        return DEFAULT_IFACE
    if not isinstance(value, str) or not IFACE_RE.match(value):
        raise InputError(field, "%r is not an iface name: 1-64 letters, digits, '.', '_', ':' or '-', starting with a "
                                "letter or digit (the built-in ones are 'default' and 'iser')" % (value,))
    return value


def _auth_values(auth, field):
    """``(settings, secrets)`` from an auth dict; raises InputError."""
    if auth is None:
        return {}, {}
    if not isinstance(auth, dict):
        raise InputError(field, "must be a dictionary with method, username, password, username_in, password_in, "
                                "chap_algs")
    for key in auth:
        if key not in AUTH_OPTION_KEYS:
            raise InputError("%s.%s" % (field, key), "unknown auth option; use %s" % ", ".join(AUTH_OPTION_KEYS))
    given = dict((k, v) for k, v in auth.items() if v is not None)
    settings, secrets = {}, {}
    method = given.get("method")
    if method is not None:
        settings[AUTH_KEYS["method"]] = normalize_value(AUTH_KEYS["method"], method, NODE_KEYS[AUTH_KEYS["method"]],
                                                        field + ".method")
    creds = [k for k in ("username", "password", "username_in", "password_in") if given.get(k) not in (None, "")]
    if settings.get(AUTH_KEYS["method"]) == "None" and creds:
        raise InputError(field + ".method", "is None (no CHAP) but %s %s given; drop them or use method CHAP"
                         % (", ".join(creds), "is" if len(creds) == 1 else "are"))
    if method is None and creds:
        settings[AUTH_KEYS["method"]] = "CHAP"
    if given.get("password") not in (None, "") and given.get("username") in (None, ""):
        raise InputError(field + ".username", "is required with auth.password: CHAP sends a user name with the "
                                              "response")
    if given.get("password_in") not in (None, "") and given.get("username_in") in (None, ""):
        raise InputError(field + ".username_in", "is required with auth.password_in (mutual CHAP: the target's user "
                                                 "name and secret)")
    if given.get("username_in") not in (None, "") and given.get("password_in") in (None, ""):
        raise InputError(field + ".password_in", "is required with auth.username_in (mutual CHAP: the target's user "
                                                 "name and secret)")
    if (given.get("username_in") not in (None, "")) and given.get("username") in (None, ""):
        raise InputError(field + ".username", "is required for mutual CHAP: the initiator must authenticate itself "
                                              "(username/password) before it can check the target (username_in/"
                                              "password_in); iscsid refuses incoming-only CHAP")
    for opt in ("username", "username_in", "password", "password_in"):
        if opt not in given:
            continue
        key = AUTH_KEYS[opt]
        value = given[opt]
        target = secrets if key in SECRET_NODE_KEYS else settings
        if value == "":
            target[key] = ""
            continue
        target[key] = normalize_value(key, value, NODE_KEYS[key], "%s.%s" % (field, opt))
    if "chap_algs" in given:
        settings[AUTH_KEYS["chap_algs"]] = normalize_value(AUTH_KEYS["chap_algs"], given["chap_algs"],
                                                           NODE_KEYS[AUTH_KEYS["chap_algs"]], field + ".chap_algs")
    return settings, secrets


def _entry(raw, field, defaults):
    """One :class:`Desired` from a dict of entry options merged over the task-level *defaults*."""
    if not isinstance(raw, dict):
        raise InputError(field, "must be a dictionary with target and portal (and iface, tpgt, startup, auth, ...), "
                                "got %s" % type(raw).__name__)
    for key in raw:
        if key not in ENTRY_KEYS:
            raise InputError("%s.%s" % (field, key), "unknown option; an entry takes %s" % ", ".join(ENTRY_KEYS))

    def sub(name):
        return "%s.%s" % (field, name) if field else name

    merged = dict(defaults)
    for key, value in raw.items():
        if value is not None:
            merged[key] = value
    if merged.get("target") in (None, ""):
        raise InputError(sub("target"), "is required: the target's iSCSI name, e.g. iqn.2001-04.com.example:disk1")
    if merged.get("portal") in (None, ""):
        raise InputError(sub("portal"), "is required: host[:port], e.g. 192.0.2.10:3260 or [2001:db8::10]:3260")
    normalize_name(merged["target"], sub("target"))
    target = merged["target"]
    portal = parse_portal(merged["portal"], sub("portal"))
    iface = check_iface_name(merged.get("iface"), sub("iface"))
    tpgt = _check_tpgt(merged.get("tpgt"), sub("tpgt"))
    state = merged.get("state") or "present"
    if state not in ("present", "absent"):
        raise InputError(sub("state"), "must be present or absent, got %r" % (state,))
    # Per-entry values that were given explicitly (not inherited) decide the conflicts below.
    settings = validate_node_settings(merged.get("settings"), sub("settings")) if merged.get("settings") else {}
    auth_settings, secrets = _auth_values(merged.get("auth"), sub("auth"))
    for key in auth_settings:
        if key in settings:
            raise InputError(sub("settings") + "." + key, "is also set by auth; give it once")
    settings.update(auth_settings)
    for opt, key in (("startup", "node.startup"), ("conn_startup", "node.conn[0].startup")):
        if merged.get(opt) is None:
            continue
        if key in settings:
            raise InputError(sub("settings") + "." + key, "is also given as %s; give it once" % opt)
        settings[key] = normalize_value(key, merged[opt], NODE_KEYS[key], sub(opt))
    if state == "absent":
        extra = [name for name in ("startup", "conn_startup", "auth", "settings") if raw.get(name) is not None]
        if extra:
            raise InputError(sub(extra[0]), "cannot be combined with state=absent, which deletes the record; drop %s"
                             % ", ".join(extra))
        settings, secrets = {}, {}
    return Desired(field or "", target, portal, iface, tpgt, state, settings, secrets)


def parse_request(params):
    """Validate the module parameters into a list of :class:`Desired`; raise :class:`InputError`."""
    nodes = params.get("nodes")
    single = [k for k in ("target", "portal", "tpgt") if params.get(k) is not None]
    defaults = {}
    for key in ("iface", "state", "startup", "conn_startup", "auth", "settings"):
        if params.get(key) is not None:
            defaults[key] = params[key]
    if defaults.get("state") == "absent":
        extra = [k for k in ("startup", "conn_startup", "auth", "settings") if defaults.get(k) is not None]
        if extra:
            raise InputError(extra[0], "cannot be combined with state=absent, which deletes the record(s); drop %s"
                             % ", ".join(extra))
    if nodes is not None:
        if single:
            raise InputError(single[0], "cannot be combined with nodes: give every record in nodes (each with its own "
                                        "target and portal), or one record with target/portal and no nodes")
        if not isinstance(nodes, list):
            raise InputError("nodes", "must be a list of dictionaries (target, portal, iface, tpgt, ...)")
        if not nodes:
            raise InputError("nodes", "is empty; give at least one record (or omit nodes and give target/portal)")
        entries = []
        for index, raw in enumerate(nodes):
            entries.append(_entry_with_defaults(raw, "nodes[%d]" % index, defaults))
    else:
        if not single:
            raise InputError("target", "is required (with portal), or give nodes: a list of records")
        raw = dict((k, params.get(k)) for k in ENTRY_KEYS)
        entries = [_entry(raw, "", {})]
    seen = {}
    for entry in entries:
        ident = entry.ident()
        if ident in seen:
            raise InputError(entry.field or "nodes", "names the same record as %s (%s); give each record once"
                             % (seen[ident] or "the task", entry.label()))
        seen[ident] = entry.field
    return entries


def _entry_with_defaults(raw, field, defaults):
    if isinstance(raw, dict) and raw.get("state") == "absent":
        # a deletion inherits nothing but iface
        defaults = dict((k, v) for k, v in defaults.items() if k == "iface")
    if isinstance(raw, dict) and raw.get("settings") is not None and defaults.get("settings"):
        merged = dict(defaults["settings"])
        merged.update(raw["settings"])
        raw = dict(raw, settings=merged)
    return _entry(raw, field, defaults)


# ----------------------------------------------------------------------------------------------- the plan
class Step:
    """What happens to one record."""

    __slots__ = ("desired", "action", "record", "target", "address", "port", "tpgt", "iface", "changes",
                 "secret_changes", "live", "layout")

    def __init__(self, desired, action, record=None, target=None, address=None, port=None, tpgt=None, iface=None):
        self.desired = desired
        self.action = action
        self.record = record
        self.target = target
        self.address = address
        self.port = port
        self.tpgt = tpgt
        self.iface = iface
        self.changes = []  # [(key, before, after)] non-secret; "" / None = empty
        self.secret_changes = []  # [(key, was_set, new_value)]; new_value "" = clear
        self.live = False
        self.layout = None

    @property
    def portal_arg(self):
        return "[%s]:%d" % (self.address, self.port) if ":" in self.address else "%s:%d" % (self.address, self.port)

    @property
    def changed(self):
        return self.action in ("create", "delete") or bool(self.changes or self.secret_changes)

    def label(self):
        tag = "" if self.tpgt is None or self.tpgt < 0 else ",%d" % self.tpgt
        return "%s %s%s iface %s" % (self.target, self.portal_arg, tag, self.iface)

    def view(self):
        """What the module returns for this record: its identity, the action and the NAMES of the keys that change
        (no values: a value - a user name, a setting - is something a secret could hide in, and the module's result
        then has to be compared with every secret; the values are in the diff)."""
        out = {
            "target": self.target,
            "portal": self.portal_arg,
            "tpgt": self.tpgt,
            "iface": self.iface,
            "action": self.action if self.changed else "none",
        }
        keys = [key for key, _before, _after in self.changes] + [key for key, _was, _new in self.secret_changes]
        if keys:
            out["keys"] = keys
        if self.live:
            out["session_live"] = True
        return out

    def diff_lines(self, side):
        """``key = value`` lines of this record for the before (``side='before'``) or after diff, secrets masked."""
        lines = []
        if self.action == "create" and side == "before":
            return lines
        if self.action == "delete":
            if side == "after":
                return lines
            rec = self.record or {}
            settings = rec.get("settings") or {}
            for key in ("node.startup", "node.conn[0].startup", AUTH_KEYS["method"], AUTH_KEYS["username"]):
                if unempty(settings.get(key)) is not None:
                    lines.append("%s = %s" % (key, settings.get(key)))
            return lines
        for key, before, after in self.changes:
            value = before if side == "before" else after
            lines.append("%s = %s" % (key, unempty(value) if unempty(value) is not None else EMPTY))
        for key, was_set, new in self.secret_changes:
            shown = (MASK if was_set else EMPTY) if side == "before" else (MASK if new else EMPTY)
            lines.append("%s = %s" % (key, shown))
        return lines


def _record_key(rec):
    return ((rec.get("target") or "").lower(), (normalize_address(rec.get("address")), int(rec.get("port") or 0)),
            rec.get("iface") or DEFAULT_IFACE)


def session_key(session):
    """``(target, (address, port), iface)`` of a sysfs session dict (from _sysfs.read_sessions)."""
    conns = session.get("connections") or []
    address = port = None
    for conn in conns:
        address = conn.get("persistent_address") or conn.get("address")
        port = conn.get("persistent_port") or conn.get("port")
        if address:
            break
    try:
        port = int(port)
    except (TypeError, ValueError):
        port = 0
    return ((session.get("targetname") or "").lower(), (normalize_address(address), port),
            session.get("ifacename") or DEFAULT_IFACE)


def plan(desired, records, sessions=(), force=False, version=None, force_name="force"):
    """The steps for every desired entry; raises InputError for conflicts (before anything is touched).

    *records*: current records read WITH secrets; *sessions*: sysfs sessions (only LOGGED_IN/FAILED/FREE alike: any
    session holds its record); *version*: the installed open-iscsi version (refuses keys it does not know).
    """
    by_key = {}
    for rec in records:
        by_key.setdefault(_record_key(rec), []).append(rec)
    flat_files = {}
    literal_target = {}
    for rec in records:
        literal_target.setdefault((rec.get("target") or "").lower(), rec.get("target"))
        if rec.get("layout") == "flat":
            portal_key = (normalize_address(rec.get("address")), int(rec.get("port") or 0))
            flat_files[((rec.get("target") or "").lower(), portal_key)] = rec
    live = {}
    for session in sessions or ():
        live.setdefault(session_key(session), []).append(session)

    steps = []
    claimed = {}
    for entry in desired:
        key = (entry.target_key, entry.portal.key(), entry.iface)
        for setting in list(entry.settings) + list(entry.secrets):
            since = too_new(setting, version)
            if since:
                raise InputError("%s.settings.%s" % (entry.field, setting) if entry.field else "settings." + setting,
                                 "needs open-iscsi %s or later; this host has %s" % (since, version))
        matches = [r for r in by_key.get(key, []) if entry.tpgt is None or int(r.get("tpgt", -1)) == entry.tpgt]
        if entry.state == "absent":
            for rec in matches:
                step = _step_for_record(entry, "delete", rec)
                step.live = bool(live.get(key))
                if step.live and not force:
                    raise InputError(entry.field or "state",
                                     "refusing to delete the record of %s: a session of it is live (sid %s). Log it "
                                     "out first (openiscsi.initiator.session state=logged_out) or set %s: true to "
                                     "log it out and delete the record" % (step.label(), ", ".join(
                                         str(s.get("sid")) for s in live[key]), force_name))
                _claim(claimed, step, entry)
                steps.append(step)
            if not matches:
                steps.append(Step(entry, "none", None, entry.target, entry.portal.address, entry.portal.port,
                                  entry.tpgt, entry.iface))
            continue
        if not matches:
            step = _create_step(entry, flat_files, literal_target)
            _claim(claimed, step, entry)
            steps.append(step)
            continue
        for rec in matches:
            step = _step_for_record(entry, "update", rec)
            step.live = bool(live.get(key))
            _diff_settings(step, rec, entry)
            _claim(claimed, step, entry)
            steps.append(step)
    return steps


def _claim(claimed, step, entry):
    ident = (step.target.lower(), normalize_address(step.address), step.port, step.tpgt, step.iface)
    if ident in claimed and claimed[ident] is not entry:
        other = claimed[ident]
        raise InputError(entry.field or "nodes", "and %s both select the record %s; give each record once (add tpgt "
                                                 "to tell records apart)" % (other.field or "the task", step.label()))
    claimed[ident] = entry


def _step_for_record(entry, action, rec):
    step = Step(entry, action, rec, rec.get("target"), rec.get("address"), int(rec.get("port")),
                int(rec.get("tpgt", -1)), rec.get("iface") or DEFAULT_IFACE)
    step.layout = rec.get("layout")
    return step


def _create_step(entry, flat_files, literal_target):
    target = literal_target.get(entry.target_key, entry.target)
    tpgt = -1 if entry.tpgt is None else entry.tpgt
    step = Step(entry, "create", None, target, entry.portal.address, entry.portal.port, tpgt, entry.iface)
    step.layout = "flat" if tpgt < 0 else "dir"
    flat = flat_files.get((entry.target_key, entry.portal.key()))
    if flat is not None:
        if tpgt < 0:
            raise InputError(entry.field or "tpgt",
                             "cannot create %s: the target already has a record for this portal without a portal "
                             "group tag, bound to iface %r. iscsiadm keeps such records as ONE file per portal "
                             "(%s), so a second iface would replace it. Give tpgt (the target's portal group tag, "
                             "usually 1) for records bound to several ifaces" % (step.label(), flat.get("iface"),
                                                                                 flat.get("path")))
        raise InputError(entry.field or "tpgt",
                         "cannot create %s: the target has a record for this portal without a portal group tag "
                         "(iface %r, file %s), and iscsiadm deletes that file when it creates a record with a tag. "
                         "Delete the old record first (state: absent with tpgt: -1) or give no tpgt to manage it"
                         % (step.label(), flat.get("iface"), flat.get("path")))
    for key, value in entry.settings.items():
        if value != "":
            step.changes.append((key, None, value))
    for key, value in entry.secrets.items():
        if value != "":
            step.secret_changes.append((key, False, value))
    return step


def _diff_settings(step, rec, entry):
    current = rec.get("settings") or {}
    for key, value in entry.settings.items():
        before = unempty(current.get(key))
        after = unempty(value)
        if before != after:
            step.changes.append((key, before, value))
    for key, value in entry.secrets.items():
        before = unempty(current.get(key))
        if fingerprint(before) != fingerprint(unempty(value)):
            step.secret_changes.append((key, before is not None, value))


def expected_values(step):
    """``{key: value}`` the record must hold after the step (for the read-back check); secrets included."""
    out = {}
    for key, _before, after in step.changes:
        out[key] = after or ""
    for key, _was, new in step.secret_changes:
        out[key] = new or ""
    return out


def summarize(steps):
    counts = {"create": 0, "update": 0, "delete": 0, "unchanged": 0}
    for step in steps:
        if step.action == "create":
            counts["create"] += 1
        elif step.action == "delete":
            counts["delete"] += 1
        elif step.changed:
            counts["update"] += 1
        else:
            counts["unchanged"] += 1
    return counts


__all__ = ["Desired", "Step", "parse_request", "plan", "expected_values", "summarize", "session_key", "fingerprint",
           "AUTH_KEYS", "SECRET_NODE_KEYS", "STARTUP_CHOICES", "AUTH_METHODS"]
