# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""discovery backend: python|auto - the decisions (which backend, which credentials, which ifaces, what a record
the python backend creates looks like) with the SendTargets exchange stubbed; the fake iscsiadm of
test_discovery_module.py writes the node DB.  tests/integration/iscsi/test_discovery_python.py runs the python
backend against tgtd with the real iscsiadm."""

from __future__ import annotations

import os

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _discovery as D
from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_errors import ISCSILoginError
from ansible_collections.openiscsi.initiator.plugins.modules import discovery

import test_discovery_module as base
from test_discovery_module import OPEN, SECRET, SECRET_IN, argvs, record_files, run

env = base.env  # the fixture of test_discovery_module: fixture node DB, fake iscsiadm on PATH

NAME = "iqn.1993-08.org.debian:01:unit-python"


# ------------------------------------------------------------------------------------------- pure decisions
@pytest.mark.parametrize("requested, transport, adm, expected", [
    ("iscsiadm", "missing", None, "iscsiadm"),
    ("python", "loaded", "/usr/sbin/iscsiadm", "python"),
    ("auto", "loaded", "/usr/sbin/iscsiadm", "iscsiadm"),
    ("auto", "loadable", "/usr/sbin/iscsiadm", "iscsiadm"),
    ("auto", "missing", "/usr/sbin/iscsiadm", "python"),
    ("auto", "loaded", None, "python"),
])
def test_choose_backend(requested, transport, adm, expected):
    backend, reason = D.choose_backend(requested, transport, adm)
    assert backend == expected
    assert reason == "requested" if requested != "auto" else reason.startswith("auto: ")


def test_choose_backend_refuses_unknown():
    with pytest.raises(InputError, match="backend"):
        D.choose_backend("kernel", "loaded", "/usr/sbin/iscsiadm")


def test_kernel_transport(tmp_path):
    root = str(tmp_path)
    assert D.kernel_transport(root, "6.1.0-28-amd64") == "missing"
    moddir = tmp_path / "lib/modules/6.1.0-28-amd64"
    moddir.mkdir(parents=True)
    (moddir / "modules.dep").write_text("kernel/drivers/scsi/libiscsi.ko.xz: kernel/drivers/scsi/scsi_transport_"
                                        "iscsi.ko.xz\nkernel/drivers/scsi/iscsi_tcp_x.ko.xz:\n")
    assert D.kernel_transport(root, "6.1.0-28-amd64") == "missing"  # a different module's name
    (moddir / "modules.dep").write_text("kernel/drivers/scsi/iscsi_tcp.ko.xz: kernel/drivers/scsi/libiscsi_tcp.ko.xz"
                                        "\n")
    assert D.kernel_transport(root, "6.1.0-28-amd64") == "loadable"
    assert D.kernel_transport(root, "6.12.0-1-amd64") == "missing"  # another kernel's modules do not count
    (moddir / "modules.dep").write_text("")
    (moddir / "modules.builtin").write_text("kernel/drivers/scsi/iscsi_tcp.ko\n")
    assert D.kernel_transport(root, "6.1.0-28-amd64") == "loadable"
    (tmp_path / "sys/module/iscsi_tcp").mkdir(parents=True)
    assert D.kernel_transport(root, None) == "loaded"


def test_default_ifaces_as_iscsiadm_binds():
    assert D.default_ifaces([]) == ["default"]
    recs = [{"name": "san-b", "transport": "tcp"}, {"name": "san-a", "transport": "tcp"},
            {"name": "offload", "transport": "bnx2i"}, {"name": "default", "transport": "tcp"}]
    assert D.default_ifaces(recs) == ["san-a", "san-b"]
    assert D.default_ifaces([{"name": "offload", "transport": "bnx2i"}]) == ["default"]


def test_auth_from_values():
    values = {"discovery.sendtargets.auth.authmethod": "CHAP", "discovery.sendtargets.auth.username": "u",
              "discovery.sendtargets.auth.password": SECRET, "discovery.sendtargets.auth.username_in": "<empty>",
              "discovery.sendtargets.auth.password_in": ""}
    assert D.auth_from_values(values) == {"method": "CHAP", "username": "u", "password": SECRET}
    assert D.auth_from_values({}) == {"method": "None"}


STATIC_RECORD = ("# BEGIN RECORD 2.1.8\nnode.name = %s\nnode.tpgt = 1\nnode.startup = manual\n"
                 "node.leading_login = No\nnode.discovery_port = 0\nnode.discovery_type = static\n"
                 "node.session.initial_cmdsn = 0\n# END RECORD\n" % OPEN)


def test_as_discovered_record_sets_the_keys_in_iscsiadms_order():
    text = D.as_discovered_record(STATIC_RECORD, "10.213.0.1", 3260)
    assert text == STATIC_RECORD.replace(
        "node.discovery_port = 0\nnode.discovery_type = static\n",
        "node.discovery_address = 10.213.0.1\nnode.discovery_port = 3260\nnode.discovery_type = send_targets\n")
    with pytest.raises(ValueError, match="not written by iscsiadm"):
        D.as_discovered_record("# BEGIN RECORD 2.1.8\nnode.name = x\n# END RECORD\n", "10.213.0.1", 3260)


# ------------------------------------------------------------------------------------------- through the module
class FakeSendTargets:
    """Stands in for _iscsi_probe.discover_triples; answers per portal, records the credentials it was given."""

    def __init__(self, answers, refuse=None):
        self.answers = answers
        self.refuse = refuse or {}
        self.calls = []

    def __call__(self, address, port, initiator_name, auth=None, timeout=10.0, total_timeout=60.0):
        self.calls.append({"portal": "%s:%d" % (address, port), "initiator": initiator_name, "auth": auth,
                           "timeout": timeout, "total_timeout": total_timeout})
        key = "%s:%d" % (address, port)
        if key in self.refuse:
            raise self.refuse[key]
        return list(self.answers.get(key, []))


@pytest.fixture
def py_env(env, monkeypatch):  # pylint: disable=redefined-outer-name
    (env["root"] / "etc/iscsi/initiatorname.iscsi").write_text("InitiatorName=%s\n" % NAME)
    fake = FakeSendTargets({"10.213.0.1:3260": [(OPEN, "10.213.0.1:3260", 1), (OPEN, "10.213.0.2:3260", 1)],
                            "10.213.0.2:3260": [(OPEN, "10.213.0.1:3260", 1), (OPEN, "10.213.0.2:3260", 1)]})
    monkeypatch.setattr(discovery, "discover_triples", fake)
    env["fake"] = fake
    return env


def test_python_backend_creates_discovered_records(capsys, py_env):
    env = py_env
    auth = {"username": "labdisc", "password": SECRET, "username_in": "tgt", "password_in": SECRET_IN}
    res = run(capsys, portals=["10.213.0.1", "10.213.0.2"], backend="python", auth=auth, timeout=3)
    assert res["changed"] is True and res["backend"] == "python" and res["backend_reason"] == "requested"
    assert [c["portal"] for c in env["fake"].calls] == ["10.213.0.1:3260", "10.213.0.2:3260"]
    assert all(c["initiator"] == NAME and c["timeout"] == 3 and c["total_timeout"] == 12 for c in env["fake"].calls)
    assert env["fake"].calls[0]["auth"] == dict(auth, method="CHAP")
    created = [(c["portal"], c["iface"]) for c in res["created"]]
    assert created == [("10.213.0.1:3260", "default"), ("10.213.0.2:3260", "default")]
    assert record_files(env["root"]) == [OPEN + "/10.213.0.1,3260,1/default", OPEN + "/10.213.0.2,3260,1/default"]
    # both records were found first at 10.213.0.1: they remember it and are linked from its directory (as iscsiadm)
    for addr in ("10.213.0.1", "10.213.0.2"):
        text = (env["root"] / "etc/iscsi/nodes" / OPEN / ("%s,3260,1" % addr) / "default").read_text()
        assert ("node.discovery_address = 10.213.0.1\nnode.discovery_port = 3260\n"
                "node.discovery_type = send_targets\n") in text
        link = env["root"] / "etc/iscsi/send_targets/10.213.0.1,3260" / ("%s,%s,3260,1,default" % (OPEN, addr))
        assert os.readlink(str(link)) == "/etc/iscsi/nodes/%s/%s,3260,1" % (OPEN, addr)
    assert os.listdir(str(env["root"] / "etc/iscsi/static")) == []
    # the node DB is written through iscsiadm's -m node -o new, never a plain -m discovery, no secret on argv
    calls = argvs(env)
    assert ["-m", "node", "-T", OPEN, "-p", "10.213.0.1:3260,1", "-I", "default", "-o", "new"] in calls
    assert not any("--discover" in c for c in calls)
    assert SECRET not in str(calls) and SECRET not in res["_raw"] and SECRET_IN not in res["_raw"]
    again = run(capsys, portals=["10.213.0.1", "10.213.0.2"], backend="python", auth=auth)
    assert again["changed"] is False and again["created"] == []


def test_python_backend_uses_the_stored_discovery_credentials(capsys, py_env):
    env = py_env
    auth = {"username": "labdisc", "password": SECRET}
    run(capsys, portals=["10.213.0.1"], backend="python", auth=auth)
    res = run(capsys, portals=["10.213.0.1"], backend="python")  # no auth: what the discovery record holds
    assert res["changed"] is False
    assert env["fake"].calls[-1]["auth"] == {"method": "CHAP", "username": "labdisc", "password": SECRET}


def test_python_backend_check_mode_knows_targets_with_new_credentials(capsys, py_env):
    from test_discovery_module import tree_digest  # pylint: disable=import-outside-toplevel
    env = py_env
    digest = tree_digest(env["root"])
    res = run(capsys, check=True, portals=["10.213.0.1"], backend="python", auth={"username": "u", "password": SECRET})
    assert tree_digest(env["root"]) == digest
    assert res["changed"] is True and res["portals"][0]["targets_known"] is True and len(res["created"]) == 2
    assert env["fake"].calls[0]["auth"]["password"] == SECRET and argvs(env) == []


def test_python_backend_binds_to_the_tcp_ifaces_like_iscsiadm(capsys, py_env):
    env = py_env
    iface_dir = env["root"] / "etc/iscsi/ifaces"
    iface_dir.mkdir()
    for name, transport in (("san-a", "tcp"), ("hba", "bnx2i")):
        (iface_dir / name).write_text("# BEGIN RECORD 2.1.8\niface.iscsi_ifacename = %s\niface.transport_name = %s\n"
                                      "# END RECORD\n" % (name, transport))
    res = run(capsys, portals=["10.213.0.1"], backend="python", create_nodes=False)
    assert sorted(set(t["iface"] for t in res["targets"])) == ["san-a"]


def test_python_backend_auth_failure_is_clear(capsys, py_env):
    env = py_env
    env["fake"].refuse["10.213.0.1:3260"] = ISCSILoginError(2, 1, target=None)
    res = run(capsys, portals=["10.213.0.1"], backend="python")
    assert res["failed"] and "discovery at 10.213.0.1:3260 (python backend): login failed with status 0x0201" in \
        res["msg"]
    assert "no discovery CHAP was used" in res["msg"]


def test_python_backend_needs_the_initiator_name(capsys, py_env):
    os.unlink(str(py_env["root"] / "etc/iscsi/initiatorname.iscsi"))
    res = run(capsys, portals=["10.213.0.1"], backend="python")
    assert res["failed"] and "InitiatorName" in res["msg"] and argvs(py_env) == [] and py_env["fake"].calls == []


@pytest.mark.parametrize("transport, expected", [("loaded", "iscsiadm"), ("missing", "python")])
def test_auto_follows_the_kernel_transport(capsys, py_env, monkeypatch, transport, expected):
    monkeypatch.setattr(D, "kernel_transport", lambda root, release: transport)
    res = run(capsys, portals=["10.213.0.1"], backend="auto", create_nodes=False)
    assert res["backend"] == expected and res["backend_reason"].startswith("auto: ")
    assert bool(py_env["fake"].calls) == (expected == "python")
    assert any("--discover" in c for c in argvs(py_env)) == (expected == "iscsiadm")
