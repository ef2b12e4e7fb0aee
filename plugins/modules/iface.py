#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: iface
short_description: Manage open-iscsi iface records (bind iSCSI sessions to a NIC, an offload adapter, an initiator name)
version_added: 0.1.0
description:
  - Creates, changes and deletes the iface records of open-iscsi (C(iscsiadm -m iface)), kept in C(<node DB>/ifaces/<name>).
    An iface says HOW sessions are made - the transport (V(tcp), V(iser), offload drivers such as V(bnx2i)), the NIC
    (O(net_ifacename) or O(hwaddress)), the address an offload adapter uses (O(ipaddress)) and optionally an
    initiator name of its own.
  - Node records bind to an iface by name (O(openiscsi.initiator.node#module:iface)) - the way to pin the paths of a
    multipath target to separate NICs.
  - Follows C(iscsiadm -m iface) semantics. Node records bound to the iface keep a copy of its C(iface.*) keys;
    the module updates those copies together with the iface. Deleting an iface also deletes the node records bound
    to it (iscsiadm does the same); check mode and the diff list them.
  - "Creation uses C(iscsiadm -m iface -o new). The keys are then written into the record (and the bound node
    records) directly, atomically and under iscsiadm's lock, and read back with C(iscsiadm -m iface): iscsiadm's own
    C(-o update) refuses to run until the transport's kernel driver is loaded (so an offload iface could not be
    prepared on a host, or in an image, without the adapter)."
  - V(default) and V(iser) are built into open-iscsi and cannot be managed.
  - An iface with a transport that needs the iscsiuio daemon (V(bnx2i), V(qedi)) on a host without iscsiuio
    installed gets a warning.
author:
  - openiscsi.initiator contributors (@openiscsi)
