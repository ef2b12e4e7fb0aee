# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.openiscsi.initiator.plugins.module_utils import _kvconf as kv
from ansible_collections.openiscsi.initiator.plugins.module_utils._kvconf import KVFile

ISCSID = (
    "#\n# Open-iSCSI default configuration.\n#\n"
    "#node.startup = automatic\n"
    "node.startup = manual\n"
    "\n"
    "#node.session.auth.authmethod = CHAP\n"
    "  node.session.timeo.replacement_timeout\t=\t120   \n"
    "node.conn[0].timeo.login_timeout = 15"
)

RECORD = (
    "# BEGIN RECORD 2.1.8\n"
    "node.name = iqn.2026-11.lab:a\n"
    "node.tpgt = 1\n"
    "node.startup = manual\n"
    "node.session.auth.username = <empty>\n"
    "# END RECORD\n"
)


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab.= #\t\r\n[]0_-x")), max_size=200))
def test_round_trip_is_byte_identical(text):
    assert KVFile.parse(text).render() == text


def test_get_and_items():
    kv = KVFile.parse(ISCSID)
    assert kv.get("node.startup") == "manual"
    assert kv.get("node.session.timeo.replacement_timeout") == "120"
    assert kv.get("node.conn[0].timeo.login_timeout") == "15"
    assert kv.get("node.session.auth.authmethod") is None
    assert kv.commented_value("node.session.auth.authmethod") == "CHAP"
    assert [key for key, _value in kv.items()] == [
        "node.startup", "node.session.timeo.replacement_timeout", "node.conn[0].timeo.login_timeout"]


def test_set_existing_keeps_spacing_and_other_bytes():
    kv = KVFile.parse(ISCSID)
    assert kv.set("node.session.timeo.replacement_timeout", "30")
    out = kv.render()
    assert "  node.session.timeo.replacement_timeout\t=\t30   \n" in out
    assert out.replace("\t=\t30   ", "\t=\t120   ") == ISCSID
    assert not kv.set("node.session.timeo.replacement_timeout", "30")


def test_set_replaces_commented_default_in_place():
    kv = KVFile.parse(ISCSID)
    kv.set("node.session.auth.authmethod", "CHAP", replace_commented=True)
    out = kv.render()
    assert out.replace("node.session.auth.authmethod = CHAP\n", "#node.session.auth.authmethod = CHAP\n") == ISCSID


def test_set_appends_after_missing_final_newline():
    kv = KVFile.parse(ISCSID)
    kv.set("iscsid.startup", "/bin/true")
    assert kv.render() == ISCSID + "\niscsid.startup = /bin/true\n"


def test_set_before_end_record():
    kv = KVFile.parse(RECORD)
    kv.set("node.session.auth.authmethod", "CHAP", before="# END RECORD")
    assert kv.render().endswith("node.session.auth.authmethod = CHAP\n# END RECORD\n")


def test_last_duplicate_wins_and_is_edited():
    kv = KVFile.parse("a = 1\na = 2\n")
    assert kv.get("a") == "2"
    assert kv.duplicates() == ["a"]
    kv.set("a", "3")
    assert kv.render() == "a = 1\na = 3\n"


def test_remove():
    kv = KVFile.parse(ISCSID)
    assert kv.remove("node.startup")
    assert "node.startup = manual" not in kv.render()
    assert "#node.startup = automatic" in kv.render()
    assert not kv.remove("node.startup")


def test_crlf_kept():
    kv = KVFile.parse("a = 1\r\nb = 2\r\n")
    kv.set("a", "5")
    kv.set("c", "3")
    assert kv.render() == "a = 5\r\nb = 2\r\nc = 3\r\n"


@pytest.mark.parametrize("key,value", [
    ("bad key", "x"), ("", "x"), ("a=b", "x"), ("#a", "x"),
    ("a", "line\nbreak"), ("a", " lead"), ("a", "trail "), ("a", "nul\0"),
])
def test_bad_input_rejected_without_change(key, value):
    kv = KVFile.parse(ISCSID)
    with pytest.raises(ValueError):
        kv.set(key, value)
    assert kv.render() == ISCSID


# ----------------------------------------------------------------------------------------------- read_values
def _same_reading(text):
    slow, fast = kv.KVFile.parse(text), kv.read_values(text)
    assert fast.as_dict() == slow.as_dict() and list(fast.as_dict()) == list(slow.as_dict()), repr(text)
    assert fast.items() == slow.items() and fast.duplicates() == slow.duplicates(), repr(text)
    for key in slow.as_dict():
        assert key in fast and fast.get(key) == slow.get(key)


def test_read_values_reads_like_the_line_parser_on_real_files():
    data = os.path.join(os.path.dirname(__file__), "data")
    seen = 0
    for base, _dirs, files in os.walk(data):
        for name in files:
            with open(os.path.join(base, name), "rb") as handle:
                _same_reading(handle.read())
            seen += 1
    assert seen > 5


def test_read_values_reads_like_the_line_parser_on_odd_text():
    import random
    rng = random.Random(15)
    pieces = ["node.startup", "a.b[0].c", " ", "\t", "=", " = ", "#", "x", "value with = sign", "\n", "\r\n", "\r",
              "\x0c", "\u2028", "", "-", "_k"]
    for _n in range(3000):
        _same_reading("".join(rng.choice(pieces) for _p in range(rng.randint(0, 14))))
    _same_reading("k = v\nk = w\n  j=1  \n# k = 9\nk =\n")
    assert isinstance(kv.read_values("k = v\n"), kv.KVValues)
