# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""The decisions of the ``session`` module, free of I/O.

* which node records a request selects (one record, every record of a target, every record of a portal), with
  anchored, exact comparisons (``...:disk1`` never selects ``...:disk10``);
* which live sessions (from :func:`_sysfs.read_sessions`) belong to which record, and what to do per record: nothing
  (LOGGED_IN), log in, or wait for a session the kernel holds in FAILED/FREE (a FAILED session is NOT logged in);
* when a session is ready after login: LOGGED_IN, the LUN scan finished, every disk LUN has its block device (and,
  softer, its /dev/disk/by-path link);
* whether a logout must be refused: any block device of the session, a partition of it, or a holder stacked on top
  (device-mapper, LVM, md, multipath; walked recursively) mounted or used as swap;
* the messages for iscsiadm's exit codes on login and logout.

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations

import re

from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsiadm import describe
from ansible_collections.openiscsi.initiator.plugins.module_utils._portal import Portal, normalize_address

LOGGED_IN = "LOGGED_IN"
SCANNED = "SCANNED"
DEFAULT_PORT = 3260
# SCSI peripheral device types that get a block device: disk (sd), CD/DVD (sr), optical memory, RBC, ZBC (sd).
BLOCK_TYPES = frozenset((0x00, 0x05, 0x07, 0x0E, 0x14))

# iscsiadm exit codes (include/iscsi_err.h) that matter here.
RC_SESS_NOT_FOUND = 2
RC_SYSFS_LOOKUP = 22  # "Could not get session info for sid N": the session went away
RC_SESS_EXISTS = 15
RC_NO_OBJS_FOUND = 21
RC_LOGIN_AUTH_FAILED = 24


# ----------------------------------------------------------------------------------------------- comparisons
def norm_address(address):
    """A comparable form of an address (the shared portal rules), ``None`` for ``None``."""
    if address is None:
        return None
    return normalize_address(address).rstrip(".")


def norm_target(name):
    """iSCSI names compare case-insensitively (RFC 3722 folds ASCII case); whole-string equality only."""
    return None if name is None else name.strip().lower()


def portal_text(address, port):
    """``addr:port`` with IPv6 in brackets."""
    return Portal(address, port).arg()


def record_label(rec):
    """``target portal [iface]`` for messages."""
    label = "%s at %s" % (rec["target"], portal_text(rec["address"], rec["port"]))
    if rec.get("iface") and rec["iface"] != "default":
        label += " (iface %s)" % rec["iface"]
    return label


# ----------------------------------------------------------------------------------------------- selection
def select_records(nodes, target=None, address=None, port=None, iface=None, addresses=None):
    """The node records a request names.

    *nodes* are dicts with ``target``, ``address``, ``port``, ``tpgt``, ``iface`` (and anything else).  ``target``
    compares as a whole name; ``address`` (plus every entry of *addresses*, e.g. the host name's resolved IPs) and
    ``port`` compare after normalization; ``iface`` exactly.  ``None`` means "any".
    """
    want_target = norm_target(target)
    want_addrs = None
    if address is not None:
        want_addrs = set([norm_address(address)] + [norm_address(a) for a in (addresses or [])])
    out = []
    for rec in nodes:
        if want_target is not None and norm_target(rec.get("target")) != want_target:
            continue
        if want_addrs is not None and norm_address(rec.get("address")) not in want_addrs:
            continue
        if port is not None and rec.get("port") is not None and int(rec["port"]) != int(port):
            continue
        if iface is not None and (rec.get("iface") or "default") != iface:
            continue
        out.append(rec)
    return sorted(out, key=lambda r: (r["target"], norm_address(r["address"]), int(r["port"]), r.get("tpgt") or 0,
                                      r.get("iface") or ""))


def session_portal(session):
    """``(address, port)`` of a session's first connection (the persistent portal it logged in to)."""
    for conn in session.get("connections") or []:
        address = conn.get("persistent_address") or conn.get("address")
        port = conn.get("persistent_port") or conn.get("port")
        if address:
            return address, port
    return None, None


