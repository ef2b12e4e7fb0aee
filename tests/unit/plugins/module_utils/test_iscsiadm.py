# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsiadm import (
    EXIT_CODES, Iscsiadm, IscsiadmError, SecretOnCommandLine, describe, parse_show_records)

DATA = os.path.join(os.path.dirname(__file__), "data", "open-iscsi-2.1.8")


class FakeModule:
    def __init__(self, results=None):
        self.results = list(results or [])
        self.commands = []

    def get_bin_path(self, name, required=False):
        return "/usr/sbin/" + name

    def run_command(self, cmd, environ_update=None):
        self.commands.append((cmd, environ_update))
        return self.results.pop(0) if self.results else (0, "", "")


def test_table_covers_iscsi_err_h():
    # open-iscsi 2.1.8 include/iscsi_err.h defines 0..33
    assert sorted(EXIT_CODES) == list(range(0, 34))


@pytest.mark.parametrize("rc, words", [
    (6, ["node database error", "/run/lock/iscsi"]),
    (15, ["session exists", "log it out"]),
    (21, ["no records", "openiscsi.initiator.node"]),
    (32, ["not connected", "network path"]),
    (12, ["iscsi_tcp"]),
    (20, ["could not connect to iscsid", "systemctl"]),
    (99, ["exit code 99", "UNKNOWN"]),
])
def test_describe(rc, words):
    msg = describe(rc, "iscsiadm: some detail\n", context="doing X")
    assert msg.startswith("doing X: iscsiadm failed with exit code %d" % rc)
    assert "iscsiadm said: iscsiadm: some detail" in msg
    for word in words:
        assert word in msg


def test_describe_24_names_chap_fields():
    msg = describe(24, "", context="login", record={"username": "alice"})
    assert "node.session.auth.username" in msg and "node.session.auth.password" in msg
    assert "alice" in msg
    assert "username_in" not in msg
    mutual = describe(24, "", record={"username": "alice", "username_in": "tgt"})
    assert "node.session.auth.username_in" in mutual and "node.session.auth.password_in" in mutual
    disc = describe(24, "", discovery=True)
    assert "discovery.sendtargets.auth.username" in disc


def test_describe_masks_secrets_in_stderr():
    msg = describe(7, "bad value s3cr3t-pass for key\n", secrets=["s3cr3t-pass"])
    assert "s3cr3t-pass" not in msg
    assert "********" in msg


def test_run_sets_lang_and_raises():
    mod = FakeModule([(0, "out", ""), (21, "", "iscsiadm: No records found\n")])
    adm = Iscsiadm(mod)
    assert adm.run(["-m", "node"]) == (0, "out", "")
    cmd, env = mod.commands[0]
    assert cmd == ["/usr/sbin/iscsiadm", "-m", "node"]
    assert env == {"LANG": "C", "LC_ALL": "C"}
    with pytest.raises(IscsiadmError) as err:
        adm.run(["-m", "node", "-T", "x"], context="reading x")
    assert err.value.rc == 21
    assert "reading x" in err.value.message and "No records found" in err.value.message
    assert len(adm.calls) == 2


def test_secret_never_reaches_run_command():
    mod = FakeModule()
    adm = Iscsiadm(mod)
    adm.add_secret("Pa55word-xyz")
    with pytest.raises(SecretOnCommandLine):
        adm.node_update("iqn.2001-04.com.example:a", "10.0.0.1:3260", "default", None,
                        [("node.session.auth.password", "Pa55word-xyz")])
    with pytest.raises(SecretOnCommandLine):
        adm.run(["-v", "xxPa55word-xyzxx"])
    assert mod.commands == []


def test_node_update_batches_pairs_in_one_call():
    mod = FakeModule()
    adm = Iscsiadm(mod)
    adm.node_update("iqn.2001-04.com.example:a", "[2001:db8::1]:3260", "eth1", 1,
                    [("node.startup", "automatic"), ("node.session.auth.username", "bob")])
    assert len(mod.commands) == 1
    assert mod.commands[0][0] == ["/usr/sbin/iscsiadm", "-m", "node", "-T", "iqn.2001-04.com.example:a",
                                  "-p", "[2001:db8::1]:3260,1", "-I", "eth1", "-o", "update",
                                  "-n", "node.startup", "-v", "automatic",
                                  "-n", "node.session.auth.username", "-v", "bob"]
    adm.node_delete("iqn.2001-04.com.example:a", "10.0.0.1:3260", "default", -1)
    assert mod.commands[1][0][-5:] == ["10.0.0.1:3260", "-I", "default", "-o", "delete"]


def test_parse_show_records_real_output():
    with open(os.path.join(DATA, "node-show.txt")) as handle:
        text = handle.read()
    recs = parse_show_records(text + text)
    assert len(recs) == 2
    rec = recs[0]
    assert rec["node.name"] == "iqn.2001-04.com.example:disk1"
    assert rec["node.conn[0].address"] == "192.0.2.10"
    assert rec["node.session.auth.username"] == ""
    assert rec["node.tpgt"] == "-1"
