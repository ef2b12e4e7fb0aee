# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to the openiscsi.initiator collection: not a public API, may change without notice.

"""One-shot operations on top of the iSCSI session: discovery (SendTargets) and the login probe
(login, REPORT LUNS, INQUIRY, READ CAPACITY, logout).  Results are plain dicts without secrets.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.openiscsi.initiator.plugins.module_utils import _nodedb
from ansible_collections.openiscsi.initiator.plugins.module_utils._initiatorname import InitiatorNameFile
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_chap import ChapCredentials
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
from ansible_collections.openiscsi.initiator.plugins.module_utils._portal import normalize_address
from ansible_collections.openiscsi.initiator.plugins.module_utils._rootfs import host_path

DISK_TYPES = (0x00, 0x0E)
INITIATORNAME_PATH = '/etc/iscsi/initiatorname.iscsi'
MASK = '********'


def _deadline(total_timeout):
    return None if total_timeout is None else time.monotonic() + total_timeout


def discover(host, port=DEFAULT_PORT, initiator_name=None, chap=None, timeout=10.0, total_timeout=60.0, **kwargs):
    """Discovery session: login, SendTargets=All, logout.  Returns ``[{'name', 'alias', 'portals'}]``."""
    session = Session(host, port, initiator_name=initiator_name, target_name=None, chap=chap, timeout=timeout,
                      deadline=_deadline(total_timeout), **kwargs)
    with session:
        session.login()
        targets = session.send_targets()
        try:
            session.logout()
        except ISCSIError:
            # The answer is complete (the final Text Response arrived): a Logout the target does not answer, or
            # refuses, ends the session all the same (the connection is closed) and takes nothing from it.
            session.close()
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


# ---------------------------------------------------------------------------------------------------------------------
# What to probe: requests built from node records (``_nodedb.read_nodes(with_secrets=True)``) or an explicit list.
# A request: target, address, port, portal, tpgt, ifaces, source, chap (ChapCredentials or None), header_digest,
# data_digest, error (a reason not to probe, e.g. incomplete CHAP settings).

DIGEST_SETTINGS = ('node.conn[0].iscsi.HeaderDigest', 'node.conn[0].iscsi.DataDigest')


def _digest(value):
    """open-iscsi's HeaderDigest/DataDigest value (None, CRC32C, 'CRC32C,None', 'None,CRC32C') as an offer list."""
    if not value:
        return ('None',)
    items = tuple(v.strip() for v in str(value).split(',') if v.strip())
    if not items or any(v not in ('None', 'CRC32C') for v in items):
        raise ValueError('digest setting %r is not None, CRC32C or a list of them' % (value,))
    return items


def _credentials(auth, where):
    """ChapCredentials from an auth dict (username, password, username_in, password_in, chap_algs/chap_algorithms,
    require_chap); None for no CHAP.  Raises ValueError with a message that names no secret."""
    method = str(auth.get('method') or 'None').upper()
    if method == 'NONE':
        return None                     # like iscsid: credentials without authmethod CHAP are not used
    username = auth.get('username')
    password = auth.get('password')
    if method != 'CHAP':
        raise ValueError('%s: authmethod %r is not supported (CHAP or None)' % (where, auth.get('method')))
    if not username or not password:
        raise ValueError('%s: CHAP needs a username and a password' % where)
    username_in = auth.get('username_in')
    password_in = auth.get('password_in')
    if bool(username_in) != bool(password_in):
        raise ValueError('%s: mutual CHAP needs both username_in and password_in' % where)
    algorithms = auth.get('chap_algorithms') or auth.get('chap_algs')
    if isinstance(algorithms, str):
        algorithms = [a for a in algorithms.split(',') if a.strip()]
    try:
        return ChapCredentials(username, password, username_in or None, password_in or None,
                               algorithms=algorithms, require_chap=bool(auth.get('require_chap')))
    except ValueError as exc:
        raise ValueError('%s: %s' % (where, exc))


