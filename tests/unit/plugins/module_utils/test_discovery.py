# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _discovery as d
from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError

T1 = "iqn.2025-01.lab.openiscsi:tgt-open"
T2 = "iqn.2025-01.lab.openiscsi:tgt-chap"

# What `iscsiadm -m discoverydb -t st -p 10.213.0.1 --discover -o new -P 1` prints (usr/idbm.c tree printers).
TREE = """Target: iqn.2025-01.lab.openiscsi:tgt-open
\tPortal: 10.213.0.1:3260,1
\t\tIface Name: default
\tPortal: 10.213.0.2:3260,1
\t\tIface Name: default
Target: iqn.2025-01.lab.openiscsi:tgt-chap
\tPortal: 10.213.0.1:3260,1
\t\tIface Name: default
\t\tIface Name: eth1-path
\tPortal: [fd00:213::1]:3260,1
\t\tIface Name: default
"""

ST_CONFIG = """# BEGIN RECORD 2.1.8
discovery.startup = manual
discovery.type = sendtargets
discovery.sendtargets.address = 10.213.0.1
discovery.sendtargets.port = 3260
discovery.sendtargets.auth.authmethod = None
discovery.sendtargets.timeo.login_timeout = 15
discovery.sendtargets.use_discoveryd = No
# END RECORD
"""


# ------------------------------------------------------------------------------------------- output parsing
def test_parse_tree_gives_one_record_per_iface_line():
    recs = d.parse_tree(TREE)
    assert recs == [
        d.Discovered(T1, "10.213.0.1", 3260, 1, "default"),
        d.Discovered(T1, "10.213.0.2", 3260, 1, "default"),
        d.Discovered(T2, "10.213.0.1", 3260, 1, "default"),
        d.Discovered(T2, "10.213.0.1", 3260, 1, "eth1-path"),
        d.Discovered(T2, "fd00:213::1", 3260, 1, "default"),
    ]


def test_parse_tree_ignores_noise_and_dedupes():
    text = "iscsiadm: some warning\n" + TREE + TREE
    assert len(d.parse_tree(text)) == 5


def test_parse_tree_empty():
    assert d.parse_tree("") == []


@pytest.mark.parametrize("text", [
    "\tPortal: 10.0.0.1:3260,1\n",                       # portal without target
    "Target: iqn.2025-01.a:b\n\t\tIface Name: default\n",  # iface without portal
    "Target: iqn.2025-01.a:b\n\tPortal: nonsense\n",     # unparsable portal
    "Target:\n",                                         # empty target
])
def test_parse_tree_rejects_malformed(text):
    with pytest.raises(ValueError):
        d.parse_tree(text)


def test_parse_flat_and_unsigned_minus_one():
    text = ("10.213.0.1:3260,1 %s\n[fd00::1]:3260,4294967295 %s\n::ffff:10.0.0.1:3260,2 %s\n" % (T1, T2, T1))
    assert d.parse_flat(text) == [
        d.Discovered(T1, "10.213.0.1", 3260, 1, "default"),
        d.Discovered(T2, "fd00::1", 3260, -1, "default"),
        d.Discovered(T1, "::ffff:10.0.0.1", 3260, 2, "default"),
    ]


def test_parse_flat_rejects_garbage():
    with pytest.raises(ValueError):
        d.parse_flat("10.0.0.1:3260,1 a b\n")


@pytest.mark.parametrize("text,expected", [
    ("10.0.0.1:3260,1", ("10.0.0.1", 3260, 1)),
    ("[fd00::1]:3261", ("fd00::1", 3261, None)),
    ("host.example:3260,-1", ("host.example", 3260, -1)),
])
def test_split_portal_text(text, expected):
    assert d.split_portal_text(text) == expected


@pytest.mark.parametrize("text", ["10.0.0.1", "10.0.0.1:0,1", "10.0.0.1:65536", "[fd00::1]", ""])
def test_split_portal_text_bad(text):
    with pytest.raises(ValueError):
        d.split_portal_text(text)


def test_records_from_triples_binds_each_iface():
    recs = d.records_from_triples([(T1, "10.0.0.1:3260", 1), (T1, "[fd00::1]:3260", "2")], ["a", "b"])
    assert recs == [d.Discovered(T1, "10.0.0.1", 3260, 1, "a"), d.Discovered(T1, "10.0.0.1", 3260, 1, "b"),
                    d.Discovered(T1, "fd00::1", 3260, 2, "a"), d.Discovered(T1, "fd00::1", 3260, 2, "b")]
    assert d.records_from_triples([(T1, "10.0.0.1:3260", 1)]) == [d.Discovered(T1, "10.0.0.1", 3260, 1, "default")]


