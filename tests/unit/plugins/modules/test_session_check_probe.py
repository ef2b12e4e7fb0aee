# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""session_check probe=true: the decisions (which records, which credentials, what makes the host unhealthy, that
no secret leaves the module) on a captured Debian 12 tree, with the network half stubbed at
_iscsi_probe.run_request.  tests/integration/iscsi/test_session_check_probe.py runs the same path against tgtd."""

from __future__ import annotations

import os
import sys

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _iscsi_probe as IP
from ansible_collections.openiscsi.initiator.plugins.modules import session_check
from harness import run_module

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures"))
import fixturetree  # noqa: E402  pylint: disable=wrong-import-position

OPEN = "iqn.2025-01.lab.openiscsi:tgt-open"
CHAP = "iqn.2025-01.lab.openiscsi:tgt-chap"
ACL = "iqn.2025-01.lab.openiscsi:tgt-acl"
MUTUAL = "iqn.2025-01.lab.openiscsi:tgt-mutual"
CHAP_SECRET = "labchap-secret1"  # what the captured records hold (tests/fixtures/bookworm-logged-in)
MUTUAL_SECRET = "mutual-in-Secret-42"


def tree(tmp_path):
    root = fixturetree.materialize("bookworm-logged-in", tmp_path)
    # give the mutual record mutual CHAP settings (the captured one has none)
    path = os.path.join(root, "etc/iscsi/nodes", MUTUAL, "10.213.0.1,3260,1", "default")
    with open(path) as handle:
        text = handle.read()
    text = text.replace("node.session.auth.authmethod = None\n",
                        "node.session.auth.authmethod = CHAP\nnode.session.auth.username = labmutual\n"
                        "node.session.auth.password = mutual-out-Secret-7\nnode.session.auth.username_in = labtarget"
                        "\nnode.session.auth.password_in = %s\n" % MUTUAL_SECRET)
    with open(path, "w") as handle:
        handle.write(text)
    return root


def snapshot(root):
    out = {}
    for base, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(base, name)
            out[path] = os.readlink(path) if os.path.islink(path) else open(path, "rb").read()
    return out


class FakeNetwork:
    """Stands in for the network half: records each request; ``refuse`` maps (target, portal) to an error."""

    def __init__(self, refuse=None):
        self.calls = []
        self.refuse = refuse or {}

    def __call__(self, request, initiator_name, **kw):
        self.calls.append((request, initiator_name, kw))
        key = (request["target"], request["portal"])
        error = self.refuse.get(key)
        chap = request["chap"]
        result = {"reachable": True, "authenticated": error is None, "logged_out": error is None,
                  "auth_method": "CHAP" if chap else "None", "chap_algorithm": "MD5" if chap else None,
                  "mutual_chap": bool(chap and chap.mutual), "target_portal_group_tag": 1, "redirects": [],
                  "luns": [] if error else [{"lun": 1, "device_type": "disk", "size_bytes": 33554432}],
                  "error": error, "elapsed_ms": 1.0}
        result.update({"target": request["target"], "portal": request["portal"], "tpgt": request.get("tpgt"),
                       "ifaces": request["ifaces"], "source": request["source"]})
        return result


def run(capsys, monkeypatch, root, net, **args):
    monkeypatch.setattr(session_check, "ROOT", str(root))
    monkeypatch.setattr(IP, "run_request", net)
    return run_module(capsys, session_check, args, diff=False)


def test_probe_every_record_with_its_stored_credentials(capsys, monkeypatch, tmp_path):
    root = tree(tmp_path)
    before = snapshot(root)
    net = FakeNetwork()
    res = run(capsys, monkeypatch, root, net, probe=True, probe_timeout=2)
    assert res["_rc"] == 0 and res["healthy"] is True and res["changed"] is False
    probed = sorted((r["target"], r["portal"]) for r, _n, _kw in net.calls)
    assert probed == sorted([(ACL, "10.213.0.1:3260"), (CHAP, "10.213.0.1:3260"), (CHAP, "10.213.0.2:3260"),
                             (MUTUAL, "10.213.0.1:3260"), (OPEN, "10.213.0.1:3260"), (OPEN, "[fd00:213::1]:3260")])
    by = dict(((r["target"], r["portal"]), r) for r, _n, _kw in net.calls)
    chap = by[(CHAP, "10.213.0.1:3260")]["chap"]
    # the secret the login uses is the one in the record file, byte for byte
    assert chap.username == "labchap" and chap._password == CHAP_SECRET.encode()  # pylint: disable=protected-access
    mutual = by[(MUTUAL, "10.213.0.1:3260")]["chap"]
    assert mutual.mutual and mutual._password_in == MUTUAL_SECRET.encode()  # pylint: disable=protected-access
    assert by[(OPEN, "10.213.0.1:3260")]["chap"] is None
    assert set(n for _r, n, _kw in net.calls) == {"iqn.1993-08.org.debian:01:51daaf1dc457"}  # the host's name
    assert res["probe_summary"]["initiator_name"] == "iqn.1993-08.org.debian:01:51daaf1dc457"
    assert all(kw["timeout"] == 2 and kw["total_timeout"] == 12 for _r, _n, kw in net.calls)
    assert res["probe_summary"]["total"] == 6 and res["probe_summary"]["failed"] == 0
    assert len(res["probes"]) == 6 and "probe: 6 of 6 target portals accepted the login" in res["summary"]
    assert CHAP_SECRET not in res["_raw"] and MUTUAL_SECRET not in res["_raw"]
    assert snapshot(root) == before  # the node DB and sysfs tree are only read


def test_a_refused_login_makes_the_host_unhealthy_and_names_the_portal(capsys, monkeypatch, tmp_path):
    root = tree(tmp_path)
    error = {"message": "login to %s failed with status 0x0201 (authentication failure): wrong CHAP secret" % CHAP,
             "kind": "login", "retryable": False, "status": "0201"}
    net = FakeNetwork(refuse={(CHAP, "10.213.0.2:3260"): error})
    res = run(capsys, monkeypatch, root, net, probe=True)
    assert res["_rc"] == 1 and res["failed"] is True and res["healthy"] is False
    probe_problems = [p for p in res["problems"] if p["kind"] == "probe"]
    assert [(p["target"], p["portal"]) for p in probe_problems] == [(CHAP, "10.213.0.2:3260")]
    assert "probe %s via 10.213.0.2:3260: login to %s failed with status 0x0201" % (CHAP, CHAP) in res["msg"]
    assert res["probe_summary"]["failed"] == 1 and res["probe_summary"]["authenticated"] == 5
    # report only
    again = run(capsys, monkeypatch, root, net, probe=True, fail_on_unhealthy=False)
    assert again["_rc"] == 0 and "failed" not in again and again["healthy"] is False


def test_a_secret_in_an_error_message_is_masked(capsys, monkeypatch, tmp_path):
    root = tree(tmp_path)
    leaky = {"message": "target said: %s" % CHAP_SECRET, "kind": "login", "retryable": False}
    net = FakeNetwork(refuse={(CHAP, "10.213.0.1:3260"): leaky})
    res = run(capsys, monkeypatch, root, net, probe=True, fail_on_unhealthy=False)
    assert CHAP_SECRET not in res["_raw"] and "target said: ********" in res["_raw"]


def test_probe_targets_and_portals_select_records(capsys, monkeypatch, tmp_path):
    root = tree(tmp_path)
    net = FakeNetwork()
    res = run(capsys, monkeypatch, root, net, probe=True, probe_targets=[OPEN])
    assert sorted(p["portal"] for p in res["probes"]) == ["10.213.0.1:3260", "[fd00:213::1]:3260"]
    net = FakeNetwork()
    res = run(capsys, monkeypatch, root, net, probe=True, probe_portals=["[FD00:213:0::1]"])
    assert [(p["target"], p["portal"]) for p in res["probes"]] == [(OPEN, "[fd00:213::1]:3260")]
    net = FakeNetwork()
    res = run(capsys, monkeypatch, root, net, probe=True, probe_targets=[CHAP], probe_portals=["10.213.0.2:3260"])
    assert [(p["target"], p["portal"]) for p in res["probes"]] == [(CHAP, "10.213.0.2:3260")]
    nothing = run(capsys, monkeypatch, root, FakeNetwork(), probe=True, probe_targets=["iqn.2025-01.example:none"])
    assert nothing["_rc"] == 1 and "no node record matches probe_targets/probe_portals" in nothing["msg"]


def test_without_probe_nothing_is_probed(capsys, monkeypatch, tmp_path):
    root = tree(tmp_path)
    net = FakeNetwork()
    res = run(capsys, monkeypatch, root, net)
    assert res["_rc"] == 0 and net.calls == [] and "probes" not in res and "probe_summary" not in res


def test_no_initiator_name_is_a_problem(capsys, monkeypatch, tmp_path):
    root = tree(tmp_path)
    os.unlink(os.path.join(root, "etc/iscsi/initiatorname.iscsi"))
    net = FakeNetwork()
    res = run(capsys, monkeypatch, root, net, probe=True)
    assert res["_rc"] == 1 and net.calls == [] and "holds no valid InitiatorName" in res["msg"]


@pytest.mark.parametrize("args, needle", [
    ({"probe_timeout": 0}, "probe_timeout"),
    ({"probe_targets": ["not a name"]}, "probe_targets[0]"),
    ({"probe_portals": ["10.0.0.1:99999"]}, "probe_portals[0]"),
])
def test_bad_probe_options_fail_before_any_probe(capsys, monkeypatch, tmp_path, args, needle):
    root = tree(tmp_path)
    net = FakeNetwork()
    res = run(capsys, monkeypatch, root, net, probe=True, **args)
    assert res["_rc"] == 1 and needle in res["msg"] and net.calls == []
