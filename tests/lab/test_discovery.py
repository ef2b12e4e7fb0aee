# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The discovery module against the lab's real target (tgtd in the target VM) and the initiator's real kernel.

Every test leaves the initiator as it found it: its node and discovery records removed, discovery CHAP off on the
target, the argv-recording iscsiadm wrapper gone.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.lab

HOST = "init1"
WRAPPER = "/usr/local/sbin/iscsiadm"
ARGV_LOG = "/run/lab-iscsiadm-argv.log"


def sh(lab, cmd, check=True):
    return lab.ssh(HOST, cmd, check=check)


def db_snapshot(lab):
    """Every file, link and directory of both node DB roots with its mode and content digest."""
    out = sh(lab, "for d in /etc/iscsi /var/lib/iscsi; do [ -d $d ] && find $d \\( -type f -o -type l -o -type d \\) "
                  "-printf '%p %m %y %l\\n'; done | sort; "
                  "find /etc/iscsi /var/lib/iscsi -type f -exec sha256sum {} + 2>/dev/null | sort").stdout
    return out


def cleanup(lab):
    """The lab targets' node and discovery records gone from the initiator, the argv-recording wrapper removed."""
    lab.forget_targets(HOST, extra="rm -f %s %s" % (WRAPPER, ARGV_LOG))


@pytest.fixture
def clean(lab):
    lab.discovery_chap(False)
    cleanup(lab)
    try:
        yield lab
    finally:
        lab.discovery_chap(False)
        cleanup(lab)


def expected_records(lab, portal_list):
    """What SendTargets at each portal offers: every target, at the portal asked (tgtd answers with that one)."""
    out = []
    for portal in portal_list:
        for iqn in lab.target_iqns():
            out.append({"target": iqn, "portal": portal, "tpgt": 1, "iface": "default"})
    return sorted(out, key=lambda d: (d["target"], d["portal"], d["tpgt"], d["iface"]))


def test_plain_discovery_creates_records_check_mode_predicts_second_run_no_change(clean):
    lab = clean
    both = lab.portals()
    before = db_snapshot(lab)
    pred = lab.module(HOST, "discovery", {"portals": both}, check=True, diff=True)
    assert not pred.get("failed"), pred
    assert db_snapshot(lab) == before, "check mode wrote to the node DB"
    assert pred["changed"] is True
    assert pred["created"] == expected_records(lab, both)

    real = lab.module(HOST, "discovery", {"portals": both}, diff=True)
    assert real["changed"] is True, real
    assert real["created"] == pred["created"] and real["targets"] == pred["targets"]
    # the records are really there, as iscsiadm itself lists them
    listed = sh(lab, "iscsiadm -m node").stdout
    for rec in real["created"]:
        assert "%s,1 %s" % (rec["portal"], rec["target"]) in listed
    assert [p["record_created"] for p in real["portals"]] == [True, True]

    after = db_snapshot(lab)
    again = lab.module(HOST, "discovery", {"portals": both})
    assert again["changed"] is False and again["created"] == [] and again["targets"] == real["targets"]
    assert db_snapshot(lab) == after
    assert lab.module(HOST, "discovery", {"portals": both}, check=True)["changed"] is False


def test_discovery_does_not_reset_a_changed_record(clean):
    lab = clean
    portal = lab.portals()[0]
    iqn = lab.data["targets"]["open"]["iqn"]
    lab.module(HOST, "discovery", {"portals": [portal]})
    sh(lab, "iscsiadm -m node -T %s -p %s -o update -n node.startup -v automatic "
            "-n node.session.timeo.replacement_timeout -v 17" % (iqn, portal))
    record = sh(lab, "iscsiadm -m node -T %s -p %s" % (iqn, portal)).stdout
    assert "node.startup = automatic" in record
    res = lab.module(HOST, "discovery", {"portals": [portal]})
    assert res["changed"] is False
    record_after = sh(lab, "iscsiadm -m node -T %s -p %s" % (iqn, portal)).stdout
    assert record_after == record
    assert "node.session.timeo.replacement_timeout = 17" in record_after


