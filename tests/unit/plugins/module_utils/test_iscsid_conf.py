# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
import re

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _iscsid_conf as cat
from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsiadm import parse_show_records
from ansible_collections.openiscsi.initiator.plugins.module_utils._kvconf import KVFile

DATA = os.path.join(os.path.dirname(__file__), "data", "open-iscsi-2.1.8")
KEY_LINE = re.compile(r"^\s*#?\s*([a-z][A-Za-z0-9_.]*(?:\[\d\])?[A-Za-z0-9_.]*)\s*=")


def _read(name):
    with open(os.path.join(DATA, name)) as handle:
        return handle.read()


def _conf_keys(text):
    keys = set()
    for line in text.splitlines():
        m = KEY_LINE.match(line)
        if m and "." in m.group(1):
            keys.add(m.group(1))
    return keys


def test_every_key_of_the_shipped_iscsid_conf_is_known():
    keys = _conf_keys(_read("iscsid.conf"))
    assert len(keys) >= 40  # the Debian 12 file names 42 distinct keys
    assert keys - set(cat.CONF_KEYS) == set()


def test_every_key_of_this_machines_iscsid_conf_is_known():
    path = "/etc/iscsi/iscsid.conf"
    if not os.path.exists(path):
        pytest.skip("open-iscsi is not installed here")
    with open(path) as handle:
        assert _conf_keys(handle.read()) - set(cat.CONF_KEYS) == set()


def test_every_key_of_a_real_node_record_is_known():
    rec = parse_show_records(_read("node-show.txt"))[0]
    known = set(cat.NODE_KEYS) | set(cat.NODE_IDENTITY_KEYS) | set(cat.IFACE_KEYS)
    assert set(rec) - known == set()
    # and every modifiable node key we know is in the real record (none invented), except newer-version keys
    assert set(k for k, s in cat.NODE_KEYS.items() if s.since is None) - set(rec) == set()
    new = KVFile.parse(_read("node-new-static.record")).as_dict()
    assert set(new) - known == set()


def test_every_key_of_real_discovery_and_iface_records_is_known():
    disc = parse_show_records(_read("discoverydb-st-show.txt"))[0]
    known = set(cat.DISCOVERY_KEYS) | {"discovery.type", "discovery.sendtargets.address",
                                       "discovery.sendtargets.port", "node.session.auth.chap_algs"}
    assert set(disc) - known == set()
    iface = parse_show_records(_read("iface-show.txt"))[0]
    assert set(iface) - set(cat.IFACE_KEYS) == set()


def test_enum_values_of_real_records_validate_unchanged():
    rec = parse_show_records(_read("node-show.txt"))[0]
    for key, value in rec.items():
        spec = cat.NODE_KEYS.get(key)
        if spec is None or value == "":
            continue
        assert cat.normalize_value(key, value, spec, "x") == value, key


@pytest.mark.parametrize("key, value, expect", [
    ("node.startup", "Automatic", "automatic"),
    ("node.startup", "onboot", "onboot"),
    ("node.leading_login", True, "Yes"),
    ("node.leading_login", "no", "No"),
    ("node.leading_login", "false", "No"),
    ("node.session.iscsi.InitialR2T", False, "No"),
    ("node.session.cmds_max", "256", "256"),
    ("node.session.cmds_max", 2, "2"),
    ("node.session.queue_depth", 1024, "1024"),
    ("node.session.timeo.replacement_timeout", -1, "-1"),
    ("node.session.xmit_thread_priority", -20, "-20"),
    ("node.session.auth.chap_algs", "sha256, md5", "SHA256,MD5"),
    ("node.session.auth.chap_algs", ["SHA3-256", "SHA1"], "SHA3-256,SHA1"),
    ("node.conn[0].iscsi.HeaderDigest", "crc32c,none", "CRC32C,None"),
    ("node.conn[0].iscsi.MaxXmitDataSegmentLength", 0, "0"),
    ("node.session.auth.username", "user name with spaces", "user name with spaces"),
    ("iscsid.startup", "/bin/systemctl start iscsid.socket", "/bin/systemctl start iscsid.socket"),
    ("iscsid.safe_logout", "yes", "Yes"),
])
def test_normalize_good(key, value, expect):
    assert cat.normalize_value(key, value, cat.CONF_KEYS[key], "settings." + key) == expect


