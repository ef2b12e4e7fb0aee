# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""session_check and recovery_tmo modules, run through AnsibleModule on captured and synthetic trees."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.openiscsi.initiator.plugins.modules import recovery_tmo, session_check

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures"))
import fixturetree  # noqa: E402  pylint: disable=wrong-import-position

OPEN = "iqn.2025-01.lab.openiscsi:tgt-open"
CHAP = "iqn.2025-01.lab.openiscsi:tgt-chap"


def digest(root):
    h = hashlib.sha256()
    for base, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(base, name)
            h.update(path.encode())
            if os.path.islink(path):
                h.update(os.readlink(path).encode())
            else:
                with open(path, "rb") as handle:
                    h.update(handle.read())
    return h.hexdigest()


@pytest.fixture
def no_commands(monkeypatch):
    """Any command (subprocess or run_command) fails the test: the checker reads sysfs only."""
    def refuse(*a, **kw):
        raise AssertionError("a command was run: %r" % (a,))
    monkeypatch.setattr(basic.AnsibleModule, "run_command", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)


def run(mod, capsys, monkeypatch, root, check=False, diff=False, **args):
    monkeypatch.setattr(mod, "ROOT", str(root))
    if check:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            mod.main()
    result = json.loads(capsys.readouterr().out)
    result["_rc"] = exc.value.code
    return result


# --------------------------------------------------------------------------------------------------- session_check
@pytest.mark.parametrize("check", [False, True])
def test_healthy_captured_host(capsys, monkeypatch, tmp_path, no_commands, check):
    root = fixturetree.materialize("bookworm-logged-in", tmp_path)
    before = digest(root)
    res = run(session_check, capsys, monkeypatch, root, check=check, expect_automatic_nodes=True,
              check_config=True, targets=[OPEN])
    assert res["_rc"] == 0 and res["changed"] is False and res["healthy"] is True
    assert [(s["sid"], s["target"], s["portal"], s["state"], s["connection_state"]) for s in res["sessions"]] == [
        (1, OPEN, "10.213.0.1:3260", "LOGGED_IN", "up"), (2, CHAP, "10.213.0.2:3260", "LOGGED_IN", "up")]
    assert [d["block"] for d in res["sessions"][0]["devices"]] == [None, "sda", "sdb"]
    assert res["config"] == [] and res["wait"]["polls"] == 1
    assert digest(root) == before


def test_failed_host_fails_with_a_message_naming_the_session(capsys, monkeypatch, tmp_path, no_commands):
    root = fixturetree.materialize("trixie-failed", tmp_path)
    res = run(session_check, capsys, monkeypatch, root)
    assert res["_rc"] == 1 and res["failed"] is True and res["healthy"] is False
    assert res["msg"].startswith("iSCSI unhealthy (0 of 2 sessions healthy): session 1 (%s via 10.213.0.1:3260, "
                                 "iface default): state FAILED" % OPEN)
    assert [p["sid"] for p in res["problems"]] == [1, 2]
    assert res["sessions"][1]["recovery_tmo"] == "45"


def test_report_only(capsys, monkeypatch, tmp_path):
    root = fixturetree.materialize("bookworm-recovery-timeout", tmp_path)
    res = run(session_check, capsys, monkeypatch, root, fail_on_unhealthy=False)
    assert res["_rc"] == 0 and res["healthy"] is False and "failed" not in res
    assert [s["state"] for s in res["sessions"]] == ["FAILED", "FREE"]


def test_bad_options_fail_before_reading(capsys, monkeypatch, tmp_path):
    res = run(session_check, capsys, monkeypatch, tmp_path, wait={"timeout": 5, "interval": 0.1})
    assert res["_rc"] == 1 and res["msg"] == "wait.interval: must be at least 0.2 seconds, got 0.1"
    res = run(session_check, capsys, monkeypatch, tmp_path, min_paths=0)
    assert res["msg"] == "min_paths: must be an integer >= 1, got 0"


def test_config_error_fails_without_waiting(capsys, monkeypatch, tmp_path):
    root = fixturetree.materialize("bookworm-logged-in", tmp_path, {
        "etc/iscsi/initiatorname.iscsi": "InitiatorName=\n"})
    t0 = time.monotonic()
    res = run(session_check, capsys, monkeypatch, root, check_config=True, wait={"timeout": 30, "interval": 0.2})
    assert time.monotonic() - t0 < 10
    assert res["_rc"] == 1 and res["wait"]["polls"] == 1
    assert res["problems"][0]["kind"] == "config"
    assert "/etc/iscsi/initiatorname.iscsi: no InitiatorName= line with a value; iscsid will not start" in res["msg"]
    assert sorted(f["code"] for f in res["config"]) == ["empty", "missing"]


