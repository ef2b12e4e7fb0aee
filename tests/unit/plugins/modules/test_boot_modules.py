# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fstab_netdev, service_defaults and initramfs run in-process (their real main()) against trees under tmp_path:
results, check-mode prediction, idempotence, diffs, modes, secrets, and the bad-input catalog (each case: a message
naming the field, 0 bytes changed)."""

from __future__ import annotations

import os
import stat
import sys

import pytest

from ansible_collections.openiscsi.initiator.plugins.modules import fstab_netdev, initramfs, service_defaults
from harness import run_module

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures"))
import fixturetree  # noqa: E402  pylint: disable=wrong-import-position

TGT = "iqn.2025-01.lab.openiscsi:tgt-root"
SECRET = "labchap-secret1"


def run(capsys, module, check=False, diff=True, **args):
    return run_module(capsys, module, args, check=check, diff=diff)


def snapshot(root):
    """Every file under root with its bytes and mode (to prove 0 bytes changed)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(str(root)):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                out[path] = ("link", os.readlink(path))
            else:
                with open(path, "rb") as fh:
                    out[path] = (fh.read(), stat.S_IMODE(os.lstat(path).st_mode))
    return out


def put(root, rel, text, mode=0o644):
    full = os.path.join(str(root), rel.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as fh:
        fh.write(text)
    os.chmod(full, mode)
    return full


def read(root, rel):
    try:
        with open(os.path.join(str(root), rel.lstrip("/"))) as fh:
            return fh.read()
    except FileNotFoundError:
        return None


# ============================================================================================ fstab_netdev
FSTAB = (
    "# /etc/fstab\n"
    "/dev/vda / ext4 errors=remount-ro 0 1\n"
    "UUID=0a3d6f2e-3d1c-4c55-9d1a-6b1f0e3c7a11\t/mnt/lab\text4\tdefaults\t0\t2\n"
    "/dev/sdc /srv/my\\040data xfs noatime 0 0\n"
    "/dev/sdc /srv/my\\040data xfs noatime 0 0\n"
    "tmpfs /tmp tmpfs defaults 0 0"
)


@pytest.fixture(scope="module")
def bookworm(tmp_path_factory):
    root = fixturetree.materialize("bookworm-logged-in", tmp_path_factory.mktemp("bw"))
    for dev in ("sda", "sda1", "sdb", "sdc", "vda"):
        put(root, "dev/" + dev, "")
    os.makedirs(os.path.join(root, "dev/disk/by-uuid"))
    os.symlink("../../sda1", os.path.join(root, "dev/disk/by-uuid/0a3d6f2e-3d1c-4c55-9d1a-6b1f0e3c7a11"))
    return root


@pytest.fixture
def fsroot(bookworm, request):
    """The captured tree (shared) with an fstab of this test's own, /etc/fstab-<test>; returns (root, option)."""
    rel = "/etc/fstab-%s" % abs(hash(request.node.name))
    put(bookworm, rel, FSTAB)
    return bookworm, rel


def test_fstab_detect_check_then_apply_then_idempotent(capsys, fsroot):
    root, rel = fsroot
    path = os.path.join(root, rel.lstrip("/"))
    before = open(path).read()
    checked = run(capsys, fstab_netdev, check=True, detect=True, root=root, fstab=rel)
    assert checked["changed"] and checked["changed_lines"] == [3, 4, 5]
    assert open(path).read() == before
    done = run(capsys, fstab_netdev, detect=True, root=root, fstab=rel)
    assert done["changed"] and done["changed_lines"] == checked["changed_lines"]
    assert done["diff"]["after"] == checked["diff"]["after"] == open(path).read()
    after = open(path).read()
    assert after == before.replace("\tdefaults\t", "\tdefaults,_netdev\t").replace("noatime", "noatime,_netdev")
    assert done["duplicates"] == {"/srv/my data": [4, 5]}
    assert any("2 entries" in w for w in done["warnings"])
    entries = dict((e["line"], e) for e in done["entries"])
    assert entries[2]["action"] == "skipped" and not entries[2]["on_iscsi"]
    assert entries[3]["sessions"] == [1] and entries[4]["sessions"] == [2]
    again = run(capsys, fstab_netdev, detect=True, root=root, fstab=rel)
    assert not again["changed"] and open(path).read() == after
    assert run(capsys, fstab_netdev, check=True, detect=True, root=root, fstab=rel)["changed"] is False


def test_fstab_explicit_nofail_options_backup_mode_kept(capsys, fsroot):
    root, rel = fsroot
    path = os.path.join(root, rel.lstrip("/"))
    os.chmod(path, 0o640)
    res = run(capsys, fstab_netdev, path=["/"], nofail=True, options=["x-systemd.device-timeout=30s"],
              backup=True, root=root, fstab=rel)
    assert res["changed"] and res["changed_lines"] == [2]
    assert "/dev/vda / ext4 errors=remount-ro,_netdev,nofail,x-systemd.device-timeout=30s 0 1\n" in open(path).read()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert open(res["backup_file"]).read() == FSTAB
    res = run(capsys, fstab_netdev, path=["/"], options=["x-systemd.device-timeout=10s"], root=root, fstab=rel)
    assert "errors=remount-ro,_netdev,nofail,x-systemd.device-timeout=10s 0 1" in open(path).read()


@pytest.mark.parametrize("args,field", [
    (dict(), "detect"),
    (dict(path=["relative"]), "path"),
    (dict(path=["/nope"]), "path"),
    (dict(src=["/dev/nope"]), "src"),
    (dict(detect=True, options=["a,b"]), "options"),
    (dict(detect=True, options=["a b"]), "options"),
    (dict(detect=True, options=["=x"]), "options"),
    (dict(detect=True, options=["a=1", "a=2"]), "options"),
    (dict(detect=True, fstab="etc/fstab"), "fstab"),
    (dict(detect=True, root="rel"), "root"),
])
def test_fstab_bad_input_changes_nothing(capsys, fsroot, args, field):
    root, rel = fsroot
    args = dict(args)
    args.setdefault("root", root)
    args.setdefault("fstab", rel)
    before = snapshot(os.path.join(root, "etc"))
    res = run(capsys, fstab_netdev, **args)
    assert res["failed"] and res["msg"].startswith(field + ":"), res["msg"]
    assert snapshot(os.path.join(root, "etc")) == before


def test_fstab_missing_file_fails(capsys, bookworm, tmp_path):
    res = run(capsys, fstab_netdev, detect=True, root=bookworm, fstab=str(tmp_path / "none"))
    assert res["failed"] and "does not exist" in res["msg"]


# ============================================================================================ service_defaults
DEFAULT = (
    "# List of LVMed iSCSI Volume Groups.\n"
    'LVMGROUPS=""\n'
    "\n"
    "HANDLE_NETDEV=1\n"
    "\n"
    "# If any of these mountpoints contain spaces, please use \\040.\n"
    'EXCLUDE_MOUNTS_AT_SHUTDOWN=""\n'
    "MY_LOCAL_SETTING=keep\n"
    "ISCSI_ROOT_KEEP_ALL_SESSIONS_AT_SHUTDOWN=0\n"
)


def test_service_defaults_round(capsys, tmp_path):
    put(tmp_path, "etc/default/open-iscsi", DEFAULT)
    put(tmp_path, "run/systemd/system/.keep", "")
    args = dict(root=str(tmp_path), handle_netdev=False, lvm_groups=["vg_a", "vg.b"],
                exclude_mounts_at_shutdown=["/srv/keep me", "/srv/back\\slash"], keep_root_sessions_at_shutdown=True)
    checked = run(capsys, service_defaults, check=True, **args)
    assert checked["changed"] and read(tmp_path, "etc/default/open-iscsi") == DEFAULT
    done = run(capsys, service_defaults, **args)
    text = read(tmp_path, "etc/default/open-iscsi")
    assert text == checked["diff"]["after"] == done["diff"]["after"]
    assert text == (DEFAULT.replace('LVMGROUPS=""', "LVMGROUPS='vg_a vg.b'").replace("HANDLE_NETDEV=1", "HANDLE_NETDEV=0")
                    .replace('EXCLUDE_MOUNTS_AT_SHUTDOWN=""',
                             "EXCLUDE_MOUNTS_AT_SHUTDOWN='/srv/keep\\040me /srv/back\\134slash'")
                    .replace("SESSIONS_AT_SHUTDOWN=0", "SESSIONS_AT_SHUTDOWN=1"))
    assert done["values"]["EXCLUDE_MOUNTS_AT_SHUTDOWN"] == "/srv/keep\\040me /srv/back\\134slash"
    assert done["init_system"] == "systemd" and any("no effect" in n for n in done["notes"])
    assert not run(capsys, service_defaults, **args)["changed"]


def test_service_defaults_sysvinit_no_note_and_creates_file(capsys, tmp_path):
    put(tmp_path, "proc/1/comm", "init\n")
    os.makedirs(str(tmp_path / "etc/default"))
    res = run(capsys, service_defaults, root=str(tmp_path), handle_netdev=True)
    assert res["changed"] and res["notes"] == [] and res["init_system"] == "sysvinit"
    assert read(tmp_path, "etc/default/open-iscsi") == "HANDLE_NETDEV=1\n"


def test_service_defaults_opaque_assignment_replaced(capsys, tmp_path):
    put(tmp_path, "etc/default/open-iscsi", "LVMGROUPS=$(vgs --noheadings)\n")
    res = run(capsys, service_defaults, root=str(tmp_path), lvm_groups=[])
    assert read(tmp_path, "etc/default/open-iscsi") == "LVMGROUPS=''\n"
    assert any("not a plain value" in n for n in res["notes"])


@pytest.mark.parametrize("args,field", [
    (dict(lvm_groups=["vg a"]), "lvm_groups"),
    (dict(lvm_groups=["-vg"]), "lvm_groups"),
    (dict(lvm_groups=["$(reboot)"]), "lvm_groups"),
    (dict(exclude_mounts_at_shutdown=["relative"]), "exclude_mounts_at_shutdown"),
    (dict(exclude_mounts_at_shutdown=["/a\rb"]), "exclude_mounts_at_shutdown"),
    (dict(handle_netdev=True, path="etc/default/open-iscsi"), "path"),
])
def test_service_defaults_bad_input(capsys, tmp_path, args, field):
    put(tmp_path, "etc/default/open-iscsi", DEFAULT)
    before = snapshot(tmp_path)
    res = run(capsys, service_defaults, root=str(tmp_path), **args)
    assert res["failed"] and res["msg"].startswith(field + ":"), res["msg"]
    assert snapshot(tmp_path) == before


def test_service_defaults_requires_a_key(capsys, tmp_path):
    res = run(capsys, service_defaults, root=str(tmp_path))
    assert res["failed"] and "handle_netdev" in res["msg"]


# ============================================================================================ initramfs
FAKE_UNMK = """#!/bin/sh
# test stand-in for unmkinitramfs: an "image" here is a text file naming a directory tree to copy.
set -e
src=$(cat "$1")
mkdir -p "$2/main"
cp -a "$src/." "$2/main/"
"""


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A system root under tmp_path with open-iscsi's files, one kernel and an initramfs image (fake format)."""
    root = tmp_path / "root"
    put(root, "etc/iscsi/initiatorname.iscsi", "InitiatorName=iqn.1993-08.org.debian:01:aaaaaaaaaaaa\n", 0o600)
    put(root, "usr/share/initramfs-tools/hooks/iscsi", "#!/bin/sh\n", 0o755)
    put(root, "boot/vmlinuz-6.1.0-test", "kernel")
    image_tree = tmp_path / "image-tree"
    put(image_tree, "sbin/iscsistart", "")
    put(image_tree, "etc/initiatorname.iscsi", "InitiatorName=iqn.1993-08.org.debian:01:aaaaaaaaaaaa\n")
    put(root, "boot/initrd.img-6.1.0-test", str(image_tree))
    bindir = tmp_path / "bin"
    put(bindir, "unmkinitramfs", FAKE_UNMK, 0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ.get("PATH", "/usr/bin:/bin")))
    return root, image_tree


