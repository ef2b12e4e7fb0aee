# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Issue 12 at module level: non-ASCII digits and control characters are refused naming the field with nothing
written; files holding such characters are read line by line as their real readers read them."""

from __future__ import annotations

import pytest

from ansible_collections.openiscsi.initiator.plugins.modules import iscsid_config, node, service_defaults

from harness import file_states, run_module

T = "iqn.2024-01.com.example:t1"


@pytest.mark.parametrize("portal", ["192.0.2.10:\u00b2", "192.0.2.10:\u0663\u0662\u0666\u0660", "[2001:db8::1]:\uff13"])
def test_node_portal_with_non_ascii_digits_fails_cleanly(tmp_path, capsys, no_commands, portal):
    before = file_states(tmp_path)
    res = run_module(capsys, node, {"target": T, "portal": portal, "root": str(tmp_path)})
    assert res["failed"] and "portal" in res["msg"] and "ASCII" in res["msg"], res
    assert "Traceback" not in res["_raw"]
    assert file_states(tmp_path) == before and not no_commands


@pytest.mark.parametrize("ch", ["\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"])
def test_node_setting_with_control_character_fails_before_writing(tmp_path, capsys, no_commands, ch):
    before = file_states(tmp_path)
    res = run_module(capsys, node, {"target": T, "portal": "192.0.2.10", "root": str(tmp_path),
                                    "settings": {"node.session.auth.username": "a%sb" % ch}})
    assert res["failed"] and "settings.node.session.auth.username" in res["msg"], res
    assert file_states(tmp_path) == before and not no_commands


@pytest.mark.parametrize("ch", ["\x0b", "\x0c", "\u2028"])
def test_iscsid_config_is_idempotent_on_a_file_with_control_characters(tmp_path, capsys, ch):
    conf = tmp_path / "etc" / "iscsi" / "iscsid.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("iscsid.startup = /bin/true%sx\nnode.startup = manual\n" % ch)
    args = {"root": str(tmp_path), "settings": {"node.startup": "automatic"}}
    assert run_module(capsys, iscsid_config, args)["changed"]
    text = conf.read_text()
    again = run_module(capsys, iscsid_config, args)
    assert not again["changed"], again
    assert conf.read_text() == text == "iscsid.startup = /bin/true%sx\nnode.startup = automatic\n" % ch


def test_service_defaults_keeps_a_value_spanning_two_lines(tmp_path, capsys):
    path = tmp_path / "etc" / "default" / "open-iscsi"
    path.parent.mkdir(parents=True)
    path.write_text("LVMGROUPS='vg0\nvg1'\nHANDLE_NETDEV=0\n")
    res = run_module(capsys, service_defaults, {"root": str(tmp_path), "handle_netdev": True})
    assert res["changed"], res
    assert path.read_text() == "LVMGROUPS='vg0\nvg1'\nHANDLE_NETDEV=1\n"
    # replacing the two-line value itself replaces both of its lines
    res = run_module(capsys, service_defaults, {"root": str(tmp_path), "lvm_groups": ["vg2"]})
    assert res["changed"], res
    assert path.read_text() == "LVMGROUPS=vg2\nHANDLE_NETDEV=1\n"


def test_iscsid_config_replaces_a_value_holding_a_vertical_tab_whole(tmp_path, capsys):
    conf = tmp_path / "etc" / "iscsi" / "iscsid.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("iscsid.startup = /bin/true\x0bx\nnode.startup = manual\n")
    res = run_module(capsys, iscsid_config, {"root": str(tmp_path), "settings": {"iscsid.startup": "/bin/false"}})
    assert res["changed"], res
    assert conf.read_text() == "iscsid.startup = /bin/false\nnode.startup = manual\n"