def test_wait_returns_as_soon_as_the_session_recovers(capsys, monkeypatch, tmp_path):
    root = str(tmp_path)
    scls = fixturetree.add_session(root, 1, state="FAILED", conns=[{"cid": 0, "state": "failed"}],
                                   luns=[(1, "sda", "blocked")])
    base = os.path.join(root, "sys/devices/platform/host2/session1")

    def recover():
        time.sleep(1.0)
        for path, text in ((os.path.join(base, "connection1:0/iscsi_connection/connection1:0/state"), "up"),
                           (os.path.join(base, "target2:0:0/2:0:0:1/state"), "running"),
                           (os.path.join(scls, "state"), "LOGGED_IN")):
            with open(path, "w") as handle:
                handle.write(text + "\n")

    thread = threading.Thread(target=recover)
    thread.start()
    res = run(session_check, capsys, monkeypatch, root, wait={"timeout": 20, "interval": 0.2})
    thread.join()
    assert res["_rc"] == 0 and res["healthy"] is True
    assert res["wait"]["timed_out"] is False and res["wait"]["polls"] >= 4
    assert 0.8 <= res["wait"]["unhealthy_for"] < 5


def test_wait_times_out_with_the_report(capsys, monkeypatch, tmp_path):
    root = fixturetree.materialize("bookworm-failed", tmp_path)
    res = run(session_check, capsys, monkeypatch, root, wait={"timeout": 0.6, "interval": 0.2})
    assert res["_rc"] == 1 and res["wait"]["timed_out"] is True and res["wait"]["polls"] >= 3
    assert "state FAILED" in res["msg"]


# --------------------------------------------------------------------------------------------------- recovery_tmo
def tmo_tree(root):
    fixturetree.add_session(root, 1, recovery_tmo="5")
    fixturetree.add_session(root, 2, recovery_tmo="off", target=CHAP)
    fixturetree.add_session(root, 3, recovery_tmo="300")
    fixturetree.add_session(root, 4, recovery_tmo="10", state="FAILED", conns=[{"cid": 0, "state": "failed"}])
    return str(root)


def tmo(root, sid):
    with open(os.path.join(root, "sys/class/iscsi_session/session%d/recovery_tmo" % sid)) as handle:
        return handle.read().strip()


def test_recovery_tmo_raise_and_restore(capsys, monkeypatch, tmp_path):
    root = tmo_tree(tmp_path)
    res = run(recovery_tmo, capsys, monkeypatch, root, diff=True, minimum=120)
    assert res["_rc"] == 0 and res["changed"] is True
    assert res["changes"] == [{"sid": 1, "name": "session1", "before": "5", "after": "120"}]
    assert [(s["sid"], s["recovery_tmo"]) for s in res["saved"]] == [(1, "5"), (2, "off"), (3, "300"), (4, "10")]
    assert res["skipped"][0]["sid"] == 4 and res["skipped"][0]["reason"].startswith("state FAILED")
    assert res["diff"] == {"before": "session1: recovery_tmo 5\n", "after": "session1: recovery_tmo 120\n"}
    assert [tmo(root, sid) for sid in (1, 2, 3, 4)] == ["120", "off", "300", "10"]
    again = run(recovery_tmo, capsys, monkeypatch, root, minimum=120)
    assert again["changed"] is False and "diff" not in again
    back = run(recovery_tmo, capsys, monkeypatch, root, restore=res["saved"])
    assert back["changed"] is True and back["changes"] == [{"sid": 1, "name": "session1", "before": "120",
                                                            "after": "5"}]
    assert [tmo(root, sid) for sid in (1, 2, 3, 4)] == ["5", "off", "300", "10"]
    assert run(recovery_tmo, capsys, monkeypatch, root, restore=res["saved"])["changed"] is False


def test_recovery_tmo_check_mode_writes_nothing(capsys, monkeypatch, tmp_path):
    root = tmo_tree(tmp_path)
    before = digest(root)
    res = run(recovery_tmo, capsys, monkeypatch, root, check=True, minimum=60)
    assert res["changed"] is True and [c["sid"] for c in res["changes"]] == [1]
    assert digest(root) == before


