# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""The health report of :func:`_health.evaluate` as Prometheus metrics, in the text exposition format that
node_exporter's textfile collector reads (pure: no I/O here).

:func:`render` takes the report (with ``wait.checked_at``, which :func:`_health.wait_for_health` adds) and returns
the text.  Every metric is a gauge with ``# HELP`` and ``# TYPE`` lines, every series appears once, label values are
escaped (backslash, double quote, newline).  No sample carries a timestamp (the textfile collector refuses them);
the time of the check is a metric of its own.

Metrics (label sets in braces)::

    iscsi_check_timestamp_seconds                        unix time of the check
    iscsi_healthy                                        1 when the whole verdict is healthy (sessions and
                                                         expectations), else 0
    iscsi_sessions                                       number of sessions
    iscsi_problems{kind}                                 problems per kind (every kind of PROBLEM_KINDS, 0 if none)
    iscsi_session_healthy{sid,target,portal,iface}       1 when the session and its connections and devices are fine
    iscsi_session_state{sid,target,portal,iface,state}   state set: 1 for the session's state, 0 for the others
    iscsi_session_recovery_timeout_seconds{sid,...}      recovery_tmo (+Inf for "off"; no sample when unreadable)
    iscsi_connection_state{sid,...,cid,state}            state set per connection
    iscsi_device_state{sid,...,hctl,lun,device,state}    state set per SCSI device (device: block device name or "")
    iscsi_target_paths{target}                           sessions per target
    iscsi_target_paths_healthy{target}                   healthy sessions per target
    iscsi_target_paths_required{target}                  required healthy sessions (only when one is required)
    iscsi_multipath_paths{map,wwid}                      paths of the dm-multipath map
    iscsi_multipath_paths_healthy{map,wwid}              healthy paths (SCSI device running, session logged in,
                                                         not failed in device-mapper)
    iscsi_multipath_paths_required{map,wwid}             required healthy paths (only when one is required)

A state set lists every state the kernel documents plus the current one when it is not among them (``unknown``
when the state could not be read), so the number of series is bounded by the sessions, connections and devices.
Session series carry ``sid`` (two sessions of one node record differ only by it) and the target, portal and iface,
so that an alert can name the path without a join.  Nothing secret is in the report, so nothing secret is here.

Standard library only, no ansible import.
"""

from __future__ import annotations

import math

PREFIX = "iscsi_"
SESSION_STATES = ("LOGGED_IN", "FAILED", "FREE")
CONNECTION_STATES = ("up", "down", "failed", "bound")
DEVICE_STATES = ("running", "blocked", "transport-offline", "offline", "created", "created-blocked", "quiesce",
                 "cancel", "deleted")
PROBLEM_KINDS = ("session", "missing_session", "paths", "config", "probe", "map", "not_multipathed", "going_down")
UNKNOWN = "unknown"


def escape_label(value):
    """A label value as the exposition format wants it between double quotes."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def escape_help(text):
    """A HELP text: backslash and newline escaped."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value):
    """A sample value: integers without a decimal point, floats as Python's shortest repr, +Inf/-Inf/NaN spelled
    as the format wants them."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def recovery_timeout(raw):
    """recovery_tmo as sysfs shows it -> seconds (``off`` = never times out = +Inf), ``None`` when unreadable."""
    if raw is None:
        return None
    text = str(raw).strip()
    if text == "off" or text == "-1":
        return math.inf
    try:
        return float(int(text))
    except ValueError:
        return None


class _Family(object):
    """One metric family: its HELP line, and its samples in the order added; a second sample of the same label set
    replaces nothing and is dropped (one sample per series)."""

    def __init__(self, name, help_text):
        self.name = PREFIX + name
        self.help = help_text
        self.samples = []
        self._seen = set()

    def add(self, labels, value):
        key = tuple(labels)
        if key in self._seen:
            return
        self._seen.add(key)
        self.samples.append((key, value))

    def state_set(self, labels, current, states):
        current = current or UNKNOWN
        for state in tuple(states) + (() if current in states else (current,)):
            self.add(tuple(labels) + (("state", state),), 1 if state == current else 0)

    def lines(self):
        out = ["# HELP %s %s" % (self.name, escape_help(self.help)), "# TYPE %s gauge" % self.name]
        for labels, value in self.samples:
            text = ",".join('%s="%s"' % (k, escape_label(v)) for k, v in labels)
            out.append("%s%s %s" % (self.name, "{%s}" % text if text else "", format_value(value)))
        return out


