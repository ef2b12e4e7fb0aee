# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests that prove the lab itself: real kernel logins, CHAP, ACL, path faults, the fixture's plumbing."""

from __future__ import annotations

import re
import shlex

import pytest

pytestmark = pytest.mark.lab

INIT = "init1"


def _iscsiadm(lab, host, args, check=True):
    return lab.ssh(host, "iscsiadm " + " ".join(shlex.quote(a) for a in args), check=check)


def _new_record(lab, host, iqn, portal, iface=None, settings=None):
    base = ["-m", "node", "-T", iqn, "-p", portal]
    if iface:
        base += ["-I", iface]
    _iscsiadm(lab, host, base + ["-o", "new"])
    for key, value in (settings or {}).items():
        _iscsiadm(lab, host, base + ["-o", "update", "-n", key, "-v", value])
    return base


def _cleanup(lab, host, iqn, iface=None):
    """Log out of every session to iqn and delete its records (and iface); never fails."""
    lab.ssh(host, f"iscsiadm -m node -T {shlex.quote(iqn)} -u >/dev/null 2>&1; "
                  f"iscsiadm -m node -T {shlex.quote(iqn)} -o delete >/dev/null 2>&1; true", check=False)
    if iface:
        lab.ssh(host, f"iscsiadm -m iface -I {shlex.quote(iface)} -o delete >/dev/null 2>&1; true", check=False)


@pytest.fixture(autouse=True)
def _clean_records(lab):
    """Start from (and leave) an initiator without records or sessions for the lab's targets."""
    def clean():
        for t in lab.data["targets"].values():
            _cleanup(lab, INIT, t["iqn"])
    clean()
    yield
    clean()


def _of(lab, host, iqn):
    return [s for s in lab.sessions(host) if s["targetname"] == iqn]


def _disk_bytes(lab, host, disk):
    return int(lab.ssh(host, f"cat /sys/block/{disk}/size").stdout) * 512


def test_guests_have_their_own_initiator_names(lab):
    names = {}
    for host in lab.initiators:
        text = lab.ssh(host, "cat /etc/iscsi/initiatorname.iscsi").stdout
        lines = [ln for ln in text.splitlines() if ln.startswith("InitiatorName=")]
        assert lines == [f"InitiatorName={lab.hosts[host]['iqn']}"]
        names[host] = lines[0]
        assert lab.ssh(host, "hostname").stdout.strip() == host
    assert len(set(names.values())) == len(names)
    assert lab.ssh(INIT, "stat -c %a /etc/iscsi/initiatorname.iscsi").stdout.strip() == "600"


def test_lab_network_reaches_both_portals(lab):
    for p in lab.data["portals"]:
        lab.ssh(INIT, f"ping -c 1 -W 5 {p['address']}")
    assert lab.ssh("target", "systemctl is-active tgt.service").stdout.strip() == "active"


def test_login_to_open_target_gives_a_real_session_and_block_devices(lab):
    t = lab.target("open")
    try:
        out = _iscsiadm(lab, INIT, ["-m", "discovery", "-t", "sendtargets", "-p", lab.portal(0)]).stdout
        assert f"{lab.portal(0)},1 {t['iqn']}" in out
        _iscsiadm(lab, INIT, ["-m", "node", "-T", t["iqn"], "-p", lab.portal(0), "--login"])
        sess = lab.wait_for(lambda: [s for s in _of(lab, INIT, t["iqn"]) if len(s["disks"]) == len(t["luns"])],
                            timeout=30, what="the session's disks")
        assert len(sess) == 1
        s = sess[0]
        assert s["state"] == "LOGGED_IN"
        assert s["conn_state"] == "up"
        assert s["address"] == t["portals"][0]["address"]
        sizes = sorted(_disk_bytes(lab, INIT, d) for d in s["disks"])
        assert sizes == sorted(lun["size"] for lun in t["luns"])
        tran = lab.ssh(INIT, "lsblk -S -n -o NAME,TRAN").stdout.split()
        assert all(tran[tran.index(d) + 1] == "iscsi" for d in s["disks"])
        # The target VM sees the initiator by its own IQN.
        shown = lab.ssh("target", "tgtadm --lld iscsi --mode target --op show").stdout
        section = shown.split(f"Target {t['tid']}: {t['iqn']}\n", 1)[1].split("\nTarget ", 1)[0]
        assert re.search(rf"Initiator: {re.escape(lab.hosts[INIT]['iqn'])}(\s|$)", section, re.M), section
    finally:
        _cleanup(lab, INIT, t["iqn"])
    assert _of(lab, INIT, t["iqn"]) == []


