#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: probe
short_description: Check that iSCSI targets are reachable and that the configured CHAP credentials work
version_added: 0.1.0
description:
  - For every node record of the host (read from the open-iscsi node database) or for an explicit list of targets,
    open a separate iSCSI session from Python, log in with the record's CHAP settings, list the LUNs with
    C(REPORT LUNS), C(INQUIRY) and C(READ CAPACITY), and log out again.
  - Reports per target portal whether it is reachable, whether the login (authentication and authorization)
    succeeded, which authentication was used, and the LUNs with their sizes.
  - The kernel's iSCSI sessions, iscsid and the node database are not touched. The probe uses its own random
    ISID, so it never takes over or disturbs an existing session of the host, and it needs neither iscsid nor the
    C(iscsi_tcp) kernel module. Use it before an upgrade, a reboot or a restart of iscsid to learn whether the
    sessions would come back.
  - Uses a pure-Python iSCSI initiator (standard library only) with CHAP (MD5; SHA-1, SHA-256 and SHA3-256 when
    the record's C(node.session.auth.chap_algs) lists them), mutual CHAP, redirects, CRC32C digests and time limits
    on every network operation.
  - CHAP secrets are read from the node records only to compute the CHAP responses. They are never returned,
    logged or put in error messages.
author:
  - openiscsi.initiator contributors (@openiscsi)
options:
  targets:
    description:
      - Probe these targets instead of the node records.
      - Mutually exclusive with O(target) and O(portal), which filter node records.
    type: list
    elements: dict
    suboptions:
      target:
        description: Target name (IQN or EUI).
        type: str
        required: true
      portal:
        description: Target portal C(host[:port]), IPv6 in brackets (C([2001:db8::10]:3260)). The port defaults to 3260.
        type: str
        required: true
      auth:
        description: CHAP settings. Without O(targets[].auth.username) no CHAP is offered.
        type: dict
        suboptions:
          username:
            description: CHAP user name the initiator authenticates with.
            type: str
          password:
            description: CHAP secret of O(targets[].auth.username).
            type: str
          username_in:
            description: User name the target must present (mutual CHAP).
            type: str
          password_in:
            description: Secret the target must prove (mutual CHAP).
            type: str
          chap_algorithms:
            description:
              - CHAP algorithms to offer, in order of preference.
              - Only offer what the target supports; tgt implements only V(MD5) correctly.
            type: list
            elements: str
            choices: [MD5, SHA1, SHA256, SHA3-256]
            default: [MD5]
          require_chap:
            description:
              - Refuse a target that does not ask for CHAP (offer C(AuthMethod=CHAP) only instead of C(CHAP,None)).
              - Always on with mutual CHAP.
            type: bool
            default: false
      header_digest:
        description: Header digest offer, as open-iscsi spells it.
        type: str
        choices: ['None', 'CRC32C', 'CRC32C,None', 'None,CRC32C']
        default: 'None'
      data_digest:
        description: Data digest offer, as open-iscsi spells it.
        type: str
        choices: ['None', 'CRC32C', 'CRC32C,None', 'None,CRC32C']
        default: 'None'
  target:
    description: Only probe the node records of this target name.
    type: str
  portal:
    description: Only probe the node records of this portal (C(host[:port])).
    type: str
  initiator_name:
    description:
      - Initiator name used for the logins.
      - Defaults to the host's name from C(/etc/iscsi/initiatorname.iscsi), so that the targets' access control lists
        see the same name as for the kernel's sessions.
    type: str
  luns:
    description: Also list the LUNs (C(REPORT LUNS), C(INQUIRY), C(READ CAPACITY)) after a successful login.
    type: bool
    default: true
  timeout:
    description: Seconds each network operation (connect, send, receive) may take.
    type: float
    default: 5
  total_timeout:
    description: Seconds the whole probe of one target portal may take (login, redirects, SCSI commands, logout).
    type: float
    default: 30
  max_redirects:
    description: Number of login redirects followed before the probe gives up.
    type: int
    default: 4
  parallel:
    description: Number of target portals probed at the same time.
    type: int
    default: 4
  fail_on_error:
    description: Fail the task when any probe did not log in (the results are still returned).
    type: bool
    default: false
extends_documentation_fragment:
  - openiscsi.initiator.attributes
  - openiscsi.initiator.attributes.INFO_MODULE
notes:
  - The probe connects over the normal IP routing of the host. Node records bound to an iface (a NIC or an offload
    card) are probed through the routing table, not through that iface; RV(probes[].ifaces) lists them.
  - Node records that set C(node.session.auth.authmethod = CHAP) without a user name or password are reported with
    an error of kind C(input) and not probed.
  - A login leaves a trace on the target (its logs, its session counters), like any initiator would.
seealso:
  - module: openiscsi.initiator.info
"""

EXAMPLES = r"""
- name: Check every configured target before upgrading open-iscsi
  openiscsi.initiator.probe:
  register: probe

- name: Stop when a target cannot be logged in to
  ansible.builtin.assert:
    that: probe.summary.failed == 0
    fail_msg: "{{ probe.probes | rejectattr('authenticated') | map(attribute='error.message') | list }}"

- name: Fail the task directly when a record's login does not work
  openiscsi.initiator.probe:
    target: iqn.2025-01.com.example:storage
    fail_on_error: true

- name: Probe a target that has no node record yet, with mutual CHAP
  openiscsi.initiator.probe:
    targets:
      - target: iqn.2025-01.com.example:storage
        portal: "[2001:db8::10]:3260"
        auth:
          username: db01
          password: "{{ vault_chap_secret }}"
          username_in: storage
          password_in: "{{ vault_chap_target_secret }}"
  register: probe

- name: LUN sizes seen on the target
  ansible.builtin.debug:
    msg: "{{ probe.probes[0].luns | selectattr('size_bytes', 'defined') | map(attribute='size_bytes') | list }}"
"""

RETURN = r"""
initiator_name:
  description: The initiator name used for the logins.
  returned: always
  type: str
  sample: iqn.1993-08.org.debian:01:3d1e5a0c9b7f
source:
  description: Where the targets came from, V(node_db) or V(targets).
  returned: always
  type: str
  sample: node_db
node_db:
  description: The node database root read (V(null) with O(targets)).
  returned: always
  type: str
  sample: /etc/iscsi
summary:
  description: Counts over RV(probes).
  returned: always
  type: dict
  contains:
    total:
      description: Number of target portals probed.
      type: int
      sample: 2
    reachable:
      description: Target portals that answered the login.
      type: int
      sample: 2
    authenticated:
      description: Target portals where the login succeeded.
      type: int
      sample: 1
    failed:
      description: Target portals where the login did not succeed.
      type: int
      sample: 1
probes:
  description: One result per target portal (node records of several ifaces for the same target portal and credentials
    are probed once).
  returned: always
  type: list
  elements: dict
  contains:
    target:
      description: Target name.
      type: str
      sample: iqn.2025-01.com.example:storage
    portal:
      description: Target portal probed, C(host:port) with IPv6 in brackets.
      type: str
      sample: 192.0.2.10:3260
    tpgt:
      description: Portal group tag of the node record (V(-1) for static records; V(null) with O(targets)).
      type: int
      sample: 1
    ifaces:
      description: The ifaces of the node records merged into this probe.
      type: list
      elements: str
      sample: [default]
    source:
      description: V(node_db) or V(targets).
      type: str
      sample: node_db
    reachable:
      description: The target answered the login (also when it refused it).
      type: bool
      sample: true
    authenticated:
      description: The login succeeded (authentication and authorization).
      type: bool
      sample: true
    auth_method:
      description: Authentication the target chose, V(CHAP) or V(None); V(null) when the login failed.
      type: str
      sample: CHAP
    chap_algorithm:
      description: CHAP algorithm the target chose (V(MD5), V(SHA1), V(SHA256), V(SHA3-256)).
      type: str
      sample: MD5
    mutual_chap:
      description: The target proved its identity (mutual CHAP).
      type: bool
      sample: false
    target_portal_group_tag:
      description: Portal group tag the target reported in the login.
      type: int
      sample: 1
    redirects:
      description: Portals the login was redirected to, in order.
      type: list
      elements: str
      sample: []
    logged_out:
      description: The probe session was logged out cleanly.
      type: bool
      sample: true
    luns:
      description: LUNs reported by the target (empty with O(luns=false) or when the login failed).
      type: list
      elements: dict
      contains:
        lun:
          description: LUN number.
          type: int
          sample: 1
        device_type:
          description: SCSI peripheral device type, e.g. V(disk) or V(storage array controller).
          type: str
          sample: disk
        peripheral_qualifier:
          description: SCSI peripheral qualifier (V(0) when a device is connected).
          type: int
          sample: 0
        vendor:
          description: Vendor from the standard INQUIRY data.
          type: str
          sample: IET
        product:
          description: Product from the standard INQUIRY data.
          type: str
          sample: VIRTUAL-DISK
        revision:
          description: Product revision from the standard INQUIRY data.
          type: str
          sample: '0001'
        size_bytes:
          description: Capacity in bytes (disks only), (last LBA + 1) times the block size.
          type: int
          sample: 10737418240
        block_size:
          description: Logical block size in bytes (disks only).
          type: int
          sample: 512
        blocks:
          description: Number of logical blocks (disks only).
          type: int
          sample: 20971520
    error:
      description: Why the probe failed, V(null) on success.
      type: dict
      contains:
        message:
          description: What went wrong, without secrets.
          type: str
          sample: "login to iqn.2025-01.com.example:storage failed with status 0x0201 (authentication failure): ..."
        kind:
          description: >-
            V(connection), V(timeout), V(login), V(authentication), V(redirect), V(negotiation), V(protocol),
            V(scsi), V(input) and a few more.
          type: str
          sample: login
        retryable:
          description: Whether the same probe may succeed later without a configuration change.
          type: bool
          sample: false
        status:
          description: Login status class and detail as four hex digits (login errors only).
          type: str
          sample: '0201'
    elapsed_ms:
      description: Time the probe took, in milliseconds.
      type: float
      sample: 3.2
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_probe import (
    INITIATORNAME_PATH,
    host_initiator_name,
    node_requests,
    request_from_entry,
    run_requests,
    summarize,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._names import normalize_name
from ansible_collections.openiscsi.initiator.plugins.module_utils._portal import parse_portal

ROOT = '/'
DIGESTS = ['None', 'CRC32C', 'CRC32C,None', 'None,CRC32C']


def build_requests(params, root):
    """Requests from the module parameters: the ``targets`` list or the node records.  Raises InputError."""
    if params['targets']:
        requests = []
        for index, entry in enumerate(params['targets']):
            name = normalize_name(entry['target'], 'targets[%d].target' % index)
            portal = parse_portal(entry['portal'], 'targets[%d].portal' % index)
            entry = dict(entry, target=name)
            try:
                requests.append(request_from_entry(entry, (portal.address, portal.port), index))
            except ValueError as exc:
                raise InputError('targets[%d].auth' % index, str(exc).split(': ', 1)[-1])
        return requests, None
    target = normalize_name(params['target'], 'target') if params['target'] else None
    portal_key = parse_portal(params['portal'], 'portal').key() if params['portal'] else None
    return node_requests(root, target=target, portal_key=portal_key)


def run_module():
    module = AnsibleModule(
        argument_spec=dict(
            targets=dict(type='list', elements='dict', options=dict(
                target=dict(type='str', required=True),
                portal=dict(type='str', required=True),
                auth=dict(type='dict', options=dict(
                    username=dict(type='str'),
                    password=dict(type='str', no_log=True),
                    username_in=dict(type='str'),
                    password_in=dict(type='str', no_log=True),
                    chap_algorithms=dict(type='list', elements='str', default=['MD5'],
                                         choices=['MD5', 'SHA1', 'SHA256', 'SHA3-256']),
                    require_chap=dict(type='bool', default=False),
                )),
                header_digest=dict(type='str', default='None', choices=DIGESTS),
                data_digest=dict(type='str', default='None', choices=DIGESTS),
            )),
            target=dict(type='str'),
            portal=dict(type='str'),
            initiator_name=dict(type='str'),
            luns=dict(type='bool', default=True),
            timeout=dict(type='float', default=5.0),
            total_timeout=dict(type='float', default=30.0),
            max_redirects=dict(type='int', default=4),
            parallel=dict(type='int', default=4),
            fail_on_error=dict(type='bool', default=False),
        ),
        mutually_exclusive=[('targets', 'target'), ('targets', 'portal')],
        supports_check_mode=True,
    )
    params = module.params
    for field in ('timeout', 'total_timeout'):
        if params[field] <= 0:
            module.fail_json(msg='%s: must be a positive number of seconds' % field)
    if params['max_redirects'] < 0:
        module.fail_json(msg='max_redirects: must be 0 or more')
    if params['parallel'] < 1:
        module.fail_json(msg='parallel: must be 1 or more')
    try:
        if params['initiator_name']:
            initiator_name = normalize_name(params['initiator_name'], 'initiator_name')
        else:
            initiator_name = host_initiator_name(ROOT)
            if not initiator_name:
                raise InputError('initiator_name', 'not given and %s holds no valid InitiatorName; set '
                                 'initiator_name or configure the host first (openiscsi.initiator.initiator_name)'
                                 % INITIATORNAME_PATH)
        requests, db = build_requests(params, ROOT)
    except InputError as exc:
        module.fail_json(msg=str(exc))

    probes = run_requests(requests, initiator_name, luns=params['luns'], timeout=params['timeout'],
                          total_timeout=params['total_timeout'], max_redirects=params['max_redirects'],
                          parallel=params['parallel'])
    summary = summarize(probes)
    result = dict(changed=False, initiator_name=initiator_name, source='targets' if params['targets'] else 'node_db',
                  node_db=db, summary=summary, probes=probes)
    if params['fail_on_error'] and summary['failed']:
        failed = [p for p in probes if not p['authenticated']]
        module.fail_json(msg='%d of %d probes failed: %s' % (
            summary['failed'], summary['total'],
            '; '.join('%s %s: %s' % (p['target'], p['portal'], p['error']['message']) for p in failed)), **result)
    module.exit_json(**result)


def main():
    run_module()


if __name__ == '__main__':
    main()
