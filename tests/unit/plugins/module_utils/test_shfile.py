# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sh-sourced KEY=value parser/renderer: values as the shell sees them, unknown lines kept, and injection
attempts that a real /bin/sh sources as plain values (nothing runs)."""

from __future__ import annotations

import os
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._shfile import ShFile, parse_word, quote

DEBIAN_DEFAULT = (
    "# List of LVMed iSCSI Volume Groups.\n"
    'LVMGROUPS=""\n'
    "\n"
    "# Handle _netdev devices\n"
    "HANDLE_NETDEV=1\n"
    'EXCLUDE_MOUNTS_AT_SHUTDOWN=""\n'
    "ISCSI_ROOT_KEEP_ALL_SESSIONS_AT_SHUTDOWN=0\n"
)


def sh_value(text, key, tmp_path):
    """Source *text* with /bin/sh in an empty directory and print $key; also list the directory afterwards."""
    work = tmp_path / "sh"
    work.mkdir(exist_ok=True)
    conf = tmp_path / "conf"
    conf.write_text(text, encoding="utf-8", errors="surrogateescape")
    script = '. "$1"; printf "%%s" "${%s}"' % key
    res = subprocess.run(["/bin/sh", "-c", script, "sh", str(conf)], cwd=str(work), capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(work)}, check=False)
    assert res.returncode == 0, res.stderr
    return res.stdout, sorted(os.listdir(str(work)))


def test_parse_debian_file():
    f = ShFile.parse(DEBIAN_DEFAULT)
    assert f.get("LVMGROUPS") == ""
    assert f.get("HANDLE_NETDEV") == "1"
    assert f.render() == DEBIAN_DEFAULT
    assert f.keys() == ["LVMGROUPS", "HANDLE_NETDEV", "EXCLUDE_MOUNTS_AT_SHUTDOWN",
                        "ISCSI_ROOT_KEEP_ALL_SESSIONS_AT_SHUTDOWN"]


@pytest.mark.parametrize("word,value", [
    ('"a b"', "a b"), ("'a b'", "a b"), ("a\\ b", "a b"), ('"x\\$y"', "x$y"), ('"a"\'b\'c', "abc"),
    ("", ""), ('""', ""), ("1 # comment", "1"), ('"/a\\040b /c"', "/a\\040b /c"), ("'it'\\''s'", "it's"),
])
def test_plain_words(word, value):
    parsed = parse_word(word)
    assert parsed is not None and parsed[0] == value


@pytest.mark.parametrize("word", ["$HOME", '"$x"', "`id`", '"a`id`"', "$(id)", "a;b", "a|b", "a&", "*.x", "~root",
                                  "'open", '"open', "a b", "x>y"])
def test_non_plain_words_are_opaque(word):
    assert parse_word(word) is None
    f = ShFile.parse("K=%s\n" % word)
    assert f.get("K") is None and f.opaque_assignments() == [(1, "K", "K=%s" % word)]


def test_last_assignment_wins_and_opaque_after_makes_unknown():
    f = ShFile.parse("A=1\nA=2\n")
    assert f.get("A") == "2"
    assert ShFile.parse("A=1\nA=$X\n").get("A") is None


def test_set_replaces_last_assignment_in_place_keeping_export_and_indent():
    f = ShFile.parse("# c\nA=1\n  export A=2 # note\nB=3")
    assert f.set("A", "new value")
    assert f.render() == "# c\nA=1\n  export A='new value'\nB=3"
    assert not f.set("B", "3")


def test_set_appends_and_fixes_missing_newline():
    f = ShFile.parse("B=3")
    f.set("A", "x")
    assert f.render() == "B=3\nA=x\n"


def test_remove_drops_all_assignments_keeps_other_lines():
    f = ShFile.parse("# keep\nA=1\nif true; then A=2; fi\nA=$(x)\nB=1\n")
    assert f.remove("A")
    assert f.render() == "# keep\nif true; then A=2; fi\nB=1\n"


@pytest.mark.parametrize("value", [
    "$(touch pwned)", "`touch pwned`", "'; touch pwned; '", '"; touch pwned; "', "a\\'b", "x' y", "${IFS}",
    "; touch pwned", "&& touch pwned", "| touch pwned", "a b c", "*", "~", "#notcomment", "\\", "'", '"', "",
    "é ü", "\t", "$HOME", "a=b", "!x",
])
def test_injection_attempts_source_as_plain_values(tmp_path, value):
    text = ShFile.render_assignment("K", value) + "\n"
    got, files = sh_value(text, "K", tmp_path)
    assert got == value
    assert files == [], "sourcing the file created %s" % files
    assert ShFile.parse(text).get("K") == value


@pytest.mark.parametrize("value", ["a\nb", "a\0b", "a\rb"])
def test_unrenderable_values_raise_input_error(value):
    with pytest.raises(InputError) as info:
        ShFile.render_assignment("K", value, field="lvm_groups")
    assert info.value.field == "lvm_groups"


@pytest.mark.parametrize("key", ["1A", "A-B", "", "A B", "A;B"])
def test_bad_keys(key):
    with pytest.raises(InputError):
        ShFile.render_assignment(key, "x")


def test_quote_plain_stays_unquoted():
    assert quote("iqn.2004-10.com.example:a") == "iqn.2004-10.com.example:a"
    assert quote("") == "''"


@pytest.mark.fuzz
@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(blacklist_characters="\0\n\r", blacklist_categories=("Cs",)), max_size=30))
def test_fuzz_rendered_value_is_what_sh_sees(tmp_path, value):
    text = ShFile.render_assignment("K", value) + "\n"
    got, files = sh_value(text, "K", tmp_path)
    assert got == value and files == []
    assert ShFile.parse(text).get("K") == value
