#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: initiator_name
short_description: Manage the iSCSI initiator name and alias in /etc/iscsi/initiatorname.iscsi
version_added: 0.1.0
description:
  - Sets the host's iSCSI initiator name (C(InitiatorName=)) to a given IQN, EUI-64 or NAA name, or generates a new
    unique one the way Debian's C(iscsi-iname) does, but only when the file holds no valid name yet.
  - Sets or removes the initiator alias (C(InitiatorAlias=)).
  - Keeps the file's header comments, blank lines and line endings; writes atomically (temporary file and rename in
    the same directory). A file it writes gets mode C(0600), like Debian's package makes it, and keeps its owner and
    group; a file left unchanged is not touched at all.
  - A malformed file (no C(InitiatorName=) line, several of them, an invalid name, a name line that does not start
    the line, C(GenerateName=yes), unrecognized lines) is reported in detail. It is repaired only when O(name) or
    O(generate=true) is given; otherwise the module fails and leaves the file untouched.
  - Refuses to change the name while iSCSI sessions are live unless O(force=true).
  - Never restarts or reloads anything. It returns RV(restart_needed) (iscsid reads the file only when it starts) and
    RV(initramfs_rebuild_needed) so that handlers can act.
author:
  - openiscsi.initiator contributors (@openiscsi)
options:
  name:
    description:
      - The initiator name to set, C(iqn.YYYY-MM.reversed.domain[:unique]), C(eui.) and 16 hexadecimal digits, or
        C(naa.) and 16 or 32 hexadecimal digits (RFC 3720, RFC 7143).
      - Upper-case letters are folded to lower case; only V(a-z), V(0-9), V(-), V(.) and V(:) are allowed, at most
        223 bytes. A name breaking a rule fails the module with the rule and the position of the offending character.
      - Mutually exclusive with O(generate).
    type: str
  generate:
    description:
      - Generate a new unique name, O(prefix) followed by V(:) and 12 random hexadecimal digits, when the file holds
        no valid name (missing file, no or empty C(InitiatorName=) line, an invalid name, only C(GenerateName=yes)).
      - When a valid name is present it is kept, so the task is idempotent; a malformed file around it is repaired.
      - In check mode the returned RV(name) is a sample; the real run generates another one.
    type: bool
    default: false
  prefix:
    description:
      - The C(iqn.) name that generated names start with. Used only with O(generate=true).
    type: str
    default: iqn.1993-08.org.debian:01
  alias:
    description:
      - The initiator alias, a human-readable label sent to targets at login (at most 255 bytes, one line, no leading
        or trailing white space).
      - Left as it is when omitted. Cannot be combined with O(state=absent).
    type: str
  state:
    description:
      - V(present) sets O(alias) when given.
      - V(absent) removes every C(InitiatorAlias=) line (iscsid then uses the host name).
      - The state applies to the alias only; the name itself is never removed.
    type: str
    choices: [present, absent]
    default: present
  force:
    description:
      - Change the name even though iSCSI sessions are live (any C(/sys/class/iscsi_session/session*), whatever its
        state).
      - Without it such a change is refused, because targets admit initiators by name and their access control lists
        would reject this host once iscsid restarts or a session logs in again.
    type: bool
    default: false
  backup:
    description:
      - Copy the existing file to a time-stamped backup file before changing it.
    type: bool
    default: false
  path:
    description:
      - The file to manage, an absolute path inside O(root).
    type: path
    default: /etc/iscsi/initiatorname.iscsi
  root:
    description:
      - Root directory of the system to manage, for images and chroots under construction (and tests).
      - O(path), the session directory C(sys/class/iscsi_session), C(etc/iscsi/iscsi.initramfs), C(boot/) and the
        initramfs hook configuration are all looked up under it.
    type: path
    default: /
extends_documentation_fragment:
  - openiscsi.initiator.attributes
  - openiscsi.initiator.attributes.FILES
attributes:
  check_mode:
    support: full
    details:
      - With O(generate=true) the predicted name is a sample; whether a name is generated is predicted exactly.
  diff_mode:
    support: full
  idempotent:
    support: full
  safe_file_operations:
    support: full
