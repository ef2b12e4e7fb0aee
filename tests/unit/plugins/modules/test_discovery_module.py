# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The discovery module run in-process (its real main()) against a fixture node DB, with a fake iscsiadm on PATH that
records every argv (tests/unit/plugins/modules/fake_iscsiadm.py)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys

import pytest

from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.openiscsi.initiator.plugins.modules import discovery

HERE = os.path.dirname(os.path.abspath(__file__))
OPEN = "iqn.2025-01.lab.openiscsi:tgt-open"
CHAPT = "iqn.2025-01.lab.openiscsi:tgt-chap"
SECRET = "disc-Secret-4711"
SECRET_IN = "disc-Mutual-0815"


@pytest.fixture
def env(tmp_path, monkeypatch):
    root = tmp_path / "root"
    (root / "etc/iscsi/nodes").mkdir(parents=True)
    (root / "etc/iscsi/iscsid.conf").write_text("node.startup = manual\n"
                                                "discovery.sendtargets.auth.authmethod = None\n")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "iscsiadm"
    fake.write_text("#!%s\nimport runpy, sys\nsys.argv[0] = %r\nrunpy.run_path(%r, run_name='__main__')\n"
                    % (sys.executable, os.path.join(HERE, "fake_iscsiadm.py"), os.path.join(HERE, "fake_iscsiadm.py")))
    fake.chmod(0o755)
    scenario = {
        "root": str(root), "db": "/etc/iscsi", "log": str(tmp_path / "argv.log"),
        "st_defaults": {"discovery.sendtargets.auth.authmethod": "None"},
        "ifaces": ["default"],
        "portals": {
            "10.213.0.1:3260": {"targets": [[OPEN, "10.213.0.1:3260", 1], [OPEN, "10.213.0.2:3260", 1],
                                            [CHAPT, "10.213.0.1:3260", 1]]},
            "10.213.0.2:3260": {"targets": [[OPEN, "10.213.0.1:3260", 1], [OPEN, "10.213.0.2:3260", 1],
                                            [CHAPT, "10.213.0.1:3260", 1]]},
            "[fd00:213::1]:3260": {"targets": [[OPEN, "[fd00:213::1]:3260", 1]]},
            "10.213.0.9:3260": {"targets": [[OPEN, "10.213.0.9:3260", 1]],
                                "chap": {"username": "labdisc", "password": SECRET}},
            "10.213.0.8:3260": {"targets": []},
        },
    }
    (tmp_path / "scenario.json").write_text(json.dumps(scenario))
    monkeypatch.setenv("FAKE_ISCSIADM_SCENARIO", str(tmp_path / "scenario.json"))
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ.get("PATH", "")))
    monkeypatch.setattr(discovery, "ROOT", str(root))
    return {"root": root, "log": tmp_path / "argv.log", "tmp": tmp_path}


def run(capsys, check=False, diff=True, **args):
    args["_ansible_check_mode"] = check
    args["_ansible_diff"] = diff
    ansible_warnings._global_warnings.clear()  # warnings are process-global; keep each run's own
    with patch_module_args(args):
        with pytest.raises(SystemExit) as info:
            discovery.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    result["_raw"] = out
    assert (info.value.code == 0) != bool(result.get("failed")), result
    result["warnings"] = [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]
    return result


def argvs(env):
    if not env["log"].exists():
        return []
    return [json.loads(line) for line in env["log"].read_text().splitlines()]


def tree_digest(root):
    """A digest of every path, mode and content under the node DB: 'nothing written' means an equal digest."""
    h = hashlib.sha256()
    base = str(root / "etc/iscsi")
    for dirpath, dirnames, filenames in sorted(os.walk(base)):
        dirnames.sort()
        for name in sorted(filenames) + [""]:
            path = os.path.join(dirpath, name)
            h.update(path.encode())
            if name:
                st = os.stat(path)
                h.update(str(stat.S_IMODE(st.st_mode)).encode())
                with open(path, "rb") as handle:
                    h.update(handle.read())
    return h.hexdigest()


