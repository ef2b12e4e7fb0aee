# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import errno
import os
import shutil
import sys

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _sysfs

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures"))
import fixturetree  # noqa: E402  pylint: disable=wrong-import-position

TGT = "iqn.2025-01.lab.openiscsi:tgt-open"


def test_no_iscsi_class_at_all(tmp_path):
    assert _sysfs.read_sessions(str(tmp_path)) == []
    assert _sysfs.has_live_sessions(str(tmp_path)) is False


def test_logged_in_session_full_shape(tmp_path):
    fixturetree.add_session(tmp_path, 1, host=2, luns=[(0, None, "running"), (1, "sdb", "running"),
                                                       (2, "sdc", "running")])
    [s] = _sysfs.read_sessions(str(tmp_path))
    assert s["sid"] == 1 and s["name"] == "session1"
    assert s["state"] == "LOGGED_IN" and s["target_state"] == "SCANNED"
    assert s["targetname"] == TGT and s["tpgt"] == 1 and s["ifacename"] == "default"
    assert s["initiatorname"] == "iqn.1993-08.org.debian:01:abcdef"
    assert s["recovery_tmo"] == 120 and s["abort_tmo"] == 15 and s["creator"] == -1
    assert s["targetalias"] is None  # (null)
    assert s["boot"] is False
    assert s["path"] == "/sys/devices/platform/host2/session1"
    [c] = s["connections"]
    assert c == dict(c, cid=0, state="up", persistent_address="10.213.0.1", persistent_port=3260,
                     address="10.213.0.1", port=3260)
    assert s["host"]["name"] == "host2" and s["host"]["number"] == 2
    assert s["host"]["software"] is True and s["host"]["proc_name"] == "iscsi_tcp"
    assert s["host"]["ipaddress"] == "10.213.0.11" and s["host"]["netdev"] is None
    assert [d["hctl"] for d in s["devices"]] == ["2:0:0:0", "2:0:0:1", "2:0:0:2"]
    ctrl, disk1, disk2 = s["devices"]
    assert ctrl["block"] is None and ctrl["type"] == 12 and ctrl["by_path"] == []
    assert disk1["block"] == "sdb" and disk1["lun"] == 1 and disk1["state"] == "running"
    assert disk1["vendor"] == "IET" and disk1["model"] == "VIRTUAL-DISK"  # padded in sysfs
    assert disk1["by_path"] == ["/dev/disk/by-path/ip-10.213.0.1:3260-iscsi-%s-lun-1" % TGT]
    assert disk2["block"] == "sdc"


def test_sessions_sorted_numerically_not_lexically(tmp_path):
    for sid in (10, 2, 1):
        fixturetree.add_session(tmp_path, sid)
    assert [s["sid"] for s in _sysfs.read_sessions(str(tmp_path))] == [1, 2, 10]
    assert _sysfs.list_session_names(str(tmp_path)) == ["session1", "session2", "session10"]


@pytest.mark.parametrize("raw, expected", [("off", None), ("120", 120), ("5\n", 5), ("0", 0), ("garbage", None)])
def test_recovery_tmo(tmp_path, raw, expected):
    fixturetree.add_session(tmp_path, 1, recovery_tmo=raw.strip())
    [s] = _sysfs.read_sessions(str(tmp_path))
    assert s["recovery_tmo"] == expected
    assert s["recovery_tmo_raw"] == raw.strip()


def test_null_values_are_none(tmp_path):
    fixturetree.add_session(tmp_path, 1, initiator="(null)", target="(null)")
    [s] = _sysfs.read_sessions(str(tmp_path))
    assert s["initiatorname"] is None and s["targetname"] is None and s["targetalias"] is None


def test_missing_attributes_of_older_kernels(tmp_path):
    fixturetree.add_session(tmp_path, 1, omit=("target_state", "recovery_tmo", "creator", "tpgt"),
                            conns=[{"cid": 0, "state": None}])
    [s] = _sysfs.read_sessions(str(tmp_path))
    assert s["state"] == "LOGGED_IN"
    assert s["target_state"] is None and s["recovery_tmo"] is None and s["creator"] is None and s["tpgt"] is None
    assert s["connections"][0]["state"] is None  # connection state is missing before Linux 5.x
    assert s["connections"][0]["address"] == "10.213.0.1"


def test_failed_session_with_down_connection(tmp_path):
    fixturetree.add_session(tmp_path, 3, state="FAILED", conns=[{"cid": 0, "state": "failed"}],
                            luns=[(1, "sdb", "blocked")])
    [s] = _sysfs.read_sessions(str(tmp_path))
    assert s["state"] == "FAILED"
    assert s["connections"][0]["state"] == "failed"
    assert s["devices"][0]["state"] == "blocked"


