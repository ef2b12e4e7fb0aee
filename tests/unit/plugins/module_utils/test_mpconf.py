# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""multipath.conf parser/renderer and the multipath plan, with differential tests against multipath-tools' own reader.

The differential tests run the host's ``multipath -t`` (Debian's multipath-tools) on the file under test: in a private
mount namespace a temporary directory holding only that file is bind-mounted over /etc, so the host's own
configuration is never read or touched.  They are skipped where multipath-tools or mount namespaces are missing, and
fail instead under CI (``make test`` installs multipath-tools)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._mpconf import (
    MAX_LINE_BYTES, QUOTE, MpConf, MpConfError, render_value, tokenize,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._multipath_plan import parse_request, plan


# ------------------------------------------------------------------------------------------------ the real reader
def _multipath_t_available():
    if not shutil.which("multipath") or not shutil.which("unshare") or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True, check=False)
    return probe.returncode == 0


HAVE_READER = _multipath_t_available()
if not HAVE_READER and os.environ.get("CI"):
    raise RuntimeError("CI: multipath-tools' multipath -t and unshare -m are needed for the differential tests")
needs_reader = pytest.mark.skipif(not HAVE_READER, reason="needs multipath-tools, unshare and root")


def multipath_t(text):
    """(stdout, stderr) of the host's ``multipath -t`` reading ``text`` as /etc/multipath.conf."""
    with tempfile.TemporaryDirectory() as etc:
        with open(os.path.join(etc, "multipath.conf"), "wb") as handle:
            handle.write(text.encode("utf-8", "surrogateescape"))
        proc = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             'mount --bind "$1" /etc && exec multipath -t', "sh", etc],
            capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


def reader_view(text):
    """What multipath-tools took from ``text``: multipaths (wwid -> alias), blacklist devnodes, alias_prefix --
    read off ``multipath -t``'s output (with this module's parser: the dump is plain tab-indented config)."""
    out, _err = multipath_t(text)
    return _view(MpConf.parse(out), builtin=True)


def _view(conf, builtin=False):
    maps = {}
    for section in conf.sections("multipaths"):
        for child in section.children:
            values = dict(conf.entry_values(child))
            if values.get("wwid") is not None:
                maps[values["wwid"]] = values.get("alias")
    devnodes = []
    for section in conf.sections("blacklist"):
        devnodes += [v for k, v in conf.entry_values(section) if k == "devnode"]
    if builtin:  # the built-in blacklist multipath -t adds after the file's own entries
        devnodes = [d for d in devnodes if d != "!^(sd[a-z]|dasd[a-z]|nvme[0-9])"]
    devnodes = list(dict.fromkeys(devnodes))  # multipath-tools keeps one of identical entries
    prefix = None
    for section in conf.sections("defaults"):
        prefix = conf.get(section, "alias_prefix") or prefix
    return dict(maps=maps, devnodes=devnodes, prefix=prefix if prefix != "mpath" else None)


# ------------------------------------------------------------------------------------------------ generators
_BLANK = st.sampled_from(["", " ", "\t", "  \t", "\u00a0", " \u00e9 "])   # non-ASCII reads as blank outside quotes
_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEF0123456789_.:-", min_size=1, max_size=12)
_QUOTED = st.text(alphabet="abcdefXYZ0129 _.:-{}#!\"'", min_size=0, max_size=14).filter(
    lambda s: not s.startswith(("#", "!")))
# devnode values are regular expressions multipath-tools compiles: keep them valid.
_REGEX = st.text(alphabet="abcxyz0129^$._- ", min_size=1, max_size=10)
_COMMENT = st.sampled_from(["", " # note", "#x", " ! bang", "\t# a \"quoted\" word"])
_EOL = st.sampled_from(["\n", "\r\n"])


@st.composite
def _value(draw, quoted=_QUOTED):
    if draw(st.booleans()):
        word = draw(_WORD)
        return word, word
    text = draw(quoted)
    return '"%s"' % text.replace('"', '""'), text


@st.composite
def _kv(draw, key, value=None):
    spelled, meant = value if value is not None else draw(_value())
    line = "%s%s%s%s%s%s" % (draw(_BLANK), key, draw(st.sampled_from([" ", "\t", " \u00a0 "])), spelled,
                             draw(_COMMENT), draw(_EOL))
    return line, meant


