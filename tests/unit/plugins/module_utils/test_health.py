# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health evaluation (_health) over the sysfs reader's output: captured lab trees, derived and synthetic edge cases."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _health, _nodedb, _sysfs

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures"))
import fixturetree  # noqa: E402  pylint: disable=wrong-import-position

OPEN = "iqn.2025-01.lab.openiscsi:tgt-open"
CHAP = "iqn.2025-01.lab.openiscsi:tgt-chap"
CAPTURED = ["bookworm-logged-in", "bookworm-failed", "bookworm-recovery-timeout", "trixie-logged-in",
            "trixie-failed"]


def tree(name, tmp_path, overrides=None):
    return fixturetree.materialize(name, tmp_path, overrides)


def evaluate(root, **kw):
    return _health.evaluate(_sysfs.read_sessions(root, brief=True), _nodedb.read_nodes(root), **kw)


# --------------------------------------------------------------------------------------------------- captured trees
@pytest.mark.parametrize("name", CAPTURED)
def test_captured_tree_matches_iscsiadm(name, tmp_path):
    """Every session's state, target, portal, iface and disk states agree with iscsiadm -m session -P 3 (captured)."""
    root = tree(name, tmp_path)
    report = evaluate(root)
    seen = fixturetree.iscsiadm_sessions(fixturetree.load_meta(name))
    assert sorted(e["sid"] for e in report["sessions"]) == sorted(seen)
    for entry in report["sessions"]:
        want = seen[entry["sid"]]
        assert entry["state"] == want["state"]
        assert entry["target"] == want["target"]
        assert entry["portal"] + ",%d" % entry["tpgt"] == want["persistent_portal"]
        assert entry["iface"] == want["iface"]
        disks = dict((d["block"], d["state"]) for d in entry["devices"] if d["block"])
        assert disks == want["disks"]
        assert entry["healthy"] == (want["state"] == "LOGGED_IN" and set(want["disks"].values()) == {"running"})
    assert report["healthy"] == all(s["state"] == "LOGGED_IN" for s in seen.values())


@pytest.mark.parametrize("name", ["bookworm-logged-in", "trixie-logged-in"])
def test_logged_in_trees_are_healthy_with_every_expectation(name, tmp_path):
    root = tree(name, tmp_path)
    report = evaluate(root, expect_automatic=True, min_paths=1, targets=[OPEN, CHAP])
    assert report["healthy"] is True, report["summary"]
    assert report["problems"] == []
    assert report["counts"] == {"sessions": 2, "healthy": 2, "unhealthy": 0}
    assert report["paths"][OPEN] == {"healthy": 1, "total": 1, "required": 1}
    assert report["summary"].startswith("healthy: 2 sessions")
    for entry in report["sessions"]:
        assert entry["connection_state"] == "up" and entry["device_states"] == ["running"]


@pytest.mark.parametrize("name", ["bookworm-failed", "trixie-failed"])
def test_failed_trees_name_each_session_and_why(name, tmp_path):
    root = tree(name, tmp_path)
    report = evaluate(root)
    assert report["healthy"] is False
    assert report["counts"]["unhealthy"] == 2
    by_sid = dict((p["sid"], p) for p in report["problems"])
    msg = by_sid[1]["message"]
    assert msg.startswith("session 1 (%s via 10.213.0.1:3260, iface default): state FAILED" % OPEN)
    assert "recovery_tmo (120 s)" in msg and "connection 1:0 failed" in msg
    assert "devices blocked" in msg and "sda (" in msg and "sdb (" in msg
    assert "recovery_tmo (45 s)" in by_sid[2]["message"] and CHAP in by_sid[2]["message"]
    assert by_sid[2]["portal"] == "10.213.0.2:3260"
    assert report["sessions"][0]["connection_state"] == "failed"
    assert report["summary"].startswith("unhealthy (0 of 2 sessions healthy): session 1 (")
    assert " | session 2 (" in report["summary"]


