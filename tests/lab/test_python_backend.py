# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure-Python initiator inside the modules, on the lab initiator against the lab target (tgtd in the target VM):

* discovery backend=python with the lab's discovery CHAP creates the records iscsiadm's own discovery creates (same
  files byte for byte, same send_targets links), read back with iscsiadm's reader;
* session_check probe=true logs in with each record's stored CHAP settings in its own session: a good and a wrong
  password are reported as such, while the kernel's sessions (sysfs) stay exactly as they were.

Every test leaves the initiator as it found it: logged out, its node and discovery records removed, discovery CHAP
off on the target.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.lab

HOST = "init1"


def sh(lab, cmd, check=True):
    return lab.ssh(HOST, cmd, check=check)


def sysfs(lab):
    """Every kernel iSCSI session as sysfs shows it: sid, target, state, ISID, connection state and address."""
    return sh(lab, "for s in /sys/class/iscsi_session/session*; do [ -e $s ] || continue; "
                   "echo ${s##*session} $(cat $s/targetname) $(cat $s/state) $(cat $s/isid); "
                   "for c in $s/device/connection*/iscsi_connection/connection*; do [ -e $c ] || continue; "
                   "echo \"  $(cat $c/state 2>/dev/null) $(cat $c/persistent_address):$(cat $c/persistent_port)\"; "
                   "done; done").stdout


@pytest.fixture
def clean(lab):
    lab.discovery_chap(False)
    lab.forget_targets(HOST)
    try:
        yield lab
    finally:
        lab.discovery_chap(False)
        lab.forget_targets(HOST)


def node_db_view(lab):
    """The node records and the discovery/static links as files: path, link target or content (st_config left out:
    it holds the discovery secret)."""
    root = lab.db_root(HOST)
    return sh(lab, "cd %s && for f in $(find nodes send_targets static -mindepth 1 \\( -type f -o -type l \\) "
                   "! -name st_config 2>/dev/null | sort); do if [ -L $f ]; then echo \"L $f -> $(readlink $f)\"; "
                   "else echo \"F $f $(stat -c %%a $f)\"; cat $f; fi; done" % root).stdout


def expected(lab, portal):
    return [{"target": iqn, "portal": portal, "tpgt": 1, "iface": "default"} for iqn in lab.target_iqns()]


def test_python_backend_discovery_with_discovery_chap_makes_iscsiadms_records(clean):
    lab = clean
    disc = lab.data["discovery_chap"]["incoming"]
    portal = lab.portals()[0]
    address = portal.rsplit(":", 1)[0]
    lab.discovery_chap(True)
    sessions_before = sysfs(lab)
    auth = {"username": disc["username"], "password": disc["password"]}

    refused = lab.module(HOST, "discovery", {"portals": [portal], "backend": "python"})
    assert refused.get("failed") and "(python backend)" in refused["msg"] and "0x0201" in refused["msg"], refused
    wrong = lab.module(HOST, "discovery", {"portals": [portal], "backend": "python",
                                           "auth": {"username": disc["username"], "password": "not-the-secret-7"}})
    assert wrong.get("failed") and "auth.username/auth.password" in wrong["msg"]
    assert "not-the-secret-7" not in wrong["_raw"]
    lab.forget_targets(HOST)

    res = lab.module(HOST, "discovery", {"portals": [portal], "backend": "python", "auth": auth}, diff=True)
    assert not res.get("failed"), res
    assert res["backend"] == "python" and res["changed"] is True and res["created"] == expected(lab, portal)
    assert disc["password"] not in res["_raw"]
    # iscsiadm's own reader lists them and sees them as discovered at the portal
    listed = sh(lab, "iscsiadm -m node").stdout
    for iqn in lab.target_iqns():
        assert "%s,1 %s" % (portal, iqn) in listed
        shown = sh(lab, "iscsiadm -m node -T %s -p %s" % (iqn, portal)).stdout
        assert "node.discovery_address = %s\n" % address in shown
        assert "node.discovery_type = send_targets\n" in shown
    assert "discovery.sendtargets.auth.password = ********" in \
        sh(lab, "iscsiadm -m discoverydb -t st -p %s" % portal).stdout
    python_view = node_db_view(lab)
    st_dir = "send_targets/%s,%s/" % (address, portal.rsplit(":", 1)[1])
    for iqn in lab.target_iqns():
        assert "\nF nodes/%s/%s,1/default 600\n" % (iqn, portal.replace(":", ",")) in "\n" + python_view
        assert "L %s%s,%s,1,default -> " % (st_dir, iqn, portal.replace(":", ",")) in python_view
    assert python_view.count("node.discovery_type = send_targets\n") == len(lab.target_iqns())
    assert "static/" not in python_view
    again = lab.module(HOST, "discovery", {"portals": [portal], "backend": "python"})
    assert again["changed"] is False and again["created"] == [] and node_db_view(lab) == python_view

    # the same discovery by iscsiadm itself (the kernel transport is there in the lab): the same files and links
    lab.forget_targets(HOST)
    real = lab.module(HOST, "discovery", {"portals": [portal], "backend": "iscsiadm", "auth": auth})
    assert not real.get("failed") and real["backend"] == "iscsiadm" and real["created"] == res["created"], real
    iscsiadm_view = node_db_view(lab)
    assert python_view == iscsiadm_view
    # auto picks iscsiadm where iscsi_tcp can be loaded
    auto = lab.module(HOST, "discovery", {"portals": [portal], "backend": "auto", "create_nodes": False})
    assert auto["backend"] == "iscsiadm" and auto["backend_reason"].startswith("auto: kernel module iscsi_tcp is")
    assert sysfs(lab) == sessions_before, "discovery changed the kernel's sessions"