def record_files(root):
    base = root / "etc/iscsi/nodes"
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------- plain discovery
def test_discovery_creates_missing_records_and_is_idempotent(capsys, env):
    res = run(capsys, portals=["10.213.0.1"])
    assert res["changed"] is True
    expected = [
        {"target": CHAPT, "portal": "10.213.0.1:3260", "tpgt": 1, "iface": "default"},
        {"target": OPEN, "portal": "10.213.0.1:3260", "tpgt": 1, "iface": "default"},
        {"target": OPEN, "portal": "10.213.0.2:3260", "tpgt": 1, "iface": "default"},
    ]
    assert res["targets"] == expected and res["created"] == expected
    assert record_files(env["root"]) == [CHAPT + "/10.213.0.1,3260,1/default", OPEN + "/10.213.0.1,3260,1/default",
                                         OPEN + "/10.213.0.2,3260,1/default"]
    assert res["portals"] == [{"portal": "10.213.0.1:3260", "record_created": True, "auth_changed": False,
                               "auth": {"method": "None"}, "targets_known": True}]
    # never plain `-m discovery`, always discoverydb ... -o new
    cmds = argvs(env)
    assert all(c[1] == "discoverydb" for c in cmds)
    assert ["-m", "discoverydb", "-t", "st", "-p", "10.213.0.1:3260", "--discover", "-o", "new", "-P", "1"] in cmds
    digest = tree_digest(env["root"])
    again = run(capsys, portals=["10.213.0.1"])
    assert again["changed"] is False and again["created"] == [] and again["targets"] == expected
    assert tree_digest(env["root"]) == digest


def test_only_targets_keeps_the_named_targets_and_resets_nothing(capsys, env):
    # a record of the open target exists with its own setting; the filter keeps only the CHAP target
    run(capsys, portals=["10.213.0.1"], only_targets=[OPEN])
    path = env["root"] / "etc/iscsi/nodes" / OPEN / "10.213.0.1,3260,1" / "default"
    path.write_text(path.read_text().replace("node.startup = manual", "node.startup = automatic"))
    assert record_files(env["root"]) == [OPEN + "/10.213.0.1,3260,1/default", OPEN + "/10.213.0.2,3260,1/default"]
    before = path.read_bytes()
    pred = run(capsys, check=True, portals=["10.213.0.1"], only_targets=["IQN.2025-01.lab.openiscsi:tgt-c*"])
    assert pred["created"] == [{"target": CHAPT, "portal": "10.213.0.1:3260", "tpgt": 1, "iface": "default"}]
    res = run(capsys, portals=["10.213.0.1"], only_targets=["IQN.2025-01.lab.openiscsi:tgt-c*"])
    assert res["changed"] is True and res["created"] == pred["created"] and res["targets"] == pred["created"]
    assert res["filtered_out"] == [OPEN]
    assert record_files(env["root"]) == [CHAPT + "/10.213.0.1,3260,1/default", OPEN + "/10.213.0.1,3260,1/default",
                                         OPEN + "/10.213.0.2,3260,1/default"]
    assert path.read_bytes() == before  # the existing record kept its settings
    cmds = argvs(env)
    # discovery wrote nothing itself (nonpersistent); the kept record was made with -m node -o new
    assert not any(c[:2] == ["-m", "discoverydb"] and c[-3:] == ["new", "-P", "1"] for c in cmds), cmds
    assert any(c[:2] == ["-m", "node"] and CHAPT in c and "new" in c for c in cmds), cmds
    made = (env["root"] / "etc/iscsi/nodes" / CHAPT / "10.213.0.1,3260,1" / "default").read_text()
    assert "node.discovery_type = send_targets" in made and "node.discovery_address = 10.213.0.1" in made
    # a substring is not a name: "tgt" matches nothing
    none = run(capsys, portals=["10.213.0.1"], only_targets=["tgt"])
    assert none["changed"] is False and none["targets"] == [] and none["filtered_out"] == [CHAPT, OPEN]
    assert run(capsys, portals=["10.213.0.1"], only_targets=["*"])["changed"] is False


