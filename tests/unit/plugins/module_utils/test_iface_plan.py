# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._iface_plan import parse_iface_request, plan_iface
from ansible_collections.openiscsi.initiator.plugins.module_utils._record_text import apply_keys
from ansible_collections.openiscsi.initiator.plugins.module_utils._nodedb import parse_iface_record

DATA = os.path.join(os.path.dirname(__file__), "data", "open-iscsi-2.1.8")


def params(**kw):
    base = dict(name="san-a", state="present", transport=None, net_ifacename=None, hwaddress=None, ipaddress=None,
                initiatorname=None, settings=None, force=False)
    base.update(kw)
    return base


def current(**settings):
    base = {"iface.iscsi_ifacename": "san-a", "iface.transport_name": "tcp", "iface.mtu": "0"}
    base.update(dict((k.replace("__", "."), v) for k, v in settings.items()))
    return {"name": "san-a", "settings": base, "path": "/etc/iscsi/ifaces/san-a"}


def node(target="iqn.2001-04.com.example:a", iface="san-a", **settings):
    base = {"iface.iscsi_ifacename": iface, "iface.transport_name": "tcp"}
    base.update(dict((k.replace("__", "."), v) for k, v in settings.items()))
    return {"target": target, "address": "192.0.2.10", "port": 3260, "tpgt": 1, "iface": iface,
            "path": "/etc/iscsi/nodes/%s/192.0.2.10,3260,1/%s" % (target, iface), "settings": base}


def test_parse_normalizes():
    name, state, values = parse_iface_request(params(transport="TCP", hwaddress="00-1B-21-AA-BB-CC",
                                                     ipaddress="0.0.0.0", initiatorname="IQN.2001-04.com.example:h1",
                                                     settings={"iface.mtu": 9000}))
    assert (name, state) == ("san-a", "present")
    assert values == {"iface.transport_name": "tcp", "iface.hwaddress": "00:1b:21:aa:bb:cc",
                      "iface.ipaddress": "0.0.0.0", "iface.initiatorname": "iqn.2001-04.com.example:h1",
                      "iface.mtu": "9000"}
    assert parse_iface_request(params(net_ifacename=""))[2] == {"iface.net_ifacename": ""}
    assert parse_iface_request(params(ipaddress="[2001:DB8::1]"))[2] == {"iface.ipaddress": "2001:db8::1"}


@pytest.mark.parametrize("p, field, words", [
    (params(name="default"), "name", ["built-in"]),
    (params(name="iser"), "name", ["built-in"]),
    (params(name=""), "name", ["required"]),
    (params(name="san a"), "name", ["not an iface name"]),
    (params(transport="fcoe"), "transport", ["not an open-iscsi transport", "bnx2i"]),
    (params(transport=""), "transport", ["cannot be empty"]),
    (params(hwaddress="00:1b:21:aa:bb"), "hwaddress", ["MAC"]),
    (params(hwaddress="00:1b:21-aa:bb:cc"), "hwaddress", ["MAC"]),
    (params(ipaddress="10.0.0.0/24"), "ipaddress", ["IPv4 or IPv6", "0.0.0.0"]),
    (params(ipaddress="host.example"), "ipaddress", ["IPv4 or IPv6"]),
    (params(net_ifacename="a-very-long-interface-name"), "net_ifacename", ["1-15"]),
    (params(net_ifacename="eth0/1"), "net_ifacename", ["network interface name"]),
    (params(initiatorname="iqn.bad"), "initiatorname", ["YYYY-MM"]),
    (params(settings={"iface.mtuu": 1}), "settings.iface.mtuu", ["unknown key", "'iface.mtu'"]),
    (params(settings={"iface.mtu": "big"}), "settings.iface.mtu", ["integer"]),
    (params(settings={"iface.hwaddress": "00:1b:21:aa:bb:cc"}, hwaddress="00:1b:21:aa:bb:cc"),
     "settings.iface.hwaddress", ["give it once"]),
    (params(state="absent", net_ifacename="eth1"), "net_ifacename", ["state=absent"]),
])
def test_parse_bad(p, field, words):
    with pytest.raises(InputError) as err:
        parse_iface_request(p)
    assert err.value.field == field, str(err.value)
    for word in words:
        assert word in str(err.value)


