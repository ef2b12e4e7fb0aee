# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import errno
import json
import os
import sys

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _nodedb

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures"))
import fixturetree  # noqa: E402  pylint: disable=wrong-import-position

TGT = "iqn.2025-01.lab.openiscsi:tgt-open"
SECRET = "labchap-secret1"
SECRET_IN = "labtarget-out-s1"


def record(target=TGT, address="10.213.0.1", port=3260, tpgt=1, iface="default", startup="automatic",
           version="2.1.8", auth=None, extra=""):
    lines = [
        "# BEGIN RECORD %s" % version,
        "node.name = %s" % target,
        "node.tpgt = %d" % tpgt,
        "node.startup = %s" % startup,
        "node.leading_login = No",
        "iface.iscsi_ifacename = %s" % iface,
        "iface.transport_name = tcp",
        "node.discovery_address = %s" % address,
        "node.discovery_port = %d" % port,
        "node.discovery_type = send_targets",
        "node.session.auth.authmethod = %s" % ("CHAP" if auth else "None"),
        "node.session.auth.chap_algs = MD5",
    ]
    for key, value in (auth or {}).items():
        lines.append("node.session.auth.%s = %s" % (key, value))
    lines += [
        "node.session.timeo.replacement_timeout = 120",
        "node.conn[0].address = %s" % address,
        "node.conn[0].port = %d" % port,
        "node.conn[0].startup = manual",
    ]
    return "\n".join(lines) + "\n" + extra + "# END RECORD\n"


