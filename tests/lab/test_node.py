# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node module on a lab initiator (real kernel, iscsid running) against the lab target (tgtd).

Records made by the module must log in with CHAP and mutual CHAP (login with ``iscsiadm --login`` over SSH, so that
these tests do not depend on the session module); a wrong password fails with exit code 24 and leaves the record's
other settings alone; every task is idempotent and check mode predicts the real run; no CHAP secret ever reaches a
command line (an iscsiadm wrapper first on the guest's PATH records every argv); a record with a live session is
deleted only with force.  Runs on Debian 12 and, with LAB_RELEASE=trixie, Debian 13.

Every test logs out and deletes what it made in a ``finally``.
"""

from __future__ import annotations

import shlex

import pytest

pytestmark = pytest.mark.lab

HOST = "init1"
WRAPPER = "/usr/local/sbin/iscsiadm"
ARGV_LOG = "/root/iscsiadm-argv.log"


def sh(lab, cmd, check=True):
    return lab.ssh(HOST, cmd, check=check)


def portal(lab, index=0):
    p = lab.data["portals"][index]
    return "%s:%d" % (p["address"], p["port"])


def tgt(lab, key):
    return lab.data["targets"][key]


def db_root(lab):
    return "/var/lib/iscsi" if sh(lab, "test -d /var/lib/iscsi/nodes || dpkg --compare-versions "
                                       "$(dpkg-query -W -f='${Version}' open-iscsi) ge 2.1.10-3", check=False
                                  ).returncode == 0 else "/etc/iscsi"


def states(lab):
    """``{targetname: state}`` of the initiator's sessions, from sysfs."""
    out = sh(lab, "for s in /sys/class/iscsi_session/session*; do [ -e $s ] && echo $(cat $s/targetname) "
                  "$(cat $s/state); done; true").stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


def login(lab, iqn, p, check=True):
    return sh(lab, "iscsiadm -m node -T %s -p %s --login" % (shlex.quote(iqn), shlex.quote(p)), check=check)


def cleanup(lab):
    cmds = ["rm -f %s" % WRAPPER]
    for t in lab.data["targets"].values():
        q = shlex.quote(t["iqn"])
        cmds += ["iscsiadm -m node -T %s -u >/dev/null 2>&1" % q, "iscsiadm -m node -T %s -o delete >/dev/null 2>&1" % q]
    sh(lab, "; ".join(cmds) + "; true")


@pytest.fixture
def clean(lab):
    cleanup(lab)
    assert states(lab) == {}, "the initiator has sessions before the test"
    try:
        yield lab
    finally:
        cleanup(lab)


@pytest.fixture
def argv_log(clean):
    """An iscsiadm wrapper first on PATH (/usr/local/sbin) that records every command line it is given."""
    lab = clean
    script = ("#!/bin/sh\nfor a in \"$@\"; do printf '%%s\\n' \"$a\"; done >> %s\necho ---- >> %s\n"
              "exec /usr/sbin/iscsiadm \"$@\"\n" % (ARGV_LOG, ARGV_LOG))
    sh(lab, "rm -f %s" % ARGV_LOG)
    lab.ssh(HOST, "cat > %s && chmod 755 %s" % (WRAPPER, WRAPPER), input=script)
    assert sh(lab, "command -v iscsiadm").stdout.strip() == WRAPPER
    try:
        yield lambda: sh(lab, "cat %s 2>/dev/null; true" % ARGV_LOG).stdout
    finally:
        sh(lab, "rm -f %s %s" % (WRAPPER, ARGV_LOG))


def run_twice_with_check(lab, args):
    """check mode, real run, second run: returns (predicted, real, again)."""
    predicted = lab.module(HOST, "node", args, check=True, diff=True)
    real = lab.module(HOST, "node", args, diff=True)
    again = lab.module(HOST, "node", args)
    assert not predicted.get("failed") and not real.get("failed"), (predicted, real)
    for key in ("changed", "records", "summary", "diff"):
        assert predicted[key] == real[key], key
    assert again["changed"] is False and again["commands"] == 0, again
    return predicted, real, again


@pytest.fixture
def lab_and_log(clean, argv_log):
    return clean, argv_log


def test_records_with_chap_and_mutual_chap_log_in(lab_and_log):
    lab, read_log = lab_and_log
    p = portal(lab)
    chap, mutual = tgt(lab, "chap"), tgt(lab, "mutual")
    inc = chap["auth"]["incoming"]
    m_in, m_out = mutual["auth"]["incoming"], mutual["auth"]["outgoing"]
    args = {"nodes": [
        {"target": chap["iqn"], "portal": p, "auth": {"username": inc["username"], "password": inc["password"]}},
        {"target": mutual["iqn"], "portal": p, "auth": {
            "username": m_in["username"], "password": m_in["password"],
            "username_in": m_out["username"], "password_in": m_out["password"]}},
    ], "startup": "automatic"}
    predicted, real, _again = run_twice_with_check(lab, args)
    assert real["summary"]["create"] == 2 and real["db_root"] == db_root(lab)
    secrets = (inc["password"], m_in["password"], m_out["password"])
    for secret in secrets:
        assert secret not in str(predicted) and secret not in str(real)
    logged = read_log()
    assert "-o\nnew" in logged  # the wrapper did see the module's commands
    for secret in secrets:
        assert secret not in logged, "a CHAP secret reached iscsiadm's command line"

    login(lab, chap["iqn"], p)
    login(lab, mutual["iqn"], p)
    assert states(lab) == {chap["iqn"]: "LOGGED_IN", mutual["iqn"]: "LOGGED_IN"}
    # iscsiadm's own view of a record made by the module
    shown = sh(lab, "iscsiadm -m node -T %s -p %s" % (mutual["iqn"], p)).stdout
    assert "node.startup = automatic" in shown and "node.session.auth.username_in = %s" % m_out["username"] in shown
    assert m_out["password"] not in shown  # masked by iscsiadm without -S


def test_wrong_password_fails_and_record_is_kept_then_fixed(clean):
    lab = clean
    p = portal(lab)
    chap = tgt(lab, "chap")
    inc = chap["auth"]["incoming"]
    args = {"target": chap["iqn"], "portal": p, "startup": "automatic",
            "settings": {"node.session.timeo.replacement_timeout": 23},
            "auth": {"username": inc["username"], "password": "definitely-wrong-1"}}
    assert lab.module(HOST, "node", args)["changed"]
    before = sh(lab, "iscsiadm -m node -T %s -p %s" % (chap["iqn"], p)).stdout
    res = login(lab, chap["iqn"], p, check=False)
    assert res.returncode == 24, (res.returncode, res.stderr)
    assert states(lab) == {}
    assert sh(lab, "iscsiadm -m node -T %s -p %s" % (chap["iqn"], p)).stdout == before

    args["auth"]["password"] = inc["password"]
    predicted, real, _again = run_twice_with_check(lab, args)
    assert real["records"][0]["keys"] == ["node.session.auth.password"]
    after = sh(lab, "iscsiadm -m node -T %s -p %s" % (chap["iqn"], p)).stdout
    assert after == before  # only the (masked) secret changed
    login(lab, chap["iqn"], p)
    assert states(lab) == {chap["iqn"]: "LOGGED_IN"}


def test_two_portals_and_ipv4_ipv6_spelling_idempotent(clean):
    lab = clean
    t = tgt(lab, "open")
    args = {"nodes": [{"target": t["iqn"], "portal": portal(lab, 0), "tpgt": 1},
                      {"target": t["iqn"], "portal": portal(lab, 1), "tpgt": 1}],
            "startup": "automatic", "conn_startup": "automatic",
            "settings": {"node.session.timeo.replacement_timeout": 10}}
    _p, real, _a = run_twice_with_check(lab, args)
    assert real["summary"]["create"] == 2
    listing = sh(lab, "iscsiadm -m node").stdout
    assert "%s,1 %s" % (portal(lab, 0), t["iqn"]) in listing and "%s,1 %s" % (portal(lab, 1), t["iqn"]) in listing
    sh(lab, "iscsiadm -m node -T %s --login" % t["iqn"])
    assert sh(lab, "ls /sys/class/iscsi_session | wc -l").stdout.strip() == "2"


def test_delete_refused_while_live_then_forced(clean):
    lab = clean
    p = portal(lab)
    t = tgt(lab, "open")
    assert lab.module(HOST, "node", {"target": t["iqn"], "portal": p})["changed"]
    login(lab, t["iqn"], p)
    res = lab.module(HOST, "node", {"target": t["iqn"], "portal": p, "state": "absent"})
    assert res["failed"] and "session of it is live" in res["msg"], res
    assert states(lab) == {t["iqn"]: "LOGGED_IN"}
    pred = lab.module(HOST, "node", {"target": t["iqn"], "portal": p, "state": "absent", "force": True}, check=True)
    assert pred["changed"] and states(lab) == {t["iqn"]: "LOGGED_IN"}
    res = lab.module(HOST, "node", {"target": t["iqn"], "portal": p, "state": "absent", "force": True})
    assert res["changed"] and res["records"][0]["action"] == "delete", res
    assert states(lab) == {}
    assert sh(lab, "iscsiadm -m node -T %s" % t["iqn"], check=False).returncode == 21
