# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lab test 2: root on iSCSI.  A Debian root file system on a lab target LUN, the ``initramfs`` module, and a
DISKLESS boot of the initiator VM from kernel + initrd (lab/rootiscsi.py does the QEMU side).

1. The target VM exports a copy-on-write copy of the guest image as LUN 1 of ``tgt-root``.
2. init1 (booted from its own disk) is the builder: it logs in, mounts the LUN, names the system
   (``initiator_name`` with ``root``), runs ``initramfs`` with ``root`` (explicit target, ``network_keep`` for the
   lab NIC; check mode predicts, the run writes, then ``initramfs_rebuild_needed``), rebuilds that system's initramfs
   in a chroot, and ``initramfs`` then finds the image up to date (it unpacks and reads it).
3. init1 is restarted WITHOUT a disk from that kernel + initrd: ``/`` must be the iSCSI LUN.  It must survive the boot,
   ``systemctl restart systemd-networkd`` and a 8 s cut of its path (iscsid took the session over and recovers it);
   the ``info`` module reports the root session LOGGED_IN; ``initramfs`` refuses the opt-out.
4. CHAP + mutual CHAP: the target now demands them; ``initramfs`` with the credentials and ``rebuild: true`` on the
   running root-on-iSCSI VM (0600 file, secrets nowhere in the output, second run changes nothing and rebuilds
   nothing); a second diskless boot from the rebuilt initrd logs in with CHAP (sysfs shows the user names).

Finally init1 is restarted from its own disk and the root target is removed.  Facts and timings are printed (and
written to ``$LAB_BOOT_REPORT.root.json`` when that is set).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lab"))
import rootiscsi  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = pytest.mark.lab

HOST = "init1"
MNTR = "/mnt/lunroot"
NIC = "eth1"   # the lab NIC (net.ifnames=0: eth0 is the management NIC)
BIND = ("proc", "sys", "dev")


def sh(lab, cmd, check=True, timeout=300):
    return lab.ssh(HOST, cmd, check=check, timeout=timeout)


def fetch(lab, remote, local):
    port = lab.hosts[HOST]["ssh_port"]
    with open(local, "wb") as fh:
        subprocess.run(lab._ctl.ssh_cmd(port) + ["cat " + shlex.quote(remote)], stdout=fh, check=True, timeout=600)
    assert os.path.getsize(local) > 1 << 20, "%s is too small to be an initramfs" % local


def root_session(lab):
    """sid, state, CHAP user names of the session carrying / (from sysfs), and the device / is mounted from."""
    script = r'''
src=$(findmnt -no SOURCE /); echo "source=$src"
disk=$(lsblk -no PKNAME "$src" 2>/dev/null | head -1); [ -n "$disk" ] || disk=${src#/dev/}
echo "tran=$(lsblk -dno TRAN /dev/$disk)"
for s in /sys/class/iscsi_session/session*; do
  ls $s/device/target*/*/block/ 2>/dev/null | grep -qx "$disk" || continue
  echo "sid=${s##*session}"; echo "state=$(cat $s/state)"; echo "target=$(cat $s/targetname)"
  echo "username=$(cat $s/username 2>/dev/null)"; echo "username_in=$(cat $s/username_in 2>/dev/null)"
done
echo "iscsid=$(systemctl is-active iscsid.service)"
echo "iscsid_view=$(iscsiadm -m session -P 1 2>/dev/null | grep -m1 'iSCSI Connection State' | sed 's/.*: //')"
echo "interface_note=$(cat /run/initramfs/open-iscsi.interface 2>/dev/null)"
links=/run/systemd/netif/links/$(cat /sys/class/net/%s/ifindex)
echo "network_file=$(sed -n 's/^NETWORK_FILE=//p' $links 2>/dev/null)"
echo "networkd_state=$(sed -n 's/^ADMIN_STATE=//p' $links 2>/dev/null)"
echo "nic_addresses=$(ip -o -4 addr show dev %s | awk '{print $4}' | tr '\n' ' ')"
echo "conn_errors=$(dmesg | grep -c 'conn error')"
echo "conn_error_lines=$(dmesg | grep 'conn error' | tail -n 3 | sed 's/^\[ *[0-9.]*\] //' | tr '\n' '|')"
echo "io_errors=$(dmesg | grep -c 'I/O error')"
''' % (NIC, NIC)
    out = sh(lab, script).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def write_probe(lab):
    sh(lab, "date >>/var/tmp/root-iscsi-probe && sync", timeout=120)


