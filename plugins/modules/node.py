#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: node
short_description: Manage open-iscsi node records (one, or hundreds in one task)
version_added: 0.1.0
description:
  - Creates, changes and deletes open-iscsi node records - the per target, portal and iface settings iscsiadm and
    iscsid use to log in (C(/etc/iscsi/nodes) on Debian 12, C(/var/lib/iscsi/nodes) on Debian 13).
  - One record with O(target), O(portal) (and O(iface), O(tpgt)), or many at once with O(nodes) - the way to
    configure hundreds of targets in one task. The output of M(openiscsi.initiator.discovery) can be passed to
    O(nodes) as it is.
  - Creating a record never needs discovery (C(iscsiadm -m node -o new)), and an existing record is never re-created
    or reset; only the keys asked for change.
  - Reads the record files directly (both DB roots, all record layouts), so a run with nothing to change runs no
    command at all.
  - Writes non-secret keys with C(iscsiadm -o update), all keys of a record in ONE call. CHAP secrets never appear on
    a command line (where C(ps) and audit logs show them to every user); they are written into the record file
    directly, atomically, mode C(0600), under iscsiadm's own lock. Every change is read back with iscsiadm's own
    reader (C(iscsiadm -m node -o show)) before the module reports success.
  - "Bulk creation: C(iscsiadm -o new) creates the first new record of each iface; every other new record is written
    from that record (identity keys replaced, settings applied) in the same format, then all of them are read back by
    iscsiadm. This keeps hundreds of records to a few commands (C(iscsiadm -o new) costs a round trip to iscsid, and a
    full second when iscsid is not running)."
  - Deleting a record whose session is live is refused unless O(force=true), which logs the session out first.
author:
  - openiscsi.initiator contributors (@openiscsi)