def _session_labels(entry):
    return (("sid", entry.get("sid")), ("target", entry.get("target")), ("portal", entry.get("portal")),
            ("iface", entry.get("iface")))


def render(report):
    """The metrics text of a health *report* (``_health.evaluate`` output, with ``wait`` from
    ``_health.wait_for_health``); ends with a newline."""
    fam = {}

    def family(name, help_text):
        fam[name] = _Family(name, help_text)
        return fam[name]

    checked = family("check_timestamp_seconds", "Unix time of the iSCSI health check that wrote these metrics.")
    healthy = family("healthy", "1 when every iSCSI session is healthy and every expectation of the check holds, "
                                "else 0.")
    count = family("sessions", "Number of iSCSI sessions the kernel has.")
    problems = family("problems", "Problems the iSCSI health check found, by kind.")
    s_healthy = family("session_healthy", "1 when the iSCSI session is LOGGED_IN, its connections are up and its "
                                          "SCSI devices are running, else 0.")
    s_state = family("session_state", "State of the iSCSI session as the kernel reports it (1 for the current "
                                      "state).")
    s_tmo = family("session_recovery_timeout_seconds", "The session's recovery_tmo: how long the kernel holds I/O "
                                                       "after the connection is lost (+Inf: off).")
    c_state = family("connection_state", "State of the iSCSI connection as the kernel reports it (1 for the "
                                         "current state).")
    d_state = family("device_state", "State of the SCSI device of the iSCSI session (1 for the current state).")
    t_paths = family("target_paths", "iSCSI sessions (paths) to the target.")
    t_healthy = family("target_paths_healthy", "Healthy iSCSI sessions (paths) to the target.")
    t_required = family("target_paths_required", "Healthy iSCSI sessions (paths) the check requires for the target.")
    m_paths = family("multipath_paths", "Paths of the dm-multipath map.")
    m_healthy = family("multipath_paths_healthy", "Healthy paths of the dm-multipath map (SCSI device running, "
                                                  "iSCSI session logged in, not failed in device-mapper).")
    m_required = family("multipath_paths_required", "Healthy paths the check requires for the dm-multipath map.")

    checked_at = (report.get("wait") or {}).get("checked_at")
    if checked_at is not None:
        checked.add((), float(checked_at))
    healthy.add((), 1 if report.get("healthy") else 0)
    sessions = report.get("sessions") or []
    count.add((), len(sessions))
    kinds = dict((kind, 0) for kind in PROBLEM_KINDS)
    for problem in report.get("problems") or []:
        kind = problem.get("kind") or UNKNOWN
        kinds[kind] = kinds.get(kind, 0) + 1
    for kind in kinds:
        problems.add((("kind", kind),), kinds[kind])

    for entry in sessions:
        labels = _session_labels(entry)
        s_healthy.add(labels, 1 if entry.get("healthy") else 0)
        s_state.state_set(labels, entry.get("state"), SESSION_STATES)
        tmo = recovery_timeout(entry.get("recovery_tmo"))
        if tmo is not None:
            s_tmo.add(labels, tmo)
        for conn in entry.get("connections") or ():
            c_state.state_set(labels + (("cid", conn.get("cid")),), conn.get("state"), CONNECTION_STATES)
        for dev in entry.get("devices") or ():
            d_state.state_set(labels + (("hctl", dev.get("hctl")), ("lun", dev.get("lun")),
                                        ("device", dev.get("block"))), dev.get("state"), DEVICE_STATES)

    for target in sorted(t for t in (report.get("paths") or {}) if t):
        numbers = report["paths"][target]
        labels = (("target", target),)
        t_paths.add(labels, numbers.get("total") or 0)
        t_healthy.add(labels, numbers.get("healthy") or 0)
        if numbers.get("required") is not None:
            t_required.add(labels, numbers["required"])

    for entry in report.get("maps") or ():
        labels = (("map", entry.get("name")), ("wwid", entry.get("wwid")))
        m_paths.add(labels, entry.get("total_paths") or 0)
        m_healthy.add(labels, entry.get("healthy_paths") or 0)
        if entry.get("required") is not None:
            m_required.add(labels, entry["required"])

    out = []
    for item in fam.values():
        if item.samples:
            out.extend(item.lines())
    return "\n".join(out) + "\n"
