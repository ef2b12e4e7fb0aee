# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Issue 12: numbers in ASCII digits only, lines end at \\n only, control characters refused before writing."""

from __future__ import annotations

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsid_conf import (
    mask_text,
    validate_conf_settings,
    validate_node_settings,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._kvconf import KVFile
from ansible_collections.openiscsi.initiator.plugins.module_utils._node_plan import _check_tpgt
from ansible_collections.openiscsi.initiator.plugins.module_utils._nodedb import parse_portal_dirname
from ansible_collections.openiscsi.initiator.plugins.module_utils._portal import parse_portal
from ansible_collections.openiscsi.initiator.plugins.module_utils._textrules import ascii_int, split_lf

# Every character str.splitlines breaks at, besides \n.
SPLITLINES_BREAKS = ["\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
NON_ASCII_DIGITS = ["\u00b2", "\u0663", "\uff11", "\u0e51", "1_0"]


@pytest.mark.parametrize("port", NON_ASCII_DIGITS)
def test_portal_port_in_non_ascii_digits_is_an_input_error(port):
    with pytest.raises(InputError) as err:
        parse_portal("192.0.2.10:%s" % port, field="portal")
    assert err.value.field == "portal" and "ASCII" in str(err.value)


@pytest.mark.parametrize("text", ["\u0663", "-\u0663", "\u00b2"])
def test_tpgt_and_record_dirs_in_non_ascii_digits(text):
    with pytest.raises(InputError):
        _check_tpgt(text, "tpgt")
    assert parse_portal_dirname("192.0.2.10,3260,%s" % text) is None


@pytest.mark.parametrize("value", ["\u0663\u0660", "1_0", "\u00b2"])
def test_int_settings_in_non_ascii_digits_refused(value):
    with pytest.raises(InputError) as err:
        validate_conf_settings({"node.session.timeo.replacement_timeout": value})
    assert "replacement_timeout" in err.value.field


def test_ascii_int():
    assert ascii_int("3260") == 3260
    assert ascii_int("-1", signed=True) == -1
    assert ascii_int("-1") is None
    assert ascii_int("9" * 5000) is None        # never int()'s ValueError
    for text in NON_ASCII_DIGITS + ["", " 1", "+", "0x10"]:
        assert ascii_int(text, signed=True) is None


@pytest.mark.parametrize("ch", SPLITLINES_BREAKS + ["\x01", "\x7f", "\x9b"])
def test_control_characters_refused_naming_the_field(ch):
    with pytest.raises(InputError) as err:
        validate_node_settings({"node.session.scan": "man%sual" % ch})
    assert err.value.field == "settings.node.session.scan"
    with pytest.raises(InputError) as err:
        validate_conf_settings({"iscsid.startup": "/bin/true%sx" % ch})
    assert err.value.field == "settings.iscsid.startup"
    with pytest.raises(ValueError):
        KVFile.parse("a = b\n").set("a", "x%sy" % ch)


@pytest.mark.parametrize("ch", SPLITLINES_BREAKS[1:])
def test_kvfile_lines_end_at_newline_only(ch):
    # What iscsiadm's fgets() reads: one line, key a, value 'x<ch>y'; the collection must read the same.
    text = "a = x%sy\nb = 2\n" % ch
    kv = KVFile.parse(text)
    assert kv.get("a") == "x%sy" % ch and kv.get("b") == "2"
    assert kv.render() == text
    assert kv.set("a", "z") and kv.render() == "a = z\nb = 2\n"


@pytest.mark.parametrize("ch", SPLITLINES_BREAKS[1:])
def test_mask_text_masks_the_whole_line(ch):
    text = "node.session.auth.password = abc%sdef\n" % ch
    assert "def" not in mask_text(text) and "abc" not in mask_text(text)


def test_split_lf_keeps_every_byte():
    text = "a\x0bb\r\nc\u2028d\n\ne"
    assert split_lf(text) == ["a\x0bb\r\n", "c\u2028d\n", "\n", "e"]
    assert "".join(split_lf(text)) == text
    assert split_lf("") == [] and split_lf("x\n") == ["x\n"]


@pytest.mark.parametrize("ch", SPLITLINES_BREAKS + ["\x01"])
def test_discovery_auth_with_control_characters_refused(ch):
    from ansible_collections.openiscsi.initiator.plugins.module_utils._discovery import validate_auth
    with pytest.raises(InputError) as err:
        validate_auth({"username": "a%sb" % ch, "password": "secret-secret"}, "auth")
    assert err.value.field == "auth.username"
    with pytest.raises(InputError) as err:
        validate_auth({"username": "alice", "password": "Zq9xWv%sKp3mTn" % ch}, "auth")
    assert err.value.field == "auth.password" and "Zq9xWv" not in str(err.value) and "Kp3mTn" not in str(err.value)