@st.composite
def documents(draw):
    """A multipath.conf as people write them (comments, blanks, quotes, CRLF, braces glued to words), and what it
    means: multipaths wwid -> alias, blacklist devnodes, defaults alias_prefix."""
    lines = []
    maps, devnodes, prefix = {}, [], None
    filler = st.sampled_from(["\n", "# a comment\n", "   ! another\n", "\t\n", "\r\n"])
    order = draw(st.permutations(["defaults", "blacklist", "multipaths"]))
    for name in order:
        lines += draw(st.lists(filler, max_size=2))
        lines.append("%s%s%s{%s\n" % (draw(_BLANK), name, draw(st.sampled_from(["", " ", "\t"])), draw(_COMMENT)))
        if name == "defaults" and draw(st.booleans()):
            line, prefix = draw(_kv("alias_prefix", draw(_value().filter(lambda v: v[1].strip() != ""))))
            lines.append(line)
        if name == "blacklist":
            for _count in range(draw(st.integers(0, 3))):
                line, meant = draw(_kv("devnode", draw(_value(_REGEX))))
                if meant:
                    lines.append(line)
                    devnodes.append(meant)
        if name == "multipaths":
            for n in range(draw(st.integers(0, 3))):
                lines.append("%smultipath%s{\n" % (draw(_BLANK), draw(st.sampled_from(["", " "]))))
                wwid = "36001405%04d" % n
                lines.append(draw(_kv("wwid", (wwid, wwid)))[0])
                alias = None
                if draw(st.booleans()):
                    line, alias = draw(_kv("alias", draw(_value().filter(lambda v: v[1].strip() != ""))))
                    lines.append(line)
                maps[wwid] = alias
                lines.append("%s}%s\n" % (draw(_BLANK), draw(_COMMENT)))
        lines += draw(st.lists(filler, max_size=2))
        lines.append("}\n")
    return "".join(lines), dict(maps=maps, devnodes=list(dict.fromkeys(devnodes)), prefix=prefix)


FAST = settings(max_examples=int(os.environ.get("MPCONF_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------------------------ parser
@FAST
@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=300))
def test_any_text_round_trips_byte_for_byte(text):
    try:
        conf = MpConf.parse(text)
    except MpConfError:
        return
    assert conf.render() == text


@FAST
@given(documents())
def test_parser_reads_what_was_meant(doc):
    text, meant = doc
    assert _view(MpConf.parse(text)) == meant


@needs_reader
@FAST
@given(documents())
def test_parser_reads_what_multipath_tools_reads(doc):
    text, meant = doc
    assert reader_view(text) == _view(MpConf.parse(text)) == meant


def test_tokenizer_follows_multipath_tools():
    assert tokenize("   # only a comment") is None
    assert tokenize("\u00a0\t") is None
    tokens = tokenize('alias "a ""b"" c" # x')
    assert tokens == ["alias", '"', 'a "b" c', '"'] and tokens[1] is QUOTE and tokens[3] is QUOTE
    assert tokenize('alias """"')[2] is not QUOTE
    assert tokenize("multipath{") == ["multipath", "{"]
    assert tokenize("wwid 36#comment") == ["wwid", "36"]
    assert tokenize('alias ""') == ["alias", '"', '"']


def test_overlong_line_is_refused():
    with pytest.raises(MpConfError, match="line 2 is"):
        MpConf.parse("defaults {\n\talias_prefix %s\n}\n" % ("x" * MAX_LINE_BYTES))


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "tab\there", "caf\u00e9", "#hash", "!bang", "nul\x00", "\u2028",
                                   'say "hi"'])
def test_renderer_refuses_what_the_reader_reads_otherwise(value):
    with pytest.raises(MpConfError):
        render_value(value, "defaults.alias_prefix")


@needs_reader
@pytest.mark.parametrize("value", ["a  b", "{x}", "x # y", "x ! y", "", "0", "-1", "mid#dle"])
def test_rendered_values_read_back_exactly(value):
    text = "defaults {\n\talias_prefix %s\n}\nmultipaths {\n\tmultipath {\n\t\twwid 3600\n\t\talias %s\n\t}\n}\n" % (
        render_value("p" + value, "f"), render_value(value or "z", "f"))
    view = reader_view(text)
    assert view["prefix"] == "p" + value
    assert view["maps"] == {"3600": value or "z"}


# ------------------------------------------------------------------------------------------------ plan
BASE = """# site multipath configuration
defaults {
\tuser_friendly_names yes   # keep
\tfind_multipaths strict
}

blacklist {
\tdevnode "^sda$"
}
"""


def _req(**params):
    return parse_request(params)


def test_plan_changes_only_the_owned_lines_and_is_idempotent():
    req = _req(defaults={"find_multipaths": "no", "polling_interval": 10},
               multipaths=[{"wwid": "36001405abc", "alias": "data"}],
               blacklist=[{"devnode": "^sdb$"}, {"devnode": "^sda$", "state": "absent"}])
    result = plan(BASE, req)
    new = result["text"]
    assert new.startswith("# site multipath configuration\ndefaults {\n\tuser_friendly_names yes   # keep\n"
                          "\tfind_multipaths \"no\"\n\tpolling_interval 10\n}\n")
    assert '"^sda$"' not in new and 'devnode "^sdb$"' in new
    assert result["effective_changed"] is True
    keys = [(c["section"], c["key"]) for c in result["changes"]]
    assert ("defaults", "find_multipaths") in keys and ("blacklist", "devnode") in keys
    again = plan(new, req)
    assert again["text"] == new and again["changes"] == [] and again["effective_changed"] is False