options:
  target:
    description:
      - The target's iSCSI name (C(iqn.), C(eui.) or C(naa.)). Compared case-insensitively with existing records.
      - Required with O(portal) unless O(nodes) is given; cannot be combined with O(nodes).
    type: str
  portal:
    description:
      - The portal, C(host[:port]); an IPv6 address goes in brackets (C([2001:db8::10]:3260)). The port defaults
        to 3260.
      - Cannot be combined with O(nodes).
    type: str
  tpgt:
    description:
      - The target portal group tag. Without it the module manages whatever record the target, portal and iface
        have (any tag), and creates a record without a tag (V(-1), what C(iscsiadm -o new) makes).
      - Give it for records of the same portal bound to several ifaces (multipath); iscsiadm keeps records without a
        tag as one file per portal, so a second iface would replace the first.
      - Cannot be combined with O(nodes) (give it per entry).
    type: int
  iface:
    description:
      - The iface record the node is bound to (see M(openiscsi.initiator.iface)); V(default) is the kernel's TCP
        transport on the routing table's choice of NIC.
      - With O(nodes), the default for entries that do not give one.
    type: str
    default: default
  nodes:
    description:
      - Many records in one task. Each entry takes the options O(target), O(portal), O(tpgt), O(iface), O(state),
        O(startup), O(conn_startup), O(auth) and O(settings); an entry's own value wins over the task-level one
        (O(settings) are merged key by key, O(auth) is replaced as a whole).
    type: list
    elements: dict
    suboptions:
      target:
        description: The target's iSCSI name.
        type: str
        required: true
      portal:
        description: The portal, C(host[:port]), IPv6 in brackets.
        type: str
        required: true
      tpgt:
        description: The target portal group tag (V(-1) for none).
        type: int
      iface:
        description: The iface record to bind to.
        type: str
      state:
        description: V(present) or V(absent) for this record.
        type: str
        choices: [present, absent]
      startup:
        description: C(node.startup) of this record.
        type: str
        choices: [manual, automatic, onboot]
      conn_startup:
        description: C(node.conn[0].startup) of this record.
        type: str
        choices: [manual, automatic, onboot]
      auth:
        description: CHAP settings of this record, as O(auth).
        type: dict
        suboptions:
          method:
            description: C(node.session.auth.authmethod).
            type: str
            choices: [CHAP, None]
          username:
            description: C(node.session.auth.username).
            type: str
          password:
            description: C(node.session.auth.password).
            type: str
          username_in:
            description: C(node.session.auth.username_in).
            type: str
          password_in:
            description: C(node.session.auth.password_in).
            type: str
          chap_algs:
            description: C(node.session.auth.chap_algs).
            type: list
            elements: str
      settings:
        description: Other C(node.*) settings of this record, as O(settings).
        type: dict
  state:
    description:
      - V(present) creates missing records and sets the given keys; V(absent) deletes the records.
      - With O(nodes), the default for entries that do not give one.
    type: str
    choices: [present, absent]
    default: present
  startup:
    description:
      - C(node.startup), when the record logs in. V(automatic) logs in when the open-iscsi service starts (boot),
        V(onboot) only from the initramfs (root on iSCSI), V(manual) only when asked.
      - iscsiadm's C(--loginall=automatic) also logs in records whose O(conn_startup) is V(automatic); set both.
    type: str
    choices: [manual, automatic, onboot]
  conn_startup:
    description:
      - C(node.conn[0].startup), the per-portal connection startup setting.
    type: str
    choices: [manual, automatic, onboot]
  auth:
    description:
      - CHAP for the record. Giving O(auth.username) or a password sets C(node.session.auth.authmethod) to C(CHAP)
        unless O(auth.method) says otherwise.
      - An empty string clears a field (for example V("") for O(auth.username_in) and O(auth.password_in) turns
        mutual CHAP off).
      - The secrets are C(no_log); they are never put on a command line, in the diff or in the returned values.
    type: dict
    suboptions:
      method:
        description: C(node.session.auth.authmethod); V(None) turns CHAP off (credentials are then refused).
        type: str
        choices: [CHAP, None]
      username:
        description: C(node.session.auth.username), the initiator's CHAP user name at the target.
        type: str
      password:
        description: C(node.session.auth.password), the initiator's CHAP secret (at most 255 bytes).
        type: str
      username_in:
        description: C(node.session.auth.username_in), the target's user name for mutual CHAP.
        type: str
      password_in:
        description: C(node.session.auth.password_in), the target's secret for mutual CHAP.
        type: str
      chap_algs:
        description:
          - C(node.session.auth.chap_algs), CHAP digests in order of preference (V(MD5), V(SHA1), V(SHA256),
            V(SHA3-256)).
          - Not every target negotiates; the Linux C(tgt) target fails the login (iscsiadm exit code 19) when
            anything but V(MD5) is offered.
        type: list
        elements: str
  settings:
    description:
      - Any other C(node.*) setting, for example C(node.session.timeo.replacement_timeout) or
        C(node.conn[0].timeo.noop_out_interval), validated against the keys and types open-iscsi knows.
      - Identity keys (C(node.name), C(node.conn[0].address) ...), C(iface.*) keys and secrets are refused with a
        pointer to the right option.
    type: dict
  force:
    description:
      - Delete records whose session is live, logging the session out first. Without it such a deletion fails and
        nothing is changed.
    type: bool
    default: false
  pending_records:
    description:
      - Records that an earlier task of the same run creates, for example the RV(openiscsi.initiator.discovery#module:created)
        of M(openiscsi.initiator.discovery), each with C(target), C(portal), C(tpgt) and C(iface).
      - Used only in check mode, where those records do not exist yet. An entry for one of them is then predicted
        as what the real run does - an update of the record the earlier task made - instead of a second creation
        (so the two diffs do not both list the record as created). The values before are those of a new record
        (the C(node.*) defaults of C(iscsid.conf)) and are not shown.
    type: list
    elements: dict
    suboptions:
      target:
        description: Target name.
        type: str
        required: true
      portal:
        description: C(addr[:port]), IPv6 in brackets.
        type: str
        required: true
      tpgt:
        description: Target portal group tag.
        type: int
      iface:
        description: The iface record.
        type: str
        default: default
  option_names:
    description:
      - How the module's messages name its options, for a caller that sets them under names of its own (the
        C(openiscsi.initiator.initiator) role passes its variables). Only the wording of messages changes.
    type: dict
    suboptions:
      force:
        description: The name for O(force) in the refusal to delete a record whose session is live.
        type: str
  root:
    description:
      - Root directory of the system to manage, for images and chroots under construction (and tests). Records are
        read and written under it, and iscsiadm runs inside it with C(chroot) (it must be installed there).
    type: path
    default: /