notes:
  - Debian's start-up check (run before iscsid starts) rewrites the whole file with a new random name whenever a line
    starts with C(GenerateName=yes); the module removes such lines when it writes a name and reports them otherwise.
  - "RV(initramfs_rebuild_needed) is V(true) when the name changed and the initramfs carries a copy of the file:
    C(etc/iscsi/iscsi.initramfs) exists, or C(lsinitramfs) lists C(etc/initiatorname.iscsi) in
    C(/boot/initrd.img-<running kernel>) (when O(root) is not V(/), the C(boot/initrd.img-<release>) of every
    C(boot/vmlinuz-<release>) under it). Without
    C(lsinitramfs), or when it fails, the presence of open-iscsi's initramfs hook not disabled by
    C(NO_ISCSI_IN_INITRAMFS=yes) counts. The initramfs is inspected only when the name changes."
  - An alias-only change does not need an initramfs rebuild; it needs an iscsid restart.
seealso:
  - name: RFC 3720 section 3.2.6, iSCSI names
    description: The name formats and rules checked by O(name).
    link: https://www.rfc-editor.org/rfc/rfc3720#section-3.2.6
"""

EXAMPLES = r"""
- name: Give the host a unique initiator name unless it has a valid one already
  openiscsi.initiator.initiator_name:
    generate: true
  notify: Restart iscsid

- name: Set an explicit name and alias, keeping a backup of the old file
  openiscsi.initiator.initiator_name:
    name: iqn.2004-10.com.example:db01
    alias: db01
    backup: true
  register: iname
  notify: Restart iscsid

- name: Rebuild the initramfs when it carries the old name
  ansible.builtin.command: update-initramfs -u
  when: iname.initramfs_rebuild_needed
  changed_when: true

- name: Remove the alias
  openiscsi.initiator.initiator_name:
    state: absent

