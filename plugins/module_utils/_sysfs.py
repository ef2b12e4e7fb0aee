# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""The collection's one reader of the kernel's iSCSI sysfs tree.

Everything is read from files under ``<root>/sys`` (and ``<root>/dev/disk/by-path`` for the persistent device links):
no subprocess, no iscsiadm, no iscsid.  ``root`` is ``/`` on a managed host and a captured fixture tree in tests.

Layout read (drivers/scsi/scsi_transport_iscsi.c)::

    sys/class/iscsi_session/sessionN -> ../../devices/<...>/hostH/sessionN/iscsi_session/sessionN
    sys/devices/<...>/hostH/sessionN/connectionN:C/iscsi_connection/connectionN:C
    sys/devices/<...>/hostH/sessionN/targetH:B:T/H:B:T:L/{state,vendor,model,block/sdX}
    sys/class/iscsi_host/hostH, sys/class/scsi_host/hostH/proc_name

The scan is tolerant by design, because sysfs changes under the reader's feet:

* a session (or connection, or LUN) that vanishes between listing and reading is skipped (ENOENT/ENOTDIR);
* an attribute that cannot be read (EACCES on CHAP fields without CAP_SYS_ADMIN, ENOTCONN on the address of a
  connection that is down, EIO, ...) is ``None``;
* an attribute missing on an older kernel is ``None``;
* the kernel's ``(null)`` for unset strings is ``None``.

Results are plain dicts (JSON-ready for module return values).  Each level is built by one small function
(:func:`read_session`, :func:`read_connection`, :func:`read_host`, :func:`read_device`) so that callers -- the
``info`` module, ``initiator_name``'s live-session guard, the health checker -- share one reader and extend it by
adding keys, never by writing a second one.

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations

import errno
import gc
import marshal
import os
import re

SESSION_CLASS = "sys/class/iscsi_session"
CONNECTION_CLASS = "sys/class/iscsi_connection"
ISCSI_HOST_CLASS = "sys/class/iscsi_host"
SCSI_HOST_CLASS = "sys/class/scsi_host"
SCSI_DEVICE_CLASS = "sys/class/scsi_device"
BLOCK_CLASS = "sys/class/block"
BY_PATH_DIR = "dev/disk/by-path"

SESSION_RE = re.compile(r"session(\d+)\Z")
CONNECTION_RE = re.compile(r"connection(\d+):(\d+)\Z")
HOST_RE = re.compile(r"host(\d+)\Z")
TARGET_RE = re.compile(r"target\d+:\d+:\d+\Z")
HCTL_RE = re.compile(r"(\d+):(\d+):(\d+):(\d+)\Z")

# Session states as the kernel spells them (iscsi_session_state_names).
LOGGED_IN = "LOGGED_IN"
FAILED = "FAILED"
FREE = "FREE"

# Transports whose hosts are created by software (parent is a platform device), not by an offload HBA.
SOFTWARE_TRANSPORTS = ("iscsi_tcp", "ib_iser")

# Errors that mean "the object is gone" rather than "this attribute is unreadable".
_GONE = (errno.ENOENT, errno.ENOTDIR, errno.ENODEV)


class Vanished(Exception):
    """The sysfs object being read went away during the scan."""


# --------------------------------------------------------------------------------------------------- primitives
def sys_join(root, *parts):
    """``root`` joined with a sysfs-relative path (``parts`` never start with ``/``)."""
    return os.path.join(root or "/", *[p.lstrip("/") for p in parts])


