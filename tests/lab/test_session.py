# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The session module on the lab initiator's real kernel against the lab target (tgtd): logins with and without
(mutual) CHAP, the clear failures (wrong password, ACL), two portals, devices, logout refusal while mounted, rescan.

Every test logs out, unmounts and deletes what it made in a ``finally``.
"""

from __future__ import annotations

import json
import shlex

import pytest

pytestmark = pytest.mark.lab

HOST = "init1"
MNT = "/mnt/lab-session-test"
IFACE = "labintruder"
INTRUDER = "iqn.2025-01.lab.openiscsi:intruder"


def sh(lab, cmd, check=True):
    return lab.ssh(HOST, cmd, check=check)


def sysfs_sessions(lab):
    """``{sid: (targetname, state, persistent_address)}`` straight from the initiator's sysfs."""
    out = sh(lab, "for s in /sys/class/iscsi_session/session*; do [ -e $s ] || continue; "
                  "c=$(ls -d $s/device/connection*/iscsi_connection/connection* | head -1); "
                  "echo ${s##*session} $(cat $s/targetname) $(cat $s/state) $(cat $c/persistent_address); done").stdout
    result = {}
    for line in out.splitlines():
        sid, name, state, addr = line.split()
        result[int(sid)] = (name, state, addr)
    return result


def cleanup(lab):
    sh(lab, "umount -l %s 2>/dev/null; rmdir %s 2>/dev/null; true" % (MNT, MNT))
    lab.forget_targets(HOST, extra="iscsiadm -m iface -I %s -o delete >/dev/null 2>&1; rm -f /etc/iscsi/ifaces/%s "
                                   "/var/lib/iscsi/ifaces/%s" % (IFACE, IFACE, IFACE))


@pytest.fixture
def clean(lab):
    cleanup(lab)
    assert sysfs_sessions(lab) == {}, "the initiator has sessions before the test"
    try:
        yield lab
    finally:
        cleanup(lab)


def make_records(lab, key, portal_list, auth=None):
    """Node records made with the collection's node module (secrets never on argv)."""
    nodes = [{"target": lab.target(key)["iqn"], "portal": p} for p in portal_list]
    args = {"nodes": nodes}
    if auth:
        args["auth"] = auth
    res = lab.module(HOST, "node", args)
    assert not res.get("failed"), res
    return nodes


def record_text(lab, iqn, portal):
    return sh(lab, "iscsiadm -m node -T %s -p %s" % (shlex.quote(iqn), portal)).stdout


def test_two_portals_give_two_sessions_with_devices_idempotent_check_mode_predicts(clean):
    lab = clean
    t = lab.target("open")
    both = lab.portals()
    make_records(lab, "open", both)

    pred = lab.module(HOST, "session", {"target": t["iqn"]}, check=True)
    assert pred["changed"] is True and sysfs_sessions(lab) == {}
    assert [r["portal"] for r in pred["logged_in"]] == both

    # a generous wait: on a loaded 2-core machine udev may need well over the default 30 s for the by-path links
    res = lab.module(HOST, "session", {"target": t["iqn"], "timeout": 180})
    assert res["changed"] is True and res["logged_in"] == pred["logged_in"], res
    live = sysfs_sessions(lab)
    assert sorted(v[2] for v in live.values()) == sorted(p["address"] for p in lab.data["portals"])
    assert all(v[0] == t["iqn"] and v[1] == "LOGGED_IN" for v in live.values())
    assert sorted(s["sid"] for s in res["sessions"]) == sorted(live)
    # every LUN of the target, through both sessions, with /dev/sdX and by-path links that exist
    assert len(res["devices"]) == 2 * len(t["luns"])
    for dev in res["devices"]:
        assert dev["by_path"], (dev, res.get("warnings"))
        resolved = sh(lab, "readlink -f %s" % dev["by_path"][0]).stdout.strip()
        assert resolved == dev["device"]
        size = int(sh(lab, "blockdev --getsize64 %s" % dev["device"]).stdout)
        assert size == [lun["size"] for lun in t["luns"] if lun["lun"] == dev["lun"]][0]

    again = lab.module(HOST, "session", {"target": t["iqn"]})
    assert again["changed"] is False and again["devices"] == res["devices"]
    assert lab.module(HOST, "session", {"target": t["iqn"]}, check=True)["changed"] is False
    assert sysfs_sessions(lab) == live

    # logout of one portal only, predicted first
    one = both[1]
    pred_out = lab.module(HOST, "session", {"target": t["iqn"], "portal": one, "state": "logged_out"}, check=True)
    assert pred_out["changed"] is True and sysfs_sessions(lab) == live
    out = lab.module(HOST, "session", {"target": t["iqn"], "portal": one, "state": "logged_out"})
    assert out["changed"] is True and out["logged_out"] == pred_out["logged_out"]
    left = sysfs_sessions(lab)
    assert [v[2] for v in left.values()] == [lab.data["portals"][0]["address"]]
    assert lab.module(HOST, "session", {"target": t["iqn"], "portal": one, "state": "logged_out"})["changed"] is False
    lab.module(HOST, "session", {"target": t["iqn"], "state": "logged_out"})
    assert sysfs_sessions(lab) == {}