def session_matches(session, rec):
    """True when *session* (a :func:`_sysfs.read_session` dict) is the session of node record *rec*."""
    if norm_target(session.get("targetname")) != norm_target(rec.get("target")):
        return False
    address, port = session_portal(session)
    if address is None or norm_address(address) != norm_address(rec.get("address")):
        return False
    if port is not None and rec.get("port") is not None and int(port) != int(rec["port"]):
        return False
    iface = session.get("ifacename")
    if iface is not None and rec.get("iface") is not None and iface != rec["iface"]:
        return False
    tpgt = rec.get("tpgt")
    if tpgt not in (None, -1) and session.get("tpgt") is not None and int(session["tpgt"]) != int(tpgt):
        return False
    return True


def sessions_of(rec, sessions):
    return [s for s in sessions if session_matches(s, rec)]


def select_sessions(sessions, target=None, address=None, port=None, iface=None, addresses=None):
    """Live sessions a logout request names (any state), by the same rules as :func:`select_records`."""
    want_target = norm_target(target)
    want_addrs = None
    if address is not None:
        want_addrs = set([norm_address(address)] + [norm_address(a) for a in (addresses or [])])
    out = []
    for session in sessions:
        if want_target is not None and norm_target(session.get("targetname")) != want_target:
            continue
        s_addr, s_port = session_portal(session)
        if want_addrs is not None and norm_address(s_addr) not in want_addrs:
            continue
        if port is not None and s_port is not None and int(s_port) != int(port):
            continue
        if iface is not None and session.get("ifacename") is not None and session["ifacename"] != iface:
            continue
        out.append(session)
    return sorted(out, key=lambda s: s["sid"])


# ----------------------------------------------------------------------------------------------- login plan
def plan_login(records, sessions):
    """Per selected record: ``{'record', 'action', 'sessions'}`` with action

    * ``none``  -- a LOGGED_IN session exists;
    * ``wait``  -- the kernel holds a session in another state (FAILED: connection lost and iscsid is reconnecting;
      FREE: just created or recovery timed out).  ``iscsiadm --login`` would answer 15 (session exists); the only
      honest thing is to wait for it to come back, and fail clearly if it does not;
    * ``login`` -- no session.
    """
    plan = []
    for rec in records:
        mine = sessions_of(rec, sessions)
        if any(s.get("state") == LOGGED_IN for s in mine):
            action = "none"
        elif mine:
            action = "wait"
        else:
            action = "login"
        plan.append({"record": rec, "action": action, "sessions": mine})
    return plan


def login_changed(plan):
    return any(step["action"] == "login" for step in plan)


# ----------------------------------------------------------------------------------------------- readiness
def readiness(session, want_devices=True, want_links=True):
    """``(hard, soft)`` lists of what is still missing for *session* to count as ready after login.

    hard: not LOGGED_IN; the LUN scan not finished (kernel ``target_state`` other than SCANNED, where the kernel has
    that attribute); a disk LUN without its block device.  soft: a block device without a /dev/disk/by-path link
    (udev still working; checked only with *want_links*, i.e. when udev runs); no LUN at all on a kernel without
    ``target_state`` (cannot tell "not scanned yet" from "target exports nothing").
    """
    if session is None:
        return ["no session"], []
    hard, soft = [], []
    state = session.get("state")
    if state != LOGGED_IN:
        hard.append("session %s is %s, not LOGGED_IN" % (session.get("sid"), state))
        return hard, soft
    if not want_devices:
        return hard, soft
    target_state = session.get("target_state")
    devices = session.get("devices") or []
    if target_state is not None and target_state != SCANNED:
        hard.append("session %s: LUN scan not finished (target_state %s)" % (session.get("sid"), target_state))
    if target_state is None and not devices:
        soft.append("session %s: no LUN seen yet" % session.get("sid"))
    for dev in devices:
        if dev.get("type") in BLOCK_TYPES and not dev.get("block"):
            hard.append("session %s: LUN %s (%s) has no block device yet"
                        % (session.get("sid"), dev.get("lun"), dev.get("hctl")))
        elif want_links and dev.get("block") and not dev.get("by_path"):
            soft.append("session %s: /dev/%s has no /dev/disk/by-path link yet" % (session.get("sid"), dev["block"]))
    return hard, soft