def requests_from_nodes(records, target=None, portal_key=None):
    """One request per (target, portal, credentials) of the node records (records for several ifaces merge).

    ``portal_key`` filters on ``_portal.Portal.key()`` (normalized address, port); ``target`` on the exact name.
    """
    merged = {}
    order = []
    for rec in records:
        if target is not None and rec.get('target') != target:
            continue
        address, port = rec.get('address'), rec.get('port')
        if portal_key is not None and (normalize_address(address), port) != tuple(portal_key):
            continue
        auth = rec.get('auth') or {}
        key = (rec.get('target'), address, port, auth.get('username'), auth.get('username_in'))
        if key in merged:
            merged[key]['ifaces'].append(rec.get('iface'))
            continue
        where = 'node record %s %s' % (rec.get('target'), rec.get('portal'))
        request = {
            'target': rec.get('target'), 'address': address, 'port': port,
            'portal': format_portal(address, port) if address and port else rec.get('portal'),
            'tpgt': rec.get('tpgt'), 'ifaces': [rec.get('iface')], 'source': 'node_db',
            'chap': None, 'header_digest': ('None',), 'data_digest': ('None',), 'error': None,
        }
        try:
            if not address or not port:
                raise ValueError('%s: no address or port in the record' % where)
            request['chap'] = _credentials(auth, where)
            settings = rec.get('settings') or {}
            request['header_digest'] = _digest(settings.get(DIGEST_SETTINGS[0]))
            request['data_digest'] = _digest(settings.get(DIGEST_SETTINGS[1]))
        except ValueError as exc:
            request['error'] = str(exc)
        merged[key] = request
        order.append(key)
    return [merged[key] for key in order]


def request_from_entry(entry, portal, index):
    """A request from one ``targets:`` entry of the module (portal already parsed to (address, port))."""
    where = 'targets[%d]' % index
    auth = dict(entry.get('auth') or {})
    if auth.get('username') and not auth.get('method'):
        auth['method'] = 'CHAP'
    request = {
        'target': entry['target'], 'address': portal[0], 'port': portal[1],
        'portal': format_portal(portal[0], portal[1]), 'tpgt': None, 'ifaces': [], 'source': 'targets',
        'chap': None, 'error': None,
        'header_digest': _digest(entry.get('header_digest')), 'data_digest': _digest(entry.get('data_digest')),
    }
    request['chap'] = _credentials(auth, where)
    return request


def run_request(request, initiator_name, luns=True, timeout=5.0, total_timeout=30.0, max_redirects=4):
    """Probe one request; the result dict of :func:`probe` plus the request's location fields (no secrets)."""
    base = {'target': request['target'], 'portal': request['portal'], 'tpgt': request.get('tpgt'),
            'ifaces': list(request.get('ifaces') or []), 'source': request['source']}
    if request.get('error'):
        result = {'reachable': False, 'authenticated': False, 'logged_out': False, 'auth_method': None,
                  'chap_algorithm': None, 'mutual_chap': False, 'target_portal_group_tag': None, 'redirects': [],
                  'luns': [], 'elapsed_ms': 0.0,
                  'error': {'message': request['error'], 'kind': 'input', 'retryable': False}}
    else:
        result = probe(request['address'], request['port'], request['target'], initiator_name,
                       chap=request['chap'], luns=luns, timeout=timeout, total_timeout=total_timeout,
                       max_redirects=max_redirects, header_digest=request['header_digest'],
                       data_digest=request['data_digest'])
    result.update(base)
    return result


# ---------------------------------------------------------------------------------------------------------------------
# Shared by the probe, session_check and discovery modules.

def host_initiator_name(root='/'):
    """The valid InitiatorName of ``/etc/iscsi/initiatorname.iscsi`` under *root*, or None."""
    try:
        with open(host_path(root, INITIATORNAME_PATH)) as handle:
            return InitiatorNameFile.parse(handle.read()).valid_name
    except (OSError, UnicodeDecodeError):
        return None