def args_explicit(root, **more):
    args = dict(root=str(root), target_name=TGT, target_ip=["10.213.0.1"], port=3260)
    args.update(more)
    return args


def test_initramfs_explicit_check_apply_idempotent_and_rebuild_needed(capsys, host):
    root, image_tree = host
    checked = run(capsys, initramfs, check=True, **args_explicit(root))
    assert checked["changed"] and checked["changed_files"] == ["/etc/iscsi/iscsi.initramfs"]
    assert read(root, "etc/iscsi/iscsi.initramfs") is None
    assert checked["initramfs_rebuild_needed"] and "has no iscsi.initramfs" in checked["rebuild_reasons"][0]
    done = run(capsys, initramfs, **args_explicit(root))
    text = read(root, "etc/iscsi/iscsi.initramfs")
    assert done["diff"][0]["after"] == checked["diff"][0]["after"] == text
    assert "ISCSI_TARGET_NAME=%s\nISCSI_TARGET_IP=10.213.0.1\nISCSI_TARGET_PORT=3260\n" % TGT in text
    assert stat.S_IMODE(os.stat(os.path.join(str(root), "etc/iscsi/iscsi.initramfs")).st_mode) == 0o644
    assert done["configured"] and done["initramfs_rebuild_needed"]
    again = run(capsys, initramfs, **args_explicit(root))
    assert not again["changed"] and again["initramfs_rebuild_needed"]  # still stale: nobody rebuilt
    # "rebuild": the image now holds the file -> nothing needed
    put(image_tree, "etc/iscsi.initramfs", text)
    fresh = run(capsys, initramfs, **args_explicit(root))
    assert not fresh["changed"] and not fresh["initramfs_rebuild_needed"] and fresh["rebuild_reasons"] == []