def test_comment_only_difference_is_not_an_effective_change():
    conf_a = MpConf.parse("defaults {\n\tpolling_interval 5\n}\n")
    conf_b = MpConf.parse("# hello\ndefaults {   # x\n  polling_interval \"5\"\n}\n")
    assert conf_a.effective() == conf_b.effective()


def test_device_entries_are_keyed_by_vendor_and_product_and_removed_whole():
    text = "devices {\n\tdevice {\n\t\tvendor \"LIO-ORG\"\n\t\tproduct \".*\"\n\t\tno_path_retry 5\n\t}\n}\n"
    result = plan(text, _req(devices=[{"vendor": "LIO-ORG", "product": ".*", "settings": {"no_path_retry": 12}},
                                      {"vendor": "IET", "product": "VIRTUAL-DISK", "settings": {}}]))
    conf = MpConf.parse(result["text"])
    devices = conf.as_dict()["devices"][0]["device"]
    assert devices == [{"vendor": "LIO-ORG", "product": ".*", "no_path_retry": "12"},
                       {"vendor": "IET", "product": "VIRTUAL-DISK"}]
    gone = plan(result["text"], _req(devices=[{"vendor": "LIO-ORG", "product": ".*", "state": "absent"}]))
    assert MpConf.parse(gone["text"]).as_dict()["devices"][0]["device"] == [{"vendor": "IET",
                                                                            "product": "VIRTUAL-DISK"}]


def test_duplicates_of_an_owned_key_collapse_to_one_line():
    text = "defaults {\n\tpolling_interval 5\n\tpolling_interval 7\n}\n"
    result = plan(text, _req(defaults={"polling_interval": 9}))
    assert result["text"] == "defaults {\n\tpolling_interval 9\n}\n"


@pytest.mark.parametrize("params, field", [
    ({"defaults": {"Bad-Key": 1}}, "defaults.Bad-Key"),
    ({"defaults": {"alias_prefix": "a\nb"}}, "defaults.alias_prefix"),
    ({"multipaths": [{"alias": "x"}]}, "multipaths[0].wwid"),
    ({"multipaths": [{"wwid": "1", "settings": {"wwid": "2"}}]}, "multipaths[0].settings.wwid"),
    ({"devices": [{"vendor": "A", "product": "B"}, {"vendor": "A", "product": "B"}]}, "devices[1]"),
    ({"blacklist": [{"devnode": "a", "wwid": "b"}]}, "blacklist[0]"),
    ({"blacklist": [{"device": {"vendor": "A"}}]}, "blacklist[0].device.product"),
])
def test_bad_requests_name_the_field(params, field):
    with pytest.raises(InputError) as info:
        parse_request(params)
    assert info.value.field == field


@needs_reader
@FAST
@given(documents(), st.dictionaries(st.sampled_from(["36001405%04d" % n for n in range(5)]),
                                    _QUOTED.filter(lambda s: s.strip() != "" and '"' not in s), max_size=3))
def test_plan_edits_read_back_by_multipath_tools(doc, aliases):
    """After the plan, multipath-tools reads exactly the asked aliases and everything else as before."""
    text, meant = doc
    req = _req(multipaths=[{"wwid": w, "alias": a} for w, a in aliases.items()])
    new = plan(text, req)["text"]
    out, err = multipath_t(new)
    got = _view(MpConf.parse(out), builtin=True)
    want = dict(meant["maps"], **aliases)
    assert got["maps"] == want
    assert got["devnodes"] == meant["devnodes"] and got["prefix"] == meant["prefix"]
    assert "invalid" not in err and "missing" not in err


def test_a_section_left_open_is_closed_before_new_lines_go_into_it():
    text = "defaults {\n\tpolling_interval 5"
    result = plan(text, _req(defaults={"fast_io_fail_tmo": 5}, multipaths=[{"wwid": "3600", "alias": "db"}]))
    assert result["text"] == ("defaults {\n\tpolling_interval 5\n\tfast_io_fail_tmo 5\n}\n"
                              "multipaths {\n\tmultipath {\n\t\twwid 3600\n\t\talias \"db\"\n\t}\n}\n")
    conf = MpConf.parse(result["text"])
    assert conf.get(conf.sections("defaults")[0], "polling_interval") == "5"