@pytest.mark.parametrize("only, needle", [([], "only_targets: give at least one"),
                                          (["iqn.x y"], "only_targets[0]")])
def test_only_targets_bad_input(capsys, env, only, needle):
    digest = tree_digest(env["root"])
    res = run(capsys, portals=["10.213.0.1"], only_targets=only)
    assert res["failed"] and needle in res["msg"] and argvs(env) == []
    assert tree_digest(env["root"]) == digest


def test_existing_record_settings_survive(capsys, env):
    run(capsys, portals=["10.213.0.1"])
    path = env["root"] / "etc/iscsi/nodes" / OPEN / "10.213.0.1,3260,1" / "default"
    path.write_text(path.read_text().replace("node.startup = manual", "node.startup = automatic"))
    res = run(capsys, portals=["10.213.0.1", "10.213.0.2:3260"])
    # only the second portal's discovery record is new; no node record is created or touched
    assert res["created"] == [] and [p["record_created"] for p in res["portals"]] == [False, True]
    assert "node.startup = automatic" in path.read_text()
    assert run(capsys, portals=["10.213.0.1", "10.213.0.2:3260"])["changed"] is False
    assert "node.startup = automatic" in path.read_text()


def test_check_mode_predicts_and_writes_nothing(capsys, env):
    digest = tree_digest(env["root"])
    pred = run(capsys, check=True, portals=["10.213.0.1"])
    assert tree_digest(env["root"]) == digest
    assert pred["changed"] is True and len(pred["created"]) == 3
    assert ["-m", "discoverydb", "-t", "st", "-p", "10.213.0.1:3260", "--discover", "-o", "nonpersistent", "-P",
            "1"] in argvs(env)
    assert not any("new" in c for c in argvs(env))
    real = run(capsys, portals=["10.213.0.1"])
    assert real["created"] == pred["created"] and real["targets"] == pred["targets"]
    assert run(capsys, check=True, portals=["10.213.0.1"])["changed"] is False


def test_diff_lists_records(capsys, env):
    res = run(capsys, portals=["10.213.0.1"])
    assert res["diff"]["before"]["records"] == []
    assert "%s 10.213.0.2:3260,1 default" % OPEN in res["diff"]["after"]["records"]
    assert res["diff"]["before"]["discovery_auth"] == {"10.213.0.1:3260": None}


def test_create_nodes_false_only_reports(capsys, env):
    res = run(capsys, portals=["10.213.0.1"], create_nodes=False)
    assert res["created"] == [] and len(res["targets"]) == 3
    assert record_files(env["root"]) == []
    assert "nonpersistent" in argvs(env)[-1]
    # the discovery record itself is kept (it is where discovery CHAP lives)
    assert res["changed"] is True and res["portals"][0]["record_created"] is True


def test_ipv6_portal(capsys, env):
    res = run(capsys, portals=["[fd00:213::1]"])
    assert res["targets"] == [{"target": OPEN, "portal": "[fd00:213::1]:3260", "tpgt": 1, "iface": "default"}]
    assert record_files(env["root"]) == [OPEN + "/fd00:213::1,3260,1/default"]
    assert (env["root"] / "etc/iscsi/send_targets/fd00:213::1,3260/st_config").exists()


def test_ifaces_bind_records(capsys, env):
    iface_dir = env["root"] / "etc/iscsi/ifaces"
    iface_dir.mkdir()
    for name in ("san-a", "san-b"):
        (iface_dir / name).write_text("# BEGIN RECORD 2.1.8\niface.iscsi_ifacename = %s\niface.transport_name = tcp\n"
                                      "# END RECORD\n" % name)
    res = run(capsys, portals=["[fd00:213::1]:3260"], iface=["san-a", "san-b"])
    assert [t["iface"] for t in res["created"]] == ["san-a", "san-b"]
    assert argvs(env)[-1][argvs(env)[-1].index("-I") + 1] == "san-a"


