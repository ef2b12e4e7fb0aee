#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: recovery_tmo
short_description: Raise the live iSCSI sessions' recovery timeout for an iscsid restart, and restore it afterwards
version_added: 0.1.0
description:
  - Writes the kernel's per-session recovery timeout, C(/sys/class/iscsi_session/sessionN/recovery_tmo), that is how long the
    kernel holds I/O of a session whose connection is lost before it fails that I/O.
  - With O(minimum), raises every logged-in session whose timeout is lower to O(minimum) seconds and returns every
    session's value as it was in RV(saved), the way Debian's open-iscsi postinst does before it restarts iscsid.
    V(off) (never time out) stays.
  - With O(restore), puts the values of an earlier RV(saved) back. A session is restored only when a session with the
    same number, target and ISID still exists, so a new session that reuses a session number keeps its own value.
  - Only sysfs is written; node records and iscsid are not touched (the record's
    C(node.session.timeo.replacement_timeout) applies again at the next login).
author:
  - openiscsi.initiator contributors (@openiscsi)
options:
  minimum:
    description:
      - Raise the recovery timeout of each logged-in session to at least this many seconds.
      - Mutually exclusive with O(restore).
    type: int
  restore:
    description:
      - The RV(saved) list of an earlier run with O(minimum); each item needs C(sid), C(targetname) and
        C(recovery_tmo) (C(isid) is compared when given).
      - Mutually exclusive with O(minimum).
    type: list
    elements: dict
extends_documentation_fragment:
  - openiscsi.initiator.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
notes:
  - The kernel refuses the write (C(EBUSY)) while a session is C(FAILED) or C(FREE). With O(minimum) such sessions
    are skipped and listed in RV(skipped); with O(restore) the module fails naming them, after restoring the others.
  - Sessions that vanish between the read and the write are skipped.
seealso:
  - module: openiscsi.initiator.session_check
"""

EXAMPLES = r"""
- name: Raise the recovery timeout to 120 s before restarting iscsid
  openiscsi.initiator.recovery_tmo:
    minimum: 120
  register: raised

- name: Restart iscsid
  ansible.builtin.systemd_service:
    name: iscsid.service
    state: restarted

- name: Put the saved timeouts back
  openiscsi.initiator.recovery_tmo:
    restore: "{{ raised.saved }}"
"""

RETURN = r"""
saved:
  description: Every session's recovery timeout before the change (O(minimum) only); pass it to O(restore).
  returned: always
  type: list
  elements: dict
  contains:
    sid:
      description: Session number.
      type: int
      sample: 1
    name:
      description: Session name in sysfs.
      type: str
      sample: session1
    targetname:
      description: Target of the session.
      type: str
      sample: iqn.2025-01.com.example:db
    isid:
      description: Initiator session ID (distinguishes a new session that reuses the number).
      type: str
      sample: 00023d000001
    recovery_tmo:
      description: The value as sysfs showed it, seconds or V(off).
      type: str
      sample: '15'
changes:
  description: Each write made (or, in check mode, that would be made) with C(sid), C(name), C(before) and C(after).
  returned: always
  type: list
  elements: dict
  sample: [{sid: 1, name: session1, before: '15', after: '120'}]
skipped:
  description: Sessions left alone, with C(sid) and C(reason).
  returned: always
  type: list
  elements: dict
  sample: [{sid: 2, reason: 'state FAILED: the kernel refuses recovery_tmo writes'}]
"""

import errno
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.openiscsi.initiator.plugins.module_utils import _health, _sysfs
from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError

ROOT = "/"  # tests point this at a synthetic tree


def write_value(root, name, value):
    """Write *value* to session *name*'s recovery_tmo; returns ``None`` or an error text."""
    path = os.path.join(root, _sysfs.SESSION_CLASS, name, "recovery_tmo")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    except OSError as exc:
        return "gone" if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ENODEV) else exc.strerror
    try:
        os.write(fd, (value + "\n").encode("ascii"))
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            return "the kernel refused the write (EBUSY: the session is not logged in)"
        return exc.strerror
    finally:
        os.close(fd)
    return None


def run(params, root="/", check_mode=False):
    """The module's work under *root*.  Returns ``(result, error_message_or_None)``."""
    if (params.get("minimum") is None) == (params.get("restore") is None):
        raise InputError("minimum", "give exactly one of minimum (raise) or restore (put saved values back)")
    sessions = _sysfs.read_sessions(root)  # full read: the ISID identifies a session across reads
    if params.get("minimum") is not None:
        if params["minimum"] < 1:
            raise InputError("minimum", "must be a number of seconds >= 1, got %d" % params["minimum"])
        plan = _health.plan_recovery_raise(sessions, params["minimum"])
        saved = plan["saved"]
    else:
        saved_in = _health.validate_saved(params["restore"])
        plan = _health.plan_recovery_restore(sessions, saved_in)
        saved = []
    changes, skipped, errors = [], list(plan["skipped"]), []
    for w in plan["writes"]:
        if not check_mode:
            err = write_value(root, w["name"], w["after"])
            if err == "gone":
                skipped.append({"sid": w["sid"], "reason": "session gone"})
                continue
            if err:
                errors.append("session %s: cannot set recovery_tmo %s -> %s: %s"
                              % (w["sid"], w["before"], w["after"], err))
                continue
        changes.append({"sid": w["sid"], "name": w["name"], "before": w["before"], "after": w["after"]})
    result = {
        "changed": bool(changes),
        "saved": saved,
        "changes": changes,
        "skipped": skipped,
        "diff": {
            "before": "".join("%s: recovery_tmo %s\n" % (c["name"], c["before"]) for c in changes),
            "after": "".join("%s: recovery_tmo %s\n" % (c["name"], c["after"]) for c in changes),
        },
    }
    return result, ("; ".join(errors) if errors else None)


def run_module():
    module = AnsibleModule(
        argument_spec=dict(
            minimum=dict(type="int"),
            restore=dict(type="list", elements="dict"),
        ),
        mutually_exclusive=[("minimum", "restore")],
        required_one_of=[("minimum", "restore")],
        supports_check_mode=True,
    )
    try:
        result, error = run(module.params, ROOT, module.check_mode)
    except InputError as exc:
        module.fail_json(msg=str(exc))
    if not module._diff:
        result.pop("diff")
    if error:
        module.fail_json(msg=error, **result)
    module.exit_json(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
