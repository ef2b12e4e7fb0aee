# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The brief scan of _sysfs (``read_sessions(brief=True)``, session_check's poll): the same result as the full read
restricted to the brief keys, with few system calls, and every tolerance of the full read (a session vanishing
mid-scan, EACCES/ENOTCONN, attributes missing on older kernels, ``(null)``, recovery_tmo ``off``)."""

from __future__ import annotations

import errno
import os
import shutil
import sys

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _health, _sysfs

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures"))
import fixturetree  # noqa: E402  pylint: disable=wrong-import-position

CAPTURED = ["bookworm-logged-in", "bookworm-failed", "bookworm-recovery-timeout", "trixie-logged-in",
            "trixie-failed"]
SESSION_KEYS = ("sid", "name", "path", "state", "targetname", "tpgt", "ifacename", "recovery_tmo",
                "recovery_tmo_raw")


def restricted(session):
    """What the brief scan promises to read of a session dict."""
    return ([session[k] for k in SESSION_KEYS],
            [(c["cid"], c["state"], c["persistent_address"], c["persistent_port"]) for c in session["connections"]],
            (session["host"]["name"], session["host"]["number"]),
            [(d["hctl"], d["lun"], d["state"], d["block"]) for d in session["devices"]])


def same_as_full(root):
    brief = _sysfs.read_sessions(root, brief=True)
    full = _sysfs.read_sessions(root)
    assert [sorted(s) for s in brief] == [sorted(s) for s in full]
    assert [sorted(c) for s in brief for c in s["connections"]] == [sorted(c) for s in full for c in s["connections"]]
    assert [sorted(d) for s in brief for d in s["devices"]] == [sorted(d) for s in full for d in s["devices"]]
    assert [restricted(s) for s in brief] == [restricted(s) for s in full]
    return brief


class Opens:
    """Counts (and optionally fails) the brief scan's opens: ``fail`` maps a path suffix to an errno."""

    def __init__(self, monkeypatch, fail=None, hook=None):
        self.paths = []
        self.fail = fail or {}
        self.hook = hook
        self.real = os.open
        monkeypatch.setattr(_sysfs, "_open_fd", self)

    def __call__(self, path, flags, *args):
        self.paths.append(path)
        if self.hook:
            self.hook(path)
        for suffix, err in self.fail.items():
            if path.endswith(suffix):
                raise OSError(err, os.strerror(err), path)
        return self.real(path, flags, *args)


@pytest.mark.parametrize("name", CAPTURED)
def test_captured_brief_equals_full_restricted(tmp_path, name):
    root = fixturetree.materialize(name, tmp_path / name)
    brief = same_as_full(root)
    assert brief and all(s["devices"] for s in brief)


def test_few_opens_per_session(tmp_path, monkeypatch):
    for sid in range(1, 9):
        fixturetree.add_session(tmp_path, sid, luns=[(0, None, "running"), (1, "sd" + "abcdefgh"[sid - 1], "running")])
    opens = Opens(monkeypatch)
    used_open = []
    monkeypatch.setattr(_sysfs, "open", lambda *a, **k: used_open.append(a) or open(*a, **k), raising=False)
    sessions = _sysfs.read_sessions(str(tmp_path), brief=True)
    assert len(sessions) == 8 and used_open == []
    # 5 session attributes, 3 of the connection, 1 per LUN: 10 files per session, nothing else.
    assert len(opens.paths) == 10 * 8
    assert sorted(set(os.path.basename(p) for p in opens.paths)) == [
        "ifacename", "persistent_address", "persistent_port", "recovery_tmo", "state", "targetname", "tpgt"]