def test_chap_and_mutual_chap_log_in(clean):
    lab = clean
    portal = lab.portals()[0]
    chap = lab.target("chap")
    inc = chap["auth"]["incoming"]
    make_records(lab, "chap", [portal], auth={"method": "CHAP", "username": inc["username"],
                                              "password": inc["password"]})
    res = lab.module(HOST, "session", {"target": chap["iqn"], "portal": portal})
    assert res["changed"] is True and res["sessions"][0]["state"] == "LOGGED_IN", res
    assert len(res["devices"]) == len(chap["luns"])

    mutual = lab.target("mutual")
    m_in, m_out = mutual["auth"]["incoming"], mutual["auth"]["outgoing"]
    make_records(lab, "mutual", [portal], auth={"method": "CHAP", "username": m_in["username"],
                                                "password": m_in["password"], "username_in": m_out["username"],
                                                "password_in": m_out["password"]})
    res = lab.module(HOST, "session", {"target": mutual["iqn"], "portal": portal})
    assert res["changed"] is True and res["sessions"][0]["state"] == "LOGGED_IN", res
    names = sorted(v[0] for v in sysfs_sessions(lab).values())
    assert names == sorted([chap["iqn"], mutual["iqn"]])
    for secret in (inc["password"], m_in["password"], m_out["password"]):
        assert secret not in res["_raw"]


def test_wrong_password_fails_clearly_and_leaves_the_record(clean):
    lab = clean
    portal = lab.portals()[0]
    chap = lab.target("chap")
    inc = chap["auth"]["incoming"]
    make_records(lab, "chap", [portal], auth={"method": "CHAP", "username": inc["username"],
                                              "password": "definitely-wrong-1"})
    sh(lab, "iscsiadm -m node -T %s -p %s -o update -n node.session.timeo.replacement_timeout -v 23"
       % (chap["iqn"], portal))
    before = record_text(lab, chap["iqn"], portal)
    pred = lab.module(HOST, "session", {"target": chap["iqn"], "portal": portal}, check=True)
    assert pred["changed"] is True
    res = lab.module(HOST, "session", {"target": chap["iqn"], "portal": portal})
    assert res.get("failed"), res
    msg = res["msg"]
    assert "authentication failed" in msg and "exit code 24" in msg
    assert "node.session.auth.authmethod=CHAP" in msg and "node.session.auth.username=%s" % inc["username"] in msg
    assert "node.session.auth.password set" in msg
    assert "definitely-wrong-1" not in res["_raw"]
    assert record_text(lab, chap["iqn"], portal) == before
    assert "node.session.timeo.replacement_timeout = 23" in before
    assert sysfs_sessions(lab) == {}


def test_acl_denied_login_fails_clearly(clean):
    lab = clean
    portal = lab.portals()[0]
    acl = lab.target("acl")
    # a second iface with another initiator name: the target's ACL admits only init1's own name
    sh(lab, "iscsiadm -m iface -I %s -o new && iscsiadm -m iface -I %s -o update -n iface.initiatorname -v %s"
       % (IFACE, IFACE, INTRUDER))
    res = lab.module(HOST, "node", {"target": acl["iqn"], "portal": portal, "iface": IFACE, "tpgt": 1})
    assert not res.get("failed"), res
    res = lab.module(HOST, "session", {"target": acl["iqn"], "portal": portal, "iface": IFACE})
    assert res.get("failed"), res
    assert "ACL" in res["msg"] and INTRUDER in res["msg"] and "exit code 19" in res["msg"], res["msg"]
    assert sysfs_sessions(lab) == {}
    # the same target through the default iface (init1's real name) is admitted
    res = lab.module(HOST, "node", {"target": acl["iqn"], "portal": portal, "iface": "default", "tpgt": 1})
    assert not res.get("failed"), res
    ok = lab.module(HOST, "session", {"target": acl["iqn"], "portal": portal, "iface": "default"})
    assert ok["changed"] is True and ok["sessions"][0]["iface"] == "default"


