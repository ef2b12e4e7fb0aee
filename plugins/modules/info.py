#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: info
short_description: Report the open-iSCSI initiator's configuration, node records and live sessions
version_added: 0.1.0
description:
  - Read-only report of the host's iSCSI initiator, gathered from files only.
  - The initiator name and alias from C(/etc/iscsi/initiatorname.iscsi), with any problem found in that file.
  - The installed open-iscsi version (from dpkg's status file; C(iscsiadm --version) only when open-iscsi is not a
    Debian package), the node database root in use (C(/etc/iscsi) on Debian 12, C(/var/lib/iscsi) on Debian 13) and
    every node record, SendTargets discovery record and iface record parsed from disk.
  - The live sessions read from sysfs (C(/sys/class/iscsi_session) and related classes) with their state,
    connection state, target, persistent and current portal, iface, SCSI host, LUNs and block devices.
  - Whether C(/) or C(/usr) is on an iSCSI LUN, the init system, and warnings for known traps (a 64-bit kernel
    with a 32-bit userland, where logins hang; bnx2/bnx2x NICs without iscsiuio, which their offload needs).
  - Never changes anything and never contacts iscsid. It runs no C(iscsiadm -m session) (on Debian that
    socket-activates iscsid) and no other iscsiadm mode, so it is safe on any host, with or without iscsid running.
  - CHAP passwords are never returned; each auth block says whether a password is set.
author:
  - openiscsi.initiator contributors (@openiscsi)
options:
  node_settings:
    description:
      - Also return every key of each node, discovery and iface record in RV(nodes[].settings),
        RV(send_targets[].settings) and RV(ifaces[].settings) (secrets left out).
      - Off by default because a record holds about 70 keys and hosts can have hundreds of records.
    type: bool
    default: false
extends_documentation_fragment:
  - openiscsi.initiator.attributes
  - openiscsi.initiator.attributes.INFO_MODULE
notes:
  - Values in RV(nodes[].settings) are returned as stored; open-iscsi stores an empty value as C(<empty>).
  - Sessions or records that disappear while being read are left out; sysfs attributes that cannot be read (missing
    on older kernels, C(EACCES), C(ENOTCONN) while a connection is down) or read C((null)) are returned as V(null).
seealso:
  - module: openiscsi.initiator.initiator_name
"""

EXAMPLES = r"""
- name: Gather the iSCSI initiator's state
  openiscsi.initiator.info:
  register: iscsi

- name: Show the initiator name and the state of every session
  ansible.builtin.debug:
    msg: "{{ iscsi.initiator_name }}: {{ iscsi.sessions | map(attribute='state') | list }}"

- name: Fail when a session is not logged in
  ansible.builtin.assert:
    that: iscsi.sessions | rejectattr('state', 'equalto', 'LOGGED_IN') | list | length == 0
    fail_msg: "unhealthy iSCSI sessions: {{ iscsi.sessions | rejectattr('state', 'equalto', 'LOGGED_IN')
      | map(attribute='targetname') | list }}"

- name: Block devices of the LUNs of one target
  ansible.builtin.debug:
    msg: "{{ iscsi.sessions | selectattr('targetname', 'equalto', 'iqn.2025-01.com.example:storage')
      | map(attribute='devices') | flatten | map(attribute='block') | list }}"

- name: Every node record with all its settings
  openiscsi.initiator.info:
    node_settings: true
  register: iscsi_full
"""

RETURN = r"""
initiator_name:
  description: The initiator name iscsid uses (the last non-empty C(InitiatorName=) line), as written.
  returned: always
  type: str
  sample: iqn.1993-08.org.debian:01:3d1e5a0c9b7f
initiator_alias:
  description: The initiator alias (C(InitiatorAlias=)), or V(null) when none is set.
  returned: always
  type: str
  sample: db01
initiator_name_file:
  description: The initiator name file, whether it exists and the problems found in it.
  returned: always
  type: dict
  contains:
    path:
      description: Its path.
      type: str
      sample: /etc/iscsi/initiatorname.iscsi
    exists:
      description: Whether it exists.
      type: bool
    findings:
      description: Problems found (C(code), C(line), C(severity), C(message)); see M(openiscsi.initiator.initiator_name).
      type: list
      elements: dict
