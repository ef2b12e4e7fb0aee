# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""Reader of open-iscsi's on-disk database (node records, send_targets records, iface records) and its paths.

Where the database lives (``find_db_root``):

* Debian 12 (open-iscsi 2.1.8) keeps it in ``/etc/iscsi``; Debian 13 (2.1.10-3 and later) moved it to
  ``/var/lib/iscsi`` (its postinst moves existing records).  The path is compiled into iscsiadm, so when the
  installed Debian package version is known it decides: what iscsiadm would use is what we read.
* Without a dpkg version (a source build), the root that holds ``nodes/`` or ``send_targets/`` wins; when both or
  neither do, ``/etc/iscsi`` (upstream's default).

Record layouts read (``read_nodes``)::

    <db>/nodes/<iqn>/<addr>,<port>,<tpgt>/<iface>     current layout (one file per iface)
    <db>/nodes/<iqn>/<addr>,<port>,<tpgt>             older flat layout (a file; iface from the record)
    <db>/nodes/<iqn>/<addr>,<port>                    oldest flat layout (tpgt from node.tpgt)

IPv6 addresses are stored without brackets (``fd00::1,3260,1``); the returned ``portal`` brackets them.  Static
records created with ``-o new`` have tpgt -1.  Values are returned as stored: an empty string is ``<empty>`` in the
files and in ``settings``; the structured fields (``auth.username`` ...) turn it into ``None``.

Secrets (``*.password``, ``*.password_in``) are left out of every result unless ``with_secrets=True`` (the probe
module needs them internally; never return them from a module).  Each auth block says ``has_password`` instead.

Records are parsed with the collection's one ``key = value`` parser, :class:`_kvconf.KVFile` (later lines win).

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations

import os
import re

from ansible_collections.openiscsi.initiator.plugins.module_utils._kvconf import KVFile, read_values
from ansible_collections.openiscsi.initiator.plugins.module_utils import _hostinfo
from ansible_collections.openiscsi.initiator.plugins.module_utils._portal import Portal
from ansible_collections.openiscsi.initiator.plugins.module_utils._textrules import ascii_int, is_ascii_digits
from ansible_collections.openiscsi.initiator.plugins.module_utils._rootfs import host_path

ETC_ROOT = "/etc/iscsi"
VAR_ROOT = "/var/lib/iscsi"
DB_ROOTS = (ETC_ROOT, VAR_ROOT)
# First Debian version whose iscsiadm uses /var/lib/iscsi (Debian 13 / trixie).
VAR_ROOT_SINCE = "2.1.10-3"
DEFAULT_IFACE = "default"
EMPTY = "<empty>"
MASK = "********"

SECRET_RE = re.compile(r"(?:^|\.)password(?:_in)?\Z")
_BEGIN_RE = re.compile(r"#\s*BEGIN RECORD\s+(\S+)")


def is_secret(key):
    """True for the CHAP secret keys (node.session.auth.password, ...password_in, discovery.*.password ...)."""
    return bool(SECRET_RE.search(key))


def _under(root, path):
    """A host path (``/etc/iscsi/nodes``) seen under *root*."""
    return host_path(root, path)


def _list(path):
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _read_text(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "surrogateescape")
    except OSError:
        return None


def unempty(value):
    """``None`` for missing and ``<empty>`` values, else the value."""
    if value is None or value == EMPTY or value == "":
        return None
    return value


def to_int(value, default=None):
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


# --------------------------------------------------------------------------------------------------- db root
def _populated(root, db):
    return any(os.path.isdir(_under(root, os.path.join(db, sub))) for sub in ("nodes", "send_targets"))


def db_root_info(root="/", version=None):
    """``{'path', 'reason', 'populated': [...], 'version'}`` -- where the node DB is and why we think so.

    *version* is the installed open-iscsi Debian version; ``None`` reads it from dpkg's status file under *root*.
    """
    if version is None:
        version = _hostinfo.open_iscsi_version(root).get("version")
    populated = [db for db in DB_ROOTS if _populated(root, db)]
    info = {"populated": populated, "version": version}
    if version and "-" in version:
        if _hostinfo.compare_versions(version, VAR_ROOT_SINCE) >= 0:
            info.update(path=VAR_ROOT, reason="open-iscsi %s (>= %s) uses %s" % (version, VAR_ROOT_SINCE, VAR_ROOT))
        else:
            info.update(path=ETC_ROOT, reason="open-iscsi %s (< %s) uses %s" % (version, VAR_ROOT_SINCE, ETC_ROOT))
        return info
    if len(populated) == 1:
        info.update(path=populated[0], reason="only %s holds nodes/ or send_targets/" % populated[0])
    else:
        info.update(path=ETC_ROOT, reason="no Debian package version and %s: upstream default %s"
                    % ("both roots hold records" if populated else "no records anywhere", ETC_ROOT))
    return info


def find_db_root(root="/", version=None):
    """The node DB root in use, as a host path (``/etc/iscsi`` or ``/var/lib/iscsi``)."""
    return db_root_info(root, version)["path"]


# --------------------------------------------------------------------------------------------------- portals
def format_portal(address, port):
    """``10.0.0.1:3260``, ``[fd00::1]:3260`` (the collection's portal spelling, :class:`_portal.Portal`)."""
    return Portal(address, port).arg()


def portal_dirname(address, port, tpgt):
    """The record directory name, ``<addr>,<port>,<tpgt>`` (IPv6 without brackets)."""
    return "%s,%d,%d" % (address.strip("[]"), int(port), int(tpgt))


def parse_portal_dirname(name):
    """``(address, port, tpgt)`` from ``addr,port,tpgt`` (tpgt ``None`` for the oldest ``addr,port``), or ``None``."""
    parts = name.rsplit(",", 2)
    if len(parts) == 3 and is_ascii_digits(parts[1]) and ascii_int(parts[2], signed=True) is not None:
        return parts[0], int(parts[1]), int(parts[2])
    parts = name.rsplit(",", 1)
    if len(parts) == 2 and is_ascii_digits(parts[1]) and parts[0] and "," not in parts[0]:
        return parts[0], int(parts[1]), None
    return None


def nodes_dir(db):
    return os.path.join(db, "nodes")


def target_dir(db, target):
    return os.path.join(db, "nodes", target)


def record_path(db, target, address, port, tpgt, iface=DEFAULT_IFACE):
    """Host path of a record in the current layout: ``<db>/nodes/<iqn>/<addr>,<port>,<tpgt>/<iface>``."""
    return os.path.join(db, "nodes", target, portal_dirname(address, port, tpgt), iface)


def send_targets_dir(db, address, port):
    """Host path of a SendTargets discovery record directory, ``<db>/send_targets/<addr>,<port>``."""
    return os.path.join(db, "send_targets", "%s,%d" % (address.strip("[]"), int(port)))


# --------------------------------------------------------------------------------------------------- records
def _settings(kv, with_secrets):
    settings = {}
    for key, value in kv.as_dict().items():
        if with_secrets or not is_secret(key):
            settings[key] = value
    return settings


def _auth(kv, prefix, with_secrets):
    """The CHAP block under *prefix* (``node.session.auth`` / ``discovery.sendtargets.auth``)."""
    password = kv.get(prefix + ".password")
    password_in = kv.get(prefix + ".password_in")
    auth = {
        "method": unempty(kv.get(prefix + ".authmethod")),
        "username": unempty(kv.get(prefix + ".username")),
        "username_in": unempty(kv.get(prefix + ".username_in")),
        "has_password": unempty(password) is not None,
        "has_password_in": unempty(password_in) is not None,
    }
    if prefix.startswith("node."):
        auth["chap_algs"] = unempty(kv.get(prefix + ".chap_algs"))
    if with_secrets:
        auth["password"] = unempty(password)
        auth["password_in"] = unempty(password_in)
    return auth


def record_version(text):
    """The ``# BEGIN RECORD <version>`` version of a record's text, or ``None``."""
    m = _BEGIN_RE.search(text or "")
    return m.group(1) if m else None


def parse_node_record(text, with_secrets=False):
    """The fields of one node record's text (no location fields: see :func:`read_node_record`)."""
    kv = read_values(text)
    return {
        "version": record_version(text),
        "name": kv.get("node.name"),
        "tpgt": to_int(kv.get("node.tpgt")),
        "iface": kv.get("iface.iscsi_ifacename"),
        "transport": unempty(kv.get("iface.transport_name")),
        "startup": kv.get("node.startup"),
        "conn_startup": kv.get("node.conn[0].startup"),
        "address": kv.get("node.conn[0].address"),
        "port": to_int(kv.get("node.conn[0].port")),
        "discovery": {
            "type": unempty(kv.get("node.discovery_type")),
            "address": unempty(kv.get("node.discovery_address")),
            "port": to_int(kv.get("node.discovery_port")),
        },
        "auth": _auth(kv, "node.session.auth", with_secrets),
        "settings": _settings(kv, with_secrets),
        "duplicate_keys": kv.duplicates(),
    }


def read_node_record(root, path, target=None, portal_name=None, iface_file=None, with_secrets=False):
    """One node record from its host *path*; location fields come from the path, the rest from the file."""
    text = _read_text(_under(root, path))
    if text is None:
        return None
    parsed = parse_node_record(text, with_secrets)
    loc = parse_portal_dirname(portal_name) if portal_name else None
    address = loc[0] if loc else parsed["address"]
    port = loc[1] if loc else parsed["port"]
    tpgt = loc[2] if loc and loc[2] is not None else parsed["tpgt"]
    if tpgt is None:
        tpgt = -1
    iface = iface_file or parsed["iface"] or DEFAULT_IFACE
    record = {
        "target": target or parsed["name"],
        "portal": format_portal(address, port) if address and port is not None else None,
        "address": address,
        "port": port,
        "tpgt": tpgt,
        "iface": iface,
        "path": path,
        "layout": "dir" if iface_file else "flat",
        "startup": parsed["startup"],
        "conn_startup": parsed["conn_startup"],
        "transport": parsed["transport"],
        "version": parsed["version"],
        "discovery": parsed["discovery"],
        "auth": parsed["auth"],
        "settings": parsed["settings"],
        "duplicate_keys": parsed["duplicate_keys"],
    }
    return record


def iter_record_paths(root="/", db=None):
    """``(target, portal_dirname, iface_or_None, host_path)`` for every record file, in sorted order."""
    if db is None:
        db = find_db_root(root)
    base = nodes_dir(db)
    for target in _list(_under(root, base)):
        tdir = os.path.join(base, target)
        if not os.path.isdir(_under(root, tdir)):
            continue
        for portal in _list(_under(root, tdir)):
            if parse_portal_dirname(portal) is None:
                continue
            pdir = os.path.join(tdir, portal)
            real = _under(root, pdir)
            if os.path.isdir(real):
                for iface in _list(real):
                    if os.path.isfile(os.path.join(real, iface)):
                        yield target, portal, iface, os.path.join(pdir, iface)
            elif os.path.isfile(real):
                yield target, portal, None, pdir


def read_nodes(root="/", with_secrets=False, db=None):
    """Every node record under the DB root (``find_db_root`` unless *db* is given), sorted by target/portal/iface.

    Each record: ``target, portal, address, port, tpgt, iface, path, layout, startup, conn_startup, transport,
    version, discovery{type,address,port}, auth{method, username, username_in, chap_algs, has_password,
    has_password_in}, settings{key: value} (no secrets), duplicate_keys``.  Records that vanish or cannot be read
    during the scan are skipped.
    """
    if db is None:
        db = find_db_root(root)
    records = []
    for target, portal, iface, path in iter_record_paths(root, db):
        record = read_node_record(root, path, target, portal, iface, with_secrets)
        if record is not None:
            records.append(record)
    return records


def find_nodes(records, target=None, portal=None, iface=None, tpgt=None):
    """Filter *records* (from :func:`read_nodes`) by exact target / portal (``host:port``) / iface / tpgt."""
    found = []
    for rec in records:
        if target is not None and rec["target"] != target:
            continue
        if portal is not None and rec["portal"] != portal:
            continue
        if iface is not None and rec["iface"] != iface:
            continue
        if tpgt is not None and rec["tpgt"] != tpgt:
            continue
        found.append(rec)
    return found


# --------------------------------------------------------------------------------------------------- send_targets
def parse_st_record(text, with_secrets=False):
    kv = KVFile.parse(text)
    return {
        "version": record_version(text),
        "address": kv.get("discovery.sendtargets.address"),
        "port": to_int(kv.get("discovery.sendtargets.port")),
        "startup": kv.get("discovery.startup"),
        "auth": _auth(kv, "discovery.sendtargets.auth", with_secrets),
        "settings": _settings(kv, with_secrets),
        "duplicate_keys": kv.duplicates(),
    }


def read_send_targets(root="/", with_secrets=False, db=None):
    """SendTargets discovery records: ``<db>/send_targets/<addr>,<port>/st_config`` (or an older flat file).

    Each: ``portal, address, port, path, startup, auth{...}, settings, nodes`` where ``nodes`` lists the node
    records linked from the directory as ``{target, portal_dir, iface}``.
    """
    if db is None:
        db = find_db_root(root)
    base = os.path.join(db, "send_targets")
    result = []
    for entry in _list(_under(root, base)):
        loc = parse_portal_dirname(entry)
        if loc is None or loc[2] is not None:
            continue
        edir = os.path.join(base, entry)
        real = _under(root, edir)
        if os.path.isdir(real):
            path = os.path.join(edir, "st_config")
        else:
            path = edir
        text = _read_text(_under(root, path))
        if text is None:
            continue
        parsed = parse_st_record(text, with_secrets)
        linked = []
        if os.path.isdir(real):
            for name in _list(real):
                if name == "st_config":
                    continue
                # <iqn>,<addr>,<port>,<tpgt>,<iface>
                parts = name.rsplit(",", 4)
                if len(parts) == 5:
                    linked.append({"target": parts[0], "portal_dir": ",".join(parts[1:4]), "iface": parts[4]})
        parsed.update({
            "portal": format_portal(loc[0], loc[1]),
            "address": loc[0],
            "port": loc[1],
            "path": path,
            "nodes": linked,
        })
        result.append(parsed)
    return result


# --------------------------------------------------------------------------------------------------- ifaces
def iface_dirs(db):
    """Where iface records may live: ``<db>/ifaces`` and, for a /var/lib DB, also ``/etc/iscsi/ifaces``."""
    dirs = [os.path.join(db, "ifaces")]
    if db != ETC_ROOT:
        dirs.append(os.path.join(ETC_ROOT, "ifaces"))
    return dirs


def parse_iface_record(text):
    kv = KVFile.parse(text)
    return {
        "name": kv.get("iface.iscsi_ifacename"),
        "transport": unempty(kv.get("iface.transport_name")),
        "net_ifacename": unempty(kv.get("iface.net_ifacename")),
        "hwaddress": unempty(kv.get("iface.hwaddress")),
        "ipaddress": unempty(kv.get("iface.ipaddress")),
        "initiatorname": unempty(kv.get("iface.initiatorname")),
        "version": record_version(text),
        "settings": _settings(kv, False),
        "duplicate_keys": kv.duplicates(),
    }


def read_ifaces(root="/", db=None):
    """iface records found on disk (the built-in ``default`` and ``iser`` have no file and are not listed)."""
    if db is None:
        db = find_db_root(root)
    seen = set()
    result = []
    for directory in iface_dirs(db):
        for name in _list(_under(root, directory)):
            if name in seen:
                continue
            path = os.path.join(directory, name)
            text = _read_text(_under(root, path))
            if text is None:
                continue
            seen.add(name)
            rec = parse_iface_record(text)
            rec["name"] = rec["name"] or name
            rec["path"] = path
            result.append(rec)
    return result