def test_synthetic_edge_cases_equal_full(tmp_path):
    fixturetree.add_session(tmp_path, 1, luns=[(0, None, "running"), (1, "sdb", "running")])
    fixturetree.add_session(tmp_path, 2, recovery_tmo="off", target="(null)")
    fixturetree.add_session(tmp_path, 3, omit=("recovery_tmo", "tpgt", "targetname"), conns=[{"cid": 0, "state": None}])
    fixturetree.add_session(tmp_path, 4, software=False, state="FREE", conns=[{"cid": 0, "state": "down"}],
                            luns=[(1, "sdd", "transport-offline")])
    fixturetree.add_session(tmp_path, 12, conns=[{"cid": 1, "address": "10.213.0.2"}, {"cid": 0}])
    brief = same_as_full(str(tmp_path))
    by_sid = dict((s["sid"], s) for s in brief)
    assert sorted(by_sid) == [1, 2, 3, 4, 12]
    assert by_sid[2]["recovery_tmo"] is None and by_sid[2]["recovery_tmo_raw"] == "off"
    assert by_sid[2]["targetname"] is None  # (null)
    assert (by_sid[3]["recovery_tmo_raw"], by_sid[3]["tpgt"], by_sid[3]["targetname"]) == (None, None, None)
    assert by_sid[3]["connections"][0]["state"] is None and by_sid[3]["connections"][0]["persistent_port"] == 3260
    assert by_sid[4]["path"].startswith("/sys/devices/pci0000:00/") and by_sid[4]["devices"][0]["block"] == "sdd"
    assert [c["cid"] for c in by_sid[12]["connections"]] == [0, 1]
    assert [(d["lun"], d["block"]) for d in by_sid[1]["devices"]] == [(0, None), (1, "sdb")]


def test_eacces_and_enotconn_are_none(tmp_path, monkeypatch):
    fixturetree.add_session(tmp_path, 1, luns=[(1, "sdb", "running")])
    Opens(monkeypatch, fail={"session1/targetname": errno.EACCES, "connection1:0/persistent_address": errno.ENOTCONN,
                             "2:0:0:1/state": errno.EACCES})
    [s] = _sysfs.read_sessions(str(tmp_path), brief=True)
    assert s["state"] == "LOGGED_IN" and s["targetname"] is None and s["tpgt"] == 1
    assert s["connections"][0]["persistent_address"] is None and s["connections"][0]["state"] == "up"
    assert [(d["hctl"], d["state"], d["block"]) for d in s["devices"]] == [("2:0:0:1", None, "sdb")]
    [entry] = _health.evaluate([s])["sessions"]
    assert entry["problems"] == ["device state unreadable: sdb (2:0:0:1)"]


def test_session_state_unreadable(tmp_path, monkeypatch):
    fixturetree.add_session(tmp_path, 1)
    Opens(monkeypatch, fail={"session1/state": errno.EACCES})
    [s] = _sysfs.read_sessions(str(tmp_path), brief=True)
    assert s["state"] is None and s["targetname"] == "iqn.2025-01.lab.openiscsi:tgt-open"
    assert _health.evaluate([s])["sessions"][0]["problems"] == ["session state unreadable"]


def test_dangling_class_link_is_skipped(tmp_path):
    fixturetree.add_session(tmp_path, 1)
    fixturetree.add_session(tmp_path, 2, host=3)
    shutil.rmtree(os.path.join(str(tmp_path), "sys/devices/platform/host3/session2"))
    assert [s["sid"] for s in _sysfs.read_sessions(str(tmp_path), brief=True)] == [1]


@pytest.mark.parametrize("when", ["connection1:0/state", "2:0:0:1/state", "session1/ifacename"])
def test_session_vanishing_mid_scan_is_skipped(tmp_path, monkeypatch, when):
    """The session is logged out (its whole device tree removed) while one of its files is being opened."""
    fixturetree.add_session(tmp_path, 1, host=2, luns=[(0, None, "running"), (1, "sdb", "running")])
    fixturetree.add_session(tmp_path, 2, host=3, luns=[(1, "sdc", "running")])
    dev = os.path.join(str(tmp_path), "sys/devices/platform/host2/session1")

    def hook(path):
        if path.endswith(when) and os.path.isdir(dev):
            shutil.rmtree(dev)

    Opens(monkeypatch, hook=hook)
    assert [s["sid"] for s in _sysfs.read_sessions(str(tmp_path), brief=True)] == [2]


def test_lun_vanishing_mid_scan_is_left_out(tmp_path, monkeypatch):
    fixturetree.add_session(tmp_path, 1, host=2, luns=[(1, "sdb", "running"), (2, "sdc", "running")])
    lun = os.path.join(str(tmp_path), "sys/devices/platform/host2/session1/target2:0:0/2:0:0:2")

    def hook(path):
        if path.endswith("2:0:0:1/state") and os.path.isdir(lun):
            shutil.rmtree(lun)

    Opens(monkeypatch, hook=hook)
    [s] = _sysfs.read_sessions(str(tmp_path), brief=True)
    assert [d["hctl"] for d in s["devices"]] == ["2:0:0:1"]