def device_list(session):
    """The block devices of *session* as returned to the user."""
    out = []
    for dev in session.get("devices") or []:
        if not dev.get("block"):
            continue
        out.append({
            "lun": dev.get("lun"),
            "hctl": dev.get("hctl"),
            "device": "/dev/" + dev["block"],
            "by_path": list(dev.get("by_path") or []),
            "vendor": dev.get("vendor"),
            "model": dev.get("model"),
            "state": dev.get("state"),
        })
    return out


def session_summary(session):
    address, port = session_portal(session)
    return {
        "sid": session.get("sid"),
        "target": session.get("targetname"),
        "portal": portal_text(address, int(port)) if address and port is not None else address,
        "tpgt": session.get("tpgt"),
        "iface": session.get("ifacename"),
        "state": session.get("state"),
        "devices": device_list(session),
    }


def new_devices(before, after):
    """Device paths present in *after* but not *before* (lists of :func:`device_list` entries)."""
    seen = set(d["device"] for d in before)
    return [d for d in after if d["device"] not in seen]


# ----------------------------------------------------------------------------------------------- mounts
def parse_swaps(text):
    """Device paths in use as swap, from /proc/swaps."""
    out = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if fields:
            out.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[0]))
    return out


def _walk(node, chain, out, leaving, kept, depth=0):
    """Collect (node, chain) for *node* and, recursively, its partitions and holders (bounded depth).

    A multipath map (dm uuid ``mpath-...``) that keeps a HEALTHY path outside *leaving* (the disks being logged out;
    healthy: its SCSI device is ``running``, where the tree knows the state) stays usable: it is not descended into,
    and is noted in *kept* instead.  A map whose other paths are all blocked or offline is on its last path here.
    """
    out.append((node, chain + [node["name"]]))
    if depth > 16:
        return
    for child in node.get("partitions") or []:
        _walk(child, chain + [node["name"]], out, leaving, kept, depth + 1)
    for child in node.get("holders") or []:
        if leaving is not None and (child.get("dm_uuid") or "").startswith("mpath-"):
            states = child.get("slave_states") or {}
            others = sorted(s for s in set(child.get("slaves") or []) - set(leaving)
                            if states.get(s, "running") == "running")
            if others:
                kept.append({"device": "/dev/mapper/" + (child.get("dm_name") or child["name"]),
                             "via": " -> ".join(chain + [node["name"], child["name"]]), "paths": others})
                continue
        _walk(child, chain + [node["name"]], out, leaving, kept, depth + 1)


def device_users(trees, mounts, swaps, leaving=None, kept=None):
    """Who uses the block devices of *trees* (from :func:`_sysfs.read_block_tree`); *mounts* come from
    :func:`_hostinfo.parse_mountinfo`, *swaps* from :func:`parse_swaps`.

    Returns ``[{'device': '/dev/sdb1', 'via': 'sdb -> sdb1', 'use': 'mounted on /mnt/x'}]``.  A mount matches by
    device number (maj:min) or by source path (/dev/NAME or /dev/mapper/DMNAME); swap by path.

    *leaving* (optional) names every disk about to go (all sessions being logged out): a multipath map on top that
    keeps another path is then not "in use" through this session - losing one path is what multipath is for - and
    is appended to the list *kept* (``{'device', 'via', 'paths'}``) so the caller can say so.
    """
    if kept is None:
        kept = []
    users = []
    for tree in trees:
        if not tree:
            continue
        nodes = []
        _walk(tree, [], nodes, leaving, kept)
        for node, chain in nodes:
            paths = set(["/dev/" + node["name"]])
            if node.get("dm_name"):
                paths.add("/dev/mapper/" + node["dm_name"])
            display = "/dev/mapper/" + node["dm_name"] if node.get("dm_name") else "/dev/" + node["name"]
            for mount in mounts:
                if (node.get("dev") and mount.get("majmin") == node["dev"]) or mount["source"] in paths:
                    users.append({"device": display, "via": " -> ".join(chain),
                                  "use": "mounted on %s (%s)" % (mount["mountpoint"], mount["fstype"])})
            for swap in swaps:
                if swap in paths:
                    users.append({"device": display, "via": " -> ".join(chain), "use": "in use as swap"})
    # one entry per (device, use)
    seen, out = set(), []
    for user in users:
        key = (user["device"], user["use"])
        if key not in seen:
            seen.add(key)
            out.append(user)
    return out


