# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Differential tests: the collection's fstab parser against libmount (``findmnt --fstab -F FILE -P``).

Every line libmount accepts -- comments, octal escapes, odd spacing, CRLF, signs, extra fields, control characters --
must be an entry with the same fields for the collection, every line it refuses must not be an entry, and after an
edit libmount must read exactly the intended options changed.  A few dozen examples per test in ``make units``; the
``fuzz`` copies run thousands.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.openiscsi.initiator.plugins.module_utils import _fstab as F
from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError

FINDMNT = shutil.which("findmnt")
pytestmark = pytest.mark.skipif(FINDMNT is None, reason="findmnt (util-linux) is not installed")

COLUMNS = ("SOURCE", "TARGET", "FSTYPE", "OPTIONS", "FREQ", "PASSNO")
_PAIR_RE = re.compile(rb'([A-Z-]+)="((?:[^"\\]|\\x[0-9a-fA-F]{2})*)"')
QUICK = settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=1500, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def libmount_entries(text):
    """``[(source, target, fstype, options, freq, passno)]`` as libmount reads *text* (undecodable bytes as
    surrogates, like the collection's reader)."""
    with tempfile.NamedTemporaryFile("wb", suffix=".fstab", delete=False) as handle:
        handle.write(text.encode("utf-8", "surrogateescape"))
    try:
        out = subprocess.run([FINDMNT, "--fstab", "-F", handle.name, "-P", "-o", ",".join(COLUMNS)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, LC_ALL="C"),
                             check=False).stdout
    finally:
        os.unlink(handle.name)
    entries = []
    for line in out.split(b"\n"):
        if not line:
            continue
        row = {}
        for key, value in _PAIR_RE.findall(line):
            raw = re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), value)
            row[key.decode()] = raw.decode("utf-8", "surrogateescape")
        entries.append((row["SOURCE"], row["TARGET"], row["FSTYPE"], row["OPTIONS"], int(row["FREQ"]),
                        int(row["PASSNO"])))
    return entries


def our_entries(text):
    return [(line.source, line.target, line.fstype, line.options_text or "", line.freq, line.passno)
            for line in F.Fstab.parse(text).entries()]


# ---- strategies: the pieces libmount treats specially, mixed with plain text
_CHARS = st.sampled_from(list("abc/=,._-#\"'\\") + ["\\040", "\\011", "\\134", "\\042", "\\054", "\\012", "\\377",
                                                    "\\400", "\\08", "\\1", "\x0b", "\x0c", "\r", "\x85", "\u2028",
                                                    "\u00e9", "\udcff", "\x01"])
FIELD = st.lists(_CHARS, min_size=1, max_size=6).map("".join).filter(lambda f: f.strip(" \t") == f)
SEP = st.sampled_from([" ", "\t", "  ", " \t ", "\t\t"])
NUMBER = st.sampled_from(["0", "1", "2", "-1", "+1", "00", "007", "1x", "x", "\u0663", "99999999999", "+", ""])
LEAD = st.sampled_from(["", "", " ", "\t", " \t"])
TRAIL = st.sampled_from(["", "", " ", "\t", " # note", "\r"])


@st.composite
def entry_line(draw):
    fields = [draw(FIELD) for _field in range(draw(st.integers(1, 4)))]
    for _number in range(draw(st.integers(0, 3))):
        number = draw(NUMBER)
        if number:
            fields.append(number)
    text = draw(LEAD) + fields[0]
    for field in fields[1:]:
        text += draw(SEP) + field
    return text + draw(TRAIL)


LINE = st.one_of(entry_line(), entry_line(),
                 st.builds(lambda lead, body: lead + "#" + body, LEAD, FIELD),
                 st.sampled_from(["", " ", "\t \t"]))
FSTAB = st.lists(LINE, min_size=1, max_size=8).flatmap(
    lambda lines: st.sampled_from(["\n", "\r\n"]).flatmap(
        lambda eol: st.booleans().map(lambda final: eol.join(lines) + (eol if final else ""))))


def _same_as_libmount(text):
    assert our_entries(text) == libmount_entries(text), repr(text)


@QUICK
@given(FSTAB)
def test_entries_read_as_libmount_reads_them(text):
    _same_as_libmount(text)