def read_attr(path):
    """One attribute's value without the trailing newline; ``None`` when unreadable, missing or ``(null)``."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(65536)
    except OSError:
        return None
    value = data.decode("utf-8", "replace").rstrip("\n").rstrip("\0")
    if value == "(null)":
        return None
    return value


def read_attrs(directory, names):
    """``{name: read_attr(directory/name)}`` for each of *names*."""
    return dict((name, read_attr(os.path.join(directory, name))) for name in names)


# The brief scan (``read_sessions(brief=True)``: what session_check runs on every poll, over possibly thousands of
# sessions) is written for few system calls: one readlink per session instead of realpath (the class link is
# resolved against the class directory's real path, resolved once per scan), os.open/os.read/os.close per
# attribute instead of a Python file object, one listing of each session directory (shared by its connections and
# SCSI targets), and no existence checks unless a read found something missing (see ``_gone``).
_open_fd = os.open  # the brief reader's open; tests replace it to inject errors (EACCES, ENOTCONN, vanishing)
_O_RDONLY = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
try:  # a sysfs attribute is at most one page (the kernel's show() buffer); a smaller read buffer is cheaper
    _READ_SIZE = max(4096, os.sysconf("SC_PAGE_SIZE"))
except (AttributeError, ValueError, OSError):  # pragma: no cover - every Linux has it
    _READ_SIZE = 65536
_MISSING = object()  # a brief read found no file (ENOENT/ENOTDIR/ENODEV): the object is gone, or an older kernel
_gone = [0]  # brief reads that found something missing so far; a session whose count moved is checked at the end
# per-scan memo: realpath of fixed dirs, the last session listing, the class index (``_brief_index``)
_scan = {"resolved": {}, "listing": (None, None), "index": None, "known": {}}


def _failed_read(exc):
    """What a brief read that raised *exc* yields: ``_MISSING`` (counted in ``_gone``) when the file is gone,
    ``None`` when it is unreadable."""
    if exc.errno in _GONE:
        _gone[0] += 1
        return _MISSING
    return None


def read_value(path):
    """``read_attr`` for the brief scan: os-level calls, ``_MISSING`` when there is no such file."""
    try:
        fd = _open_fd(path, _O_RDONLY)
    except OSError as exc:
        return _failed_read(exc)
    try:
        data = os.read(fd, _READ_SIZE)
    except OSError as exc:
        return _failed_read(exc)
    finally:
        os.close(fd)
    value = data.decode("utf-8", "replace").rstrip("\n").rstrip("\0")
    return None if value == "(null)" else value


def _present(value):
    """A brief read's value with ``_MISSING`` as ``None``."""
    return None if value is _MISSING else value


def _listing(path):
    """``os.listdir(path)``, ``None`` when it cannot be listed (counted as gone when it does not exist)."""
    try:
        return os.listdir(path)
    except OSError as exc:
        if exc.errno in _GONE:
            _gone[0] += 1
        return None


def _resolved(path):
    """``os.path.realpath(path)``, memoized for the current scan (for the root and the class directories)."""
    memo = _scan["resolved"]
    if path not in memo:
        memo[path] = os.path.realpath(path)
    return memo[path]


def to_int(value):
    """``int(value)`` or ``None`` for ``None``/non-numbers (``off``, ``<empty>``, garbage)."""
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def list_dir(path):
    """Sorted entries of *path*; ``[]`` when it does not exist or cannot be read."""
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _natural_key(name):
    return [int(tok) if tok.isdigit() else tok for tok in re.split(r"(\d+)", name)]


def exists_dir(path):
    return os.path.isdir(path)


# --------------------------------------------------------------------------------------------------- sessions
SESSION_ATTRS = (
    "state", "target_state", "targetname", "targetalias", "tpgt", "ifacename", "initiatorname",
    "recovery_tmo", "abort_tmo", "lu_reset_tmo", "tgt_reset_tmo", "creator", "isid", "tsid", "target_id",
    "erl", "boot_root", "boot_nic", "boot_target",
)
SESSION_INT_ATTRS = ("tpgt", "abort_tmo", "lu_reset_tmo", "tgt_reset_tmo", "creator", "tsid", "target_id", "erl")

CONNECTION_ATTRS = (
    "state", "persistent_address", "persistent_port", "address", "port", "local_port",
    "ping_tmo", "recv_tmo", "header_digest", "data_digest", "max_recv_dlength", "max_xmit_dlength",
)
CONNECTION_INT_ATTRS = ("persistent_port", "port", "local_port", "ping_tmo", "recv_tmo",
                        "max_recv_dlength", "max_xmit_dlength")

HOST_ATTRS = ("netdev", "hwaddress", "ipaddress", "initiatorname", "port_state", "port_speed")

DEVICE_ATTRS = ("state", "vendor", "model", "rev", "type")

# ``brief=True`` reads only what a health check needs (about a quarter of the files); the dicts keep every key,
# the others are None (devices: no vendor/model/rev/type/sg/by_path; host: name and number only).
SESSION_ATTRS_BRIEF = ("state", "targetname", "tpgt", "ifacename", "recovery_tmo")
CONNECTION_ATTRS_BRIEF = ("state", "persistent_address", "persistent_port")
DEVICE_ATTRS_BRIEF = ("state",)


def _read_some(directory, names, wanted):
    """``read_attrs`` of *wanted* (a subset of *names*), the other *names* set to None."""
    raw = dict.fromkeys(names)
    raw.update(read_attrs(directory, wanted))
    return raw


def list_session_names(root="/"):
    """``['session1', 'session3', ...]`` in numeric order."""
    names = [n for n in list_dir(sys_join(root, SESSION_CLASS)) if SESSION_RE.match(n)]
    return sorted(names, key=_natural_key)


