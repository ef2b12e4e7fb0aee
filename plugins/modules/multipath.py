#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: multipath
short_description: Manage /etc/multipath.conf for iSCSI LUNs, and reload multipathd only when it must
version_added: 0.2.0
description:
  - Sets and removes keywords of the C(defaults) and C(overrides) sections, device entries (by vendor and product),
    multipath entries (by WWID, with their alias) and the entries of C(blacklist) and C(blacklist_exceptions) in
    C(/etc/multipath.conf). Everything else in the file - comments, order, spacing, sections it is not asked about -
    stays byte for byte.
  - The file is parsed the way multipath-tools reads it (sections open on the keyword's line, C(#) and C(!) start
    comments, values in double quotes); values that multipath-tools would read differently (control characters,
    non-ASCII, a double quote, a leading C(#) or C(!)) are refused before anything is written.
  - With O(validate=true) (the default) the new file is read by the host's own multipath-tools (C(multipath -t) in a
    private mount namespace that shows it the new file in place of C(/etc), so the real configuration is never
    touched) and refused when multipath-tools reports an invalid keyword or value. An invalid file is never written.
  - When multipathd would read the new file differently (not for a change of comments or layout), the running daemon
    is told with C(multipathd reconfigure) - only while every multipath map keeps a healthy path (its SCSI device
    C(running)), unless O(force=true). A map on its last path, or with none, is what a reload must not disturb.
  - A run with nothing to change runs no command that changes anything.
author:
  - openiscsi.initiator contributors (@openiscsi)
options:
  defaults:
    description:
      - "Keywords of the C(defaults) section: C(keyword: value). A value of V(null) removes the keyword. Booleans
        become C(yes)/C(no). For example C(find_multipaths: \"no\"), C(fast_io_fail_tmo: 5), C(no_path_retry: 12)."
    type: dict
  overrides:
    description:
      - Keywords of the C(overrides) section (they win over device entries and defaults), like O(defaults).
    type: dict
  devices:
    description:
      - Device entries of the C(devices) section, found by O(devices[].vendor) and O(devices[].product) (compared as
        written, they are regular expressions to multipath-tools).
    type: list
    elements: dict
    suboptions:
      vendor:
        description: The entry's C(vendor).
        type: str
        required: true
      product:
        description: The entry's C(product).
        type: str
        required: true
      settings:
        description: Keywords of the entry, like O(defaults).
        type: dict
      state:
        description: V(absent) removes the whole entry.
        type: str
        choices: [present, absent]
        default: present
  multipaths:
    description:
      - Entries of the C(multipaths) section, found by O(multipaths[].wwid).
    type: list
    elements: dict
    suboptions:
      wwid:
        description: The map's WWID (as C(multipath -ll) shows it, for example C(36001405...)).
        type: str
        required: true
      alias:
        description: The map's name under C(/dev/mapper).
        type: str
      settings:
        description: Other keywords of the entry, like O(defaults).
        type: dict
      state:
        description: V(absent) removes the whole entry.
        type: str
        choices: [present, absent]
        default: present
  blacklist:
    description:
      - Entries of the C(blacklist) section. Each item gives exactly one of O(blacklist[].devnode),
        O(blacklist[].wwid), O(blacklist[].property), O(blacklist[].protocol) or O(blacklist[].device).
    type: list
    elements: dict
    suboptions:
      devnode:
        description: A regular expression of device node names.
        type: str
      wwid:
        description: A regular expression of WWIDs.
        type: str
      property:
        description: A regular expression of udev property names.
        type: str
      protocol:
        description: A regular expression of path protocols (for example C(scsi:iscsi)).
        type: str
      device:
        description: A device sub-section, found by vendor and product.
        type: dict
        suboptions:
          vendor:
            description: The entry's C(vendor).
            type: str
            required: true
          product:
            description: The entry's C(product).
            type: str
            required: true
      state:
        description: V(absent) removes the entry.
        type: str
        choices: [present, absent]
        default: present
  blacklist_exceptions:
    description:
      - Entries of the C(blacklist_exceptions) section, like O(blacklist).
    type: list
    elements: dict
    suboptions:
      devnode:
        description: A regular expression of device node names.
        type: str
      wwid:
        description: A regular expression of WWIDs.
        type: str
      property:
        description: A regular expression of udev property names.
        type: str
      protocol:
        description: A regular expression of path protocols (for example C(scsi:iscsi)).
        type: str
      device:
        description: A device sub-section, found by vendor and product.
        type: dict
        suboptions:
          vendor:
            description: The entry's C(vendor).
            type: str
            required: true
          product:
            description: The entry's C(product).
            type: str
            required: true
      state:
        description: V(absent) removes the entry.
        type: str
        choices: [present, absent]
        default: present
  validate:
    description:
      - Have the host's multipath-tools read the new file before it is written, and refuse it when multipath-tools
        reports an invalid keyword or value. Needs multipath-tools (C(multipath)) and C(unshare); without them the
        file is written after the module's own checks and a warning says so. Never done when O(root) is not C(/).
    type: bool
    default: true
  reconfigure:
    description:
      - Run C(multipathd reconfigure) when multipathd is running and would read the new file differently.
    type: bool
    default: true
  force:
    description:
      - Reconfigure even when a multipath map has no healthy path left.
    type: bool
    default: false
  backup:
    description:
      - Copy the existing file to a time-stamped backup file before changing it.
    type: bool
    default: false
  path:
    description:
      - The file to manage, an absolute path inside O(root). A missing file is created (mode C(0644)).
    type: path
    default: /etc/multipath.conf
  root:
    description:
      - Root directory of the system to manage (images, chroots, tests). O(path) and C(/sys) are looked up under it.
    type: path
    default: /
extends_documentation_fragment:
  - openiscsi.initiator.attributes
  - openiscsi.initiator.attributes.FILES
attributes:
  check_mode:
    support: full
    details:
      - The validation by multipath-tools and the health check of the maps run in check mode too (they change
        nothing); the reconfigure is reported as RV(reconfigured=false) with the reason.
  diff_mode:
    support: full
  idempotent:
    support: full
  safe_file_operations:
    support: full
notes:
  - "Several sections of the same name are read by multipath-tools one after the other: a keyword is changed where it
    is (earlier duplicates of it are removed), a new keyword goes into the last section of that name."
  - Files in C(/etc/multipath/conf.d) are read by multipath-tools after this file; the validation sees them, this
    module does not change them.
  - "Timeout rules checked on the validated configuration (RV(coherence)): multipathd writes C(fast_io_fail_tmo)
    (default 5 s) into every iSCSI path's C(recovery_tmo) when it sets up or reloads a map, which replaces the node
    records' C(node.session.timeo.replacement_timeout); with C(fast_io_fail_tmo off) the records' value applies, and
    one above 30 s delays failover that long (open-iscsi's README asks for a low replacement_timeout under
    dm-multipath). C(no_path_retry queue) (or C(features queue_if_no_path)) queues I/O for ever when every path is
    gone (multipath-tools' multipath.conf(5)); a number of checker intervals bounds the wait."
  - "A C(multipathd reconfigure) resets the sessions' C(recovery_tmo) to C(fast_io_fail_tmo) (Red Hat's DM Multipath
    guide says so, and the lab measured it): do not reconfigure between M(openiscsi.initiator.recovery_tmo)'s raise
    and restore."
seealso:
  - module: openiscsi.initiator.session_check
"""

EXAMPLES = r"""
- name: iSCSI LUNs of a LIO target become maps; local disks stay out
  openiscsi.initiator.multipath:
    defaults:
      find_multipaths: "no"
      user_friendly_names: true
      fast_io_fail_tmo: 5
    blacklist:
      - devnode: "^vd[a-z]"
    devices:
      - vendor: LIO-ORG
        product: ".*"
        settings:
          path_grouping_policy: group_by_prio
          no_path_retry: 12

- name: A stable name for the data LUN
  openiscsi.initiator.multipath:
    multipaths:
      - wwid: 36001405a1b2c3d4e5f60718293a4b5c6
        alias: data
"""

RETURN = r"""
changes:
  description: What changed, one item per keyword or entry (section, key, before, after).
  returned: always
  type: list
  elements: dict
  sample: [{section: defaults, key: find_multipaths, before: strict, after: "no"}]
effective_changed:
  description: Whether multipathd reads the new file differently (false for a change of comments or layout only).
  returned: always
  type: bool
reconfigured:
  description: Whether C(multipathd reconfigure) ran (false in check mode).
  returned: always
  type: bool
reconfigure_skipped:
  description: Why no reconfigure ran although the configuration changed (multipathd not running, O(reconfigure=false),
    check mode).
  returned: when the configuration changed and no reconfigure ran
  type: str
validated:
  description: Whether the host's multipath-tools read the new file and accepted it.
  returned: always
  type: bool
coherence:
  description: Timeout combinations of the new configuration (as multipath-tools reads it, built-in defaults
    included) that defeat multipath, each with C(code) and C(message); also given as warnings. See the notes for the
    rules.
  returned: when the new file was validated
  type: list
  elements: dict
  sample: [{code: queue_forever, message: "no_path_retry queue ... queues I/O for ever when every path is gone ..."}]
maps:
  description: The multipath maps seen in sysfs before the change, with their paths and how many are healthy.
  returned: always
  type: list
  elements: dict
  sample: [{name: data, wwid: 36001405a1b2c3d4e5f60718293a4b5c6, dm: dm-0, healthy_paths: 2, total_paths: 2,
            paths: [{device: sda, hctl: "2:0:0:1", state: running, healthy: true}]}]
config:
  description: The sections of the new file as multipath-tools reads them (keyword values, sub-sections as lists).
  returned: always
  type: dict
backup_file:
  description: The backup's path.
  returned: when O(backup=true) and the file changed
  type: str
"""

import os
import re
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openiscsi.initiator.plugins.module_utils._dm import maps_without_healthy_path, read_maps
from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._fileio import (
    file_diff, lock_for_update, read_text, write_atomic,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._mpconf import MpConf, MpConfError
from ansible_collections.openiscsi.initiator.plugins.module_utils._multipath_plan import coherence, parse_request, plan
from ansible_collections.openiscsi.initiator.plugins.module_utils._nodedb import read_nodes
from ansible_collections.openiscsi.initiator.plugins.module_utils._rootfs import host_path

C_ENV = {"LANG": "C", "LC_ALL": "C"}
# multipath-tools' own words for a line it could not take (libmultipath parser.c and dict.c).
_COMPLAINT_RE = re.compile(r"multipath\.conf|line \d+|error parsing|invalid|missing|unmatched|ignoring", re.I)


def _blacklist_spec():
    return dict(type="list", elements="dict", options=dict(
        devnode=dict(type="str"), wwid=dict(type="str"), property=dict(type="str"), protocol=dict(type="str"),
        device=dict(type="dict", options=dict(vendor=dict(type="str", required=True),
                                              product=dict(type="str", required=True))),
        state=dict(type="str", choices=["present", "absent"], default="present")))


def argument_spec():
    state = dict(type="str", choices=["present", "absent"], default="present")
    return dict(
        defaults=dict(type="dict"),
        overrides=dict(type="dict"),
        devices=dict(type="list", elements="dict", options=dict(
            vendor=dict(type="str", required=True), product=dict(type="str", required=True),
            settings=dict(type="dict"), state=state)),
        multipaths=dict(type="list", elements="dict", options=dict(
            wwid=dict(type="str", required=True), alias=dict(type="str"), settings=dict(type="dict"), state=state)),
        blacklist=_blacklist_spec(),
        blacklist_exceptions=_blacklist_spec(),
        validate=dict(type="bool", default=True),
        reconfigure=dict(type="bool", default=True),
        force=dict(type="bool", default=False),
        backup=dict(type="bool", default=False),
        path=dict(type="path", default="/etc/multipath.conf"),
        root=dict(type="path", default="/"),
    )


def check_with_multipath_tools(module, text, etc_dir="/etc"):
    """Have the host's ``multipath -t`` read ``text`` as its configuration: in a private mount namespace, a
    temporary directory holding the new file (and the host's ``multipath/`` directory for conf.d, bindings and
    wwids) is bind-mounted over ``/etc``.  Returns ``(complaints, dump)``: what multipath-tools complained about
    (``[]``: accepted) and the configuration it printed, or ``(None, None)`` when the check cannot run here."""
    multipath = module.get_bin_path("multipath")
    unshare = module.get_bin_path("unshare")
    if not multipath or not unshare:
        return None, None
    with tempfile.TemporaryDirectory(prefix="multipath-check.") as etc:
        with open(os.path.join(etc, "multipath.conf"), "wb") as handle:
            handle.write(text.encode("utf-8", "surrogateescape"))
        script = 'if [ -d "$2/multipath" ]; then mkdir "$1/multipath" && mount --bind "$2/multipath" "$1/multipath" ' \
                 '|| exit 97; fi; mount --bind "$1" "$2" || exit 97; exec "$3" -t'
        rc, out, err = module.run_command([unshare, "-m", "--propagation", "private", "sh", "-c", script, "sh", etc,
                                           etc_dir, multipath], environ_update=C_ENV)
    if rc == 97 or (rc != 0 and not err.strip()):
        return None, None
    complaints = [line.split(" | ", 1)[-1].strip() for line in err.splitlines() if _COMPLAINT_RE.search(line)]
    if rc != 0 and not complaints:
        complaints = [line.strip() for line in err.splitlines() if line.strip()] or ["multipath -t exited %d" % rc]
    return complaints, out


def multipathd_running(module):
    """Whether multipathd answers on its socket (``multipathd show daemon``; changes nothing)."""
    multipathd = module.get_bin_path("multipathd")
    if not multipathd:
        return False
    rc, out, _err = module.run_command([multipathd, "show", "daemon"], environ_update=C_ENV)
    return rc == 0 and "pid" in out


def run_module():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    try:
        if not os.path.isabs(p["root"]) or not os.path.isabs(p["path"]):
            raise InputError("root" if not os.path.isabs(p["root"]) else "path", "must be an absolute path")
        request = parse_request(p)
    except InputError as exc:
        module.fail_json(msg=str(exc))

    root = p["root"]
    path = host_path(root, p["path"])
    lock_for_update(module, path)  # until exit_json/fail_json: read, plan and write under it
    try:
        old_text = read_text(path)
    except OSError as exc:
        module.fail_json(msg="cannot read %s: %s" % (path, exc.strerror or exc))
    maps = read_maps(root)
    try:
        result_plan = plan(old_text or "", request)
    except InputError as exc:
        module.fail_json(msg=str(exc))
    new_text = result_plan["text"]
    changed = new_text != (old_text or "")

    result = dict(changed=changed, changes=result_plan["changes"], effective_changed=result_plan["effective_changed"],
                  reconfigured=False, validated=False, maps=maps, config=result_plan["config"])
    if module._diff:
        result["diff"] = file_diff(path, old_text, new_text if changed else old_text)
    if not changed:
        module.exit_json(**result)

    if p["validate"] and root == "/":
        complaints, dump = check_with_multipath_tools(module, new_text)
        if complaints is None:
            module.warn("multipath-tools could not read the new file here (no multipath or unshare, or no mount "
                        "namespace): only this module's own checks were made")
        elif complaints:
            module.fail_json(msg="multipath-tools does not accept the new %s: %s; nothing was written"
                             % (p["path"], "; ".join(complaints)), complaints=complaints, **_without(result, "diff"))
        else:
            result["validated"] = True
            result["coherence"] = _coherence(root, dump)
            for finding in result["coherence"]:
                module.warn(finding["message"])

    will_reconfigure = result_plan["effective_changed"] and p["reconfigure"] and root == "/"
    if will_reconfigure:
        running = multipathd_running(module)
        if not running:
            result["reconfigure_skipped"] = "multipathd is not running: it reads the new file when it starts"
            will_reconfigure = False
        else:
            unhealthy = maps_without_healthy_path(maps)
            if unhealthy and not p["force"]:
                module.fail_json(msg="refusing to reconfigure multipathd: map(s) %s have no healthy path, and a "
                                     "reload could fail their I/O; restore a path first, or set force: true; "
                                     "nothing was written" % ", ".join(unhealthy), **_without(result, "diff"))
    elif result_plan["effective_changed"]:
        result["reconfigure_skipped"] = ("reconfigure is false" if not p["reconfigure"]
                                         else "root is not /: no daemon of this system to tell")

    if module.check_mode:
        if will_reconfigure:
            result["reconfigure_skipped"] = "check mode"
        module.exit_json(**result)

    backup = write_atomic(module, path, new_text, backup=p["backup"])
    if backup:
        result["backup_file"] = backup
    if will_reconfigure:
        rc, out, err = module.run_command([module.get_bin_path("multipathd", required=True), "reconfigure"],
                                          environ_update=C_ENV)
        if rc != 0 or "fail" in (out + err).lower():
            module.fail_json(msg="%s was written, but multipathd reconfigure failed: %s"
                             % (p["path"], (err or out).strip()), **_without(result, "diff"))
        result["reconfigured"] = True
    module.exit_json(**result)


def _coherence(root, dump):
    """The timeout findings of the configuration multipath-tools printed, with the node records' replacement
    timeouts (only read when multipathd would not set recovery_tmo itself)."""
    try:
        effective = MpConf.parse(dump or "").as_dict()
    except MpConfError:
        return []
    sections = dict((name, (effective.get(name) or [{}])[-1]) for name in ("defaults", "overrides"))
    timeouts = []
    fast = sections["overrides"].get("fast_io_fail_tmo") or sections["defaults"].get("fast_io_fail_tmo")
    if fast in ("off", "0"):
        for record in read_nodes(root):
            value = (record.get("settings") or {}).get("node.session.timeo.replacement_timeout")
            if value is not None and value.isascii() and value.isdigit():
                timeouts.append(int(value))
    return coherence(sections, timeouts)


def _without(result, key):
    return {k: v for k, v in result.items() if k != key}


def main():
    run_module()


if __name__ == "__main__":
    main()