def test_create_and_update_propagate_to_bound_records():
    name, state, values = parse_iface_request(params(net_ifacename="eth1"))
    plan = plan_iface(name, state, values, None, [node(), node(iface="other")], [])
    assert plan.action == "create" and plan.changes == [("iface.net_ifacename", None, "eth1")]
    assert [r["iface"] for r, _d in plan.record_changes] == ["san-a"]
    plan = plan_iface(name, state, values, current(iface__net_ifacename="eth1"),
                      [node(iface__net_ifacename="eth1"), node(target="iqn.2001-04.com.example:b")], [])
    assert plan.action == "update" and plan.changes == []
    # the iface is right, but a bound record's copy drifted: it is repaired
    assert [(r["target"], d) for r, d in plan.record_changes] == [
        ("iqn.2001-04.com.example:b", {"iface.net_ifacename": "eth1"})]
    assert plan.changed and plan.view()["records_updated"][0]["target"] == "iqn.2001-04.com.example:b"


def test_no_change():
    name, state, values = parse_iface_request(params(net_ifacename="eth1", settings={"iface.mtu": 0}))
    bound = [node(iface__net_ifacename="eth1", iface__mtu="0")]
    plan = plan_iface(name, state, values, current(iface__net_ifacename="eth1"), bound, [])
    assert not plan.changed and plan.view() == {"name": "san-a", "action": "none"}


def test_delete_lists_records_and_guards_sessions():
    sess = {"sid": 4, "ifacename": "san-a", "targetname": "iqn.2001-04.com.example:a"}
    plan = plan_iface("san-a", "absent", {}, current(), [node(), node(iface="x")], [])
    assert plan.action == "delete" and len(plan.bound) == 1
    assert plan.view()["records_deleted"] == [{"target": "iqn.2001-04.com.example:a", "portal": "192.0.2.10:3260",
                                               "tpgt": 1}]
    with pytest.raises(InputError) as err:
        plan_iface("san-a", "absent", {}, current(), [node()], [sess])
    assert "sid 4" in str(err.value) and "force" in str(err.value)
    assert plan_iface("san-a", "absent", {}, current(), [node()], [sess], force=True).live == [sess]
    assert plan_iface("san-a", "absent", {}, None, [], []).action == "none"


def test_transport_change_with_live_session_refused():
    sess = {"sid": 4, "ifacename": "san-a"}
    name, state, values = parse_iface_request(params(transport="iser"))
    with pytest.raises(InputError) as err:
        plan_iface(name, state, values, current(), [], [sess])
    assert "from tcp to iser" in str(err.value)
    plan = plan_iface(name, state, values, current(), [], [sess], force=True)
    assert any("next login" in w or "log in again" in w for w in plan.warnings)


def test_offload_warnings():
    name, state, values = parse_iface_request(params(transport="bnx2i", hwaddress="00:10:18:aa:bb:cc"))
    plan = plan_iface(name, state, values, None, [], [], uio_installed=False)
    assert any("iscsiuio" in w for w in plan.warnings)
    assert any("0.0.0.0" in w for w in plan.warnings)
    name, state, values = parse_iface_request(params(transport="bnx2i", ipaddress="0.0.0.0"))
    assert plan_iface(name, state, values, None, [], [], uio_installed=True).warnings == []
    name, state, values = parse_iface_request(params(net_ifacename="eth1"))
    assert plan_iface(name, state, values, None, [], [], uio_installed=False).warnings == []


def test_iface_keys_go_where_iscsiadm_writes_them():
    with open(os.path.join(DATA, "iface-new.record")) as handle:
        text = handle.read()
    new = apply_keys(text, {"iface.net_ifacename": "eth1", "iface.hwaddress": "00:1b:21:aa:bb:cc",
                            "iface.initiatorname": "iqn.2001-04.com.example:h1", "iface.mtu": "9000"})
    lines = new.splitlines()
    assert lines[1:8] == ["iface.iscsi_ifacename = eth1", "iface.net_ifacename = eth1", "iface.prefix_len = 0",
                          "iface.hwaddress = 00:1b:21:aa:bb:cc", "iface.transport_name = tcp",
                          "iface.initiatorname = iqn.2001-04.com.example:h1", "iface.vlan_id = 0"]
    assert "iface.mtu = 9000" in lines and lines[-1] == "# END RECORD"
    parsed = parse_iface_record(new)
    assert (parsed["net_ifacename"], parsed["hwaddress"]) == ("eth1", "00:1b:21:aa:bb:cc")