def session_sysfs_dir(root, name):
    """The real (symlink-resolved) class directory of session *name*, or ``None`` when it is gone."""
    real = os.path.realpath(sys_join(root, SESSION_CLASS, name))
    return real if exists_dir(real) else None


def _session_dir_brief(root, name):
    """The session's class directory from its class link (one readlink), ``None`` when the link is gone."""
    class_dir = sys_join(root, SESSION_CLASS)
    link = class_dir + "/" + name
    try:
        target = os.readlink(link)
    except OSError as exc:
        if exc.errno in _GONE:
            return None
        real = os.path.realpath(link)  # not a symlink (a plain directory in a synthetic tree)
        return real if exists_dir(real) else None
    if target.startswith("/"):
        return os.path.normpath(target)
    return os.path.normpath(_resolved(class_dir) + "/" + target)


def _rel(root, path):
    """*path* shown as seen from inside *root* (``/sys/devices/...``)."""
    base = _resolved(root or "/")
    if base == "/":
        return path
    if path == base:
        return "/"
    if path.startswith(base + os.sep):
        return path[len(base):]  # normalized (realpath/normpath) paths: the same as os.path.relpath
    return path


def parse_recovery_tmo(value):
    """recovery_tmo as an int of seconds; ``None`` for ``off`` (-1: never time out) or unreadable."""
    if value is None or value.strip() == "off":
        return None
    return to_int(value)


def read_session(root, name, by_path=None, brief=False):
    """One session dict, or raise :class:`Vanished`.  *by_path* maps block names to their by-path links."""
    match = SESSION_RE.match(name)
    if not match:
        raise ValueError("not a session name: %r" % (name,))
    if brief:
        return _read_session_brief(root, name, int(match.group(1)))
    class_dir = session_sysfs_dir(root, name)
    if class_dir is None:
        raise Vanished(name)
    raw = _read_some(class_dir, SESSION_ATTRS, SESSION_ATTRS_BRIEF if brief else SESSION_ATTRS)
    # The session device directory (hostH/sessionN) holds the connections and the SCSI targets.
    dev_dir = os.path.dirname(os.path.dirname(class_dir))
    session = {
        "sid": int(match.group(1)),
        "name": name,
        "path": _rel(root, dev_dir),
        "state": raw["state"],
        "target_state": raw["target_state"],
        "targetname": raw["targetname"],
        "targetalias": raw["targetalias"],
        "tpgt": to_int(raw["tpgt"]),
        "ifacename": raw["ifacename"],
        "initiatorname": raw["initiatorname"],
        "recovery_tmo": parse_recovery_tmo(raw["recovery_tmo"]),
        "recovery_tmo_raw": raw["recovery_tmo"],
        "abort_tmo": to_int(raw["abort_tmo"]),
        "lu_reset_tmo": to_int(raw["lu_reset_tmo"]),
        "tgt_reset_tmo": to_int(raw["tgt_reset_tmo"]),
        "creator": to_int(raw["creator"]),
        "isid": raw["isid"],
        "tsid": to_int(raw["tsid"]),
        "target_id": to_int(raw["target_id"]),
        "erl": to_int(raw["erl"]),
        "boot": bool(raw["boot_root"] or raw["boot_nic"] or raw["boot_target"]),
    }
    session["connections"] = read_connections(root, dev_dir, session["sid"], brief)
    session["host"] = read_host(root, host_name_of(dev_dir), brief)
    session["devices"] = read_devices(dev_dir, by_path, brief)
    if not exists_dir(class_dir):
        # Read everything, then found the session gone: what we read may be half empty.  Skip it.
        raise Vanished(name)
    return session


_SESSION_BRIEF = dict.fromkeys(("sid", "name", "path") + tuple(a for a in SESSION_ATTRS if not a.startswith("boot_"))
                               + ("recovery_tmo_raw",))
_SESSION_BRIEF["boot"] = False


