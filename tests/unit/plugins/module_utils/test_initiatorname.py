# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._initiatorname import (
    HEADER,
    InitiatorNameFile,
    validate_alias,
)

DEBIAN = (
    "## DO NOT EDIT OR REMOVE THIS FILE!\n"
    "## If you remove this file, the iSCSI daemon will not start.\n"
    "## If you change the InitiatorName, existing access control lists\n"
    "## may reject this initiator.  The InitiatorName must be unique\n"
    "## for each iSCSI initiator.  Do NOT duplicate iSCSI InitiatorNames.\n"
    "InitiatorName=iqn.1993-08.org.debian:01:c3cd462f4145\n"
)
OLD = "iqn.1993-08.org.debian:01:c3cd462f4145"
NEW = "iqn.2004-10.com.example:db01"

# Lines made of the pieces the parser cares about, to make hypothesis hit the interesting cases.
PIECES = ["InitiatorName=", "InitiatorAlias=", "GenerateName=yes", "GenerateName=no", "#", "## DO NOT EDIT", " ", "\t",
          "\r", "\n", "\r\n", "iqn.2001-04.com.example:a", "IQN.2001-13.x", "eui.02004567A425678D", "x", "=", ":",
          "initiatorname=", "\udcff", "\u00e9", "\x0b"]


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30).map("".join))
def test_round_trip_of_structured_text_is_identical(text):
    assert InitiatorNameFile.parse(text).render() == text


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=300))
def test_round_trip_of_arbitrary_text_is_identical(text):
    assert InitiatorNameFile.parse(text).render() == text


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_round_trip_of_arbitrary_bytes_is_identical(data):
    text = data.decode("utf-8", "surrogateescape")
    assert InitiatorNameFile.parse(text).render().encode("utf-8", "surrogateescape") == data


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30).map("".join))
def test_setting_a_name_gives_one_valid_line_and_keeps_comments_and_blanks(text):
    before = InitiatorNameFile.parse(text)
    out = before.render(name=NEW)
    after = InitiatorNameFile.parse(out)
    assert after.name == NEW
    kinds = [line.kind for line in after._lines]
    assert kinds.count("name") == 1
    assert "generate" not in kinds
    fixed = ("missing", "duplicate", "invalid", "indented", "empty", "generate")
    assert not [f for f in after.errors() if f.code in fixed]

    def keep(f):
        return [line.body.rstrip("\r") for line in f._lines if line.kind in ("comment", "blank", "alias", "other")]
    assert keep(after) == keep(before)
    # idempotent: a second render with the same name changes nothing
    assert after.render(name=NEW) == out


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30).map("".join), st.sampled_from(["db01", "a b", None]))
def test_alias_set_and_remove(text, alias):
    f = InitiatorNameFile.parse(text)
    out = f.render(alias=alias)
    after = InitiatorNameFile.parse(out)
    assert after.alias == alias
    assert after.name == f.name  # the name is untouched
    assert after.render(alias=alias) == out


def test_debian_file():
    f = InitiatorNameFile.parse(DEBIAN)
    assert f.name == OLD
    assert f.valid_name == OLD
    assert f.alias is None
    assert f.findings == []
    assert not f.generate_pending


def test_set_name_touches_only_the_name_line():
    out = InitiatorNameFile.parse(DEBIAN).render(name=NEW)
    assert out == DEBIAN.replace(OLD, NEW)


def test_set_same_name_is_identity():
    assert InitiatorNameFile.parse(DEBIAN).render(name=OLD) == DEBIAN


def test_alias_goes_after_the_name_line_and_is_removed():
    text = DEBIAN + "# trailing comment\n"
    out = InitiatorNameFile.parse(text).render(alias="db01")
    assert out == DEBIAN + "InitiatorAlias=db01\n# trailing comment\n"
    assert InitiatorNameFile.parse(out).render(alias=None) == text


def test_alias_replaces_the_effective_line_and_drops_duplicates():
    text = "InitiatorName=%s\nInitiatorAlias=a\n# c\nInitiatorAlias=b\n" % OLD
    f = InitiatorNameFile.parse(text)
    assert f.alias == "b"
    assert [x.code for x in f.findings] == ["alias_duplicate"]
    assert f.render(alias="z") == "InitiatorName=%s\n# c\nInitiatorAlias=z\n" % OLD


def test_missing_final_newline_is_kept():
    text = "# h\nInitiatorName=%s" % OLD
    f = InitiatorNameFile.parse(text)
    assert f.render(name=NEW) == "# h\nInitiatorName=%s" % NEW
    assert f.render(alias="x") == "# h\nInitiatorName=%s\nInitiatorAlias=x" % OLD


def test_crlf_kept():
    text = "# h\r\nInitiatorName=%s\r\n" % OLD
    f = InitiatorNameFile.parse(text)
    assert f.name == OLD
    assert f.render(name=NEW, alias="a") == "# h\r\nInitiatorName=%s\r\nInitiatorAlias=a\r\n" % NEW