def test_recovery_timeout_tree_free_and_transport_offline(tmp_path):
    root = tree("bookworm-recovery-timeout", tmp_path)
    report = evaluate(root)
    s1, s2 = report["sessions"]
    assert s1["state"] == "FAILED" and s1["device_states"] == ["blocked"]
    assert s2["state"] == "FREE" and s2["device_states"] == ["transport-offline"]
    assert any(p.startswith("state FREE (not logged in: the recovery timeout expired") for p in s2["problems"])
    assert any(p.startswith("devices transport-offline (I/O fails): LUN 0 (3:0:0:0), sdc (3:0:0:1)")
               for p in s2["problems"])


# --------------------------------------------------------------------------------------------------- expectations
def test_automatic_record_without_session_is_reported(tmp_path):
    # session1 (tgt-open, the record with node.startup=automatic) is gone.
    root = tree("bookworm-logged-in", tmp_path, {"sys/class/iscsi_session/session1": None})
    assert evaluate(root)["healthy"] is True
    report = evaluate(root, expect_automatic=True)
    assert report["healthy"] is False
    [problem] = report["problems"]
    assert problem["kind"] == "missing_session" and problem["target"] == OPEN
    assert problem["message"] == ("node record %s 10.213.0.1:3260 (iface default) has node.startup=automatic but "
                                  "no session" % OPEN)


def test_static_record_tpgt_minus_one_matches_any_portal_group(tmp_path):
    # The static tgt-chap record 10.213.0.2,3260 (tpgt -1, flat layout) made automatic: session2 (tpgt 1) is it.
    path = "etc/iscsi/nodes/%s/10.213.0.2,3260" % CHAP
    text = [e for e in fixturetree.load_entries("bookworm-logged-in") if e["path"] == path][0]["text"]
    assert "node.startup = manual" in text
    root = tree("bookworm-logged-in", tmp_path, {path: text.replace("node.startup = manual",
                                                                    "node.startup = automatic")})
    records = [r for r in _nodedb.read_nodes(root) if r["startup"] == "automatic"]
    assert sorted(r["tpgt"] for r in records) == [-1, 1]
    assert evaluate(root, expect_automatic=True)["healthy"] is True
    # ... but not a session to another portal: drop session2 and the record is missing.
    root2 = tree("bookworm-logged-in", tmp_path / "b", {
        path: text.replace("node.startup = manual", "node.startup = automatic"),
        "sys/class/iscsi_session/session2": None})
    report = evaluate(root2, expect_automatic=True)
    assert [p["target"] for p in report["problems"]] == [CHAP]


def test_record_matching_compares_portal_iface_and_tpgt():
    entry = {"target": OPEN, "address": "fd00:213::1", "port": 3260, "iface": "default", "tpgt": 1}
    rec = {"target": OPEN, "address": "fd00:213::1", "port": 3260, "iface": "default", "tpgt": -1}
    assert _health._record_matches(rec, entry)
    assert not _health._record_matches(dict(rec, address="fd00:213::2"), entry)
    assert not _health._record_matches(dict(rec, port=3261), entry)
    assert not _health._record_matches(dict(rec, iface="labif0"), entry)
    assert not _health._record_matches(dict(rec, tpgt=2), entry)
    assert not _health._record_matches(dict(rec, target=CHAP), entry)
    # A record naming a host name matches on target, port and iface.
    assert _health._record_matches(dict(rec, address="storage.example.com"), entry)
    # IPv6 case and brackets do not matter.
    assert _health._record_matches(dict(rec, address="[FD00:213::1]"), entry)


def test_min_paths_and_targets(tmp_path):
    root = tree("bookworm-logged-in", tmp_path)
    report = evaluate(root, min_paths=2)
    assert report["healthy"] is False
    assert sorted(p["target"] for p in report["problems"]) == sorted([OPEN, CHAP])
    assert "has 1 healthy path of 1 session; 2 required" in report["problems"][0]["message"]
    # Per-target override; 0 means "not required".
    report = evaluate(root, min_paths=2, target_min_paths={OPEN: 1, CHAP: 0})
    assert report["healthy"] is True
    missing = "iqn.2025-01.lab.openiscsi:tgt-absent"
    report = evaluate(root, targets=[OPEN, missing])
    assert [p["message"] for p in report["problems"]] == ["target %s has no session (1 path required)" % missing]
    assert report["paths"][missing] == {"healthy": 0, "total": 0, "required": 1}


