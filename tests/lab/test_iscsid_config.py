# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""iscsid_config on a lab initiator: the defaults it writes are the ones open-iscsi uses.

CHAP defaults set in iscsid.conf (secret via ``secrets``, no_log) reach a record created afterwards WITHOUT any auth
of its own, and that record logs in to the CHAP target; the file is 0600, the diff masks the secret, check mode
predicts the run, the second run changes nothing; a daemon key reports restart_needed and iscsid restarts cleanly.
The original iscsid.conf is restored in a ``finally``.
"""

from __future__ import annotations

import shlex

import pytest

pytestmark = pytest.mark.lab

HOST = "init1"
CONF = "/etc/iscsi/iscsid.conf"
SAVED = "/root/iscsid.conf.labtest"


def sh(lab, cmd, check=True):
    return lab.ssh(HOST, cmd, check=check)


@pytest.fixture
def saved_conf(lab):
    t = lab.data["targets"]["chap"]
    sh(lab, "cp -p %s %s" % (CONF, SAVED))
    try:
        yield lab
    finally:
        q = shlex.quote(t["iqn"])
        sh(lab, "iscsiadm -m node -T %s -u >/dev/null 2>&1; iscsiadm -m node -T %s -o delete >/dev/null 2>&1; "
                "cp -p %s %s && rm -f %s && systemctl restart iscsid; true" % (q, q, SAVED, CONF, SAVED))


def test_chap_defaults_reach_new_records_and_log_in(saved_conf):
    lab = saved_conf
    t = lab.data["targets"]["chap"]
    acc = t["auth"]["incoming"]
    p = "%s:%d" % (lab.data["portals"][0]["address"], lab.data["portals"][0]["port"])
    args = {"settings": {"node.session.auth.authmethod": "CHAP", "node.session.auth.username": acc["username"],
                         "node.session.auth.chap_algs": ["MD5"], "node.startup": "automatic"},
            "secrets": {"node.session.auth.password": acc["password"]}}
    predicted = lab.module(HOST, "iscsid_config", args, check=True, diff=True)
    assert sh(lab, "cmp -s %s %s" % (CONF, SAVED), check=False).returncode == 0  # check mode wrote nothing
    real = lab.module(HOST, "iscsid_config", args, diff=True)
    for key in ("changed", "changes", "restart_needed", "diff"):
        assert predicted[key] == real[key], key
    assert real["changed"] and real["restart_needed"] is False
    assert acc["password"] not in str(real) and "node.session.auth.password = ********" in real["diff"]["after"]
    assert sh(lab, "stat -c %a " + CONF).stdout.strip() == "600"
    # the commented default lines took the values; everything else is as shipped
    diff = sh(lab, "diff %s %s" % (SAVED, CONF), check=False).stdout
    removed = [line[2:] for line in diff.splitlines() if line.startswith("< ")]
    assert sorted(removed) == sorted(["node.startup = manual", "#node.session.auth.authmethod = CHAP",
                                      "#node.session.auth.chap_algs = SHA3-256,SHA256,SHA1,MD5",
                                      "#node.session.auth.username = username",
                                      "#node.session.auth.password = password"]), diff
    again = lab.module(HOST, "iscsid_config", args)
    assert again["changed"] is False

    # a record created now (no auth given) carries the defaults, and logs in with them
    res = lab.module(HOST, "node", {"target": t["iqn"], "portal": p})
    assert res["changed"], res
    shown = sh(lab, "iscsiadm -m node -T %s -p %s" % (t["iqn"], p)).stdout
    assert "node.session.auth.username = %s" % acc["username"] in shown
    assert "node.session.auth.chap_algs = MD5" in shown and "node.startup = automatic" in shown
    sh(lab, "iscsiadm -m node -T %s -p %s --login" % (t["iqn"], p))
    state = sh(lab, "cat /sys/class/iscsi_session/session*/state").stdout.split()
    assert state == ["LOGGED_IN"]


def test_daemon_key_needs_restart_and_iscsid_restarts(saved_conf):
    lab = saved_conf
    res = lab.module(HOST, "iscsid_config", {"settings": {"iscsid.safe_logout": True}})
    assert res["changed"] and res["restart_needed"] is True
    assert "iscsid.safe_logout = Yes" in sh(lab, "grep -n '^iscsid.safe_logout' %s" % CONF).stdout
    sh(lab, "systemctl restart iscsid && systemctl is-active iscsid")
    bad = lab.module(HOST, "iscsid_config", {"settings": {"iscsid.safe_logot": True}})
    assert bad["failed"] and "'iscsid.safe_logout'" in bad["msg"]
    assert lab.module(HOST, "iscsid_config", {"settings": ["iscsid.safe_logout"], "state": "absent"})["changed"]
    assert sh(lab, "grep -c '^iscsid.safe_logout' %s" % CONF, check=False).stdout.strip() == "0"
