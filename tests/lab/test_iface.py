# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""iface on a lab initiator: a session made through a record bound to an iface uses that iface (sysfs ifacename),
and the iface's own initiator name; iface changes reach the bound records; deleting the iface is refused while a
session uses it and, with force, logs it out and removes the iface and its records.  Idempotent, check mode exact.
"""

from __future__ import annotations

import shlex

import pytest

pytestmark = pytest.mark.lab

HOST = "init1"
IFACE = "labpath"
IFACE_IQN = "iqn.2025-01.lab.openiscsi:init1-labpath"


def sh(lab, cmd, check=True):
    return lab.ssh(HOST, cmd, check=check)


def lab_nic(lab):
    ip = lab.hosts[HOST]["lab_ip"]
    out = sh(lab, "ip -o -4 addr show").stdout
    for line in out.split("\n"):
        fields = line.split()
        if len(fields) > 3 and fields[3].split("/")[0] == ip:
            return fields[1]
    raise AssertionError("no NIC with %s on %s:\n%s" % (ip, HOST, out))


def sessions(lab):
    out = sh(lab, "for s in /sys/class/iscsi_session/session*; do [ -e $s ] && echo $(cat $s/targetname) "
                  "$(cat $s/state) $(cat $s/ifacename) $(cat $s/initiatorname); done; true").stdout
    return [line.split() for line in out.splitlines() if line.strip()]


@pytest.fixture
def clean(lab):
    def cleanup():
        q = shlex.quote(lab.data["targets"]["open"]["iqn"])
        sh(lab, "iscsiadm -m node -T %s -u >/dev/null 2>&1; iscsiadm -m node -T %s -o delete >/dev/null 2>&1; "
                "iscsiadm -m iface -I %s -o delete >/dev/null 2>&1; true" % (q, q, IFACE))
    cleanup()
    assert sessions(lab) == []
    try:
        yield lab
    finally:
        cleanup()


def test_session_through_iface_and_its_initiator_name(clean):
    lab = clean
    nic = lab_nic(lab)
    t = lab.data["targets"]["open"]
    p = "%s:%d" % (lab.data["portals"][0]["address"], lab.data["portals"][0]["port"])
    args = {"name": IFACE, "net_ifacename": nic}
    predicted = lab.module(HOST, "iface", args, check=True, diff=True)
    real = lab.module(HOST, "iface", args, diff=True)
    for key in ("changed", "action", "iface", "changes", "diff"):
        assert predicted.get(key) == real.get(key), key
    assert real["action"] == "create" and real["iface"]["net_ifacename"] == nic
    assert lab.module(HOST, "iface", args)["changed"] is False
    assert "iface.net_ifacename = %s" % nic in sh(lab, "iscsiadm -m iface -I %s" % IFACE).stdout

    res = lab.module(HOST, "node", {"target": t["iqn"], "portal": p, "tpgt": 1, "iface": IFACE})
    assert res["changed"], res
    # the iface gets its own initiator name: it must reach the bound record's copy too
    res = lab.module(HOST, "iface", {"name": IFACE, "net_ifacename": nic, "initiatorname": IFACE_IQN})
    assert res["changed"] and res["records_updated"] == [{"target": t["iqn"], "portal": p, "tpgt": 1}], res
    shown = sh(lab, "iscsiadm -m node -T %s -p %s -I %s" % (t["iqn"], p, IFACE)).stdout
    assert "iface.initiatorname = %s" % IFACE_IQN in shown
    sh(lab, "iscsiadm -m node -T %s -p %s -I %s --login" % (t["iqn"], p, IFACE))
    assert sessions(lab) == [[t["iqn"], "LOGGED_IN", IFACE, IFACE_IQN]]

    refused = lab.module(HOST, "iface", {"name": IFACE, "state": "absent"})
    assert refused["failed"] and "session(s) use it" in refused["msg"], refused
    assert sessions(lab) != []
    predicted = lab.module(HOST, "iface", {"name": IFACE, "state": "absent", "force": True}, check=True)
    assert predicted["records_deleted"] == [{"target": t["iqn"], "portal": p, "tpgt": 1}]
    res = lab.module(HOST, "iface", {"name": IFACE, "state": "absent", "force": True})
    assert res["changed"] and res["records_deleted"] == predicted["records_deleted"], res
    assert sessions(lab) == []
    assert sh(lab, "iscsiadm -m iface -I %s" % IFACE, check=False).returncode != 0
    assert sh(lab, "iscsiadm -m node -T %s" % t["iqn"], check=False).returncode == 21
