# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to the openiscsi.initiator collection: not a public API, may change without notice.

"""One-shot operations on top of the iSCSI session: discovery (SendTargets) and the login probe
(login, REPORT LUNS, INQUIRY, READ CAPACITY, logout).  Results are plain dicts without secrets.
"""

from __future__ import annotations

import time

from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_errors import (
    ISCSIError,
    ISCSILoginError,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_scsi import (
    inquiry,
    read_capacity,
    report_luns,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_session import DEFAULT_PORT, Session
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_text import format_portal

DISK_TYPES = (0x00, 0x0E)


def _deadline(total_timeout):
    return None if total_timeout is None else time.monotonic() + total_timeout


def discover(host, port=DEFAULT_PORT, initiator_name=None, chap=None, timeout=10.0, total_timeout=60.0, **kwargs):
    """Discovery session: login, SendTargets=All, logout.  Returns ``[{'name', 'alias', 'portals'}]``."""
    session = Session(host, port, initiator_name=initiator_name, target_name=None, chap=chap, timeout=timeout,
                      deadline=_deadline(total_timeout), **kwargs)
    with session:
        session.login()
        targets = session.send_targets()
        session.logout()
    return targets


def probe(host, port, target_name, initiator_name, chap=None, luns=True, timeout=10.0, total_timeout=60.0,
          **kwargs):
    """Log in to one target portal, optionally list LUNs with type, vendor, product and size, log out.

    Never raises ISCSIError: the outcome is in the returned dict (``reachable``, ``authenticated``, ``error``).
    """
    start = time.monotonic()
    result = {
        'target': target_name,
        'portal': format_portal(host, int(port)),
        'reachable': False,
        'authenticated': False,
        'logged_out': False,
        'auth_method': None,
        'chap_algorithm': None,
        'mutual_chap': False,
        'target_portal_group_tag': None,
        'redirects': [],
        'luns': [],
        'error': None,
    }
    session = Session(host, port, initiator_name=initiator_name, target_name=target_name, chap=chap,
                      timeout=timeout, deadline=_deadline(total_timeout), **kwargs)
    try:
        try:
            info = session.login()
        finally:
            result['reachable'] = session.reached_target
            result['redirects'] = list(session.redirects)
        result.update({
            'authenticated': True,
            'auth_method': info['auth_method'],
            'chap_algorithm': info['chap_algorithm'],
            'mutual_chap': info['mutual_chap'],
            'target_portal_group_tag': info['target_portal_group_tag'],
        })
        if luns:
            result['luns'] = list_luns(session)
        session.logout()
        result['logged_out'] = True
    except ISCSIError as exc:
        result['error'] = exc.to_dict()
        if isinstance(exc, ISCSILoginError):
            result['reachable'] = True
    finally:
        session.close()
        result['elapsed_ms'] = round((time.monotonic() - start) * 1000.0, 3)
    return result


def list_luns(session):
    """REPORT LUNS, then INQUIRY on each LUN and READ CAPACITY on disks."""
    found = []
    for lun in report_luns(session):
        entry = {'lun': lun}
        if not isinstance(lun, int):
            entry['error'] = 'LUN uses an addressing method the probe does not decode'
            found.append(entry)
            continue
        inq = inquiry(session, lun)
        entry.update({
            'device_type': inq['device_type_name'],
            'peripheral_qualifier': inq['peripheral_qualifier'],
            'vendor': inq['vendor'],
            'product': inq['product'],
            'revision': inq['revision'],
        })
        if inq['device_type'] in DISK_TYPES and inq['peripheral_qualifier'] == 0:
            cap = read_capacity(session, lun)
            entry.update({'size_bytes': cap['size_bytes'], 'block_size': cap['block_size'],
                          'blocks': cap['blocks']})
        found.append(entry)
    return found
