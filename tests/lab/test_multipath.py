# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The multipath module on a lab initiator with Debian's multipath-tools: the file written and validated by the
guest's own multipath-tools, multipathd told only when it runs and the configuration really changed, two sessions
(one per lab portal) to one LUN becoming one map with two healthy paths, an alias applied by a reconfigure, the
session module's logout of one path of a mounted map allowed and of its last path refused, "can this portal go
down?" (playbooks/can_go_down.yml), and the refusal to reconfigure while a map has no healthy path (the initiator's
link cut), until the link is back.

The lab image has multipath-tools with multipathd disabled; this test starts it and leaves the guest as it found it
(daemon stopped, maps flushed, sessions and records gone, no multipath.conf, no wwids/bindings of the lab LUNs), so
the other lab tests keep using bare /dev/sdX."""

from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.lab

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HOST = "init1"
CONF = "/etc/multipath.conf"
BASE = {"defaults": {"find_multipaths": "no", "user_friendly_names": False, "fast_io_fail_tmo": 5},
        "blacklist": [{"devnode": "^vd[a-z]"}]}


def sh(lab, cmd, check=True):
    return lab.ssh(HOST, cmd, check=check)


def cleanup(lab):
    sh(lab, "systemctl disable --now multipathd.socket multipathd.service >/dev/null 2>&1; "
            "multipath -F >/dev/null 2>&1; true")
    lab.forget_targets(HOST)
    sh(lab, "rm -f %s /etc/multipath/wwids /etc/multipath/bindings; true" % CONF)


@pytest.fixture
def clean(lab):
    cleanup(lab)
    assert sh(lab, "ls /sys/class/iscsi_session/ | wc -l").stdout.strip() == "0"
    try:
        yield lab
    finally:
        cleanup(lab)


def dm_maps(lab):
    """``{name: [(sd, state), ...]}`` of the multipath maps, from the guest's sysfs."""
    out = sh(lab, "for d in /sys/block/dm-*; do [ -e $d/dm/uuid ] || continue; "
                  "case $(cat $d/dm/uuid) in mpath-*) ;; *) continue;; esac; "
                  "for s in $d/slaves/*; do echo $(cat $d/dm/name) ${s##*/} $(cat /sys/block/${s##*/}/device/state);"
                  " done; done").stdout
    maps = {}
    for line in out.splitlines():
        name, sd, state = line.split()
        maps.setdefault(name, []).append((sd, state))
    return maps


def login_sessions(lab):
    return sh(lab, "ls /sys/class/iscsi_session/").stdout.split()


def conf_sha(lab):
    return sh(lab, "sha256sum %s" % CONF).stdout.split()[0]