extends_documentation_fragment:
  - openiscsi.initiator.attributes
  - openiscsi.initiator.attributes.FILES
attributes:
  check_mode:
    support: full
    details:
      - Predicts exactly which records are created, changed or deleted and which keys change.
  diff_mode:
    support: full
    details:
      - Per record and key; secrets are shown as C(********).
  idempotent:
    support: full
  safe_file_operations:
    support: full
    details:
      - Record files written directly (new records, secrets) are written to a temporary file and renamed.
notes:
  - With more than 64 entries in O(nodes), the echo of the arguments in the result (C(invocation), shown with
    C(-vvv)) gives their number instead of the entries, so that the result stays small.
  - Changes to a record take effect at the next login of its session; the module does not log in or out (see
    M(openiscsi.initiator.session)), except with O(force=true) for a deletion.
seealso:
  - module: openiscsi.initiator.discovery
  - module: openiscsi.initiator.session
  - module: openiscsi.initiator.iface
  - module: openiscsi.initiator.iscsid_config
"""

EXAMPLES = r"""
- name: One record with mutual CHAP that logs in at boot
  openiscsi.initiator.node:
    target: iqn.2001-04.com.example:storage.disk1
    portal: 192.0.2.10:3260
    startup: automatic
    auth:
      username: "{{ inventory_hostname }}"
      password: "{{ vault_chap_secret }}"
      username_in: storage
      password_in: "{{ vault_chap_target_secret }}"

- name: Two paths of a target, pinned to two NICs for multipath
  openiscsi.initiator.node:
    nodes:
      - {target: iqn.2001-04.com.example:db, portal: 192.0.2.10, tpgt: 1, iface: san-a}
      - {target: iqn.2001-04.com.example:db, portal: 198.51.100.10, tpgt: 2, iface: san-b}
    startup: automatic
    settings:
      node.session.timeo.replacement_timeout: 5

- name: Hundreds of targets in one task, with the same CHAP account
  openiscsi.initiator.node:
    nodes: "{{ luns | map(attribute='node') | list }}"
    startup: automatic
    auth:
      username: "{{ chap_user }}"
      password: "{{ chap_secret }}"

- name: Configure whatever discovery found
  openiscsi.initiator.discovery:
    portals: [192.0.2.10]
    create_nodes: false
  register: found

- name: Create those records
  openiscsi.initiator.node:
    nodes: "{{ found.nodes }}"
    startup: automatic

- name: Remove a record (refused while its session is logged in)
  openiscsi.initiator.node:
    target: iqn.2001-04.com.example:old
    portal: "[2001:db8::10]:3260"
    state: absent
