# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The info module on the lab initiator's real kernel: a session logged in with iscsiadm in the guest is reported
LOGGED_IN with its block devices; after the test cuts the initiator's link to the target it is reported FAILED; once
the link is back, LOGGED_IN again.  Every value is checked against the guest's own view (lsblk, readlink, dpkg,
the initiator name file), and the module is shown to work with iscsid stopped without starting it (its socket
stays listening, so any contact would activate it) and without changing a byte of the iSCSI configuration.

The test logs out, deletes its record and restores the link in a ``finally``.
"""

from __future__ import annotations

import shlex
import time

import pytest

pytestmark = pytest.mark.lab

HOST = "init1"
INFO = "openiscsi.initiator.info"
CONFIG_DIGEST = ("find /etc/iscsi /var/lib/iscsi -type f -print0 2>/dev/null | sort -z | xargs -0 sha256sum; "
                 "find /etc/iscsi /var/lib/iscsi 2>/dev/null | sort")


def sh(lab, cmd, check=True):
    return lab.ssh(HOST, cmd, check=check)


def open_target(lab):
    target = lab.data["targets"]["open"]
    portal = target["portals"][0] if target.get("portals") else lab.data["portals"][0]
    return target, portal["address"], portal["port"]


def session_states(lab, iqn):
    """``[(state, conn_state)]`` of the sessions to *iqn*, straight from the guest's sysfs."""
    out = sh(lab, "for s in /sys/class/iscsi_session/session*; do [ -e $s ] || continue; "
                  "[ \"$(cat $s/targetname)\" = %s ] || continue; "
                  "c=$(ls -d $s/device/connection*/iscsi_connection/connection* | head -1); "
                  "echo $(cat $s/state) $(cat $c/state 2>/dev/null || echo -); done" % shlex.quote(iqn)).stdout
    return [tuple(line.split()) for line in out.splitlines() if line.strip()]


def wait_for(lab, iqn, predicate, timeout, what):
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = session_states(lab, iqn)
        if predicate(seen):
            return seen
        time.sleep(2)
    raise AssertionError("%s: not reached within %d s; sysfs says %r" % (what, timeout, seen))


def guest_iscsi_disks(lab):
    """``{hctl: name}`` of the iSCSI disks as lsblk sees them."""
    out = sh(lab, "lsblk -S -n -o NAME,HCTL,TRAN").stdout
    return dict((f[1], f[0]) for f in (line.split() for line in out.splitlines()) if len(f) == 3 and f[2] == "iscsi")


def the_session(res, iqn):
    found = [s for s in res["sessions"] if s["targetname"] == iqn]
    assert len(found) == 1, res["sessions"]
    return found[0]


def cleanup(lab, iqn, address, port):
    q = shlex.quote(iqn)
    p = shlex.quote("%s:%d" % (address, port))
    sh(lab, "systemctl start iscsid.socket >/dev/null 2>&1; "
            "iscsiadm -m node -T %s -p %s -u >/dev/null 2>&1; "
            "iscsiadm -m node -T %s -p %s -o delete >/dev/null 2>&1; true" % (q, p, q, p))