# How messages name the options a caller can change: the module's own option names by default; a caller that sets
# them under other names (the initiator role: its variables) passes its names (the modules' option_names option).
DEFAULT_OPTION_NAMES = {"force": "force", "auth": "the node module's auth option"}


def option_name(names, key):
    """The name messages use for option *key* (``force``, ``auth``): the caller's from *names*, else the default."""
    return (names or {}).get(key) or DEFAULT_OPTION_NAMES[key]


def refusal_message(session, users, names=None):
    address, port = session_portal(session)
    where = portal_text(address, int(port)) if address and port is not None else "?"
    uses = "; ".join("%s %s (%s)" % (u["device"], u["use"], u["via"]) for u in users)
    return ("refusing to log out session %s (%s at %s): its devices are in use: %s. Unmount them (and deactivate "
            "LVM/device-mapper holders) first, or set %s: true to log out anyway (data in flight is lost)"
            % (session.get("sid"), session.get("targetname"), where, uses, option_name(names, "force")))


# ----------------------------------------------------------------------------------------------- messages
def chap_summary(rec):
    """The CHAP fields of a node record (its ``auth`` block from :func:`_nodedb.read_nodes`) for messages; never a
    secret, only whether one is set."""
    auth = rec.get("auth") or {}
    parts = ["node.session.auth.authmethod=%s" % (auth.get("method") or "None")]
    parts.append("node.session.auth.username=%s" % (auth.get("username") or "<empty>"))
    parts.append("node.session.auth.password %s" % ("set" if auth.get("has_password") else "empty"))
    if auth.get("username_in") or auth.get("has_password_in"):
        parts.append("node.session.auth.username_in=%s" % (auth.get("username_in") or "<empty>"))
        parts.append("node.session.auth.password_in %s" % ("set" if auth.get("has_password_in") else "empty"))
    return ", ".join(parts)


def login_error_message(rc, rec, stderr="", initiator_name=None, names=None):
    """A clear message for a failed ``iscsiadm -m node ... --login`` of record *rec* (a :func:`_nodedb.read_nodes`
    record).  24 names the record's CHAP fields (never a secret) and the ACL; 19 the ACL and this initiator's name;
    the rest come from the shared exit-code table."""
    label = record_label(rec)
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    said = (". iscsiadm said: " + " | ".join(lines[-6:])) if lines else ""
    who = " (this initiator: %s)" % initiator_name if initiator_name else ""
    if rc == RC_LOGIN_AUTH_FAILED:
        return ("login to %s failed: authentication failed (iscsiadm exit code 24) - the target rejected this "
                "initiator's CHAP credentials, or its ACL does not allow this initiator%s. The record has %s; fix "
                "node.session.auth.username/password (and username_in/password_in for mutual CHAP) with %s, or "
                "the target's account/ACL%s" % (label, who, chap_summary(rec), option_name(names, "auth"), said))
    if rc == RC_NO_OBJS_FOUND:
        return ("login to %s failed: no node record matches (iscsiadm exit code 21); create it with "
                "openiscsi.initiator.node or openiscsi.initiator.discovery first%s" % (label, said))
    if rc == 19:
        return ("login to %s failed: the target refused the login for good (iscsiadm exit code 19) - the target "
                "does not exist at that portal, or its ACL does not allow this initiator%s%s" % (label, who, said))
    auth = rec.get("auth") or {}
    record = {"username": auth.get("username"), "username_in": auth.get("username_in"),
              "has_password_in": auth.get("has_password_in")}
    return describe(rc, stderr, context="login to %s" % label, record=record)


def logout_error_message(rc, session, stderr=""):
    address, port = session_portal(session)
    where = portal_text(address, int(port)) if address and port is not None else "?"
    return describe(rc, stderr, context="logout of session %s (%s at %s)" % (session.get("sid"),
                                                                             session.get("targetname"), where))


def login_rc_ok(rc):
    """0, and 15 (a session already exists: someone else logged in meanwhile) count as success."""
    return rc in (0, RC_SESS_EXISTS)


def logout_rc_ok(rc):
    """0, and 2/21/22 (the session went away meanwhile) count as success."""
    return rc in LOGOUT_OK


LOGOUT_OK = (0, RC_SESS_NOT_FOUND, RC_NO_OBJS_FOUND, RC_SYSFS_LOOKUP)