def test_failed_session_does_not_count_as_a_path(tmp_path):
    root = str(tmp_path)
    fixturetree.add_session(root, 1, host=2, luns=[(1, "sda", "running")])
    fixturetree.add_session(root, 2, host=3, state="FAILED", conns=[{"cid": 0, "state": "failed"}],
                            luns=[(1, "sdb", "blocked")])
    report = evaluate(root, target_min_paths={OPEN: 2})
    assert report["paths"][OPEN] == {"healthy": 1, "total": 2, "required": 2}
    assert [p["kind"] for p in report["problems"]] == ["session", "paths"]


def test_validate_expectations():
    paths, targets = _health.validate_expectations(2, {"IQN.2025-01.lab.openiscsi:X": "1"}, [" " + OPEN])
    assert paths == {"iqn.2025-01.lab.openiscsi:x": 1} and targets == [OPEN]
    for args, field in (((0, None, None), "min_paths"), ((True, None, None), "min_paths"),
                        ((None, {OPEN: -1}, None), "target_min_paths.%s" % OPEN),
                        ((None, {OPEN: "two"}, None), "target_min_paths.%s" % OPEN),
                        ((None, None, [""]), "targets[0]")):
        with pytest.raises(_health.InputError) as exc:
            _health.validate_expectations(*args)
        assert exc.value.field == field


# --------------------------------------------------------------------------------------------------- edge cases
def test_connection_without_state_attribute_counts_as_up_on_old_kernels(tmp_path):
    root = str(tmp_path)
    fixturetree.add_session(root, 1, conns=[{"cid": 0, "state": None}], luns=[(1, "sda", "running")])
    [entry] = evaluate(root)["sessions"]
    assert entry["connections"][0]["state"] is None and entry["healthy"] is True


@pytest.mark.parametrize("cstate", ["down", "failed", "bound", "unknown"])
def test_connection_not_up_is_unhealthy(tmp_path, cstate):
    root = str(tmp_path)
    fixturetree.add_session(root, 4, conns=[{"cid": 0, "state": cstate}])
    [entry] = evaluate(root)["sessions"]
    assert entry["problems"] == ["connection 4:0 %s" % cstate]


def test_logged_in_without_any_connection_is_unhealthy(tmp_path):
    root = str(tmp_path)
    fixturetree.add_session(root, 1, conns=[])
    [entry] = evaluate(root)["sessions"]
    assert entry["problems"] == ["no connection"] and entry["connection_state"] is None


@pytest.mark.parametrize("dstate", ["offline", "blocked", "transport-offline", "quiesce", "created"])
def test_device_not_running_is_unhealthy_even_when_logged_in(tmp_path, dstate):
    root = str(tmp_path)
    fixturetree.add_session(root, 1, luns=[(0, None, "running"), (1, "sdb", dstate), (2, "sdc", "running")])
    [entry] = evaluate(root)["sessions"]
    assert entry["state"] == "LOGGED_IN" and entry["healthy"] is False
    [problem] = entry["problems"]
    assert problem.startswith("device %s" % dstate) and problem.endswith(": sdb (2:0:0:1)")


def test_unreadable_attributes_and_null_values(tmp_path):
    """A state that cannot be read (here a directory where the file should be: EISDIR, as root cannot provoke
    EACCES) is a problem, never a crash; (null) target names are None."""
    root = str(tmp_path)
    scls = fixturetree.add_session(root, 1, target="(null)", omit=("state",), luns=[(1, "sda", "running")])
    os.makedirs(os.path.join(scls, "state"))
    [entry] = evaluate(root)["sessions"]
    assert entry["state"] is None and entry["target"] is None
    assert entry["problems"] == ["session state unreadable"]
    assert _health.describe_session(entry).startswith("session 1 (unknown target via 10.213.0.1:3260")


