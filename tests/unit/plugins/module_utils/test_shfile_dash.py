# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Differential tests: the collection's sh-file parser and renderer against dash, the shell that sources
/etc/default/open-iscsi and iscsi.initramfs on Debian (``dash -c '. FILE; printf ...'``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._shfile import ShFile

DASH = shutil.which("dash")
pytestmark = pytest.mark.skipif(DASH is None, reason="dash is not installed")
QUICK = settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=1500, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
KEYS = ("ISCSI_A", "ISCSI_B", "ISCSI_C")


def sourced(text, keys=KEYS):
    """``{key: value or None}`` after dash sources *text*; ``None`` when dash fails to source it."""
    with tempfile.NamedTemporaryFile("wb", suffix=".sh", delete=False) as handle:
        handle.write(text.encode("utf-8", "surrogateescape"))
    try:
        script = ". %s || exit 7; " % handle.name + "".join(
            'if [ "${%s+set}" ]; then printf "%%s\\0" "$%s"; else printf "\\001\\0"; fi; ' % (k, k) for k in keys)
        proc = subprocess.run([DASH, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"}, check=False)
    finally:
        os.unlink(handle.name)
    if proc.returncode != 0:
        return None
    values = proc.stdout.split(b"\0")[:-1]
    return {k: (None if v == b"\x01" else v.decode("utf-8", "surrogateescape")) for k, v in zip(keys, values)}


VALUE = st.text(st.one_of(st.sampled_from(list(" \t'\"\\$`#;&|<>(){}[]*?~!=,.:/@%+-_\x0b\x0c\x1c\x85\u2028\u2029é")),
                          st.characters(blacklist_categories=("Cs",), blacklist_characters="\0\n\r")), max_size=12)
WORD = st.sampled_from(["plain", "'single quoted'", '"double $HOME"', "'two\nlines'", '"dq\nnext"', "a\\\nb",
                        "x#y", "'it''s'", '"e\\"q"', "$(echo hi)", "v\x0bw", "'u\u2028v'"])
OTHER = st.sampled_from(["# a comment 'with quote", "", "  ", "export ISCSI_B=exported", "ISCSI_C='multi\nline'",
                         ": noop", "ISCSI_D=\"spans\ntwo # lines\"", "if true; then\n  ISCSI_E=1\nfi"])


@st.composite
def sh_file(draw):
    lines = []
    for _line in range(draw(st.integers(0, 5))):
        if draw(st.booleans()):
            lines.append("%s=%s" % (draw(st.sampled_from(KEYS)), draw(WORD)))
        else:
            lines.append(draw(OTHER))
    text = "\n".join(lines)
    return text + ("\n" if lines and draw(st.booleans()) else "")


def _set_reads_back(text, key, value):
    before = sourced(text)
    assume(before is not None)
    sh = ShFile.parse(text)
    try:
        sh.set(key, value)
    except InputError:
        assert any(c in value for c in "\0\n\r")
        return
    after_text = sh.render()
    after = sourced(after_text)
    assert after is not None, after_text
    expected = dict(before, **{key: value})
    assert after == expected, (text, after_text)
    # the collection reads what dash reads, for every key it can interpret
    reread = ShFile.parse(after_text)
    assert reread.get(key) == value
    for other in KEYS:
        if reread.get(other) is not None:
            assert reread.get(other) == after[other]


@QUICK
@given(sh_file(), st.sampled_from(KEYS), VALUE)
def test_set_value_reads_back_in_dash(text, key, value):
    _set_reads_back(text, key, value)


@pytest.mark.fuzz
@FUZZ
@given(sh_file(), st.sampled_from(KEYS), VALUE)
def test_set_value_reads_back_in_dash_fuzz(text, key, value):
    _set_reads_back(text, key, value)


@pytest.mark.parametrize("key", KEYS)
def test_quoted_value_spanning_two_lines_survives(key):
    text = "ISCSI_A='first\nsecond'\nISCSI_B=\"x\ny\"\n# ISCSI_C='commented\nISCSI_C=z\\\nw\n"
    assert sourced(text) == {"ISCSI_A": "first\nsecond", "ISCSI_B": "x\ny", "ISCSI_C": "zw"}
    sh = ShFile.parse(text)
    assert [sh.get(k) for k in KEYS] == ["first\nsecond", "x\ny", "zw"]
    assert sh.render() == text
    sh.set(key, "new value")
    after = sourced(sh.render())
    assert after is not None and after[key] == "new value"
    assert all(after[k] == sourced(text)[k] for k in KEYS if k != key)


@pytest.mark.parametrize("spelling", ["'top\nsecret'", '"top\nsecret"', "'top\x0bsecret'", "top\\\nsecret"])
def test_secret_spanning_lines_is_masked_whole(spelling):
    from ansible_collections.openiscsi.initiator.plugins.module_utils._initramfs_plan import mask_secrets
    text = "ISCSI_USERNAME=u\nISCSI_PASSWORD=%s\nISCSI_AUTO=true\n" % spelling
    masked = mask_secrets(text)
    assert "secret" not in masked and "top" not in masked
    assert masked == "ISCSI_USERNAME=u\nISCSI_PASSWORD=********\nISCSI_AUTO=true\n"
