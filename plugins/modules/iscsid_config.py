#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: iscsid_config
short_description: Set or remove settings in /etc/iscsi/iscsid.conf
version_added: 0.1.0
description:
  - Sets or removes C(key = value) settings of open-iscsi's C(iscsid.conf) - the daemon settings (C(iscsid.*)), the
    SendTargets discovery defaults (C(discovery.*)) and the defaults that C(iscsiadm) copies into every NEW node
    record (C(node.*)).
  - Keeps every comment, blank line and setting it is not asked about, byte for byte. When a key is present only as
    the commented-out default the package ships (C(# node.startup = automatic)), the new value takes the place of
    that comment line, so the setting stays next to its documentation.
  - Validates key names and values against the keys open-iscsi knows (the names in the shipped C(iscsid.conf) and in
    C(iscsiadm)'s records, with the types and choices of open-iscsi's own tables). An unknown key fails with the
    closest known names, unless O(allow_unknown=true). Choices are written in the exact spelling open-iscsi expects
    (it compares case-sensitively, so C(yes) would be silently ignored; the module writes C(Yes)).
  - CHAP secrets go in O(secrets), which is C(no_log); they are masked (C(********)) in the diff and in the returned
    RV(changes). A file holding a secret is written with mode C(0600).
  - Writes atomically (temporary file in the same directory, then rename), optionally with a backup.
  - Never restarts anything; RV(restart_needed) says when iscsid must be restarted for a change to take effect.
author:
  - openiscsi.initiator contributors (@openiscsi)
options:
  settings:
    description:
      - "With O(state=present), a dictionary of C(key: value) settings, for example C(node.startup: automatic) or
        C(node.session.timeo.replacement_timeout: 15). Values may be strings, integers or booleans (for the
        C(No)/C(Yes) keys); lists are accepted for C(node.session.auth.chap_algs)."
      - With O(state=absent), the keys to remove, as a list or as a dictionary whose values are ignored.
      - CHAP passwords are refused here; give them in O(secrets).
    type: raw
  secrets:
    description:
      - CHAP secrets, C(no_log). Only C(node.session.auth.password), C(node.session.auth.password_in),
        C(discovery.sendtargets.auth.password) and C(discovery.sendtargets.auth.password_in) are accepted.
      - With O(state=absent) the listed keys are removed (values ignored).
    type: dict
  state:
    description:
      - V(present) sets the keys to the given values.
      - V(absent) removes every active line of the keys (open-iscsi then uses its compiled-in default). Comment
        lines are never removed.
    type: str
    choices: [present, absent]
    default: present
  allow_unknown:
    description:
      - Write keys that are not in the module's catalogue of open-iscsi keys (for example a key of a newer
        open-iscsi). Their values are checked only for being one line without surrounding white space.
    type: bool
    default: false
  backup:
    description:
      - Copy the existing file to a time-stamped backup file before changing it.
    type: bool
    default: false
  path:
    description:
      - The file to manage, an absolute path inside O(root). A missing file is created (mode C(0644), or C(0600)
        when it holds a secret).
    type: path
    default: /etc/iscsi/iscsid.conf
  root:
    description:
      - Root directory of the system to manage, for images and chroots under construction (and tests). O(path) is
        looked up under it.
    type: path
    default: /
extends_documentation_fragment:
  - openiscsi.initiator.attributes
  - openiscsi.initiator.attributes.FILES
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - Secrets are masked in the diff.
  idempotent:
    support: full
  safe_file_operations:
    support: full
notes:
  - C(node.*) and C(discovery.*) settings are defaults for records created AFTER the change; existing node and
    discovery records keep their own values. Use M(openiscsi.initiator.node) to change existing records.
  - "Records are created with these defaults only when iscsiadm can reach iscsid: iscsiadm asks the daemon where
    its configuration file is, and uses its compiled-in defaults when the daemon is not running."
  - "iscsid reads C(iscsid.safe_logout), C(iscsid.ipc_auth_uid) and the discovery daemon settings only when it
    starts: RV(restart_needed) is V(true) when one of them changed."
seealso:
  - module: openiscsi.initiator.node
"""

EXAMPLES = r"""
- name: New records log in at boot, and fail I/O over to multipath quickly
  openiscsi.initiator.iscsid_config:
    settings:
      node.startup: automatic
      node.session.timeo.replacement_timeout: 15

- name: Default CHAP credentials for new records and for discovery
  openiscsi.initiator.iscsid_config:
    settings:
      node.session.auth.authmethod: CHAP
      node.session.auth.username: "{{ inventory_hostname }}"
      node.session.auth.chap_algs: [SHA256, MD5]
      discovery.sendtargets.auth.authmethod: CHAP
      discovery.sendtargets.auth.username: discovery
    secrets:
      node.session.auth.password: "{{ vault_chap_secret }}"
      discovery.sendtargets.auth.password: "{{ vault_discovery_secret }}"
    backup: true

- name: Refuse logouts of sessions with mounted file systems (needs an iscsid restart)
  openiscsi.initiator.iscsid_config:
    settings:
      iscsid.safe_logout: true
  register: conf

- name: Restart iscsid when needed (the kernel keeps live sessions)
  ansible.builtin.systemd_service:
    name: iscsid
    state: restarted
  when: conf.restart_needed

- name: Go back to the packaged defaults for two keys
  openiscsi.initiator.iscsid_config:
    settings: [node.startup, node.session.timeo.replacement_timeout]
    state: absent
"""

RETURN = r"""
changes:
  description:
    - One entry per key that changed (or would change in check mode), in the order given. Secrets are masked.
  returned: success
  type: list
  elements: dict
  contains:
    key:
      description: The key.
      type: str
    before:
      description: Its effective value before, V(null) when it was not set.
      type: str
    after:
      description: Its value after, V(null) when it was removed.
      type: str
  sample:
    - key: node.startup
      before: manual
      after: automatic
    - key: node.session.auth.password
      before: null
      after: "********"
restart_needed:
  description:
    - V(true) when a changed key is read by iscsid only when it starts (C(iscsid.safe_logout),
      C(iscsid.ipc_auth_uid), the discovery daemon settings). The module never restarts iscsid.
  returned: success
  type: bool
  sample: false
path:
  description: The file managed (inside O(root)).
  returned: success
  type: str
  sample: /etc/iscsi/iscsid.conf
mode_changed:
  description: Set to V(0600) when the file holds a secret and its permissions were (or would be) tightened.
  returned: when the mode was tightened
  type: str
  sample: "0600"
backup_file:
  description: The backup copy made by O(backup=true).
  returned: when a backup was made
  type: str
  sample: /etc/iscsi/iscsid.conf.2412.2026-11-24@16:40:02~
"""

import os
import stat


from ansible_collections.openiscsi.initiator.plugins.module_utils._module import SettingsModule
from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._fileio import (
    file_diff,
    lock_for_update,
    read_text,
    write_atomic,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsid_conf import (
    RESTART_KEYS,
    holds_secret,
    mask_text,
    plan_conf,
    validate_conf_secrets,
    validate_conf_key,
    validate_conf_settings,
    _check_key_text,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._kvconf import KVFile
from ansible_collections.openiscsi.initiator.plugins.module_utils._nodedb import iter_record_paths, read_send_targets
from ansible_collections.openiscsi.initiator.plugins.module_utils._rootfs import host_path

SECRET_MODE = 0o600
NEW_FILE_MODE = 0o644


def _keys_for_absent(value, field):
    if value is None:
        return []
    if isinstance(value, dict):
        keys = list(value)
    elif isinstance(value, (list, tuple)):
        keys = list(value)
    elif isinstance(value, str):
        keys = [value]
    else:
        raise InputError(field, "with state=absent give the keys to remove as a list (or a dictionary), got %s"
                         % type(value).__name__)
    return [_check_key_text(k, field) for k in keys]


def validate(params):
    """Return ``{key: text}`` to apply (values None for absent) from the module parameters; raise InputError."""
    if not os.path.isabs(params["path"]):
        raise InputError("path", "must be an absolute path (it is looked up inside root), got %r" % params["path"])
    if not os.path.isabs(params["root"]):
        raise InputError("root", "must be an absolute path, got %r" % params["root"])
    settings, secrets = params["settings"], params["secrets"]
    if not settings and not secrets:
        raise InputError("settings", "give at least one key in settings (or secrets)")
    if params["state"] == "absent":
        values = {}
        for field, keys in (("settings", _keys_for_absent(settings, "settings")),
                            ("secrets", _keys_for_absent(secrets, "secrets"))):
            for key in keys:
                # only the name is checked, so that a typo does not silently remove nothing
                validate_conf_key(key, "%s.%s" % (field, key), params["allow_unknown"], secrets_only=field == "secrets")
                values[key] = None
        return values
    if settings is not None and not isinstance(settings, dict):
        raise InputError("settings", "with state=present give a dictionary of key: value, got %s"
                         % type(settings).__name__)
    values = validate_conf_settings(settings, field="settings", allow_unknown=params["allow_unknown"],
                                    secrets_field="secrets")
    secret_values = validate_conf_secrets(secrets, field="secrets")
    for key in secret_values:
        if key in values:
            raise InputError("secrets.%s" % key, "is also given in settings; give it once")
    values.update(secret_values)
    return values


def existing_records_kept(root, keys):
    """What keeps its old values when *keys* change in iscsid.conf: ``"3 node records"``, ``"1 discovery record"``
    (joined with ``and``), or ``""`` when no record that the keys concern exists (nothing to warn about)."""
    parts = []
    if any(k.startswith("node.") for k in keys):
        count = sum(1 for _rec in iter_record_paths(root))
        if count:
            parts.append("%d node record%s" % (count, "" if count == 1 else "s"))
    if any(k.startswith("discovery.") for k in keys):
        count = len(read_send_targets(root))
        if count:
            parts.append("%d discovery record%s" % (count, "" if count == 1 else "s"))
    return " and ".join(parts)


def run_module():
    argument_spec = dict(
        settings=dict(type="raw"),
        secrets=dict(type="dict", no_log=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        allow_unknown=dict(type="bool", default=False),
        backup=dict(type="bool", default=False),
        path=dict(type="path", default="/etc/iscsi/iscsid.conf"),
        root=dict(type="path", default="/"),
    )
    module = SettingsModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    try:
        values = validate(p)
    except InputError as exc:
        module.fail_json(msg=str(exc))

    path = host_path(p["root"], p["path"])
    if os.path.isdir(path):
        module.fail_json(msg="path: %s is a directory, not an iscsid.conf file" % path)
    lock_for_update(module, path)  # until exit_json/fail_json: read, plan and write under it
    try:
        old_text = read_text(path)
    except OSError as exc:
        module.fail_json(msg="cannot read %s: %s" % (path, exc.strerror or exc))

    new_text, changes, notes = plan_conf(old_text or "", values, p["state"])
    changed = bool(changes)
    for note in notes:
        module.warn(note)

    secret_inside = holds_secret(KVFile.parse(new_text))
    mode_fix = False
    if old_text is not None and secret_inside:
        mode_fix = stat.S_IMODE(os.stat(path).st_mode) & 0o077 != 0
        changed = changed or mode_fix

    backup_file = None
    if changed and not module.check_mode:
        if old_text is None:
            backup_file = write_atomic(module, path, new_text, mode=SECRET_MODE if secret_inside else NEW_FILE_MODE,
                                       force_mode=True)
        elif secret_inside:
            backup_file = write_atomic(module, path, new_text, mode=SECRET_MODE, force_mode=True, backup=p["backup"])
            if mode_fix and new_text == old_text:
                os.chmod(path, SECRET_MODE)
        else:
            backup_file = write_atomic(module, path, new_text, backup=p["backup"])

    result = dict(
        changed=changed,
        changes=changes,
        restart_needed=any(c["key"] in RESTART_KEYS for c in changes),
        path=path,
    )
    if mode_fix:
        result["mode_changed"] = "0600"
    if backup_file:
        result["backup_file"] = backup_file
    if changes and p["state"] == "present":
        stale = existing_records_kept(p["root"], [c["key"] for c in changes])
        if stale:
            module.warn("node.* and discovery.* settings in iscsid.conf apply to records created from now on; "
                        "existing records keep their values (this host has %s; change them with "
                        "openiscsi.initiator.node)" % stale)
    if module._diff:
        result["diff"] = file_diff(path, old_text, new_text, mask=mask_text)
    module.exit_json(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
