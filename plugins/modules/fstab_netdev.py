#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: fstab_netdev
short_description: Make sure file systems on iSCSI devices carry C(_netdev) in /etc/fstab
version_added: 0.1.0
description:
  - Adds the C(_netdev) mount option (and, on request, C(nofail) and other options) to /etc/fstab entries of file
    systems that live on iSCSI LUNs, so that they are mounted after the network and the iSCSI login and unmounted
    before the sessions go away.
  - Entries are chosen explicitly by mount point (O(path)) or by source as written in the file (O(src)), and/or
    found with O(detect=true) -- every entry whose device (C(/dev/sdX), C(UUID=), C(LABEL=), C(PARTUUID=),
    C(PARTLABEL=), C(/dev/disk/by-*), C(/dev/mapper/*), LVM C(/dev/VG/LV)) resolves to a block device that is, or
    sits on (partitions, device-mapper, LVM, LUKS, md, multipath), a disk of a live iSCSI session (read from sysfs).
  - The file is parsed the way libmount parses it (lines end at a newline only, octal escapes such as C(\\040), C(#)
    starts a comment only as the first non-blank character of a line, fields after the sixth are ignored, the last
    line may lack its newline) and only the option field of the chosen lines changes; every other byte stays as it
    was. The file is locked while it is read and written, so two runs at once never lose a change; the write is
    atomic (temporary file and rename in the same directory) and keeps the file's owner and mode.
  - Every entry considered is reported with the reason it was or was not chosen. Several entries for one mount point
    are reported (RV(duplicates)); when one of them is chosen, every one of them gets the options (mount(8) uses the
    last entry of a mount point, systemd's fstab generator the first); they are never merged.
  - Never mounts, unmounts or reloads anything; RV(daemon_reload_needed) says when C(systemctl daemon-reload) is due
    for systemd's fstab generator to see the change.
author:
  - openiscsi.initiator contributors (@openiscsi)
options:
  path:
    description:
      - Mount points (the second fstab field, unescaped, e.g. V(/srv/my data)) whose entries get the options.
      - An entry listed here is changed whether or not it is on iSCSI. A mount point not in the file fails the
        module.
    type: list
    elements: str
    default: []
  src:
    description:
      - Sources exactly as written in the first fstab field (unescaped), e.g. V(UUID=0a3d...) or
        V(/dev/mapper/vg-data), whose entries get the options. A source not in the file fails the module.
    type: list
    elements: str
    default: []
  detect:
    description:
      - Also choose every entry whose device is backed by a live iSCSI session.
      - The root file system (V(/)) is reported but not changed by detection (the initramfs mounts it, not
        systemd's fstab handling); list it in O(path) to change it anyway.
      - Bind mounts, virtual and network file systems are skipped with the reason.
    type: bool
    default: false
  nofail:
    description:
      - Also add C(nofail), so that boot does not stop when the LUN is missing.
    type: bool
    default: false
  options:
    description:
      - More options to put on the chosen entries, as C(name) or C(name=value) (e.g.
        V(x-systemd.device-timeout=30s)). A C(name=value) option already present with another value gets this value.
      - Options must not contain commas, blanks or control characters, and must hold an even number of double quotes
        (libmount reads the options after an unpaired one as part of it).
    type: list
    elements: str
    default: []
  fstab:
    description:
      - The file to manage, an absolute path inside O(root). Image builders and tests point it at another file.
    type: path
    default: /etc/fstab
  root:
    description:
      - Root directory of the system whose C(sys/) and C(dev/) are read for detection and whose O(fstab) is
        managed.
    type: path
    default: /
  backup:
    description:
      - Copy the existing file to a time-stamped backup file before changing it.
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
  - On systemd hosts (Debian's default) C(_netdev) makes the mount a remote one -- seen in the lab, the mount unit is
    wanted by C(remote-fs.target) and ordered after C(network-online.target) and C(remote-fs-pre.target), before which
    Debian's open-iscsi.service makes its logins. Without C(_netdev) the mount is a local one (C(local-fs.target));
    per systemd's documentation (systemd.special(7)) a failed local mount sends the boot to emergency mode, a failed
    remote one does not. In the lab a Debian 12 VM with such a line booted into emergency mode (after 116 s) even
    with the target reachable; with C(_netdev,nofail) and the target unreachable it booted, the file system unmounted.
  - On sysvinit hosts the mounts are made by open-iscsi's C(activate-storage.sh) when C(HANDLE_NETDEV=1) (see
    M(openiscsi.initiator.service_defaults)).
seealso:
  - module: openiscsi.initiator.service_defaults
"""

EXAMPLES = r"""
- name: Add _netdev to every fstab entry on an iSCSI LUN
  openiscsi.initiator.fstab_netdev:
    detect: true

- name: An explicit entry, also with nofail and a device timeout, keeping a backup
  openiscsi.initiator.fstab_netdev:
    path:
      - /srv/data
    nofail: true
    options:
      - x-systemd.device-timeout=30s
    backup: true
  register: fstab
  notify: Reload systemd

- name: Prepare the fstab of an image being built (detection reads the builder's sysfs)
  openiscsi.initiator.fstab_netdev:
    root: /srv/images/node01
    src:
      - LABEL=data
"""

RETURN = r"""
entries:
  description:
    - Every fstab entry considered, in file order, with C(line), C(source), C(target), C(fstype), C(options) (before),
      C(options_after) (for chosen entries), C(device) (kernel name, or V(null)), C(disks), C(sessions) (sids),
      C(on_iscsi), C(selected), C(action) (V(changed), V(unchanged) or V(skipped)) and C(reason).
  returned: success
  type: list
  elements: dict
  sample:
    - line: 4
      source: UUID=0a3d6f2e-3d1c-4c55-9d1a-6b1f0e3c7a11
      target: /srv/data
      fstype: ext4
      options: defaults
      options_after: defaults,_netdev
      device: sdb1
      disks: [sdb]
      sessions: [1]
      on_iscsi: true
      selected: true
      action: changed
      reason: "detected: on iSCSI session(s) 1 via /dev/disk/by-uuid/0a3d6f2e-3d1c-4c55-9d1a-6b1f0e3c7a11 -> sdb1"
changed_lines:
  description: Line numbers whose option field changed (or would change, in check mode).
  returned: success
  type: list
  elements: int
  sample: [4]
duplicates:
  description: Mount points with more than one entry, and their line numbers (swap excepted).
  returned: success
  type: dict
  sample: {"/srv/data": [4, 9]}
invalid_lines:
  description: Lines that are neither comments nor valid entries; they are kept as they are.
  returned: success
  type: list
  elements: dict
  sample: [{"line": 7, "kind": "invalid", "text": "/dev/sdc1 /mnt", "problem": "2 field(s)"}]
daemon_reload_needed:
  description: V(true) when the file changed on a systemd host (the fstab generator runs on daemon-reload).
  returned: success
  type: bool
  sample: true
backup_file:
  description: The backup copy made by O(backup=true).
  returned: when a backup was made
  type: str
  sample: /etc/fstab.2412.2026-11-24@16:40:02~
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openiscsi.initiator.plugins.module_utils._boot_plan import NETDEV, NOFAIL, plan_fstab
from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._fileio import (
    file_diff,
    lock_for_update,
    read_text,
    write_atomic,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._fstab import Fstab, check_option
from ansible_collections.openiscsi.initiator.plugins.module_utils._hostinfo import init_system
from ansible_collections.openiscsi.initiator.plugins.module_utils._sysfs import read_sessions
from ansible_collections.openiscsi.initiator.plugins.module_utils._rootfs import host_path

_OPTION_RE = re.compile(r"[^,\s\x00-\x1f\x7f]+\Z")
LANG_C = {"LANG": "C", "LC_ALL": "C"}


def _safe(text):
    if text is None:
        return None
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def parse_extra_options(options):
    """``(add, set_values)`` from the user's option list; InputError naming the field for bad items."""
    add = []
    set_values = {}
    for item in options:
        if not isinstance(item, str) or not item or not _OPTION_RE.match(item) or item.startswith("="):
            raise InputError("options", "%r is not a mount option: give one option per item, as name or "
                                        "name=value, without commas, blanks or control characters" % (item,))
        check_option(item, "options")  # one option for libmount too (double quotes balanced)
        name, sep, value = item.partition("=")
        if sep:
            if name in set_values and set_values[name] != value:
                raise InputError("options", "%s is given twice with different values" % name)
            set_values[name] = value
        elif item not in add:
            add.append(item)
    return add, set_values


def make_lookup(module):
    blkid = module.get_bin_path("blkid")
    if not blkid:
        return None

    def lookup(tag, value):
        rc, out, dummy = module.run_command([blkid, "-l", "-o", "device", "-t", "%s=%s" % (tag, value)],
                                            environ_update=LANG_C)
        return out.strip() if rc == 0 and out.strip().startswith("/dev/") else None
    return lookup


def run_module():
    argument_spec = dict(
        path=dict(type="list", elements="str", default=[]),
        src=dict(type="list", elements="str", default=[]),
        detect=dict(type="bool", default=False),
        nofail=dict(type="bool", default=False),
        options=dict(type="list", elements="str", default=[]),
        fstab=dict(type="path", default="/etc/fstab"),
        root=dict(type="path", default="/"),
        backup=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params

    try:
        if not os.path.isabs(p["root"]):
            raise InputError("root", "must be an absolute path, got %r" % p["root"])
        if not os.path.isabs(p["fstab"]):
            raise InputError("fstab", "must be an absolute path (it is looked up inside root), got %r" % p["fstab"])
        if not (p["path"] or p["src"] or p["detect"]):
            raise InputError("detect", "nothing chosen: give path, src, or detect: true")
        for item in p["path"]:
            if not item.startswith("/") and item not in ("none", "swap"):
                raise InputError("path", "%r is not a mount point (an absolute path)" % item)
        for field in ("path", "src"):
            for item in p[field]:
                if not item or any(c in item for c in "\0\n"):
                    raise InputError(field, "%r is empty or contains NUL/newline" % item)
        add, set_values = parse_extra_options(p["options"])
        add = [NETDEV] + ([NOFAIL] if p["nofail"] else []) + [o for o in add if o not in (NETDEV, NOFAIL)]
    except InputError as exc:
        module.fail_json(msg=str(exc))

    root = p["root"]
    fstab_path = host_path(root, p["fstab"])
    if os.path.isdir(fstab_path):
        module.fail_json(msg="fstab: %s is a directory" % fstab_path)
    lock_for_update(module, fstab_path)  # until exit_json/fail_json: read, plan and write under it
    try:
        old_text = read_text(fstab_path)
    except OSError as exc:
        module.fail_json(msg="cannot read %s: %s" % (fstab_path, exc.strerror or exc))
    if old_text is None:
        module.fail_json(msg="fstab: %s does not exist; nothing was changed" % fstab_path)

    fstab = Fstab.parse(old_text)
    sessions = read_sessions(root)
    lookup = make_lookup(module) if p["detect"] or p["src"] else None
    plan = plan_fstab(fstab, root=root, sessions=sessions, detect=p["detect"], paths=p["path"], sources=p["src"],
                      add=add, set_values=set_values, lookup=lookup)
    missing = ["path %s" % m for m in plan["missing"]["path"]] + ["src %s" % m for m in plan["missing"]["src"]]
    if missing:
        module.fail_json(msg="%s: no such entry in %s (%s); nothing was changed" % (
            "path" if plan["missing"]["path"] else "src", fstab_path, ", ".join(_safe(m) for m in missing)),
            entries=_json_safe(plan["entries"]))

    new_text = fstab.render()
    changed = new_text != old_text
    for target, lines in sorted(plan["duplicates"].items()):
        module.warn("%s has %d entries in %s (lines %s); each one is handled, none is merged or removed"
                    % (_safe(target), len(lines), fstab_path, ", ".join(str(n) for n in lines)))
    invalid = [dict(line.as_dict(), text=_safe(line.raw)) for line in fstab.invalid()]
    for item in invalid:
        module.warn("%s line %d is not a valid fstab entry (%s); it was left as it is"
                    % (fstab_path, item["line"], item["problem"]))
    if p["detect"] and not sessions:
        module.warn("detect: no iSCSI session is live on this host, so no entry can be detected")

    backup_file = None
    if changed and not module.check_mode:
        backup_file = write_atomic(module, fstab_path, new_text, backup=p["backup"])

    result = dict(
        changed=changed,
        entries=_json_safe(plan["entries"]),
        changed_lines=plan["changed_lines"],
        duplicates={_safe(k): v for k, v in plan["duplicates"].items()},
        invalid_lines=invalid,
        daemon_reload_needed=bool(changed and init_system(root) == "systemd"),
    )
    if backup_file:
        result["backup_file"] = backup_file
    if module._diff:
        result["diff"] = file_diff(fstab_path, old_text, new_text, mask=_safe)
    module.exit_json(**result)


def _json_safe(entries):
    out = []
    for entry in entries:
        out.append({k: _safe(v) if isinstance(v, str) else v for k, v in entry.items()})
    return out


def main():
    run_module()


if __name__ == "__main__":
    main()
