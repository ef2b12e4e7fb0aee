# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._portal import (
    Portal, check_port, normalize_address, parse_portal)


@pytest.mark.parametrize("text, address, port, arg", [
    ("192.0.2.10", "192.0.2.10", 3260, "192.0.2.10:3260"),
    ("192.0.2.10:3261", "192.0.2.10", 3261, "192.0.2.10:3261"),
    (" 192.0.2.10:1 ", "192.0.2.10", 1, "192.0.2.10:1"),
    ("192.0.2.10:65535", "192.0.2.10", 65535, "192.0.2.10:65535"),
    ("[2001:db8::10]", "2001:db8::10", 3260, "[2001:db8::10]:3260"),
    ("[2001:DB8:0:0::10]:3262", "2001:db8::10", 3262, "[2001:db8::10]:3262"),
    ("[::1]:3260", "::1", 3260, "[::1]:3260"),
    ("Storage.Example.COM", "storage.example.com", 3260, "storage.example.com:3260"),
    ("san-1:3270", "san-1", 3270, "san-1:3270"),
    ("target.example.com.:3260", "target.example.com", 3260, "target.example.com:3260"),
])
def test_parse_good(text, address, port, arg):
    portal = parse_portal(text)
    assert portal.address == address
    assert portal.port == port
    assert portal.arg() == arg
    assert str(portal) == arg
    assert isinstance(portal, tuple) and tuple(portal) == (address, port)


@pytest.mark.parametrize("text, words", [
    ("", ["empty"]),
    ("   ", ["empty"]),
    ("192.0.2.10:0", ["port 0", "1..65535"]),
    ("192.0.2.10:65536", ["port 65536", "1..65535"]),
    ("192.0.2.10:-1", ["not a number"]),
    ("192.0.2.10:abc", ["not a number"]),
    ("192.0.2.10:", ["not a number"]),
    ("2001:db8::10", ["without brackets", "[2001:db8::10]"]),
    ("2001:db8::10:3260", ["without brackets"]),
    ("fe80::1", ["without brackets", "[fe80::1]"]),
    ("[2001:db8::10", ["without a closing"]),
    ("[2001:db8::10]3260", ["only ':port' may follow"]),
    ("[192.0.2.10]:3260", ["not an IPv6 address", "brackets are for IPv6 only"]),
    ("[2001:db8::10]:70000", ["port 70000"]),
    ("300.1.1.1", ["not a valid IPv4"]),
    ("10.0.0", ["not a valid IPv4"]),
    ("010.0.0.1", ["not a valid IPv4"]),
    ("bad_host:3260", ["not a valid host", "bad_host"]),
    ("-bad.example.com", ["not a valid host"]),
    ("host name", ["white space"]),
    ("192.0.2.10:3260,1", ["tpgt"]),
    ("iscsi://192.0.2.10/", ["no URL"]),
    (":3260", ["no host"]),
])
def test_parse_bad(text, words):
    with pytest.raises(InputError) as err:
        parse_portal(text, field="nodes[2].portal")
    msg = str(err.value)
    assert msg.startswith("nodes[2].portal: ")
    for word in words:
        assert word in msg


@pytest.mark.parametrize("value", [None, 3260, ["192.0.2.1"], {"a": 1}])
def test_parse_wrong_type(value):
    with pytest.raises(InputError) as err:
        parse_portal(value)
    assert "must be a string host[:port]" in str(err.value)


def test_key_and_normalize():
    assert parse_portal("[2001:db8:0::10]").key() == parse_portal("[2001:DB8::10]:3260").key()
    assert parse_portal("192.0.2.1").key() != parse_portal("192.0.2.1:3261").key()
    assert normalize_address("[2001:DB8::0:10]") == "2001:db8::10"
    assert normalize_address("FE80::1") == "fe80::1"
    assert normalize_address("San.Example") == "san.example"
    assert normalize_address(None) == ""
    assert Portal("fe80::1", 3260).is_ipv6 and not Portal("10.0.0.1").is_ipv6
    assert Portal("10.0.0.1").port == 3260
    assert parse_portal(Portal("10.0.0.1", 5)) == Portal("10.0.0.1", 5)


@pytest.mark.parametrize("value, expect", [(1, 1), ("3260", 3260), (" 65535 ", 65535)])
def test_check_port_good(value, expect):
    assert check_port(value) == expect


@pytest.mark.parametrize("value", [0, 65536, -5, True, "x", 3.5, None])
def test_check_port_bad(value):
    with pytest.raises(InputError) as err:
        check_port(value, "port")
    assert str(err.value).startswith("port: ")