def test_initramfs_warns_when_image_cannot_make_scsi_disks(capsys, host):
    root, image_tree = host
    res = run(capsys, initramfs, **args_explicit(root))
    assert any("no SCSI disk driver (sd_mod)" in w for w in res["warnings"]), res["warnings"]
    put(image_tree, "lib/modules/6.1.0-test/kernel/drivers/scsi/sd_mod.ko.xz", "")
    res = run(capsys, initramfs, **args_explicit(root))
    assert not any("sd_mod" in w for w in res["warnings"]), res["warnings"]
    put(image_tree, "lib/modules/6.1.0-test/kernel/drivers/scsi/sd_mod.ko.xz", "")
    os.unlink(os.path.join(str(image_tree), "lib/modules/6.1.0-test/kernel/drivers/scsi/sd_mod.ko.xz"))
    put(image_tree, "lib/modules/6.1.0-test/modules.builtin", "kernel/drivers/scsi/sd_mod.ko\n")
    res = run(capsys, initramfs, **args_explicit(root))
    assert not any("sd_mod" in w for w in res["warnings"]), res["warnings"]


def test_initramfs_initiator_name_change_makes_image_stale(capsys, host):
    root, image_tree = host
    put(root, "etc/iscsi/initiatorname.iscsi", "InitiatorName=iqn.1993-08.org.debian:01:bbbbbbbbbbbb\n", 0o600)
    res = run(capsys, initramfs, root=str(root))
    assert not res["changed"] and res["initramfs_rebuild_needed"]
    assert "carries initiator name iqn.1993-08.org.debian:01:aaaaaaaaaaaa" in res["rebuild_reasons"][0]