def test_recovery_tmo_restore_skips_a_reused_session_number(capsys, monkeypatch, tmp_path):
    root = tmo_tree(tmp_path)
    saved = run(recovery_tmo, capsys, monkeypatch, root, minimum=120)["saved"]
    # session1 logs out; a new session to another target gets number 1 (own isid), with its own timeout.
    with open(os.path.join(root, "sys/class/iscsi_session/session1/targetname"), "w") as handle:
        handle.write(CHAP + "\n")
    res = run(recovery_tmo, capsys, monkeypatch, root, restore=saved)
    assert res["changed"] is False and {"sid": 1, "reason": "session gone"} in res["skipped"]
    assert tmo(root, 1) == "120"


def test_recovery_tmo_write_refused_is_a_failure_naming_the_session(capsys, monkeypatch, tmp_path):
    root = tmo_tree(tmp_path)
    saved = run(recovery_tmo, capsys, monkeypatch, root, minimum=120)["saved"]
    path = os.path.join(root, "sys/class/iscsi_session/session1/recovery_tmo")
    os.unlink(path)
    os.makedirs(path)  # opening a directory for writing fails (EISDIR), like the kernel's EBUSY would
    res = run(recovery_tmo, capsys, monkeypatch, root, restore=saved)
    assert res["_rc"] == 1 and res["msg"].startswith("session 1: cannot set recovery_tmo")


def test_recovery_tmo_needs_one_of_the_options(capsys, monkeypatch, tmp_path):
    res = run(recovery_tmo, capsys, monkeypatch, tmp_path)
    assert res["_rc"] == 1 and "one of the following is required: minimum, restore" in res["msg"]
    res = run(recovery_tmo, capsys, monkeypatch, tmp_path, restore=[{"sid": 1, "recovery_tmo": "5"}])
    assert res["msg"].startswith("restore[0].targetname: is required")


# --------------------------------------------------------------------------------------------------- metrics_path
def test_metrics_written_atomically_unchanged_and_not_in_check_mode(capsys, monkeypatch, tmp_path, no_commands):
    root = fixturetree.materialize("trixie-failed", tmp_path / "root")
    out = tmp_path / "prom" / "iscsi.prom"
    out.parent.mkdir()
    res = run(session_check, capsys, monkeypatch, root, check=True, metrics_path=str(out))
    assert res["_rc"] == 1 and res["metrics"] == {"path": str(out), "written": False} and not out.exists()
    res = run(session_check, capsys, monkeypatch, root, metrics_path=str(out))
    # written before the task fails, with the verdict of that check; changed stays false
    assert res["_rc"] == 1 and res["changed"] is False and res["metrics"]["written"] is True
    text = out.read_text()
    assert "iscsi_healthy 0\n" in text and "iscsi_check_timestamp_seconds %s\n" % res["wait"]["checked_at"] in text
    assert 'iscsi_session_state{sid="1",target="%s",portal="10.213.0.1:3260",iface="default",state="FAILED"} 1' % (
        OPEN) in text
    assert sorted(os.listdir(out.parent)) == ["iscsi.prom"]