def test_missing_connection_state_of_older_kernels_is_not_vanishing(tmp_path):
    fixturetree.add_session(tmp_path, 1, conns=[{"cid": 0, "state": None}], luns=[(1, "sdb", "running")])
    [s] = _sysfs.read_sessions(str(tmp_path), brief=True)
    assert s["connections"][0]["state"] is None and s["connections"][0]["persistent_address"] == "10.213.0.1"
    assert _health.evaluate([s])["healthy"] is True


def test_class_link_through_another_symlink(tmp_path):
    """A class link whose target climbs out of a symlinked directory (``link/..``): lexical resolution would miss
    the session, so it is resolved for real instead of being dropped as vanished."""
    fixturetree.add_session(tmp_path, 1, host=2, luns=[(1, "sdb", "running")])
    root = str(tmp_path)
    devices = os.path.join(root, "sys/devices")
    os.makedirs(os.path.join(devices, "deep/x"))
    os.rename(os.path.join(devices, "platform"), os.path.join(devices, "deep/platform"))
    os.symlink("deep/x", os.path.join(devices, "link"))
    link = os.path.join(root, "sys/class/iscsi_session/session1")
    os.unlink(link)
    os.symlink("../../devices/link/../platform/host2/session1/iscsi_session/session1", link)
    [s] = _sysfs.read_sessions(root, brief=True)
    assert s["state"] == "LOGGED_IN" and s["devices"][0]["block"] == "sdb"
    assert s["path"] == "/sys/devices/deep/platform/host2/session1"


def test_plain_directory_class_entry(tmp_path):
    """Synthetic trees may hold the class entry as a directory instead of a link."""
    scls = fixturetree.add_session(tmp_path, 1, host=2)
    link = os.path.join(str(tmp_path), "sys/class/iscsi_session/session1")
    os.unlink(link)
    shutil.copytree(scls, link)
    [s] = _sysfs.read_sessions(str(tmp_path), brief=True)
    assert s["state"] == "LOGGED_IN" and s["targetname"] == "iqn.2025-01.lab.openiscsi:tgt-open"


def test_connection_only_in_class_dir(tmp_path):
    fixturetree.add_session(tmp_path, 1, host=2, conns=[])
    cdir = os.path.join(str(tmp_path), "sys/class/iscsi_connection/connection1:0")
    os.makedirs(cdir)
    with open(os.path.join(cdir, "state"), "w") as handle:
        handle.write("up\n")
    [s] = _sysfs.read_sessions(str(tmp_path), brief=True)
    assert [(c["cid"], c["state"], c["persistent_address"]) for c in s["connections"]] == [(0, "up", None)]


# ------------------------------------------------------------------------------- the class index, the forked readers
def _edge_case_tree(root):
    fixturetree.add_session(root, 1, luns=[(0, None, "running"), (1, "sdb", "running"), (2, "sdc", "offline")])
    fixturetree.add_session(root, 2, state="FAILED", conns=[{"cid": 0, "state": "failed"}],
                            luns=[(1, "sdd", "blocked")])
    fixturetree.add_session(root, 3, software=False, conns=[{"cid": 1}, {"cid": 0, "state": "down"}])
    fixturetree.add_session(root, 4, host=9, luns=[(3, "sde", "running")])
    # a partition's class link and a non-iSCSI disk: neither may be taken for a LUN's disk
    part = os.path.join(root, "sys/devices/platform/host2/session1/target2:0:0/2:0:0:1/block/sdb/sdb1")
    os.makedirs(part)
    os.symlink(os.path.relpath(part, os.path.join(root, "sys/class/block")), os.path.join(root, "sys/class/block/sdb1"))
    vda = os.path.join(root, "sys/devices/pci0000:00/0000:00:04.0/virtio1/block/vda")
    os.makedirs(vda)
    os.symlink(os.path.relpath(vda, os.path.join(root, "sys/class/block")), os.path.join(root, "sys/class/block/vda"))


