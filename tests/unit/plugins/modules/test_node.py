# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node module run in-process (its real main()) against a node DB under tmp_path (option root).

Only what needs no iscsiadm runs here: bad input (nothing may change), runs with nothing to change (no command may
run) and check mode.  test_node_iscsiadm.py runs the module against the real iscsiadm.
"""

from __future__ import annotations

import os
import shutil

import pytest

from ansible_collections.openiscsi.initiator.plugins.modules import node
from harness import file_states, run_module

DATA = os.path.join(os.path.dirname(__file__), "..", "module_utils", "data", "open-iscsi-2.1.8")
T1 = "iqn.2001-04.com.example:disk1"
T3 = "iqn.2001-04.com.example:disk3"
SECRET = "alice-secret-1"  # what node-chap-updated.record holds
NEW_SECRET = "Brand-New-Secret-99"


@pytest.fixture
def root(tmp_path):
    db = tmp_path / "etc" / "iscsi"
    (db / "nodes" / T1).mkdir(parents=True)
    (db / "nodes" / T3).mkdir(parents=True)
    shutil.copy(os.path.join(DATA, "iscsid.conf"), str(db / "iscsid.conf"))
    shutil.copy(os.path.join(DATA, "node-new-static.record"), str(db / "nodes" / T1 / "192.0.2.10,3260"))
    shutil.copy(os.path.join(DATA, "node-chap-updated.record"), str(db / "nodes" / T3 / "192.0.2.30,3260"))
    for path in (db / "nodes" / T1 / "192.0.2.10,3260", db / "nodes" / T3 / "192.0.2.30,3260"):
        os.chmod(str(path), 0o600)
    return tmp_path


def run(capsys, root_dir, check=False, diff=True, **args):
    args.setdefault("root", str(root_dir))
    return run_module(capsys, node, args, check=check, diff=diff)


def test_nothing_to_change_reads_files_only(capsys, root, no_commands):
    before = file_states(root)
    res = run(capsys, root, nodes=[
        {"target": T1, "portal": "192.0.2.10", "startup": "manual"},
        {"target": T3.upper().replace("IQN.", "iqn."), "portal": "192.0.2.30:3260", "startup": "automatic",
         "auth": {"username": "alice", "password": SECRET, "username_in": "target1", "password_in": "target-secret-2",
                  "chap_algs": ["SHA256", "MD5"]},
         "settings": {"node.session.timeo.replacement_timeout": 15}},
    ])
    assert res["changed"] is False
    assert res["summary"] == {"create": 0, "update": 0, "delete": 0, "unchanged": 2}
    assert res["commands"] == 0 and no_commands == []
    assert res["records"] == []  # only changed records are listed
    assert res["db_root"] == "/etc/iscsi"
    assert file_states(root) == before
    assert SECRET not in res["_raw"]


def test_absent_record_already_gone_is_no_change(capsys, root, no_commands):
    res = run(capsys, root, target="iqn.2001-04.com.example:gone", portal="192.0.2.99", state="absent")
    assert res["changed"] is False and res["records"] == [] and res["summary"]["unchanged"] == 1


def test_check_mode_predicts_without_touching(capsys, root, no_commands):
    before = file_states(root)
    res = run(capsys, root, check=True, nodes=[
        {"target": T1, "portal": "192.0.2.10", "startup": "automatic", "auth": {"username": "bob",
                                                                                "password": NEW_SECRET}},
        {"target": T3, "portal": "192.0.2.30", "auth": {"username": "alice", "password": NEW_SECRET}},
        {"target": "iqn.2001-04.com.example:new", "portal": "[2001:db8::5]:3261", "tpgt": 2},
        {"target": T1, "portal": "192.0.2.10:3261", "state": "absent"},
    ])
    assert res["changed"] is True
    assert res["summary"] == {"create": 1, "update": 2, "delete": 0, "unchanged": 1}
    first, second, third = res["records"]  # the fourth entry changes nothing and is not listed
    assert sorted(first["keys"]) == ["node.session.auth.authmethod", "node.session.auth.password",
                                     "node.session.auth.username", "node.startup"]
    assert second["keys"] == ["node.session.auth.password"]
    assert "changes" not in first  # names only: the values are in the diff
    assert (third["action"], third["portal"], third["tpgt"]) == ("create", "[2001:db8::5]:3261", 2)
    assert "node.startup = automatic" in res["diff"]["after"]
    assert "node.session.auth.password = ********" in res["diff"]["after"]
    assert NEW_SECRET not in res["_raw"] and SECRET not in res["_raw"]
    assert res["commands"] == 0 and no_commands == []
    assert file_states(root) == before


def test_delete_with_live_session_refused(capsys, root, no_commands):
    sess = root / "sys" / "class" / "iscsi_session" / "session7"
    conn = root / "sys" / "class" / "iscsi_connection" / "connection7:0"
    sess.mkdir(parents=True)
    conn.mkdir(parents=True)
    for name, value in (("targetname", T1), ("state", "LOGGED_IN"), ("ifacename", "default"), ("tpgt", "1")):
        (sess / name).write_text(value + "\n")
    for name, value in (("persistent_address", "192.0.2.10"), ("persistent_port", "3260"), ("address", "192.0.2.10"),
                        ("port", "3260")):
        (conn / name).write_text(value + "\n")
    before = file_states(root)
    res = run(capsys, root, target=T1, portal="192.0.2.10", state="absent")
    if res.get("failed"):
        assert "session of it is live" in res["msg"] and "force" in res["msg"]
    else:  # the sysfs reader did not take this minimal tree for a session
        pytest.fail("the live session was not detected: %r" % res)
    assert file_states(root) == before
    named = run(capsys, root, target=T1, portal="192.0.2.10", state="absent",
                option_names={"force": "initiator_force_logout"})
    assert named["failed"] and "set initiator_force_logout: true" in named["msg"], named["msg"]
    assert file_states(root) == before


BAD = [
    (dict(target=T1, portal="192.0.2.10", nodes=[{"target": T3, "portal": "192.0.2.30"}]),
     ["target", "cannot be combined"]),
    (dict(target=T1), ["portal", "is required"]),
    (dict(target="iqn.2001-04.com.example:a b", portal="192.0.2.10"), ["target", "whitespace"]),
    (dict(target="example:disk", portal="192.0.2.10"), ["target", "iqn."]),
    (dict(target=T1, portal="192.0.2.10:0"), ["portal", "port 0"]),
    (dict(target=T1, portal="192.0.2.10:65536"), ["portal", "port 65536"]),
    (dict(target=T1, portal="2001:db8::1"), ["portal", "brackets"]),
    (dict(target=T1, portal="300.1.2.3"), ["portal", "IPv4"]),
    (dict(target=T1, portal="192.0.2.10", settings={"node.startp": "manual"}), ["unknown key", "'node.startup'"]),
    (dict(target=T1, portal="192.0.2.10", settings={"node.session.queue_depth": "lots"}), ["integer"]),
    (dict(target=T1, portal="192.0.2.10", settings={"node.session.auth.password": NEW_SECRET}), ["auth.password"]),
    (dict(target=T1, portal="192.0.2.10", auth={"password": NEW_SECRET}), ["auth.username", "required"]),
    (dict(target=T1, portal="192.0.2.10", tpgt=-2), ["tpgt", "out of range"]),
    (dict(target=T1, portal="192.0.2.10", iface="san-a"), ["would replace it", "tpgt"]),
    (dict(nodes=[{"target": T1, "portal": "192.0.2.10"}, {"target": T1, "portal": "192.0.2.10:3260"}]),
     ["nodes[1]", "same record"]),
    (dict(nodes=[{"target": T1, "portal": "192.0.2.10", "state": "absent", "startup": "manual"}]),
     ["nodes[0].startup", "state=absent"]),
    (dict(nodes=[{"target": T1}]), ["portal"]),
    (dict(nodes=[{"target": T1, "portal": "192.0.2.10", "tpgt": "one"}]), ["tpgt"]),
    (dict(target=T1, portal="192.0.2.10", startup="sometimes"), ["startup", "manual, automatic, onboot"]),
    (dict(target=T1, portal="192.0.2.10", root="relative/dir"), ["root", "absolute"]),
]


@pytest.mark.parametrize("args, words", BAD)
def test_bad_input_changes_nothing(capsys, root, no_commands, args, words):
    before = file_states(root)
    res = run(capsys, root, **args)
    assert res["failed"] is True
    for word in words:
        assert word in res["msg"], res["msg"]
    assert NEW_SECRET not in res["_raw"]
    assert file_states(root) == before
    assert no_commands == []


def test_check_mode_pending_records_are_not_created_twice(capsys, root, no_commands):
    # discovery (an earlier task of the same run) creates T1 at 192.0.2.77 in the real run; in check mode the
    # node task must predict an update of that record, not list it as created a second time
    before = file_states(root)
    args = dict(nodes=[{"target": T1, "portal": "192.0.2.77", "startup": "automatic"}])
    plain = run(capsys, root, check=True, **args)
    assert plain["summary"]["create"] == 1 and "(absent)" in plain["diff"]["before"]
    pending = [{"target": T1.upper(), "portal": "192.0.2.77:3260", "tpgt": 1, "iface": "default"}]
    res = run(capsys, root, check=True, pending_records=pending, **args)
    assert res["changed"] is True and res["summary"]["create"] == 0 and res["summary"]["update"] == 1, res
    assert "(absent)" not in res["diff"]["before"] and "made by an earlier task" in res["diff"]["before"]
    assert "node.startup = automatic" in res["diff"]["after"] and "] update" in res["diff"]["after"]
    assert [r["action"] for r in res["records"]] == ["update"]
    # an entry without settings: the real run would find discovery's record and change nothing
    bare = run(capsys, root, check=True, pending_records=pending, nodes=[{"target": T1, "portal": "192.0.2.77"}])
    assert bare["changed"] is False, bare
    assert file_states(root) == before and no_commands == []


def test_pending_records_bad_portal(capsys, root, no_commands):
    res = run(capsys, root, check=True, nodes=[{"target": T1, "portal": "192.0.2.77"}],
              pending_records=[{"target": T1, "portal": "192.0.2.77:99999"}])
    assert res["failed"] and "pending_records[0].portal" in res["msg"]


def test_result_names_keys_and_holds_no_secret_even_one_equal_to_a_name(capsys, root, no_commands, monkeypatch):
    """Secrets equal to a target's name, a user name and a setting's value: none of them may show, in the result,
    its invocation or the invocation log, and the result lists key names only."""
    from ansible.module_utils import basic
    logged = []
    monkeypatch.setattr(basic.AnsibleModule, "log", lambda self, msg, log_args=None: logged.append((msg, log_args)))
    new_target = "iqn.2001-04.com.example:looks-like-a-secret"
    secrets = [new_target, "carol", "automatic"]
    res = run(capsys, root, check=True, nodes=[
        {"target": T1, "portal": "192.0.2.10", "startup": "automatic",
         "auth": {"username": "carol", "password": secrets[0], "username_in": "tgt", "password_in": secrets[2]}},
        {"target": new_target, "portal": "192.0.2.99", "auth": {"username": "x", "password": secrets[1]}},
    ])
    assert res["changed"] is True and res["summary"] == {"create": 1, "update": 1, "delete": 0, "unchanged": 0}
    first, second = res["records"]
    assert set(first) == {"target", "portal", "tpgt", "iface", "action", "keys"}
    assert first["target"] == T1 and first["action"] == "update" and "node.startup" in first["keys"]
    assert second["action"] == "create" and second["target"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    raw = res["_raw"]
    assert '"invocation"' in raw  # the echo of the arguments is there, scrubbed
    for secret in secrets:
        assert secret not in raw, secret
        assert logged and all(secret not in msg and secret not in repr(args) for msg, args in logged), secret


def test_warning_holds_no_secret(capsys, root, no_commands):
    """A live session's warning names the record; a secret equal to its target name is masked there too."""
    sess = root / "sys" / "class" / "iscsi_session" / "session7"
    conn = root / "sys" / "class" / "iscsi_connection" / "connection7:0"
    sess.mkdir(parents=True)
    conn.mkdir(parents=True)
    for name, value in (("targetname", T1), ("state", "LOGGED_IN"), ("ifacename", "default"), ("tpgt", "1")):
        (sess / name).write_text(value + "\n")
    for name, value in (("persistent_address", "192.0.2.10"), ("persistent_port", "3260"), ("address", "192.0.2.10"),
                        ("port", "3260")):
        (conn / name).write_text(value + "\n")
    res = run(capsys, root, check=True, target=T1, portal="192.0.2.10", startup="automatic",
              auth={"username": "u", "password": T1})
    assert res["records"][0].get("session_live") is True
    assert res["warnings"] and T1 not in res["_raw"]