def test_initramfs_chap_secret_mode_0600_masked_everywhere(capsys, host):
    root, dummy = host
    res = run(capsys, initramfs, **args_explicit(root, username="labchap", password=SECRET,
                                                 username_in="labtarget", password_in="labtarget-out-s1"))
    path = os.path.join(str(root), "etc/iscsi/iscsi.initramfs")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = open(path).read()
    assert "ISCSI_PASSWORD=%s\n" % SECRET in text and "ISCSI_IN_PASSWORD=labtarget-out-s1\n" in text
    assert SECRET not in res["_raw"] and "labtarget-out-s1" not in res["_raw"]
    assert res["settings"]["ISCSI_PASSWORD"] == "********"
    # dropping CHAP: the file no longer holds a secret; it keeps 0600 (an existing file keeps its mode)
    res = run(capsys, initramfs, **args_explicit(root))
    assert "PASSWORD" not in open(path).read() and SECRET not in res["_raw"]
    assert "ISCSI_PASSWORD=********" in res["diff"][0]["before"]


def test_initramfs_auto_replaces_explicit(capsys, host):
    root, dummy = host
    run(capsys, initramfs, **args_explicit(root))
    res = run(capsys, initramfs, root=str(root), auto=True)
    assert res["changed"] and res["settings"] == {"ISCSI_AUTO": "true"}


def test_initramfs_opt_out_allowed_when_nothing_configured_and_undone(capsys, host):
    root, dummy = host
    res = run(capsys, initramfs, root=str(root), include_in_initramfs=False)
    assert res["changed"] and not res["include_in_initramfs"]
    assert "NO_ISCSI_IN_INITRAMFS=yes" in read(root, "etc/initramfs-tools/conf.d/open-iscsi")
    assert res["initramfs_rebuild_needed"] and "holds open-iscsi" in res["rebuild_reasons"][0]
    assert not run(capsys, initramfs, root=str(root), include_in_initramfs=False)["changed"]
    res = run(capsys, initramfs, root=str(root), include_in_initramfs=True)
    assert res["changed"] and read(root, "etc/initramfs-tools/conf.d/open-iscsi") is None


def test_initramfs_opt_out_refused_when_configured_unless_force(capsys, host):
    root, dummy = host
    run(capsys, initramfs, **args_explicit(root))
    before = snapshot(root)
    res = run(capsys, initramfs, root=str(root), include_in_initramfs=False)
    assert res["failed"] and res["msg"].startswith("include_in_initramfs: refusing")
    assert snapshot(root) == before
    res = run(capsys, initramfs, root=str(root), include_in_initramfs=False, force=True)
    assert res["changed"] and "NO_ISCSI_IN_INITRAMFS=yes" in read(root, "etc/initramfs-tools/conf.d/open-iscsi")


