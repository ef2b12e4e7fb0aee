# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""Health of a host's iSCSI sessions, evaluated over what :mod:`_sysfs` read (pure: no I/O here).

Healthy means: every session is ``LOGGED_IN``, each of its connections is ``up`` (a connection whose ``state``
attribute is missing -- older kernels -- counts as up when the session is logged in) and every SCSI device of the
session is ``running``.  On top of that, optional expectations:

* every node record with ``node.startup = automatic`` has a session (matched by target, portal and iface; a
  static record's tpgt ``-1`` matches any tpgt, a record naming a host name instead of an address matches on
  target, port and iface);
* ``min_paths``: every target that has a session (or is expected) has at least that many HEALTHY sessions
  (paths, for multipath); ``target_min_paths`` sets it per target;
* ``targets``: these targets are present with at least one healthy session (or their ``min_paths``).

What the kernel's states mean (drivers/scsi/scsi_transport_iscsi.c): ``FAILED`` = the connection was lost and the
kernel holds I/O for up to ``recovery_tmo`` seconds while iscsid reconnects (devices ``blocked``); ``FREE`` = the
recovery timeout expired (devices ``transport-offline``: I/O fails) or the session is not logged in yet.

Also here, because the rolling upgrade needs them and they are pure:

* :func:`config_findings` -- does the host's iSCSI configuration (initiator name file, iscsid.conf, node records)
  parse and validate, so that a restarted iscsid will work;