def node_requests(root='/', target=None, portal_key=None, db=None):
    """Requests for the node records under *root* (secrets read from the record files, kept in the requests only).

    Returns ``(requests, db)``; ``db`` is the node DB root used (``/etc/iscsi`` or ``/var/lib/iscsi``).
    """
    if db is None:
        db = _nodedb.find_db_root(root)
    records = _nodedb.read_nodes(root, with_secrets=True, db=db)
    return requests_from_nodes(records, target=target, portal_key=portal_key), db


def secrets_of(requests):
    """Every CHAP secret held by *requests*, as text (for scrubbing)."""
    found = set()
    for request in requests:
        chap = request.get('chap')
        if chap is not None:
            for secret in (chap._password, chap._password_in):  # pylint: disable=protected-access
                if secret:
                    found.add(secret.decode('utf-8', 'replace'))
    return found


def scrub(results, secrets):
    """Defence in depth: no secret may appear anywhere in *results* (JSON-able); masked if one does."""
    text = json.dumps(results)
    if not any(s and s in text for s in secrets):
        return results
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(json.dumps(secret)[1:-1], MASK)
    return json.loads(text)


def run_requests(requests, initiator_name, luns=True, timeout=5.0, total_timeout=30.0, max_redirects=4,
                 parallel=4):
    """Probe every request (up to *parallel* at once); the results in request order, scrubbed of secrets."""
    def one(request):
        return run_request(request, initiator_name, luns=luns, timeout=timeout, total_timeout=total_timeout,
                           max_redirects=max_redirects)

    if len(requests) > 1 and parallel > 1:
        with ThreadPoolExecutor(max_workers=min(parallel, len(requests))) as pool:
            probes = list(pool.map(one, requests))
    else:
        probes = [one(request) for request in requests]
    return scrub(probes, secrets_of(requests))


def summarize(probes):
    """Counts: total, reachable, authenticated, failed (not authenticated)."""
    return {
        'total': len(probes),
        'reachable': sum(1 for p in probes if p['reachable']),
        'authenticated': sum(1 for p in probes if p['authenticated']),
        'failed': sum(1 for p in probes if not p['authenticated']),
    }


def describe_failure(result):
    """One line for a failed probe: ``TARGET via PORTAL: message`` (no secret: the messages never hold one)."""
    error = result.get('error') or {}
    return '%s via %s: %s' % (result.get('target'), result.get('portal'), error.get('message') or 'login failed')


def discovery_credentials(auth):
    """ChapCredentials for a discovery session from a discovery auth dict (method, username, password,
    username_in, password_in, as the discovery module and the ``discovery.sendtargets.auth.*`` keys have them);
    None without CHAP.  Raises ValueError with a message that names no secret."""
    return _credentials(dict(auth or {}), 'discovery auth')


def discover_triples(address, port, initiator_name, auth=None, timeout=10.0, total_timeout=60.0):
    """SendTargets at one portal: ``[(target, portal_text, tpgt)]`` with tpgt -1 where the target gave none.

    *auth* as for :func:`discovery_credentials`.  Raises ISCSIError (clear messages, no secrets) or ValueError.
    """
    chap = discovery_credentials(auth)
    targets = discover(address, int(port), initiator_name=initiator_name, chap=chap, timeout=timeout,
                       total_timeout=total_timeout)
    out = []
    seen = set()                                # a set: a list lookup made 58,839 targets take a minute
    for target in targets:
        for portal in target['portals']:
            tpgt = portal.get('tpgt')
            triple = (target['name'], format_portal(portal['address'], int(portal['port'])),
                      -1 if tpgt is None else int(tpgt))
            if triple not in seen:
                seen.add(triple)
                out.append(triple)
    return out