def _read_session_brief(root, name, sid):
    """``read_session(brief=True)``: the same dict, read with the brief scan's few system calls.  A session already
    in the scan's identity cache (see :func:`read_sessions`) has only its changing files read."""
    gone_before = _gone[0]
    known = _scan["known"].get(sid)
    class_dir = known["dir"] if known else _session_dir_brief(root, name)
    if class_dir is None:
        raise Vanished(name)
    prefix = class_dir + os.sep
    state = read_value(prefix + "state")
    if state is _MISSING:
        if known:
            raise Vanished(name)  # a cached session's directory is its real one: gone
        # Gone, or a class link whose target runs through another symlink: resolve it for real before giving up.
        real = session_sysfs_dir(root, name)
        if real is None or real == class_dir:
            raise Vanished(name)
        class_dir, prefix = real, real + os.sep
        state = read_value(prefix + "state")
    tmo = _present(read_value(prefix + "recovery_tmo"))
    dev_dir = class_dir.rsplit("/", 2)[0]  # .../hostH/sessionN/iscsi_session/sessionN -> .../hostH/sessionN
    session = dict(_SESSION_BRIEF)
    session.update(sid=sid, name=name, state=_present(state), recovery_tmo=parse_recovery_tmo(tmo),
                   recovery_tmo_raw=tmo)
    if known:
        session.update(path=known["path"], targetname=known["targetname"], tpgt=known["tpgt"],
                       ifacename=known["ifacename"])
    else:
        session.update(path=_rel(root, dev_dir), targetname=_present(read_value(prefix + "targetname")),
                       tpgt=to_int(_present(read_value(prefix + "tpgt"))),
                       ifacename=_present(read_value(prefix + "ifacename")))
    index = _scan["index"][1] if _scan["index"] and _scan["index"][0] == root else _NO_INDEX
    if index["conns"] is None:
        session["connections"] = read_connections(root, dev_dir, sid, True)
    else:
        session["connections"] = _read_connections_indexed(root, dev_dir, index["conns"].get(sid, ()),
                                                           known["conns"] if known else {})
    session["host"] = read_host(root, host_name_of(dev_dir), True)
    if index["luns"] is None:
        session["devices"] = read_devices(dev_dir, None, True)
    else:
        session["devices"] = _read_devices_indexed(dev_dir, index["luns"].get(sid, ()), index["blocks"])
    if _gone[0] != gone_before and not exists_dir(class_dir):
        # A read found something missing (an older kernel's attribute, or the session going away): if the
        # session is gone now, what we read may be half empty.  Skip it.
        raise Vanished(name)
    return session


def host_name_of(dev_dir):
    """``hostH`` from a session device path ``.../hostH/sessionN``; ``None`` when the path is not of that shape."""
    parent = os.path.basename(os.path.dirname(dev_dir))
    return parent if HOST_RE.match(parent) else None


# --------------------------------------------------------------------------------------------------- connections
def read_connections(root, dev_dir, sid, brief=False):
    """The connections of session *sid*: from its device directory, else from the iscsi_connection class."""
    found = []
    if brief:
        entries = _listing(dev_dir) or []
        _scan["listing"] = (dev_dir, entries)  # read_devices lists the same directory next
    else:
        entries = list_dir(dev_dir)
    for entry in entries:
        m = CONNECTION_RE.match(entry)
        if m and int(m.group(1)) == sid:
            found.append((int(m.group(2)), "%s/%s/iscsi_connection/%s" % (dev_dir, entry, entry)))
    if not found:
        prefix = "connection%d:" % sid
        class_dir = sys_join(root, CONNECTION_CLASS)
        for entry in list_dir(class_dir):
            m = CONNECTION_RE.match(entry)
            if m and entry.startswith(prefix):
                found.append((int(m.group(2)), os.path.join(class_dir, entry)))
    conns = []
    for cid, path in sorted(found):
        conn = read_connection(path, cid, brief)
        if conn is not None:
            conns.append(conn)
    return conns


def read_connection(path, cid, brief=False, portal=None):
    """One connection dict, or ``None`` when it vanished.  *portal* (brief only): its persistent ``(address,
    port)`` known already (session_check's identity cache), so that only its state is read."""
    if brief:
        state = read_value(path + "/state")
        if portal is not None and state is not _MISSING:
            conn = dict.fromkeys(CONNECTION_ATTRS)
            conn.update(cid=cid, state=state, persistent_address=portal[0], persistent_port=portal[1])
            return conn
        values = [state, read_value(path + "/persistent_address"), read_value(path + "/persistent_port")]
        if _MISSING in values and not exists_dir(path):
            return None
        conn = dict.fromkeys(CONNECTION_ATTRS)
        conn["cid"] = cid
        conn["state"], conn["persistent_address"], port = [_present(v) for v in values]
        conn["persistent_port"] = to_int(port)
        return conn
    if not exists_dir(path):
        return None
    raw = _read_some(path, CONNECTION_ATTRS, CONNECTION_ATTRS_BRIEF if brief else CONNECTION_ATTRS)
    conn = {"cid": cid}
    for key in CONNECTION_ATTRS:
        conn[key] = to_int(raw[key]) if key in CONNECTION_INT_ATTRS else raw[key]
    return conn