* :func:`plan_recovery_raise` / :func:`plan_recovery_restore` -- which sessions' ``recovery_tmo`` to raise for an
  iscsid restart (like Debian's postinst) and how to put the saved values back.

Standard library only, no ansible import.
"""

from __future__ import annotations

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._initiatorname import InitiatorNameFile
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsid_conf import (
    CONF_KEYS, NODE_KEYS, SECRET_KEYS, normalize_value,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._kvconf import KVFile
from ansible_collections.openiscsi.initiator.plugins.module_utils._names import normalize_name
from ansible_collections.openiscsi.initiator.plugins.module_utils._textrules import is_ascii_digits

LOGGED_IN = "LOGGED_IN"
NAME_BLOCKERS = ("missing", "invalid", "indented", "generate")
CONN_UP = "up"
DEVICE_RUNNING = "running"

STATE_WHY = {
    "FAILED": "connection lost; the kernel holds I/O for up to recovery_tmo while iscsid reconnects",
    "FREE": "not logged in: the recovery timeout expired and I/O to its devices fails, or the login is incomplete",
}
DEVICE_WHY = {
    "blocked": "I/O held while the session recovers",
    "transport-offline": "I/O fails",
    "offline": "I/O fails",
}


# --------------------------------------------------------------------------------------------------- helpers
def _bare(address):
    """An address compared the way records and sysfs spell it: no brackets, lower case."""
    if address is None:
        return None
    return str(address).strip().strip("[]").lower()


def format_portal(address, port):
    """``addr:port`` with IPv6 in brackets; ``None`` without an address."""
    if not address:
        return None
    address = _bare(address)
    host = "[%s]" % address if ":" in address else address
    return "%s:%s" % (host, port) if port is not None else host


def _is_ip_literal(address):
    address = _bare(address) or ""
    if ":" in address:
        return True
    parts = address.split(".")
    return len(parts) == 4 and all(is_ascii_digits(p) for p in parts)


def session_portal(session):
    """The session's persistent portal ``(address, port)`` (what the node record names), else the current one."""
    for conn in session.get("connections") or []:
        if conn.get("persistent_address"):
            return _bare(conn["persistent_address"]), conn.get("persistent_port")
        if conn.get("address"):
            return _bare(conn["address"]), conn.get("port")
    return None, None


def describe_session(entry):
    """``session 3 (iqn...:tgt via 10.0.0.1:3260, iface default)`` for messages."""
    bits = [entry.get("target") or "unknown target"]
    if entry.get("portal"):
        bits.append("via %s" % entry["portal"])
    text = " ".join(bits)
    if entry.get("iface"):
        text += ", iface %s" % entry["iface"]
    return "session %s (%s)" % (entry.get("sid"), text)


# --------------------------------------------------------------------------------------------------- sessions
def session_report(session):
    """One session's health entry: identity, states, devices and the reasons it is unhealthy (``problems``)."""
    get = session.get
    conns_in = get("connections") or ()
    address = port = None
    for conn in conns_in:  # session_portal(), inlined: this runs for every session of every poll
        if conn.get("persistent_address"):
            address, port = _bare(conn["persistent_address"]), conn.get("persistent_port")
            break
        if conn.get("address"):
            address, port = _bare(conn["address"]), conn.get("port")
            break
    state = get("state")
    problems = []
    if state != LOGGED_IN:
        if state is None:
            problems.append("session state unreadable")
        else:
            why = STATE_WHY.get(state, "not logged in")
            tmo = get("recovery_tmo_raw")
            if state == "FAILED" and tmo:
                why = why.replace("recovery_tmo", "recovery_tmo (%s%s)" % (tmo, "" if tmo == "off" else " s"))
            problems.append("state %s (%s)" % (state, why))
    sid = get("sid")
    conns = []
    cstates = set()
    for conn in conns_in:
        cstate = conn.get("state")
        caddr = conn.get("address")
        conns.append({"cid": conn.get("cid"), "state": cstate,
                      "portal": format_portal(caddr, conn.get("port")) if caddr else None})
        cstates.add(cstate or "unknown")
        if cstate is not None and cstate != CONN_UP:
            problems.append("connection %s:%s %s" % (sid, conn.get("cid"), cstate))
    if not conns and state == LOGGED_IN:
        problems.append("no connection")
    devices = []
    dstates = set()
    bad = None
    for dev in get("devices") or ():
        dstate = dev.get("state")
        devices.append({"hctl": dev.get("hctl"), "lun": dev.get("lun"), "block": dev.get("block"),
                        "state": dstate})
        dstates.add(dstate or "unknown")
        if dstate != DEVICE_RUNNING:
            if bad is None:
                bad = {}
            name = dev.get("block") or "LUN %s" % dev.get("lun")
            bad.setdefault(dstate or "state unreadable", []).append("%s (%s)" % (name, dev.get("hctl")))
    for dstate in sorted(bad or ()):
        why = DEVICE_WHY.get(dstate)
        problems.append("device%s %s%s: %s" % ("s" if len(bad[dstate]) > 1 else "", dstate,
                                               " (%s)" % why if why else "", ", ".join(bad[dstate])))
    if len(cstates) == 1:
        conn_state = cstates.pop()
    else:
        conn_state = ",".join(sorted(cstates)) if cstates else None
    return {
        "sid": sid,
        "target": get("targetname"),
        "portal": format_portal(address, port) if address else None,
        "address": address,
        "port": port,
        "tpgt": get("tpgt"),
        "iface": get("ifacename"),
        "state": state,
        "connection_state": conn_state,
        "connections": conns,
        "devices": devices,
        "device_states": sorted(dstates),
        "recovery_tmo": get("recovery_tmo_raw", get("recovery_tmo")),
        "host": (get("host") or {}).get("name"),
        "healthy": not problems,
        "problems": problems,
    }


def _record_matches(record, entry):
    if record.get("target") != entry["target"]:
        return False
    iface = record.get("iface") or "default"
    if entry.get("iface") and iface != entry["iface"]:
        return False
    if record.get("tpgt") not in (None, -1) and entry.get("tpgt") is not None and record["tpgt"] != entry["tpgt"]:
        return False
    if record.get("port") is not None and entry.get("port") is not None and int(record["port"]) != int(entry["port"]):
        return False
    if _is_ip_literal(record.get("address")):
        return _bare(record.get("address")) == entry.get("address")
    return True


def evaluate(sessions, records=None, expect_automatic=False, min_paths=None, target_min_paths=None, targets=None):
    """The health report of *sessions* (``_sysfs.read_sessions`` output) with the optional expectations.

    *records*: node records (``_nodedb.read_nodes``), only used with *expect_automatic*.  Returns::

        {healthy, sessions: [session_report...], problems: [{kind, sid?, target, portal?, message}],
         paths: {target: {healthy, total, required}}, counts: {sessions, healthy, unhealthy}, summary}
    """
    entries = [session_report(s) for s in sessions]
    problems = []
    for entry in entries:
        if entry["problems"]:
            problems.append({"kind": "session", "sid": entry["sid"], "target": entry["target"],
                             "portal": entry["portal"], "iface": entry["iface"],
                             "message": "%s: %s" % (describe_session(entry), ", ".join(entry["problems"]))})
    by_target = {}
    for entry in entries:
        by_target.setdefault(entry["target"], []).append(entry)
    if expect_automatic:
        # Exact (target, address, port, iface, tpgt) keys first: a record naming them all is matched by one lookup;
        # anything else (a host name, tpgt -1, a session without iface) goes through _record_matches.
        exact = set((e["target"], e["address"], e["port"], e["iface"], e["tpgt"]) for e in entries)
        for record in records or []:
            if record.get("startup") != "automatic":
                continue
            port, tpgt = record.get("port"), record.get("tpgt")
            if port is not None and tpgt not in (None, -1) and \
                    (record.get("target"), _bare(record.get("address")), int(port), record.get("iface") or "default",
                     tpgt) in exact:
                continue
            if not any(_record_matches(record, e) for e in by_target.get(record.get("target"), ())):
                problems.append({"kind": "missing_session", "sid": None, "target": record.get("target"),
                                 "portal": record.get("portal"), "iface": record.get("iface"),
                                 "message": "node record %s %s (iface %s) has node.startup=automatic but no session"
                                            % (record.get("target"), record.get("portal"),
                                               record.get("iface") or "default")})
    # Paths per target.
    target_min_paths = dict(target_min_paths or {})
    wanted = list(targets or [])
    considered, seen = [], set()
    for name in [e["target"] for e in entries] + wanted + list(target_min_paths):
        if name and name not in seen:
            seen.add(name)
            considered.append(name)
    paths = {}
    for name in considered:
        required = target_min_paths.get(name, min_paths)
        if required is None and name in wanted:
            required = 1
        mine = by_target.get(name, [])
        paths[name] = {"healthy": sum(1 for e in mine if e["healthy"]), "total": len(mine), "required": required}
        if required is not None and paths[name]["healthy"] < required:
            if not mine:
                msg = "target %s has no session (%d path%s required)" % (name, required, "" if required == 1 else "s")
            else:
                msg = "target %s has %d healthy path%s of %d session%s; %d required" % (
                    name, paths[name]["healthy"], "" if paths[name]["healthy"] == 1 else "s", len(mine),
                    "" if len(mine) == 1 else "s", required)
            problems.append({"kind": "paths", "sid": None, "target": name, "portal": None, "iface": None,
                             "message": msg})
    healthy_count = sum(1 for e in entries if e["healthy"])
    report = {
        "healthy": not problems,
        "sessions": entries,
        "problems": problems,
        "paths": paths,
        "counts": {"sessions": len(entries), "healthy": healthy_count, "unhealthy": len(entries) - healthy_count},
    }
    report["summary"] = summarize(report)
    return report


def summarize(report, limit=10):
    """One line: ``healthy: 3 sessions`` or the first *limit* problems."""
    counts = report["counts"]
    if report["healthy"]:
        return "healthy: %d session%s logged in, connections up, devices running" % (
            counts["sessions"], "" if counts["sessions"] == 1 else "s")
    msgs = [p["message"] for p in report["problems"]]
    more = len(msgs) - limit
    text = " | ".join(msgs[:limit])
    if more > 0:
        text += " | and %d more problem%s" % (more, "" if more == 1 else "s")
    return "unhealthy (%d of %d sessions healthy): %s" % (counts["healthy"], counts["sessions"], text)


def validate_expectations(min_paths=None, target_min_paths=None, targets=None):
    """Check the expectation options; raises :class:`InputError` naming the field."""
    if min_paths is not None and (isinstance(min_paths, bool) or not isinstance(min_paths, int) or min_paths < 1):
        raise InputError("min_paths", "must be an integer >= 1, got %r" % (min_paths,))
    out_paths = {}
    for name, value in (target_min_paths or {}).items():
        field = "target_min_paths.%s" % name
        try:
            norm = normalize_name(name, field)
        except InputError:
            norm = name
        if isinstance(value, bool):
            raise InputError(field, "must be an integer >= 0, got %r" % (value,))
        try:
            value = int(value)
        except (TypeError, ValueError):
            raise InputError(field, "must be an integer >= 0, got %r" % (value,))
        if value < 0:
            raise InputError(field, "must be an integer >= 0, got %d" % value)
        out_paths[norm] = value
    out_targets = []
    for i, name in enumerate(targets or []):
        if not isinstance(name, str) or not name.strip():
            raise InputError("targets[%d]" % i, "must be a target name (IQN, EUI or NAA), got %r" % (name,))
        try:
            out_targets.append(normalize_name(name.strip(), "targets[%d]" % i))
        except InputError:
            out_targets.append(name.strip())
    return out_paths, out_targets


# --------------------------------------------------------------------------------------------------- configuration
def _finding(source, severity, code, message, line=None):
    return {"file": source, "line": line, "severity": severity, "code": code, "message": message}


def _check_value(key, value, spec, field):
    """``None`` when open-iscsi reads *value* for *key* as written, else the reason (never a secret value)."""
    try:
        norm = normalize_value(key, value, spec, field)
    except InputError as exc:
        return exc.message
    if spec.kind == "enum" and norm != value.strip():
        return ("%s = %s: open-iscsi compares this value case-sensitively and ignores it as written; use %s"
                % (key, "(hidden)" if spec.secret else value, norm))
    return None


def _kv_findings(kv, catalogue, source, where=""):
    found = []
    for key, value in kv.items():
        spec = catalogue.get(key)
        if spec is None:
            continue
        why = _check_value(key, value, spec, key)
        if why:
            found.append(_finding(source, "error", "invalid_value", "%s%s" % (where, why)))
    for key in kv.duplicates():
        found.append(_finding(source, "warning", "duplicate_key", "%s%s is set more than once; the last line wins"
                              % (where, key)))
    return found


def config_findings(initiatorname_text=None, iscsid_conf_text=None, records=None,
                    initiatorname_path="/etc/iscsi/initiatorname.iscsi", iscsid_conf_path="/etc/iscsi/iscsid.conf"):
    """Problems that would keep a (re)started iscsid from working, or from logging in again.

    *initiatorname_text* / *iscsid_conf_text*: file contents, ``None`` when the file is missing; *records*: node
    records from ``_nodedb.read_nodes`` (with their ``settings``; secrets are not needed and never shown).
    Returns ``[{file, line, severity (error|warning), code, message}]``.
    """
    found = []
    if initiatorname_text is None:
        found.append(_finding(initiatorname_path, "error", "missing",
                              "the initiator name file is missing; iscsid will not start without it"))
    else:
        parsed = InitiatorNameFile.parse(initiatorname_text)
        for f in parsed.findings:
            # Only what keeps iscsid from starting with this host's name is an error here: no usable name, a name
            # line Debian's start-up check rejects, an invalid name, or GenerateName=yes (the check would replace
            # the name at the restart, and the targets' ACLs would refuse the new one).
            severity = "error" if f.code in NAME_BLOCKERS else "warning"
            found.append(_finding(initiatorname_path, severity, f.code, f.message, f.line))
    if iscsid_conf_text is None:
        found.append(_finding(iscsid_conf_path, "warning", "missing",
                              "iscsid.conf is missing; iscsid and new records use built-in defaults"))
    else:
        kv = KVFile.parse(iscsid_conf_text)
        for key, _value in kv.items():
            if key not in CONF_KEYS and key not in SECRET_KEYS:
                found.append(_finding(iscsid_conf_path, "warning", "unknown_key",
                                      "%s is not a setting open-iscsi knows; it is ignored" % key))
        found.extend(_kv_findings(kv, CONF_KEYS, iscsid_conf_path))
    for record in records or []:
        path = record.get("path")
        where = ""
        target = record.get("target")
        try:
            normalize_name(target or "", "target")
        except InputError as exc:
            found.append(_finding(path, "error", "invalid_target", "record target name %r: %s" % (target, exc.message)))
        if not record.get("address") or record.get("port") is None:
            found.append(_finding(path, "error", "no_portal", "record has no portal address/port"))
        settings = record.get("settings")
        if settings:
            kv = KVFile.parse("".join("%s = %s\n" % (k, v) for k, v in settings.items()))
            found.extend(_kv_findings(kv, NODE_KEYS, path, where))
        elif record.get("startup") not in (None, "manual", "automatic", "onboot"):
            found.append(_finding(path, "error", "invalid_value",
                                  "node.startup = %s: must be manual, automatic or onboot" % record.get("startup")))
        for key in record.get("duplicate_keys") or []:
            found.append(_finding(path, "warning", "duplicate_key", "%s is set more than once; the last line wins"
                                  % key))
    return found


# --------------------------------------------------------------------------------------------------- recovery_tmo
def session_identity(session):
    """What identifies a session across reads (a sid can be reused by a new session): sid, target, isid."""
    return {"sid": session.get("sid"), "targetname": session.get("targetname"), "isid": session.get("isid")}


def _same(session, saved):
    return (session.get("sid") == saved.get("sid") and session.get("targetname") == saved.get("targetname")
            and (saved.get("isid") is None or session.get("isid") == saved.get("isid")))


def plan_recovery_raise(sessions, minimum):
    """Which sessions' recovery_tmo to raise to *minimum* seconds before an iscsid restart.

    Returns ``{saved: [identity + recovery_tmo (raw text as read)], writes: [{sid, name, before, after}],
    skipped: [{sid, reason}]}``.  ``off`` (never time out) is left alone; a session that is not LOGGED_IN is
    skipped (the kernel refuses the write with EBUSY) and reported; a value that could not be read is skipped.
    """
    saved, writes, skipped = [], [], []
    for s in sessions:
        raw = s.get("recovery_tmo_raw")
        entry = dict(session_identity(s), name=s.get("name"), recovery_tmo=raw)
        if raw is None:
            skipped.append({"sid": s.get("sid"), "reason": "recovery_tmo unreadable"})
            continue
        saved.append(entry)
        value = raw.strip()
        if value == "off":
            continue
        try:
            current = int(value)
        except ValueError:
            skipped.append({"sid": s.get("sid"), "reason": "recovery_tmo %r is not a number" % raw})
            continue
        if current >= minimum:
            continue
        if s.get("state") != LOGGED_IN:
            skipped.append({"sid": s.get("sid"), "reason": "state %s: the kernel refuses recovery_tmo writes"
                                                           % s.get("state")})
            continue
        writes.append({"sid": s.get("sid"), "name": s.get("name"), "before": value, "after": str(minimum)})
    return {"saved": saved, "writes": writes, "skipped": skipped}


def plan_recovery_restore(sessions, saved):
    """How to put *saved* (from :func:`plan_recovery_raise`) back: ``{writes, skipped}``.

    A saved session is restored only when a session with the same sid, target and isid still exists (a new
    session that got the same sid keeps its own value); sessions whose value already matches need no write.
    """
    writes, skipped = [], []
    for item in saved or []:
        match = next((s for s in sessions if _same(s, item)), None)
        if match is None:
            skipped.append({"sid": item.get("sid"), "reason": "session gone"})
            continue
        want = str(item.get("recovery_tmo")).strip()
        have = (match.get("recovery_tmo_raw") or "").strip()
        if want == have:
            continue
        writes.append({"sid": match.get("sid"), "name": match.get("name"), "before": have or None, "after": want,
                       "state": match.get("state")})
    return {"writes": writes, "skipped": skipped}


def validate_saved(saved, field="restore"):
    """Check a ``restore`` list (as returned in ``saved``); returns it normalized."""
    out = []
    if not isinstance(saved, list):
        raise InputError(field, "must be the list returned as 'saved' by an earlier run")
    for i, item in enumerate(saved):
        sub = "%s[%d]" % (field, i)
        if not isinstance(item, dict):
            raise InputError(sub, "must be a dict with sid, targetname and recovery_tmo")
        try:
            sid = int(item.get("sid"))
        except (TypeError, ValueError):
            raise InputError(sub + ".sid", "must be a session number, got %r" % (item.get("sid"),))
        value = str(item.get("recovery_tmo", "")).strip()
        if value != "off":
            try:
                if int(value) < 0:
                    raise ValueError(value)
            except ValueError:
                raise InputError(sub + ".recovery_tmo", "must be a number of seconds or 'off', got %r"
                                 % (item.get("recovery_tmo"),))
        if not item.get("targetname"):
            raise InputError(sub + ".targetname", "is required (it guards against a reused session number)")
        out.append({"sid": sid, "targetname": item["targetname"], "isid": item.get("isid"),
                    "name": item.get("name") or "session%d" % sid, "recovery_tmo": value})
    return out


# --------------------------------------------------------------------------------------------------- waiting
def wait_for_health(check, timeout=0.0, interval=1.0, clock=None, sleep=None, wall=None):
    """Call ``check() -> report`` until ``report['healthy']`` or *timeout* seconds have passed.

    Polls are scheduled *interval* seconds apart from the START of the previous poll (the check's own time is
    not added), and the last poll happens at the deadline, so a recovery is seen at most one interval after it
    happened.  Returns the last report with ``wait``: ``{polls, elapsed, timed_out, unhealthy_for, checked_at}``
    (``unhealthy_for``: seconds from the first unhealthy poll to the healthy one, ``None`` when the first poll
    was healthy; ``checked_at``: wall-clock time of the last poll, for comparing with logs).
    """
    import time

    clock = clock or time.monotonic
    sleep = sleep or time.sleep
    wall = wall or time.time
    start = clock()
    deadline = start + max(0.0, float(timeout or 0))
    polls = 0
    first_bad = None
    while True:
        began = clock()
        checked_at = wall()
        report = check()
        polls += 1
        if report["healthy"]:
            break
        if first_bad is None:
            first_bad = began
        now = clock()
        if now >= deadline:
            break
        sleep(max(0.0, min(began + interval, deadline) - now))
    report["wait"] = {
        "polls": polls,
        "elapsed": round(clock() - start, 4),
        "timed_out": not report["healthy"] and bool(timeout),
        "unhealthy_for": round(began - first_bad, 4) if report["healthy"] and first_bad is not None else None,
        "checked_at": round(checked_at, 4),
    }
    return report


# ------------------------------------------------------------------------------------------------ multipath maps
def _path_report(path, by_block, dm_states):
    """One path of a map with the iSCSI session behind it; healthy when its SCSI device runs, its session is
    logged in and device-mapper (when known) has not failed it."""
    entry, _dev = by_block.get(path["device"], (None, None))
    dm_state = dm_states.get(path.get("devt")) if path.get("devt") else None
    why = []
    if path.get("state") != DEVICE_RUNNING:
        why.append("device %s" % (path.get("state") or "state unreadable"))
    if entry is not None and entry["state"] != LOGGED_IN:
        why.append("session %s %s" % (entry["sid"], entry["state"]))
    if dm_state == "F":
        why.append("failed in device-mapper")
    return {
        "device": path["device"], "hctl": path.get("hctl"), "state": path.get("state"), "dm_state": dm_state,
        "sid": entry["sid"] if entry else None, "target": entry["target"] if entry else None,
        "portal": entry["portal"] if entry else None, "iface": entry["iface"] if entry else None,
        "session_state": entry["state"] if entry else None,
        "size_sectors": path.get("size_sectors"), "wwid": path.get("wwid"),
        "healthy": not why, "problems": why,
    }


def validate_map_expectations(min_map_paths=None, map_min_paths=None):
    """Check the map expectation options; returns ``{name or wwid: int}``; raises InputError naming the field."""
    if min_map_paths is not None and (isinstance(min_map_paths, bool) or not isinstance(min_map_paths, int)
                                      or min_map_paths < 1):
        raise InputError("min_map_paths", "must be an integer >= 1, got %r" % (min_map_paths,))
    out = {}
    for key, value in (map_min_paths or {}).items():
        field = "map_min_paths.%s" % key
        if isinstance(value, bool):
            raise InputError(field, "must be an integer >= 0, got %r" % (value,))
        try:
            out[str(key)] = int(value)
        except (TypeError, ValueError):
            raise InputError(field, "must be an integer >= 0 (the map's alias or WWID as key), got %r" % (value,))
        if out[str(key)] < 0:
            raise InputError(field, "must be an integer >= 0, got %r" % (value,))
    return out


def evaluate_maps(session_entries, maps, dm_status=None, min_map_paths=None, map_min_paths=None,
                  no_last_path=False, expect_multipath=False):
    """Path health of dm-multipath maps (``_dm.read_maps``) joined with the session reports of :func:`evaluate`.

    Returns ``(map_reports, problems)``.  Findings: fewer healthy paths than required (``map_min_paths`` by alias
    or WWID, else ``min_map_paths``), a map on its last path (``no_last_path``), a map with no healthy path (always),
    paths that disagree on WWID or size (a LUN mix-up), and with ``expect_multipath`` every iSCSI LUN's block
    device that is not a path of any map."""
    by_block = {}
    for entry in session_entries:
        for dev in entry["devices"]:
            if dev.get("block"):
                by_block[dev["block"]] = (entry, dev)
    dm_status = dm_status or {}
    map_min_paths = map_min_paths or {}
    reports, problems = [], []
    in_maps = set()
    for m in maps:
        paths = [_path_report(p, by_block, dm_status.get(m["name"], {})) for p in m["paths"]]
        in_maps.update(p["device"] for p in paths)
        healthy = sum(1 for p in paths if p["healthy"])
        required = map_min_paths.get(m["name"], map_min_paths.get(m["wwid"], min_map_paths))
        findings = []
        if not paths or healthy == 0:
            findings.append("no healthy path (%d path%s)" % (len(paths), "" if len(paths) == 1 else "s"))
        elif required is not None and healthy < required:
            findings.append("%d healthy path%s of %d; %d required"
                            % (healthy, "" if healthy == 1 else "s", len(paths), required))
        elif no_last_path and healthy == 1:
            findings.append("on its last healthy path (%s)" % next(p["device"] for p in paths if p["healthy"]))
        wwids = sorted(set(p["wwid"] for p in paths if p["wwid"]))
        if len(wwids) > 1 or (wwids and wwids[0] != m["wwid"]):
            findings.append("paths report WWID %s, the map %s (a LUN mix-up)" % (", ".join(wwids), m["wwid"]))
        sizes = sorted(set(p["size_sectors"] for p in paths if p["size_sectors"] is not None))
        if len(sizes) > 1:
            findings.append("paths differ in size (%s sectors)" % ", ".join(str(s) for s in sizes))
        reports.append({"name": m["name"], "wwid": m["wwid"], "dm": m["dm"], "size_sectors": m["size_sectors"],
                        "healthy_paths": healthy, "total_paths": len(paths), "required": required,
                        "healthy": not findings, "paths": paths, "problems": findings})
        for finding in findings:
            problems.append({"kind": "map", "sid": None, "target": None, "portal": None, "iface": None,
                             "map": m["name"], "message": "multipath map %s: %s" % (m["name"], finding)})
    if expect_multipath:
        for block in sorted(set(by_block) - in_maps):
            entry, dev = by_block[block]
            problems.append({"kind": "not_multipathed", "sid": entry["sid"], "target": entry["target"],
                             "portal": entry["portal"], "iface": entry["iface"], "map": None,
                             "message": "%s (LUN %s of %s via %s) is not a path of any multipath map"
                                        % (block, dev.get("lun"), entry["target"], entry["portal"])})
    return reports, problems


def can_go_down(map_reports, portal=None, iface=None):
    """For each map: does it keep a healthy path that goes neither through ``portal`` (``address:port``, or an
    address for every port) nor through ``iface``?  ``[{map, wwid, survives, remaining: [devices], through:
    [devices]}]``."""
    def through(p):
        if portal is not None and p["portal"] is not None:
            if p["portal"] == portal or p["portal"].rsplit(":", 1)[0].strip("[]") == portal.strip("[]"):
                return True
        return iface is not None and p["iface"] == iface
    out = []
    for m in map_reports:
        gone = [p["device"] for p in m["paths"] if through(p)]
        remaining = [p["device"] for p in m["paths"] if p["healthy"] and p["device"] not in gone]
        out.append({"map": m["name"], "wwid": m["wwid"], "survives": bool(remaining), "remaining": remaining,
                    "through": gone})
    return out