@pytest.mark.fuzz
@FUZZ
@given(FSTAB)
def test_entries_read_as_libmount_reads_them_fuzz(text):
    _same_as_libmount(text)


def _edit_changes_only_the_options(text, index):
    fstab = F.Fstab.parse(text)
    entries = fstab.entries()
    before = libmount_entries(text)
    assert our_entries(text) == before
    if not entries:
        return
    line = entries[index % len(entries)]
    position = fstab.entries().index(line)
    if line.options_problem:
        with pytest.raises(ValueError):
            line.with_options(["_netdev"])
        return
    had = "_netdev" in line.options
    fstab.set_options(line, ["_netdev", "nofail"])
    after = libmount_entries(fstab.render())
    assert len(after) == len(before)
    for i, (old, new) in enumerate(zip(before, after)):
        if i != position:
            assert old == new
            continue
        assert old[:3] == new[:3] and old[4:] == new[4:]
        options = F.Fstab.parse(fstab.render()).entries()[position].options
        old_options = list(F.Fstab.parse(text).entries()[position].options)
        expected = ["defaults"] if line.raw_field(3) is None else list(old_options)
        expected += [o for o in ("_netdev", "nofail") if o not in old_options and not (o == "_netdev" and had)]
        assert options == expected
        # libmount splits the new field into the same options
        libmount_opts = [new[3][s:e] for s, e in F.split_options(new[3]) if e > s]
        assert libmount_opts == expected


@QUICK
@given(FSTAB, st.integers(0, 7))
def test_edit_changes_only_the_intended_options(text, index):
    _edit_changes_only_the_options(text, index)


@pytest.mark.fuzz
@FUZZ
@given(FSTAB, st.integers(0, 7))
def test_edit_changes_only_the_intended_options_fuzz(text, index):
    _edit_changes_only_the_options(text, index)


@pytest.mark.parametrize("option", ['x"y', 'a,b', 'context="a,b', '=x'])
def test_options_libmount_would_read_differently_are_refused(option):
    with pytest.raises(InputError) as err:
        F.check_option(option, "options")
    assert err.value.field == "options"


def test_quoted_options_stay_separate_options_for_libmount():
    text = "/dev/sdb1 /srv ext4 defaults 0 0\n"
    fstab = F.Fstab.parse(text)
    options = [F.check_option('context="a,b"'), F.check_option('x-y="1"')]
    fstab.set_options(fstab.entries()[0], options)
    got = libmount_entries(fstab.render())[0][3]
    assert [got[s:e] for s, e in F.split_options(got)] == ["defaults"] + options


def test_lines_libmount_accepts_are_entries():
    text = ("/dev/a /m1 ext4 defaults 0 0 extra fields\n"     # fields after passno are ignored
            "/dev/b /m2 ext4 rw -1 +2\n"                       # signed numbers
            "/dev/c /m3 ext4 rw\x0b 0 0\n"                     # \v is data, not a line end or a blank
            "/dev/d /m\\0404 ext4 a\\054b 0 0\n"               # \054 is a comma for libmount
            "/dev/e /m5 ext4 rw 0 1x\n")                       # refused by libmount
    assert [e[1] for e in our_entries(text)] == ["/m1", "/m2", "/m3", "/m 4"]
    _same_as_libmount(text)


def test_every_entry_of_a_chosen_mount_point_gets_the_options():
    from ansible_collections.openiscsi.initiator.plugins.module_utils._boot_plan import plan_fstab
    text = ("/dev/sdb1 /srv ext4 defaults 0 0\n"
            "/dev/sdc1 /other ext4 defaults 0 0\n"
            "LABEL=data /srv ext4 rw 0 2\n")        # mount(8) uses this one (the last), systemd the first
    fstab = F.Fstab.parse(text)
    plan = plan_fstab(fstab, root="/nonexistent", sessions=[], sources=["/dev/sdb1"], add=["_netdev"],
                      lookup=lambda tag, value: None)
    assert plan["changed_lines"] == [1, 3]
    by_target = [(e[1], e[3]) for e in libmount_entries(fstab.render())]
    assert by_target == [("/srv", "defaults,_netdev"), ("/other", "defaults"), ("/srv", "rw,_netdev")]