def test_root_on_iscsi_boot(lab, tmp_path):
    ctl = lab._ctl
    facts = {"timings": {}}
    t_all = time.monotonic()
    h = lab.hosts[HOST]
    portal_ip = lab.data["portals"][0]["address"]
    chap = lab.target("chap")["auth"]["incoming"]
    mutual_out = lab.target("mutual")["auth"]["outgoing"]
    kernel = os.path.join(lab.data["image"], "vmlinuz")
    q = shlex.quote
    node = "iscsiadm -m node -T %s -p %s:3260" % (q(rootiscsi.ROOT_IQN), portal_ip)
    append = ["root=LABEL=labroot", "ip=%s:::255.255.255.0::%s:off" % (h["lab_ip"], NIC)]
    base_args = {"target_name": rootiscsi.ROOT_IQN, "target_ip": [portal_ip], "port": 3260,
                 "initiator": h["iqn"], "network_keep": True}
    diskless = False
    saved = rootiscsi.vm_cmdline(ctl, HOST)
    try:
        t0 = time.monotonic()
        rootiscsi.add_root_lun(ctl)
        # ---- 2. the builder
        sh(lab, "%s -o new >/dev/null && %s -l >/dev/null" % (node, node))
        disk = "/dev/disk/by-path/ip-%s:3260-iscsi-%s-lun-1" % (portal_ip, rootiscsi.ROOT_IQN)
        sh(lab, "udevadm settle; for i in $(seq 30); do [ -e %s ] && break; sleep 1; done; mkdir -p %s && "
                "mount %s %s" % (q(disk), MNTR, q(disk), MNTR))
        # Lab preparation, not the collection's business: the NIC driver in the initramfs, rebuilds allowed (the
        # lab image turns them off), / by label.
        sh(lab, "printf 'virtio_net\\n' >>{r}/etc/initramfs-tools/modules && "
                "sed -i 's/^update_initramfs=.*/update_initramfs=yes/' {r}/etc/initramfs-tools/update-initramfs.conf "
                "&& sed -i 's|^/dev/vda / |LABEL=labroot / |' {r}/etc/fstab".format(r=MNTR))
        named = lab.module(HOST, "initiator_name", {"root": MNTR, "name": h["iqn"]})
        assert not named["failed"], named
        args = dict(base_args, root=MNTR, network_interfaces=[NIC])
        checked = lab.module(HOST, "initramfs", args, check=True, diff=True)
        assert not checked["failed"], checked
        own = "/etc/systemd/network/05-openiscsi-root-%s.network" % NIC
        assert checked["changed"] and checked["changed_files"] == ["/etc/iscsi/iscsi.initramfs", own], checked
        assert sh(lab, "test -e %s/etc/iscsi/iscsi.initramfs" % MNTR, check=False).returncode == 1
        done = lab.module(HOST, "initramfs", args, diff=True)
        assert done["changed_files"] == checked["changed_files"] and done["diff"] == checked["diff"]
        assert done["initramfs_rebuild_needed"] and done["iscsid_enabled"], done
        # The lab image's initramfs uses MODULES=list without the SCSI disk driver: the module says so.
        assert "no SCSI disk driver (sd_mod)" in done["_raw"]
        sh(lab, "echo sd_mod >>%s/etc/initramfs-tools/modules" % MNTR)
        assert "ISCSI_TARGET_NAME=%s" % rootiscsi.ROOT_IQN in sh(lab, "cat %s/etc/iscsi/iscsi.initramfs" % MNTR).stdout
        t1 = time.monotonic()
        sh(lab, "for d in %s; do mount --bind /$d %s/$d; done; chroot %s update-initramfs -u -k all >/dev/null; "
                "rc=$?; for d in %s; do umount %s/$d; done; exit $rc"
                % (" ".join(BIND), MNTR, MNTR, " ".join(reversed(BIND)), MNTR), timeout=1500)
        facts["timings"]["chroot_update_initramfs_s"] = round(time.monotonic() - t1, 1)
        fresh = lab.module(HOST, "initramfs", args)
        assert not fresh["changed"] and not fresh["initramfs_rebuild_needed"], fresh
        assert "sd_mod" not in fresh["_raw"]
        initrd = str(tmp_path / "initrd-explicit.img")
        fetch(lab, sh(lab, "ls %s/boot/initrd.img-* | tail -1" % MNTR).stdout.strip(), initrd)
        sh(lab, "umount %s && %s -u >/dev/null && %s -o delete" % (MNTR, node, node))
        facts["timings"]["builder_s"] = round(time.monotonic() - t0, 1)

        # ---- 3. diskless boot from the LUN
        diskless = True
        boot = rootiscsi.boot_diskless(ctl, HOST, saved, kernel, initrd, append)
        facts["timings"]["diskless_boot_to_ssh_s"] = boot["seconds"]
        st = root_session(lab)
        facts["after_boot"] = st
        assert st["tran"] == "iscsi" and st["target"] == rootiscsi.ROOT_IQN and st["state"] == "LOGGED_IN", st
        assert st["iscsid"] == "active" and st["iscsid_view"] == "LOGGED IN", st
        # A connection error during the boot (recorded in the facts) is survivable when the session is logged in
        # again and no I/O failed; the network restart below must add none.
        assert st["io_errors"] == "0", st
        assert st["interface_note"] == NIC and st["network_file"] == own, st
        write_probe(lab)
        sh(lab, "systemctl restart systemd-networkd")
        time.sleep(20)
        write_probe(lab)
        st = root_session(lab)
        facts["after_networkd_restart"] = st
        assert st["state"] == "LOGGED_IN" and st["io_errors"] == "0", st
        assert st["conn_errors"] == facts["after_boot"]["conn_errors"], st
        lab.cut_path(HOST)
        time.sleep(8)
        lab.restore_path(HOST)
        lab.wait_for(lambda: root_session(lab)["state"] == "LOGGED_IN", timeout=90, what="root session back")
        write_probe(lab)
        st = root_session(lab)
        facts["after_path_cut"] = st
        assert st["io_errors"] == "0", st
        info = lab.module(HOST, "info", {})
        assert info["root_on_iscsi"] is True, info
        sess = [s for s in info["sessions"] if s["targetname"] == rootiscsi.ROOT_IQN]
        assert sess and sess[0]["state"] == "LOGGED_IN", info["sessions"]
        live = lab.module(HOST, "initramfs", dict(base_args), check=True)
        assert not live["changed"] and not live["initramfs_rebuild_needed"], live
        assert live["root_on_iscsi"] and live["network"]["interfaces"] == [NIC], live
        refused = lab.module(HOST, "initramfs", {"include_in_initramfs": False})
        assert refused["failed"] and "refusing" in refused["msg"] and "root file system" in refused["msg"], refused
        assert sh(lab, "test -e /etc/initramfs-tools/conf.d/open-iscsi", check=False).returncode == 1

        # ---- 4. CHAP + mutual CHAP, rebuilt on the running root-on-iSCSI system
        rootiscsi.set_root_chap(ctl, incoming=chap, outgoing=mutual_out)
        chap_args = dict(base_args, username=chap["username"], password=chap["password"],
                         username_in=mutual_out["username"], password_in=mutual_out["password"], rebuild=True)
        t1 = time.monotonic()
        res = lab.module(HOST, "initramfs", chap_args, diff=True)
        facts["timings"]["in_vm_rebuild_s"] = round(time.monotonic() - t1, 1)
        assert not res["failed"], res
        assert res["changed"] and res["rebuilt"] and res["initramfs_rebuild_needed"], res
        for secret in (chap["password"], mutual_out["password"]):
            assert secret not in res["_raw"]
        assert sh(lab, "stat -c %a /etc/iscsi/iscsi.initramfs").stdout.strip() == "600"
        again = lab.module(HOST, "initramfs", chap_args)
        assert not again["changed"] and not again["rebuilt"] and not again["initramfs_rebuild_needed"], again
        initrd2 = str(tmp_path / "initrd-chap.img")
        fetch(lab, "/boot/initrd.img-" + sh(lab, "uname -r").stdout.strip(), initrd2)
        boot = rootiscsi.boot_diskless(ctl, HOST, saved, kernel, initrd2, append)
        facts["timings"]["chap_boot_to_ssh_s"] = boot["seconds"]
        st = root_session(lab)
        facts["after_chap_boot"] = st
        assert st["state"] == "LOGGED_IN" and st["username"] == chap["username"], st
        assert st["username_in"] == mutual_out["username"], st
        write_probe(lab)
    finally:
        t1 = time.monotonic()
        if diskless:
            rootiscsi.restore_vm(ctl, HOST, saved)
        else:
            sh(lab, "for d in %s; do umount %s/$d 2>/dev/null; done; umount %s; %s -u; %s -o delete; true"
                    % (" ".join(reversed(BIND)), MNTR, MNTR, node, node), check=False)
        rootiscsi.set_root_chap(ctl)
        rootiscsi.remove_root_lun(ctl)
        facts["timings"]["restore_s"] = round(time.monotonic() - t1, 1)
        facts["timings"]["total_s"] = round(time.monotonic() - t_all, 1)
        report = os.environ.get("LAB_BOOT_REPORT")
        if report:
            with open(report + ".root.json", "w") as fh:
                json.dump(facts, fh, indent=2, sort_keys=True)
        print("\nBOOT FACTS (root on iSCSI): " + json.dumps(facts, indent=2, sort_keys=True))
    # init1 is back on its own disk
    assert sh(lab, "findmnt -no SOURCE /").stdout.strip() == "/dev/vda"
