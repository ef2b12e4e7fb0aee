# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lab test: a file system of initiator_filesystems on a record made by discovery (node.startup = manual on Debian)
is still mounted after a REBOOT, because the role makes the records under its file systems automatic.

Before that role step, the play mounted the file system and the reboot silently did not (nofail): the session of a
manual record is not logged in by open-iscsi.service.  One reboot (a TCG boot costs 30-60 s); the guest is put back
(fstab, records) in a ``finally``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time

import pytest

LABCTL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lab", "labctl")

pytestmark = pytest.mark.lab

HOST = "init1"
MNT = "/mnt/startupdata"
SAVE = "/root/fstab.boot-startup.orig"

PLAY = """---
- name: The initiator role with discovery, a session and a file system
  hosts: %s
  gather_facts: false
  roles:
    - role: openiscsi.initiator.initiator
"""


def sh(lab, cmd, check=True, timeout=300):
    return lab.ssh(HOST, cmd, check=check, timeout=timeout)


def startup(lab, iqn, portal):
    """node.startup of the record as iscsiadm reads it."""
    out = sh(lab, "iscsiadm -m node -T %s -p %s | sed -n 's/^node.startup = //p'" % (shlex.quote(iqn), portal))
    return out.stdout.strip()


def task(res, name):
    """The recorded result of the role task called *name* on HOST (task names carry the role's name in front)."""
    found = [r for r in res.results if r["host"] == HOST and r["task"].endswith(name)]
    assert len(found) == 1, [r["task"] for r in res.results]
    return found[0]


def test_netdev_file_system_on_a_discovered_record_is_mounted_after_reboot(lab, tmp_path):
    iqn = lab.target("open")["iqn"]
    portal = lab.portal(0)
    disk = "/dev/disk/by-path/ip-%s-iscsi-%s-lun-1" % (portal, iqn)
    play = tmp_path / "play.yml"
    play.write_text(PLAY % HOST)
    extra = {
        "initiator_discovery": [{"portals": [portal], "only_targets": [iqn]}],
        "initiator_sessions": [{"target": iqn, "portal": portal}],
        "initiator_filesystems": [{"path": MNT, "device": disk, "src": disk, "fstype": "ext4", "mkfs": True,
                                   "label": "startupdata"}],
    }
    lab.forget_targets(HOST)
    sh(lab, "cp -p /etc/fstab %s" % SAVE)
    try:
        res = lab.playbook(str(play), extra_vars=extra)
        assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
        disc = task(res, "Discovery | portals without discovery CHAP")["result"]["results"][0]
        # discovery made the record (manual: Debian's iscsid.conf) and kept only the asked target
        assert [c["target"] for c in disc["created"]] == [iqn] and disc["filtered_out"], disc
        fixed = task(res, "File systems | their records log in at boot (node.startup = automatic)")
        assert fixed["status"] == "ok" and fixed["result"]["changed"] is True, fixed
        assert startup(lab, iqn, portal) == "automatic"
        assert sh(lab, "findmnt -no SOURCE %s" % MNT).stdout.strip()

        again = lab.playbook(str(play), extra_vars=extra)
        assert again.returncode == 0, again.stdout[-4000:]
        changed = [r["task"] for r in again.results if r["host"] == HOST and r["result"].get("changed")]
        assert changed == [], changed

        # the documented way to reboot a guest (lab/README.md), with its output: no "Failed to connect to bus"
        t0 = time.monotonic()
        boot = subprocess.run([sys.executable, LABCTL, "reboot", HOST, "--timeout", "400"], capture_output=True,
                              text=True, timeout=600, check=False, env=dict(os.environ, LAB_STATE_DIR=lab._ctl.dir))
        print("\nreboot took %.1f s: %s" % (time.monotonic() - t0, boot.stderr.strip()))
        assert boot.returncode == 0, boot.stdout + boot.stderr
        assert "bus" not in boot.stdout + boot.stderr, boot.stdout + boot.stderr
        sh(lab, "timeout 300 systemctl is-system-running --wait >/dev/null 2>&1; true")
        state = sh(lab, "for d in /sys/class/iscsi_session/session*; do [ \"$(cat $d/targetname)\" = %s ] && "
                        "cat $d/state; done; true" % shlex.quote(iqn)).stdout.split()
        assert state == ["LOGGED_IN"], state
        src = sh(lab, "findmnt -no SOURCE %s" % MNT, check=False).stdout.strip()
        assert src, "%s is not mounted after the reboot" % MNT
    finally:
        sh(lab, "umount %s 2>/dev/null; rmdir %s 2>/dev/null; [ -f %s ] && cp -p %s /etc/fstab && rm -f %s; "
                "systemctl daemon-reload; true" % (MNT, MNT, SAVE, SAVE, SAVE), check=False)
        lab.forget_targets(HOST)