def test_device_state_unreadable(tmp_path):
    root = str(tmp_path)
    fixturetree.add_session(root, 1, host=2, luns=[(1, "sda", "running")])
    os.unlink(os.path.join(root, "sys/devices/platform/host2/session1/target2:0:0/2:0:0:1/state"))
    [entry] = evaluate(root)["sessions"]
    assert entry["problems"] == ["device state unreadable: sda (2:0:0:1)"]


def test_offload_host_session_is_checked_like_software(tmp_path):
    root = str(tmp_path)
    fixturetree.add_session(root, 1, host=7, software=False, luns=[(1, "sda", "running")])
    fixturetree.add_session(root, 2, host=8, software=False, state="FAILED", luns=[(1, "sdb", "blocked")])
    report = evaluate(root)
    assert [e["host"] for e in report["sessions"]] == ["host7", "host8"]
    assert [e["healthy"] for e in report["sessions"]] == [True, False]


def test_session_vanishing_mid_scan_is_left_out(tmp_path, monkeypatch):
    root = str(tmp_path)
    for sid in (1, 2, 3):
        fixturetree.add_session(root, sid, luns=[(1, "sd" + "abc"[sid - 1], "running")])
    real = os.open
    dev_dir = os.path.join(root, "sys/devices/platform/host3/session2")

    def vanish(path, flags, *args):
        if path.endswith("connection2:0/state") and os.path.isdir(dev_dir):
            # session2 is logged out while its connection is read
            import shutil
            shutil.rmtree(dev_dir)
            os.unlink(os.path.join(root, "sys/class/iscsi_session/session2"))
        return real(path, flags, *args)

    monkeypatch.setattr(_sysfs, "_open_fd", vanish)
    report = evaluate(root)
    assert [e["sid"] for e in report["sessions"]] == [1, 3] and report["healthy"] is True


def test_ipv6_portal_is_bracketed(tmp_path):
    root = str(tmp_path)
    fixturetree.add_session(root, 1, conns=[{"cid": 0, "state": "up", "persistent_address": "fd00:213::1",
                                             "address": "fd00:213::1"}])
    [entry] = evaluate(root)["sessions"]
    assert entry["portal"] == "[fd00:213::1]:3260" and entry["address"] == "fd00:213::1"


def test_no_sessions_is_healthy_unless_expected(tmp_path):
    report = _health.evaluate([])
    assert report["healthy"] is True and report["summary"] == "healthy: 0 sessions logged in, connections up, " \
                                                              "devices running"
    assert _health.evaluate([], targets=[OPEN])["healthy"] is False


def test_summary_is_limited():
    sessions = [{"sid": i, "state": "FAILED", "targetname": OPEN, "connections": [], "devices": []}
                for i in range(1, 15)]
    summary = _health.evaluate(sessions)["summary"]
    assert summary.count(" | session ") == 9 and summary.endswith("| and 4 more problems")


# --------------------------------------------------------------------------------------------------- configuration
NAME_FILE = "## DO NOT EDIT OR REMOVE THIS FILE!\nInitiatorName=iqn.1993-08.org.debian:01:abcdef\n"


@pytest.mark.parametrize("name", CAPTURED)
def test_captured_configuration_is_valid(name, tmp_path):
    root = tree(name, tmp_path)

    def read(rel):
        with open(os.path.join(root, rel)) as handle:
            return handle.read()

    found = _health.config_findings(read("etc/iscsi/initiatorname.iscsi"), read("etc/iscsi/iscsid.conf"),
                                    _nodedb.read_nodes(root))
    assert [f for f in found if f["severity"] == "error"] == []


def test_config_errors_that_would_stop_iscsid():
    found = _health.config_findings(None, None, [])
    assert [(f["severity"], f["code"]) for f in found] == [("error", "missing"), ("warning", "missing")]
    found = _health.config_findings("InitiatorName=not a name\n", "node.startup = Automatic\n"
                                    "node.session.timeo.replacement_timeout = soon\nbogus.key = 1\n"
                                    "node.startup = manual\n", [])
    codes = [(f["file"], f["code"]) for f in found]
    assert ("/etc/iscsi/initiatorname.iscsi", "invalid") in codes
    msgs = [f["message"] for f in found if f["file"] == "/etc/iscsi/iscsid.conf"]
    assert "bogus.key is not a setting open-iscsi knows; it is ignored" in msgs
    assert any("node.startup = Automatic: open-iscsi compares this value case-sensitively" in m for m in msgs)
    assert any(m.startswith("node.session.timeo.replacement_timeout must be an integer") for m in msgs)
    assert any("node.startup is set more than once" in m for m in msgs)