# ------------------------------------------------------------------------------------------- planning
def node(target, address, port=3260, tpgt=1, iface="default"):
    return {"target": target, "address": address, "port": port, "tpgt": tpgt, "iface": iface}


def test_plan_new_records_exact_keys():
    found = d.parse_tree(TREE)
    nodes = [node(T1, "10.213.0.1"), node(T2, "10.213.0.1", iface="eth1-path")]
    new, existing = d.plan_new_records(found, nodes)
    assert existing == [d.Discovered(T1, "10.213.0.1", 3260, 1, "default"),
                        d.Discovered(T2, "10.213.0.1", 3260, 1, "eth1-path")]
    assert [r.address for r in new] == ["10.213.0.2", "10.213.0.1", "fd00:213::1"]


def test_plan_other_tpgt_or_iface_is_new():
    found = [d.Discovered(T1, "10.0.0.1", 3260, 1, "default")]
    assert d.plan_new_records(found, [node(T1, "10.0.0.1", tpgt=2)])[0] == found
    assert d.plan_new_records(found, [node(T1, "10.0.0.1", iface="x")])[0] == found
    # a target whose name differs only by suffix is another target
    assert d.plan_new_records(found, [node(T1 + "0", "10.0.0.1")])[0] == found


def test_plan_old_flat_record_blocks_every_tpgt():
    found = [d.Discovered(T1, "10.0.0.1", 3260, 1, "default"), d.Discovered(T1, "10.0.0.1", 3260, 2, "x")]
    new, existing = d.plan_new_records(found, [node(T1, "10.0.0.1", tpgt=None, iface=None)])
    assert new == [] and existing == found


def test_static_twins_reported():
    found = [d.Discovered(T1, "10.0.0.1", 3260, 1, "default")]
    nodes = [node(T1, "10.0.0.1", tpgt=-1)]
    new, _rest = d.plan_new_records(found, nodes)
    assert new == found  # iscsiadm -o new adds the tpgt 1 record next to the static one
    assert d.static_twins(new, nodes) == found
    assert d.static_twins(new, []) == []


def test_existing_keys_accepts_tuples():
    full, flat = d.existing_keys([(T1, "a", 3260, 1, "default")])
    assert full == {(T1, "a", 3260, 1, "default")} and flat == set()


def test_node_entries_shape_and_order():
    entries = d.node_entries([d.Discovered(T2, "fd00::1", 3260, 1, "default"),
                              d.Discovered(T1, "10.0.0.1", 3261, 1, "default")])
    assert T2 < T1  # sorted by target name
    assert entries == [
        {"target": T2, "portal": "[fd00::1]:3260", "tpgt": 1, "iface": "default"},
        {"target": T1, "portal": "10.0.0.1:3261", "tpgt": 1, "iface": "default"},
    ]


# ------------------------------------------------------------------------------------------- discovery CHAP
def test_validate_auth_none_means_leave_alone():
    assert d.validate_auth(None) is None


def test_validate_auth_chap_and_mutual():
    assert d.validate_auth({"method": "chap", "username": "u", "password": "p" * 12}) == {
        "method": "CHAP", "username": "u", "password": "p" * 12}
    full = d.validate_auth({"username": "u", "password": "p", "username_in": "t", "password_in": "q"})
    assert full["method"] == "CHAP" and full["username_in"] == "t"
    assert d.validate_auth({"method": "None"}) == {"method": "None"}
    assert d.validate_auth({"method": "none", "username": None}) == {"method": "None"}


@pytest.mark.parametrize("auth,field", [
    ("CHAP", "auth"),
    ({"method": "CHAP", "password": "p"}, "auth.username"),
    ({"method": "CHAP", "username": "u"}, "auth.password"),
    ({"method": "kerberos"}, "auth.method"),
    ({}, "auth.method"),
    ({"method": "None", "username": "u"}, "auth"),
    ({"username": "u", "password": "p", "username_in": "t"}, "auth.password_in"),
    ({"username": "u", "password": "p", "password_in": "t"}, "auth.username_in"),
    ({"username": "u", "password": " p"}, "auth.password"),
    ({"username": "u", "password": "p\nq"}, "auth.password"),
    ({"username": "u", "password": "x" * 256}, "auth.password"),
    ({"username": "", "password": "p"}, "auth.username"),
    ({"username": 5, "password": "p"}, "auth.username"),
    ({"user": "u"}, "auth"),
])
def test_validate_auth_errors(auth, field):
    with pytest.raises(InputError) as err:
        d.validate_auth(auth)
    assert err.value.field == field
    # secrets never appear in the message
    assert "p\nq" not in str(err.value) and " p" not in err.value.message.split("'")


