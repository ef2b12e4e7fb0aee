# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A CHAP secret given by mistake under ``settings`` never reaches syslog/the journal ("Invoked with ...") nor the
module's output, while the module still refuses it (issue 12)."""

from __future__ import annotations

import pytest

from ansible.module_utils import basic

from ansible_collections.openiscsi.initiator.plugins.modules import iface, iscsid_config, node

from harness import run_module

SECRET = "Sup3rS3cretChap"
CASES = {
    "iscsid_config": (iscsid_config, {"settings": {"node.session.auth.password": SECRET}}),
    "iscsid_config_discovery": (iscsid_config, {"settings": {"discovery.sendtargets.auth.password_in": SECRET}}),
    "node": (node, {"target": "iqn.2024-01.com.example:t1", "portal": "192.0.2.10",
                    "settings": {"node.session.auth.password": SECRET}}),
    "node_list": (node, {"nodes": [{"target": "iqn.2024-01.com.example:t1", "portal": "192.0.2.10",
                                    "settings": {"node.session.auth.password_in": SECRET}}]}),
    "iface": (iface, {"name": "san-a", "settings": {"iface.chap_password": SECRET}}),
}


@pytest.fixture
def logged(monkeypatch):
    """Every message AnsibleModule.log would send to syslog or the journal."""
    messages = []
    monkeypatch.setattr(basic, "has_journal", False)
    monkeypatch.setattr(basic.AnsibleModule, "_log_to_syslog", lambda self, msg: messages.append(msg))
    return messages


@pytest.mark.parametrize("case", sorted(CASES))
def test_secret_under_settings_is_never_logged(tmp_path, capsys, logged, no_commands, case):
    module, args = CASES[case]
    res = run_module(capsys, module, dict(args, root=str(tmp_path)))
    assert res.get("failed"), res                                    # still refused
    assert any(m.startswith("Invoked with") for m in logged), logged  # the invocation was logged ...
    assert not any(SECRET in m for m in logged), logged              # ... without the secret
    assert SECRET not in res["_raw"]


def test_other_settings_stay_visible_in_the_log(tmp_path, capsys, logged):
    conf = tmp_path / "etc" / "iscsi" / "iscsid.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("node.startup = manual\n")
    res = run_module(capsys, iscsid_config, {"root": str(tmp_path), "settings": {"node.startup": "automatic"}})
    assert res["changed"], res
    assert any("automatic" in m for m in logged), logged
