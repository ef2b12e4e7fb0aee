# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The session module run in-process (its real main()) against a fixture root (node DB, sysfs, /proc files), with a
fake iscsiadm on PATH that records every argv and adds/removes sysfs sessions (fake_iscsiadm.py)."""

from __future__ import annotations

import json
import os
import sys

import pytest

from ansible_collections.openiscsi.initiator.plugins.modules import session
from harness import run_module

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "fixtures"))

from fixturetree import add_session  # noqa: E402  pylint: disable=wrong-import-position

DISK1 = "iqn.2025-01.lab.example:disk1"
DISK10 = "iqn.2025-01.lab.example:disk10"
CHAPT = "iqn.2025-01.lab.example:chap"


def write_record(root, target, addr, port=3260, tpgt=1, iface="default", auth=None):
    path = root / "etc/iscsi/nodes" / target / ("%s,%d,%d" % (addr, port, tpgt)) / iface
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# BEGIN RECORD 2.1.8", "node.name = %s" % target, "node.tpgt = %d" % tpgt, "node.startup = manual",
             "iface.iscsi_ifacename = %s" % iface, "node.conn[0].address = %s" % addr, "node.conn[0].port = %d" % port]
    for key, value in (auth or {}).items():
        lines.append("node.session.auth.%s = %s" % (key, value))
    path.write_text("\n".join(lines + ["# END RECORD"]) + "\n")


@pytest.fixture
def env(tmp_path, monkeypatch):
    root = tmp_path / "root"
    (root / "etc/iscsi").mkdir(parents=True)
    (root / "etc/iscsi/initiatorname.iscsi").write_text("InitiatorName=iqn.1993-08.org.debian:01:init1\n")
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/mountinfo").write_text("22 1 254:1 / / rw - ext4 /dev/vda1 rw\n")
    (root / "proc/swaps").write_text("Filename\tType\tSize\tUsed\tPriority\n")
    (root / "run/udev").mkdir(parents=True)
    (root / "run/udev/control").write_text("")
    write_record(root, DISK1, "10.213.0.1")
    write_record(root, DISK1, "10.213.0.2")
    write_record(root, DISK10, "10.213.0.1")
    write_record(root, DISK1, "fd00:213::1")
    write_record(root, CHAPT, "10.213.0.1",
                 auth={"authmethod": "CHAP", "username": "labchap", "password": "chap-Secret-1"})
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "iscsiadm"
    fake.write_text("#!%s\nimport runpy\nrunpy.run_path(%r, run_name='__main__')\n"
                    % (sys.executable, os.path.join(HERE, "fake_iscsiadm.py")))
    fake.chmod(0o755)
    scenario = {
        "root": str(root), "db": "/etc/iscsi", "log": str(tmp_path / "argv.log"), "portals": {},
        "luns": {DISK1: [[0, None, "running"], [1, "sdb", "running"]], DISK10: [[1, "sdc", "running"]]},
        "login": {CHAPT: {"rc": 24, "stderr": "iscsiadm: initiator reported error (24 - iSCSI login failed due to "
                                              "authorization failure)"}},
        "rescan_luns": {DISK1: [[2, "sdd", "running"]]},
    }
    (tmp_path / "scenario.json").write_text(json.dumps(scenario))
    monkeypatch.setenv("FAKE_ISCSIADM_SCENARIO", str(tmp_path / "scenario.json"))
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ.get("PATH", "")))
    monkeypatch.setattr(session, "ROOT", str(root))
    monkeypatch.setattr(session, "POLL", 0.01)
    return {"root": root, "log": tmp_path / "argv.log", "scenario": tmp_path / "scenario.json"}


def run(capsys, check=False, diff=True, **args):
    return run_module(capsys, session, args, check=check, diff=diff)


def argvs(env):
    if not env["log"].exists():
        return []
    return [json.loads(line) for line in env["log"].read_text().splitlines()]


def sessions_in(root):
    base = root / "sys/class/iscsi_session"
    return sorted(os.listdir(str(base))) if base.exists() else []


# ------------------------------------------------------------------------------------------- login
def test_login_one_record_returns_devices_and_is_idempotent(capsys, env):
    res = run(capsys, target=DISK1, portal="10.213.0.1")
    assert res["changed"] is True
    assert res["logged_in"] == [{"target": DISK1, "portal": "10.213.0.1:3260", "iface": "default"}]
    assert argvs(env) == [["-m", "node", "-T", DISK1, "-p", "10.213.0.1:3260", "-I", "default", "--login"]]
    assert [s["sid"] for s in res["sessions"]] == [1] and res["sessions"][0]["state"] == "LOGGED_IN"
    assert res["devices"][0]["device"] == "/dev/sdb"
    assert res["devices"][0]["by_path"] == ["/dev/disk/by-path/ip-10.213.0.1:3260-iscsi-%s-lun-1" % DISK1]
    again = run(capsys, target=DISK1, portal="10.213.0.1:3260")
    assert again["changed"] is False and again["devices"] == res["devices"]
    assert len(argvs(env)) == 1  # no second login
    assert sessions_in(env["root"]) == ["session1"]


def test_disk1_does_not_match_disk10(capsys, env):
    add_session(str(env["root"]), 5, target=DISK10, luns=[(1, "sdc", "running")])
    res = run(capsys, check=True, target=DISK1, portal="10.213.0.1")
    assert res["changed"] is True and res["logged_in"][0]["target"] == DISK1
    res = run(capsys, check=True, target=DISK10, portal="10.213.0.1")
    assert res["changed"] is False


def test_all_records_of_a_target(capsys, env):
    res = run(capsys, target=DISK1)
    assert [r["portal"] for r in res["logged_in"]] == ["10.213.0.1:3260", "10.213.0.2:3260", "[fd00:213::1]:3260"]
    assert ["-m", "node", "-T", DISK1, "-p", "[fd00:213::1]:3260", "-I", "default", "--login"] in argvs(env)
    assert len(res["sessions"]) == 3
    assert DISK10 not in json.dumps(argvs(env))


def test_all_records_of_a_portal(capsys, env):
    res = run(capsys, check=True, portal="10.213.0.1")
    assert sorted(r["target"] for r in res["logged_in"]) == sorted([CHAPT, DISK1, DISK10])
    assert argvs(env) == []


def test_ipv6_portal_any_spelling(capsys, env):
    res = run(capsys, target=DISK1, portal="[fd00:213:0::1]:3260")
    assert res["logged_in"] == [{"target": DISK1, "portal": "[fd00:213::1]:3260", "iface": "default"}]
    assert res["sessions"][0]["portal"] == "[fd00:213::1]:3260"
    assert run(capsys, target=DISK1, portal="[fd00:213::1]")["changed"] is False


def test_check_mode_runs_nothing_and_predicts(capsys, env):
    pred = run(capsys, check=True, target=DISK1, portal="10.213.0.2")
    assert pred["changed"] is True and argvs(env) == [] and sessions_in(env["root"]) == []
    real = run(capsys, target=DISK1, portal="10.213.0.2")
    assert real["changed"] is True and real["logged_in"] == pred["logged_in"]
    assert run(capsys, check=True, target=DISK1, portal="10.213.0.2")["changed"] is False


def test_failed_session_is_not_logged_in(capsys, env):
    add_session(str(env["root"]), 3, target=DISK1, state="FAILED", luns=[(1, "sdb", "running")])
    res = run(capsys, target=DISK1, portal="10.213.0.1", timeout=1)
    assert res["failed"] and "FAILED" in res["msg"] and "iscsid keeps trying" in res["msg"]
    assert argvs(env) == []  # no pointless login (iscsiadm would answer 15)
    pred = run(capsys, check=True, target=DISK1, portal="10.213.0.1")
    assert pred["changed"] is False and any("FAILED" in w for w in pred["warnings"])


def test_by_path_links_waited_for_only_with_udev(capsys, env):
    sc = json.loads(env["scenario"].read_text())
    sc["luns"][DISK1] = [[1, "sdb", "running"]]
    env["scenario"].write_text(json.dumps(sc))
    run(capsys, target=DISK1, portal="10.213.0.1", timeout=0)
    link = env["root"] / "dev/disk/by-path" / ("ip-10.213.0.1:3260-iscsi-%s-lun-1" % DISK1)
    link.unlink()
    res = run(capsys, target=DISK1, portal="10.213.0.1", timeout=1)
    assert not res.get("failed") and any("no /dev/disk/by-path link yet" in w for w in res["warnings"])
    (env["root"] / "run/udev/control").unlink()
    res = run(capsys, target=DISK1, portal="10.213.0.1", timeout=1)
    assert not res.get("failed") and res["warnings"] == []


def test_acl_refusal_names_the_iface_initiator_name(capsys, env):
    sc = json.loads(env["scenario"].read_text())
    sc["login"][DISK10] = {"rc": 19, "stderr": "iscsiadm: initiator reported error (19 - encountered non-retryable "
                                               "iSCSI login failure)"}
    env["scenario"].write_text(json.dumps(sc))
    ifaces = env["root"] / "etc/iscsi/ifaces"
    ifaces.mkdir()
    (ifaces / "intruder").write_text("# BEGIN RECORD 2.1.8\niface.iscsi_ifacename = intruder\n"
                                     "iface.transport_name = tcp\niface.initiatorname = iqn.2025-01.lab:intruder\n"
                                     "# END RECORD\n")
    write_record(env["root"], DISK10, "10.213.0.2", iface="intruder")
    res = run(capsys, target=DISK10, portal="10.213.0.2", iface="intruder")
    assert res["failed"] and res["rc"] == 19
    assert "ACL does not allow this initiator (this initiator: iqn.2025-01.lab:intruder)" in res["msg"]


def test_login_auth_failure_names_chap_fields(capsys, env):
    res = run(capsys, target=CHAPT, portal="10.213.0.1")
    msg = res["msg"]
    assert res["failed"] and res["rc"] == 24
    for needle in ("authentication failed", "node.session.auth.authmethod=CHAP", "node.session.auth.username=labchap",
                   "node.session.auth.password set", "iqn.1993-08.org.debian:01:init1"):
        assert needle in msg, msg
    assert "chap-Secret-1" not in json.dumps(res)
    assert "with the node module's auth option" in msg


def test_login_auth_failure_names_the_callers_variable(capsys, env):
    # inside the initiator role the message names the role's variable, not the node module's option
    res = run(capsys, target=CHAPT, portal="10.213.0.1", option_names={"auth": "initiator_nodes[].auth"})
    assert res["failed"] and res["rc"] == 24
    assert "with initiator_nodes[].auth" in res["msg"] and "node module" not in res["msg"], res["msg"]


def test_no_record_fails_clearly(capsys, env):
    res = run(capsys, target=DISK1, portal="10.213.0.9")
    assert res["failed"] and "no node record" in res["msg"] and "10.213.0.1:3260" in res["msg"]
    assert argvs(env) == []


def test_login_timeout_when_disk_never_appears(capsys, env):
    sc = json.loads(env["scenario"].read_text())
    sc["luns"][DISK1] = [[1, None, "running"]]  # a disk LUN whose block device never shows
    sc["luns"][DISK1][0] = [1, None, "running"]
    env["scenario"].write_text(json.dumps(sc))
    # the fake marks LUNs without block as type 12 (controller); make this one a disk afterwards
    res = run(capsys, target=DISK1, portal="10.213.0.1", timeout=0)
    assert res["changed"] is True
    lun = env["root"] / "sys/devices/platform/host2/session1/target2:0:0/2:0:0:1/type"
    lun.write_text("0\n")
    res = run(capsys, target=DISK1, portal="10.213.0.1", timeout=1)
    assert res["failed"] and "LUN 1 (2:0:0:1) has no block device yet" in res["msg"]
    assert res["changed"] is False
    res = run(capsys, target=DISK1, portal="10.213.0.1", wait_for_devices=False, timeout=1)
    assert not res.get("failed")


def test_rescan_reports_new_devices(capsys, env):
    run(capsys, target=DISK1, portal="10.213.0.1")
    pred = run(capsys, check=True, target=DISK1, portal="10.213.0.1", rescan=True)
    assert pred["changed"] is False and ["-m", "session", "-r", "1", "--rescan"] not in argvs(env)
    res = run(capsys, target=DISK1, portal="10.213.0.1", rescan=True)
    assert ["-m", "session", "-r", "1", "--rescan"] in argvs(env)
    assert res["changed"] is True and [d["device"] for d in res["new_devices"]] == ["/dev/sdd"]
    assert [d["device"] for d in res["devices"]] == ["/dev/sdb", "/dev/sdd"]
    again = run(capsys, target=DISK1, portal="10.213.0.1", rescan=True)
    assert again["changed"] is False and again["new_devices"] == []


# ------------------------------------------------------------------------------------------- logout
def test_logout_and_idempotence(capsys, env):
    run(capsys, target=DISK1)
    pred = run(capsys, check=True, target=DISK1, portal="10.213.0.2", state="logged_out")
    assert pred["changed"] is True and pred["logged_out"] == [2] and len(sessions_in(env["root"])) == 3
    res = run(capsys, target=DISK1, portal="10.213.0.2", state="logged_out")
    assert res["changed"] is True and res["logged_out"] == [2]
    assert ["-m", "session", "-r", "2", "--logout"] in argvs(env)
    assert sessions_in(env["root"]) == ["session1", "session3"]
    assert run(capsys, target=DISK1, portal="10.213.0.2", state="logged_out")["changed"] is False
    res = run(capsys, target=DISK1, state="logged_out")
    assert res["logged_out"] == [1, 3] and sessions_in(env["root"]) == []


def test_logout_refused_while_mounted_partition(capsys, env):
    run(capsys, target=DISK1, portal="10.213.0.1")
    # a partition sdb1 of the session's disk, mounted
    sdb = os.path.realpath(str(env["root"] / "sys/class/block/sdb"))
    os.makedirs(os.path.join(sdb, "sdb1"))
    with open(os.path.join(sdb, "sdb1", "partition"), "w") as handle:
        handle.write("1\n")
    with open(os.path.join(sdb, "sdb1", "dev"), "w") as handle:
        handle.write("8:17\n")
    os.symlink(os.path.join(sdb, "sdb1"), str(env["root"] / "sys/class/block/sdb1"))
    mountinfo = env["root"] / "proc/self/mountinfo"
    mountinfo.write_text(mountinfo.read_text() + "40 22 8:17 / /mnt/lun rw - ext4 /dev/sdb1 rw\n")
    for check in (True, False):
        res = run(capsys, check=check, target=DISK1, state="logged_out")
        assert res["failed"] and "/dev/sdb1 mounted on /mnt/lun (ext4)" in res["msg"] and "force" in res["msg"]
    assert "set force: true" in res["msg"]
    named = run(capsys, target=DISK1, state="logged_out", option_names={"force": "initiator_force_logout"})
    assert named["failed"] and "set initiator_force_logout: true" in named["msg"], named["msg"]
    assert "force: true" not in named["msg"].replace("initiator_force_logout: true", "")
    assert sessions_in(env["root"]) == ["session1"] and not any("--logout" in c for c in argvs(env))
    forced = run(capsys, target=DISK1, state="logged_out", force=True)
    assert forced["changed"] is True and sessions_in(env["root"]) == []
    assert any("force" in w for w in forced["warnings"])


def test_logout_refused_for_lvm_holder_and_swap(capsys, env):
    run(capsys, target=DISK1, portal="10.213.0.1")
    sdb = os.path.realpath(str(env["root"] / "sys/class/block/sdb"))
    dm = env["root"] / "sys/devices/virtual/block/dm-0"
    (dm / "dm").mkdir(parents=True)
    (dm / "dm/name").write_text("vg-data\n")
    (dm / "dev").write_text("253:0\n")
    os.symlink(str(dm), str(env["root"] / "sys/class/block/dm-0"))
    os.makedirs(os.path.join(sdb, "holders"), exist_ok=True)
    os.symlink(str(env["root"] / "sys/class/block/dm-0"), os.path.join(sdb, "holders", "dm-0"))
    (env["root"] / "proc/swaps").write_text("Filename\tType\tSize\tUsed\tPriority\n/dev/mapper/vg-data partition 1 0 -2\n")
    res = run(capsys, target=DISK1, state="logged_out")
    assert res["failed"] and "/dev/mapper/vg-data in use as swap (sdb -> dm-0)" in res["msg"]


def test_logout_of_failed_session(capsys, env):
    add_session(str(env["root"]), 4, target=DISK1, state="FAILED", luns=[])
    res = run(capsys, target=DISK1, state="logged_out")
    assert res["changed"] is True and res["logged_out"] == [4] and sessions_in(env["root"]) == []


# ------------------------------------------------------------------------------------------- bad input catalog
@pytest.mark.parametrize("args,needle", [
    ({}, "give target, portal or both"),
    ({"target": "iqn.2025-13.x:y"}, "target: month 13"),
    ({"target": "disk1"}, "target:"),
    ({"target": DISK1, "portal": "fd00::1"}, "portal:"),
    ({"target": DISK1, "portal": "10.0.0.1:0"}, "portal:"),
    ({"target": DISK1, "portal": "10.0.0.1:65536"}, "portal:"),
    ({"target": DISK1, "portal": "bad host"}, "portal:"),
    ({"target": DISK1, "timeout": -1}, "timeout"),
    ({"target": DISK1, "state": "logged_out", "rescan": True}, "rescan"),
    ({"target": DISK1, "force": True}, "force: only applies"),
    ({"target": DISK1, "iface": "a/b"}, "iface"),
    ({"target": DISK1, "state": "gone"}, "state"),
    ({"target": DISK1, "timeout": "soon"}, "timeout"),
])
def test_bad_input_changes_nothing(capsys, env, args, needle):
    res = run(capsys, **args)
    assert res["failed"] and needle in res["msg"], res["msg"]
    assert argvs(env) == [] and sessions_in(env["root"]) == []


# ------------------------------------------------------------------------------------------- real captured tree
from fixturetree import materialize  # noqa: E402  pylint: disable=wrong-import-position,wrong-import-order


@pytest.fixture
def captured(tmp_path, monkeypatch, env):
    """The bookworm-logged-in capture (session1 tgt-open with sda1 mounted on /mnt/lab, session2 tgt-chap)."""
    root = materialize("bookworm-logged-in", tmp_path / "captured")
    sc = json.loads(env["scenario"].read_text())
    sc["root"] = root
    env["scenario"].write_text(json.dumps(sc))
    monkeypatch.setattr(session, "ROOT", root)
    return root


def test_captured_tree_logout_refused_for_mounted_partition(capsys, env, captured):
    res = run(capsys, check=True, target="iqn.2025-01.lab.openiscsi:tgt-open", state="logged_out")
    assert res["failed"] and "/dev/sda1 mounted on /mnt/lab" in res["msg"] and "(sda -> sda1)" in res["msg"]
    ok = run(capsys, check=True, target="iqn.2025-01.lab.openiscsi:tgt-chap", state="logged_out")
    assert ok["changed"] is True and ok["logged_out"] == [2]
    assert [d["device"] for d in ok["devices"]] == ["/dev/sdc"]
    assert argvs(env) == []


def test_captured_tree_login_is_no_change(capsys, env, captured):
    res = run(capsys, check=True, target="iqn.2025-01.lab.openiscsi:tgt-open", portal="10.213.0.1")
    assert res["changed"] is False
    assert [d["device"] for d in res["devices"]] == ["/dev/sda", "/dev/sdb"]
    # the static IPv6 record of the same target has no session: a login to the whole target would log it in
    whole = run(capsys, check=True, target="iqn.2025-01.lab.openiscsi:tgt-open")
    assert whole["changed"] is True and whole["logged_in"] == [
        {"target": "iqn.2025-01.lab.openiscsi:tgt-open", "portal": "[fd00:213::1]:3260", "iface": "default"}]