def test_metrics_keep_no_secret(capsys, monkeypatch, tmp_path):
    root = fixturetree.materialize("bookworm-logged-in", tmp_path / "root")
    out = tmp_path / "iscsi.prom"
    res = run(session_check, capsys, monkeypatch, root, metrics_path=str(out), check_config=True)
    assert res["_rc"] == 0 and "iscsi_healthy 1\n" in out.read_text()
    seen = []
    for base, _dirs, files in os.walk(os.path.join(str(root), "etc", "iscsi")):
        for name in files:
            if os.path.islink(os.path.join(base, name)):
                continue
            with open(os.path.join(base, name), encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if "password" in line and "=" in line:
                        secret = line.split("=", 1)[1].strip()
                        assert not secret or secret not in out.read_text()
                        seen.append(secret)
    assert any(seen)  # the tree holds CHAP secrets: the check above looked at some


@pytest.mark.parametrize("path, why", [
    ("iscsi.prom", "must be the absolute path of a file"),
    ("/var/lib/prometheus/", "must be the absolute path of a file"),
    ("/var/lib/prometheus/iscsi.txt", "must end in .prom"),
])
def test_metrics_path_checked_before_reading(capsys, monkeypatch, tmp_path, path, why):
    res = run(session_check, capsys, monkeypatch, tmp_path, metrics_path=path)
    assert res["_rc"] == 1 and res["msg"].startswith("metrics_path: " + why)


def test_metrics_directory_missing_fails_naming_it(capsys, monkeypatch, tmp_path):
    root = fixturetree.materialize("bookworm-logged-in", tmp_path / "root")
    res = run(session_check, capsys, monkeypatch, root, metrics_path=str(tmp_path / "nope" / "iscsi.prom"))
    assert res["_rc"] == 1 and "directory %s does not exist" % (tmp_path / "nope") in res["msg"]


# --------------------------------------------------------------------------------------------------- multipath maps
def _two_path_host(root, state_b="running", session_b="LOGGED_IN"):
    fixturetree.add_session(root, 1, luns=[(1, "sda", "running")])
    fixturetree.add_session(root, 2, state=session_b, luns=[(1, "sdb", state_b)],
                            conns=[{"cid": 0, "persistent_address": "10.214.0.1", "address": "10.214.0.1"}])
    fixturetree.add_multipath_map(root, "dm-0", "data", "36001405aaaa01", ["sda", "sdb"])
    return root


def test_maps_and_can_portal_go_down(capsys, monkeypatch, tmp_path):
    calls = []

    def dmsetup(module, args, **kw):
        calls.append(list(args))
        return 0, "data: 0 131072 multipath 2 0 0 0 1 1 A 0 2 2 8:0 A 0 0 1 8:16 A 0 0 1\n", ""
    monkeypatch.setattr(basic.AnsibleModule, "run_command", dmsetup)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None:
                        "/usr/sbin/" + name)
    root = _two_path_host(tmp_path)
    before = digest(str(root))
    res = run(session_check, capsys, monkeypatch, root, min_map_paths=2, going_down={"portal": "10.213.0.1:3260"})
    assert res["_rc"] == 0 and res["healthy"] is True, res["summary"]
    assert [(m["name"], m["healthy_paths"], m["total_paths"]) for m in res["maps"]] == [("data", 2, 2)]
    assert [p["dm_state"] for p in res["maps"][0]["paths"]] == ["A", "A"]
    assert res["going_down"] == [{"map": "data", "wwid": "36001405aaaa01", "survives": True, "remaining": ["sdb"],
                                  "through": ["sda"]}]
    assert calls == [["/usr/sbin/dmsetup", "status", "--target", "multipath"]]
    assert digest(str(root)) == before


def test_degraded_map_fails_the_gate_and_names_the_last_path(capsys, monkeypatch, tmp_path, no_commands):
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: None)
    root = _two_path_host(tmp_path, state_b="blocked", session_b="FAILED")
    res = run(session_check, capsys, monkeypatch, root, going_down={"portal": "10.213.0.1"})
    assert res["_rc"] == 1 and res["healthy"] is False
    kinds = [(p["kind"], p.get("map")) for p in res["problems"]]
    assert ("going_down", "data") in kinds
    assert "multipath map data would lose its last healthy path if portal 10.213.0.1 went down" in res["msg"]
    ok = run(session_check, capsys, monkeypatch, root, going_down={"portal": "10.214.0.1:3260"},
             fail_on_unhealthy=False)
    assert [a["survives"] for a in ok["going_down"]] == [True]
    two = run(session_check, capsys, monkeypatch, root, min_map_paths=2, fail_on_unhealthy=False)
    assert "multipath map data: 1 healthy path of 2; 2 required" in two["summary"]
    one = run(session_check, capsys, monkeypatch, root, min_map_paths=1)
    assert one["_rc"] == 1  # session 2 itself is FAILED: the session verdict stays


def test_host_without_maps_runs_no_command(capsys, monkeypatch, tmp_path, no_commands):
    root = fixturetree.materialize("bookworm-logged-in", tmp_path)
    res = run(session_check, capsys, monkeypatch, root)
    assert res["_rc"] == 0 and res["maps"] == []


@pytest.mark.parametrize("args, field", [({"going_down": {}}, "going_down"),
                                         ({"going_down": {"portal": "10.0.0.1:x"}}, "going_down.portal"),
                                         ({"min_map_paths": 0}, "min_map_paths")])
def test_bad_map_options_name_the_field(capsys, monkeypatch, tmp_path, no_commands, args, field):
    res = run(session_check, capsys, monkeypatch, tmp_path, **args)
    assert res["_rc"] == 1 and res["msg"].startswith(field + ":"), res["msg"]