def test_only_targets_keeps_the_asked_targets(clean):
    lab = clean
    portal = lab.portals()[0]
    iqn = lab.data["targets"]["open"]["iqn"]
    others = sorted(t for t in lab.target_iqns() if t != iqn)
    res = lab.module(HOST, "discovery", {"portals": [portal], "only_targets": [iqn.upper()]})
    assert not res.get("failed"), res
    assert [r["target"] for r in res["created"]] == [iqn] and res["filtered_out"] == others
    listed = sh(lab, "iscsiadm -m node").stdout.splitlines()
    assert listed == ["%s,1 %s" % (portal, iqn)], listed
    # the record is a discovered one (iscsiadm -m discoverydb -o delete would remove it)
    assert "node.discovery_type = send_targets" in sh(lab, "iscsiadm -m node -T %s -p %s" % (iqn, portal)).stdout
    sh(lab, "iscsiadm -m node -T %s -p %s -o update -n node.startup -v automatic" % (iqn, portal))
    # a pattern adds the others, the first record keeps its setting
    res = lab.module(HOST, "discovery", {"portals": [portal], "only_targets": ["iqn.*"]})
    assert sorted(r["target"] for r in res["created"]) == others and res["filtered_out"] == []
    assert "node.startup = automatic" in sh(lab, "iscsiadm -m node -T %s -p %s" % (iqn, portal)).stdout


def test_create_nodes_false_only_reports(clean):
    lab = clean
    portal = lab.portals()[0]
    res = lab.module(HOST, "discovery", {"portals": [portal], "create_nodes": False})
    assert res["targets"] == expected_records(lab, [portal]) and res["created"] == []
    assert sh(lab, "iscsiadm -m node", check=False).stdout.strip() == ""


def install_argv_wrapper(lab):
    real = sh(lab, "command -v /usr/sbin/iscsiadm || command -v /sbin/iscsiadm").stdout.strip()
    script = ("#!/bin/sh\n# lab test: record every iscsiadm command line, then run the real one\n"
              "for a in \"$0\" \"$@\"; do printf '%%s\\037' \"$a\"; done >> %s\nprintf '\\n' >> %s\nexec %s \"$@\"\n"
              % (ARGV_LOG, ARGV_LOG, real))
    sh(lab, "cat > %s <<'EOF'\n%sEOF\nchmod 755 %s; : > %s" % (WRAPPER, script, WRAPPER, ARGV_LOG))


def recorded_argv(lab):
    text = sh(lab, "cat %s" % ARGV_LOG).stdout
    return [line.split("\x1f")[:-1] for line in text.splitlines() if line]


def test_discovery_chap_secret_never_on_argv(clean):
    lab = clean
    disc = lab.data["discovery_chap"]["incoming"]
    portal = lab.portals()[0]
    lab.discovery_chap(True)
    install_argv_wrapper(lab)

    refused = lab.module(HOST, "discovery", {"portals": [portal]})
    assert refused.get("failed") and "exit code 24" in refused["msg"]
    assert "requires discovery CHAP" in refused["msg"]

    wrong = lab.module(HOST, "discovery", {"portals": [portal], "auth": {"username": disc["username"],
                                                                         "password": "not-the-secret-1"}})
    assert wrong.get("failed") and "auth.username/auth.password" in wrong["msg"]
    assert "not-the-secret-1" not in wrong["_raw"]

    args = {"portals": [portal], "auth": {"username": disc["username"], "password": disc["password"]}}
    pred = lab.module(HOST, "discovery", args, check=True)
    assert pred["changed"] is True and pred["portals"][0]["auth_changed"] is True
    res = lab.module(HOST, "discovery", args)
    assert res["changed"] is True and res["created"] == expected_records(lab, [portal]), res
    assert disc["password"] not in res["_raw"]
    assert res["portals"][0]["auth"] == {"method": "CHAP", "username": disc["username"], "password": "********"}

    calls = recorded_argv(lab)
    assert calls, "the wrapper recorded nothing: the module did not run iscsiadm through PATH"
    flat = json.dumps(calls)
    assert disc["password"] not in flat and "not-the-secret-1" not in flat
    assert not any(c[1:3] == ["-m", "discovery"] for c in calls), "plain -m discovery resets records"
    assert any(c[1:] == ["-m", "discoverydb", "-t", "st", "-p", portal, "--discover", "-o", "new", "-P", "1"]
               for c in calls), calls
    # stored where iscsiadm reads it, mode 0600, and iscsiadm's own reader sees it (masked)
    st = "%s/send_targets/%s,%s/st_config" % (lab.db_root(HOST), portal.split(":")[0], portal.split(":")[1])
    assert sh(lab, "stat -c %%a %s" % st).stdout.strip() == "600"
    shown = sh(lab, "iscsiadm -m discoverydb -t st -p %s" % portal).stdout
    assert "discovery.sendtargets.auth.authmethod = CHAP" in shown
    assert "discovery.sendtargets.auth.username = %s" % disc["username"] in shown
    assert "discovery.sendtargets.auth.password = ********" in shown

    again = lab.module(HOST, "discovery", args)
    assert again["changed"] is False and again["created"] == []
    assert lab.module(HOST, "discovery", args, check=True)["changed"] is False
    assert disc["password"] not in json.dumps(recorded_argv(lab))