def test_static_twin_warning(capsys, env):
    static = env["root"] / "etc/iscsi/nodes" / OPEN / "fd00:213::1,3260,-1"
    static.mkdir(parents=True)
    (static / "default").write_text("# BEGIN RECORD 2.1.8\nnode.name = %s\nnode.tpgt = -1\n# END RECORD\n" % OPEN)
    res = run(capsys, portals=["[fd00:213::1]"])
    assert any("static record (tpgt -1)" in w for w in res["warnings"])
    assert len(res["created"]) == 1


def test_portal_without_targets_warns(capsys, env):
    res = run(capsys, portals=["10.213.0.8"])
    assert res["targets"] == [] and any("offered no target" in w for w in res["warnings"])


def test_unreachable_portal_fails_clearly(capsys, env):
    res = run(capsys, portals=["10.213.0.7"])
    assert res["failed"] and "discovery at 10.213.0.7:3260" in res["msg"] and "exit code 4" in res["msg"]


# ------------------------------------------------------------------------------------------- discovery CHAP
def test_chap_stored_in_record_never_on_argv(capsys, env):
    res = run(capsys, portals=["10.213.0.9"],
              auth={"username": "labdisc", "password": SECRET, "username_in": "tgt", "password_in": SECRET_IN})
    assert res["changed"] is True and res["created"][0]["portal"] == "10.213.0.9:3260"
    st = env["root"] / "etc/iscsi/send_targets/10.213.0.9,3260/st_config"
    text = st.read_text()
    assert "discovery.sendtargets.auth.password = %s\n" % SECRET in text
    assert "discovery.sendtargets.auth.password_in = %s\n" % SECRET_IN in text
    assert text.endswith("# END RECORD\n")
    assert stat.S_IMODE(os.stat(str(st)).st_mode) == 0o600
    # the argv log: every iscsiadm call, none carrying a secret
    log = env["log"].read_text()
    assert SECRET not in log and SECRET_IN not in log
    assert ["-m", "discoverydb", "-t", "st", "-p", "10.213.0.9:3260"] in argvs(env)  # read back with iscsiadm
    # nor in the module's output
    assert SECRET not in res["_raw"] and SECRET_IN not in res["_raw"]
    assert res["portals"][0]["auth"] == {"method": "CHAP", "username": "labdisc", "password": "********",
                                         "username_in": "tgt", "password_in": "********"}
    again = run(capsys, portals=["10.213.0.9"],
                auth={"username": "labdisc", "password": SECRET, "username_in": "tgt", "password_in": SECRET_IN})
    assert again["changed"] is False and SECRET not in env["log"].read_text()


def test_wrong_discovery_password_fails_clearly(capsys, env):
    res = run(capsys, portals=["10.213.0.9"], auth={"username": "labdisc", "password": "wrong-one"})
    assert res["failed"] and "auth.username/auth.password" in res["msg"] and "exit code 24" in res["msg"]
    assert "wrong-one" not in res["_raw"] and "wrong-one" not in env["log"].read_text()


def test_chap_portal_without_auth_hints(capsys, env):
    res = run(capsys, portals=["10.213.0.9"])
    assert res["failed"] and "requires discovery CHAP" in res["msg"]


def test_check_mode_with_new_credentials_reports_unknown_targets(capsys, env):
    digest = tree_digest(env["root"])
    res = run(capsys, check=True, portals=["10.213.0.9"], auth={"username": "labdisc", "password": SECRET})
    assert tree_digest(env["root"]) == digest and argvs(env) == []
    assert res["changed"] is True and res["portals"][0]["targets_known"] is False and res["targets"] == []
    assert any("unknown" in w for w in res["warnings"])
    run(capsys, portals=["10.213.0.9"], auth={"username": "labdisc", "password": SECRET})
    pred = run(capsys, check=True, portals=["10.213.0.9"], auth={"username": "labdisc", "password": SECRET})
    assert pred["changed"] is False and pred["portals"][0]["targets_known"] is True and len(pred["targets"]) == 1


