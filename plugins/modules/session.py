#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: session
short_description: Log iSCSI node records in or out, wait for their disks, rescan LUNs
version_added: 0.1.0
description:
  - Logs in (V(logged_in)) or out (V(logged_out)) one node record (O(target) and O(portal), optionally O(iface)),
    every record of a target (O(target) alone) or every record of a portal (O(portal) alone).
  - Session state is read from the kernel (C(/sys/class/iscsi_session)), not from iscsiadm's text. Only a session in
    state C(LOGGED_IN) counts as logged in; a C(FAILED) one (connection lost, iscsid reconnecting) does not. Target
    names are compared whole, so C(...:disk1) never matches C(...:disk10).
  - After a login the module waits, at most O(timeout) seconds, until each session is C(LOGGED_IN), the kernel's LUN
    scan has finished and every disk LUN has its block device, and returns the devices (C(/dev/sdX) and their
    C(/dev/disk/by-path) links).
  - O(rescan=true) asks logged-in sessions to scan for newly mapped LUNs.
  - A logout is refused while any device of the session is in use - mounted, used as swap, or carrying a partition
    or a device-mapper/LVM/md holder that is - unless O(force=true).
  - Every iscsiadm exit code becomes a clear message; exit code 15 (session exists) counts as success for a login.
author:
  - openiscsi.initiator contributors (@openiscsi)