def test_session_check_probe_good_and_wrong_password_kernel_sessions_untouched(clean):
    lab = clean
    portal = lab.portals()[0]
    chap, mutual = lab.target("chap"), lab.target("mutual")
    inc = chap["auth"]["incoming"]
    m_in, m_out = mutual["auth"]["incoming"], mutual["auth"]["outgoing"]
    good_chap = {"username": inc["username"], "password": inc["password"]}
    res = lab.module(HOST, "node", {"nodes": [
        {"target": chap["iqn"], "portal": portal, "auth": good_chap},
        {"target": mutual["iqn"], "portal": portal, "auth": {
            "username": m_in["username"], "password": m_in["password"],
            "username_in": m_out["username"], "password_in": m_out["password"]}},
    ]})
    assert not res.get("failed"), res
    # a real kernel session to the CHAP target, up while the probes log in with their own ISIDs
    login = lab.module(HOST, "session", {"target": chap["iqn"], "portal": portal, "timeout": 180})
    assert not login.get("failed") and login["sessions"][0]["state"] == "LOGGED_IN", login
    before = sysfs(lab)
    assert chap["iqn"] in before and "LOGGED_IN" in before

    ok = lab.module(HOST, "session_check", {"probe": True, "probe_timeout": 10})
    assert not ok.get("failed") and ok["healthy"] is True, ok.get("msg")
    by = {p["target"]: p for p in ok["probes"]}
    assert sorted(by) == sorted([chap["iqn"], mutual["iqn"]])
    assert by[chap["iqn"]]["authenticated"] and by[chap["iqn"]]["auth_method"] == "CHAP"
    assert by[mutual["iqn"]]["authenticated"] and by[mutual["iqn"]]["mutual_chap"] is True
    for key, t in (("chap", chap), ("mutual", mutual)):
        sizes = sorted(lun["size_bytes"] for lun in by[t["iqn"]]["luns"] if "size_bytes" in lun)
        assert sizes == sorted(lun["size"] for lun in t["luns"]), key
    assert sysfs(lab) == before, "the probe changed the kernel's sessions"

    # the stored password goes wrong (the kernel session is not affected: it is already logged in)
    res = lab.module(HOST, "node", {"nodes": [{"target": chap["iqn"], "portal": portal}],
                                    "auth": {"username": inc["username"], "password": "wrong-probe-secret-3"}})
    assert not res.get("failed"), res
    bad = lab.module(HOST, "session_check", {"probe": True, "probe_timeout": 10})
    assert bad.get("failed") and bad["healthy"] is False
    by = {p["target"]: p for p in bad["probes"]}
    assert by[chap["iqn"]]["reachable"] is True and by[chap["iqn"]]["authenticated"] is False
    assert by[chap["iqn"]]["error"]["status"] == "0201"
    assert by[mutual["iqn"]]["authenticated"] is True
    assert "probe %s via %s: login to %s failed with status 0x0201" % (chap["iqn"], portal, chap["iqn"]) in bad["msg"]
    for secret in ("wrong-probe-secret-3", inc["password"], m_in["password"], m_out["password"]):
        assert secret not in bad["_raw"] and secret not in ok["_raw"]
    assert sysfs(lab) == before, "the probe changed the kernel's sessions"
