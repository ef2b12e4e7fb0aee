# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _session_plan as sp
from ansible_collections.openiscsi.initiator.plugins.module_utils._hostinfo import parse_mountinfo
from ansible_collections.openiscsi.initiator.plugins.module_utils._sysfs import read_block_tree, read_sessions

DISK1 = "iqn.2025-01.lab.example:disk1"
DISK10 = "iqn.2025-01.lab.example:disk10"


def rec(target=DISK1, address="10.0.0.1", port=3260, tpgt=1, iface="default", auth=None):
    return {"target": target, "address": address, "port": port, "tpgt": tpgt, "iface": iface,
            "auth": auth or {"method": None}}


def sess(sid, target=DISK1, address="10.0.0.1", port=3260, state="LOGGED_IN", tpgt=1, iface="default",
         devices=None, target_state="SCANNED"):
    return {"sid": sid, "targetname": target, "state": state, "tpgt": tpgt, "ifacename": iface,
            "target_state": target_state,
            "connections": [{"cid": 0, "persistent_address": address, "persistent_port": port, "address": address,
                             "port": port}],
            "devices": devices if devices is not None else []}


def dev(lun, block=None, type_=0, by_path=None):
    return {"hctl": "2:0:0:%d" % lun, "lun": lun, "type": type_, "block": block, "state": "running",
            "by_path": by_path if by_path is not None else (["/dev/disk/by-path/x-lun-%d" % lun] if block else []),
            "vendor": "IET", "model": "VIRTUAL-DISK"}


# ------------------------------------------------------------------------------------------- selection
NODES = [rec(DISK1), rec(DISK10), rec(DISK1, "10.0.0.2"), rec(DISK1, "fd00::1"), rec(DISK1, iface="eth1"),
         rec(DISK10, "10.0.0.2", port=3261)]


def test_select_by_target_is_anchored():
    got = sp.select_records(NODES, target=DISK1)
    assert len(got) == 4 and all(r["target"] == DISK1 for r in got)
    assert [r["target"] for r in sp.select_records(NODES, target=DISK10)] == [DISK10, DISK10]
    assert sp.select_records(NODES, target="iqn.2025-01.lab.example:disk") == []


def test_select_target_case_insensitive():
    assert len(sp.select_records(NODES, target=DISK1.upper())) == 4


def test_select_by_portal_and_port():
    assert [(r["target"], r["address"]) for r in sp.select_records(NODES, address="10.0.0.2", port=3260)] == [
        (DISK1, "10.0.0.2")]
    assert [r["target"] for r in sp.select_records(NODES, address="10.0.0.2")] == [DISK1, DISK10]
    # IPv6: any spelling of the address
    assert [r["address"] for r in sp.select_records(NODES, address="fd00:0:0::1", port=3260)] == ["fd00::1"]
    # host name resolved by the caller
    assert len(sp.select_records(NODES, address="san.example", addresses=["10.0.0.2"], port=3260)) == 1


def test_select_one_record_with_iface():
    got = sp.select_records(NODES, target=DISK1, address="10.0.0.1", port=3260, iface="eth1")
    assert len(got) == 1 and got[0]["iface"] == "eth1"
    assert len(sp.select_records(NODES, target=DISK1, address="10.0.0.1", port=3260)) == 2


def test_session_matching_is_anchored_and_exact():
    assert sp.session_matches(sess(1), rec())
    assert not sp.session_matches(sess(1, target=DISK10), rec())
    assert not sp.session_matches(sess(1), rec(target=DISK10))
    assert not sp.session_matches(sess(1, address="10.0.0.2"), rec())
    assert not sp.session_matches(sess(1, port=3261), rec())
    assert not sp.session_matches(sess(1, iface="eth1"), rec())
    assert not sp.session_matches(sess(1, tpgt=2), rec())
    # static records (tpgt -1) match whatever tpgt the target reported
    assert sp.session_matches(sess(1, tpgt=7), rec(tpgt=-1))
    assert sp.session_matches(sess(1, address="fd00:0::1"), rec(address="fd00::1"))
    assert not sp.session_matches({"sid": 3, "targetname": DISK1, "connections": []}, rec())