def test_logout_refused_while_mounted(clean):
    lab = clean
    portal = lab.portals()[0]
    t = lab.target("open")
    make_records(lab, "open", [portal])
    res = lab.module(HOST, "session", {"target": t["iqn"], "portal": portal, "timeout": 180})
    dev = [d for d in res["devices"] if d["lun"] == 1][0]
    sh(lab, "mkfs.ext4 -q -F %s && mkdir -p %s && mount %s %s && echo hello > %s/file && sync"
       % (dev["by_path"][0], MNT, dev["by_path"][0], MNT, MNT))
    args = {"target": t["iqn"], "portal": portal, "state": "logged_out"}
    for check in (True, False):
        refused = lab.module(HOST, "session", args, check=check)
        assert refused.get("failed"), refused
        assert "%s mounted on %s (ext4)" % (dev["device"], MNT) in refused["msg"] and "force" in refused["msg"]
    assert [v[1] for v in sysfs_sessions(lab).values()] == ["LOGGED_IN"]
    assert sh(lab, "cat %s/file" % MNT).stdout.strip() == "hello"

    sh(lab, "umount %s" % MNT)
    out = lab.module(HOST, "session", args)
    assert out["changed"] is True and sysfs_sessions(lab) == {}

    # force: log out although mounted (the file system is then lost to I/O errors: unmounted lazily afterwards)
    dev = [d for d in lab.module(HOST, "session", {"target": t["iqn"], "portal": portal, "timeout": 180})["devices"]
           if d["lun"] == 1][0]
    sh(lab, "mount %s %s" % (dev["by_path"][0], MNT))
    forced = lab.module(HOST, "session", dict(args, force=True))
    assert forced["changed"] is True and not forced.get("failed"), forced
    assert any("force" in w for w in forced.get("warnings", [])) or "force" in forced["_raw"]
    assert sysfs_sessions(lab) == {}


def test_rescan_finds_a_new_lun(clean):
    lab = clean
    portal = lab.portals()[0]
    t = lab.target("open")
    tid = t["tid"]
    new_lun = max(lun["lun"] for lun in t["luns"]) + 1
    backing = "/var/lib/lab-luns/session-rescan-lun%d.img" % new_lun
    make_records(lab, "open", [portal])
    lab.module(HOST, "session", {"target": t["iqn"], "portal": portal})
    try:
        lab.ssh("target", "truncate -s 16M %s && tgtadm --lld iscsi --mode logicalunit --op new --tid %d --lun %d "
                          "--backing-store %s" % (backing, tid, new_lun, backing))
        pred = lab.module(HOST, "session", {"target": t["iqn"], "portal": portal, "rescan": True}, check=True)
        assert pred["changed"] is False and pred["new_devices"] == []
        assert len(pred["devices"]) == len(t["luns"])
        res = lab.module(HOST, "session", {"target": t["iqn"], "portal": portal, "rescan": True})
        assert res["changed"] is True, res
        assert [d["lun"] for d in res["new_devices"]] == [new_lun]
        assert int(sh(lab, "blockdev --getsize64 %s" % res["new_devices"][0]["device"]).stdout) == 16 << 20
        again = lab.module(HOST, "session", {"target": t["iqn"], "portal": portal, "rescan": True})
        assert again["changed"] is False and again["new_devices"] == []
    finally:
        cleanup(lab)
        lab.ssh("target", "tgtadm --lld iscsi --mode logicalunit --op delete --tid %d --lun %d; rm -f %s"
                % (tid, new_lun, backing), check=False)


def test_no_record_and_bad_input_fail_clearly(clean):
    lab = clean
    t = lab.target("open")
    res = lab.module(HOST, "session", {"target": t["iqn"], "portal": lab.portals()[0]})
    assert res.get("failed") and "no node record" in res["msg"]
    res = lab.module(HOST, "session", {"target": t["iqn"], "portal": "10.213.0.1:65536"})
    assert res.get("failed") and "portal" in res["msg"]
    assert sysfs_sessions(lab) == {}
    assert json.loads(json.dumps(res))  # plain JSON result