def test_info_reports_logged_in_then_failed_then_recovered(lab):
    target, address, port = open_target(lab)
    iqn = target["iqn"]
    luns = sorted(l["lun"] for l in target["luns"])
    q, p = shlex.quote(iqn), shlex.quote("%s:%d" % (address, port))
    cleanup(lab, iqn, address, port)
    assert session_states(lab, iqn) == [], "the initiator is logged in to %s before the test" % iqn
    cut = False
    try:
        # ---- a real login, done in the guest with iscsiadm (not by the collection)
        sh(lab, "iscsiadm -m node -o new -T %s -p %s >/dev/null && iscsiadm -m node -T %s -p %s --login >/dev/null"
                " && udevadm settle" % (q, p, q, p))
        wait_for(lab, iqn, lambda s: s == [("LOGGED_IN", "up")], 60, "login")
        deadline = time.monotonic() + 60
        while len(guest_iscsi_disks(lab)) < len(luns) and time.monotonic() < deadline:
            time.sleep(2)
        disks = guest_iscsi_disks(lab)

        # ---- iscsid stopped while its socket listens (Debian's default): anything that talks to iscsid -- e.g.
        # `iscsiadm -m session -P 3` -- would socket-activate it.  info must report everything and start nothing.
        sh(lab, "systemctl start iscsid.socket && systemctl stop iscsid.service 2>/dev/null; "
                "test \"$(systemctl is-active iscsid.service)\" = inactive")
        before = sh(lab, CONFIG_DIGEST).stdout
        res = lab.module(HOST, INFO, {})
        assert not res.get("failed"), res
        assert res["changed"] is False
        assert sh(lab, "systemctl is-active iscsid.service iscsid.socket", check=False).stdout.split() == [
            "inactive", "active"], "info started iscsid"
        assert sh(lab, CONFIG_DIGEST).stdout == before, "info changed the iSCSI configuration"
        sh(lab, "systemctl start iscsid.service")

        s = the_session(res, iqn)
        assert s["state"] == "LOGGED_IN"
        [conn] = s["connections"]
        assert (conn["state"], conn["persistent_address"], conn["persistent_port"], conn["address"], conn["port"]) \
            == ("up", address, port, address, port)
        assert s["ifacename"] == "default" and s["host"]["software"] is True
        assert s["host"]["name"] == "host%d" % int(s["devices"][0]["hctl"].split(":")[0])
        blocks = dict((d["hctl"], d["block"]) for d in s["devices"] if d["block"])
        assert blocks == disks, "info's LUN -> block map differs from lsblk's"
        assert sorted(d["lun"] for d in s["devices"] if d["block"]) == luns
        for dev in s["devices"]:
            if dev["block"]:
                assert dev["state"] == "running"
                assert dev["by_path"], dev
                for link in dev["by_path"]:
                    assert sh(lab, "readlink -f %s" % shlex.quote(link)).stdout.strip() == "/dev/" + dev["block"]

        # the rest of the report, against the guest's own view
        name_line = sh(lab, "grep '^InitiatorName=' /etc/iscsi/initiatorname.iscsi").stdout.strip()
        assert res["initiator_name"] == name_line.split("=", 1)[1] == s["initiatorname"]
        assert res["open_iscsi"]["version"] == sh(lab, "dpkg-query -W -f '${Version}' open-iscsi").stdout.strip()
        db = sh(lab, "ls -d /var/lib/iscsi/nodes /etc/iscsi/nodes 2>/dev/null | head -1").stdout.strip()
        assert res["node_db"]["path"] + "/nodes" == db
        [node] = [n for n in res["nodes"] if n["target"] == iqn]
        assert (node["portal"], node["tpgt"], node["iface"], node["startup"]) == (
            "%s:%d" % (address, port), -1, "default", "manual")  # a static record made with -o new
        assert res["root_on_iscsi"] is False and res["usr_on_iscsi"] is False
        assert res["init_system"] == "systemd"
        assert res["traps"] == []

        # ---- cut the initiator's link to the target: the session goes FAILED
        lab.cut_path(HOST)
        cut = True
        wait_for(lab, iqn, lambda st: st and st[0][0] == "FAILED", 90, "FAILED after the cut")
        res = lab.module(HOST, INFO, {})
        s = the_session(res, iqn)
        assert s["state"] == "FAILED"
        [conn] = s["connections"]
        assert conn["state"] in ("failed", "down")
        assert (conn["persistent_address"], conn["persistent_port"]) == (address, port)
        assert set(d["state"] for d in s["devices"] if d["block"]) <= {"blocked", "transport-offline"}
        assert dict((d["hctl"], d["block"]) for d in s["devices"] if d["block"]) == disks  # devices stay

        # ---- link back: iscsid recovers the session, info sees LOGGED_IN again
        lab.restore_path(HOST)
        cut = False
        wait_for(lab, iqn, lambda st: st == [("LOGGED_IN", "up")], 120, "recovery after the link came back")
        s = the_session(lab.module(HOST, INFO, {}), iqn)
        assert s["state"] == "LOGGED_IN" and s["connections"][0]["state"] == "up"
        assert set(d["state"] for d in s["devices"] if d["block"]) == {"running"}
    finally:
        if cut:
            lab.restore_path(HOST)
            wait_for(lab, iqn, lambda st: not st or st[0][0] == "LOGGED_IN", 120, "recovery before cleanup")
        cleanup(lab, iqn, address, port)
    assert session_states(lab, iqn) == []