def test_select_sessions_for_logout():
    sessions = [sess(1), sess(2, target=DISK10), sess(3, address="10.0.0.2", state="FAILED")]
    assert [s["sid"] for s in sp.select_sessions(sessions, target=DISK1)] == [1, 3]
    assert [s["sid"] for s in sp.select_sessions(sessions, address="10.0.0.2", port=3260)] == [3]
    assert [s["sid"] for s in sp.select_sessions(sessions, target=DISK10, address="10.0.0.1")] == [2]
    assert sp.select_sessions(sessions, iface="eth1") == []


# ------------------------------------------------------------------------------------------- login plan
def test_plan_login_actions():
    records = [rec(), rec(address="10.0.0.2"), rec(address="10.0.0.3")]
    sessions = [sess(1), sess(2, address="10.0.0.2", state="FAILED"), sess(3, target=DISK10, address="10.0.0.3")]
    plan = sp.plan_login(records, sessions)
    assert [p["action"] for p in plan] == ["none", "wait", "login"]
    assert sp.login_changed(plan)
    assert not sp.login_changed(plan[:2])


def test_failed_session_is_not_logged_in():
    plan = sp.plan_login([rec()], [sess(1, state="FAILED")])
    assert plan[0]["action"] == "wait"
    hard, _soft = sp.readiness(sess(1, state="FAILED"))
    assert hard and "FAILED" in hard[0]


# ------------------------------------------------------------------------------------------- readiness
def test_readiness_states():
    assert sp.readiness(None) == (["no session"], [])
    ok = sess(1, devices=[dev(0, None, type_=0x0C), dev(1, "sdb")])
    assert sp.readiness(ok) == ([], [])
    hard, _soft = sp.readiness(sess(1, devices=[dev(1, None)]))
    assert "no block device" in hard[0]
    hard, _soft = sp.readiness(sess(1, target_state="ALLOCATED", devices=[]))
    assert "scan not finished" in hard[0]
    hard, soft = sp.readiness(sess(1, devices=[dev(1, "sdb", by_path=[])]))
    assert hard == [] and "by-path" in soft[0]
    assert sp.readiness(sess(1, devices=[dev(1, "sdb", by_path=[])]), want_links=False) == ([], [])
    # old kernels without target_state: no LUN yet is soft (cannot tell "empty target" from "not scanned")
    hard, soft = sp.readiness(sess(1, target_state=None, devices=[]))
    assert hard == [] and "no LUN" in soft[0]
    assert sp.readiness(sess(1, state="FREE"), want_devices=False)[0]
    assert sp.readiness(sess(1, target_state="ALLOCATED"), want_devices=False) == ([], [])


def test_device_list_and_summary():
    s = sess(4, address="fd00::1", devices=[dev(0, None, type_=0x0C), dev(1, "sdc")])
    summary = sp.session_summary(s)
    assert summary["portal"] == "[fd00::1]:3260" and summary["sid"] == 4
    assert summary["devices"] == [{"lun": 1, "hctl": "2:0:0:1", "device": "/dev/sdc",
                                   "by_path": ["/dev/disk/by-path/x-lun-1"], "vendor": "IET",
                                   "model": "VIRTUAL-DISK", "state": "running"}]
    before = sp.device_list(s)
    after = sp.device_list(sess(4, devices=[dev(1, "sdc"), dev(2, "sdd")]))
    assert [d["device"] for d in sp.new_devices(before, after)] == ["/dev/sdd"]


# ------------------------------------------------------------------------------------------- mounts
MOUNTINFO = (
    "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
    "40 22 8:17 / /mnt/data\\040dir rw,relatime shared:20 - ext4 /dev/sdb1 rw\n"
    "41 22 253:0 / /srv rw - xfs /dev/mapper/vg-lv rw\n"
    "42 22 0:45 / /btr rw - btrfs /dev/sdc rw,space_cache\n"
    "garbage line\n"
)


def test_parse_mountinfo():
    mounts = parse_mountinfo(MOUNTINFO)
    assert len(mounts) == 4
    assert mounts[1] == {"majmin": "8:17", "mountpoint": "/mnt/data dir", "fstype": "ext4", "source": "/dev/sdb1"}


def test_parse_swaps():
    text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/sdd2  partition\t1048572\t0\t-2\n"
    assert sp.parse_swaps(text) == ["/dev/sdd2"]


def tree(name, dev_, partitions=(), holders=(), dm_name=None):
    return {"name": name, "dev": dev_, "dm_name": dm_name, "dm_uuid": None, "slaves": [],
            "partitions": list(partitions), "holders": list(holders)}


