# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""testinfra verifier of molecule/role: what the initiator role (converge.yml) left on the lab VM.

Expected values come from the lab's lab.json (targets, portals, lab-only credentials, the VM's first-boot name),
the real state from the VM's files, its node DB and the kernel (sysfs, mounts).
"""

from __future__ import annotations

import json
import os
import re
import shlex

import pytest

MOUNT = "/srv/iscsi-open"
LABEL = "iscsi-open"


def _lab():
    state = os.environ.get("LAB_STATE_DIR") or os.path.join(
        os.environ["MOLECULE_SCENARIO_DIRECTORY"], "..", "..", ".lab")
    with open(os.path.join(state, "lab.json"), encoding="utf-8") as f:
        return json.load(f)


LAB = _lab()
PORTAL = "%s:%d" % (LAB["portals"][0]["address"], LAB["portals"][0]["port"])
OPEN = LAB["targets"]["open"]
CHAP = LAB["targets"]["chap"]


def _kv(text):
    """Active `key = value` lines of an open-iscsi file (last one wins)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        out[k.strip()] = v.strip()
    return out


@pytest.fixture(scope="module")
def db_root(host):
    for root in ("/var/lib/iscsi", "/etc/iscsi"):
        if host.file(root + "/nodes").is_directory:
            return root
    raise AssertionError("no node DB on the host")


def _record(host, db_root, target):
    portal_dir = "%s/nodes/%s" % (db_root, target)
    out = host.check_output("ls %s", portal_dir).split()
    dirs = [d for d in out if d.startswith(PORTAL.replace(":", ",") + ",")]
    assert len(dirs) == 1, (target, out)
    return host.file("%s/%s/default" % (portal_dir, dirs[0]))


def test_initiator_name_generated_once_and_alias(host):
    f = host.file("/etc/iscsi/initiatorname.iscsi")
    assert f.exists and f.user == "root" and f.mode == 0o600
    lines = [ln for ln in f.content_string.splitlines() if ln and not ln.startswith("#")]
    names = [ln.split("=", 1)[1] for ln in lines if ln.startswith("InitiatorName=")]
    # The VM's name from its first boot (Debian's iscsi-iname format) is kept: generated once, never again.
    assert names == [LAB["hosts"][host.backend.get_hostname()]["iqn"]]
    assert re.fullmatch(r"iqn\.1993-08\.org\.debian:01:[0-9a-f]{12}", names[0])
    assert lines.count("InitiatorAlias=molecule-" + host.backend.get_hostname()) == 1
    assert not [ln for ln in lines if ln.startswith("GenerateName")]


def test_iscsid_conf_settings(host):
    f = host.file("/etc/iscsi/iscsid.conf")
    assert f.user == "root" and f.mode == 0o644
    kv = _kv(f.content_string)
    assert kv["node.session.timeo.replacement_timeout"] == "20"
    assert kv["node.conn[0].timeo.noop_out_interval"] == "5"
    assert kv["node.conn[0].timeo.noop_out_timeout"] == "10"
    assert kv["iscsid.safe_logout"] == "Yes"
    assert not [k for k in kv if "password" in k]


def test_node_records(host, db_root):
    # The lab connects as root (no sudo in the image).
    open_rec = _record(host, db_root, OPEN["iqn"])
    chap_rec = _record(host, db_root, CHAP["iqn"])
    o, c = _kv(open_rec.content_string), _kv(chap_rec.content_string)
    for kv in (o, c):
        assert kv["node.startup"] == "automatic"
        assert kv["node.conn[0].startup"] == "automatic"
        # iscsid.conf defaults reached the new records: iscsid read the new iscsid.conf before discovery.
        assert kv["node.session.timeo.replacement_timeout"] == "20"
    assert o["node.session.auth.authmethod"] == "None"
    assert c["node.session.auth.authmethod"] == "CHAP"
    assert c["node.session.auth.username"] == CHAP["auth"]["incoming"]["username"]
    assert c["node.session.auth.password"] == CHAP["auth"]["incoming"]["password"]
    assert c["node.session.auth.chap_algs"] == "MD5"
    assert chap_rec.mode == 0o600 and chap_rec.user == "root"
    # iscsiadm reads the records the same way (the password masked without -S).
    out = host.check_output("iscsiadm -m node -T %s -p %s", CHAP["iqn"], PORTAL)
    assert "node.session.auth.password = ********" in out
    assert "node.startup = automatic" in out