def test_class_index_gives_what_listing_each_session_gives(tmp_path, monkeypatch):
    root = str(tmp_path)
    _edge_case_tree(root)
    listed = []
    real_listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path=".": listed.append(path) or real_listdir(path))
    indexed = same_as_full(root)
    # the indexed scan lists the class directories once each, none of a session's own directories
    listed[:] = []
    assert _sysfs.read_sessions(root, brief=True) == indexed
    assert sorted(p[len(root):] for p in listed) == [
        "/sys/class/block", "/sys/class/iscsi_connection", "/sys/class/iscsi_session", "/sys/class/scsi_device"]
    by_sid = dict((s["sid"], s) for s in indexed)
    assert [(d["hctl"], d["block"], d["state"]) for d in by_sid[1]["devices"]] == [
        ("2:0:0:0", None, "running"), ("2:0:0:1", "sdb", "running"), ("2:0:0:2", "sdc", "offline")]
    assert [c["cid"] for c in by_sid[3]["connections"]] == [0, 1]
    assert by_sid[4]["devices"][0]["block"] == "sde"
    # Without the class directories (older or synthetic trees) each session's directories are listed: same result.
    for cls in ("scsi_device", "block", "iscsi_connection"):
        shutil.rmtree(os.path.join(root, "sys/class", cls))
    listed[:] = []
    assert _sysfs.read_sessions(root, brief=True) == indexed
    assert len(listed) > 4


def test_forked_readers_give_the_one_process_result(tmp_path, monkeypatch):
    root = str(tmp_path)
    for sid in range(1, 41):
        fixturetree.add_session(root, sid, state="FAILED" if sid % 7 == 0 else "LOGGED_IN",
                                luns=[(0, None, "running"), (1, "sd%d" % sid, "running")])
    one = _sysfs.read_sessions(root, brief=True, workers=1)
    assert [s["sid"] for s in one] == list(range(1, 41))
    forks = []
    real_fork = os.fork
    monkeypatch.setattr(os, "fork", lambda: forks.append(1) or real_fork())
    monkeypatch.setattr(_sysfs, "PARALLEL_MIN", 8)
    assert _sysfs.read_sessions(root, brief=True, workers=4) == one
    assert len(forks) == 3  # this process reads the first share itself
    # more workers than shares of PARALLEL_MIN sessions: only 5 readers (40 // 8)
    forks[:] = []
    assert _sysfs.read_sessions(root, brief=True, workers=8) == one and len(forks) == 4
    # a reader that fails (here: cannot encode its result) has its share read by this process

    def broken(_value):
        raise ValueError("no")
    monkeypatch.setattr(_sysfs.marshal, "dumps", broken)
    assert _sysfs.read_sessions(root, brief=True, workers=4) == one
    # no fork at all (a process limit): everything is read here

    def no_fork():
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
    monkeypatch.setattr(os, "fork", no_fork)
    assert _sysfs.read_sessions(root, brief=True, workers=4) == one


def test_small_scans_do_not_fork(tmp_path, monkeypatch):
    root = str(tmp_path)
    for sid in range(1, 5):
        fixturetree.add_session(root, sid, luns=[(1, "sd%d" % sid, "running")])
    monkeypatch.setattr(os, "fork", lambda: pytest.fail("forked for 4 sessions"))
    assert len(_sysfs.read_sessions(root, brief=True, workers=8)) == 4


# ------------------------------------------------------------------------------------------- the identity cache
def _set(root, rel, text):
    with open(os.path.join(root, rel), "w") as handle:
        handle.write(text + "\n")


