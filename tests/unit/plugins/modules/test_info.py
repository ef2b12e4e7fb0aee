# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import hashlib
import json
import os
import sys

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.openiscsi.initiator.plugins.modules import info

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures"))
import fixturetree  # noqa: E402  pylint: disable=wrong-import-position

TGT = "iqn.2025-01.lab.openiscsi:tgt-chap"
NAME = "iqn.1993-08.org.debian:01:abcdef"
SECRET = "labchap-secret1"
DISC_SECRET = "labdisc-secret1"


def put(root, path, text):
    full = os.path.join(str(root), path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as handle:
        handle.write(text)
    return full


def host_tree(root, version="2.1.8-1+deb12u1", db="/etc/iscsi"):
    """A Debian host with one CHAP record, a discovery record with discovery CHAP and a LOGGED_IN session."""
    put(root, "/var/lib/dpkg/status",
        "Package: open-iscsi\nStatus: install ok installed\nArchitecture: amd64\nVersion: %s\n" % version)
    put(root, "/etc/iscsi/initiatorname.iscsi", "## DO NOT EDIT OR REMOVE THIS FILE!\nInitiatorName=%s\n"
        "InitiatorAlias=db01\n" % NAME)
    put(root, db + "/nodes/%s/10.213.0.1,3260,1/default" % TGT,
        "# BEGIN RECORD 2.1.8\nnode.name = %s\nnode.tpgt = 1\nnode.startup = automatic\n"
        "iface.iscsi_ifacename = default\nnode.session.auth.authmethod = CHAP\n"
        "node.session.auth.username = labchap\nnode.session.auth.password = %s\n"
        "node.conn[0].address = 10.213.0.1\nnode.conn[0].port = 3260\nnode.conn[0].startup = manual\n"
        "# END RECORD\n" % (TGT, SECRET))
    put(root, db + "/send_targets/10.213.0.1,3260/st_config",
        "# BEGIN RECORD 2.1.8\ndiscovery.startup = manual\ndiscovery.sendtargets.address = 10.213.0.1\n"
        "discovery.sendtargets.port = 3260\ndiscovery.sendtargets.auth.authmethod = CHAP\n"
        "discovery.sendtargets.auth.username = labdisc\ndiscovery.sendtargets.auth.password = %s\n"
        "# END RECORD\n" % DISC_SECRET)
    fixturetree.add_session(root, 1, host=2, target=TGT, initiator=NAME,
                            luns=[(0, None, "running"), (1, "sdb", "running")])
    put(root, "/proc/self/mountinfo", "22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n")
    os.makedirs(os.path.join(str(root), "run/systemd/system"))
    return str(root)


def test_gather_full_host(tmp_path):
    root = host_tree(tmp_path)
    res = info.gather(root, run=None, machine="x86_64")
    assert res["initiator_name"] == NAME and res["initiator_alias"] == "db01"
    assert res["initiator_name_file"] == {"path": "/etc/iscsi/initiatorname.iscsi", "exists": True, "findings": []}
    assert res["open_iscsi"] == {"version": "2.1.8-1+deb12u1", "source": "dpkg", "architecture": "amd64"}
    assert res["node_db"]["path"] == "/etc/iscsi"
    [node] = res["nodes"]
    assert (node["target"], node["portal"], node["tpgt"], node["iface"], node["startup"]) == \
        (TGT, "10.213.0.1:3260", 1, "default", "automatic")
    assert node["auth"]["method"] == "CHAP" and node["auth"]["has_password"] is True
    assert node["settings"] == {}  # node_settings is off
    [st] = res["send_targets"]
    assert st["portal"] == "10.213.0.1:3260" and st["auth"]["username"] == "labdisc"
    [sess] = res["sessions"]
    assert sess["state"] == "LOGGED_IN" and sess["targetname"] == TGT
    assert [d["block"] for d in sess["devices"]] == [None, "sdb"]
    assert res["root_on_iscsi"] is False and res["usr_on_iscsi"] is False
    assert res["init_system"] == "systemd"
    assert res["traps"] == []
    dumped = json.dumps(res)
    assert SECRET not in dumped and DISC_SECRET not in dumped


def test_gather_with_node_settings_still_without_secrets(tmp_path):
    root = host_tree(tmp_path)
    res = info.gather(root, node_settings=True)
    assert res["nodes"][0]["settings"]["node.session.auth.username"] == "labchap"
    assert "node.session.auth.password" not in res["nodes"][0]["settings"]
    assert res["send_targets"][0]["settings"]["discovery.sendtargets.port"] == "3260"
    dumped = json.dumps(res)
    assert SECRET not in dumped and DISC_SECRET not in dumped


def test_gather_trixie_layout(tmp_path):
    root = host_tree(tmp_path, version="2.1.11-1+deb13u2", db="/var/lib/iscsi")
    res = info.gather(root)
    assert res["node_db"]["path"] == "/var/lib/iscsi"
    assert res["nodes"][0]["path"].startswith("/var/lib/iscsi/nodes/")


def test_gather_bare_host(tmp_path):
    res = info.gather(str(tmp_path))
    assert res["initiator_name"] is None
    assert res["initiator_name_file"]["exists"] is False
    assert res["open_iscsi"]["version"] is None
    assert res["nodes"] == [] and res["sessions"] == [] and res["send_targets"] == [] and res["ifaces"] == []
    assert res["init_system"] == "unknown"


def test_gather_malformed_initiatorname_reported(tmp_path):
    put(tmp_path, "/etc/iscsi/initiatorname.iscsi", "InitiatorName=%s\nInitiatorName=iqn.2000-01.x:y\n" % NAME)
    res = info.gather(str(tmp_path))
    assert res["initiator_name"] == "iqn.2000-01.x:y"  # what iscsid would use: the last line
    assert "duplicate" in [f["code"] for f in res["initiator_name_file"]["findings"]]


def test_gather_root_on_iscsi(tmp_path):
    root = host_tree(tmp_path)
    put(tmp_path, "/proc/self/mountinfo", "22 1 8:16 / / rw - ext4 /dev/sdb rw\n")
    res = info.gather(root)
    assert res["root_on_iscsi"] is True and res["usr_on_iscsi"] is True
    assert res["mounts"]["root"]["sessions"] == [1]


def test_version_fallback_only_runs_iscsiadm_version(tmp_path):
    calls = []

    def run(argv):
        calls.append(list(argv))
        return 0, "iscsiadm version 2.1.9\n", ""

    res = info.gather(str(tmp_path), run=run)
    assert calls == [["iscsiadm", "--version"]]
    assert res["open_iscsi"] == {"version": "2.1.9", "source": "iscsiadm", "architecture": None}
    calls.clear()
    info.gather(host_tree(tmp_path), run=run)
    assert calls == []  # dpkg knows the version: no process at all


# ----------------------------------------------------------------------------------------------- the module
def tree_digest(root):
    digest = hashlib.sha256()
    for base, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files) + sorted(d for d in dirs if os.path.islink(os.path.join(base, d))):
            path = os.path.join(base, name)
            digest.update(path.encode())
            if os.path.islink(path):
                digest.update(os.readlink(path).encode())
            else:
                with open(path, "rb") as handle:
                    digest.update(handle.read())
    return digest.hexdigest()


