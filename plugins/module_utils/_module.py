# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""Ansible glue: the ``AnsibleModule`` of the modules that take free-form ``settings`` dicts.

``AnsibleModule.__init__`` logs the whole invocation ("Invoked with ...", to syslog or the journal) right after it
has validated the arguments, and puts it in the result of ``fail_json``; only the values of ``no_log`` options are
masked there.  A CHAP secret given by mistake under ``settings`` (``node.session.auth.password: ...``) would be
logged before the module could refuse it.  :class:`SettingsModule` adds the value of every secret-looking key
found under a ``settings`` option (at the top or inside a list of suboption dicts such as ``nodes``) to
``no_log_values`` as soon as the parameters are loaded, before validation, logging or any failure, so the value
is masked wherever Ansible prints or logs it, while the rest of ``settings`` stays visible in logs, diffs and
results.
"""

from __future__ import annotations

import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openiscsi.initiator.plugins.module_utils._nodedb import is_secret

# Beyond the keys open-iscsi keeps secrets in (is_secret): anything that looks like a password or secret.
_SECRET_LOOKING_RE = re.compile(r"pass|secret|chap_?key", re.I)
SETTINGS_OPTION = "settings"


def looks_secret(key):
    return isinstance(key, str) and (is_secret(key) or bool(_SECRET_LOOKING_RE.search(key)))


def secret_setting_values(params, option=SETTINGS_OPTION):
    """The values of secret-looking keys of every *option* dict in *params* (nested lists and dicts searched)."""
    found = []

    def walk(value):
        if isinstance(value, dict):
            for key, item in value.items():
                if key == option and isinstance(item, dict):
                    for name, secret in item.items():
                        if looks_secret(name) and secret not in (None, "") and not isinstance(secret, bool):
                            found.append(str(secret))
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)
    walk(params)
    return found


class SettingsModule(AnsibleModule):
    """``AnsibleModule`` that never logs nor returns a secret given under ``settings`` (see the module docstring)."""

    def _set_internal_properties(self, *args, **kwargs):
        # Runs right after the parameters are loaded: before validation, _log_invocation() and any fail_json().
        super()._set_internal_properties(*args, **kwargs)
        self.no_log_values.update(secret_setting_values(self.params))