# --------------------------------------------------------------------------------------------------- hosts
def read_host(root, host_name, brief=False):
    """The SCSI/iSCSI host dict of *host_name* (``hostH``); fields ``None`` when unknown (or not read: *brief*)."""
    host = {"name": host_name, "number": None, "proc_name": None, "software": None}
    for key in HOST_ATTRS:
        host[key] = None
    if not host_name:
        return host
    host["number"] = int(HOST_RE.match(host_name).group(1))
    if brief:
        return host
    host.update(read_attrs(sys_join(root, ISCSI_HOST_CLASS, host_name), HOST_ATTRS))
    proc_name = read_attr(sys_join(root, SCSI_HOST_CLASS, host_name, "proc_name"))
    host["proc_name"] = proc_name
    if proc_name:
        host["software"] = proc_name in SOFTWARE_TRANSPORTS
    else:
        # Software transports hang their hosts off a platform device; offload HBAs sit under their PCI function.
        real = os.path.realpath(sys_join(root, ISCSI_HOST_CLASS, host_name))
        host["software"] = ("%sdevices%splatform%s" % (os.sep, os.sep, os.sep)) in real if exists_dir(real) else None
    return host


# --------------------------------------------------------------------------------------------------- devices
def read_by_path(root="/"):
    """``{'sdb': ['/dev/disk/by-path/ip-...-lun-1'], ...}`` from the udev links under ``<root>/dev/disk/by-path``."""
    links = {}
    directory = sys_join(root, BY_PATH_DIR)
    for entry in list_dir(directory):
        try:
            target = os.readlink(os.path.join(directory, entry))
        except OSError:
            continue
        links.setdefault(os.path.basename(target), []).append("/dev/disk/by-path/" + entry)
    return links


def read_devices(dev_dir, by_path=None, brief=False):
    """The LUNs below a session device directory, in H:C:T:L order."""
    if brief:
        return _read_devices_brief(dev_dir)
    luns = []
    for target in list_dir(dev_dir):
        if not TARGET_RE.match(target):
            continue
        tdir = os.path.join(dev_dir, target)
        for entry in list_dir(tdir):
            if HCTL_RE.match(entry):
                luns.append(os.path.join(tdir, entry))
    devices = []
    for path in sorted(luns, key=lambda p: _natural_key(os.path.basename(p))):
        dev = read_device(path, by_path, brief)
        if dev is not None:
            devices.append(dev)
    return devices


_DEVICE_BRIEF = dict.fromkeys(("hctl", "lun") + DEVICE_ATTRS + ("block", "sg"))


def _read_devices_brief(dev_dir):
    listed_dir, entries = _scan["listing"]
    _scan["listing"] = (None, None)
    if listed_dir != dev_dir:
        entries = _listing(dev_dir) or []
    luns = []
    for target in entries:
        if target.startswith("target") and TARGET_RE.match(target):
            tdir = dev_dir + "/" + target + "/"
            for entry in _listing(tdir) or ():
                m = HCTL_RE.match(entry)
                if m:
                    luns.append((tuple(map(int, m.groups())), entry, tdir + entry))
    devices = []
    for key, hctl, path in sorted(luns):
        dev = _read_lun_brief(key, hctl, path, None)
        if dev is not None:
            devices.append(dev)
    return devices


def _read_lun_brief(key, hctl, path, blocks):
    """One LUN dict of the brief scan, ``None`` when the LUN went away.  *blocks*: ``{H:C:T:L: disk}`` from the
    class index, or ``None`` to list the LUN's ``block`` directory."""
    state = read_value(path + "/state")
    if state is _MISSING:
        if not exists_dir(path):
            return None
        state = None
    if blocks is None:
        try:
            names = os.listdir(path + "/block")
        except OSError:
            names = None  # not a block device (LUN 0 is often the target's controller)
        block = min(names) if names else None
    else:
        block = blocks.get(hctl)
    dev = dict(_DEVICE_BRIEF)
    dev.update(hctl=hctl, lun=key[3], state=state, block=block, by_path=[])
    return dev


# The brief scan's index: one listing of the connection, SCSI device and block classes per scan, so that a session
# costs no directory listing at all -- its connections, LUNs and disks are looked up by sid (class names and link
# targets carry it).  A class that is missing (a synthetic tree) leaves its part ``None``: the session's own
# directories are listed instead.
def _class_entries(root, cls, parse, known=None, trusted=()):
    """``{entry: parse(entry, link target)}`` for the class directory *cls* (entries whose link cannot be read, or
    that *parse* turns down with ``None``, are left out); ``None`` when *cls* cannot be listed.  *parse* returns a
    tuple whose first item is the sid the link leads into.  *known* (this dict from an earlier scan) is reused for
    entries of the sessions in *trusted* (sids listed in this scan whose identity is cached): their LUNs and disks
    are the same objects, since a host and its H:C:T:L names only go away with the session; other entries have
    their link read again."""
    directory = sys_join(root, cls)
    names = _listing(directory)
    if names is None:
        return None
    out = {}
    readlink = os.readlink
    for entry in names:
        hit = known.get(entry) if known else None
        if hit is not None and hit[0] in trusted:
            out[entry] = hit
            continue
        try:
            parsed = parse(entry, readlink(directory + "/" + entry))
        except OSError:
            continue
        if parsed is not None:
            out[entry] = parsed
    return out