def test_initramfs_opt_out_refused_when_root_on_iscsi(capsys, tmp_path, monkeypatch):
    root = fixturetree.materialize("bookworm-logged-in", tmp_path / "r")
    # / on sda1 (session 1)
    mi = read(root, "proc/self/mountinfo").replace("254:0 / / rw,relatime shared:1 - ext4 /dev/vda",
                                                   "8:1 / / rw,relatime shared:1 - ext4 /dev/sda1")
    put(root, "proc/self/mountinfo", mi)
    assert os.path.isdir(os.path.join(root, "sys/dev/block/8:1"))  # captured: sda1
    before = snapshot(root)
    res = run(capsys, initramfs, root=root, include_in_initramfs=False)
    assert res["failed"] and "root file system is on iSCSI (session(s) 1)" in res["msg"]
    assert snapshot(root) == before
    res = run(capsys, initramfs, root=root, state="absent")
    assert not res.get("failed") and not res["changed"]  # nothing to remove


def test_initramfs_network_keep_networkd_and_ifupdown(capsys, host):
    root, dummy = host
    put(root, "run/systemd/network/20-lab-nic.network", "[Match]\nName=eth1\n[Network]\nAddress=10.213.0.11/24\n")
    put(root, "etc/network/interfaces", "auto eth1\niface eth1 inet dhcp\n")
    args = args_explicit(root, network_keep=True, network_interfaces=["eth1"])
    checked = run(capsys, initramfs, check=True, **args)
    dropin = "/etc/systemd/network/20-lab-nic.network.d/50-openiscsi-keep-configuration.conf"
    assert checked["changed_files"] == ["/etc/iscsi/iscsi.initramfs", "/etc/network/interfaces", dropin]
    assert read(root, dropin) is None
    done = run(capsys, initramfs, **args)
    assert "KeepConfiguration=yes" in read(root, dropin)
    assert read(root, "etc/network/interfaces") == "auto eth1\niface eth1 inet manual\n"
    assert done["network"]["ifupdown"][0]["method_before"] == "dhcp"
    assert not run(capsys, initramfs, **args)["changed"]


def test_initramfs_network_keep_needs_nic_when_not_booted_from_iscsi(capsys, host):
    root, dummy = host
    before = snapshot(root)
    res = run(capsys, initramfs, root=str(root), network_keep=True)
    assert res["failed"] and res["msg"].startswith("network_interfaces:")
    assert snapshot(root) == before


@pytest.mark.parametrize("args,field", [
    (dict(target_name=TGT), "target_ip"),
    (dict(target_ip=["10.0.0.1"]), "target_name"),
    (dict(target_name=TGT, target_ip=["10.0.0.1; reboot"]), "target_ip"),
    (dict(target_name=TGT, target_ip=["10.0.0.1"], username="u", password="has space"), "password"),
    (dict(target_name=TGT, target_ip=["10.0.0.1"], username="u", password="p`id`"), "password"),
    (dict(target_name=TGT, target_ip=["10.0.0.1"], username="u"), "password"),
    (dict(target_name=TGT, target_ip=["10.0.0.1"], port=99999), "port"),
    (dict(auto=True, target_name=TGT), "target_name"),
    (dict(state="absent", target_name=TGT), "target_name"),
    (dict(network_keep=True, network_interfaces=["eth 1"]), "network_interfaces"),
    (dict(rebuild=True, auto=True), "rebuild"),
])
def test_initramfs_bad_input_changes_nothing(capsys, host, args, field):
    root, dummy = host
    before = snapshot(root)
    res = run(capsys, initramfs, root=str(root), **args)
    assert res["failed"] and res["msg"].startswith(field + ":"), res["msg"]
    assert snapshot(root) == before
    for secret in ("has space", "p`id`"):
        assert secret not in res["_raw"]


def test_initramfs_without_unmkinitramfs_falls_back_to_changed_inputs(capsys, host, monkeypatch):
    root, dummy = host
    monkeypatch.setenv("PATH", "/nonexistent")
    res = run(capsys, initramfs, **args_explicit(root))
    assert res["initramfs_rebuild_needed"] and "no initramfs image could be inspected" in res["rebuild_reasons"][0]
    res = run(capsys, initramfs, **args_explicit(root))
    assert not res["initramfs_rebuild_needed"]