options:
  target:
    description:
      - Target name (IQN, EUI or NAA; compared case-insensitively, as a whole).
      - With O(portal), the records of this target at that portal; alone, every record of the target.
    type: str
    aliases: [targetname]
  portal:
    description:
      - Portal C(host[:port]), IPv6 in brackets (V([2001:db8::10]:3260)); the port defaults to V(3260).
      - Alone, every record at this portal (all its targets).
    type: str
  iface:
    description: Only the records (and sessions) bound to this iface record.
    type: str
  state:
    description: Whether the selected records should have a logged-in session.
    type: str
    choices: [logged_in, logged_out]
    default: logged_in
  timeout:
    description:
      - Seconds to wait after a login (or rescan) for the sessions and their disks, and after a logout for the
        sessions to go. V(0) does not wait.
    type: int
    default: 30
  wait_for_devices:
    description:
      - With V(false), a login waits only for C(LOGGED_IN), not for the LUN scan and the block devices.
    type: bool
    default: true
  rescan:
    description:
      - Rescan the logged-in sessions for new LUNs (C(iscsiadm -m session -r SID --rescan)) and report the new
        devices. Never done in check mode. Only with O(state=logged_in).
    type: bool
    default: false
  force:
    description:
      - Log out even though devices of the session are mounted or otherwise in use. Data not yet written is lost.
        Only with O(state=logged_out).
    type: bool
    default: false
  option_names:
    description:
      - How the module's messages name its options, for a caller that sets them under names of its own (the
        C(openiscsi.initiator.initiator) role passes its variables). Only the wording of messages changes.
    type: dict
    suboptions:
      force:
        description:
          - The name for O(force) in the refusal to log out devices in use, for example V(initiator_force_logout).
        type: str
      auth:
        description:
          - The name for the CHAP settings of a record in the message of a failed CHAP login, for example
            V(initiator_nodes[].auth). Defaults to the O(openiscsi.initiator.node#module:auth) option of
            M(openiscsi.initiator.node).
        type: str
extends_documentation_fragment:
  - openiscsi.initiator.attributes
attributes:
  check_mode:
    support: full
    details:
      - Runs no login, logout or rescan; predicts V(changed) from the node DB and the kernel's sessions, and refuses
        a logout of a device in use exactly like the real run. Rescans are not predicted (V(changed) is V(false)).
  diff_mode:
    support: full
  idempotent:
    support: full
notes:
  - Login needs the node record (create it with M(openiscsi.initiator.node) or M(openiscsi.initiator.discovery)) and
    the kernel's transport module (C(iscsi_tcp)).
seealso:
  - module: openiscsi.initiator.node
  - module: openiscsi.initiator.discovery
"""

EXAMPLES = r"""
- name: Log in to one record and get its disks
  openiscsi.initiator.session:
    target: iqn.2004-10.com.example:disk1
    portal: 192.0.2.10
  register: s

- name: Use the first disk by its stable path
  ansible.builtin.debug:
    msg: "{{ s.devices[0].by_path[0] }}"

- name: Log in to every portal of a target (multipath), waiting up to two minutes
  openiscsi.initiator.session:
    target: iqn.2004-10.com.example:disk1
    timeout: 120

- name: Log in to everything an IPv6 portal has records for
  openiscsi.initiator.session:
    portal: "[2001:db8::10]:3260"

- name: Pick up LUNs mapped since the login
  openiscsi.initiator.session:
    target: iqn.2004-10.com.example:disk1
    rescan: true

- name: Log out (refused while a file system on it is mounted)
  openiscsi.initiator.session:
    target: iqn.2004-10.com.example:disk1
    state: logged_out
"""

RETURN = r"""
sessions:
  description:
    - The sessions of the selected records after the task (for V(logged_out), the sessions that were or would be
      logged out), each with C(sid), C(target), C(portal), C(tpgt), C(iface), C(state) and C(devices).
  returned: success
  type: list
  elements: dict
  sample:
    - sid: 3
      target: iqn.2004-10.com.example:disk1
      portal: 192.0.2.10:3260
      tpgt: 1
      iface: default
      state: LOGGED_IN
      devices:
        - {lun: 1, hctl: "2:0:0:1", device: /dev/sdb, by_path: ["/dev/disk/by-path/ip-192.0.2.10:3260-iscsi-iqn.2004-10.com.example:disk1-lun-1"],
           vendor: LIO-ORG, model: disk1, state: running}
devices:
  description: Every block device of RV(sessions), same entries as their C(devices).
  returned: success
  type: list
  elements: dict
  sample: []
logged_in:
  description: The records logged in by this run (or that would be, in check mode), as C(target), C(portal), C(iface).
  returned: success
  type: list
  elements: dict
  sample: [{target: iqn.2004-10.com.example:disk1, portal: 192.0.2.10:3260, iface: default}]
logged_out:
  description: The session ids logged out by this run (or that would be, in check mode).
  returned: success
  type: list
  elements: int
  sample: [3]
new_devices:
  description: Devices that appeared with O(rescan=true).
  returned: when O(rescan=true)
  type: list
  elements: dict
  sample: []
"""

import os
import socket
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openiscsi.initiator.plugins.module_utils import _nodedb
from ansible_collections.openiscsi.initiator.plugins.module_utils import _session_plan as plan
from ansible_collections.openiscsi.initiator.plugins.module_utils import _sysfs
from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._fileio import read_text
from ansible_collections.openiscsi.initiator.plugins.module_utils._hostinfo import parse_mountinfo
from ansible_collections.openiscsi.initiator.plugins.module_utils._initiatorname import InitiatorNameFile
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsiadm import Iscsiadm, IscsiadmError
from ansible_collections.openiscsi.initiator.plugins.module_utils._names import normalize_name
from ansible_collections.openiscsi.initiator.plugins.module_utils._portal import parse_portal

POLL = 0.25
MAX_TIMEOUT = 86400
ROOT = "/"  # the managed system; unit tests point it at a fixture tree


def under(path):
    """A host path seen under ROOT."""
    return os.path.join(ROOT, path.lstrip("/"))


def validate(params):
    """``(target, portal)`` normalized; raises InputError for bad or conflicting options."""
    target = portal = None
    if params.get("target") is not None:
        target = normalize_name(params["target"], "target")
    if params.get("portal") is not None:
        portal = parse_portal(params["portal"], "portal")
    if target is None and portal is None:
        raise InputError("target", "give target, portal or both (one record: both; every record of a target: target; "
                                   "every record of a portal: portal)")
    iface = params.get("iface")
    if iface is not None and (not iface or "/" in iface or iface.strip() != iface):
        raise InputError("iface", "%r is not an iface record name" % (iface,))
    timeout = params.get("timeout")
    if timeout is None or timeout < 0 or timeout > MAX_TIMEOUT:
        raise InputError("timeout", "must be 0..%d seconds, got %r" % (MAX_TIMEOUT, timeout))
    if params.get("rescan") and params.get("state") == "logged_out":
        raise InputError("rescan", "cannot rescan while logging out; use rescan with state logged_in")
    if params.get("force") and params.get("state") == "logged_in":
        raise InputError("force", "only applies to state logged_out (a logout of devices in use)")
    return target, portal


def resolve(portal):
    """Other spellings of the portal's address: the IPs of a host name (records and sysfs hold IPs)."""
    if portal is None:
        return []
    try:
        infos = socket.getaddrinfo(portal.address, portal.port, 0, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        return []
    return sorted(set(info[4][0] for info in infos))


def initiator_name(rec):
    """The initiator name a login of *rec* presents: its iface record's iface.initiatorname, else the host's."""
    iface = rec.get("iface") or "default"
    try:
        for entry in _nodedb.read_ifaces(ROOT):
            if entry.get("name") == iface and entry.get("initiatorname"):
                return entry["initiatorname"]
    except Exception:  # a broken iface DB must not hide the real error  # pylint: disable=broad-except
        pass
    text = read_text(under("/etc/iscsi/initiatorname.iscsi"))
    if text is None:
        return None
    try:
        return InitiatorNameFile.parse(text).name
    except Exception:  # pylint: disable=broad-except
        return None


def selector(rec):
    return {"target": rec["target"], "portal": plan.portal_text(rec["address"], int(rec["port"])),
            "iface": rec.get("iface") or "default"}


def state_lines(sessions):
    return sorted("%s %s iface=%s: %s (session %s)" % (s["target"], s["portal"], s["iface"], s["state"], s["sid"])
                  for s in sessions)


def udev_running():
    """Only a running udev makes /dev/disk/by-path links: do not wait for them otherwise."""
    return os.path.exists(under("/run/udev/control"))


def wait_ready(records, deadline, want_devices):
    """Poll sysfs until every record has a ready session or *deadline* passes.

    Returns ``(sessions, hard, soft)``: the sessions of the records at the end and what is still missing.
    """
    want_links = want_devices and udev_running()
    while True:
        sessions = _sysfs.read_sessions(ROOT)
        mine, hard, soft = [], [], []
        for rec in records:
            found = plan.sessions_of(rec, sessions)
            if not found:
                hard.append("%s: no session" % plan.record_label(rec))
                continue
            best = [s for s in found if s.get("state") == plan.LOGGED_IN] or found
            for session in best:
                h, s_ = plan.readiness(session, want_devices, want_links)
                hard += ["%s: %s" % (plan.record_label(rec), x) for x in h]
                soft += s_
                mine.append(session)
        if (not hard and not soft) or time.time() >= deadline:
            return mine, hard, soft
        time.sleep(POLL)


def login(module, adm, target, portal, addresses):
    params = module.params
    nodes = _nodedb.read_nodes(ROOT)
    records = plan.select_records(nodes, target=target, address=portal.address if portal else None,
                                  port=portal.port if portal else None, iface=params["iface"], addresses=addresses)
    if not records:
        what = []
        if target:
            what.append("target %s" % target)
        if portal:
            what.append("portal %s" % portal.arg())
        if params["iface"]:
            what.append("iface %s" % params["iface"])
        hint = ""
        if target:
            others = sorted(set(r["portal"] or "?" for r in plan.select_records(nodes, target=target)))
            if others:
                hint = "; this target has records for portal(s) %s" % ", ".join(others)
        module.fail_json(msg="no node record for %s (iscsiadm would answer exit code 21)%s. Create it with "
                             "openiscsi.initiator.node or openiscsi.initiator.discovery" % (", ".join(what), hint))
    sessions = _sysfs.read_sessions(ROOT)
    steps = plan.plan_login(records, sessions)
    to_login = [step["record"] for step in steps if step["action"] == "login"]
    waiting = [step for step in steps if step["action"] == "wait"]
    result = {"changed": bool(to_login), "logged_in": [selector(r) for r in to_login], "logged_out": []}
    before = [plan.session_summary(s) for step in steps for s in step["sessions"]]

    if module.check_mode:
        for step in waiting:
            for session in step["sessions"]:
                module.warn("session %s of %s is %s, not LOGGED_IN; the real run waits up to %ss for it to recover"
                            % (session["sid"], plan.record_label(step["record"]), session["state"],
                               params["timeout"]))
        after = before + [{"sid": None, "target": s["target"], "portal": s["portal"], "iface": s["iface"],
                           "state": plan.LOGGED_IN, "tpgt": None, "devices": []} for s in result["logged_in"]]
        result["sessions"] = before
        result["devices"] = [d for s in before for d in s["devices"]]
        if params["rescan"]:
            result["new_devices"] = []
            module.warn("check mode: rescan not run; new LUNs cannot be predicted")
        if module._diff:
            result["diff"] = {"before": {"sessions": state_lines(before)}, "after": {"sessions": state_lines(after)}}
        return result

    for rec in to_login:
        args = ["-m", "node", "-T", rec["target"], "-p", plan.portal_text(rec["address"], int(rec["port"])),
                "-I", rec.get("iface") or "default", "--login"]
        try:
            adm.run(args, ok=(0, plan.RC_SESS_EXISTS), context="login to %s" % plan.record_label(rec))
        except IscsiadmError as exc:
            module.fail_json(msg=plan.login_error_message(exc.rc, rec, exc.stderr, initiator_name(rec),
                                                          names=module.params["option_names"]), rc=exc.rc,
                             changed=result["changed"] and rec is not to_login[0])

    deadline = time.time() + params["timeout"]
    final, hard, soft = wait_ready(records, deadline, params["wait_for_devices"])
    if hard and params["timeout"] > 0:
        msg = "timed out after %ss waiting for the sessions: %s" % (params["timeout"], "; ".join(hard))
        if any("FAILED" in h or "FREE" in h for h in hard):
            msg += (". A FAILED session lost its connection and iscsid keeps trying to re-establish it: check the "
                    "network path and the target, or log it out (state logged_out) and in again")
        module.fail_json(msg=msg, changed=result["changed"], sessions=[plan.session_summary(s) for s in final])
    for note in (hard + soft if params["timeout"] == 0 else soft):
        module.warn(note)

    if params["rescan"]:
        new = []
        for session in final:
            if session.get("state") != plan.LOGGED_IN:
                continue
            old = plan.device_list(session)
            try:
                adm.run(["-m", "session", "-r", str(session["sid"]), "--rescan"],
                        context="rescan of session %s" % session["sid"])
            except IscsiadmError as exc:
                module.fail_json(msg=exc.message, rc=exc.rc, changed=result["changed"])
            deadline = time.time() + params["timeout"]
            again, hard, soft = wait_ready(records, deadline, params["wait_for_devices"])
            for fresh in again:
                if fresh["sid"] == session["sid"]:
                    new += plan.new_devices(old, plan.device_list(fresh))
        final = _sysfs.read_sessions(ROOT)
        final = [s for rec in records for s in plan.sessions_of(rec, final)]
        result["new_devices"] = new
        if new:
            result["changed"] = True

    summaries = []
    seen = set()
    for session in final:
        if session["sid"] not in seen:
            seen.add(session["sid"])
            summaries.append(plan.session_summary(session))
    result["sessions"] = summaries
    result["devices"] = [d for s in summaries for d in s["devices"]]
    if module._diff:
        result["diff"] = {"before": {"sessions": state_lines(before)}, "after": {"sessions": state_lines(summaries)}}
    return result


def logout(module, adm, target, portal, addresses):
    params = module.params
    sessions = _sysfs.read_sessions(ROOT)
    chosen = plan.select_sessions(sessions, target=target, address=portal.address if portal else None,
                                  port=portal.port if portal else None, iface=params["iface"], addresses=addresses)
    result = {"changed": bool(chosen), "logged_in": [], "logged_out": [s["sid"] for s in chosen],
              "sessions": [plan.session_summary(s) for s in chosen]}
    result["devices"] = [d for s in result["sessions"] for d in s["devices"]]
    if not chosen:
        if module._diff:
            result["diff"] = {"before": {"sessions": []}, "after": {"sessions": []}}
        return result

    mounts = parse_mountinfo(read_text(under("/proc/self/mountinfo")) or "")
    swaps = plan.parse_swaps(read_text(under("/proc/swaps")) or "")
    refusals = []
    leaving = [dev["block"] for s in chosen for dev in s.get("devices") or [] if dev.get("block")]
    for session in chosen:
        trees = [_sysfs.read_block_tree(ROOT, dev["block"]) for dev in session.get("devices") or [] if dev.get("block")]
        kept = []
        users = plan.device_users(trees, mounts, swaps, leaving=leaving, kept=kept)
        for item in kept:
            module.warn("session %s: multipath map %s (%s) keeps running on its other path(s) %s"
                        % (session["sid"], item["device"], item["via"], ", ".join(item["paths"])))
        if users:
            if params["force"]:
                module.warn("force: logging out session %s although %s" % (
                    session["sid"], "; ".join("%s %s" % (u["device"], u["use"]) for u in users)))
            else:
                refusals.append(plan.refusal_message(session, users, module.params["option_names"]))
    if refusals:
        module.fail_json(msg=" ".join(refusals), changed=False)

    if module._diff:
        result["diff"] = {"before": {"sessions": state_lines(result["sessions"])}, "after": {"sessions": []}}
    if module.check_mode:
        return result

    for session in chosen:
        try:
            adm.run(["-m", "session", "-r", str(session["sid"]), "--logout"],
                    ok=plan.LOGOUT_OK,
                    context="logout of session %s" % session["sid"])
        except IscsiadmError as exc:
            module.fail_json(msg=plan.logout_error_message(exc.rc, session, exc.stderr), rc=exc.rc,
                             changed=session is not chosen[0])
    deadline = time.time() + params["timeout"]
    sids = set(s["sid"] for s in chosen)
    while True:
        left = sids & set(s["sid"] for s in _sysfs.read_sessions(ROOT))
        if not left or time.time() >= deadline:
            break
        time.sleep(POLL)
    if left:
        module.warn("session(s) %s still listed in sysfs %ss after logout" % (
            ", ".join(str(s) for s in sorted(left)), params["timeout"]))
    return result


def run_module():
    module = AnsibleModule(
        argument_spec=dict(
            target=dict(type="str", aliases=["targetname"]),
            portal=dict(type="str"),
            iface=dict(type="str"),
            state=dict(type="str", default="logged_in", choices=["logged_in", "logged_out"]),
            timeout=dict(type="int", default=30),
            wait_for_devices=dict(type="bool", default=True),
            rescan=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
            option_names=dict(type="dict", options=dict(force=dict(type="str"), auth=dict(type="str"))),
        ),
        supports_check_mode=True,
    )
    try:
        target, portal = validate(module.params)
    except InputError as exc:
        module.fail_json(msg=str(exc))
    addresses = resolve(portal) if portal is not None else []
    adm = Iscsiadm(module)
    if module.params["state"] == "logged_in":
        result = login(module, adm, target, portal, addresses)
    else:
        result = logout(module, adm, target, portal, addresses)
    module.exit_json(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