def test_initiator_name_findings_that_do_not_stop_iscsid_are_warnings():
    found = _health.config_findings(NAME_FILE + "some junk line\nInitiatorAlias=\n", "", [])
    assert [(f["code"], f["severity"]) for f in found] == [("unknown_line", "warning"), ("alias_empty", "warning")]
    found = _health.config_findings(NAME_FILE + "GenerateName=yes\n", "", [])
    assert [(f["code"], f["severity"]) for f in found] == [("generate", "error")]
    found = _health.config_findings("  InitiatorName=iqn.1993-08.org.debian:01:abcdef\n", "", [])
    assert ("indented", "error") in [(f["code"], f["severity"]) for f in found]


def test_config_secret_never_in_a_message():
    secret = "s3cr3t-" + "x" * 300
    found = _health.config_findings(NAME_FILE, "node.session.auth.password = %s\n" % secret, [
        {"target": OPEN, "address": "10.0.0.1", "port": 3260, "path": "/etc/iscsi/nodes/x",
         "settings": {"node.startup": "automatic", "node.session.auth.authmethod": "chap"}}])
    assert found and all(secret not in f["message"] and "s3cr3t" not in f["message"] for f in found)
    assert [f["code"] for f in found] == ["invalid_value", "invalid_value"]
    assert "node.session.auth.password is" in found[0]["message"]
    assert found[1]["file"] == "/etc/iscsi/nodes/x" and "authmethod = chap" in found[1]["message"]


def test_config_record_problems():
    found = _health.config_findings(NAME_FILE, "", [
        {"target": "not-an-iqn", "address": None, "port": None, "path": "/p", "settings": {},
         "startup": "sometimes", "duplicate_keys": ["node.startup"]}])
    assert [f["code"] for f in found] == ["invalid_target", "no_portal", "invalid_value", "duplicate_key"]


# --------------------------------------------------------------------------------------------------- recovery_tmo
def sess(sid, tmo, state="LOGGED_IN", target=OPEN, isid="00023d000001"):
    return {"sid": sid, "name": "session%d" % sid, "state": state, "targetname": target, "isid": isid,
            "recovery_tmo_raw": tmo}


def test_plan_recovery_raise_like_debians_postinst():
    plan = _health.plan_recovery_raise([sess(1, "5"), sess(2, "120"), sess(3, "off"), sess(4, "300"),
                                        sess(5, "5", state="FAILED"), sess(6, None), sess(7, "junk")], 120)
    assert plan["writes"] == [{"sid": 1, "name": "session1", "before": "5", "after": "120"}]
    assert [s["sid"] for s in plan["saved"]] == [1, 2, 3, 4, 5, 7]
    assert plan["saved"][0] == {"sid": 1, "name": "session1", "targetname": OPEN, "isid": "00023d000001",
                                "recovery_tmo": "5"}
    assert [(s["sid"], s["reason"].split(":")[0]) for s in plan["skipped"]] == [
        (5, "state FAILED"), (6, "recovery_tmo unreadable"), (7, "recovery_tmo 'junk' is not a number")]


def test_plan_recovery_restore_only_same_session():
    saved = _health.plan_recovery_raise([sess(1, "5"), sess(2, "off"), sess(3, "7"), sess(4, "9")], 120)["saved"]
    now = [sess(1, "120"), sess(2, "off"), sess(3, "120", isid="00023d000099"), sess(5, "120")]
    plan = _health.plan_recovery_restore(now, saved)
    assert plan["writes"] == [{"sid": 1, "name": "session1", "before": "120", "after": "5", "state": "LOGGED_IN"}]
    assert plan["skipped"] == [{"sid": 3, "reason": "session gone"}, {"sid": 4, "reason": "session gone"}]


