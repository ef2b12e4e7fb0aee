# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._names import (
    DEBIAN_PREFIX,
    MAX_NAME_BYTES,
    generate_iqn,
    name_type,
    normalize_name,
)

GOOD = [
    ("iqn.1993-08.org.debian:01:c3cd462f4145", "iqn.1993-08.org.debian:01:c3cd462f4145"),
    ("IQN.2001-04.COM.Example:Storage.Disk2.SYS1.xyz", "iqn.2001-04.com.example:storage.disk2.sys1.xyz"),
    ("iqn.2001-04.com.example", "iqn.2001-04.com.example"),
    ("iqn.2001-04.com.example:a:b:c", "iqn.2001-04.com.example:a:b:c"),
    ("iqn.2026-12.lab-1.x-y:tgt-open.1", "iqn.2026-12.lab-1.x-y:tgt-open.1"),
    ("iqn.2001-01.com:x", "iqn.2001-01.com:x"),
    ("eui.02004567A425678D", "eui.02004567a425678d"),
    ("naa.52004567BA64678D", "naa.52004567ba64678d"),
    ("naa.62004567BA64678D0123456789ABCDEF", "naa.62004567ba64678d0123456789abcdef"),
    ("iqn.2001-04.com.example:" + "a" * (MAX_NAME_BYTES - 24), "iqn.2001-04.com.example:" + "a" * 199),
]

# (value, substring the error must contain)
BAD = [
    ("", "must not be empty"),
    (" iqn.2001-04.com.example:x", "leading whitespace"),
    ("iqn.2001-04.com.example:x ", "trailing whitespace"),
    ("iqn.2001-04.com.example:my disk", "inner whitespace ' ' (U+0020) at position 27"),
    ("iqn.2001-04.com.example:\tx", "whitespace '\\t' (U+0009) at position 25"),
    ("iqn.2001-04.com.example:a\nb", "position 26"),
    ("iqn.2001-04.com.exa_mple:x", "character '_' at position 20 is not allowed"),
    ("iqn.2001-04.com.example:disk/1", "character '/' at position 29"),
    ("iqn.2001-04.com.example:disk@1", "character '@'"),
    ("iqn.2001-04.com.example:d\u00e9j\u00e0", "character '\u00e9' at position 26 is not ASCII"),
    ("iqn.2001-04.com.example:\udcff", "byte 0xff at position 25 is not valid UTF-8"),
    ("iqn.2001-04.com.example:" + "a" * 200, "is 224 bytes long; an iSCSI name is at most 223 bytes"),
    ("iqn.2001-04.com.example:" + "\u00e9" * 100, "is 224 bytes long"),
    ("foo.2001-04.com.example", "does not start with 'iqn.', 'eui.' or 'naa.'"),
    ("iqn2001-04.com.example", "does not start with 'iqn.'"),
    ("iqn.01-04.com.example:x", "followed by a date YYYY-MM"),
    ("iqn.2001-4.com.example:x", "followed by a date YYYY-MM"),
    ("iqn.2001.com.example:x", "followed by a date YYYY-MM"),
    ("iqn.com.example:x", "followed by a date YYYY-MM"),
    ("iqn.2001-13.com.example:x", "month 13 in the date 2001-13 is not a month (01-12)"),
    ("iqn.2001-00.com.example:x", "month 00"),
    ("iqn.2001-04", "must be followed by '.' and the naming authority's reversed domain"),
    ("iqn.2001-04com.example", "must be followed by '.'"),
    ("iqn.2001-04.", "reversed domain name after 'iqn.2001-04.' is missing"),
    ("iqn.2001-04.:x", "reversed domain name after 'iqn.2001-04.' is missing"),
    ("iqn.2001-04.com..example:x", "empty label at position 17"),
    ("iqn.2001-04..com:x", "empty label at position 13"),
    ("iqn.2001-04.com.:x", "empty label"),
    ("iqn.2001-04.com.example:", "nothing follows the ':' at position 24"),
    ("eui.02004567A425678", "has 15 hexadecimal digits after 'eui.'"),
    ("eui.02004567A425678D0", "has 17 hexadecimal digits"),
    ("eui.02004567A425678G", "character 'g' at position 20 is not a hexadecimal digit"),
    ("eui.", "has 0 hexadecimal digits"),
    ("naa.52004567BA64678D1", "has 17 hexadecimal digits after 'naa.'; the name must be an NAA identifier"),
    ("naa.52004567BA64678D0123456789ABCDE", "has 31 hexadecimal digits"),
    ("naa.5200:4567BA64678D", "character ':' at position 9 is not a hexadecimal digit"),
]