"""

RETURN = r"""
records:
  description:
    - One entry per record that changed (or would change, in check mode), in the order given, with what happened to
      it and the names of the keys that changed. Unchanged records are only counted in RV(summary).
    - No values, not even the non-secret ones (they are in the diff, with C(--diff)); the result stays small and
      holds nothing a secret could hide in.
  returned: success
  type: list
  elements: dict
  contains:
    target:
      description: The target name as stored.
      type: str
    portal:
      description: The portal, C(addr:port) (IPv6 in brackets).
      type: str
    tpgt:
      description: The portal group tag (V(-1) for none).
      type: int
    iface:
      description: The iface the record is bound to.
      type: str
    action:
      description: V(create), V(update), V(delete) or V(none).
      type: str
    keys:
      description: The names of the keys set or changed, secrets included (C(node.session.auth.password)); their
        values are not returned.
      type: list
      elements: str
      returned: when keys changed
    session_live:
      description: V(true) when a session of the record is live (changes apply at its next login).
      type: bool
      returned: when a session is live
  sample:
    - target: iqn.2001-04.com.example:storage.disk1
      portal: 192.0.2.10:3260
      tpgt: -1
      iface: default
      action: update
      keys: [node.startup, node.session.auth.password]
summary:
  description: How many records were (or would be) created, updated, deleted and left unchanged.
  returned: success
  type: dict
  sample: {create: 256, update: 0, delete: 0, unchanged: 0}
db_root:
  description: The node DB root used.
  returned: success
  type: str
  sample: /etc/iscsi
commands:
  description: How many iscsiadm commands the task ran (0 when nothing changed).
  returned: success
  type: int
  sample: 3