def test_device_users_partitions_holders_and_swap():
    mounts = parse_mountinfo(MOUNTINFO)
    swaps = ["/dev/sdd2"]
    sdb = tree("sdb", "8:16", partitions=[tree("sdb1", "8:17")])
    sde = tree("sde", "8:64", holders=[tree("dm-0", "253:0", dm_name="vg-lv")])
    sdc = tree("sdc", "8:32")  # btrfs: anonymous devno, matched by source path
    sdd = tree("sdd", "8:48", partitions=[tree("sdd2", "8:50")])
    sdf = tree("sdf", "8:80")
    users = sp.device_users([sdb, sde, sdc, sdd, sdf, None], mounts, swaps)
    assert users == [
        {"device": "/dev/sdb1", "via": "sdb -> sdb1", "use": "mounted on /mnt/data dir (ext4)"},
        {"device": "/dev/mapper/vg-lv", "via": "sde -> dm-0", "use": "mounted on /srv (xfs)"},
        {"device": "/dev/sdc", "via": "sdc", "use": "mounted on /btr (btrfs)"},
        {"device": "/dev/sdd2", "via": "sdd -> sdd2", "use": "in use as swap"},
    ]
    assert sp.device_users([sdf], mounts, swaps) == []
    msg = sp.refusal_message(sess(3), users[:1])
    assert "session 3" in msg and "/dev/sdb1 mounted on /mnt/data dir" in msg and "force: true" in msg


# ------------------------------------------------------------------------------------------- sysfs fixtures
def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def make_block(root, name, devno, parent_dir, partitions=(), holders=(), dm_name=None, dm_uuid=None, slaves=()):
    """A block device under devices/ with a class/block symlink, like the kernel makes it."""
    real = os.path.join(parent_dir, name)
    write(os.path.join(real, "dev"), devno + "\n")
    os.makedirs(os.path.join(real, "holders"), exist_ok=True)
    if dm_name:
        write(os.path.join(real, "dm", "name"), dm_name + "\n")
    if dm_uuid:
        write(os.path.join(real, "dm", "uuid"), dm_uuid + "\n")
    for slave in slaves:
        os.makedirs(os.path.join(real, "slaves", slave), exist_ok=True)
    link = os.path.join(root, "sys/class/block", name)
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(real, link)
    for pname, pdev in partitions:
        write(os.path.join(real, pname, "partition"), "1\n")
        write(os.path.join(real, pname, "dev"), pdev + "\n")
        os.makedirs(os.path.join(real, pname, "holders"), exist_ok=True)
        os.symlink(os.path.join(real, pname), os.path.join(root, "sys/class/block", pname))
    for holder in holders:
        os.symlink(os.path.join(root, "sys/class/block", holder), os.path.join(real, "holders", holder))
    return real


def make_session(root, sid, host, target, address, luns, state="LOGGED_IN", target_state="SCANNED"):
    """A minimal software-iSCSI session tree: class link, attributes, one connection, LUNs with block devices."""
    sdir = os.path.join(root, "sys/devices/platform/host%d/session%d" % (host, sid))
    cls = os.path.join(sdir, "iscsi_session/session%d" % sid)
    for key, value in (("state", state), ("targetname", target), ("tpgt", "1"), ("ifacename", "default"),
                       ("target_state", target_state)):
        if value is not None:
            write(os.path.join(cls, key), value + "\n")
    os.makedirs(os.path.join(root, "sys/class/iscsi_session"), exist_ok=True)
    os.symlink(cls, os.path.join(root, "sys/class/iscsi_session/session%d" % sid))
    conn = os.path.join(sdir, "connection%d:0/iscsi_connection/connection%d:0" % (sid, sid))
    for key, value in (("persistent_address", address), ("persistent_port", "3260"), ("state", "up")):
        write(os.path.join(conn, key), value + "\n")
    for lun, type_, block in luns:
        ldir = os.path.join(sdir, "target%d:0:0" % host, "%d:0:0:%d" % (host, lun))
        write(os.path.join(ldir, "type"), "%d\n" % type_)
        write(os.path.join(ldir, "state"), "running\n")
        if block:
            os.makedirs(os.path.join(ldir, "block"), exist_ok=True)
            make_block(root, block, "8:%d" % (16 * lun), os.path.join(ldir, "block"))
    return sdir


