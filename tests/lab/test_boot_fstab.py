# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lab test 1: automatic login + a file system on the LUN + fstab_netdev, proven by REBOOTING the initiator VM.

One test function, several boots of the same VM (a TCG boot costs 30-60 s, so they are shared):

1. node ``tgt-open`` with node.startup=automatic, ext4 on LUN 1, an fstab line by LABEL; ``fstab_netdev detect``
   (check mode predicts, real run changes, second run and check mode report no change) and ``service_defaults``
   (HANDLE_NETDEV: the result says it has no effect under systemd); reboot -> session LOGGED_IN, file system mounted
   from the LUN, boot not hung, the mount unit is a remote one;
2. the same line WITHOUT ``_netdev``, target reachable: reboot -> what systemd does (recorded: mounted or not, unit
   ordering, boot time, kernel errors on the console during the shutdown/boot);
3. without ``_netdev``, target unreachable (only when 2 booted): reboot -> the boot stops (emergency mode, no SSH);
   a guest in emergency mode is rescued: started with ``fstab=no``, fstab fixed, started normally again;
4. with ``_netdev`` and ``nofail``, target unreachable: the VM boots, the file system is simply not mounted.

The facts measured are written to ``$LAB_BOOT_REPORT`` (JSON) when set, and printed.  The VM is put back as it was
(fstab, node record, /etc/default/open-iscsi) in a ``finally``.
"""

from __future__ import annotations

import json
import os
import shlex
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lab"))
import rootiscsi  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = pytest.mark.lab

HOST = "init1"
MNT = "/mnt/bootdata"
LABEL = "bootdata"
LINE = "LABEL=%s %s ext4 defaults 0 2" % (LABEL, MNT)
SAVE = "/root/fstab.boot-test.orig"
SAVE_DEFAULT = "/root/open-iscsi.default.boot-test.orig"


def sh(lab, cmd, check=True, timeout=300):
    return lab.ssh(HOST, cmd, check=check, timeout=timeout)


def state(lab, target_iqn):
    """What the booted VM says: session state, mount source and whether it sits on the session, units, timing."""
    script = r'''
# SSH answers before the boot is over (TCG): wait for systemd to finish starting (or give up).
timeout 400 systemctl is-system-running --wait >/dev/null 2>&1
t=%s
s=""
for d in /sys/class/iscsi_session/session*; do [ -e "$d" ] && [ "$(cat $d/targetname)" = "$t" ] && s=$d; done
echo "session=${s:+$(cat $s/state)}"
src=$(findmnt -no SOURCE %s 2>/dev/null)
echo "mount_source=$src"
disk=""
[ -n "$src" ] && disk=$(lsblk -no PKNAME "$src" 2>/dev/null | head -1)
[ -n "$src" ] && [ -z "$disk" ] && disk=${src#/dev/}
on=no
[ -n "$s" ] && [ -n "$disk" ] && ls $s/device/target*/*/block/ 2>/dev/null | grep -qx "$disk" && on=yes
echo "on_session=$on"
echo "system=$(systemctl is-system-running 2>/dev/null)"
echo "unit_active=$(systemctl show -p ActiveState --value mnt-bootdata.mount)"
after=$(systemctl show -p After --value mnt-bootdata.mount | tr ' ' '\n')
echo "unit_after=$(echo "$after" | grep -E 'remote-fs-pre|local-fs-pre|network-online|iscsi' | sort | tr '\n' ' ')"
echo "unit_wantedby=$(systemctl show -p WantedBy -p RequiredBy --value mnt-bootdata.mount | tr '\n' ' ')"
echo "failed=$(systemctl --failed --no-legend --plain | awk '{print $1}' | tr '\n' ' ')"
echo "analyze=$(systemd-analyze 2>/dev/null | head -1)"
''' % (shlex.quote(target_iqn), MNT)
    out = sh(lab, script).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def kernel_errors(text):
    keys = ("I/O error", "conn error", "EXT4-fs error", "Buffer I/O", "emergency", "Emergency", "Timed out",
            "Dependency failed")
    return [line.strip() for line in text.splitlines() if any(k in line for k in keys)]


JOURNAL_KEYS = ("bootdata", "Timed out", "Dependency failed", "emergency", "Emergency", "iscsi", "local-fs")


def boot_and_record(lab, target_iqn, rescued, timeout):
    """Reboot and return the facts of that boot.  The only outcomes accepted: the VM comes up (its state is recorded),
    or the boot ends in systemd's emergency mode -- then the guest is rescued (booted with fstab=no, its normal command
    line kept in ``rescued['saved']``) and what the journal kept of the failed boot is recorded."""
    try:
        boot = rootiscsi.reboot(lab._ctl, HOST, timeout=timeout)
    except rootiscsi.EmergencyMode as exc:
        facts = {"booted": False, "error": str(exc)}
        assert rescued["saved"] is None, "a rescued guest must be restored before the next experiment"
        rescued["saved"] = rootiscsi.rescue(lab._ctl, HOST)
        journal = sh(lab, "journalctl -b -1 -p notice --no-pager -o cat 2>/dev/null | tail -n 400", check=False).stdout
        facts["journal_of_failed_boot"] = [ln for ln in journal.splitlines() if any(k in ln for k in JOURNAL_KEYS)][-12:]
        return facts
    st = state(lab, target_iqn)
    return dict(st, booted=True, seconds=boot["seconds"], console_errors=kernel_errors(boot["console"]))


def test_fstab_netdev_survives_reboots(lab):
    tgt = lab.target("open")
    iqn = tgt["iqn"]
    portal = lab.portal(0)
    q = shlex.quote
    facts = {}
    node = "iscsiadm -m node -T %s -p %s" % (q(iqn), portal)
    rescued = {"saved": None}
    try:
        # ---- setup: automatic node, ext4 on LUN 1, fstab line without _netdev
        sh(lab, "cp -p /etc/fstab %s; cp -p /etc/default/open-iscsi %s" % (SAVE, SAVE_DEFAULT))
        sh(lab, "%s -o new >/dev/null && %s -o update -n node.startup -v automatic && %s -l >/dev/null" % (
            node, node, node))
        disk = "/dev/disk/by-path/ip-%s-iscsi-%s-lun-1" % (portal, iqn)
        sh(lab, "udevadm settle; for i in $(seq 30); do [ -e %s ] && break; sleep 1; done; "
                "mkfs.ext4 -q -F -L %s %s && mkdir -p %s && echo %s >>/etc/fstab && systemctl daemon-reload"
                % (q(disk), LABEL, q(disk), MNT, q(LINE)))
        fstab_before = sh(lab, "cat /etc/fstab").stdout

        # ---- fstab_netdev: check mode predicts, the run changes exactly that line, then nothing to do
        checked = lab.module(HOST, "fstab_netdev", {"detect": True}, check=True, diff=True)
        assert not checked["failed"], checked
        assert checked["changed"] and len(checked["changed_lines"]) == 1
        assert sh(lab, "cat /etc/fstab").stdout == fstab_before
        done = lab.module(HOST, "fstab_netdev", {"detect": True}, diff=True)
        assert done["changed"] and done["changed_lines"] == checked["changed_lines"]
        after = sh(lab, "cat /etc/fstab").stdout
        assert after == fstab_before.replace(LINE, LINE.replace("defaults", "defaults,_netdev"))
        assert done["diff"]["after"] == checked["diff"]["after"] == after
        entry = [e for e in done["entries"] if e["target"] == MNT][0]
        assert entry["on_iscsi"] and entry["action"] == "changed" and entry["device"], entry
        assert done["daemon_reload_needed"] is True
        for check in (True, False):
            again = lab.module(HOST, "fstab_netdev", {"detect": True}, check=check)
            assert not again["changed"], again

        # ---- service_defaults: HANDLE_NETDEV under systemd
        sd_args = {"handle_netdev": True, "lvm_groups": [], "exclude_mounts_at_shutdown": ["/srv/keep me"]}
        sd_check = lab.module(HOST, "service_defaults", sd_args, check=True)
        sd = lab.module(HOST, "service_defaults", sd_args)
        assert sd["changed"] == sd_check["changed"] and sd["init_system"] == "systemd"
        assert any("no effect" in n for n in sd["notes"]), sd["notes"]
        assert "EXCLUDE_MOUNTS_AT_SHUTDOWN='/srv/keep\\040me'" in sh(lab, "cat /etc/default/open-iscsi").stdout
        assert not lab.module(HOST, "service_defaults", sd_args)["changed"]
        assert not lab.module(HOST, "service_defaults", sd_args, check=True)["changed"]
        sh(lab, "systemctl daemon-reload")

        # ---- 1: reboot with _netdev
        boot = rootiscsi.reboot(lab._ctl, HOST)
        st = state(lab, iqn)
        facts["netdev"] = dict(st, seconds=boot["seconds"], console_errors=kernel_errors(boot["console"]))
        assert st["session"] == "LOGGED_IN", st
        assert st["on_session"] == "yes" and st["unit_active"] == "active", st
        assert st["system"] in ("running", "degraded"), st
        assert "remote-fs-pre.target" in st["unit_after"] and "remote-fs.target" in st["unit_wantedby"], st

        # ---- 2: without _netdev, target reachable.  The mount is a local one: local-fs.target waits for the LUN's
        # device, which only appears once the network is up and open-iscsi has logged in -- a race with the device
        # timeout that ends in emergency mode (no SSH) when it is lost.  Either way is recorded; a guest in
        # emergency mode is rescued (booted with fstab=no, fstab fixed, booted normally again).
        sh(lab, "cp /etc/fstab /etc/fstab.tmp && grep -v '^LABEL=%s ' /etc/fstab.tmp >/etc/fstab && "
                "echo %s >>/etc/fstab && rm /etc/fstab.tmp && systemctl daemon-reload" % (LABEL, q(LINE)))
        facts["no_netdev"] = boot_and_record(lab, iqn, rescued, timeout=400)
        if facts["no_netdev"]["booted"]:
            assert facts["no_netdev"]["session"] == "LOGGED_IN", facts["no_netdev"]

        # ---- 3: without _netdev, target unreachable at boot: the device can never appear.  Only run when the boot
        # with the target reachable came up (otherwise the answer is already known).
        if facts["no_netdev"]["booted"]:
            lab.cut_path(HOST)
            try:
                facts["no_netdev_target_down"] = boot_and_record(lab, iqn, rescued, timeout=400)
            finally:
                lab.restore_path(HOST)
        else:
            facts["no_netdev_target_down"] = {"booted": False, "not_run": "the boot failed with the target reachable"}

        # ---- 4: _netdev + nofail, target unreachable at boot: the VM boots, the file system is simply not mounted.
        res = lab.module(HOST, "fstab_netdev", {"path": [MNT], "nofail": True})
        assert res["changed"] and "_netdev,nofail" in sh(lab, "grep '^LABEL=%s ' /etc/fstab" % LABEL).stdout
        sh(lab, "systemctl daemon-reload")
        if rescued["saved"]:
            # The guest runs with fstab=no since its rescue: boot it normally again (the fstab is fixed now).
            saved, rescued["saved"] = rescued["saved"], None
            rootiscsi.restore_vm(lab._ctl, HOST, saved)
        lab.cut_path(HOST)
        try:
            boot = rootiscsi.reboot(lab._ctl, HOST, timeout=400)
            st = state(lab, iqn)
            facts["netdev_nofail_target_down"] = dict(st, booted=True, seconds=boot["seconds"],
                                                      console_errors=kernel_errors(boot["console"]))
        finally:
            lab.restore_path(HOST)
        assert st["mount_source"] == "" and st["system"] in ("running", "degraded", "starting"), st
    finally:
        report = os.environ.get("LAB_BOOT_REPORT")
        if report:
            with open(report + ".fstab.json", "w") as fh:
                json.dump(facts, fh, indent=2, sort_keys=True)
        print("\nBOOT FACTS (fstab): " + json.dumps(facts, indent=2, sort_keys=True))
        # Put the guest back: rescue it first when a failed step left it in emergency mode.
        if rescued["saved"] is None and rootiscsi.boot_id(lab._ctl, HOST, timeout=30) is None:
            rescued["saved"] = rootiscsi.rescue(lab._ctl, HOST)
        sh(lab, "umount %s 2>/dev/null; rmdir %s 2>/dev/null; [ -f %s ] && cp -p %s /etc/fstab && rm -f %s; "
                "[ -f %s ] && cp -p %s /etc/default/open-iscsi && rm -f %s; systemctl daemon-reload; "
                "%s -u >/dev/null 2>&1; %s -o delete >/dev/null 2>&1; true"
                % (MNT, MNT, SAVE, SAVE, SAVE, SAVE_DEFAULT, SAVE_DEFAULT, SAVE_DEFAULT, node, node), check=False)
        if rescued["saved"] is not None:
            rootiscsi.restore_vm(lab._ctl, HOST, rescued["saved"])