def test_discovery_created_only_missing_records_and_kept_chap(host, db_root):
    st = host.file("%s/send_targets/%s/st_config" % (db_root, PORTAL.replace(":", ",")))
    kv = _kv(st.content_string)
    assert kv["discovery.sendtargets.auth.authmethod"] == "CHAP"
    assert kv["discovery.sendtargets.auth.username"] == LAB["discovery_chap"]["incoming"]["username"]
    assert kv["discovery.sendtargets.auth.password"] == LAB["discovery_chap"]["incoming"]["password"]
    assert st.mode == 0o600
    # Every target of the portal got a record; those not in initiator_nodes keep the default startup.
    for key, t in LAB["targets"].items():
        rec = _kv(_record(host, db_root, t["iqn"]).content_string)
        if key not in ("open", "chap"):
            assert rec["node.startup"] == "manual", key


def test_no_secret_in_a_file_others_can_read(host, db_root):
    secrets = [CHAP["auth"]["incoming"]["password"], LAB["discovery_chap"]["incoming"]["password"]]
    for secret in secrets:
        out = host.run("grep -rlF -- %s /etc/iscsi %s /etc/fstab /etc/default", shlex.quote(secret), db_root)
        files = out.stdout.split()
        assert files, secret  # the secret is stored somewhere ...
        for path in files:  # ... but only in files of mode 0600
            assert host.file(path).mode == 0o600, path


def _sessions(host):
    out = {}
    for s in host.check_output("ls /sys/class/iscsi_session").split():
        base = "/sys/class/iscsi_session/" + s
        out[host.file(base + "/targetname").content_string.strip()] = {
            "state": host.file(base + "/state").content_string.strip(),
            "initiatorname": host.file(base + "/initiatorname").content_string.strip(),
            "sid": s,
        }
    return out


def test_sessions_logged_in(host):
    sessions = _sessions(host)
    assert set(sessions) == {OPEN["iqn"], CHAP["iqn"]}
    name = LAB["hosts"][host.backend.get_hostname()]["iqn"]
    for s in sessions.values():
        assert s["state"] == "LOGGED_IN"
        assert s["initiatorname"] == name
    addr = host.check_output(
        "cat /sys/class/iscsi_connection/connection%s:0/persistent_address",
        sessions[CHAP["iqn"]]["sid"][len("session"):])
    assert addr == LAB["portals"][0]["address"]


def test_filesystem_on_the_open_lun_mounted_with_netdev(host):
    fstab = host.file("/etc/fstab")
    assert fstab.mode == 0o644 and fstab.user == "root"
    entries = [ln.split() for ln in fstab.content_string.splitlines() if ln.strip() and not ln.startswith("#")]
    mine = [e for e in entries if e[1] == MOUNT]
    assert mine == [["LABEL=" + LABEL, MOUNT, "ext4", "defaults,noatime,_netdev,nofail", "0", "0"]]

    mnt = json.loads(host.check_output("findmnt --json --output SOURCE,FSTYPE,OPTIONS --mountpoint %s", MOUNT))
    fs = mnt["filesystems"][0]
    assert fs["fstype"] == "ext4" and "noatime" in fs["options"].split(",")
    # The mounted device is LUN 1 of the open target, reached through the portal the role used.
    by_path = "/dev/disk/by-path/ip-%s-iscsi-%s-lun-1" % (PORTAL, OPEN["iqn"])
    assert host.check_output("readlink -f %s", by_path) == fs["source"]
    assert host.check_output("blkid -o value -s LABEL %s", fs["source"]) == LABEL
    # systemd treats it as a remote mount (after the network and the iSCSI logins).
    unit = host.check_output("systemd-escape --path --suffix=mount %s", MOUNT)
    after = host.check_output("systemctl show -p After --value %s", unit)
    assert "remote-fs-pre.target" in after.split()
    assert host.file(MOUNT).mode == 0o755


def test_iscsid_running_and_no_restart_pending(host):
    assert host.service("iscsid").is_running
    assert host.service("iscsid.socket").is_enabled
    assert host.service("open-iscsi").is_enabled
    assert not host.file("/run/openiscsi-initiator.iscsid-restart-pending").exists