def test_second_portal_is_a_portal_of_the_same_target(lab):
    t = lab.target("open")
    try:
        for i in (0, 1):
            _new_record(lab, INIT, t["iqn"], lab.portal(i))
            _iscsiadm(lab, INIT, ["-m", "node", "-T", t["iqn"], "-p", lab.portal(i), "--login"])
        sess = lab.wait_for(lambda: [s for s in _of(lab, INIT, t["iqn"]) if s["state"] == "LOGGED_IN"
                                     and len(s["disks"]) == len(t["luns"])] if len(_of(lab, INIT, t["iqn"])) == 2
                            else None, timeout=30, what="two sessions")
        assert sorted(s["address"] for s in sess) == sorted(p["address"] for p in lab.data["portals"])
    finally:
        _cleanup(lab, INIT, t["iqn"])


def test_chap_target_refuses_login_without_credentials_and_accepts_them(lab):
    t = lab.target("chap")
    acc = t["auth"]["incoming"]
    try:
        base = _new_record(lab, INIT, t["iqn"], lab.portal(0))
        res = _iscsiadm(lab, INIT, base + ["--login"], check=False)
        assert res.returncode == 24, res.stdout + res.stderr  # authorization failure
        assert _of(lab, INIT, t["iqn"]) == []
        # Wrong password: refused too.
        _new_record(lab, INIT, t["iqn"], lab.portal(0), settings={
            "node.session.auth.authmethod": "CHAP", "node.session.auth.username": acc["username"],
            "node.session.auth.password": acc["password"] + "x"})
        assert _iscsiadm(lab, INIT, base + ["--login"], check=False).returncode == 24
        _iscsiadm(lab, INIT, base + ["-o", "update", "-n", "node.session.auth.password", "-v", acc["password"]])
        _iscsiadm(lab, INIT, base + ["--login"])
        lab.wait_for(lambda: [s for s in _of(lab, INIT, t["iqn"]) if s["state"] == "LOGGED_IN"], timeout=20,
                     what="CHAP session")
    finally:
        _cleanup(lab, INIT, t["iqn"])


def test_mutual_chap_target_authenticates_itself(lab):
    t = lab.target("mutual")
    inc, out = t["auth"]["incoming"], t["auth"]["outgoing"]
    creds = {"node.session.auth.authmethod": "CHAP", "node.session.auth.username": inc["username"],
             "node.session.auth.password": inc["password"], "node.session.auth.username_in": out["username"],
             "node.session.auth.password_in": out["password"] + "x"}
    try:
        base = _new_record(lab, INIT, t["iqn"], lab.portal(0), settings=creds)
        # The initiator expects another target secret: it refuses the target.
        assert _iscsiadm(lab, INIT, base + ["--login"], check=False).returncode != 0
        assert _of(lab, INIT, t["iqn"]) == []
        _iscsiadm(lab, INIT, base + ["-o", "update", "-n", "node.session.auth.password_in", "-v", out["password"]])
        _iscsiadm(lab, INIT, base + ["--login"])
        lab.wait_for(lambda: [s for s in _of(lab, INIT, t["iqn"]) if s["state"] == "LOGGED_IN"], timeout=20,
                     what="mutual CHAP session")
    finally:
        _cleanup(lab, INIT, t["iqn"])


def test_acl_target_refuses_an_unlisted_initiator(lab):
    t = lab.target("acl")
    assert t["acl"]["initiators"] == [lab.hosts[INIT]["iqn"]]
    iface = "labacl"
    stranger = "iqn.1993-08.org.debian:01:labstranger01"
    try:
        _iscsiadm(lab, INIT, ["-m", "iface", "-I", iface, "-o", "new"])
        _iscsiadm(lab, INIT, ["-m", "iface", "-I", iface, "-o", "update", "-n", "iface.initiatorname",
                              "-v", stranger])
        base = _new_record(lab, INIT, t["iqn"], lab.portal(0), iface=iface)
        res = _iscsiadm(lab, INIT, base + ["--login"], check=False)
        assert res.returncode in (19, 24), res.stdout + res.stderr  # the target turns the stranger away
        assert _of(lab, INIT, t["iqn"]) == []
        # The listed IQN (the default iface uses the host's own name) gets in.
        _new_record(lab, INIT, t["iqn"], lab.portal(0))
        _iscsiadm(lab, INIT, ["-m", "node", "-T", t["iqn"], "-p", lab.portal(0), "-I", "default", "--login"])
        lab.wait_for(lambda: [s for s in _of(lab, INIT, t["iqn"]) if s["state"] == "LOGGED_IN"], timeout=20,
                     what="ACL session")
    finally:
        _cleanup(lab, INIT, t["iqn"], iface=iface)