"""

import os
import tempfile

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._node_plan import (
    SECRET_NODE_KEYS,
    expected_values,
    parse_request,
    plan,
    summarize,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._nodedb import db_root_info, read_nodes
from ansible_collections.openiscsi.initiator.plugins.module_utils._nolog import ScrubbingModule
from ansible_collections.openiscsi.initiator.plugins.module_utils._portal import normalize_address, parse_portal
from ansible_collections.openiscsi.initiator.plugins.module_utils._sysfs import read_sessions
from ansible_collections.openiscsi.initiator.plugins.module_utils._rootfs import host_path

# Needed only when something is written: imported then (see _writers), so that a run with nothing to change does not
# load (and compile, inside AnsiballZ) them.
_W = {}


def _writers():
    """The modules used to write: _fileio, _iscsiadm and _record_text, imported on first use."""
    if not _W:
        from ansible_collections.openiscsi.initiator.plugins.module_utils import _fileio, _iscsiadm, _record_text
        _W.update(fileio=_fileio, iscsiadm=_iscsiadm, text=_record_text)
    return _W


RECORD_MODE = 0o600
ECHO_LIMIT = 64  # the invocation echoes at most this many entries of nodes (4096 would double the result)
DIR_MODE = 0o700  # what iscsiadm's directories end up with (it asks for 0770 under umask 077)


def make_dirs(path):
    """Create *path* and missing parents with mode 0700, as iscsiadm does."""
    missing = []
    while path and not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for directory in reversed(missing):
        os.mkdir(directory, DIR_MODE)
        os.chmod(directory, DIR_MODE)


def _auth_spec():
    return dict(
        method=dict(type="str", choices=["CHAP", "None"]),
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
        username_in=dict(type="str"),
        password_in=dict(type="str", no_log=True),
        chap_algs=dict(type="list", elements="str"),
    )


def argument_spec():
    startup = ["manual", "automatic", "onboot"]
    return dict(
        target=dict(type="str"),
        portal=dict(type="str"),
        tpgt=dict(type="int"),
        iface=dict(type="str", default="default"),
        nodes=dict(type="list", elements="dict", options=dict(
            target=dict(type="str", required=True),
            portal=dict(type="str", required=True),
            tpgt=dict(type="int"),
            iface=dict(type="str"),
            state=dict(type="str", choices=["present", "absent"]),
            startup=dict(type="str", choices=startup),
            conn_startup=dict(type="str", choices=startup),
            auth=dict(type="dict", options=_auth_spec()),
            settings=dict(type="dict"),
        )),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        startup=dict(type="str", choices=startup),
        conn_startup=dict(type="str", choices=startup),
        auth=dict(type="dict", options=_auth_spec()),
        settings=dict(type="dict"),
        force=dict(type="bool", default=False),
        option_names=dict(type="dict", options=dict(force=dict(type="str"))),
        pending_records=dict(type="list", elements="dict", options=dict(
            target=dict(type="str", required=True),
            portal=dict(type="str", required=True),
            tpgt=dict(type="int"),
            iface=dict(type="str", default="default"),
        )),
        root=dict(type="path", default="/"),
    )


class Applier:
    """Carries out the steps: iscsiadm for creation/non-secret keys/deletion, direct writes for secrets and bulk."""

    def __init__(self, module, root, db, adm):
        self.module = module
        self.root = root
        self.db = db
        self.adm = adm

    def host(self, rel):
        """A DB-relative path as seen from this process (under root)."""
        return host_path(self.root, "%s/%s" % (self.db.rstrip("/"), rel), follow=False)

    def tmp_dir(self, path):
        """Where a record's temporary file goes: the DB root, which iscsiadm does not scan for records (in the
        record's own directory iscsiadm could read it as an iface record), when it is on the same file system."""
        db_root = host_path(self.root, self.db)
        try:
            if os.stat(db_root).st_dev == os.stat(os.path.dirname(path)).st_dev:
                return db_root
        except OSError:
            pass
        return os.path.dirname(path)

    def fail(self, msg, **kw):
        self.module.fail_json(msg=msg, **kw)

    # ----------------------------------------------------------------- deletions
    def delete(self, step):
        if step.live:
            self.adm.run(self.adm.node_selector(step.target, step.portal_arg, step.iface, step.tpgt) + ["--logout"],
                         ok=(0, 21), context="logging out %s before deleting its record (force)" % step.label())
        self.adm.node_delete(step.target, step.portal_arg, step.iface, step.tpgt,
                             context="deleting the record of %s" % step.label())

    # ----------------------------------------------------------------- updates of existing records
    def update(self, step):
        pairs = [(key, after or "") for key, _before, after in step.changes]
        if pairs:
            self.adm.node_update(step.target, step.portal_arg, step.iface, step.tpgt, pairs,
                                 context="updating %d key(s) of %s" % (len(pairs), step.label()))
        if step.secret_changes:
            path = host_path(self.root, step.record["path"])
            w = _writers()
            with w["iscsiadm"].DbLock(self.root):
                text = w["fileio"].read_text(path)
                if text is None:
                    self.fail("the record file %s of %s vanished while the task ran" % (step.record["path"],
                                                                                        step.label()))
                new = w["text"].apply_keys(text, dict((key, value) for key, _was, value in step.secret_changes))
                w["fileio"].write_atomic(self.module, path, new, mode=RECORD_MODE, force_mode=True,
                                         tmp_dir=self.tmp_dir(path))

    # ----------------------------------------------------------------- creation
    def create(self, steps):
        """Create the records of *steps*: one ``iscsiadm -o new`` per iface, the rest written from its output."""
        w = _writers()
        by_iface = {}
        for step in steps:
            by_iface.setdefault(step.iface, []).append(step)
        pending = []
        for iface, group in by_iface.items():
            first = group[0]
            self.adm.node_new(first.target, first.portal_arg, iface, first.tpgt,
                              context="creating the record of %s" % first.label())
            rel = w["text"].record_relpath(first.target, first.address, first.port, first.tpgt, iface)
            template = w["fileio"].read_text(self.host(rel))
            if template is None or "# END RECORD" not in template:
                self.fail("iscsiadm -o new reported success for %s but its record file %s is missing or incomplete"
                          % (first.label(), os.path.join(self.db, rel)))
            renderer = w["text"].RecordTemplate(template)
            for step in group:
                values = expected_values(step)
                text = renderer.render(step.target, step.address, step.port, step.tpgt, values)
                pending.append((step, w["text"].record_relpath(step.target, step.address, step.port, step.tpgt, iface),
                                text))
        self._write_batch(pending)

    def _write_batch(self, pending):
        """Write new record files: temporary files first, one sync, renames, one sync, all under the DB lock."""
        w = _writers()
        temps = []
        try:
            with w["iscsiadm"].DbLock(self.root):
                for step, rel, text in pending:
                    path = self.host(rel)
                    directory = os.path.dirname(path)
                    make_dirs(directory)
                    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp",
                                               dir=self.tmp_dir(path))
                    temps.append((tmp, path, step))
                    with os.fdopen(fd, "wb") as handle:
                        os.fchmod(handle.fileno(), RECORD_MODE)
                        handle.write(text.encode("utf-8", "surrogateescape"))
                os.sync()
                for tmp, path, step in temps:
                    os.rename(tmp, path)
                    link = w["text"].static_link(step.target, step.address, step.port, step.tpgt, step.iface)
                    if link is not None:
                        self._static_link(*link)
                temps = []
                os.sync()
        except OSError as exc:
            self.fail("writing new node records under %s failed: %s" % (self.db, exc))
        finally:
            for tmp, _path, _step in temps:
                if os.path.exists(tmp):
                    os.unlink(tmp)

    def _static_link(self, rel_link, rel_dir):
        link = self.host(rel_link)
        make_dirs(os.path.dirname(link))
        dest = os.path.join(self.db, rel_dir)  # as iscsiadm writes it: an absolute path inside the system
        if os.path.islink(link):
            if os.readlink(link) == dest:
                return
            os.unlink(link)
        os.symlink(dest, link)

    # ----------------------------------------------------------------- read-back
    def verify(self, steps):
        """Read every touched record back with iscsiadm's own reader and compare (secrets compared, never shown)."""
        _rc, out, _err = self.adm.node_show_all(with_secrets=True,
                                                context="reading the node records back with iscsiadm")
        shown = {}
        for rec in _writers()["iscsiadm"].parse_show_records(out):
            ident = ((rec.get("node.name") or "").lower(), rec.get("node.conn[0].address"),
                     str(rec.get("node.conn[0].port")), rec.get("iface.iscsi_ifacename") or "default",
                     str(rec.get("node.tpgt")))
            shown[ident] = rec
        out = None
        problems = []
        for step in steps:
            tpgt = str(step.tpgt if step.tpgt is not None else -1)
            ident = (step.target.lower(), step.address, str(step.port), step.iface, tpgt)
            rec = shown.get(ident)
            if step.action == "delete":
                if rec is not None:
                    problems.append("%s: still present after the deletion" % step.label())
                continue
            if rec is None:
                problems.append("%s: iscsiadm does not list the record" % step.label())
                continue
            for key, value in expected_values(step).items():
                got = rec.get(key, "")
                if (got or "") != (value or ""):
                    if key in SECRET_NODE_KEYS:
                        problems.append("%s: %s does not hold the new secret" % (step.label(), key))
                    else:
                        problems.append("%s: %s is %r, expected %r" % (step.label(), key, got, value))
        shown = None
        if problems:
            self.fail("the node records were written but iscsiadm reads them back differently: %s"
                      % "; ".join(problems[:10]))


