# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The iface module: in-process against a DB under tmp_path (bad input, no change, check mode), and against the
real iscsiadm in a private mount namespace (creation, updates reaching the bound node records, deletion)."""

from __future__ import annotations

import os

import pytest

from ansible_collections.openiscsi.initiator.plugins.modules import iface

from iscsi_ns import PYROOT, Namespace, needs_iscsiadm
from harness import file_states, run_module

DATA = os.path.join(os.path.dirname(__file__), "..", "module_utils", "data", "open-iscsi-2.1.8")
T1 = "iqn.2001-04.com.example:disk1"


@pytest.fixture
def root(tmp_path):
    db = tmp_path / "etc" / "iscsi"
    (db / "ifaces").mkdir(parents=True)
    text = open(os.path.join(DATA, "iface-new.record")).read()
    (db / "ifaces" / "eth1").write_text(text.replace("iface.iscsi_ifacename = eth1\n",
                                                     "iface.iscsi_ifacename = eth1\niface.net_ifacename = eth1\n"))
    return tmp_path


def run(capsys, root_dir, check=False, diff=True, **args):
    args.setdefault("root", str(root_dir))
    return run_module(capsys, iface, args, check=check, diff=diff)


def test_no_change_runs_nothing(capsys, root, no_commands):
    before = file_states(root)
    res = run(capsys, root, name="eth1", net_ifacename="eth1", transport="tcp", settings={"iface.mtu": 0})
    assert res["changed"] is False and res["action"] == "none" and res["commands"] == 0
    assert res["iface"] == {"name": "eth1", "transport": "tcp", "net_ifacename": "eth1", "hwaddress": None,
                            "ipaddress": None, "initiatorname": None}
    assert file_states(root) == before


def test_check_mode(capsys, root, no_commands):
    before = file_states(root)
    res = run(capsys, root, check=True, name="eth1", net_ifacename="eth2", ipaddress="0.0.0.0")
    assert res["changed"] is True and res["action"] == "update"
    assert res["changes"] == {"iface.net_ifacename": {"before": "eth1", "after": "eth2"},
                              "iface.ipaddress": {"before": None, "after": "0.0.0.0"}}
    assert res["diff"]["before"] == "iface.net_ifacename = eth1\n"
    assert res["diff"]["after"] == "iface.net_ifacename = eth2\niface.ipaddress = 0.0.0.0\n"
    res = run(capsys, root, check=True, name="new1", transport="bnx2i", hwaddress="00:10:18:aa:bb:cc")
    assert res["action"] == "create" and res["iface"]["transport"] == "bnx2i"
    assert any("iscsiuio" in w for w in res["warnings"])
    res = run(capsys, root, check=True, name="eth1", state="absent")
    assert res["action"] == "delete" and res["iface"] is None
    assert file_states(root) == before


@pytest.mark.parametrize("args, words", [
    (dict(name="default", net_ifacename="eth1"), ["name", "built-in"]),
    (dict(name="eth1", hwaddress="zz:zz"), ["hwaddress", "MAC"]),
    (dict(name="eth1", ipaddress="10.0.0.1/24"), ["ipaddress"]),
    (dict(name="eth1", transport="fcoe"), ["transport"]),
    (dict(name="eth1", settings={"iface.mtuu": 1}), ["unknown key", "'iface.mtu'"]),
    (dict(name="eth1", state="absent", net_ifacename="eth1"), ["state=absent"]),
    (dict(name="eth1", initiatorname="not-a-name"), ["initiatorname"]),
])
def test_bad_input_changes_nothing(capsys, root, no_commands, args, words):
    before = file_states(root)
    res = run(capsys, root, **args)
    assert res["failed"] is True
    for word in words:
        assert word in res["msg"], res["msg"]
    assert file_states(root) == before


# ----------------------------------------------------------------------------------------------- real iscsiadm
@pytest.fixture
def ns(tmp_path):
    if not os.path.isdir(PYROOT):
        pytest.skip("run through pytest from the repository")
    return Namespace(tmp_path)


@needs_iscsiadm
def test_real_create_update_bound_records_and_delete(ns):
    res = ns.module(_name="iface", name="san-a", net_ifacename="eth1")
    assert res["changed"] and res["action"] == "create", res
    assert [c[c.index("-o") + 1] if "-o" in c else "show" for c in ns.calls()] == ["new", "show"]
    res = ns.module(nodes=[{"target": T1, "portal": "192.0.2.10", "tpgt": 1, "iface": "san-a"},
                           {"target": T1, "portal": "192.0.2.11", "tpgt": 1, "iface": "san-a"}])
    assert res["changed"], res
    rec = "nodes/%s/192.0.2.10,3260,1/san-a" % T1
    assert "iface.net_ifacename = eth1\n" in ns.file(rec)

    res = ns.module(_name="iface", name="san-a", net_ifacename="eth2", settings={"iface.mtu": 9000})
    assert res["changed"] and len(res["records_updated"]) == 2, res
    assert "iface.net_ifacename = eth2\n" in ns.file("ifaces/san-a")
    for portal in ("192.0.2.10", "192.0.2.11"):
        text = ns.file("nodes/%s/%s,3260,1/san-a" % (T1, portal))
        assert "iface.net_ifacename = eth2\n" in text and "iface.mtu = 9000\n" in text
    # iscsiadm's own readers agree
    assert "iface.net_ifacename = eth2" in ns.iscsiadm("-m", "iface", "-I", "san-a").stdout
    show = ns.iscsiadm("-m", "node", "-I", "san-a", "-o", "show").stdout
    assert show.count("iface.net_ifacename = eth2") == 2
    assert ns.module(_name="iface", name="san-a", net_ifacename="eth2", settings={"iface.mtu": 9000})[
        "changed"] is False

    predicted = ns.module(_name="iface", check=True, name="san-a", state="absent")
    assert len(predicted["records_deleted"]) == 2 and (ns.db / "ifaces" / "san-a").exists()
    res = ns.module(_name="iface", name="san-a", state="absent")
    assert res["changed"] and res["records_deleted"] == predicted["records_deleted"]
    assert not (ns.db / "ifaces" / "san-a").exists()
    assert not (ns.db / "nodes" / T1).exists()
    assert ns.module(_name="iface", name="san-a", state="absent")["changed"] is False


@needs_iscsiadm
def test_real_offload_iface_without_driver(ns):
    """iscsiadm -o update cannot configure a bnx2i iface without the driver; the module can, and warns."""
    res = ns.module(_name="iface", name="bnx2i.00:10:18:aa:bb:cc", transport="bnx2i", hwaddress="00:10:18:AA:BB:CC",
                    ipaddress="0.0.0.0")
    assert res["changed"], res
    if not os.path.exists("/usr/sbin/iscsiuio"):
        assert "iscsiuio" in res["_raw"]
    shown = ns.iscsiadm("-m", "iface", "-I", "bnx2i.00:10:18:aa:bb:cc").stdout
    assert "iface.transport_name = bnx2i" in shown and "iface.hwaddress = 00:10:18:aa:bb:cc" in shown
    assert "iface.ipaddress = 0.0.0.0" in shown