@pytest.mark.parametrize("key, value, words", [
    ("node.startup", "auto", ["one of manual, automatic, onboot"]),
    ("node.startup", True, ["boolean"]),
    ("node.leading_login", "maybe", ["one of No, Yes"]),
    ("node.session.cmds_max", 100, ["power of two"]),
    ("node.session.cmds_max", 4096, ["out of range", "2..2048"]),
    ("node.session.queue_depth", 0, ["out of range"]),
    ("node.session.queue_depth", "ten", ["integer"]),
    ("node.session.queue_depth", True, ["boolean"]),
    ("node.session.queue_depth", 1.5, ["integer"]),
    ("node.session.queue_depth", [1], ["got a list"]),
    ("node.session.xmit_thread_priority", -21, ["out of range"]),
    ("node.session.iscsi.FirstBurstLength", 100, ["512..16777215"]),
    ("node.session.auth.chap_algs", "MD5,SHA512", ["'SHA512' is not a CHAP algorithm"]),
    ("node.session.auth.chap_algs", "MD5,md5", ["twice"]),
    ("node.session.auth.chap_algs", "", ["must not be empty"]),
    ("node.session.auth.username", "", ["must not be empty"]),
    ("node.session.auth.username", " x", ["white space"]),
    ("node.session.auth.username", "a\nb", ["one line"]),
    ("node.session.auth.username", "x" * 256, ["256 bytes", "at most 255"]),
    ("node.session.auth.username", "<empty>", ["PRINTS"]),
    ("node.session.auth.username", None, ["has no value"]),
])
def test_normalize_bad(key, value, words):
    with pytest.raises(InputError) as err:
        cat.normalize_value(key, value, cat.CONF_KEYS[key], "settings." + key)
    msg = str(err.value)
    assert msg.startswith("settings.%s: " % key)
    for word in words:
        assert word in msg


def test_secret_value_never_in_error():
    with pytest.raises(InputError) as err:
        cat.normalize_value("node.session.auth.password", " Secret-Value-123", cat.CONF_KEYS["node.session.auth.password"],
                            "auth.password")
    assert "Secret-Value-123" not in str(err.value)


@pytest.mark.parametrize("key, hint", [
    ("node.startp", "node.startup"),
    ("node.conn.startup", "node.conn[0].startup"),
    ("node.session.timeo.replacement_timeo", "node.session.timeo.replacement_timeout"),
    ("Node.Startup", "node.startup"),
    ("node.session.iscsi.initialr2t", "node.session.iscsi.InitialR2T"),
])
def test_unknown_key_names_close_matches(key, hint):
    with pytest.raises(InputError) as err:
        cat.validate_conf_settings({key: "1"})
    msg = str(err.value)
    assert msg.startswith("settings.%s: unknown key %r" % (key, key))
    assert repr(hint) in msg
    assert "allow_unknown" in msg


def test_unknown_key_allowed_when_asked():
    assert cat.validate_conf_settings({"vendor.thing": "x y"}, allow_unknown=True) == {"vendor.thing": "x y"}
    with pytest.raises(InputError):
        cat.validate_conf_settings({"bad key": "x"}, allow_unknown=True)


def test_conf_secret_must_go_to_secrets():
    with pytest.raises(InputError) as err:
        cat.validate_conf_settings({"node.session.auth.password": "abcdefabcdef"}, secrets_field="secrets")
    assert "secrets" in str(err.value) and "abcdefabcdef" not in str(err.value)
    assert cat.validate_conf_secrets({"discovery.sendtargets.auth.password": "abcdefabcdef"}) == {
        "discovery.sendtargets.auth.password": "abcdefabcdef"}
    with pytest.raises(InputError) as err:
        cat.validate_conf_secrets({"node.startup": "manual"})
    assert "not a secret key" in str(err.value)


@pytest.mark.parametrize("key, words", [
    ("node.name", ["identifies the record"]),
    ("node.conn[0].address", ["identifies the record"]),
    ("iface.net_ifacename", ["openiscsi.initiator.iface"]),
    ("node.session.auth.password", ["auth.password", "no_log"]),
    ("node.session.auth.password_length", ["computed"]),
    ("discovery.sendtargets.auth.username", ["iscsid_config"]),
    ("node.sesion.queue_depth", ["unknown key", "node.session.queue_depth"]),
])
def test_node_settings_refusals(key, words):
    with pytest.raises(InputError) as err:
        cat.validate_node_settings({key: "x"}, field="nodes[1].settings")
    msg = str(err.value)
    assert msg.startswith("nodes[1].settings.%s: " % key)
    for word in words:
        assert word in msg


def test_iface_settings():
    assert cat.validate_iface_settings({"iface.mtu": 9000, "iface.vlan_state": "enable"}) == {
        "iface.mtu": "9000", "iface.vlan_state": "enable"}
    with pytest.raises(InputError) as err:
        cat.validate_iface_settings({"iface.mtuu": 1})
    assert "'iface.mtu'" in str(err.value)


def test_mask_and_version_gate():
    assert cat.mask("node.session.auth.password", "x") == "********"
    assert cat.mask("node.session.auth.password", "") == ""
    assert cat.mask("node.startup", "manual") == "manual"
    assert cat.too_new("node.session.conn_reopen_log_freq", "2.1.8") == "2.1.11"
    assert cat.too_new("node.session.conn_reopen_log_freq", "2.1.11") is None
    assert cat.too_new("node.startup", "2.0.874") is None
    assert "iscsid.safe_logout" in cat.RESTART_KEYS and "node.startup" not in cat.RESTART_KEYS