def test_fixture_tree_through_read_sessions(tmp_path):
    root = str(tmp_path)
    make_session(root, 1, 2, DISK1, "10.0.0.1", [(0, 12, None), (1, 0, "sdb")])
    make_session(root, 2, 3, DISK10, "10.0.0.1", [(1, 0, None)], target_state="SCANNED")
    by_path = os.path.join(root, "dev/disk/by-path")
    os.makedirs(by_path)
    os.symlink("../../sdb", os.path.join(by_path, "ip-10.0.0.1:3260-iscsi-%s-lun-1" % DISK1))
    sessions = read_sessions(root)
    plan = sp.plan_login([rec()], sessions)
    assert plan[0]["action"] == "none" and [s["sid"] for s in plan[0]["sessions"]] == [1]
    assert sp.readiness(plan[0]["sessions"][0]) == ([], [])
    ten = sp.plan_login([rec(DISK10)], sessions)[0]
    assert [s["sid"] for s in ten["sessions"]] == [2]
    hard, _soft = sp.readiness(ten["sessions"][0])
    assert hard == ["session 2: LUN 1 (3:0:0:1) has no block device yet"]
    devices = sp.session_summary(plan[0]["sessions"][0])["devices"]
    assert devices[0]["device"] == "/dev/sdb"
    assert devices[0]["by_path"] == ["/dev/disk/by-path/ip-10.0.0.1:3260-iscsi-%s-lun-1" % DISK1]


def test_read_block_tree_walks_partitions_and_holders(tmp_path):
    root = str(tmp_path)
    make_block(root, "dm-1", "253:1", os.path.join(root, "sys/devices/virtual/block"), dm_name="vg-top")
    make_block(root, "dm-0", "253:0", os.path.join(root, "sys/devices/virtual/block"), dm_name="mpatha",
               partitions=(), holders=("dm-1",), dm_uuid="mpath-3600", slaves=("sdb", "sdc"))
    make_block(root, "sdb", "8:16", os.path.join(root, "sys/devices/platform/host2/block"),
               partitions=(("sdb1", "8:17"), ("sdb2", "8:18")), holders=("dm-0",))
    got = read_block_tree(root, "sdb")
    assert [p["name"] for p in got["partitions"]] == ["sdb1", "sdb2"]
    assert got["holders"][0]["name"] == "dm-0" and got["holders"][0]["dm_name"] == "mpatha"
    assert got["holders"][0]["holders"][0]["dev"] == "253:1"
    assert got["holders"][0]["dm_uuid"] == "mpath-3600" and got["holders"][0]["slaves"] == ["sdb", "sdc"]
    assert got["holders"][0]["slave_states"] == {"sdb": None, "sdc": None}  # no SCSI device state in this tree
    write(os.path.join(root, "sys/devices/platform/host2/block/sdb/device/state"), "blocked\n")
    assert read_block_tree(root, "sdb")["holders"][0]["slave_states"]["sdb"] == "blocked"
    mounts = parse_mountinfo("50 22 253:1 / /data rw - ext4 /dev/mapper/vg-top rw\n")
    users = sp.device_users([got], mounts, [])
    assert users == [{"device": "/dev/mapper/vg-top", "via": "sdb -> dm-0 -> dm-1", "use": "mounted on /data (ext4)"}]
    assert read_block_tree(root, "sdz") is None


def test_read_block_tree_survives_a_holder_loop(tmp_path):
    root = str(tmp_path)
    base = os.path.join(root, "sys/devices/virtual/block")
    make_block(root, "dm-5", "253:5", base)
    make_block(root, "dm-6", "253:6", base, holders=("dm-5",))
    os.symlink(os.path.join(root, "sys/class/block/dm-6"), os.path.join(base, "dm-5", "holders", "dm-6"))
    got = read_block_tree(root, "dm-6")
    assert got["name"] == "dm-6" and got["holders"][0]["name"] == "dm-5"