def test_multipath_config_maps_alias_and_the_health_gate(clean, tmp_path):
    lab = clean
    lab_tmp = str(tmp_path)
    t = lab.target("open")

    # 1. the file: check mode predicts, multipathd is not running, the guest's multipath-tools validates
    pred = lab.module(HOST, "multipath", BASE, check=True, diff=True)
    assert pred["changed"] is True and not pred.get("failed"), pred
    assert sh(lab, "test -e %s" % CONF, check=False).returncode != 0
    res = lab.module(HOST, "multipath", BASE, diff=True)
    assert res["changed"] is True and res["validated"] is True, res
    assert res["reconfigured"] is False and "not running" in res["reconfigure_skipped"]
    assert res["diff"]["after"] == pred["diff"]["after"] == sh(lab, "cat %s" % CONF).stdout
    # the guest's multipath-tools reads what was asked
    dump = sh(lab, "multipath -t").stdout
    assert '\tfind_multipaths "off"' in dump and 'devnode "^vd[a-z]"' in dump
    assert lab.module(HOST, "multipath", BASE)["changed"] is False
    # a value multipath-tools refuses: refused, nothing written
    before = conf_sha(lab)
    bad = lab.module(HOST, "multipath", {"multipaths": [{"wwid": "36001405deadbeef", "alias": "a/b"}]})
    assert bad["failed"] and "cannot contain a slash" in bad["msg"], bad
    assert conf_sha(lab) == before

    # 2. two sessions (one per portal) to the target, multipathd started: one map per LUN, two healthy paths each
    nodes = [{"target": t["iqn"], "portal": p} for p in lab.portals()]
    assert not lab.module(HOST, "node", {"nodes": nodes}).get("failed")
    login = lab.module(HOST, "session", {"target": t["iqn"], "timeout": 180})
    assert login["changed"] and len(login["sessions"]) == 2, login
    # the role's multipath tasks: the same configuration (no change), multipathd enabled and started
    play = os.path.join(lab_tmp, "role-multipath.yml")
    with open(play, "w") as fh:
        json.dump([{"hosts": HOST, "gather_facts": False, "tasks": [{"ansible.builtin.include_role": {
            "name": "openiscsi.initiator.initiator", "tasks_from": "multipath"}}]}], fh)
    role = lab.playbook(play, {"initiator_multipath": dict(BASE, enabled=True)})
    assert role.returncode == 0, role.stdout + role.stderr
    conf_task = [r for r in role.results if r["task"].endswith("/etc/multipath.conf")]
    assert conf_task and conf_task[0]["status"] == "ok" and not conf_task[0]["result"]["changed"], role.results
    assert sh(lab, "systemctl is-enabled multipathd.service; systemctl is-active multipathd.service").stdout.split() \
        == ["enabled", "active"]

    def two_paths_each():
        found = dm_maps(lab)
        return found if len(found) == len(t["luns"]) and all(len(p) == 2 for p in found.values()) else None
    maps = lab.wait_for(two_paths_each, timeout=120, what="one map per LUN with two paths")
    seen = lab.module(HOST, "multipath", BASE)
    assert seen["changed"] is False
    assert sorted(m["name"] for m in seen["maps"]) == sorted(maps)
    assert all(m["healthy_paths"] == m["total_paths"] == 2 for m in seen["maps"]), seen["maps"]
    for m in seen["maps"]:
        assert sorted(p["device"] for p in m["paths"]) == sorted(sd for sd, _state in maps[m["name"]])
        assert m["name"] == m["wwid"]  # user_friendly_names no: a map is named by its WWID

    # "can portal A go down?" across the (one-host) fleet: yes, every map keeps its path through portal B
    playbook = os.path.join(REPO, "playbooks", "can_go_down.yml")
    portal_a, portal_b = lab.portals()
    yes = lab.playbook(playbook, {"can_go_down_hosts": HOST, "can_go_down_portal": portal_a})
    assert yes.returncode == 0, yes.stdout + yes.stderr
    assert "can go down: every map of 1 host(s)" in yes.stdout

    # multipathd writes fast_io_fail_tmo (5) into the paths' recovery_tmo; a reload between the recovery_tmo module's
    # raise and restore undoes the raise, and the restore still puts the saved values back
    def tmos():
        return sh(lab, "cat /sys/class/iscsi_session/session*/recovery_tmo").stdout.split()
    lab.wait_for(lambda: tmos() == ["5", "5"], timeout=60, what="multipathd writing fast_io_fail_tmo into recovery_tmo")
    raised = lab.module(HOST, "recovery_tmo", {"minimum": 120})
    assert raised["changed"] and tmos() == ["120", "120"], raised
    sh(lab, "multipathd reconfigure")
    lab.wait_for(lambda: tmos() == ["5", "5"], timeout=60, what="multipathd's reload writing recovery_tmo 5")
    restored = lab.module(HOST, "recovery_tmo", {"restore": raised["saved"]})
    assert not restored["failed"] and tmos() == ["5", "5"], restored

    # 3. an alias for the first map: a real change, multipathd reconfigured, /dev/mapper/<alias> appears
    wwid = sorted(m["wwid"] for m in seen["maps"])[0]
    args = dict(BASE, multipaths=[{"wwid": wwid, "alias": "labdata"}])
    alias = lab.module(HOST, "multipath", args)
    assert alias["changed"] and alias["effective_changed"] and alias["reconfigured"] is True, alias
    lab.wait_for(lambda: "labdata" in dm_maps(lab), timeout=60, what="the map renamed labdata")
    # udev makes the /dev/mapper link after the rename's uevent
    lab.wait_for(lambda: sh(lab, "test -b /dev/mapper/labdata", check=False).returncode == 0, timeout=60,
                 what="/dev/mapper/labdata")
    assert lab.module(HOST, "multipath", args)["changed"] is False

    # a file system on the map: logging out one path is allowed (the other keeps the map, I/O goes on), logging out
    # the last one is refused while it is mounted
    mnt = "/mnt/lab-multipath"
    sh(lab, "mkfs.ext4 -q -F /dev/mapper/labdata && mkdir -p %s && mount /dev/mapper/labdata %s" % (mnt, mnt))
    line = "/dev/mapper/labdata %s ext4 defaults 0 0" % mnt
    sh(lab, "cp /etc/fstab /etc/fstab.lab-multipath && echo '%s' >> /etc/fstab" % line)
    try:
        # fstab_netdev finds the entry on the map (dm-multipath over two iSCSI paths) and adds _netdev
        netdev = lab.module(HOST, "fstab_netdev", {"detect": True})
        assert netdev["changed"] and not netdev["failed"], netdev
        assert "/dev/mapper/labdata %s ext4 defaults,_netdev 0 0" % mnt in sh(lab, "cat /etc/fstab").stdout

        one = lab.module(HOST, "session", {"target": t["iqn"], "portal": portal_b, "state": "logged_out"})
        assert one["changed"] and not one["failed"], one
        assert "keeps running on its other path" in one["_raw"], one
        sh(lab, "dd if=/dev/urandom of=%s/after-one-logout bs=64k count=16 conv=fsync 2>&1" % mnt)
        last = lab.module(HOST, "session", {"target": t["iqn"], "portal": portal_a, "state": "logged_out"})
        assert last["failed"] and "refusing to log out" in last["msg"] and mnt in last["msg"], last
        assert len(login_sessions(lab)) == 1
    finally:
        sh(lab, "umount %s; rmdir %s; mv /etc/fstab.lab-multipath /etc/fstab" % (mnt, mnt), check=False)
    again = lab.module(HOST, "session", {"target": t["iqn"], "timeout": 180})
    assert again["changed"] and len(login_sessions(lab)) == 2, again
    lab.wait_for(two_paths_each, timeout=120, what="both paths back in every map")

    # 4. the link cut: every path of every map leaves 'running'; a reconfigure is refused, nothing written
    lab.cut_path(HOST)
    try:
        lab.wait_for(lambda: all(s != "running" for paths in dm_maps(lab).values() for _sd, s in paths),
                     timeout=120, what="every path of every map not running")
        before = conf_sha(lab)
        more = dict(args, defaults=dict(BASE["defaults"], polling_interval=7))
        refused = lab.module(HOST, "multipath", more)
        assert refused["failed"] and "labdata" in refused["msg"] and "force: true" in refused["msg"], refused
        assert conf_sha(lab) == before
        assert all(m["healthy_paths"] == 0 for m in refused["maps"]), refused["maps"]
        # the lab has one link: with it cut, portal B cannot go down either (no map keeps a healthy path)
        no = lab.playbook(playbook, {"can_go_down_hosts": HOST, "can_go_down_portal": portal_b})
        assert no.returncode != 0
        assert "can NOT go down" in no.stdout and "%s: map labdata" % HOST in no.stdout, no.stdout
    finally:
        lab.restore_path(HOST)

    def all_running():
        found = dm_maps(lab)
        return found and all(s == "running" for paths in found.values() for _sd, s in paths)
    lab.wait_for(all_running, timeout=180, what="every path running again")
    done = lab.module(HOST, "multipath", more)
    assert done["changed"] and done["reconfigured"] is True, done
    assert "\tpolling_interval 7" in sh(lab, "multipath -t").stdout
    print(json.dumps({"maps": {m["name"]: m["total_paths"] for m in seen["maps"]}}))