def run_module(capsys, monkeypatch, tree, check=False, **args):
    real_gather = info.gather
    commands = []

    def gather(_root, run=None, machine=None, node_settings=False):
        return real_gather(tree, run=run, machine="x86_64", node_settings=node_settings)

    def run_command(self, argv, *a, **kw):
        commands.append(argv)
        return 0, "iscsiadm version 2.1.9\n", ""

    monkeypatch.setattr(info, "gather", gather)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    if check:
        args["_ansible_check_mode"] = True
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            info.main()
    result = json.loads(capsys.readouterr().out)
    # ansible-core 2.19 returns warnings as structured summaries
    result["warnings"] = [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]
    result["_rc"] = exc.value.code
    result["_commands"] = commands
    return result


@pytest.mark.parametrize("check", [False, True])
def test_module_reports_and_changes_nothing(capsys, monkeypatch, tmp_path, check):
    root = host_tree(tmp_path)
    before = tree_digest(root)
    res = run_module(capsys, monkeypatch, root, check=check)
    assert res["_rc"] == 0 and res["changed"] is False
    assert res["initiator_name"] == NAME and res["sessions"][0]["state"] == "LOGGED_IN"
    assert res["_commands"] == []  # no iscsiadm, no iscsid contact
    assert tree_digest(root) == before
    out = json.dumps(res)
    assert SECRET not in out and DISC_SECRET not in out


def test_module_node_settings_option(capsys, monkeypatch, tmp_path):
    root = host_tree(tmp_path)
    res = run_module(capsys, monkeypatch, root, node_settings=True)
    assert res["nodes"][0]["settings"]["node.startup"] == "automatic"
    assert SECRET not in json.dumps(res)