def test_auth_changes_from_default_record():
    want = d.validate_auth({"username": "u", "password": "secret-1", "username_in": "t", "password_in": "sec-2"})
    current = {"discovery.sendtargets.auth.authmethod": "None"}
    changes = d.auth_changes(current, want)
    assert changes == [
        ("discovery.sendtargets.auth.authmethod", "CHAP"),
        ("discovery.sendtargets.auth.username", "u"),
        ("discovery.sendtargets.auth.password", "secret-1"),
        ("discovery.sendtargets.auth.username_in", "t"),
        ("discovery.sendtargets.auth.password_in", "sec-2"),
    ]
    applied = d.apply_auth_changes(ST_CONFIG, changes)
    assert applied.endswith("discovery.sendtargets.auth.password_in = sec-2\n# END RECORD\n")
    assert "discovery.sendtargets.auth.authmethod = CHAP\n" in applied
    from ansible_collections.openiscsi.initiator.plugins.module_utils._kvconf import KVFile
    assert d.auth_changes(KVFile.parse(applied).as_dict(), want) == []


def test_auth_changes_password_only_differs():
    want = d.validate_auth({"username": "u", "password": "new"})
    current = {"discovery.sendtargets.auth.authmethod": "CHAP", "discovery.sendtargets.auth.username": "u",
               "discovery.sendtargets.auth.password": "old"}
    assert d.auth_changes(current, want) == [("discovery.sendtargets.auth.password", "new")]


def test_auth_changes_turn_mutual_off_and_none_clears_secrets():
    current = {"discovery.sendtargets.auth.authmethod": "CHAP", "discovery.sendtargets.auth.username": "u",
               "discovery.sendtargets.auth.password": "p", "discovery.sendtargets.auth.username_in": "t",
               "discovery.sendtargets.auth.password_in": "q"}
    assert d.auth_changes(current, d.validate_auth({"username": "u", "password": "p"})) == [
        ("discovery.sendtargets.auth.username_in", None), ("discovery.sendtargets.auth.password_in", None)]
    changes = d.auth_changes(current, {"method": "None"})
    assert changes[0] == ("discovery.sendtargets.auth.authmethod", "None")
    assert all(v is None for _k, v in changes[1:]) and len(changes) == 5
    text = d.apply_auth_changes(ST_CONFIG.replace("# END", "discovery.sendtargets.auth.password = p\n# END"),
                                changes)
    assert "password" not in text


def test_auth_changes_nothing_requested():
    assert d.auth_changes({"discovery.sendtargets.auth.authmethod": "CHAP"}, None) == []
    assert d.auth_changes({}, {"method": "None"}) == []
    assert d.auth_changes({"discovery.sendtargets.auth.username": "<empty>"}, {"method": "None"}) == []


def test_masked_auth_never_shows_secrets():
    shown = d.masked_auth({"discovery.sendtargets.auth.authmethod": "CHAP",
                           "discovery.sendtargets.auth.username": "u",
                           "discovery.sendtargets.auth.password": "topsecret",
                           "discovery.sendtargets.auth.password_in": "<empty>"})
    assert shown == {"method": "CHAP", "username": "u", "password": "********"}


def test_verify_auth_show():
    shown = ST_CONFIG.replace("authmethod = None", "authmethod = CHAP").replace(
        "# END", "discovery.sendtargets.auth.username = u\ndiscovery.sendtargets.auth.password = ********\n"
                 "discovery.sendtargets.auth.username_in = <empty>\ndiscovery.sendtargets.auth.password_in = <empty>\n"
                 "# END")
    assert d.verify_auth_show(shown, {"method": "CHAP", "username": "u", "password": "x"}) == []
    problems = d.verify_auth_show(shown, {"method": "CHAP", "username": "v", "password": "x", "username_in": "t",
                                          "password_in": "y"})
    assert len(problems) == 3 and "x" not in " ".join(problems).replace("expected", "")
    assert d.verify_auth_show(ST_CONFIG, {"method": "None"}) == []


# ------------------------------------------------------------------------------------------- messages
@pytest.mark.parametrize("rc,needle", [
    (24, "auth.username/auth.password"),
    (12, "iscsi_tcp"),
    (8, "TRANS_TIMEOUT"),
    (4, "reachable"),
    (19, "non-retryable"),
    (6, "node database"),
    (99, "exit code 99"),
])
def test_error_messages(rc, needle):
    msg = d.error_message(rc, "10.0.0.1:3260", "iscsiadm: boom\n")
    assert needle in msg and "10.0.0.1:3260" in msg and "iscsiadm said: iscsiadm: boom" in msg


def test_error_message_24_without_auth_hints_chap():
    assert "requires discovery CHAP" in d.error_message(24, "p", auth_given=False)
    assert "requires discovery CHAP" not in d.error_message(24, "p", auth_given=True)