def test_password_change_is_detected_and_method_none_clears(capsys, env):
    run(capsys, portals=["10.213.0.9"], auth={"username": "labdisc", "password": SECRET})
    res = run(capsys, check=True, portals=["10.213.0.9"], auth={"username": "labdisc", "password": SECRET + "x"})
    assert res["changed"] is True and res["portals"][0]["auth_changed"] is True
    st = env["root"] / "etc/iscsi/send_targets/10.213.0.9,3260/st_config"
    assert SECRET + "x" not in st.read_text()
    res = run(capsys, portals=["10.213.0.1"], auth={"method": "None"})
    assert res["changed"] is True
    off = env["root"] / "etc/iscsi/send_targets/10.213.0.1,3260/st_config"
    assert "password" not in off.read_text()


# ------------------------------------------------------------------------------------------- bad input catalog
@pytest.mark.parametrize("args,needle", [
    ({"portals": []}, "portals: give at least one portal"),
    ({"portals": ["fd00::1"]}, "portals[0]"),
    ({"portals": ["10.0.0.1:0"]}, "portals[0]"),
    ({"portals": ["10.0.0.1:65536"]}, "portals[0]"),
    ({"portals": ["bad_host!"]}, "portals[0]"),
    ({"portals": ["10.0.0.1", "10.0.0.1:3260,1"]}, "portals[1]"),
    ({"portals": ["10.0.0.1"], "auth": {"username": "u"}}, "auth.password"),
    ({"portals": ["10.0.0.1"], "auth": {"method": "None", "username": "u", "password": "pw-0815-x"}},
     "method None"),
    ({"portals": ["10.0.0.1"], "auth": {"username": "u", "password": "pw-0815-x", "username_in": "x"}},
     "auth.password_in"),
    ({"portals": ["10.0.0.1"], "iface": ["nosuch"]}, "iface[0]: iface 'nosuch' does not exist"),
    ({"portals": ["10.0.0.1"], "iface": ["../x"]}, "iface[0]"),
    ({"portals": ["10.0.0.1"], "auth": {"method": "LDAP"}}, "auth"),
    ({"portals": ["10.0.0.1"], "backend": "kernel"}, "backend"),
    ({"portals": ["10.0.0.1"], "create_nodes": "maybe"}, "create_nodes"),
])
def test_bad_input_changes_nothing(capsys, env, args, needle):
    digest = tree_digest(env["root"])
    res = run(capsys, **args)
    assert res["failed"] and needle in res["msg"], res["msg"]
    assert tree_digest(env["root"]) == digest and argvs(env) == []


# ------------------------------------------------------------------------------------------- backend seam
def test_other_backend_seam(capsys, env, monkeypatch):
    calls = []

    def fake_backend(portals, auth):
        calls.append((portals, auth))
        return [(OPEN, "10.213.0.5:3260", 2)]

    monkeypatch.setitem(discovery.DISCOVER_FUNCTIONS, "fake", fake_backend)
    monkeypatch.setattr(discovery, "BACKEND_CHOICES", ["iscsiadm", "fake"], raising=False)
    portals, auth, ifaces = discovery.validate({"portals": ["10.213.0.5"], "auth": None, "iface": None,
                                                "backend": "fake"}, [])
    assert [p.arg() for p in portals] == ["10.213.0.5:3260"] and auth is None and ifaces is None
    from ansible_collections.openiscsi.initiator.plugins.module_utils import _discovery as d
    recs = d.records_from_triples(fake_backend([("10.213.0.5", 3260)], None), ["default"])
    assert recs == [d.Discovered(OPEN, "10.213.0.5", 3260, 2, "default")]
    assert calls == [([("10.213.0.5", 3260)], None)]