def _failing_open(monkeypatch, suffix, err):
    real_open = open

    def fake(path, *args, **kwargs):
        if str(path).endswith(suffix):
            raise OSError(err, os.strerror(err), str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(_sysfs, "open", fake, raising=False)


def test_eacces_attribute_is_none(tmp_path, monkeypatch):
    fixturetree.add_session(tmp_path, 1, extra={"password": "secret\n"})
    _failing_open(monkeypatch, "/targetname", errno.EACCES)
    [s] = _sysfs.read_sessions(str(tmp_path))
    assert s["targetname"] is None
    assert s["state"] == "LOGGED_IN"


def test_enotconn_on_address_of_a_down_connection(tmp_path, monkeypatch):
    fixturetree.add_session(tmp_path, 1, state="FAILED", conns=[{"cid": 0, "state": "down"}])
    _failing_open(monkeypatch, "connection1:0/address", errno.ENOTCONN)
    [s] = _sysfs.read_sessions(str(tmp_path))
    c = s["connections"][0]
    assert c["address"] is None and c["persistent_address"] == "10.213.0.1"


def test_session_gone_before_reading(tmp_path):
    fixturetree.add_session(tmp_path, 1)
    fixturetree.add_session(tmp_path, 2, host=3)
    shutil.rmtree(os.path.join(str(tmp_path), "sys/devices/platform/host3/session2"))  # dangling class link
    assert [s["sid"] for s in _sysfs.read_sessions(str(tmp_path))] == [1]


def test_session_vanishing_mid_scan_is_skipped(tmp_path, monkeypatch):
    fixturetree.add_session(tmp_path, 1, host=2)
    fixturetree.add_session(tmp_path, 2, host=3, luns=[(1, "sdc", "running")])
    real = _sysfs.read_connections

    def vanish(root, dev_dir, sid, brief=False):
        result = real(root, dev_dir, sid, brief)
        if sid == 2:  # logout completes while we are reading session 2
            shutil.rmtree(dev_dir)
        return result

    monkeypatch.setattr(_sysfs, "read_connections", vanish)
    assert [s["sid"] for s in _sysfs.read_sessions(str(tmp_path))] == [1]


def test_listing_race_oserror_enoent_is_skipped(tmp_path, monkeypatch):
    fixturetree.add_session(tmp_path, 1)
    fixturetree.add_session(tmp_path, 2, host=3)

    def boom(root, name, by_path=None, brief=False):
        if name == "session1":
            raise OSError(errno.ENOENT, "gone")
        return real(root, name, by_path, brief)

    real = _sysfs.read_session
    monkeypatch.setattr(_sysfs, "read_session", boom)
    assert [s["sid"] for s in _sysfs.read_sessions(str(tmp_path))] == [2]


def test_lun_vanishing_is_skipped(tmp_path):
    scls = fixturetree.add_session(tmp_path, 1, host=2, luns=[(1, "sdb", "running")])
    assert _sysfs.read_device(os.path.join(os.path.dirname(os.path.dirname(scls)), "target2:0:0", "2:0:0:9")) is None


def test_offload_host(tmp_path):
    fixturetree.add_session(tmp_path, 1, host=5, software=False)
    [s] = _sysfs.read_sessions(str(tmp_path))
    assert s["host"]["software"] is False and s["host"]["proc_name"] == "bnx2i"
    assert s["path"].startswith("/sys/devices/pci0000:00/")


def test_software_guessed_from_path_without_proc_name(tmp_path):
    fixturetree.add_session(tmp_path, 1, host=2)
    os.unlink(os.path.join(str(tmp_path), "sys/devices/platform/host2/scsi_host/host2/proc_name"))
    [s] = _sysfs.read_sessions(str(tmp_path))
    assert s["host"]["proc_name"] is None and s["host"]["software"] is True


def test_multiple_connections_sorted_by_cid(tmp_path):
    fixturetree.add_session(tmp_path, 4, conns=[{"cid": 1, "address": "10.213.0.2"}, {"cid": 0}])
    [s] = _sysfs.read_sessions(str(tmp_path))
    assert [(c["cid"], c["address"]) for c in s["connections"]] == [(0, "10.213.0.1"), (1, "10.213.0.2")]


def test_connections_from_class_dir_when_not_below_session(tmp_path):
    scls = fixturetree.add_session(tmp_path, 1, host=2, conns=[])
    cdir = os.path.join(str(tmp_path), "sys/class/iscsi_connection/connection1:0")
    os.makedirs(cdir)
    with open(os.path.join(cdir, "state"), "w") as handle:
        handle.write("up\n")
    assert scls
    [s] = _sysfs.read_sessions(str(tmp_path))
    assert [(c["cid"], c["state"]) for c in s["connections"]] == [(0, "up")]


def test_device_map_and_live_sessions(tmp_path):
    fixturetree.add_session(tmp_path, 1, host=2, luns=[(1, "sdb", "running")])
    fixturetree.add_session(tmp_path, 2, host=3, luns=[(1, "sdc", "running"), (0, None, "running")])
    sessions = _sysfs.read_sessions(str(tmp_path))
    assert _sysfs.device_map(sessions) == {"sdb": (1, "2:0:0:1"), "sdc": (2, "3:0:0:1")}
    assert _sysfs.has_live_sessions(str(tmp_path)) is True


@pytest.mark.parametrize("raw, expected", [(b"abc\n", "abc"), (b"(null)\n", None), (b"", ""), (b"x\x00", "x")])
def test_read_attr(tmp_path, raw, expected):
    path = tmp_path / "attr"
    path.write_bytes(raw)
    assert _sysfs.read_attr(str(path)) == expected


def test_read_attr_missing_is_none(tmp_path):
    assert _sysfs.read_attr(str(tmp_path / "nope")) is None


def test_read_session_rejects_bad_name(tmp_path):
    with pytest.raises(ValueError):
        _sysfs.read_session(str(tmp_path), "connection1:0")


# ----------------------------------------------------------------------------------------------- captured lab trees
OPEN = "iqn.2025-01.lab.openiscsi:tgt-open"
CHAP = "iqn.2025-01.lab.openiscsi:tgt-chap"
LAB_INITIATOR = "iqn.1993-08.org.debian:01:51daaf1dc457"


def captured(tmp_path, name, overrides=None):
    root = fixturetree.materialize(name, tmp_path / name, overrides)
    return root, _sysfs.read_sessions(root), fixturetree.load_meta(name)


def test_captured_logged_in(tmp_path):
    _root, sessions, _meta = captured(tmp_path, "bookworm-logged-in")
    assert [(s["sid"], s["state"], s["targetname"], s["tpgt"], s["ifacename"]) for s in sessions] == [
        (1, "LOGGED_IN", OPEN, 1, "default"), (2, "LOGGED_IN", CHAP, 1, "default")]
    s1, s2 = sessions
    assert s1["initiatorname"] == LAB_INITIATOR and s1["recovery_tmo"] == 120 and s2["recovery_tmo"] == 120
    assert s1["target_state"] == "SCANNED"
    assert [(c["state"], c["persistent_address"], c["persistent_port"], c["address"], c["port"])
            for c in s1["connections"]] == [("up", "10.213.0.1", 3260, "10.213.0.1", 3260)]
    assert s2["connections"][0]["address"] == "10.213.0.2"
    assert (s1["host"]["name"], s1["host"]["software"], s1["host"]["proc_name"]) == ("host2", True, "iscsi_tcp")
    assert s1["host"]["ipaddress"] == "10.213.0.11" and s1["host"]["netdev"] is None  # "(null)" in sysfs
    assert [(d["hctl"], d["block"], d["state"], d["type"]) for d in s1["devices"]] == [
        ("2:0:0:0", None, "running", 12), ("2:0:0:1", "sda", "running", 0), ("2:0:0:2", "sdb", "running", 0)]
    assert s1["devices"][1]["by_path"] == ["/dev/disk/by-path/ip-10.213.0.1:3260-iscsi-%s-lun-1" % OPEN]
    assert [d["block"] for d in s2["devices"]] == [None, "sdc"]
    assert _sysfs.device_map(sessions) == {"sda": (1, "2:0:0:1"), "sdb": (1, "2:0:0:2"), "sdc": (2, "3:0:0:1")}


@pytest.mark.parametrize("name", ["bookworm-logged-in", "bookworm-failed", "bookworm-recovery-timeout",
                                  "trixie-logged-in", "trixie-failed"])
def test_captured_agrees_with_iscsiadm(tmp_path, name):
    """The pure-sysfs view equals what iscsiadm (talking to iscsid) said at capture time."""
    _root, sessions, meta = captured(tmp_path, name)
    ref = fixturetree.iscsiadm_sessions(meta)
    assert sorted(ref) == [s["sid"] for s in sessions]
    for s in sessions:
        r = ref[s["sid"]]
        assert (s["targetname"], s["state"], s["ifacename"]) == (r["target"], r["state"], r["iface"])
        c = s["connections"][0]
        assert "%s:%d,%d" % (c["persistent_address"], c["persistent_port"], s["tpgt"]) == r["persistent_portal"]
        assert dict((d["block"], d["state"]) for d in s["devices"] if d["block"]) == r["disks"]


@pytest.mark.parametrize("name", ["bookworm-failed", "trixie-failed"])
def test_captured_failed_after_cut(tmp_path, name):
    _root, sessions, _meta = captured(tmp_path, name)
    assert [(s["sid"], s["state"]) for s in sessions] == [(1, "FAILED"), (2, "FAILED")]
    for s in sessions:
        c = s["connections"][0]
        assert c["state"] == "failed"
        # the current address cannot be read while the connection is down; the persistent one stays
        assert c["address"] is None and c["port"] is None
        assert c["persistent_address"] in ("10.213.0.1", "10.213.0.2")
        assert set(d["state"] for d in s["devices"] if d["block"]) == {"blocked"}
    assert [s["recovery_tmo"] for s in sessions] == [120, 45]


def test_captured_recovery_timeout(tmp_path):
    _root, sessions, _meta = captured(tmp_path, "bookworm-recovery-timeout")
    s1, s2 = sessions
    assert s1["state"] == "FAILED" and [d["state"] for d in s1["devices"] if d["block"]] == ["blocked", "blocked"]
    assert s2["state"] == "FREE" and [d["state"] for d in s2["devices"] if d["block"]] == ["transport-offline"]
    assert s2["devices"][1]["block"] == "sdc"  # the block device stays while the session is FREE


def test_captured_tree_derived_edge_cases(tmp_path):
    sess1 = "sys/devices/platform/host2/session1/iscsi_session/session1/"
    _root, sessions, _meta = captured(tmp_path, "bookworm-logged-in", {
        "sys/devices/platform/host3/session2": None,         # session2 vanished: dangling class link
        sess1 + "recovery_tmo": "off\n",
        sess1 + "target_state": None,                           # an older kernel
        sess1 + "targetname": "(null)\n",
    })
    [s1] = sessions
    assert s1["recovery_tmo"] is None and s1["target_state"] is None and s1["targetname"] is None
    assert s1["state"] == "LOGGED_IN" and [d["block"] for d in s1["devices"]] == [None, "sda", "sdb"]


def test_captured_trixie_logged_in(tmp_path):
    _root, sessions, meta = captured(tmp_path, "trixie-logged-in")
    assert meta["kernel"].startswith("6.12.") and meta["open_iscsi"] == "2.1.11-1+deb13u2"
    # Debian 13's first iSCSI hosts are host0/host1 here (no other SCSI host in the guest)
    assert [(s["sid"], s["state"], s["host"]["name"], s["path"]) for s in sessions] == [
        (1, "LOGGED_IN", "host0", "/sys/devices/platform/host0/session1"),
        (2, "LOGGED_IN", "host1", "/sys/devices/platform/host1/session2")]
    assert [(d["hctl"], d["block"]) for d in sessions[0]["devices"]] == [
        ("0:0:0:0", None), ("0:0:0:1", "sda"), ("0:0:0:2", "sdb")]
    assert sessions[1]["connections"][0]["persistent_address"] == "10.213.0.2"
    assert _sysfs.device_map(sessions) == {"sda": (1, "0:0:0:1"), "sdb": (1, "0:0:0:2"), "sdc": (2, "1:0:0:1")}


@pytest.mark.parametrize("name", ["bookworm-logged-in", "bookworm-recovery-timeout", "trixie-failed"])
def test_brief_read_is_the_full_read_restricted(tmp_path, name, monkeypatch):
    root, full, _meta = captured(tmp_path, name)
    opened = []
    real_open = open

    def counting(path, *args, **kwargs):
        opened.append(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(_sysfs, "open", counting, raising=False)
    brief = _sysfs.read_sessions(root, brief=True)
    assert len(opened) < 20 * len(brief)  # a fraction of the ~45 attribute files per session of a full read
    assert [sorted(s) for s in brief] == [sorted(s) for s in full]  # same shape
    for b, f in zip(brief, full):
        for key in ("sid", "name", "path", "state", "targetname", "tpgt", "ifacename", "recovery_tmo"):
            assert b[key] == f[key]
        assert [(c["cid"], c["state"], c["persistent_address"], c["persistent_port"]) for c in b["connections"]] == \
            [(c["cid"], c["state"], c["persistent_address"], c["persistent_port"]) for c in f["connections"]]
        assert (b["host"]["name"], b["host"]["number"]) == (f["host"]["name"], f["host"]["number"])
        assert [(d["hctl"], d["lun"], d["state"], d["block"]) for d in b["devices"]] == \
            [(d["hctl"], d["lun"], d["state"], d["block"]) for d in f["devices"]]
        assert b["initiatorname"] is None and b["host"]["ipaddress"] is None
        assert all(d["vendor"] is None and d["by_path"] == [] for d in b["devices"])
    assert _sysfs.device_map(brief) == _sysfs.device_map(full)