def test_cut_path_fails_the_session_and_restore_recovers_it(lab):
    t = lab.target("open")
    try:
        base = _new_record(lab, INIT, t["iqn"], lab.portal(0))
        _iscsiadm(lab, INIT, base + ["--login"])
        lab.wait_for(lambda: [s for s in _of(lab, INIT, t["iqn"]) if s["state"] == "LOGGED_IN"], timeout=20,
                     what="session")
        lab.cut_path(INIT)
        failed = lab.wait_for(lambda: [s for s in _of(lab, INIT, t["iqn"]) if s["state"] == "FAILED"],
                              timeout=25, interval=0.5, what="FAILED after the cut")
        assert failed[0]["conn_state"] in ("failed", "down")
        lab.restore_path(INIT)
        lab.wait_for(lambda: [s for s in _of(lab, INIT, t["iqn"]) if s["state"] == "LOGGED_IN"
                              and s["conn_state"] == "up"], timeout=60, what="LOGGED_IN after restore")
    finally:
        lab.restore_path(INIT)
        _cleanup(lab, INIT, t["iqn"])


def test_tgtd_stop_fails_the_session_and_start_recovers_it(lab):
    t = lab.target("open")
    try:
        base = _new_record(lab, INIT, t["iqn"], lab.portal(0))
        _iscsiadm(lab, INIT, base + ["--login"])
        lab.wait_for(lambda: [s for s in _of(lab, INIT, t["iqn"]) if s["state"] == "LOGGED_IN"], timeout=20,
                     what="session")
        lab.tgtd("kill")
        assert lab.tgtd("status") != "active"
        lab.wait_for(lambda: [s for s in _of(lab, INIT, t["iqn"]) if s["state"] == "FAILED"], timeout=25,
                     interval=0.5, what="FAILED with tgtd down")
        lab.tgtd("start")
        lab.wait_for(lambda: [s for s in _of(lab, INIT, t["iqn"]) if s["state"] == "LOGGED_IN"], timeout=60,
                     what="LOGGED_IN with tgtd back")
    finally:
        lab.tgtd("start")
        _cleanup(lab, INIT, t["iqn"])


def test_module_runner_returns_results_and_diffs(lab, tmp_path):
    path = "/tmp/lab-fixture-probe"
    try:
        r = lab.module(INIT, "ansible.builtin.copy", {"dest": path, "content": "one\n"}, diff=True)
        assert r["failed"] is False and r["changed"] is True
        assert "diff" in r and "one" in str(r["diff"])
        assert lab.ssh(INIT, f"cat {path}").stdout == "one\n"
        r = lab.module(INIT, "ansible.builtin.copy", {"dest": path, "content": "two\n"}, check=True, diff=True)
        assert r["changed"] is True and "two" in str(r["diff"])
        assert lab.ssh(INIT, f"cat {path}").stdout == "one\n"  # check mode changed nothing
        r = lab.module(INIT, "ansible.builtin.command", {"cmd": "false"})
        assert r["failed"] is True and r["rc"] == 1
    finally:
        lab.ssh(INIT, f"rm -f {path}", check=False)
    play = tmp_path / "play.yml"
    play.write_text("- hosts: initiators\n  gather_facts: false\n  tasks:\n"
                    "    - ansible.builtin.command: cat /etc/hostname\n      register: out\n"
                    "    - ansible.builtin.assert:\n        that: out.stdout == inventory_hostname\n")
    res = lab.playbook(str(play))
    assert res.returncode == 0, res.stdout + res.stderr
    assert {r["host"] for r in res.results} == set(lab.initiators)
    assert all(r["status"] == "ok" for r in res.results)