def pending_keys(entries):
    """``{(target, (address, port), iface): tpgt}`` of the ``pending_records`` option; raises InputError."""
    keys = {}
    for idx, entry in enumerate(entries or []):
        portal = parse_portal(entry["portal"], field="pending_records[%d].portal" % idx)
        keys[(entry["target"].lower(), portal.key(), entry["iface"] or "default")] = entry.get("tpgt")
    return keys


def take_pending(steps, keys):
    """Check mode: the create steps of records an earlier task creates become updates of those records (in
    place); returns them."""
    taken = []
    for step in steps:
        if step.action != "create":
            continue
        key = (step.target.lower(), (normalize_address(step.address), step.port), step.iface)
        if key in keys and (step.tpgt is None or step.tpgt < 0 or keys[key] in (None, step.tpgt)):
            step.action = "update"
            taken.append(step)
    return taken


def build_diff(steps, pending=()):
    before, after = [], []
    for step in steps:
        if not step.changed:
            continue
        header = "[%s] %s" % (step.label(), step.action)
        b, a = step.diff_lines("before"), step.diff_lines("after")
        if step in pending:
            # made by an earlier task of this run: its values before are a new record's, not known here
            before.append("[%s] (made by an earlier task of this run, e.g. discovery)" % step.label())
            after.append(header)
            after.extend(a)
            continue
        before.append(header if step.action != "create" else "[%s] (absent)" % step.label())
        before.extend(b)
        after.append(header if step.action != "delete" else "[%s] (absent)" % step.label())
        after.extend(a)
    return dict(before="\n".join(before) + ("\n" if before else ""), after="\n".join(after) + ("\n" if after else ""),
                before_header="node records", after_header="node records")