@pytest.mark.parametrize("value,expected", GOOD)
def test_good_names_normalize(value, expected):
    assert normalize_name(value) == expected
    # normalization is idempotent
    assert normalize_name(expected) == expected


@pytest.mark.parametrize("value,reason", BAD)
def test_bad_names_give_precise_reason(value, reason):
    with pytest.raises(InputError) as info:
        normalize_name(value)
    assert reason in str(info.value)
    assert str(info.value).startswith("name: ")
    assert info.value.field == "name"


def test_field_is_named_in_error():
    with pytest.raises(InputError) as info:
        normalize_name("bogus", field="target")
    assert str(info.value).startswith("target: ")
    assert isinstance(info.value, ValueError)


def test_non_string_rejected():
    with pytest.raises(InputError, match="must be a string, got int"):
        normalize_name(42)


def test_name_type():
    assert name_type("iqn.2001-04.com.example") == "iqn"
    assert name_type("eui.02004567a425678d") == "eui"
    assert name_type("naa.52004567ba64678d") == "naa"
    assert name_type("iqnx") is None


GENERATED_RE = re.compile(r"iqn\.1993-08\.org\.debian:01:[0-9a-f]{12}\Z")


def test_generate_like_iscsi_iname():
    names = set(generate_iqn() for dummy in range(500))
    assert len(names) == 500
    for name in names:
        assert GENERATED_RE.match(name), name
        assert normalize_name(name) == name


def test_generate_default_prefix_is_debian():
    assert DEBIAN_PREFIX == "iqn.1993-08.org.debian:01"
    assert generate_iqn(DEBIAN_PREFIX).startswith("iqn.1993-08.org.debian:01:")


def test_generate_prefix_normalized():
    name = generate_iqn("IQN.2004-10.COM.Example:Nodes")
    assert re.match(r"iqn\.2004-10\.com\.example:nodes:[0-9a-f]{12}\Z", name)


@pytest.mark.parametrize("prefix,reason", [
    ("eui.02004567A425678D", "must be an 'iqn.' name"),
    ("naa.52004567BA64678D", "must be an 'iqn.' name"),
    ("iqn.2001-13.com.example", "month 13"),
    ("iqn.2001-04.com.example:", "nothing follows the ':'"),
    ("", "must not be empty"),
    ("iqn.2001-04.com.example:" + "a" * 187, "is 211 bytes long; with ':' and 12 hexadecimal digits appended"),
])
def test_generate_bad_prefix(prefix, reason):
    with pytest.raises(InputError) as info:
        generate_iqn(prefix)
    assert str(info.value).startswith("prefix: ")
    assert reason in str(info.value)


def test_generate_longest_prefix_fits():
    prefix = "iqn.2001-04.com.example:" + "a" * 186  # 210 bytes
    name = generate_iqn(prefix)
    assert len(name) == MAX_NAME_BYTES
    assert normalize_name(name) == name


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=240))
def test_any_text_either_normalizes_or_raises_input_error(value):
    try:
        result = normalize_name(value)
    except InputError as exc:
        assert exc.field == "name" and exc.message
        return
    assert result == result.lower()
    assert len(result.encode("utf-8")) <= MAX_NAME_BYTES
    assert normalize_name(result) == result


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1000, 9999), st.integers(1, 12),
    st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10), min_size=1,
             max_size=4),
    st.one_of(st.none(), st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-.:", min_size=1, max_size=40)),
)
def test_well_formed_iqns_are_accepted(year, month, labels, unique):
    name = "iqn.%04d-%02d.%s" % (year, month, ".".join(labels))
    if unique is not None:
        name += ":" + unique
    assert normalize_name(name) == name.lower()
