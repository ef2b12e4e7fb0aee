#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: service_defaults
short_description: Manage /etc/default/open-iscsi, the settings of open-iscsi's start and stop scripts
version_added: 0.1.0
description:
  - Sets the keys of /etc/default/open-iscsi, a file that Debian's open-iscsi scripts (C(activate-storage.sh),
    C(umountiscsi.sh), C(logout-all.sh)) source with C(sh).
  - Only the keys given are touched; every other line (the package's comments, unknown keys, anything else) is kept
    byte for byte. A key's last assignment is rewritten in place, a missing key is appended.
  - Values are validated and written so that sourcing the file assigns exactly them and runs nothing.
  - Never restarts anything; the scripts read the file each time open-iscsi starts or stops.
author:
  - openiscsi.initiator contributors (@openiscsi)
options:
  handle_netdev:
    description:
      - C(HANDLE_NETDEV). With V(true) open-iscsi's start script mounts the C(_netdev) file systems of
        /etc/fstab and activates swap after the logins -- on sysvinit hosts only.
      - On systemd hosts the key has no effect (systemd mounts C(_netdev) entries itself); the module then says so
        in RV(notes) and a warning, and still writes the value.
    type: bool
  lvm_groups:
    description:
      - C(LVMGROUPS), volume groups to activate after the logins (and deactivate at shutdown). V([]) clears it.
      - Names of letters, digits and C(+_.-), not starting with C(-).
    type: list
    elements: str
  exclude_mounts_at_shutdown:
    description:
      - C(EXCLUDE_MOUNTS_AT_SHUTDOWN), mount points that open-iscsi must not unmount at shutdown (their sessions are
        kept too). V([]) clears it.
      - Give plain absolute paths; blanks and backslashes are written as C(\\040), C(\\011), C(\\134) like in
        /proc/mounts, which is what the script compares them with.
    type: list
    elements: str
  keep_root_sessions_at_shutdown:
    description:
      - C(ISCSI_ROOT_KEEP_ALL_SESSIONS_AT_SHUTDOWN). With V(true) no session at all is logged out at shutdown when
        the root file system is on iSCSI (/etc/iscsi/iscsi.initramfs exists).
    type: bool
  path:
    description: The file to manage, an absolute path inside O(root).
    type: path
    default: /etc/default/open-iscsi
  root:
    description: Root directory of the system to manage (images, chroots, tests).
    type: path
    default: /
  backup:
    description: Copy the existing file to a time-stamped backup file before changing it.
    type: bool
    default: false
extends_documentation_fragment:
  - openiscsi.initiator.attributes
  - openiscsi.initiator.attributes.FILES
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
  safe_file_operations:
    support: full
notes:
  - An assignment the module cannot interpret safely (one that expands a variable or runs a command) is replaced
    when its key is managed, and reported in RV(notes).
"""

EXAMPLES = r"""
- name: Mount _netdev file systems at boot on a sysvinit host
  openiscsi.initiator.service_defaults:
    handle_netdev: true

- name: Activate two volume groups after login and keep a mount at shutdown
  openiscsi.initiator.service_defaults:
    lvm_groups: [vg_iscsi, vg_backup]
    exclude_mounts_at_shutdown:
      - /srv/keep me
"""

RETURN = r"""
values:
  description: The managed keys' values after the task (as the shell sees them), for the keys given.
  returned: success
  type: dict
  sample: {"HANDLE_NETDEV": "1", "LVMGROUPS": "vg_iscsi vg_backup"}
notes:
  description: Remarks about the host or the file (e.g. that HANDLE_NETDEV has no effect under systemd).
  returned: success
  type: list
  elements: str
  sample: ["HANDLE_NETDEV has no effect on this host: it runs systemd, which mounts _netdev entries itself"]
init_system:
  description: The host's init system as detected (V(systemd), V(sysvinit), ...).
  returned: success
  type: str
  sample: systemd
backup_file:
  description: The backup copy made by O(backup=true).
  returned: when a backup was made
  type: str
  sample: /etc/default/open-iscsi.2412.2026-11-24@16:40:02~
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._fileio import (
    file_diff,
    lock_for_update,
    read_text,
    write_atomic,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._fstab import escape
from ansible_collections.openiscsi.initiator.plugins.module_utils._hostinfo import init_system
from ansible_collections.openiscsi.initiator.plugins.module_utils._shfile import ShFile
from ansible_collections.openiscsi.initiator.plugins.module_utils._rootfs import host_path

VG_RE = re.compile(r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]*\Z")
KEYS = {
    "handle_netdev": "HANDLE_NETDEV",
    "lvm_groups": "LVMGROUPS",
    "exclude_mounts_at_shutdown": "EXCLUDE_MOUNTS_AT_SHUTDOWN",
    "keep_root_sessions_at_shutdown": "ISCSI_ROOT_KEEP_ALL_SESSIONS_AT_SHUTDOWN",
}


def desired_values(params):
    """``{KEY: value}`` for the options given; InputError naming the option for bad input."""
    out = {}
    if params.get("handle_netdev") is not None:
        out["HANDLE_NETDEV"] = "1" if params["handle_netdev"] else "0"
    if params.get("keep_root_sessions_at_shutdown") is not None:
        out["ISCSI_ROOT_KEEP_ALL_SESSIONS_AT_SHUTDOWN"] = "1" if params["keep_root_sessions_at_shutdown"] else "0"
    if params.get("lvm_groups") is not None:
        groups = []
        for vg in params["lvm_groups"]:
            if not isinstance(vg, str) or not VG_RE.match(vg) or vg in (".", ".."):
                raise InputError("lvm_groups", "%r is not a volume group name (letters, digits and +_.- only, not "
                                               "starting with -)" % (vg,))
            if vg not in groups:
                groups.append(vg)
        out["LVMGROUPS"] = " ".join(groups)
    if params.get("exclude_mounts_at_shutdown") is not None:
        mounts = []
        for mp in params["exclude_mounts_at_shutdown"]:
            if not isinstance(mp, str) or not mp.startswith("/"):
                raise InputError("exclude_mounts_at_shutdown", "%r is not an absolute mount point" % (mp,))
            if any(c in mp for c in "\0\r") or any(ord(c) < 32 and c not in "\t\n" for c in mp):
                raise InputError("exclude_mounts_at_shutdown", "%r contains a control character" % (mp,))
            enc = escape(mp)
            if enc not in mounts:
                mounts.append(enc)
        out["EXCLUDE_MOUNTS_AT_SHUTDOWN"] = " ".join(mounts)
    return out


def plan(text, wanted):
    """``(new_text, notes)``: *text* with every key of *wanted* set."""
    shfile = ShFile.parse(text)
    notes = []
    for lineno, key, raw in shfile.opaque_assignments(list(wanted)):
        notes.append("line %d assigns %s in a way that is not a plain value (%s); the managed value replaces it"
                     % (lineno, key, raw.strip()))
    for key, value in wanted.items():
        # An opaque assignment after the last plain one would win in the shell: drop opaque ones of managed keys.
        if shfile.opaque_assignments([key]):
            shfile.lines = [line for line in shfile.lines if line.opaque_key != key]
        shfile.set(key, value)
    return shfile.render(), notes


def run_module():
    argument_spec = dict(
        handle_netdev=dict(type="bool"),
        lvm_groups=dict(type="list", elements="str"),
        exclude_mounts_at_shutdown=dict(type="list", elements="str"),
        keep_root_sessions_at_shutdown=dict(type="bool"),
        path=dict(type="path", default="/etc/default/open-iscsi"),
        root=dict(type="path", default="/"),
        backup=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_one_of=[list(KEYS)])
    p = module.params
    try:
        for field in ("root", "path"):
            if not os.path.isabs(p[field]):
                raise InputError(field, "must be an absolute path, got %r" % p[field])
        wanted = desired_values(p)
    except InputError as exc:
        module.fail_json(msg=str(exc))

    path = host_path(p["root"], p["path"])
    if os.path.isdir(path):
        module.fail_json(msg="path: %s is a directory" % path)
    lock_for_update(module, path)  # until exit_json/fail_json: read, plan and write under it
    try:
        old_text = read_text(path)
    except OSError as exc:
        module.fail_json(msg="cannot read %s: %s" % (path, exc.strerror or exc))
    new_text, notes = plan(old_text or "", wanted)
    changed = old_text is None or new_text != old_text

    init = init_system(p["root"])
    if "HANDLE_NETDEV" in wanted and init == "systemd":
        notes.append("HANDLE_NETDEV has no effect on this host: it runs systemd, which mounts _netdev entries of "
                     "/etc/fstab itself (open-iscsi's activate-storage.sh acts on the key only without systemd)")
    for note in notes:
        module.warn(note)

    backup_file = None
    if changed and not module.check_mode:
        backup_file = write_atomic(module, path, new_text, backup=p["backup"])
    after = ShFile.parse(new_text)
    result = dict(changed=changed, values={k: after.get(k) for k in wanted}, notes=notes, init_system=init)
    if backup_file:
        result["backup_file"] = backup_file
    if module._diff:
        result["diff"] = file_diff(path, old_text, new_text)
    module.exit_json(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