def _parse_lun_link(hctl, link):
    """``.../hostH/sessionN/targetH:C:T/H:C:T:L/scsi_device/H:C:T:L`` -> ``(N, (H, C, T, L), 'targetH:C:T/H:C:T:L')``
    (the LUN's directory below the session's, where the fallback listing finds it); ``None`` for a SCSI device
    that is not a LUN of an iSCSI session."""
    m = HCTL_RE.match(hctl)
    parts = link.split("/")
    if not m or len(parts) < 5 or parts[-2] != "scsi_device":
        return None
    s = SESSION_RE.match(parts[-5])
    if not s:
        return None
    return int(s.group(1)), tuple(int(x) for x in m.groups()), parts[-4] + "/" + hctl


def _parse_block_link(_name, link):
    """``.../sessionN/targetH:C:T/H:C:T:L/block/sdX`` -> ``(N, 'H:C:T:L')``; ``None`` for partitions
    (``.../block/sdX/sdX1``) and disks that are not iSCSI LUNs."""
    parts = link.split("/")
    if len(parts) < 6 or parts[-2] != "block" or not HCTL_RE.match(parts[-3]):
        return None
    s = SESSION_RE.match(parts[-5])
    return (int(s.group(1)), parts[-3]) if s else None


_NO_INDEX = {"conns": None, "luns": None, "blocks": None, "entries": {}}


def _brief_index(root, known=None, trusted=()):
    """The class index of one brief scan (see above).  *known*: the ``entries`` of an earlier scan's index, reused
    for *trusted* sessions (see :func:`_class_entries`)."""
    known = known or {}
    index = dict(_NO_INDEX)
    index["entries"] = entries = {}
    names = _listing(sys_join(root, CONNECTION_CLASS))
    if names:
        conns = {}
        for entry in names:
            m = CONNECTION_RE.match(entry)
            if m:
                conns.setdefault(int(m.group(1)), []).append((int(m.group(2)), entry))
        index["conns"] = conns
    found = _class_entries(root, SCSI_DEVICE_CLASS, _parse_lun_link, known.get(SCSI_DEVICE_CLASS), trusted)
    if found:
        entries[SCSI_DEVICE_CLASS] = found
        luns = {}
        for hctl, (sid, key, rel) in found.items():
            luns.setdefault(sid, []).append((key, hctl, rel))
        index["luns"] = luns
        found = _class_entries(root, BLOCK_CLASS, _parse_block_link, known.get(BLOCK_CLASS), trusted)
        if found is not None:
            entries[BLOCK_CLASS] = found
            blocks = {}
            for name, (_sid, hctl) in found.items():
                if hctl not in blocks or name < blocks[hctl]:
                    blocks[hctl] = name
            index["blocks"] = blocks
    return index


def _read_connections_indexed(root, dev_dir, listed, portals):
    """The connections *listed* for a session (``[(cid, name)]`` from the class index): read below the session's
    device directory (the kernel's layout), else through the class link.  A connection whose persistent portal
    is in *portals* (``{cid: (address, port)}``, the identity cache) has only its state read."""
    conns = []
    for cid, entry in sorted(listed):
        conn = read_connection("%s/%s/iscsi_connection/%s" % (dev_dir, entry, entry), cid, True, portals.get(cid))
        if conn is None:
            conn = read_connection(sys_join(root, CONNECTION_CLASS, entry), cid, True)
        if conn is not None:
            conns.append(conn)
    return conns


def _read_devices_indexed(dev_dir, listed, blocks):
    """The LUNs *listed* for a session (``[(hctl key, hctl, targetH:C:T/H:C:T:L)]`` from the class index)."""
    devices = []
    for key, hctl, rel in sorted(listed):
        dev = _read_lun_brief(key, hctl, dev_dir + "/" + rel, blocks)
        if dev is not None:
            devices.append(dev)
    return devices