# ------------------------------------------------------------------------------------------- messages
def test_login_error_24_names_chap_fields_without_secrets():
    r = rec(auth={"method": "CHAP", "username": "labchap", "has_password": True, "username_in": None,
                  "has_password_in": False})
    msg = sp.login_error_message(24, r, "iscsiadm: initiator reported error (24 - iSCSI login failed due to "
                                        "authorization failure)", initiator_name="iqn.2025-01.lab:init1")
    for needle in ("authentication failed", "node.session.auth.authmethod=CHAP", "node.session.auth.username=labchap",
                   "node.session.auth.password set", "username_in/password_in", "iqn.2025-01.lab:init1", DISK1):
        assert needle in msg
    mutual = rec(auth={"method": "CHAP", "username": "u", "has_password": True, "username_in": "t",
                       "has_password_in": True})
    assert "node.session.auth.username_in=t" in sp.login_error_message(24, mutual)


@pytest.mark.parametrize("rc,needle", [
    (21, "no node record"), (19, "ACL"), (8, "TRANS_TIMEOUT"), (4, "connection failure"), (12, "iscsi_tcp"),
    (20, "iscsid"), (3, "out of memory"),
])
def test_login_error_messages(rc, needle):
    msg = sp.login_error_message(rc, rec(address="fd00::1"), "iscsiadm: said this\n")
    assert needle in msg and "[fd00::1]:3260" in msg and "said this" in msg


def test_rc_helpers_and_logout_message():
    assert sp.login_rc_ok(0) and sp.login_rc_ok(15) and not sp.login_rc_ok(24)
    assert sp.logout_rc_ok(21) and sp.logout_rc_ok(2) and sp.logout_rc_ok(22) and not sp.logout_rc_ok(10)
    msg = sp.logout_error_message(10, sess(5), "iscsiadm: x")
    assert "session 5" in msg and "exit code 10" in msg and "iscsiadm said: iscsiadm: x" in msg
    assert sp.record_label(rec(iface="eth1")).endswith("(iface eth1)")


def test_multipath_map_with_a_surviving_path_is_not_in_use():
    mounts = parse_mountinfo("60 22 253:3 / /srv rw - xfs /dev/mapper/mpatha rw\n")
    mpath = tree("dm-3", "253:3", dm_name="mpatha")
    mpath.update(dm_uuid="mpath-360000000000000000e00000000010001", slaves=["sdb", "sdc"])
    sdb = tree("sdb", "8:16", holders=[mpath])
    # logging out only sdb's session: sdc keeps the map alive
    kept = []
    assert sp.device_users([sdb], mounts, [], leaving=["sdb"], kept=kept) == []
    assert kept == [{"device": "/dev/mapper/mpatha", "via": "sdb -> dm-3", "paths": ["sdc"]}]
    # logging out both paths: the mounted map goes with them
    users = sp.device_users([sdb], mounts, [], leaving=["sdb", "sdc"])
    assert users == [{"device": "/dev/mapper/mpatha", "via": "sdb -> dm-3", "use": "mounted on /srv (xfs)"}]
    # an LVM volume (not multipath) over two disks is in use whatever the other disk does
    lv = tree("dm-4", "253:4", dm_name="vg-lv")
    lv.update(dm_uuid="LVM-abc", slaves=["sdb", "sdc"])
    mounts = parse_mountinfo("61 22 253:4 / /data rw - ext4 /dev/mapper/vg-lv rw\n")
    assert len(sp.device_users([tree("sdb", "8:16", holders=[lv])], mounts, [], leaving=["sdb"])) == 1


def test_multipath_map_whose_other_path_is_dead_is_on_its_last_path():
    mounts = parse_mountinfo("60 22 253:3 / /srv rw - xfs /dev/mapper/mpatha rw\n")
    mpath = tree("dm-3", "253:3", dm_name="mpatha")
    mpath.update(dm_uuid="mpath-3600", slaves=["sdb", "sdc"], slave_states={"sdb": "running", "sdc": "blocked"})
    sdb = tree("sdb", "8:16", holders=[mpath])
    kept = []
    users = sp.device_users([sdb], mounts, [], leaving=["sdb"], kept=kept)
    assert kept == [] and users == [{"device": "/dev/mapper/mpatha", "via": "sdb -> dm-3",
                                     "use": "mounted on /srv (xfs)"}]
    # the other path back to running: the logout of sdb's session is allowed again
    mpath["slave_states"]["sdc"] = "running"
    assert sp.device_users([sdb], mounts, [], leaving=["sdb"], kept=kept) == [] and kept[0]["paths"] == ["sdc"]
