# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fstab_netdev's planner on the captured bookworm tree (session1: sda + partition sda1, sdb; session2: sdc; local
vda), with udev links, device-mapper/LVM stacks and /dev nodes added the way udev lays them out."""

from __future__ import annotations

import os
import sys

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _boot_plan as B
from ansible_collections.openiscsi.initiator.plugins.module_utils._fstab import Fstab

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures"))
import fixturetree  # noqa: E402  pylint: disable=wrong-import-position

UUID = "0a3d6f2e-3d1c-4c55-9d1a-6b1f0e3c7a11"
PARTUUID = "7c1e2a55-01"


def link(root, path, target):
    full = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    os.symlink(target, full)


def put(root, path, text=""):
    full = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as fh:
        fh.write(text)


def add_dm(root, name, dm_name, slaves):
    """A device-mapper device stacked on *slaves* (kernel names), with /dev/mapper and /dev/VG/LV links."""
    base = "sys/devices/virtual/block/" + name
    put(root, base + "/dev", "254:%s\n" % name[3:])
    put(root, base + "/dm/name", dm_name + "\n")
    for slave in slaves:
        real = os.path.realpath(os.path.join(root, "sys/class/block", slave))
        link(root, base + "/slaves/" + slave, os.path.relpath(real, os.path.join(root, base, "slaves")))
    link(root, "sys/class/block/" + name, "../../devices/virtual/block/" + name)
    put(root, "dev/" + name)
    link(root, "dev/mapper/" + dm_name, "../" + name)
    vg, lv = dm_name.split("-", 1)
    link(root, "dev/%s/%s" % (vg, lv), "../" + name)


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """Built once per module: tests only read it, or add links under names of their own."""
    root = fixturetree.materialize("bookworm-logged-in", tmp_path_factory.mktemp("bookworm"))
    for dev in ("sda", "sda1", "sdb", "sdc", "vda"):
        put(root, "dev/" + dev)
    link(root, "dev/disk/by-uuid/" + UUID, "../../sda1")
    link(root, "dev/disk/by-uuid/5B1C-2F0A", "../../vda")
    link(root, "dev/disk/by-partuuid/" + PARTUUID, "../../sda1")
    link(root, "dev/disk/by-label/my\\x20data", "../../sdb")
    add_dm(root, "dm-0", "vgiscsi-lv", ["sdc"])
    add_dm(root, "dm-1", "vgmixed-lv", ["vda", "sdb"])
    add_dm(root, "dm-2", "vglocal-lv", ["vda"])
    add_dm(root, "dm-3", "crypt-data", ["dm-0"])  # LUKS on LVM on iSCSI
    return root


FSTAB = (
    "# /etc/fstab\n"
    "/dev/vda / ext4 errors=remount-ro 0 1\n"                                              # 2 local
    "UUID=%s /mnt/lab ext4 defaults 0 2\n" % UUID +                                        # 3 sda1
    "LABEL=my\\040data /srv/label xfs noatime 0 0\n"                                       # 4 sdb
    "/dev/mapper/vgiscsi-lv /srv/lv ext4 defaults 0 2\n"                                   # 5 dm-0 -> sdc
    "/dev/vgmixed/lv /srv/mixed ext4 defaults 0 2\n"                                       # 6 dm-1 -> vda+sdb
    "/dev/vglocal/lv /srv/local ext4 defaults 0 2\n"                                       # 7 dm-2 -> vda
    "PARTUUID=%s none swap sw 0 0\n" % PARTUUID +                                          # 8 sda1
    "/dev/disk/by-path/ip-10.213.0.1:3260-iscsi-iqn.2025-01.lab.openiscsi:tgt-open-lun-2 /srv/bp ext4 rw 0 0\n"
    "UUID=ffffffff-0000-0000-0000-000000000000 /srv/gone ext4 defaults 0 0\n"             # 10 missing
    "server:/x /mnt/nfs nfs4 defaults 0 0\n"                                               # 11 nfs
    "/srv/label /export none bind 0 0\n"                                                   # 12 bind
    "tmpfs /tmp tmpfs defaults 0 0\n"                                                      # 13 tmpfs
    "/dev/mapper/crypt-data /srv/crypt ext4 defaults 0 2\n"                                # 14 dm-3 -> dm-0 -> sdc
    "/dev/sdc /srv/dup ext4 defaults 0 2\n"                                                # 15
    "/dev/sdb /srv/dup ext4 _netdev 0 2\n"                                                 # 16
    "UUID=5B1C-2F0A /boot/efi vfat umask=0077 0 1"                                         # 17 vda, no newline
)


def by_line(plan):
    return dict((e["line"], e) for e in plan["entries"])


@pytest.mark.parametrize("source,device", [
    ("UUID=" + UUID, "sda1"), ('UUID="%s"' % UUID, "sda1"), ("UUID=" + UUID.upper(), "sda1"),
    ("PARTUUID=" + PARTUUID, "sda1"), ("LABEL=my data", "sdb"), ("/dev/sda1", "sda1"),
    ("/dev/mapper/vgiscsi-lv", "dm-0"), ("/dev/vgiscsi/lv", "dm-0"), ("/dev/vda", "vda"),
    ("/dev/disk/by-path/ip-10.213.0.1:3260-iscsi-iqn.2025-01.lab.openiscsi:tgt-open-lun-1-part1", "sda1"),
])
def test_resolve_source(host, source, device):
    name, how = B.resolve_source(host, source)
    assert name == device, how


@pytest.mark.parametrize("source", ["/dev/nope", "UUID=nope", "LABEL=x", "server:/x", "/dev/../etc/passwd"])
def test_resolve_source_not_found(host, source):
    assert B.resolve_source(host, source)[0] is None


def test_lookup_callable_used_when_no_udev_link(host):
    calls = []

    def lookup(tag, value):
        calls.append((tag, value))
        return "/dev/sdc"
    assert B.resolve_source(host, "LABEL=nolink", lookup)[0] == "sdc"
    assert calls == [("LABEL", "nolink")]


def test_absolute_link_targets_stay_inside_root(host):
    link(host, "dev/disk/by-id/abs", "/dev/sdb")
    assert B.resolve_source(host, "/dev/disk/by-id/abs")[0] == "sdb"


def test_link_loop_is_not_found(host):
    link(host, "dev/loop-a", "loop-b")
    link(host, "dev/loop-b", "loop-a")
    assert B.resolve_source(host, "/dev/loop-a")[0] is None


def test_udev_encoding():
    assert B.udev_encode("my data/x") == "my\\x20data\\x2fx"
    assert B.udev_encode("ok-._#+:=@") == "ok-._#+:=@"


def test_detect_plan(host):
    fs = Fstab.parse(FSTAB)
    plan = B.plan_fstab(fs, root=host, detect=True, add=["_netdev"])
    e = by_line(plan)
    assert e[2]["on_iscsi"] is False and e[2]["action"] == "skipped"
    assert e[3]["on_iscsi"] and e[3]["sessions"] == [1] and e[3]["disks"] == ["sda"] and e[3]["action"] == "changed"
    assert e[4]["device"] == "sdb" and e[4]["action"] == "changed"
    assert e[5]["sessions"] == [2] and e[5]["action"] == "changed"
    assert e[6]["on_iscsi"] and sorted(e[6]["disks"]) == ["sdb", "vda"] and e[6]["action"] == "changed"
    assert e[7]["on_iscsi"] is False and e[7]["action"] == "skipped"
    assert e[8]["on_iscsi"] and e[8]["action"] == "changed"  # swap on iSCSI
    assert e[9]["device"] == "sdb" and e[9]["action"] == "changed"
    assert e[10]["device"] is None and "no block device" in e[10]["reason"]
    assert "network" in e[11]["reason"] and "bind mount" in e[12]["reason"] and "virtual" in e[13]["reason"]
    assert e[14]["sessions"] == [2] and e[14]["action"] == "changed"
    assert e[15]["action"] == "changed" and e[16]["action"] == "unchanged"
    assert e[17]["on_iscsi"] is False
    assert plan["changed_lines"] == [3, 4, 5, 6, 8, 9, 14, 15]
    assert plan["duplicates"] == {"/srv/dup": [15, 16]}
    out = fs.render()
    old_lines = FSTAB.split("\n")
    new_lines = out.split("\n")
    for n, (a, b) in enumerate(zip(old_lines, new_lines), 1):
        if n in plan["changed_lines"]:
            assert b != a and "_netdev" in b
        else:
            assert a == b
    assert not out.endswith("\n")


def test_root_on_iscsi_reported_not_changed_by_detect(host):
    fs = Fstab.parse("/dev/sdc / ext4 defaults 0 1\n")
    plan = B.plan_fstab(fs, root=host, detect=True, add=["_netdev"])
    assert plan["entries"][0]["on_iscsi"] and plan["entries"][0]["action"] == "skipped"
    assert "initramfs" in plan["entries"][0]["reason"]
    plan = B.plan_fstab(fs, root=host, paths=["/"], add=["_netdev"])
    assert plan["entries"][0]["action"] == "changed"


def test_explicit_selection_changes_local_entries_and_reports_missing(host):
    fs = Fstab.parse(FSTAB)
    plan = B.plan_fstab(fs, root=host, paths=["/srv/local", "/nope"], sources=["/dev/vda", "/dev/nope"],
                        add=["_netdev", "nofail"])
    e = by_line(plan)
    assert e[7]["action"] == "changed" and "listed in path" in e[7]["reason"]
    assert e[2]["action"] == "changed" and "listed in src" in e[2]["reason"]
    assert plan["missing"] == {"path": ["/nope"], "src": ["/dev/nope"]}
    assert "/dev/vglocal/lv /srv/local ext4 defaults,_netdev,nofail 0 2\n" in fs.render()


def test_unbalanced_quote_line_is_reported_not_changed(host):
    fs = Fstab.parse('/dev/sdc /d ext4 a="b 0 0\n')
    plan = B.plan_fstab(fs, root=host, detect=True, add=["_netdev"])
    assert plan["entries"][0]["action"] == "skipped" and "unbalanced" in plan["entries"][0]["reason"]
    assert fs.render() == '/dev/sdc /d ext4 a="b 0 0\n'