- name: Rename although sessions are live (targets' ACLs must then list the new name)
  openiscsi.initiator.initiator_name:
    name: iqn.2004-10.com.example:db01-new
    force: true

- name: Name an image being built in a chroot
  openiscsi.initiator.initiator_name:
    root: /srv/images/node01
    generate: true
    prefix: iqn.2004-10.com.example:nodes
"""

RETURN = r"""
name:
  description:
    - The initiator name in the file after the task (predicted in check mode), as iscsid reads it.
  returned: success
  type: str
  sample: iqn.1993-08.org.debian:01:5e3c9b2a7d41
alias:
  description: The initiator alias after the task, V(null) when there is none.
  returned: success
  type: str
  sample: db01
previous_name:
  description: The name before the task (V(null) when there was none).
  returned: when the name changed
  type: str
  sample: iqn.1993-08.org.debian:01:c3cd462f4145
generated:
  description: Whether a new name was generated.
  returned: success
  type: bool
  sample: false
restart_needed:
  description:
    - V(true) when the name or the alias changed. iscsid reads the file only when it starts; restart it (the kernel
      keeps live sessions across the restart), the module never does.
  returned: success
  type: bool
  sample: true
initramfs_rebuild_needed:
  description:
    - V(true) when the name changed and the initramfs holds a copy of the file (see the notes); run
      C(update-initramfs -u), or boot-time logins keep using the old name.
  returned: success
  type: bool
  sample: false
backup_file:
  description: The backup copy made by O(backup=true).
  returned: when a backup was made
  type: str
  sample: /etc/iscsi/initiatorname.iscsi.2412.2026-11-24@16:40:02~
findings:
  description:
    - Problems found in the file before the task, each with a stable C(code), a 1-based C(line) (or V(null)), a
      C(severity) (V(error) for a malformed file, V(warning)) and a C(message). Also reported as warnings or in the
      failure message.
  returned: always
  type: list
  elements: dict
  sample:
    - code: duplicate
      line: 7
      severity: error
      message: 2 InitiatorName= lines (lines 6, 7); iscsid uses only the last one, 'iqn.2004-10.com.example:a'
"""

import glob
import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._fileio import (
    file_diff,
    lock_for_update,
    read_text,
    write_atomic,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._initiatorname import (
    KEEP,
    InitiatorNameFile,
    validate_alias,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._names import (
    DEBIAN_PREFIX,
    generate_iqn,
    normalize_name,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._sysfs import read_sessions
from ansible_collections.openiscsi.initiator.plugins.module_utils._rootfs import host_path

FILE_MODE = 0o600
LANG_C = {"LANG": "C", "LC_ALL": "C"}
# Where open-iscsi's initramfs hook puts its copy (Debian: cp /etc/iscsi/initiatorname.iscsi $DESTDIR/etc).
INITRAMFS_COPIES = ("etc/initiatorname.iscsi", "etc/iscsi/initiatorname.iscsi")
_OPT_OUT_RE = re.compile(r"""^\s*NO_ISCSI_IN_INITRAMFS=["']?yes["']?\s*$""", re.M)


def under_root(root, path):
    return host_path(root, path)


def _safe(text):
    """Text with undecodable bytes (kept as surrogates) made printable for JSON output."""
    if text is None:
        return None
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def initramfs_holds_copy(module, root):
    """Whether a rebuilt initramfs is needed for a new name to reach boot-time logins (see the notes)."""
    if os.path.exists(under_root(root, "etc/iscsi/iscsi.initramfs")):
        return True
    if os.path.realpath(root) == "/":
        candidates = [under_root(root, "boot/initrd.img-%s" % os.uname().release)]
    else:
        # Kernels installed in the image: boot/vmlinuz-<release> pairs with boot/initrd.img-<release>.
        kernels = sorted(glob.glob(under_root(root, "boot/vmlinuz-*")))
        candidates = [under_root(root, "boot/initrd.img-" + os.path.basename(k)[len("vmlinuz-"):]) for k in kernels]
    images = [p for p in candidates if os.path.isfile(p)]
    if not images:
        return False
    lsinitramfs = module.get_bin_path("lsinitramfs")
    if lsinitramfs:
        inspected = True
        for image in images:
            rc, out, dummy = module.run_command([lsinitramfs, image], environ_update=LANG_C)
            if rc != 0:
                inspected = False
                continue
            for line in out.splitlines():
                if line.strip().lstrip("./") in INITRAMFS_COPIES:
                    return True
        if inspected:
            return False
    hook = under_root(root, "usr/share/initramfs-tools/hooks/iscsi")
    if not os.path.exists(hook):
        return False
    try:
        with open(under_root(root, "etc/initramfs-tools/conf.d/open-iscsi")) as handle:
            return not _OPT_OUT_RE.search(handle.read())
    except OSError:
        return True


def fail_malformed(module, path, errors, findings):
    lines = "; ".join(str(f) for f in errors)
    module.fail_json(
        msg="%s is malformed, nothing was changed: %s. Give name (or generate: true, which keeps a valid name found "
            "in the file) to rewrite the name line(s), or fix the file by hand." % (path, lines),
        findings=findings)


def run_module():
    argument_spec = dict(
        name=dict(type="str"),
        generate=dict(type="bool", default=False),
        prefix=dict(type="str", default=DEBIAN_PREFIX),
        alias=dict(type="str"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        force=dict(type="bool", default=False),
        backup=dict(type="bool", default=False),
        path=dict(type="path", default="/etc/iscsi/initiatorname.iscsi"),
        root=dict(type="path", default="/"),
    )
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=[("name", "generate")],
                           supports_check_mode=True)
    p = module.params

    # ---- validate every input before reading or touching anything
    try:
        if not os.path.isabs(p["path"]):
            raise InputError("path", "must be an absolute path (it is looked up inside root), got %r" % p["path"])
        if not os.path.isabs(p["root"]):
            raise InputError("root", "must be an absolute path, got %r" % p["root"])
        wanted_name = normalize_name(p["name"], "name") if p["name"] is not None else None
        sample_name = generate_iqn(p["prefix"], "prefix") if p["generate"] else None
        if p["state"] == "absent" and p["alias"] is not None:
            raise InputError("alias", "cannot be combined with state: absent, which removes the alias; drop one of "
                                      "the two")
        if p["alias"] is not None:
            validate_alias(p["alias"], "alias")
    except InputError as exc:
        module.fail_json(msg=str(exc))

    root = p["root"]
    path = under_root(root, p["path"])
    if os.path.isdir(path):
        module.fail_json(msg="path: %s is a directory; give the initiator name file itself" % path)
    lock_for_update(module, path)  # until exit_json/fail_json: read, plan and write under it
    try:
        old_text = read_text(path)
    except OSError as exc:
        module.fail_json(msg="cannot read %s: %s" % (path, exc.strerror or exc))

    current = InitiatorNameFile.parse(old_text) if old_text is not None else InitiatorNameFile.empty()
    findings = [dict(f.as_dict(), message=_safe(f.message)) for f in current.findings]
    errors = current.errors()

    # ---- decide the name
    generated = False
    if wanted_name is not None:
        desired_name = wanted_name
    elif p["generate"]:
        if current.valid_name is not None:
            desired_name = current.name  # keep it exactly as written: it is what iscsid uses
        else:
            desired_name = sample_name
            generated = True
    else:
        desired_name = KEEP
        if old_text is None:
            module.fail_json(msg="%s does not exist and neither name nor generate: true was given; nothing was "
                                 "changed. Give one of them to create the file." % path, findings=[])
        if errors:
            fail_malformed(module, path, errors, findings)

    if p["state"] == "absent":
        desired_alias = None
    elif p["alias"] is not None:
        desired_alias = p["alias"]
    else:
        desired_alias = KEEP

    managing_name = desired_name is not KEEP
    new_text = current.render(name=desired_name, alias=desired_alias, drop_unknown=managing_name)
    after = InitiatorNameFile.parse(new_text)
    changed = old_text is None or new_text != old_text
    name_changed = after.name != current.name
    alias_changed = after.alias != current.alias

    # ---- a new name while sessions are live breaks access at the targets
    if name_changed:
        sessions = read_sessions(root)
        if sessions:
            targets = sorted(set(s.get("targetname") or "?" for s in sessions))
            what = "%d live iSCSI session(s) (sid %s; target%s %s)" % (
                len(sessions), ", ".join(str(s.get("sid")) for s in sessions),
                "s" if len(targets) > 1 else "", ", ".join(targets))
            if not p["force"]:
                module.fail_json(
                    msg="refusing to change the initiator name from %s to %s while there are %s: targets admit "
                        "initiators by name, so access control lists that list the old name would reject this host "
                        "as soon as iscsid restarts or a session logs in again. Log the sessions out first, or set "
                        "force: true and then update the targets' ACLs, restart iscsid and rebuild the initramfs if "
                        "needed. Nothing was changed."
                        % (_safe(current.name) if current.name else "(none)", after.name, what),
                    findings=findings, name=_safe(current.name), alias=_safe(current.alias))
            module.warn("changing the initiator name with %s (force: true): the targets' ACLs must list %s before "
                        "iscsid restarts or the sessions reconnect" % (what, after.name))

    remaining = set(f.code for f in after.findings)
    for f in current.findings:
        if f.code not in remaining:
            module.warn("repaired: %s" % _safe(str(f)))
    for f in after.findings:
        module.warn(_safe(str(f)))

    initramfs_needed = bool(name_changed and initramfs_holds_copy(module, root))

    backup_file = None
    if changed and not module.check_mode:
        backup_file = write_atomic(module, path, new_text, mode=FILE_MODE, force_mode=True, backup=p["backup"])

    result = dict(
        changed=changed,
        name=_safe(after.name),
        alias=_safe(after.alias),
        generated=generated,
        restart_needed=name_changed or alias_changed,
        initramfs_rebuild_needed=initramfs_needed,
        findings=findings,
    )
    if name_changed:
        result["previous_name"] = _safe(current.name)
    if backup_file:
        result["backup_file"] = backup_file
    if module._diff:
        result["diff"] = file_diff(path, old_text, new_text, mask=_safe)
    module.exit_json(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
