# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fstab parser/renderer: a corpus of awkward files, byte-exact round trips, option-field-only changes, and a
hypothesis fuzz (>= 10,000 examples, marked ``fuzz``)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.openiscsi.initiator.plugins.module_utils import _fstab as F

CORPUS = {
    "debian": (
        "# /etc/fstab: static file system information.\n"
        "#\n"
        "# <file system> <mount point>   <type>  <options>       <dump>  <pass>\n"
        "UUID=0a3d6f2e-3d1c-4c55-9d1a-6b1f0e3c7a11 /               ext4    errors=remount-ro 0       1\n"
        "UUID=5B1C-2F0A  /boot/efi       vfat    umask=0077      0       1\n"
        "/swapfile none swap sw 0 0\n"
    ),
    "tabs_and_escapes": (
        "LABEL=data\t/srv/my\\040data\text4\tdefaults\t0\t2\n"
        "/dev/sdb1 /mnt/tab\\011name xfs noatime 0 0\n"
        "/dev/sdc1 /mnt/back\\134slash ext4 rw 0 0\n"
        "/dev/sdd1 /mnt/new\\012line ext4 rw 0 0\n"
    ),
    "hash_in_device": (
        "/dev/disk/by-label/a#b /mnt/hash ext4 defaults 0 0\n"
        "   # indented comment\n"
        "\t\n"
        "/dev/sde1 /mnt/x ext4 defaults,comment=#notacomment 0 0\n"
    ),
    "no_trailing_newline": "/dev/sdb1 /data ext4 defaults 0 2",
    "duplicates": (
        "/dev/sdb1 /data ext4 defaults 0 2\n"
        "/dev/sdc1 /data ext4 defaults 0 2\n"
        "/dev/sdd1 none swap sw 0 0\n"
        "/dev/sde1 none swap sw 0 0\n"
    ),
    "bind_and_short": (
        "/srv/data /export/data none bind 0 0\n"
        "/dev/sdb1 /short ext4\n"
        "tmpfs /tmp tmpfs mode=1777\n"
        "server:/export /mnt/nfs nfs4 _netdev,vers=4.2 0 0\n"
    ),
    "crlf_and_invalid": (
        "/dev/sdb1 /crlf ext4 defaults 0 0\r\n"
        "/dev/sdc1\r\n"
        "/dev/sdd1 /too many fields here 0 0 0\n"
        "/dev/sde1 /badpass ext4 defaults x y\n"
    ),
    "quoted_option": '/dev/sdb1 /sel ext4 context="system_u:object_r:a,b",ro 0 0\n',
    "empty": "",
    "only_comments": "# nothing\n#\n",
    "blank_last": "/dev/sdb1 /data ext4 defaults 0 2\n\n   ",
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_round_trip_is_byte_exact(name):
    text = CORPUS[name]
    assert F.Fstab.parse(text).render() == text


def test_fields_unescaped_like_libmount():
    fs = F.Fstab.parse(CORPUS["tabs_and_escapes"])
    targets = [e.target for e in fs.entries()]
    assert targets == ["/srv/my data", "/mnt/tab\tname", "/mnt/back\\slash", "/mnt/new\nline"]
    assert fs.entries()[0].source == "LABEL=data"
    assert fs.entries()[0].passno == 2


def test_hash_only_comments_at_line_start():
    fs = F.Fstab.parse(CORPUS["hash_in_device"])
    kinds = [line.kind for line in fs.lines]
    assert kinds == [F.ENTRY, F.COMMENT, F.BLANK, F.ENTRY]
    assert fs.entries()[0].source == "/dev/disk/by-label/a#b"
    assert fs.entries()[1].options == ["defaults", "comment=#notacomment"]


def test_missing_fields_get_libmount_defaults():
    fs = F.Fstab.parse(CORPUS["bind_and_short"])
    short = fs.by_target("/short")[0]
    assert (short.options, short.freq, short.passno) == (["defaults"], 0, 0)


def test_duplicates_reported_swap_excepted():
    fs = F.Fstab.parse(CORPUS["duplicates"])
    assert fs.duplicates() == {"/data": [1, 2]}


def test_invalid_lines_kept_and_explained():
    fs = F.Fstab.parse(CORPUS["crlf_and_invalid"])
    assert [line.kind for line in fs.lines] == [F.ENTRY, F.INVALID, F.INVALID, F.INVALID]
    assert "1 field" in fs.lines[1].problem
    assert "not a number" in fs.lines[2].problem   # libmount: freq "here" is no number (extra fields are ignored)
    assert "not a number" in fs.lines[3].problem
    assert fs.lines[0].eol == "\r\n" and fs.lines[0].target == "/crlf"


def change(text, target, add=("_netdev",), set_values=None):
    fs = F.Fstab.parse(text)
    line = fs.by_target(target)[0]
    assert fs.set_options(line, add, set_values)
    return fs.render()


def test_adding_changes_only_the_option_field():
    text = CORPUS["debian"]
    out = change(text, "/boot/efi")
    assert out == text.replace("umask=0077      0", "umask=0077,_netdev      0")


def test_adding_keeps_escapes_and_tabs_elsewhere():
    text = CORPUS["tabs_and_escapes"]
    out = change(text, "/srv/my data", add=("_netdev", "nofail"))
    assert out == text.replace("\tdefaults\t", "\tdefaults,_netdev,nofail\t")


def test_no_trailing_newline_stays_so():
    out = change(CORPUS["no_trailing_newline"], "/data")
    assert out == "/dev/sdb1 /data ext4 defaults,_netdev 0 2"


def test_missing_option_field_is_added_after_type():
    out = change(CORPUS["bind_and_short"], "/short")
    assert "/dev/sdb1 /short ext4 defaults,_netdev\n" in out


def test_missing_option_field_tab_separated():
    out = change("/dev/sdb1\t/short\text4\n", "/short")
    assert out == "/dev/sdb1\t/short\text4\tdefaults,_netdev\n"


def test_present_option_not_added_again_and_nothing_changes():
    fs = F.Fstab.parse("/dev/sdb1 /d ext4 _netdev,nofail 0 0\n")
    assert not fs.set_options(fs.entries()[0], ("_netdev", "nofail"))
    assert fs.render() == "/dev/sdb1 /d ext4 _netdev,nofail 0 0\n"


def test_set_value_replaces_only_that_option():
    out = change("/dev/sdb1 /d ext4 rw,x-systemd.device-timeout=90s,noatime 0 0\n", "/d", add=(),
                 set_values={"x-systemd.device-timeout": "30s"})
    assert out == "/dev/sdb1 /d ext4 rw,x-systemd.device-timeout=30s,noatime 0 0\n"


def test_quoted_commas_are_one_option():
    fs = F.Fstab.parse(CORPUS["quoted_option"])
    assert fs.entries()[0].options == ['context="system_u:object_r:a,b"', "ro"]
    out = change(CORPUS["quoted_option"], "/sel")
    assert out == '/dev/sdb1 /sel ext4 context="system_u:object_r:a,b",ro,_netdev 0 0\n'


def test_unbalanced_quote_refused():
    fs = F.Fstab.parse('/dev/sdb1 /d ext4 a="b 0 0\n')
    assert fs.entries()[0].options_problem
    with pytest.raises(ValueError):
        fs.set_options(fs.entries()[0], ("_netdev",))
    assert fs.render() == '/dev/sdb1 /d ext4 a="b 0 0\n'


def test_crlf_line_keeps_crlf():
    out = change(CORPUS["crlf_and_invalid"], "/crlf")
    assert out.startswith("/dev/sdb1 /crlf ext4 defaults,_netdev 0 0\r\n/dev/sdc1\r\n")


def test_new_option_with_blank_is_escaped():
    out = change("/dev/sdb1 /d ext4 rw 0 0\n", "/d", add=("x-note=a b",))
    assert out == "/dev/sdb1 /d ext4 rw,x-note=a\\040b 0 0\n"
    assert F.Fstab.parse(out).entries()[0].options == ["rw", "x-note=a b"]


def test_escape_unescape_inverse():
    for value in ("/a b", "/t\tx", "/n\nx", "/b\\x", "plain"):
        assert F.unescape(F.escape(value)) == value


def test_undecodable_bytes_survive():
    raw = b"/dev/sdb1 /mnt/\xff\xfe ext4 defaults 0 0\n".decode("utf-8", "surrogateescape")
    out = change(raw, "/mnt/\udcff\udcfe")
    assert out.encode("utf-8", "surrogateescape") == b"/dev/sdb1 /mnt/\xff\xfe ext4 defaults,_netdev 0 0\n"


# ------------------------------------------------------------------------------------------- fuzz
FUZZ = settings(max_examples=10000, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_TOKENS = list(" \t\n\r#\\,=\"'0123456789abcXYZ/:_-")
_TOKENS += ["\\040", "\\011", "\\134", "\udcff", "é", "UUID=", "LABEL="]
_ALPHABET = st.sampled_from(_TOKENS)
_COUNT = {"roundtrip": 0, "change": 0}


@pytest.mark.fuzz
@FUZZ
@given(st.lists(_ALPHABET, max_size=80).map("".join))
def test_fuzz_round_trip_any_text(text):
    _COUNT["roundtrip"] += 1
    fs = F.Fstab.parse(text)
    assert fs.render() == text
    for line in fs.entries():
        line.as_dict()  # never raises


_FIELD = st.lists(st.sampled_from(list("abcXYZ019/_-.#=\"") + [" ", "\t", "\\", "\n", "é"]),
                  min_size=1, max_size=12).map("".join)
_OPTION = st.lists(st.sampled_from(list("abcxyz019_-.")), min_size=1, max_size=8).map("".join)


@pytest.mark.fuzz
@FUZZ
@given(src=_FIELD, target=_FIELD, opts=st.lists(_FIELD, min_size=0, max_size=3),
       before=st.lists(st.sampled_from(["# c\n", "\n", "/dev/x /y ext4 rw 0 0\n", "\t#x\n"]), max_size=3),
       after=st.lists(st.sampled_from(["# c\n", "\n", "/dev/z /w xfs rw 0 0\n"]), max_size=3),
       sep=st.sampled_from([" ", "\t", "  \t"]), eol=st.sampled_from(["\n", "", "\r\n"]),
       add=st.lists(_OPTION, min_size=1, max_size=3))
def test_fuzz_change_touches_only_option_field(src, target, opts, before, after, sep, eol, add):
    _COUNT["change"] += 1
    if src.startswith("#"):
        src = "x" + src
    option_field = ",".join(F.escape(o).replace(",", "\\054") for o in opts) if opts else "defaults"
    option_field = option_field or "defaults"
    line = sep.join([F.escape(src), F.escape(target), "ext4", option_field, "0", "2"])
    if eol == "" and after:
        eol = "\n"
    text = "".join(before) + line + eol + "".join(after)
    fs = F.Fstab.parse(text)
    entry = [e for e in fs.entries() if e.lineno == len(before) + 1][0]
    assert (entry.source, entry.target, entry.fstype) == (src, target, "ext4")
    before_opts = entry.options
    if option_field.count('"') % 2:
        assert entry.options_problem
        with pytest.raises(ValueError):
            fs.set_options(entry, add)
        return
    changed = fs.set_options(entry, add)
    out = fs.render()
    new = F.Fstab.parse(out)
    assert len(new.lines) == len(fs.lines)
    for old_line, new_line in zip(F.Fstab.parse(text).lines, new.lines):
        if old_line.lineno != entry.lineno:
            assert old_line.text() == new_line.text()
        else:
            assert (new_line.source, new_line.target, new_line.fstype, new_line.freq, new_line.passno) == \
                (src, target, "ext4", 0, 2)
            assert new_line.options[:len(before_opts)] == before_opts
            names = set(F.option_name(o) for o in new_line.options)
            assert all(F.option_name(a) in names for a in add)
            # only the option field's span differs
            s, e = old_line.spans[3]
            s2, e2 = new_line.spans[3]
            assert old_line.raw[:s] == new_line.raw[:s2] and old_line.raw[e:] == new_line.raw[e2:]
            assert new_line.eol == old_line.eol
    assert changed == (out != text)


@pytest.mark.fuzz
def test_fuzz_ran_enough_examples():
    """Runs after the two fuzz tests above in file order: each really ran >= 10,000 examples."""
    assert _COUNT["roundtrip"] >= 10000, _COUNT
    assert _COUNT["change"] >= 10000, _COUNT