def _collect_secrets(params):
    values = []
    entries = [params] + list(params.get("nodes") or [])
    for entry in entries:
        auth = (entry or {}).get("auth") or {}
        for key in ("password", "password_in"):
            if auth.get(key):
                values.append(auth[key])
    return values


def run_module():
    # ScrubbingModule: secrets out of the log and the result in one pass (ansible-core's costs records x secrets)
    module = ScrubbingModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    try:
        if not os.path.isabs(p["root"]):
            raise InputError("root", "must be an absolute path, got %r" % p["root"])
        desired = parse_request(p)
    except InputError as exc:
        module.fail_json(msg=str(exc))

    root = p["root"]
    info = db_root_info(root)
    db = info["path"]
    version = info.get("version")
    records = read_nodes(root, with_secrets=True, db=db)
    sessions = read_sessions(root)
    try:
        steps = plan(desired, records, sessions, force=p["force"], version=version,
                     force_name=(p["option_names"] or {}).get("force") or "force")
    except InputError as exc:
        module.fail_json(msg=str(exc))
    records = None
    pending = []
    if module.check_mode and p["pending_records"]:
        try:
            pending = take_pending(steps, pending_keys(p["pending_records"]))
        except InputError as exc:
            module.fail_json(msg=str(exc))

    changed_steps = [s for s in steps if s.changed]
    for step in changed_steps:
        if step.action == "update" and step.live:
            module.warn("%s has a live session: the change applies at its next login" % step.label())

    adm = None
    if changed_steps and not module.check_mode:
        iscsiadm = _writers()["iscsiadm"]
        adm = iscsiadm.Iscsiadm(module, root=root)
        for secret in _collect_secrets(p):
            adm.add_secret(secret)
        applier = Applier(module, root, db, adm)
        try:
            for step in changed_steps:
                if step.action == "delete":
                    applier.delete(step)
            for step in changed_steps:
                if step.action == "update":
                    applier.update(step)
            creates = [s for s in changed_steps if s.action == "create"]
            if creates:
                applier.create(creates)
            applier.verify(changed_steps)
        except iscsiadm.IscsiadmError as exc:
            module.fail_json(msg=exc.message, rc=exc.rc, summary=summarize(steps))

    args = dict(p)
    if len(p["nodes"] or []) > ECHO_LIMIT:
        args["nodes"] = "%d entries (more than %d: not echoed; see records and summary)" % (len(p["nodes"]), ECHO_LIMIT)
    result = dict(
        invocation=dict(module_args=args),
        changed=bool(changed_steps),
        records=[s.view() for s in steps if s.changed],
        summary=summarize(steps),
        db_root=db,
        commands=len(adm.calls) if adm is not None else 0,
    )
    if module._diff:
        result["diff"] = build_diff(steps, pending)
    module.exit_json(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