def read_device(path, by_path=None, brief=False):
    """One LUN dict (``hctl``, ``lun``, ``state``, ``vendor``, ``model``, ``block``, ``by_path``...), or ``None``."""
    if not exists_dir(path):
        return None
    hctl = os.path.basename(path)
    raw = _read_some(path, DEVICE_ATTRS, DEVICE_ATTRS_BRIEF if brief else DEVICE_ATTRS)
    blocks = list_dir(os.path.join(path, "block"))
    block = blocks[0] if blocks else None
    generic = [] if brief else list_dir(os.path.join(path, "scsi_generic"))
    return {
        "hctl": hctl,
        "lun": int(HCTL_RE.match(hctl).group(4)),
        "state": raw["state"],
        "vendor": raw["vendor"].strip() if raw["vendor"] else raw["vendor"],
        "model": raw["model"].strip() if raw["model"] else raw["model"],
        "rev": raw["rev"].strip() if raw["rev"] else raw["rev"],
        "type": to_int(raw["type"]),
        "block": block,
        "sg": generic[0] if generic else None,
        "by_path": sorted((by_path or {}).get(block, [])) if block else [],
    }


# --------------------------------------------------------------------------------------------------- entry points
# A brief scan of many sessions is shared out to forked readers, one per CPU (up to PARALLEL_MAX), each reading a
# contiguous run of at least PARALLEL_MIN sessions and sending its dicts back through a pipe (marshal).  Reading is
# system calls plus a little Python per file, so the readers add up: 4096 sessions on 2 CPUs take about half the
# time.  A reader that fails is replaced by reading its share in this process.
PARALLEL_MIN = 512
PARALLEL_MAX = 8


def _cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _read_share(root, names, by_path, brief):
    sessions = []
    for name in names:
        try:
            sessions.append(read_session(root, name, by_path, brief))
        except Vanished:
            continue
        except OSError as exc:  # pragma: no cover - defensive: the helpers already map OSError to None
            if exc.errno in _GONE:
                continue
            raise
    return sessions


def _forked_share(root, names):
    """Start a reader for *names*: ``(pid, pipe fd)``, or ``None`` when it cannot be forked."""
    try:
        rfd, wfd = os.pipe()
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        os.close(rfd)
        os.close(wfd)
        return None
    if pid == 0:  # pragma: no cover - the child's coverage is not collected; its result is checked by the parent
        status = 1
        try:
            os.close(rfd)
            data = marshal.dumps(_read_share(root, names, None, True))
            view = memoryview(data)
            while view:
                view = view[os.write(wfd, view):]
            status = 0
        except BaseException:  # noqa: BLE001 - anything: the parent reads this share itself
            pass
        os._exit(status)  # no cleanup handlers, no flushing of the parent's buffers
    os.close(wfd)
    return pid, rfd