def put(root, path, text):
    full = os.path.join(str(root), path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as handle:
        handle.write(text)
    return full


def dpkg(root, version, arch="amd64"):
    put(root, "/var/lib/dpkg/status",
        "Package: open-iscsi\nStatus: install ok installed\nArchitecture: %s\nVersion: %s\n" % (arch, version))


# ----------------------------------------------------------------------------------------------- db root
@pytest.mark.parametrize("version, expected", [
    ("2.1.8-1", "/etc/iscsi"),
    ("2.1.8-1+deb12u1", "/etc/iscsi"),
    ("2.1.10-2", "/etc/iscsi"),
    ("2.1.10-3", "/var/lib/iscsi"),
    ("2.1.11-1+deb13u2", "/var/lib/iscsi"),
    ("2.1.10-3~bpo12+1", "/etc/iscsi"),  # ~ sorts before: a backport of 2.1.10-3 is older than it
    ("1:2.0.874-7.1", "/var/lib/iscsi"),  # an epoch wins over everything
])
def test_db_root_by_debian_version(tmp_path, version, expected):
    # Records in the other root do not matter: the installed iscsiadm only reads its compiled-in root.
    other = "/var/lib/iscsi" if expected == "/etc/iscsi" else "/etc/iscsi"
    put(tmp_path, other + "/nodes/%s/10.0.0.1,3260,1/default" % TGT, record())
    assert _nodedb.find_db_root(str(tmp_path), version=version) == expected


def test_db_root_reads_dpkg_status_under_root(tmp_path):
    dpkg(tmp_path, "2.1.11-1+deb13u2")
    info = _nodedb.db_root_info(str(tmp_path))
    assert info["path"] == "/var/lib/iscsi" and info["version"] == "2.1.11-1+deb13u2"
    assert "2.1.10-3" in info["reason"]


@pytest.mark.parametrize("populated, expected", [
    ([], "/etc/iscsi"),
    (["/etc/iscsi/nodes"], "/etc/iscsi"),
    (["/var/lib/iscsi/nodes"], "/var/lib/iscsi"),
    (["/var/lib/iscsi/send_targets"], "/var/lib/iscsi"),
    (["/etc/iscsi/nodes", "/var/lib/iscsi/nodes"], "/etc/iscsi"),
])
def test_db_root_without_package_version(tmp_path, populated, expected):
    for path in populated:
        os.makedirs(os.path.join(str(tmp_path), path.lstrip("/")))
    info = _nodedb.db_root_info(str(tmp_path))
    assert info["version"] is None
    assert info["path"] == expected
    assert info["populated"] == sorted(set(os.path.dirname(p) for p in populated),
                                       key=_nodedb.DB_ROOTS.index)


def test_db_root_upstream_version_without_revision_falls_back_to_layout(tmp_path):
    os.makedirs(os.path.join(str(tmp_path), "var/lib/iscsi/nodes"))
    assert _nodedb.find_db_root(str(tmp_path), version="2.1.8") == "/var/lib/iscsi"


# ----------------------------------------------------------------------------------------------- portals, paths
def test_format_portal_and_paths():
    assert _nodedb.format_portal("10.0.0.1", 3260) == "10.0.0.1:3260"
    assert _nodedb.format_portal("fd00::1", 3260) == "[fd00::1]:3260"
    assert _nodedb.portal_dirname("[fd00::1]", 3260, -1) == "fd00::1,3260,-1"
    assert _nodedb.record_path("/var/lib/iscsi", TGT, "fd00::1", 3260, 1) == \
        "/var/lib/iscsi/nodes/%s/fd00::1,3260,1/default" % TGT
    assert _nodedb.record_path("/etc/iscsi", TGT, "10.0.0.1", 3260, -1, "eth1") == \
        "/etc/iscsi/nodes/%s/10.0.0.1,3260,-1/eth1" % TGT
    assert _nodedb.target_dir("/etc/iscsi", TGT) == "/etc/iscsi/nodes/" + TGT
    assert _nodedb.send_targets_dir("/etc/iscsi", "[fd00::1]", 3260) == "/etc/iscsi/send_targets/fd00::1,3260"


@pytest.mark.parametrize("name, expected", [
    ("10.0.0.1,3260,1", ("10.0.0.1", 3260, 1)),
    ("fd00::1,3260,-1", ("fd00::1", 3260, -1)),
    ("10.0.0.1,3260", ("10.0.0.1", 3260, None)),
    ("st_config", None),
    ("10.0.0.1,port,1", None),
    (",3260", None),
])
def test_parse_portal_dirname(name, expected):
    assert _nodedb.parse_portal_dirname(name) == expected


# ----------------------------------------------------------------------------------------------- node records
def test_read_nodes_both_layouts_ipv6_and_static(tmp_path):
    db = "/etc/iscsi"
    put(tmp_path, db + "/nodes/%s/10.213.0.1,3260,1/default" % TGT, record())
    put(tmp_path, db + "/nodes/%s/10.213.0.1,3260,1/eth1" % TGT, record(iface="eth1", startup="manual"))
    put(tmp_path, db + "/nodes/%s/fd00::1,3260,-1/default" % TGT, record(address="fd00::1", tpgt=-1))
    put(tmp_path, db + "/nodes/iqn.2025-01.lab.openiscsi:flat/10.213.0.2,3260,2",
        record(target="iqn.2025-01.lab.openiscsi:flat", address="10.213.0.2", tpgt=2, iface="default"))
    put(tmp_path, db + "/nodes/iqn.2025-01.lab.openiscsi:oldest/10.213.0.2,3260",
        record(target="iqn.2025-01.lab.openiscsi:oldest", address="10.213.0.2", tpgt=5))
    put(tmp_path, db + "/nodes/%s/garbage-entry" % TGT, "not a record\n")
    nodes = _nodedb.read_nodes(str(tmp_path), db=db)
    got = [(n["target"].rsplit(":", 1)[1], n["portal"], n["tpgt"], n["iface"], n["layout"], n["startup"])
           for n in nodes]
    assert got == [
        ("flat", "10.213.0.2:3260", 2, "default", "flat", "automatic"),
        ("oldest", "10.213.0.2:3260", 5, "default", "flat", "automatic"),
        ("tgt-open", "10.213.0.1:3260", 1, "default", "dir", "automatic"),
        ("tgt-open", "10.213.0.1:3260", 1, "eth1", "dir", "manual"),
        ("tgt-open", "[fd00::1]:3260", -1, "default", "dir", "automatic"),
    ]
    v6 = nodes[4]
    assert v6["address"] == "fd00::1" and v6["port"] == 3260
    assert v6["path"] == "/etc/iscsi/nodes/%s/fd00::1,3260,-1/default" % TGT
    assert v6["conn_startup"] == "manual" and v6["transport"] == "tcp" and v6["version"] == "2.1.8"
    assert v6["discovery"] == {"type": "send_targets", "address": "fd00::1", "port": 3260}
    assert v6["settings"]["node.session.timeo.replacement_timeout"] == "120"


def test_secrets_never_returned_by_default(tmp_path):
    put(tmp_path, "/etc/iscsi/nodes/%s/10.213.0.1,3260,1/default" % TGT,
        record(auth={"username": "labmutual", "password": SECRET, "username_in": "labtarget",
                     "password_in": SECRET_IN}))
    [n] = _nodedb.read_nodes(str(tmp_path), db="/etc/iscsi")
    assert n["auth"] == {"method": "CHAP", "username": "labmutual", "username_in": "labtarget",
                         "chap_algs": "MD5", "has_password": True, "has_password_in": True}
    dumped = json.dumps(n)
    assert SECRET not in dumped and SECRET_IN not in dumped
    assert not [k for k in n["settings"] if "password" in k]
    [s] = _nodedb.read_nodes(str(tmp_path), db="/etc/iscsi", with_secrets=True)
    assert s["auth"]["password"] == SECRET and s["auth"]["password_in"] == SECRET_IN
    assert s["settings"]["node.session.auth.password"] == SECRET


def test_empty_values_and_missing_passwords(tmp_path):
    put(tmp_path, "/etc/iscsi/nodes/%s/10.213.0.1,3260,1/default" % TGT,
        record(auth={"username": "<empty>", "password": "<empty>"}))
    [n] = _nodedb.read_nodes(str(tmp_path), db="/etc/iscsi")
    assert n["auth"]["username"] is None and n["auth"]["has_password"] is False
    assert n["auth"]["has_password_in"] is False  # absent from the file
    assert n["settings"]["node.session.auth.username"] == "<empty>"  # settings are as stored


def test_duplicate_keys_last_wins(tmp_path):
    put(tmp_path, "/etc/iscsi/nodes/%s/10.213.0.1,3260,1/default" % TGT,
        record(extra="node.startup = manual\nnode.startup = onboot\n"))
    [n] = _nodedb.read_nodes(str(tmp_path), db="/etc/iscsi")
    assert n["startup"] == "onboot"
    assert n["settings"]["node.startup"] == "onboot"
    assert n["duplicate_keys"] == ["node.startup"]


def test_location_comes_from_the_path(tmp_path):
    # A record whose content disagrees with its place: iscsiadm finds it by its path, so the path wins.
    put(tmp_path, "/var/lib/iscsi/nodes/%s/10.213.0.9,3261,7/default" % TGT, record())
    [n] = _nodedb.read_nodes(str(tmp_path), db="/var/lib/iscsi")
    assert (n["address"], n["port"], n["tpgt"]) == ("10.213.0.9", 3261, 7)
    assert n["path"].startswith("/var/lib/iscsi/nodes/")


def test_unreadable_record_is_skipped(tmp_path, monkeypatch):
    put(tmp_path, "/etc/iscsi/nodes/%s/10.213.0.1,3260,1/default" % TGT, record())
    put(tmp_path, "/etc/iscsi/nodes/%s/10.213.0.2,3260,1/default" % TGT, record(address="10.213.0.2"))
    real_open = open

    def fake(path, *args, **kwargs):
        if "10.213.0.1," in str(path):
            raise OSError(errno.EACCES, "denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(_nodedb, "open", fake, raising=False)
    assert [n["portal"] for n in _nodedb.read_nodes(str(tmp_path), db="/etc/iscsi")] == ["10.213.0.2:3260"]


def test_empty_db(tmp_path):
    assert _nodedb.read_nodes(str(tmp_path), db="/etc/iscsi") == []
    assert _nodedb.read_send_targets(str(tmp_path), db="/etc/iscsi") == []
    assert _nodedb.read_ifaces(str(tmp_path), db="/etc/iscsi") == []


def test_find_nodes(tmp_path):
    put(tmp_path, "/etc/iscsi/nodes/%s/10.213.0.1,3260,1/default" % TGT, record())
    put(tmp_path, "/etc/iscsi/nodes/%s/10.213.0.2,3260,1/default" % TGT, record(address="10.213.0.2"))
    put(tmp_path, "/etc/iscsi/nodes/iqn.x:y/10.213.0.1,3260,1/default", record(target="iqn.x:y"))
    nodes = _nodedb.read_nodes(str(tmp_path), db="/etc/iscsi")
    assert len(_nodedb.find_nodes(nodes, target=TGT)) == 2
    assert [n["target"] for n in _nodedb.find_nodes(nodes, portal="10.213.0.1:3260")] == [TGT, "iqn.x:y"]
    assert _nodedb.find_nodes(nodes, target=TGT, portal="10.213.0.2:3260", iface="default", tpgt=1)[0]["address"] \
        == "10.213.0.2"
    assert _nodedb.find_nodes(nodes, tpgt=-1) == []


# ----------------------------------------------------------------------------------------------- send_targets, ifaces
ST = """# BEGIN RECORD 2.1.8
discovery.startup = manual
discovery.type = sendtargets
discovery.sendtargets.address = 10.213.0.1
discovery.sendtargets.port = 3260
discovery.sendtargets.auth.authmethod = CHAP
discovery.sendtargets.auth.username = labdisc
discovery.sendtargets.auth.password = labdisc-secret1
discovery.sendtargets.timeo.login_timeout = 15
# END RECORD
"""


def test_read_send_targets(tmp_path):
    put(tmp_path, "/etc/iscsi/send_targets/10.213.0.1,3260/st_config", ST)
    link_dir = os.path.join(str(tmp_path), "etc/iscsi/send_targets/10.213.0.1,3260")
    os.symlink("/etc/iscsi/nodes/%s/10.213.0.1,3260,1" % TGT, os.path.join(link_dir, "%s,10.213.0.1,3260,1,default" % TGT))
    put(tmp_path, "/etc/iscsi/send_targets/fd00::1,3260", ST.replace("10.213.0.1", "fd00::1"))  # flat, old
    sts = _nodedb.read_send_targets(str(tmp_path), db="/etc/iscsi")
    assert [s["portal"] for s in sts] == ["10.213.0.1:3260", "[fd00::1]:3260"]
    st = sts[0]
    assert st["path"] == "/etc/iscsi/send_targets/10.213.0.1,3260/st_config"
    assert st["auth"] == {"method": "CHAP", "username": "labdisc", "username_in": None, "has_password": True,
                          "has_password_in": False}
    assert st["nodes"] == [{"target": TGT, "portal_dir": "10.213.0.1,3260,1", "iface": "default"}]
    assert "labdisc-secret1" not in json.dumps(sts)
    assert st["settings"]["discovery.sendtargets.timeo.login_timeout"] == "15"
    assert _nodedb.read_send_targets(str(tmp_path), db="/etc/iscsi", with_secrets=True)[0]["auth"]["password"] \
        == "labdisc-secret1"


IFACE = """# BEGIN RECORD 2.1.8
iface.iscsi_ifacename = %s
iface.net_ifacename = eth1
iface.ipaddress = <empty>
iface.transport_name = tcp
# END RECORD
"""


def test_read_ifaces_db_and_etc_fallback(tmp_path):
    put(tmp_path, "/var/lib/iscsi/ifaces/eth1", IFACE % "eth1")
    put(tmp_path, "/etc/iscsi/ifaces/eth2", IFACE % "eth2")
    put(tmp_path, "/etc/iscsi/ifaces/eth1", IFACE % "shadowed")
    ifaces = _nodedb.read_ifaces(str(tmp_path), db="/var/lib/iscsi")
    assert [(i["name"], i["path"]) for i in ifaces] == [
        ("eth1", "/var/lib/iscsi/ifaces/eth1"), ("eth2", "/etc/iscsi/ifaces/eth2")]
    assert ifaces[0]["net_ifacename"] == "eth1" and ifaces[0]["ipaddress"] is None
    assert ifaces[0]["transport"] == "tcp" and ifaces[0]["version"] == "2.1.8"


@pytest.mark.parametrize("key, secret", [
    ("node.session.auth.password", True), ("node.session.auth.password_in", True),
    ("discovery.sendtargets.auth.password", True), ("discovery.sendtargets.auth.password_in", True),
    ("node.session.auth.username", False), ("node.session.auth.password_length", False),
    ("passwords", False),
])
def test_is_secret(key, secret):
    assert _nodedb.is_secret(key) is secret


# ----------------------------------------------------------------------------------------------- captured lab trees
CHAP_TGT = "iqn.2025-01.lab.openiscsi:tgt-chap"


@pytest.mark.parametrize("name, db, version", [
    ("bookworm-logged-in", "/etc/iscsi", "2.1.8-1"),
    ("trixie-logged-in", "/var/lib/iscsi", "2.1.11-1+deb13u2"),
])
def test_captured_node_db(tmp_path, name, db, version):
    root = fixturetree.materialize(name, tmp_path)
    meta = fixturetree.load_meta(name)
    info = _nodedb.db_root_info(root)
    assert (info["path"], info["version"], info["populated"]) == (db, version, [db])
    nodes = _nodedb.read_nodes(root)
    # exactly the records iscsiadm listed in the guest, with the same portals and tpgts
    assert sorted((n["portal"], n["tpgt"], n["target"]) for n in nodes) == sorted(fixturetree.iscsiadm_nodes(meta))
    by = dict(((n["target"], n["portal"]), n) for n in nodes)
    # 2.1.8 and 2.1.11 keep static (-o new) records in the flat <addr>,<port> layout, IPv6 without brackets
    v6 = by[(TGT, "[fd00:213::1]:3260")]
    assert (v6["layout"], v6["tpgt"], v6["address"]) == ("flat", -1, "fd00:213::1")
    assert v6["path"] == "%s/nodes/%s/fd00:213::1,3260" % (db, TGT)
    assert v6["discovery"]["type"] == "static"
    disc = by[(TGT, "10.213.0.1:3260")]
    assert (disc["layout"], disc["tpgt"], disc["iface"], disc["startup"]) == ("dir", 1, "default", "automatic")
    assert disc["discovery"] == {"type": "send_targets", "address": "10.213.0.1", "port": 3260}
    chap = by[(CHAP_TGT, "10.213.0.2:3260")]
    assert chap["auth"]["method"] == "CHAP" and chap["auth"]["username"] == "labchap"
    assert chap["auth"]["has_password"] is True and chap["auth"]["has_password_in"] is False
    # the secret is in the captured files, and in no result
    with open(os.path.join(root, chap["path"].lstrip("/"))) as handle:
        assert "labchap-secret1" in handle.read()
    assert "labchap-secret1" not in json.dumps(nodes)
    assert len(nodes[0]["settings"]) > 50  # every key of a real record


@pytest.mark.parametrize("name, db", [("bookworm-logged-in", "/etc/iscsi"), ("trixie-logged-in", "/var/lib/iscsi")])
def test_captured_send_targets_and_ifaces(tmp_path, name, db):
    root = fixturetree.materialize(name, tmp_path)
    [st] = _nodedb.read_send_targets(root)
    assert (st["portal"], st["path"], st["auth"]["method"]) == (
        "10.213.0.1:3260", db + "/send_targets/10.213.0.1,3260/st_config", "None")
    assert sorted(n["target"].rsplit(":", 1)[1] for n in st["nodes"]) == [
        "tgt-acl", "tgt-chap", "tgt-mutual", "tgt-open"]
    assert set((n["portal_dir"], n["iface"]) for n in st["nodes"]) == {("10.213.0.1,3260,1", "default")}
    [iface] = _nodedb.read_ifaces(root)
    # Debian 13 keeps iface records next to the nodes, in /var/lib/iscsi/ifaces
    assert (iface["name"], iface["net_ifacename"], iface["transport"], iface["path"]) == (
        "labif0", "lab0", "tcp", db + "/ifaces/labif0")