def test_fresh_file_gets_header():
    f = InitiatorNameFile.empty()
    assert f.findings == [] and f.name is None
    out = f.render(name=NEW, alias="db01")
    assert out == HEADER + "InitiatorName=%s\nInitiatorAlias=db01\n" % NEW
    assert out.startswith("## ")
    assert InitiatorNameFile.parse(out).findings == []


def test_generate_name_line_is_replaced_in_place():
    text = "# image default\nGenerateName=yes\n# end\n"
    f = InitiatorNameFile.parse(text)
    assert f.generate_pending and f.name is None
    assert "GenerateName=yes is present" in f.findings[0].message
    assert f.render(name=NEW) == "# image default\nInitiatorName=%s\n# end\n" % NEW


def test_last_name_wins_like_iscsid():
    f = InitiatorNameFile.parse("InitiatorName=%s\nInitiatorName=\n  InitiatorName=%s  \n" % (OLD, NEW))
    assert f.name == NEW


def test_drop_unknown():
    text = "junk\n# c\nInitiatorName=%s\nmore junk" % OLD
    f = InitiatorNameFile.parse(text)
    assert f.render(name=OLD, drop_unknown=True) == "# c\nInitiatorName=%s\n" % OLD
    assert f.render() == text


# (file text, expected finding codes, substring of the first error/warning message)
BAD_FILES = [
    ("", ["missing"], "no InitiatorName= line with a value; iscsid will not start"),
    ("## only comments\n\n", ["missing"], "no InitiatorName= line"),
    ("InitiatorName=\n", ["empty", "missing"], "has no value"),
    ("GenerateName=yes\n", ["missing"], "GenerateName=yes is present"),
    ("InitiatorName=%s\nGenerateName=yes\n" % OLD, ["generate"],
     "replace this file, and the name 'iqn.1993-08.org.debian:01:c3cd462f4145' with it"),
    ("InitiatorName=%s\nInitiatorName=%s\n" % (OLD, NEW), ["duplicate"],
     "2 InitiatorName= lines (lines 1, 2); iscsid uses only the last one, 'iqn.2004-10.com.example:db01'"),
    ("InitiatorName=iqn.2001-13.com.example:x\n", ["invalid"], "month 13"),
    ("InitiatorName=my host\n", ["invalid"], "invalid name 'my host'"),
    ("InitiatorName=iqn.2001-04.com.example:\xff\n".encode("latin-1").decode("utf-8", "surrogateescape"),
     ["invalid"], "byte 0xff"),
    ("  InitiatorName=%s\n" % OLD, ["indented"], "does not start the line"),
    ("InitiatorName=%s\nhello world\n" % OLD, ["unknown_line"], "unrecognized line 'hello world'"),
    ("InitiatorName = %s\n" % OLD, ["missing", "unknown_line"], "no spaces around '=' allowed"),
    ("initiatorname=%s\n" % OLD, ["missing", "unknown_line"], "the key is case-sensitive"),
    ("InitiatorName=IQN.1993-08.org.debian:01:ABC\n", ["not_normalized"], "not in normalized (lower-case) form"),
    ("InitiatorName=%s\nInitiatorAlias=\n" % OLD, ["alias_empty"], "'InitiatorAlias=' has no value"),
]


@pytest.mark.parametrize("text,codes,message", BAD_FILES)
def test_bad_files_catalog(text, codes, message):
    f = InitiatorNameFile.parse(text)
    assert sorted(x.code for x in f.findings) == sorted(codes)
    assert any(message in x.message for x in f.findings), [str(x) for x in f.findings]
    assert f.render() == text


def test_severity_split():
    f = InitiatorNameFile.parse("InitiatorName=IQN.2001-04.com.example:A\nInitiatorAlias=\njunk\n")
    assert [x.code for x in f.errors()] == ["unknown_line"]
    assert sorted(x.code for x in f.warnings()) == ["alias_empty", "not_normalized"]
    assert str(f.errors()[0]) == "line 3: unrecognized line 'junk'; iscsid ignores it"
    assert f.errors()[0].as_dict() == {"code": "unknown_line", "line": 3, "severity": "error",
                                       "message": "unrecognized line 'junk'; iscsid ignores it"}


def test_valid_name_none_when_invalid():
    assert InitiatorNameFile.parse("InitiatorName=bogus\n").valid_name is None
    assert InitiatorNameFile.parse("InitiatorName=IQN.2001-04.com.example:A\n").valid_name == \
        "iqn.2001-04.com.example:a"


@pytest.mark.parametrize("value,reason", [
    ("", "must not be empty; to remove the alias use state: absent"),
    (" db", "leading or trailing white space"),
    ("db\n", "leading or trailing white space"),
    ("d\nb", "control character '\\n' at position 2"),
    ("d\x00b", "control character"),
    ("x" * 256, "is 256 bytes long; an iSCSI alias is at most 255 bytes"),
    ("a\udcffb", "byte 0xff at position 2"),
])
def test_bad_alias(value, reason):
    with pytest.raises(InputError) as info:
        validate_alias(value)
    assert str(info.value).startswith("alias: ")
    assert reason in str(info.value)


@pytest.mark.parametrize("value", ["db01", "Database server 1", "x" * 255, "caf\u00e9"])
def test_good_alias(value):
    assert validate_alias(value) == value