def test_cache_later_scans_read_only_what_changes(tmp_path, monkeypatch):
    root = str(tmp_path)
    for sid in (1, 2, 3):
        fixturetree.add_session(root, sid, luns=[(0, None, "running"), (1, "sd" + "bcd"[sid - 1], "running")])
    fixturetree.add_session(root, 4, state="FREE", conns=[{"cid": 0, "state": "down"}])
    cache = {}
    opens = Opens(monkeypatch)
    first = _sysfs.read_sessions(root, brief=True, cache=cache)
    assert len(opens.paths) == 3 * 10 + 8 and first == _sysfs.read_sessions(root, brief=True)
    assert sorted(cache["sessions"]) == [1, 2, 3]  # session 4 is not logged in: its identity is read again next time
    opens.paths[:] = []
    assert _sysfs.read_sessions(root, brief=True, cache=cache) == first
    # sessions 1-3: state, recovery_tmo, the connection's state, 2 LUN states; session 4 in full (5 + 3)
    assert len(opens.paths) == 3 * 5 + 8
    assert not [p for p in opens.paths if "session4" not in p and p.endswith(("targetname", "ifacename", "tpgt",
                                                                              "persistent_address"))]
    # what changes is seen: session 2 fails, its LUN is blocked, its recovery_tmo was lowered
    dev = "sys/devices/platform/host3/session2"
    _set(root, dev + "/iscsi_session/session2/state", "FAILED")
    _set(root, dev + "/connection2:0/iscsi_connection/connection2:0/state", "failed")
    _set(root, dev + "/target3:0:0/3:0:0:1/state", "blocked")
    _set(root, dev + "/iscsi_session/session2/recovery_tmo", "5")
    second = dict((s["sid"], s) for s in _sysfs.read_sessions(root, brief=True, cache=cache))
    assert second[2]["state"] == "FAILED" and second[2]["connections"][0]["state"] == "failed"
    assert [d["state"] for d in second[2]["devices"]] == ["running", "blocked"] and second[2]["recovery_tmo"] == 5
    assert second[2]["targetname"] == first[1]["targetname"] and second[2]["connections"][0]["persistent_port"] == 3260
    # a session logged out leaves the cache; a new one (a new sid: the kernel never reuses one) is read in full
    shutil.rmtree(os.path.join(root, dev))
    os.unlink(os.path.join(root, "sys/class/iscsi_session/session2"))
    fixturetree.add_session(root, 5, target="iqn.2025-01.lab.openiscsi:tgt-new", luns=[(1, "sdf", "running")])
    third = _sysfs.read_sessions(root, brief=True, cache=cache)
    assert [s["sid"] for s in third] == [1, 3, 4, 5] and sorted(cache["sessions"]) == [1, 3, 5]
    assert third[-1]["targetname"] == "iqn.2025-01.lab.openiscsi:tgt-new"
    assert third == _sysfs.read_sessions(root, brief=True)


def test_cache_with_forked_readers(tmp_path, monkeypatch):
    root = str(tmp_path)
    for sid in range(1, 25):
        fixturetree.add_session(root, sid, luns=[(1, "sd%d" % sid, "running")])
    monkeypatch.setattr(_sysfs, "PARALLEL_MIN", 8)
    cache = {}
    one = _sysfs.read_sessions(root, brief=True, workers=1)
    assert _sysfs.read_sessions(root, brief=True, workers=3, cache=cache) == one
    assert sorted(cache["sessions"]) == list(range(1, 25))  # filled from what the forked readers sent back
    _set(root, "sys/devices/platform/host21/session20/iscsi_session/session20/state", "FAILED")
    again = _sysfs.read_sessions(root, brief=True, workers=3, cache=cache)
    assert again == _sysfs.read_sessions(root, brief=True, workers=1) and again[19]["state"] == "FAILED"


def test_cache_keeps_class_links_of_cached_sessions_and_sees_lun_changes(tmp_path, monkeypatch):
    root = str(tmp_path)
    for sid in (1, 2):
        fixturetree.add_session(root, sid, luns=[(0, None, "running"), (1, "sd" + "bc"[sid - 1], "running")])
    cache = {}
    first = _sysfs.read_sessions(root, brief=True, cache=cache)
    links = []
    real_readlink = os.readlink
    monkeypatch.setattr(os, "readlink", lambda path, *a, **k: links.append(path) or real_readlink(path, *a, **k))
    assert _sysfs.read_sessions(root, brief=True, cache=cache) == first
    assert links == []  # sessions, LUNs and disks of cached sessions: no readlink at all
    # a LUN added to session 1 (a rescan) is read through its new link; a LUN removed from session 2 is gone
    fixturetree.add_session(root, 1, luns=[(2, "sdd", "offline")])
    lun = os.path.join(root, "sys/devices/platform/host3/session2/target3:0:0/3:0:0:1")
    shutil.rmtree(lun)
    os.unlink(os.path.join(root, "sys/class/scsi_device/3:0:0:1"))
    os.unlink(os.path.join(root, "sys/class/block/sdc"))
    later = dict((s["sid"], s) for s in _sysfs.read_sessions(root, brief=True, cache=cache))
    assert sorted(p.rsplit("/", 2)[-2:][1] for p in links) == ["2:0:0:2", "sdd"]
    assert [(d["hctl"], d["block"], d["state"]) for d in later[1]["devices"]] == [
        ("2:0:0:0", None, "running"), ("2:0:0:1", "sdb", "running"), ("2:0:0:2", "sdd", "offline")]
    assert [d["hctl"] for d in later[2]["devices"]] == ["3:0:0:0"]
    assert list(later.values()) == _sysfs.read_sessions(root, brief=True)