def _collect_share(root, names, started):
    """The dicts of a forked reader, or of reading *names* here when it failed."""
    if started is not None:
        pid, rfd = started
        chunks = []
        try:
            while True:
                chunk = os.read(rfd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(rfd)
        _pid, status = os.waitpid(pid, 0)
        if status == 0:
            try:
                return marshal.loads(b"".join(chunks))
            except (EOFError, ValueError, TypeError):
                pass
    return _read_share(root, names, None, True)


def _remember(cache, root, sessions):
    """Keep in *cache* the identity of each LOGGED_IN session whose identity was read in full: its directory,
    target, tpgt, iface and each connection's persistent portal.  None of them changes while the session lives,
    and a sid is never reused before a reboot (the kernel counts them up: ``iscsi_session_nr``).  Sessions no
    longer listed are dropped."""
    base = _resolved(root or "/")
    seen = set()
    for s in sessions:
        sid = s["sid"]
        seen.add(sid)
        if sid in cache or s["state"] != LOGGED_IN:
            continue
        portals = dict((c["cid"], (c["persistent_address"], c["persistent_port"])) for c in s["connections"]
                       if c["persistent_address"] is not None and c["persistent_port"] is not None)
        if None in (s["targetname"], s["tpgt"], s["ifacename"]) or not portals or \
                len(portals) != len(s["connections"]):
            continue
        path = s["path"]
        class_dir = "%s/iscsi_session/session%d" % (base + path if base != "/" else path, sid)
        if not exists_dir(class_dir):
            continue
        cache[sid] = {"dir": class_dir, "path": path,
                      "targetname": s["targetname"], "tpgt": s["tpgt"], "ifacename": s["ifacename"],
                      "conns": portals}
    for sid in [sid for sid in cache if sid not in seen]:
        del cache[sid]


def read_sessions(root="/", brief=False, workers=None, cache=None):
    """Every iSCSI session on the host (see the module docstring for the keys), sorted by sid.

    Sessions that vanish while being read are left out.  ``brief=True`` reads only the session state, target,
    tpgt, iface and recovery_tmo, each connection's state and persistent portal, each LUN's state and block
    device (for health checks and guards over many sessions); the dicts keep all keys, the rest ``None``/``[]``.
    A brief scan of many sessions uses up to *workers* processes (default: one per CPU, see PARALLEL_MIN).

    *cache* (brief only): a dict the caller keeps between scans of the same *root* (session_check's ``wait``
    polls): it holds what never changes while a session lives (see :func:`_remember`) and the class links into
    those sessions, so that later scans read only each session's state, recovery_tmo, connection states and LUN
    states.
    """
    _scan["resolved"] = {}
    _scan["listing"] = (None, None)
    _scan["known"] = {}
    names = list_session_names(root)
    if not brief:
        _scan["index"] = None
        return _read_share(root, names, read_by_path(root), False)
    # The index is built after the listing: a listed session's connections and LUNs already exist.
    identities = cache.setdefault("sessions", {}) if cache is not None else {}
    trusted = set(int(n[7:]) for n in names) & set(identities)
    index = _brief_index(root, cache.get("entries") if cache is not None else None, trusted)
    _scan["index"] = (root, index)
    _scan["known"] = identities
    # The scan makes tens of thousands of small dicts and no reference cycle: the cyclic garbage collector's passes
    # over them (and over the caller's heap) cost 15-25% of a big scan for nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        if workers is None:
            workers = min(_cpus(), PARALLEL_MAX)
        workers = max(1, min(workers, len(names) // PARALLEL_MIN))
        if workers == 1:
            sessions = _read_share(root, names, None, True)
        else:
            size = -(-len(names) // workers)
            shares = [names[i:i + size] for i in range(0, len(names), size)]
            started = [_forked_share(root, share) for share in shares[1:]]
            sessions = _read_share(root, shares[0], None, True)
            for share, child in zip(shares[1:], started):
                sessions.extend(_collect_share(root, share, child))
    finally:
        _scan["known"] = {}
        if collecting:
            gc.enable()
    if cache is not None:
        _remember(identities, root, sessions)
        # what the class links of cached sessions said is kept for the next scan
        cache["entries"] = dict((cls, dict((e, v) for e, v in found.items() if v[0] in identities))
                                for cls, found in index["entries"].items())
    return sessions


def device_map(sessions):
    """``{block_name: (sid, hctl)}`` for every block device of *sessions* (for mount and holder checks)."""
    result = {}
    for session in sessions:
        for dev in session.get("devices", []):
            if dev.get("block"):
                result[dev["block"]] = (session["sid"], dev["hctl"])
    return result


def has_live_sessions(root="/"):
    """True when at least one session directory exists (any state): a cheap check for guards."""
    return bool(list_session_names(root))


# --------------------------------------------------------------------------------------------------- block stacks
BLOCK_CLASS = "sys/class/block"


def read_block_tree(root, name, _depth=0):
    """The block device *name* (``sdb``) with its partitions and holders, recursively, for "is it in use" checks.

    ``{'name', 'dev': 'maj:min', 'dm_name', 'dm_uuid', 'slaves', 'slave_states', 'partitions': [tree...],
    'holders': [tree...]}``: partitions are the ``<name>/<part>/partition`` subdirectories, holders the entries of
    ``holders/`` (device-mapper, LVM, md, multipath stacked on top), each read the same way; ``slaves`` lists what a
    holder is built on (e.g. every path of a multipath map, ``dm_uuid`` ``mpath-...``) and ``slave_states`` their SCSI
    device states (``{'sdb': 'running'}``; ``None`` where there is none).  ``None`` when the device is gone.
    Depth is bounded.
    """
    base = sys_join(root, BLOCK_CLASS, name)
    if not exists_dir(base):
        return None
    tree = {
        "name": name,
        "dev": read_attr(os.path.join(base, "dev")),
        "dm_name": read_attr(os.path.join(base, "dm", "name")),
        "dm_uuid": read_attr(os.path.join(base, "dm", "uuid")),
        "slaves": list_dir(os.path.join(base, "slaves")),
        "partitions": [],
        "holders": [],
    }
    tree["slave_states"] = dict((slave, read_attr(sys_join(root, BLOCK_CLASS, slave, "device", "state")))
                                for slave in tree["slaves"])
    if _depth > 8:
        return tree
    for entry in list_dir(base):
        if os.path.isfile(os.path.join(base, entry, "partition")):
            part = read_block_tree(root, entry, _depth + 1)
            if part is None:
                # A partition that is not (yet) in the class directory: read it in place.
                part = {"name": entry, "dev": read_attr(os.path.join(base, entry, "dev")), "dm_name": None,
                        "dm_uuid": None, "slaves": [], "partitions": [], "holders": []}
            tree["partitions"].append(part)
    for holder in list_dir(os.path.join(base, "holders")):
        sub = read_block_tree(root, holder, _depth + 1)
        if sub is not None:
            tree["holders"].append(sub)
    return tree
