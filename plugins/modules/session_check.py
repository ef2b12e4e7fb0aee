#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: session_check
short_description: Check that the host's iSCSI sessions are healthy, optionally waiting until they are
version_added: 0.1.0
description:
  - Reads the kernel's iSCSI sessions from sysfs (C(/sys/class/iscsi_session), the sessions' connections, SCSI hosts,
    LUNs, block devices and SCSI device states) and reports per session its target, portal, iface, session state,
    connection state, devices, device states and why it is unhealthy.
  - Healthy means every session is C(LOGGED_IN), each of its connections is C(up) and every SCSI device of the
    session is C(running). A host without sessions is healthy unless an expectation says otherwise.
  - Optional expectations make the check stricter; see O(expect_automatic_nodes), O(min_paths),
    O(target_min_paths) and O(targets).
  - With O(wait) the module polls until the host is healthy or the time is up, then returns (or fails) with the
    last report. A recovered session is seen within one O(wait.interval). Polls after the first read only what
    changes (session, connection and device states, C(recovery_tmo)); a session's target, portal and iface are kept
    from the poll that first saw it logged in (the kernel never reuses a session id before a reboot).
  - Hosts with many sessions (512 or more) are read by one forked process per CPU (at most 8), in parallel.
  - With O(check_config) it also checks that the host's iSCSI configuration parses and validates (the initiator name
    file, C(iscsid.conf), every node record), so that a restarted iscsid would start and log in again.
  - With O(probe) it also logs in to the target of every node record (or of the records O(probe_targets) and
    O(probe_portals) select) with the collection's pure-Python iSCSI initiator, in a separate session with its own
    random ISID, using the CHAP settings stored in the record; lists the LUNs (C(REPORT LUNS), C(READ CAPACITY))
    and logs out. The result per portal (reachable, authenticated, LUNs and sizes, or the error) is in RV(probes);
    a portal that refuses the login makes the host unhealthy. The kernel's sessions are not touched.
  - dm-multipath maps (a device-mapper device whose uuid starts with C(mpath-)) are reported in RV(maps) with their
    paths (per path the sd device, H:C:T:L, the iSCSI session, portal and iface behind it, the SCSI device state and
    the path state device-mapper keeps, C(A) active or C(F) failed). A path is healthy when its SCSI device is
    C(running), its session C(LOGGED_IN) and device-mapper has not failed it. A map without a healthy path makes the
    host unhealthy; O(min_map_paths), O(map_min_paths), O(no_last_path) and O(expect_multipath) make it stricter, and
    O(going_down) answers "can this portal (or iface) go down?" for every map.
  - Never changes anything on the host but the metrics file of O(metrics_path) when that is set (monitoring output,
    not configuration; C(changed) stays V(false)). It runs no C(iscsiadm) (on Debian C(iscsiadm -m session)
    socket-activates iscsid) and does not talk to iscsid, so it is safe while iscsid restarts or is stopped. The only
    command it may run is the read-only C(dmsetup status --target multipath), and only on a host that has multipath
    maps.
  - Tolerates sessions that vanish during the scan, attributes that cannot be read (C(EACCES), C(ENOTCONN)),
    attributes missing on older kernels, C((null)) values and C(recovery_tmo) V(off).
author:
  - openiscsi.initiator contributors (@openiscsi)