def test_module_traps_become_warnings(capsys, monkeypatch, tmp_path):
    root = host_tree(tmp_path)
    put(tmp_path, "/var/lib/dpkg/status",
        "Package: open-iscsi\nStatus: install ok installed\nArchitecture: i386\nVersion: 2.1.8-1\n")
    res = run_module(capsys, monkeypatch, root)
    assert [t["id"] for t in res["traps"]] == ["kernel64_userland32"]
    assert any("32-bit userland" in w for w in res["warnings"])


def test_module_rejects_unknown_option(capsys, monkeypatch, tmp_path):
    res = run_module(capsys, monkeypatch, str(tmp_path), root="/other")
    assert res["_rc"] == 1 and res["failed"] is True and "root" in res["msg"]


def test_documentation_matches_spec():
    import yaml

    doc = yaml.safe_load(info.DOCUMENTATION)
    assert set(doc["options"]) == {"node_settings"}
    returned = set(yaml.safe_load(info.RETURN))
    assert returned == {"initiator_name", "initiator_alias", "initiator_name_file", "open_iscsi", "node_db", "nodes",
                        "send_targets", "ifaces", "sessions", "multipath_maps", "root_on_iscsi", "usr_on_iscsi",
                        "mounts", "init_system", "traps"}
    assert set(info.gather("/nonexistent-root")) == returned
    yaml.safe_load(info.EXAMPLES)


# ----------------------------------------------------------------------------------------------- captured lab trees
@pytest.mark.parametrize("name, states", [
    ("bookworm-logged-in", ["LOGGED_IN", "LOGGED_IN"]),
    ("bookworm-failed", ["FAILED", "FAILED"]),
    ("bookworm-recovery-timeout", ["FAILED", "FREE"]),
    ("trixie-logged-in", ["LOGGED_IN", "LOGGED_IN"]),
    ("trixie-failed", ["FAILED", "FAILED"]),
])
def test_gather_on_captured_trees(tmp_path, name, states):
    root = fixturetree.materialize(name, tmp_path)
    meta = fixturetree.load_meta(name)
    res = info.gather(root, machine=meta["machine"])
    with open(os.path.join(root, "etc/iscsi/initiatorname.iscsi")) as handle:
        assert "InitiatorName=%s\n" % res["initiator_name"] in handle.read()
    assert res["initiator_name"].startswith("iqn.1993-08.org.debian:01:")
    assert res["open_iscsi"]["version"] == meta["open_iscsi"]
    db = "/etc/iscsi" if name.startswith("bookworm") else "/var/lib/iscsi"
    assert res["node_db"]["path"] == db and len(res["nodes"]) == 6
    assert all(n["path"].startswith(db + "/nodes/") for n in res["nodes"])
    assert [s["initiatorname"] for s in res["sessions"]] == [res["initiator_name"]] * 2
    assert [s["state"] for s in res["sessions"]] == states
    assert [d["block"] for s in res["sessions"] for d in s["devices"] if d["block"]] == ["sda", "sdb", "sdc"]
    assert res["root_on_iscsi"] is False and res["init_system"] == "systemd" and res["traps"] == []
    assert "labchap-secret1" not in json.dumps(res)


def test_multipath_maps_with_sessions_behind_their_paths(tmp_path):
    fixturetree.add_session(tmp_path, 1, luns=[(1, "sda", "running")])
    fixturetree.add_session(tmp_path, 2, luns=[(1, "sdb", "blocked")], state="FAILED",
                            conns=[{"cid": 0, "persistent_address": "10.214.0.1", "address": "10.214.0.1"}])
    fixturetree.add_multipath_map(tmp_path, "dm-0", "data", "36001405cc01", ["sda", "sdb"])
    calls = []

    def run(argv):
        calls.append(argv)
        return 0, "data: 0 131072 multipath 2 0 0 0 1 1 A 0 2 2 8:0 A 0 0 1 8:16 F 1 0 1\n", ""
    got = info.gather(str(tmp_path), run=run)["multipath_maps"]
    assert [(m["name"], m["healthy_paths"], m["total_paths"]) for m in got] == [("data", 1, 2)]
    assert [(p["device"], p["portal"], p["session_state"], p["dm_state"]) for p in got[0]["paths"]] == [
        ("sda", "10.213.0.1:3260", "LOGGED_IN", "A"), ("sdb", "10.214.0.1:3260", "FAILED", "F")]
    assert ["dmsetup", "status", "--target", "multipath"] in calls
