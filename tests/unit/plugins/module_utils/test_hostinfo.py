# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _hostinfo

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures"))
import fixturetree  # noqa: E402  pylint: disable=wrong-import-position


def put(root, path, text):
    full = os.path.join(str(root), path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as handle:
        handle.write(text)
    return full


def link(root, path, target):
    full = os.path.join(str(root), path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    os.symlink(target, full)


STATUS = """Package: dpkg
Status: install ok installed
Priority: required
Architecture: amd64
Version: 1.21.22
Description: Debian package management system
 This package provides the low-level infrastructure for handling the
 installation and removal of Debian software packages.
 .
 more.

Package: open-iscsi
Status: install ok installed
Architecture: amd64
Version: 2.1.8-1+deb12u1
Conffiles:
 /etc/iscsi/iscsid.conf 0123456789abcdef

Package: iscsiuio
Status: deinstall ok config-files
Architecture: amd64
Version: 2.1.8-1

Package: libc6
Status: install ok installed
Architecture: i386
Version: 2.36-9

Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9
"""


# ----------------------------------------------------------------------------------------------- dpkg
def test_parse_dpkg_status():
    pkgs = _hostinfo.parse_dpkg_status(STATUS)
    assert pkgs["open-iscsi"] == {"version": "2.1.8-1+deb12u1", "architecture": "amd64",
                                  "status": "install ok installed"}
    assert "iscsiuio" not in pkgs  # only its configuration files are left
    assert pkgs["libc6"]["architecture"] == "i386" and pkgs["libc6"]["other_architectures"] == ["amd64"]
    assert pkgs["dpkg"]["version"] == "1.21.22"
    assert _hostinfo.parse_dpkg_status("") == {} and _hostinfo.parse_dpkg_status(None) == {}


def test_open_iscsi_version_from_dpkg_runs_nothing(tmp_path):
    put(tmp_path, "/var/lib/dpkg/status", STATUS)
    calls = []
    got = _hostinfo.open_iscsi_version(str(tmp_path), run=lambda argv: calls.append(argv) or (0, "", ""))
    assert got == {"version": "2.1.8-1+deb12u1", "source": "dpkg", "architecture": "amd64"}
    assert calls == []


def test_open_iscsi_version_falls_back_to_iscsiadm(tmp_path):
    calls = []

    def run(argv):
        calls.append(argv)
        return 0, "iscsiadm version 2.1.9\n", ""

    got = _hostinfo.open_iscsi_version(str(tmp_path), run=run)
    assert got == {"version": "2.1.9", "source": "iscsiadm", "architecture": None}
    assert calls == [["iscsiadm", "--version"]]


@pytest.mark.parametrize("run", [
    None,
    lambda argv: (127, "", "not found"),
    lambda argv: (0, "garbage", ""),
    "raises",
])
def test_open_iscsi_version_unknown(tmp_path, run):
    def raising(argv):
        raise OSError("no such file: %s" % argv[0])

    got = _hostinfo.open_iscsi_version(str(tmp_path), run=raising if run == "raises" else run)
    assert got == {"version": None, "source": None, "architecture": None}


VERSIONS = ["2.1.8-1+deb12u1", "2.1.10-2", "2.1.10-3", "2.1.10-3~bpo12+1", "2.1.10-3+b1", "2.1.11-1+deb13u2",
            "2.1.10~rc1-1", "1:1.0", "1.0a", "1.0~"]


@pytest.mark.parametrize("a, b, expected", [
    ("2.1.8-1", "2.1.10-3", -1),
    ("2.1.10-3", "2.1.10-3", 0),
    ("2.1.10-3+b1", "2.1.10-3", 1),
    ("2.1.10-3~bpo12+1", "2.1.10-3", -1),
    ("2.1.10~rc1-1", "2.1.10-1", -1),
    ("1:1.0", "9.9-9", 1),
    ("1.0a", "1.0", 1),
    ("1.0~", "1.0", -1),
    ("1.0-0", "1.0", 0),
    ("2.1.11-1+deb13u2", "2.1.10-3", 1),
])
def test_compare_versions(a, b, expected):
    assert _hostinfo.compare_versions(a, b) == expected
    assert _hostinfo.compare_versions(b, a) == -expected  # pylint: disable=arguments-out-of-order


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg as the reference")
def test_compare_versions_agrees_with_dpkg():
    for i, a in enumerate(VERSIONS):
        for b in VERSIONS[i:]:
            mine = _hostinfo.compare_versions(a, b)
            ref = 0 if subprocess.run(["dpkg", "--compare-versions", a, "eq", b], check=False).returncode == 0 else (
                -1 if subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=False).returncode == 0 else 1)
            assert mine == ref, (a, b)


# ----------------------------------------------------------------------------------------------- init system
@pytest.mark.parametrize("marker, comm, expected", [
    (True, "systemd\n", "systemd"),
    (True, None, "systemd"),
    (False, "systemd\n", "systemd"),
    (False, "init\n", "sysvinit"),
    (False, "openrc-init\n", "openrc"),
    (False, "bash\n", "bash"),
    (False, None, "unknown"),
])
def test_init_system(tmp_path, marker, comm, expected):
    if marker:
        os.makedirs(os.path.join(str(tmp_path), "run/systemd/system"))
    if comm is not None:
        put(tmp_path, "/proc/1/comm", comm)
    assert _hostinfo.init_system(str(tmp_path)) == expected


# ----------------------------------------------------------------------------------------------- mounts
MOUNTINFO = """22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
23 22 0:21 / /proc rw,nosuid shared:12 - proc proc rw
30 22 8:17 / /usr rw,relatime shared:2 - ext4 /dev/sdb1 rw
31 22 0:40 / /mnt/with\\040space rw - tmpfs tmp\\040fs rw
32 22 0:41 / / rw - overlay overlay rw
"""


def test_parse_mountinfo_and_mount_of():
    mounts = _hostinfo.parse_mountinfo(MOUNTINFO)
    assert mounts[0] == {"mountpoint": "/", "majmin": "254:0", "fstype": "ext4", "source": "/dev/vda"}
    assert mounts[3]["mountpoint"] == "/mnt/with space" and mounts[3]["source"] == "tmp fs"
    assert _hostinfo.mount_of(mounts, "/")["fstype"] == "overlay"  # the last mount on / is the visible one
    assert _hostinfo.mount_of(mounts, "/srv") is None


def test_parse_proc_mounts():
    mounts = _hostinfo.parse_proc_mounts("/dev/sdb1 / ext4 rw 0 0\nproc /proc proc rw 0 0\n")
    assert mounts[0] == {"mountpoint": "/", "majmin": None, "fstype": "ext4", "source": "/dev/sdb1"}


def iscsi_host(tmp_path, partition=True):
    """session1 with sdb (8:16) and, optionally, its partition sdb1 (8:17); a local vda (254:0)."""
    scls = fixturetree.add_session(tmp_path, 1, host=2, luns=[(1, "sdb", "running")])
    sdb = os.path.join(os.path.dirname(os.path.dirname(scls)), "target2:0:0", "2:0:0:1", "block", "sdb")
    root = str(tmp_path)
    if partition:
        put(tmp_path, os.path.relpath(os.path.join(sdb, "sdb1", "partition"), root), "1\n")
        put(tmp_path, os.path.relpath(os.path.join(sdb, "sdb1", "dev"), root), "8:17\n")
        part = os.path.join(sdb, "sdb1")
        link(tmp_path, "/sys/dev/block/8:17", os.path.relpath(part, os.path.join(root, "sys/dev/block")))
        link(tmp_path, "/sys/class/block/sdb1", os.path.relpath(part, os.path.join(root, "sys/class/block")))
    vda = "sys/devices/pci0000:00/0000:00:04.0/virtio1/block/vda"
    put(tmp_path, vda + "/dev", "254:0\n")
    link(tmp_path, "/sys/dev/block/254:0", "../../devices/pci0000:00/0000:00:04.0/virtio1/block/vda")
    link(tmp_path, "/sys/class/block/vda", "../../devices/pci0000:00/0000:00:04.0/virtio1/block/vda")
    return sdb


def test_root_local_usr_on_iscsi_partition(tmp_path):
    iscsi_host(tmp_path)
    put(tmp_path, "/proc/self/mountinfo", MOUNTINFO.split("31 22", maxsplit=1)[0])
    root_info, usr_info = _hostinfo.root_usr_on_iscsi(str(tmp_path))
    assert root_info["on_iscsi"] is False and root_info["disks"] == ["vda"]
    assert usr_info == {"mountpoint": "/usr", "mounted": True, "source": "/dev/sdb1", "fstype": "ext4",
                        "disks": ["sdb"], "sessions": [1], "on_iscsi": True}


def test_root_on_iscsi_whole_disk_and_usr_follows_root(tmp_path):
    iscsi_host(tmp_path, partition=False)
    put(tmp_path, "/proc/self/mountinfo", "22 1 8:16 / / rw - ext4 /dev/sdb rw\n")
    root_info, usr_info = _hostinfo.root_usr_on_iscsi(str(tmp_path))
    assert root_info["on_iscsi"] is True and root_info["sessions"] == [1]
    assert usr_info["on_iscsi"] is True and usr_info["mounted"] is False


def test_root_on_lvm_over_iscsi_via_slaves(tmp_path):
    sdb = iscsi_host(tmp_path)
    dm = "sys/devices/virtual/block/dm-0"
    put(tmp_path, dm + "/dev", "253:0\n")
    link(tmp_path, "/sys/dev/block/253:0", "../../devices/virtual/block/dm-0")
    link(tmp_path, "/sys/class/block/dm-0", "../../devices/virtual/block/dm-0")
    slaves = os.path.join(str(tmp_path), dm, "slaves")
    link(tmp_path, dm + "/slaves/sdb1", os.path.relpath(os.path.join(sdb, "sdb1"), slaves))
    link(tmp_path, "/dev/mapper/vg-root", "../dm-0")
    # btrfs-style anonymous device number: found through the source device instead
    put(tmp_path, "/proc/self/mountinfo", "22 1 0:33 / / rw - btrfs /dev/mapper/vg-root rw\n")
    root_info, _usr = _hostinfo.root_usr_on_iscsi(str(tmp_path))
    assert root_info["disks"] == ["sdb"] and root_info["on_iscsi"] is True


def test_mounts_from_proc_mounts_when_no_mountinfo(tmp_path):
    iscsi_host(tmp_path)
    put(tmp_path, "/proc/mounts", "/dev/sdb1 / ext4 rw 0 0\n")
    assert _hostinfo.root_usr_on_iscsi(str(tmp_path))[0]["on_iscsi"] is True


def test_nothing_mounted_nothing_known(tmp_path):
    root_info, usr_info = _hostinfo.root_usr_on_iscsi(str(tmp_path))
    assert root_info["mounted"] is False and root_info["on_iscsi"] is False and usr_info["on_iscsi"] is False


def test_disk_of_a_session_that_is_not_in_sysfs_is_not_iscsi(tmp_path):
    # A plain SCSI disk (no iscsi session above it) is not counted.
    put(tmp_path, "sys/devices/pci0000:00/0000:00:06.0/host0/target0:0:0/0:0:0:0/block/sda/dev", "8:0\n")
    link(tmp_path, "/sys/dev/block/8:0", "../../devices/pci0000:00/0000:00:06.0/host0/target0:0:0/0:0:0:0/block/sda")
    put(tmp_path, "/proc/self/mountinfo", "22 1 8:0 / / rw - ext4 /dev/sda rw\n")
    root_info, _usr = _hostinfo.root_usr_on_iscsi(str(tmp_path))
    assert root_info["disks"] == ["sda"] and root_info["on_iscsi"] is False


# ----------------------------------------------------------------------------------------------- traps
def elf(tmp_path, path, cls):
    full = put(tmp_path, path, "")
    with open(full, "wb") as handle:
        handle.write(b"\x7fELF" + bytes([cls]) + b"\x01\x01" + b"\x00" * 9)


@pytest.mark.parametrize("machine, arch, expected", [
    ("x86_64", "i386", True),
    ("x86_64", "amd64", False),
    ("aarch64", "armhf", True),
    ("aarch64", "arm64", False),
    ("i686", "i386", False),
    ("x86_64", None, False),
])
def test_trap_64bit_kernel_32bit_userland_by_dpkg(tmp_path, machine, arch, expected):
    if arch:
        put(tmp_path, "/var/lib/dpkg/status",
            "Package: open-iscsi\nStatus: install ok installed\nArchitecture: %s\nVersion: 2.1.8-1\n" % arch)
    traps = _hostinfo.trap_warnings(str(tmp_path), machine=machine)
    assert [t["id"] for t in traps] == (["kernel64_userland32"] if expected else [])
    if expected:
        assert machine in traps[0]["message"] and arch in traps[0]["message"]


@pytest.mark.parametrize("cls, expected", [(1, True), (2, False)])
def test_trap_64bit_kernel_32bit_userland_by_elf_class(tmp_path, cls, expected):
    elf(tmp_path, "/usr/sbin/iscsiadm", cls)
    traps = _hostinfo.trap_warnings(str(tmp_path), machine="x86_64")
    assert [t["id"] for t in traps] == (["kernel64_userland32"] if expected else [])


def test_elf_bits_of_non_elf(tmp_path):
    put(tmp_path, "/usr/sbin/iscsiadm", "#!/bin/sh\n")
    assert _hostinfo.elf_bits(os.path.join(str(tmp_path), "usr/sbin/iscsiadm")) is None
    assert _hostinfo.elf_bits(os.path.join(str(tmp_path), "nope")) is None


def nic(tmp_path, name, driver, pci):
    dev = "sys/devices/pci0000:00/%s" % pci
    os.makedirs(os.path.join(str(tmp_path), dev, "net", name))
    os.makedirs(os.path.join(str(tmp_path), "sys/bus/pci/drivers", driver), exist_ok=True)
    link(tmp_path, dev + "/driver", "../../../bus/pci/drivers/%s" % driver)
    link(tmp_path, dev + "/net/%s/device" % name, "../../../%s" % pci)
    link(tmp_path, "/sys/class/net/%s" % name, "../../devices/pci0000:00/%s/net/%s" % (pci, name))


def test_trap_bnx2_without_iscsiuio(tmp_path):
    nic(tmp_path, "eno1", "bnx2x", "0000:00:03.0")
    nic(tmp_path, "eno2", "e1000e", "0000:00:04.0")
    os.makedirs(os.path.join(str(tmp_path), "sys/devices/virtual/net/lo"))
    link(tmp_path, "/sys/class/net/lo", "../../devices/virtual/net/lo")
    assert _hostinfo.uio_nics(str(tmp_path)) == [("eno1", "bnx2x")]
    traps = _hostinfo.trap_warnings(str(tmp_path), machine="x86_64")
    assert [t["id"] for t in traps] == ["bnx2_without_iscsiuio"]
    assert "eno1" in traps[0]["message"] and "bnx2x" in traps[0]["message"]


@pytest.mark.parametrize("how", ["dpkg", "binary"])
def test_no_bnx2_trap_with_iscsiuio(tmp_path, how):
    nic(tmp_path, "eno1", "bnx2", "0000:00:03.0")
    if how == "dpkg":
        put(tmp_path, "/var/lib/dpkg/status",
            "Package: iscsiuio\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.1.8-1\n")
    else:
        put(tmp_path, "/usr/sbin/iscsiuio", "")
    assert _hostinfo.trap_warnings(str(tmp_path), machine="x86_64") == []


@pytest.mark.parametrize("machine, bits", [("x86_64", 64), ("aarch64", 64), ("s390x", 64), ("riscv64", 64),
                                           ("i686", 32), ("armv7l", 32), ("", None)])
def test_kernel_bits(machine, bits):
    assert _hostinfo.kernel_bits(machine) == bits


# ----------------------------------------------------------------------------------------------- captured lab trees
def test_captured_bookworm_host(tmp_path):
    root = fixturetree.materialize("bookworm-logged-in", tmp_path)
    assert _hostinfo.open_iscsi_version(root) == {"version": "2.1.8-1", "source": "dpkg", "architecture": "amd64"}
    assert _hostinfo.init_system(root) == "systemd"
    root_info, usr_info = _hostinfo.root_usr_on_iscsi(root)
    assert (root_info["source"], root_info["disks"], root_info["on_iscsi"]) == ("/dev/vda", ["vda"], False)
    assert usr_info["on_iscsi"] is False and usr_info["mounted"] is False
    # the LUN's partition mounted on /mnt/lab is found on session 1 through the real partition layout
    lab = _hostinfo.mount_on_iscsi(root, "/mnt/lab")
    assert (lab["source"], lab["disks"], lab["sessions"], lab["on_iscsi"]) == ("/dev/sda1", ["sda"], [1], True)
    assert _hostinfo.trap_warnings(root, machine="x86_64") == []
    assert _hostinfo.uio_nics(root) == []  # virtio NICs, captured with their driver links


def test_captured_tree_with_root_on_the_lun(tmp_path):
    # The same real tree, with / mounted from the LUN's partition (8:1) as on a root-on-iSCSI host.
    root = fixturetree.materialize("bookworm-logged-in", tmp_path, {
        "proc/self/mountinfo": "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"})
    root_info, usr_info = _hostinfo.root_usr_on_iscsi(root)
    assert root_info["on_iscsi"] is True and root_info["sessions"] == [1]
    assert usr_info["on_iscsi"] is True


def test_captured_nic_drivers_are_named(tmp_path):
    root = fixturetree.materialize("bookworm-logged-in", tmp_path)
    drivers = sorted(os.path.basename(os.path.realpath(os.path.join(root, "sys/class/net", n, "device", "driver")))
                     for n in os.listdir(os.path.join(root, "sys/class/net"))
                     if os.path.lexists(os.path.join(root, "sys/class/net", n, "device")))
    assert drivers and set(drivers) == {"virtio_net"}


def test_captured_tree_with_a_bnx2x_nic(tmp_path):
    # eth1's real device, rebound (in the copy) to bnx2x: the trap fires, and stops once iscsiuio is installed.
    drv = "sys/bus/pci/drivers/bnx2x"
    root = fixturetree.materialize("bookworm-logged-in", tmp_path, {
        drv: {"dir": True},
        "sys/devices/pci0000:00/0000:00:04.0/virtio2/driver": {"link": "../../../../bus/pci/drivers/bnx2x"}})
    assert _hostinfo.uio_nics(root) == [("eth1", "bnx2x")]
    assert [t["id"] for t in _hostinfo.trap_warnings(root, machine="x86_64")] == ["bnx2_without_iscsiuio"]
    put(root, "/usr/sbin/iscsiuio", "")
    assert _hostinfo.trap_warnings(root, machine="x86_64") == []