def test_restore_after_a_multipathd_reload_between_raise_and_restore():
    """multipathd writes fast_io_fail_tmo (5) into every path's recovery_tmo when it reloads: the raise is undone
    in between, and the restore must still put the values saved before the raise back (not skip or keep 120)."""
    saved = _health.plan_recovery_raise([sess(1, "5"), sess(2, "30")], 120)["saved"]
    after_reload = [sess(1, "5"), sess(2, "5")]
    plan = _health.plan_recovery_restore(after_reload, saved)
    assert plan["writes"] == [{"sid": 2, "name": "session2", "before": "5", "after": "30", "state": "LOGGED_IN"}]
    assert plan["skipped"] == []


def test_validate_saved():
    good = _health.validate_saved([{"sid": "1", "targetname": OPEN, "recovery_tmo": 5}])
    assert good == [{"sid": 1, "targetname": OPEN, "isid": None, "name": "session1", "recovery_tmo": "5"}]
    for bad, field in (({"sid": "x", "targetname": OPEN, "recovery_tmo": 5}, "restore[0].sid"),
                       ({"sid": 1, "targetname": OPEN, "recovery_tmo": "-3"}, "restore[0].recovery_tmo"),
                       ({"sid": 1, "recovery_tmo": "5"}, "restore[0].targetname")):
        with pytest.raises(_health.InputError) as exc:
            _health.validate_saved([bad])
        assert exc.value.field == field


# --------------------------------------------------------------------------------------------------- waiting
class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def test_wait_polls_every_interval_from_the_start_of_each_poll():
    fc = FakeClock()
    results = iter([False, False, False, True])

    def check():
        fc.now += 0.05  # each check costs 50 ms
        return {"healthy": next(results)}

    report = _health.wait_for_health(check, timeout=10, interval=0.2, clock=fc.clock, sleep=fc.sleep,
                                     wall=lambda: 0.0)
    assert fc.sleeps == [0.15, 0.15, 0.15]
    assert report["wait"]["polls"] == 4 and report["wait"]["timed_out"] is False
    assert report["wait"]["unhealthy_for"] == pytest.approx(0.6)


def test_wait_times_out_with_a_last_poll_at_the_deadline():
    fc = FakeClock()
    polls = []

    def check():
        polls.append(fc.now)
        return {"healthy": False}

    report = _health.wait_for_health(check, timeout=1.0, interval=0.3, clock=fc.clock, sleep=fc.sleep,
                                     wall=lambda: 0.0)
    assert [round(p - 100, 6) for p in polls] == [0, 0.3, 0.6, 0.9, 1.0]
    assert report["wait"]["timed_out"] is True and report["wait"]["unhealthy_for"] is None


def test_no_wait_is_one_poll():
    calls = []
    report = _health.wait_for_health(lambda: calls.append(1) or {"healthy": False}, timeout=0, interval=1)
    assert calls == [1] and report["wait"]["polls"] == 1 and report["wait"]["timed_out"] is False


def test_wait_notices_a_recovered_session_within_one_interval(tmp_path):
    """Real time, real files: a FAILED session's state flips to LOGGED_IN; the poller must see it <= 1 interval."""
    root = str(tmp_path)
    scls = fixturetree.add_session(root, 1, state="FAILED", conns=[{"cid": 0, "state": "failed"}])
    conn_state = os.path.join(root, "sys/devices/platform/host2/session1/connection1:0/iscsi_connection/"
                                    "connection1:0/state")
    flipped = {}

    def recover():
        time.sleep(0.5)
        with open(conn_state, "w") as handle:
            handle.write("up\n")
        with open(os.path.join(scls, "state"), "w") as handle:
            handle.write("LOGGED_IN\n")
        flipped["at"] = time.monotonic()

    thread = threading.Thread(target=recover)
    thread.start()
    report = _health.wait_for_health(lambda: evaluate(root), timeout=10, interval=0.2)
    seen = time.monotonic()
    thread.join()
    assert report["healthy"] is True
    reaction = seen - flipped["at"]
    assert reaction <= 0.2 + 0.15, reaction  # one interval plus scheduling slack on a busy machine
    assert report["wait"]["polls"] >= 3