options:
  name:
    description:
      - The iface record's name (C(iface.iscsi_ifacename)), 1-64 letters, digits, C(.), C(_), C(:) or C(-).
    type: str
    required: true
  state:
    description:
      - V(present) creates the iface when missing and sets the given keys; V(absent) deletes it together with the
        node records bound to it.
      - Deleting an iface that a live session uses is refused unless O(force=true).
    type: str
    choices: [present, absent]
    default: present
  transport:
    description:
      - C(iface.transport_name). A new iface gets V(tcp) unless told otherwise.
    type: str
    choices: [tcp, iser, cxgb3i, cxgb4i, bnx2i, be2iscsi, qla4xxx, ocs, qedi]
  net_ifacename:
    description:
      - C(iface.net_ifacename), the network interface sessions are bound to (for example V(eth1)). V("") unsets it.
    type: str
  hwaddress:
    description:
      - C(iface.hwaddress), the MAC address of the NIC or offload adapter (for example V(00:1b:21:aa:bb:cc)).
        V("") unsets it.
    type: str
  ipaddress:
    description:
      - C(iface.ipaddress), the address an offload adapter uses for iSCSI; V(0.0.0.0) asks it to use DHCP. Not
        used by the V(tcp) transport (the kernel's routing decides). V("") unsets it.
    type: str
  initiatorname:
    description:
      - C(iface.initiatorname), an initiator name used by sessions through this iface instead of the host's
        (from C(/etc/iscsi/initiatorname.iscsi)). V("") unsets it.
    type: str
  settings:
    description:
      - Other C(iface.*) keys (for example C(iface.mtu), C(iface.vlan_id)), validated against the keys open-iscsi
        knows.
    type: dict
  force:
    description:
      - Delete the iface (and its node records) even though live sessions use it, logging them out first; or change
        its transport while sessions use it.
    type: bool
    default: false
  root:
    description:
      - Root directory of the system to manage, for images and chroots under construction (and tests). iscsiadm
        runs inside it with C(chroot) (it must be installed there).
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
  idempotent:
    support: full
  safe_file_operations:
    support: full
notes:
  - A changed iface applies to sessions at their next login.
  - For offload transports that share VLAN settings between ifaces of one adapter, iscsiadm's C(-o update) also
    copies those settings to the adapter's other ifaces; this module changes only the iface it is given.
seealso:
  - module: openiscsi.initiator.node
"""

EXAMPLES = r"""
- name: One iface per SAN NIC
  openiscsi.initiator.iface:
    name: "san-{{ item }}"
    net_ifacename: "{{ item }}"
  loop: [eth1, eth2]

- name: Bind two paths of a target to those ifaces
  openiscsi.initiator.node:
    nodes:
      - {target: iqn.2001-04.com.example:db, portal: 192.0.2.10, tpgt: 1, iface: san-eth1}
      - {target: iqn.2001-04.com.example:db, portal: 198.51.100.10, tpgt: 2, iface: san-eth2}

- name: A Broadcom offload adapter that gets its address by DHCP (needs iscsiuio)
  openiscsi.initiator.iface:
    name: bnx2i.00:10:18:aa:bb:cc
    transport: bnx2i
    hwaddress: 00:10:18:aa:bb:cc
    ipaddress: 0.0.0.0

- name: Remove an iface and the node records bound to it
  openiscsi.initiator.iface:
    name: san-eth2
    state: absent
"""

RETURN = r"""
iface:
  description: The iface after the task (predicted in check mode); V(null) when it does not exist.
  returned: success
  type: dict
  sample:
    name: san-eth1
    transport: tcp
    net_ifacename: eth1
    hwaddress: null
    ipaddress: null
    initiatorname: null
action:
  description: V(create), V(update), V(delete) or V(none).
  returned: success
  type: str
  sample: update
changes:
  description: Changed keys of the iface record with C(before) and C(after) (V(null) = unset).
  returned: when keys changed
  type: dict
  sample: {iface.net_ifacename: {before: eth1, after: eth3}}
records_updated:
  description: Node records bound to the iface whose copy of its keys was (or would be) updated.
  returned: when records were updated
  type: list
  elements: dict
  sample: [{target: iqn.2001-04.com.example:db, portal: 192.0.2.10:3260, tpgt: 1}]
records_deleted:
  description: Node records deleted with the iface.
  returned: when the iface is deleted
  type: list
  elements: dict
  sample: [{target: iqn.2001-04.com.example:db, portal: 192.0.2.10:3260, tpgt: 1}]
sessions:
  description: Session ids of live sessions using the iface.
  returned: when sessions use the iface
  type: list
  elements: int
  sample: [3]
"""

import os


from ansible_collections.openiscsi.initiator.plugins.module_utils._module import SettingsModule
from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._fileio import read_text, write_atomic
from ansible_collections.openiscsi.initiator.plugins.module_utils._iface_plan import (
    TRANSPORTS,
    parse_iface_request,
    plan_iface,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsiadm import (
    DbLock,
    Iscsiadm,
    IscsiadmError,
    parse_show_records,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._node_plan import unempty
from ansible_collections.openiscsi.initiator.plugins.module_utils._record_text import apply_keys
from ansible_collections.openiscsi.initiator.plugins.module_utils._nodedb import (
    db_root_info,
    iface_dirs,
    read_ifaces,
    read_nodes,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._sysfs import read_sessions
from ansible_collections.openiscsi.initiator.plugins.module_utils._rootfs import host_path

RECORD_MODE = 0o600
FIELDS = (("transport", "iface.transport_name"), ("net_ifacename", "iface.net_ifacename"),
          ("hwaddress", "iface.hwaddress"), ("ipaddress", "iface.ipaddress"), ("initiatorname", "iface.initiatorname"))


def under(root, path):
    return host_path(root, path)


def summary(settings):
    if settings is None:
        return None
    out = {"name": settings.get("iface.iscsi_ifacename")}
    for opt, key in FIELDS:
        out[opt] = unempty(settings.get(key))
    if out["transport"] is None:
        out["transport"] = "tcp"
    return out


def text_lines(settings, keys):
    return ["%s = %s" % (k, settings[k]) for k in keys if unempty(settings.get(k)) is not None]


def run_module():
    module = SettingsModule(argument_spec=dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        transport=dict(type="str", choices=list(TRANSPORTS)),
        net_ifacename=dict(type="str"),
        hwaddress=dict(type="str"),
        ipaddress=dict(type="str"),
        initiatorname=dict(type="str"),
        settings=dict(type="dict"),
        force=dict(type="bool", default=False),
        root=dict(type="path", default="/"),
    ), supports_check_mode=True)
    p = module.params
    try:
        if not os.path.isabs(p["root"]):
            raise InputError("root", "must be an absolute path, got %r" % p["root"])
        name, state, values = parse_iface_request(p)
    except InputError as exc:
        module.fail_json(msg=str(exc))

    root = p["root"]
    db = db_root_info(root)["path"]
    current = None
    for rec in read_ifaces(root, db):
        if rec["name"] == name:
            current = rec
            break
    records = read_nodes(root, db=db)
    sessions = read_sessions(root)
    uio = any(os.path.exists(under(root, path)) for path in ("/usr/sbin/iscsiuio", "/sbin/iscsiuio"))
    try:
        plan = plan_iface(name, state, values, current, records, sessions, force=p["force"], uio_installed=uio)
    except InputError as exc:
        module.fail_json(msg=str(exc))
    for warning in plan.warnings:
        module.warn(warning)
    netdev = values.get("iface.net_ifacename")
    if netdev and os.path.isdir(under(root, "/sys/class/net")) and not os.path.exists(
            under(root, "/sys/class/net/" + netdev)):
        module.warn("net_ifacename %s: this host has no such network interface (yet)" % netdev)

    before_settings = dict(current["settings"]) if current else None
    after_settings = None
    if state == "present":
        after_settings = dict(before_settings or {"iface.iscsi_ifacename": name, "iface.transport_name": "tcp"})
        after_settings.update(values)

    adm = Iscsiadm(module, root=root)
    if plan.changed and not module.check_mode:
        try:
            apply(module, adm, root, db, plan, values)
        except IscsiadmError as exc:
            module.fail_json(msg=exc.message, rc=exc.rc)

    result = dict(changed=plan.changed, action=plan.view()["action"], iface=summary(after_settings),
                  commands=len(adm.calls))
    view = plan.view()
    for key in ("changes", "records_updated", "records_deleted", "sessions"):
        if key in view:
            result[key] = view[key]
    if module._diff:
        keys = [k for k, _b, _a in plan.changes] or [k for _o, k in FIELDS]
        result["diff"] = dict(
            before="" if before_settings is None else "\n".join(text_lines(before_settings, keys)) + "\n",
            after="" if after_settings is None else "\n".join(text_lines(after_settings, keys)) + "\n",
            before_header="iface %s" % name + ("" if current else " (absent)"),
            after_header="iface %s" % name + ("" if after_settings is not None else " (absent)"),
        )
        if plan.action == "delete" and plan.bound:
            result["diff"]["before"] += "".join("# node record %s %s bound to it\n" % (r["target"], r["portal"])
                                                for r in plan.bound)
    module.exit_json(**result)


def find_iface_file(root, db, name):
    for directory in iface_dirs(db):
        path = under(root, os.path.join(directory, name))
        if os.path.isfile(path):
            return path
    return None


def apply(module, adm, root, db, plan, values):
    name = plan.name
    if plan.action == "delete":
        for session in plan.live:
            adm.run(["-m", "session", "-r", str(session.get("sid")), "-u"], ok=(0, 21),
                    context="logging out session %s before deleting iface %s (force)" % (session.get("sid"), name))
        adm.iface_delete(name, context="deleting iface %s and its %d node record(s)" % (name, len(plan.bound)))
        if find_iface_file(root, db, name):
            module.fail_json(msg="iscsiadm reported iface %s deleted but its record file is still there" % name)
        return
    if plan.action == "create":
        adm.iface_new(name)
    path = find_iface_file(root, db, name)
    if path is None:
        module.fail_json(msg="iface %s: no record file in %s after iscsiadm -o new" % (name, " or ".join(
            iface_dirs(db))))
    with DbLock(root):
        text = read_text(path)
        new = apply_keys(text, values)
        if new != text:
            write_atomic(module, path, new, mode=RECORD_MODE, force_mode=True)
        for rec, diff in plan.record_changes:
            rpath = under(root, rec["path"])
            rtext = read_text(rpath)
            if rtext is None:
                continue
            rnew = apply_keys(rtext, diff)
            if rnew != rtext:
                write_atomic(module, rpath, rnew, mode=RECORD_MODE, force_mode=True)
    verify(module, adm, name, values, plan)


def verify(module, adm, name, values, plan):
    problems = []
    _rc, out, _err = adm.iface_show(name)
    shown = parse_show_records(out)
    if not shown:
        problems.append("iscsiadm -m iface -I %s printed no record" % name)
    else:
        for key, value in values.items():
            if (shown[0].get(key) or "") != (value or ""):
                problems.append("%s is %r, expected %r" % (key, shown[0].get(key), value))
    if plan.record_changes:
        _rc, out, _err = adm.run(["-m", "node", "-I", name, "-o", "show"], ok=(0, 21),
                                 context="reading the node records bound to iface %s back" % name)
        for rec in parse_show_records(out):
            for key, value in values.items():
                if (rec.get(key) or "") != (value or ""):
                    problems.append("node record %s %s: %s is %r, expected %r" % (
                        rec.get("node.name"), rec.get("node.conn[0].address"), key, rec.get(key), value))
    if problems:
        module.fail_json(msg="iface %s was written but iscsiadm reads it back differently: %s"
                         % (name, "; ".join(problems[:10])))


def main():
    run_module()


if __name__ == "__main__":
    main()