open_iscsi:
  description: The installed open-iscsi.
  returned: always
  type: dict
  contains:
    version:
      description: Its version (Debian version when installed by dpkg), or V(null) when not found.
      type: str
      sample: 2.1.8-1+deb12u1
    source:
      description: Where the version came from, V(dpkg) or V(iscsiadm), or V(null).
      type: str
      sample: dpkg
    architecture:
      description: The package's Debian architecture.
      type: str
      sample: amd64
node_db:
  description: The node database root in use and why.
  returned: always
  type: dict
  contains:
    path:
      description: V(/etc/iscsi) or V(/var/lib/iscsi).
      type: str
      sample: /etc/iscsi
    reason:
      description: Why this root was chosen.
      type: str
      sample: open-iscsi 2.1.8-1+deb12u1 (< 2.1.10-3) uses /etc/iscsi
    populated:
      description: The candidate roots that hold C(nodes/) or C(send_targets/).
      type: list
      elements: str
      sample: [/etc/iscsi]
nodes:
  description: Every node record, sorted by target, portal and iface.
  returned: always
  type: list
  elements: dict
  contains:
    target:
      description: Target IQN.
      type: str
      sample: iqn.2025-01.lab.openiscsi:tgt-open
    portal:
      description: C(address:port), IPv6 addresses in brackets.
      type: str
      sample: 10.213.0.1:3260
    address:
      description: Portal address (IPv6 without brackets).
      type: str
    port:
      description: Portal port.
      type: int
    tpgt:
      description: Target portal group tag; V(-1) for static records created without discovery.
      type: int
      sample: 1
    iface:
      description: The iface the record binds to.
      type: str
      sample: default
    path:
      description: The record file.
      type: str
      sample: /etc/iscsi/nodes/iqn.2025-01.lab.openiscsi:tgt-open/10.213.0.1,3260,1/default
    layout:
      description: V(dir) (C(<addr>,<port>,<tpgt>/<iface>)) or V(flat) (an older C(<addr>,<port>,<tpgt>) file).
      type: str
    startup:
      description: C(node.startup) (V(manual), V(automatic) or V(onboot)).
      type: str
      sample: automatic
    conn_startup:
      description: C(node.conn[0].startup).
      type: str
      sample: manual
    transport:
      description: C(iface.transport_name).
      type: str
      sample: tcp
    version:
      description: The open-iscsi version that wrote the record (C(# BEGIN RECORD)).
      type: str
      sample: 2.1.8
    discovery:
      description: How the record was found (C(type), C(address), C(port)).
      type: dict
    auth:
      description: CHAP settings without the secrets.
      type: dict
      contains:
        method:
          description: V(None) or V(CHAP).
          type: str
        username:
          description: Outgoing CHAP user name, or V(null).
          type: str
        username_in:
          description: Incoming (mutual) CHAP user name, or V(null).
          type: str
        chap_algs:
          description: Allowed CHAP digest algorithms.
          type: str
        has_password:
          description: Whether an outgoing CHAP password is set.
          type: bool
        has_password_in:
          description: Whether an incoming (mutual) CHAP password is set.
          type: bool
    settings:
      description: Every key of the record except secrets, as stored. Empty unless O(node_settings=true).
      type: dict
    duplicate_keys:
      description: Keys that appear more than once in the record file (the last one wins).
      type: list
      elements: str
send_targets:
  description: SendTargets discovery records, sorted by portal.
  returned: always
  type: list
  elements: dict
  contains:
    portal:
      description: C(address:port) of the discovery portal.
      type: str
      sample: 10.213.0.1:3260
    path:
      description: The record file.
      type: str
      sample: /etc/iscsi/send_targets/10.213.0.1,3260/st_config
    startup:
      description: C(discovery.startup).
      type: str
    auth:
      description: Discovery CHAP settings without the secrets (C(method), C(username), C(username_in),
        C(has_password), C(has_password_in)).
      type: dict
    nodes:
      description: The node records linked from the discovery record (C(target), C(portal_dir), C(iface)).
      type: list
      elements: dict
    settings:
      description: Every key of the record except secrets, as stored. Empty unless O(node_settings=true).
      type: dict
ifaces:
  description: iface records on disk; the built-in C(default) and C(iser) ifaces have no file and are not listed.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The iface name (C(iface.iscsi_ifacename)).
      type: str
      sample: eth1
    transport:
      description: C(iface.transport_name) (V(tcp), V(iser), V(bnx2i) ...).
      type: str
    net_ifacename:
      description: The network interface the iface binds to, or V(null).
      type: str
    hwaddress:
      description: The MAC address the iface binds to, or V(null).
      type: str
    ipaddress:
      description: The iface's IP address (offload), or V(null).
      type: str
    initiatorname:
      description: A per-iface initiator name, or V(null).
      type: str
    path:
      description: The record file.
      type: str
      sample: /etc/iscsi/ifaces/eth1
    settings:
      description: Every key of the record, as stored. Empty unless O(node_settings=true).
      type: dict
multipath_maps:
  description: dm-multipath maps with their paths, as M(openiscsi.initiator.session_check) reports them in its
    C(maps) (per path the sd device, H:C:T:L, iSCSI session, portal, iface, SCSI device state, device-mapper state;
    C(healthy_paths), C(total_paths)). Device-mapper's path states come from C(dmsetup status), run only when there
    are maps.
  returned: always
  type: list
  elements: dict
  sample: [{name: data, wwid: 36001405a1b2c3d4e5f60718293a4b5c6, healthy_paths: 2, total_paths: 2}]
sessions:
  description: Live iSCSI sessions read from sysfs, sorted by session id.
  returned: always
  type: list
  elements: dict
  contains:
    sid:
      description: Session id (the N of C(sessionN)).
      type: int
      sample: 1
    name:
      description: Session name in sysfs.
      type: str
      sample: session1
    state:
      description: V(LOGGED_IN), V(FAILED) (connection lost, recovering) or V(FREE) (recovery timed out or not
        logged in yet).
      type: str
      sample: LOGGED_IN
    target_state:
      description: Kernel target state (V(SCANNED) ...), V(null) on kernels without it.
      type: str
    targetname:
      description: Target IQN.
      type: str
    tpgt:
      description: Target portal group tag.
      type: int
    ifacename:
      description: iface of the session.
      type: str
      sample: default
    initiatorname:
      description: Initiator name the session logged in with.
      type: str
    recovery_tmo:
      description: Seconds a FAILED session waits before its LUNs fail (V(null) when C(off)).
      type: int
      sample: 120
    connections:
      description: Connections (C(cid), C(state) V(up)/V(down)/V(failed), C(persistent_address),
        C(persistent_port), current C(address) and C(port), ...).
      type: list
      elements: dict
    host:
      description: The SCSI host (C(name) like V(host2), C(number), C(proc_name), C(software), C(netdev),
        C(hwaddress), C(ipaddress), C(initiatorname)).
      type: dict
    devices:
      description: The LUNs (C(hctl), C(lun), C(state), C(vendor), C(model), C(type), C(block) like V(sdb) or
        V(null), C(sg), C(by_path) links).
      type: list
      elements: dict
root_on_iscsi:
  description: Whether the root file system is on an iSCSI LUN (directly or through partitions, LVM, dm, md).
  returned: always
  type: bool
usr_on_iscsi:
  description: Whether C(/usr) is on an iSCSI LUN (as a mount of its own, or as part of C(/)).
  returned: always
  type: bool
mounts:
  description: Details behind RV(root_on_iscsi) and RV(usr_on_iscsi) (C(root) and C(usr) with C(source),
    C(fstype), C(disks), C(sessions)).
  returned: always
  type: dict
init_system:
  description: V(systemd), V(sysvinit), V(openrc), another PID 1 name, or V(unknown).
  returned: always
  type: str
  sample: systemd
traps:
  description: Known traps found on the host (C(id), C(message)); each is also emitted as a warning.
  returned: always
  type: list
  elements: dict
  sample:
    - id: bnx2_without_iscsiuio
      message: NIC(s) eno1 use the bnx2x driver, whose iSCSI offload (bnx2i) needs iscsiuio, which is not installed
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openiscsi.initiator.plugins.module_utils import _dm, _health, _hostinfo, _nodedb, _sysfs
from ansible_collections.openiscsi.initiator.plugins.module_utils._initiatorname import InitiatorNameFile
from ansible_collections.openiscsi.initiator.plugins.module_utils._rootfs import host_path

INITIATORNAME_PATH = "/etc/iscsi/initiatorname.iscsi"


def _read_initiatorname(root):
    path = host_path(root, INITIATORNAME_PATH)
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return {"path": INITIATORNAME_PATH, "exists": False, "findings": []}, None, None
    except OSError as exc:
        finding = {"code": "unreadable", "line": None, "severity": "error", "message": str(exc)}
        return {"path": INITIATORNAME_PATH, "exists": True, "findings": [finding]}, None, None
    parsed = InitiatorNameFile.parse(text)
    info = {"path": INITIATORNAME_PATH, "exists": True, "findings": [f.as_dict() for f in parsed.findings]}
    return info, parsed.name, parsed.alias


def _strip_settings(records):
    for rec in records:
        rec["settings"] = {}
    return records


def gather(root="/", run=None, machine=None, node_settings=False):
    """Everything the module returns, read under *root*.  ``run(argv) -> (rc, out, err)`` is only used for
    ``iscsiadm --version`` when dpkg does not know open-iscsi.

    The module has no ``root`` option on purpose: sysfs and /proc only describe the running system, so a root other
    than ``/`` makes sense only for tests, which call this function on captured fixture trees.
    """
    packages = _hostinfo.installed_packages(root)
    version = _hostinfo.open_iscsi_version(root, run=run, packages=packages)
    db_info = _nodedb.db_root_info(root, version["version"] if version["source"] == "dpkg" else None)
    db = db_info["path"]
    nodes = _nodedb.read_nodes(root, db=db)
    send_targets = _nodedb.read_send_targets(root, db=db)
    ifaces = _nodedb.read_ifaces(root, db=db)
    if not node_settings:
        for records in (nodes, send_targets, ifaces):
            _strip_settings(records)
    sessions = _sysfs.read_sessions(root)
    maps = _dm.read_maps(root)
    dm_states = {}
    if maps and run is not None:
        rc, out, _err = run(["dmsetup", "status", "--target", "multipath"])
        dm_states = _dm.parse_dmsetup_status(out) if rc == 0 else {}
    multipath_maps = _health.evaluate_maps([_health.session_report(s) for s in sessions], maps, dm_states)[0]
    root_info, usr_info = _hostinfo.root_usr_on_iscsi(root, sessions=sessions)
    name_file, name, alias = _read_initiatorname(root)
    return {
        "initiator_name": name,
        "initiator_alias": alias,
        "initiator_name_file": name_file,
        "open_iscsi": version,
        "node_db": db_info,
        "nodes": nodes,
        "send_targets": send_targets,
        "ifaces": ifaces,
        "sessions": sessions,
        "multipath_maps": multipath_maps,
        "root_on_iscsi": root_info["on_iscsi"],
        "usr_on_iscsi": usr_info["on_iscsi"],
        "mounts": {"root": root_info, "usr": usr_info},
        "init_system": _hostinfo.init_system(root),
        "traps": _hostinfo.trap_warnings(root, machine=machine, packages=packages),
    }


def run_module():
    module = AnsibleModule(
        argument_spec=dict(
            node_settings=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )

    def run(argv):
        binary = module.get_bin_path(argv[0])
        if binary is None:
            return 127, "", "%s not found" % argv[0]
        return module.run_command([binary] + list(argv[1:]), environ_update={"LANG": "C", "LC_ALL": "C"})

    result = gather("/", run=run, node_settings=module.params["node_settings"])
    for trap in result["traps"]:
        module.warn(trap["message"])
    module.exit_json(changed=False, **result)


def main():
    run_module()


if __name__ == "__main__":
    main()