options:
  wait:
    description:
      - Poll until the host is healthy, for at most O(wait.timeout) seconds.
      - Without it the state is checked once.
      - Configuration problems found by O(check_config) are not waited for (they do not fix themselves).
    type: dict
    suboptions:
      timeout:
        description: Seconds to wait for health.
        type: float
        default: 60
      interval:
        description: Seconds between two polls (at least V(0.2)).
        type: float
        default: 1
  fail_on_unhealthy:
    description:
      - Fail the task when the host is not healthy (after O(wait)). The report is returned either way.
    type: bool
    default: true
  expect_automatic_nodes:
    description:
      - Every node record with C(node.startup = automatic) must have a session (matched by target, portal and
        iface; a static record's tpgt V(-1) matches any portal group).
    type: bool
    default: false
  min_paths:
    description:
      - Every target that has a session (or is named in O(targets) or O(target_min_paths)) must have at least this
        many healthy sessions, for example V(2) for multipath with two portals.
    type: int
  target_min_paths:
    description:
      - Per-target minimum number of healthy sessions, C(target name -> number); overrides O(min_paths).
      - A target named here must be present when its number is at least V(1).
    type: dict
  targets:
    description:
      - Targets that must be present, each with at least one healthy session (or its O(min_paths)).
    type: list
    elements: str
  check_config:
    description:
      - Also check that C(/etc/iscsi/initiatorname.iscsi), C(/etc/iscsi/iscsid.conf) and every node record parse
        and validate. Errors make the host unhealthy; warnings are returned in RV(config).
    type: bool
    default: false
  probe:
    description:
      - Also log in to the targets of the node records with the pure-Python initiator (see the description) and
        report the result per target portal in RV(probes). Every probe that does not log in makes the host unhealthy.
      - The CHAP secrets are read from the node record files (C(node.session.auth.*)) only to answer the target's
        challenge; they are never returned, logged or put in a message.
      - The probes run once, after the session check (and its O(wait)); they are not repeated while waiting.
      - Needs the host's initiator name in C(/etc/iscsi/initiatorname.iscsi); neither iscsid nor the kernel's
        C(iscsi_tcp) module is needed.
    type: bool
    default: false
  probe_targets:
    description: With O(probe), probe only the records of these targets.
    type: list
    elements: str
  probe_portals:
    description:
      - With O(probe), probe only the records of these portals, each C(host[:port]) (IPv6 in brackets, port 3260 by
        default).
    type: list
    elements: str
  probe_timeout:
    description:
      - With O(probe), seconds each network operation of a probe may take (connect, each answer); one probe takes at
        most six times as long in all. Up to four portals are probed at once.
    type: float
    default: 5
  metrics_path:
    description:
      - Also write the verdict as Prometheus metrics in the text format of node_exporter's textfile collector to this
        file, for example C(/var/lib/prometheus/node-exporter/iscsi.prom) (the collector reads only C(*.prom) files
        of its C(--collector.textfile.directory)). Written after the check (and its O(wait) and O(probe)), whether
        the host is healthy or not, before the task fails.
      - The file is replaced atomically (a temporary file in the same directory, then a rename), so the collector
        never reads half a file. A new file gets mode C(0644); an existing one keeps its owner and mode. The
        directory must exist.
      - 'Metrics, all gauges: C(iscsi_check_timestamp_seconds) (time of the check), C(iscsi_healthy) (the verdict),
        C(iscsi_sessions), C(iscsi_problems{kind}), per session C(iscsi_session_healthy),
        C(iscsi_session_state{state}) (a state set: 1 for the current state, 0 for the others),
        C(iscsi_session_recovery_timeout_seconds) (C(+Inf) for V(off)), per connection
        C(iscsi_connection_state{cid,state}), per SCSI device C(iscsi_device_state{hctl,lun,device,state}), per
        target C(iscsi_target_paths), C(iscsi_target_paths_healthy) and C(iscsi_target_paths_required), per
        multipath map C(iscsi_multipath_paths{map,wwid}), C(iscsi_multipath_paths_healthy) and
        C(iscsi_multipath_paths_required).'
      - Session, connection and device series carry the labels C(sid), C(target), C(portal) and C(iface). No CHAP
        setting and nothing from the probes but their count of problems is written.
      - Writing this file is monitoring output, not a change of the host's configuration, so the task still reports
        C(changed=false) (the file changes at every run, since it holds the time of the check).
      - In check mode the file is not written (RV(metrics.written) is V(false)); the check itself runs as usual.
      - The role C(openiscsi.initiator.initiator) can install a systemd timer that writes the same file every few
        seconds without Ansible (C(initiator_metrics_enabled)).
    type: path
  min_map_paths:
    description:
      - Every multipath map must have at least this many healthy paths, for example V(2) on a host with two
        storage networks.
    type: int
  map_min_paths:
    description:
      - Per-map minimum number of healthy paths, C(alias or WWID -> number); overrides O(min_map_paths).
    type: dict
  no_last_path:
    description:
      - A map with exactly one healthy path left is a problem (it is on its last path).
    type: bool
    default: false
  expect_multipath:
    description:
      - Every block device of an iSCSI LUN must be a path of a multipath map (no bare C(sdX) where a map is
        expected).
    type: bool
    default: false
  going_down:
    description:
      - Before a maintenance, "can this portal or iface go down?". For every map RV(going_down) says whether it keeps
        a healthy path that goes neither through O(going_down.portal) nor through O(going_down.iface); a map that
        would lose its last healthy path makes the host unhealthy.
    type: dict
    suboptions:
      portal:
        description: A portal C(address:port), or an address (every port of it). IPv6 in brackets with a port.
        type: str
      iface:
        description: An iface name.
        type: str
extends_documentation_fragment:
  - openiscsi.initiator.attributes
  - openiscsi.initiator.attributes.INFO_MODULE
notes:
  - Session states as the kernel spells them. C(FAILED) means the connection is lost and the kernel holds I/O for
    up to the session's C(recovery_tmo) while iscsid reconnects (devices C(blocked)). C(FREE) means the recovery
    timeout expired (devices C(transport-offline), I/O fails) or a login is not complete.
  - A connection whose C(state) attribute does not exist (older kernels) counts as up when its session is logged in.
  - Node records are read from the node database in use (C(/etc/iscsi) on Debian 12, C(/var/lib/iscsi) on Debian 13).
seealso:
  - module: openiscsi.initiator.info
  - module: openiscsi.initiator.probe
"""

EXAMPLES = r"""
- name: Fail unless every iSCSI session is logged in with its devices running
  openiscsi.initiator.session_check:

- name: Wait up to two minutes for the sessions to recover, polling every 0.5 s
  openiscsi.initiator.session_check:
    wait:
      timeout: 120
      interval: 0.5

- name: Multipath host - two healthy paths to the database target, every automatic record logged in
  openiscsi.initiator.session_check:
    expect_automatic_nodes: true
    target_min_paths:
      iqn.2025-01.com.example:db: 2

- name: Multipath host - every map on at least two healthy paths, no bare iSCSI disk in use
  openiscsi.initiator.session_check:
    min_map_paths: 2
    expect_multipath: true

- name: Before switch A's maintenance - fail naming every map whose last healthy path goes through 192.0.2.10
  openiscsi.initiator.session_check:
    going_down:
      portal: 192.0.2.10

- name: Report only, never fail
  openiscsi.initiator.session_check:
    fail_on_unhealthy: false
    check_config: true
  register: iscsi_health

- name: Show why sessions are unhealthy
  ansible.builtin.debug:
    msg: "{{ iscsi_health.problems | map(attribute='message') | list }}"
  when: not iscsi_health.healthy

- name: Before an upgrade - sessions healthy AND every record's target still accepts its stored CHAP credentials
  openiscsi.initiator.session_check:
    probe: true
    probe_timeout: 3
  register: iscsi_preflight

- name: Probe only the database target's records, report without failing
  openiscsi.initiator.session_check:
    probe: true
    probe_targets: [iqn.2025-01.com.example:db]
    fail_on_unhealthy: false
  register: db_probe

- name: Check, and publish the verdict for Prometheus (node_exporter's textfile collector)
  openiscsi.initiator.session_check:
    fail_on_unhealthy: false
    metrics_path: /var/lib/prometheus/node-exporter/iscsi.prom

- name: Show the LUN sizes each portal reported
  ansible.builtin.debug:
    msg: "{{ item.portal }}: {{ item.luns | map(attribute='size_bytes', default=0) | list }}"
  loop: "{{ db_probe.probes }}"
"""

RETURN = r"""
healthy:
  description: Whether every session is healthy and every expectation (and with O(check_config) the configuration) holds.
  returned: always
  type: bool
  sample: false
summary:
  description: One line saying so, or listing the problems (host, session, why).
  returned: always
  type: str
  sample: >-
    unhealthy (0 of 1 sessions healthy): session 3 (iqn.2025-01.com.example:db via 192.0.2.10:3260, iface default):
    state FAILED (connection lost; ...), connection 3:0 failed, devices blocked (I/O held while the session
    recovers): sdb (4:0:0:1)
sessions:
  description: One entry per session, by session number.
  returned: always
  type: list
  elements: dict
  contains:
    sid:
      description: Session number (C(sessionN) in sysfs).
      type: int
      sample: 3
    target:
      description: Target name.
      type: str
      sample: iqn.2025-01.com.example:db
    portal:
      description: Persistent portal C(address:port) (what the node record names), IPv6 in brackets.
      type: str
      sample: 192.0.2.10:3260
    tpgt:
      description: Target portal group tag.
      type: int
      sample: 1
    iface:
      description: The open-iscsi iface of the session.
      type: str
      sample: default
    state:
      description: Session state, V(LOGGED_IN), V(FAILED) or V(FREE) (V(null) when unreadable).
      type: str
      sample: LOGGED_IN
    connection_state:
      description: State of the session's connection(s), e.g. V(up), V(failed), V(down); V(null) without connections.
      type: str
      sample: up
    connections:
      description: Each connection with C(cid), C(state) and current C(portal) (V(null) while it is down).
      type: list
      elements: dict
    devices:
      description: The session's SCSI devices with C(hctl), C(lun), C(block) (V(null) for LUNs without a block device)
        and C(state).
      type: list
      elements: dict
    device_states:
      description: The distinct device states.
      type: list
      elements: str
      sample: [running]
    recovery_tmo:
      description: The session's recovery timeout as sysfs shows it (seconds or V(off)).
      type: str
      sample: '120'
    host:
      description: The SCSI host (C(hostH)).
      type: str
      sample: host4
    healthy:
      description: Whether this session is healthy.
      type: bool
      sample: true
    problems:
      description: Why it is not.
      type: list
      elements: str
      sample: []
problems:
  description: Every problem, each with C(kind) (V(session), V(missing_session), V(paths), V(config), V(probe),
    V(map), V(not_multipathed), V(going_down)), C(sid), C(target), C(portal), C(iface) and C(message); map problems
    also name the C(map).
  returned: always
  type: list
  elements: dict
paths:
  description: Per target, C(healthy) and C(total) sessions and the C(required) number (V(null) when none is required).
  returned: always
  type: dict
maps:
  description: The dm-multipath maps, each with C(name) (alias or WWID), C(wwid), C(dm), C(size_sectors),
    C(healthy_paths), C(total_paths), C(required), C(healthy), C(problems) and C(paths) (C(device), C(hctl), C(state)
    of the SCSI device, C(dm_state) V(A)/V(F) or V(null) when unknown, C(sid), C(target), C(portal), C(iface),
    C(session_state), C(size_sectors), C(wwid), C(healthy), C(problems)).
  returned: always
  type: list
  elements: dict
  sample: [{name: data, wwid: 36001405a1b2c3d4e5f60718293a4b5c6, healthy_paths: 1, total_paths: 2, healthy: true}]
going_down:
  description: With O(going_down), per map whether it C(survives) (keeps a healthy path elsewhere), the devices
    C(remaining) and those going C(through) the portal or iface.
  returned: when O(going_down) is given
  type: list
  elements: dict
  sample: [{map: data, wwid: 36001405a1b2c3d4e5f60718293a4b5c6, survives: false, remaining: [], through: [sdb]}]
counts:
  description: Numbers of C(sessions), C(healthy) and C(unhealthy) sessions.
  returned: always
  type: dict
  sample: {sessions: 2, healthy: 2, unhealthy: 0}
config:
  description: With O(check_config), the configuration findings (C(file), C(line), C(severity), C(code), C(message)).
  returned: when O(check_config=true)
  type: list
  elements: dict
probes:
  description:
    - With O(probe), one entry per target portal probed (node records of several ifaces merge), as
      M(openiscsi.initiator.probe) returns them.
  returned: when O(probe=true)
  type: list
  elements: dict
  contains:
    target:
      description: Target name.
      type: str
      sample: iqn.2025-01.com.example:db
    portal:
      description: C(address:port), IPv6 in brackets.
      type: str
      sample: 192.0.2.10:3260
    tpgt:
      description: Portal group tag of the node record.
      type: int
      sample: 1
    ifaces:
      description: The ifaces of the node records probed together.
      type: list
      elements: str
      sample: [default]
    reachable:
      description: Whether the portal answered at the iSCSI level.
      type: bool
      sample: true
    authenticated:
      description: Whether the login (authentication and authorization) succeeded.
      type: bool
      sample: true
    auth_method:
      description: V(CHAP) or V(None) as negotiated.
      type: str
      sample: CHAP
    mutual_chap:
      description: Whether the target proved its identity too.
      type: bool
      sample: false
    luns:
      description: The LUNs with C(lun), C(device_type), C(vendor), C(product) and, for disks, C(size_bytes),
        C(block_size), C(blocks).
      type: list
      elements: dict
    error:
      description: Why the probe failed (C(message), C(kind), C(retryable), C(status) for login errors), V(null) on
        success.
      type: dict
      sample: {message: "login to iqn.2025-01.com.example:db failed with status 0x0201 (authentication failure): ...",
               kind: login, retryable: false, status: "0201"}
probe_summary:
  description: With O(probe), numbers of C(total), C(reachable), C(authenticated) and C(failed) probes, and the
    C(initiator_name) used.
  returned: when O(probe=true)
  type: dict
  sample: {total: 2, reachable: 2, authenticated: 1, failed: 1, initiator_name: "iqn.1993-08.org.debian:01:db1"}
metrics:
  description: With O(metrics_path), the C(path) written and whether it was C(written) (V(false) in check mode).
  returned: when O(metrics_path) is set
  type: dict
  sample: {path: /var/lib/prometheus/node-exporter/iscsi.prom, written: true}
  contains:
    path:
      description: The metrics file (O(metrics_path)).
      type: str
      sample: /var/lib/prometheus/node-exporter/iscsi.prom
    written:
      description: Whether the file was replaced (V(false) in check mode).
      type: bool
      sample: true
wait:
  description: How the check went - C(polls), C(elapsed) seconds, C(timed_out), C(unhealthy_for) (seconds from the
    first unhealthy poll to the healthy one, V(null) when the first poll was healthy) and C(checked_at) (epoch time
    of the last poll).
  returned: always
  type: dict
  sample: {polls: 7, elapsed: 3.01, timed_out: false, unhealthy_for: 3.0, checked_at: 1764000000.5}
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.openiscsi.initiator.plugins.module_utils import _dm, _fileio, _health, _metrics, _nodedb, _sysfs
from ansible_collections.openiscsi.initiator.plugins.module_utils import _iscsi_probe
from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._names import normalize_name
from ansible_collections.openiscsi.initiator.plugins.module_utils._portal import parse_portal

ROOT = "/"  # tests point this at a captured tree
MIN_INTERVAL = 0.2
INITIATORNAME = "etc/iscsi/initiatorname.iscsi"
ISCSID_CONF = "etc/iscsi/iscsid.conf"


def _read(root, rel):
    try:
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return "\0unreadable: %s" % exc.strerror


def config_report(root="/", records=None):
    """Configuration findings under *root* (node records read unless given)."""
    names = _read(root, INITIATORNAME)
    conf = _read(root, ISCSID_CONF)
    found = []
    for rel, text in ((INITIATORNAME, names), (ISCSID_CONF, conf)):
        if text is not None and text.startswith("\0unreadable: "):
            found.append({"file": "/" + rel, "line": None, "severity": "error", "code": "unreadable",
                          "message": "cannot read /%s: %s" % (rel, text[len("\0unreadable: "):])})
    if names is not None and names.startswith("\0"):
        names = ""
    if conf is not None and conf.startswith("\0"):
        conf = ""
    if records is None:
        records = _nodedb.read_nodes(root)
    return found + _health.config_findings(names, conf, records)


def validate_probe(params):
    """``None`` without O(probe), else ``{targets, portals, timeout}`` (names normalized, portals as keys)."""
    if not params.get("probe"):
        return None
    targets = None
    if params.get("probe_targets") is not None:
        targets = set(normalize_name(t, "probe_targets[%d]" % i) for i, t in enumerate(params["probe_targets"]))
    portals = None
    if params.get("probe_portals") is not None:
        portals = set(parse_portal(p, "probe_portals[%d]" % i).key() for i, p in enumerate(params["probe_portals"]))
    timeout = params.get("probe_timeout")
    if timeout is None or not timeout > 0:
        raise InputError("probe_timeout", "must be a positive number of seconds, got %r" % (timeout,))
    return {"targets": targets, "portals": portals, "timeout": float(timeout)}


def select_requests(requests, targets=None, portals=None):
    """The probe requests of the wanted targets and portals (``None``: all)."""
    out = []
    for request in requests:
        if targets is not None and request["target"] not in targets:
            continue
        if portals is not None:
            try:
                key = parse_portal(request["portal"], "portal").key()
            except InputError:
                key = None
            if key not in portals:
                continue
        out.append(request)
    return out


def run_probes(root, spec, run=None):
    """Probe the selected node records' targets.  Returns ``(probes, summary, problems)``; never raises for
    network trouble (each probe carries its error)."""
    run = run or _iscsi_probe.run_requests
    initiator_name = _iscsi_probe.host_initiator_name(root)
    if not initiator_name:
        msg = ("probe: %s holds no valid InitiatorName, so no login can be tried (configure it with "
               "openiscsi.initiator.initiator_name)" % _iscsi_probe.INITIATORNAME_PATH)
        problem = {"kind": "probe", "sid": None, "target": None, "portal": None, "iface": None, "message": msg}
        return [], dict(_iscsi_probe.summarize([]), initiator_name=None), [problem]
    requests, _db = _iscsi_probe.node_requests(root)
    requests = select_requests(requests, spec["targets"], spec["portals"])
    probes = run(requests, initiator_name, luns=True, timeout=spec["timeout"], total_timeout=6 * spec["timeout"])
    problems = []
    for result in probes:
        if not result["authenticated"]:
            problems.append({"kind": "probe", "sid": None, "target": result["target"], "portal": result["portal"],
                             "iface": ",".join(i for i in result.get("ifaces") or [] if i) or None,
                             "message": "probe %s" % _iscsi_probe.describe_failure(result)})
    if not requests and (spec["targets"] or spec["portals"]):
        problems.append({"kind": "probe", "sid": None, "target": None, "portal": None, "iface": None,
                         "message": "probe: no node record matches probe_targets/probe_portals"})
    return probes, dict(_iscsi_probe.summarize(probes), initiator_name=initiator_name), problems


def validate_going_down(params):
    """``going_down`` checked: ``None`` or ``{portal, iface}``; the portal as the session reports spell it
    (``address:port``, IPv6 in brackets), or the address alone (every port of it) when no port was given."""
    spec = params.get("going_down")
    if not spec:
        return None
    portal, iface = spec.get("portal"), spec.get("iface")
    if not portal and not iface:
        raise InputError("going_down", "give a portal, an iface or both")
    if portal:
        parsed = parse_portal(portal, "going_down.portal")
        text = portal.strip()
        has_port = text.rsplit("]", 1)[-1].startswith(":") if text.startswith("[") else ":" in text
        portal = _health.format_portal(parsed.address, parsed.port) if has_port else parsed.host()
    return {"portal": portal or None, "iface": iface or None}


def validate(params):
    """Checked options: ``(target_min_paths, targets, wait)``; raises InputError naming the field."""
    paths, targets = _health.validate_expectations(params.get("min_paths"), params.get("target_min_paths"),
                                                   params.get("targets"))
    wait = params.get("wait")
    if wait is not None:
        if wait.get("timeout") is None or wait["timeout"] < 0:
            raise InputError("wait.timeout", "must be a number of seconds >= 0, got %r" % (wait.get("timeout"),))
        if wait.get("interval") is None or wait["interval"] < MIN_INTERVAL:
            raise InputError("wait.interval", "must be at least %s seconds, got %r" % (MIN_INTERVAL,
                                                                                       wait.get("interval")))
    return paths, targets, wait


def validate_metrics_path(path):
    """The checked O(metrics_path) (``None`` when unset); raises InputError naming the field."""
    if path is None:
        return None
    if not os.path.isabs(path) or path.endswith("/"):
        raise InputError("metrics_path", "must be the absolute path of a file, got %r" % (path,))
    if not path.endswith(".prom"):
        raise InputError("metrics_path", "must end in .prom (node_exporter's textfile collector reads only *.prom "
                                         "files), got %r" % (path,))
    return path


def run_check(params, root="/", clock=None, sleep=None, probe_runner=None, dm_status=None):
    """The module's work under *root* (tests point it at fixture trees).  Returns the result dict (no ``failed``).
    *dm_status*: a callable giving ``dmsetup status --target multipath``'s output (called only when there are
    multipath maps), or ``None`` (device-mapper's path states then stay unknown)."""
    paths, targets, wait = validate(params)
    probe_spec = validate_probe(params)
    map_paths = _health.validate_map_expectations(params.get("min_map_paths"), params.get("map_min_paths"))
    going_down = validate_going_down(params)
    expect = bool(params.get("expect_automatic_nodes"))
    records = _nodedb.read_nodes(root) if (expect or params.get("check_config")) else None
    config = None
    config_problems = []
    if params.get("check_config"):
        config = config_report(root, records)
        for f in config:
            if f["severity"] == "error":
                where = "%s line %s" % (f["file"], f["line"]) if f.get("line") else f["file"]
                config_problems.append({"kind": "config", "sid": None, "target": None, "portal": None,
                                        "iface": None, "message": "%s: %s" % (where, f["message"])})

    identities = {}  # what never changes while a session lives, kept from one poll to the next

    def check():
        report = _health.evaluate(_sysfs.read_sessions(root, brief=True, cache=identities), records,
                                  expect_automatic=expect,
                                  min_paths=params.get("min_paths"), target_min_paths=paths, targets=targets)
        maps = _dm.read_maps(root)
        states = _dm.parse_dmsetup_status(dm_status()) if maps and dm_status is not None else {}
        report["maps"], map_problems = _health.evaluate_maps(
            report["sessions"], maps, states, min_map_paths=params.get("min_map_paths"), map_min_paths=map_paths,
            no_last_path=params.get("no_last_path"), expect_multipath=params.get("expect_multipath"))
        if going_down is not None:
            report["going_down"] = _health.can_go_down(report["maps"], **going_down)
            what = " and ".join("%s %s" % (kind, going_down[kind]) for kind in ("portal", "iface")
                                if going_down[kind])
            map_problems += [{"kind": "going_down", "sid": None, "target": None, "portal": going_down["portal"],
                              "iface": going_down["iface"], "map": a["map"],
                              "message": "multipath map %s would lose its last healthy path if %s went down "
                                         "(paths through it: %s)" % (a["map"], what, ", ".join(a["through"]) or "-")}
                             for a in report["going_down"] if not a["survives"]]
        if map_problems:
            report["problems"] = report["problems"] + map_problems
            report["healthy"] = False
            report["summary"] = _health.summarize(report)
        if config_problems:
            report["problems"] = config_problems + report["problems"]
            report["healthy"] = False
            report["summary"] = _health.summarize(report)
        return report

    if wait is None or config_problems:
        report = _health.wait_for_health(check, 0, MIN_INTERVAL, clock=clock, sleep=sleep)
    else:
        report = _health.wait_for_health(check, wait["timeout"], wait["interval"], clock=clock, sleep=sleep)
    if config is not None:
        report["config"] = config
    if probe_spec is not None:
        probes, summary, problems = run_probes(root, probe_spec, run=probe_runner)
        report["probes"] = probes
        report["probe_summary"] = summary
        if problems:
            report["problems"] = report["problems"] + problems
            report["healthy"] = False
            report["summary"] = _health.summarize(report)
        else:
            report["summary"] += "; probe: %d of %d target portal%s accepted the login" % (
                summary["authenticated"], summary["total"], "" if summary["total"] == 1 else "s")
    return report


def run_module():
    module = AnsibleModule(
        argument_spec=dict(
            wait=dict(type="dict", options=dict(
                timeout=dict(type="float", default=60),
                interval=dict(type="float", default=1),
            )),
            fail_on_unhealthy=dict(type="bool", default=True),
            expect_automatic_nodes=dict(type="bool", default=False),
            min_paths=dict(type="int"),
            target_min_paths=dict(type="dict"),
            targets=dict(type="list", elements="str"),
            check_config=dict(type="bool", default=False),
            probe=dict(type="bool", default=False),
            probe_targets=dict(type="list", elements="str"),
            probe_portals=dict(type="list", elements="str"),
            probe_timeout=dict(type="float", default=5.0),
            metrics_path=dict(type="path"),
            min_map_paths=dict(type="int"),
            map_min_paths=dict(type="dict"),
            no_last_path=dict(type="bool", default=False),
            expect_multipath=dict(type="bool", default=False),
            going_down=dict(type="dict", options=dict(portal=dict(type="str"), iface=dict(type="str"))),
        ),
        supports_check_mode=True,
    )

    def dm_status():
        dmsetup = module.get_bin_path("dmsetup")
        if not dmsetup:
            return ""
        rc, out, _err = module.run_command([dmsetup, "status", "--target", "multipath"],
                                           environ_update={"LANG": "C", "LC_ALL": "C"})
        return out if rc == 0 else ""

    try:
        metrics_path = validate_metrics_path(module.params.get("metrics_path"))
        result = run_check(module.params, ROOT, dm_status=dm_status)
    except InputError as exc:
        module.fail_json(msg=str(exc))
    if metrics_path is not None:
        # Monitoring output, not configuration: changed stays false (see the option's documentation).
        _fileio.write_atomic(module, metrics_path, _metrics.render(result))
        result["metrics"] = {"path": metrics_path, "written": not module.check_mode}
    if module.params["fail_on_unhealthy"] and not result["healthy"]:
        module.fail_json(msg="iSCSI %s" % result["summary"], changed=False, **result)
    module.exit_json(changed=False, **result)


def main():
    run_module()


if __name__ == "__main__":
    main()
