# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Unit tests of the probe module: request building from node records / explicit targets, secrets, failures.
The network part is stubbed here; tests/integration/iscsi/test_probe_module.py runs it against tgtd."""

from __future__ import annotations

import os

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _iscsi_probe as IP
from ansible_collections.openiscsi.initiator.plugins.modules import probe
from harness import run_module

NAME = 'iqn.1993-08.org.debian:01:abcdef'
TGT = 'iqn.2025-01.lab.openiscsi:tgt-a'
SECRET = 'chap-secret-1234'
SECRET_IN = 'target-secret-5678'


def put(root, path, text):
    full = os.path.join(str(root), path.lstrip('/'))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, 'w') as handle:
        handle.write(text)


def record(target, address, port=3260, tpgt=1, iface='default', auth=None, extra=''):
    lines = ['# BEGIN RECORD 2.1.8', 'node.name = %s' % target, 'node.tpgt = %d' % tpgt,
             'iface.iscsi_ifacename = %s' % iface, 'node.conn[0].address = %s' % address,
             'node.conn[0].port = %d' % port]
    for key, value in (auth or {}).items():
        lines.append('node.session.auth.%s = %s' % (key, value))
    return '\n'.join(lines) + '\n' + extra + '# END RECORD\n'


def host(root, records, name=NAME):
    put(root, '/var/lib/dpkg/status',
        'Package: open-iscsi\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.1.8-1\n')
    if name:
        put(root, '/etc/iscsi/initiatorname.iscsi', 'InitiatorName=%s\n' % name)
    for path, text in records:
        put(root, '/etc/iscsi/nodes/' + path, text)
    return str(root)


def run(capsys, monkeypatch, root, args, stub=None):
    monkeypatch.setattr(probe, 'ROOT', root)
    calls = []

    def fake(request, initiator_name, **kw):
        calls.append((request, initiator_name, kw))
        result = {'reachable': True, 'authenticated': True, 'logged_out': True, 'auth_method': 'CHAP',
                  'chap_algorithm': 'MD5', 'mutual_chap': False, 'target_portal_group_tag': 1, 'redirects': [],
                  'luns': [], 'error': None, 'elapsed_ms': 1.0}
        if stub:
            result.update(stub(request))
        result.update({'target': request['target'], 'portal': request['portal'], 'tpgt': request.get('tpgt'),
                       'ifaces': request['ifaces'], 'source': request['source']})
        return result
    monkeypatch.setattr(IP, 'run_request', fake)
    result = run_module(capsys, probe, args, diff=False)
    return result, calls, result['_raw']


# --------------------------------------------------------------------------------------------- request building
def test_requests_from_node_records(tmp_path):
    chap = {'authmethod': 'CHAP', 'username': 'db01', 'password': SECRET, 'chap_algs': 'SHA256,MD5'}
    mutual = dict(chap, username_in='stor', password_in=SECRET_IN)
    root = host(tmp_path, [
        ('%s/10.0.0.1,3260,1/default' % TGT, record(TGT, '10.0.0.1', auth=chap)),
        ('%s/10.0.0.1,3260,1/eth1' % TGT, record(TGT, '10.0.0.1', iface='eth1', auth=chap)),
        ('%s/fd00::1,3261,2/default' % TGT,
         record(TGT, 'fd00::1', 3261, 2, auth=mutual, extra='node.conn[0].iscsi.HeaderDigest = CRC32C,None\n')),
        ('iqn.2025-01.lab.openiscsi:tgt-b/10.0.0.2,3260,-1/default',
         record('iqn.2025-01.lab.openiscsi:tgt-b', '10.0.0.2', tpgt=-1)),
        ('iqn.2025-01.lab.openiscsi:tgt-c/10.0.0.3,3260,1/default',
         record('iqn.2025-01.lab.openiscsi:tgt-c', '10.0.0.3', auth={'authmethod': 'CHAP', 'username': 'x'})),
    ])
    requests, db = probe.build_requests({'targets': None, 'target': None, 'portal': None}, root)
    assert db == '/etc/iscsi'
    assert [(r['target'], r['portal'], r['ifaces']) for r in requests] == [
        (TGT, '10.0.0.1:3260', ['default', 'eth1']),
        (TGT, '[fd00::1]:3261', ['default']),
        ('iqn.2025-01.lab.openiscsi:tgt-b', '10.0.0.2:3260', ['default']),
        ('iqn.2025-01.lab.openiscsi:tgt-c', '10.0.0.3:3260', ['default']),
    ]
    one, two, three, four = requests
    assert one['chap'].username == 'db01' and one['chap'].algorithms == (7, 5) and not one['chap'].mutual
    assert two['chap'].mutual and two['chap'].require_chap and two['header_digest'] == ('CRC32C', 'None')
    assert two['tpgt'] == 2 and three['tpgt'] == -1
    assert three['chap'] is None and three['error'] is None
    assert four['error'] and 'CHAP needs a username and a password' in four['error']
    assert SECRET not in repr(requests) and SECRET_IN not in repr(requests)


def test_node_filters(tmp_path):
    root = host(tmp_path, [
        ('%s/10.0.0.1,3260,1/default' % TGT, record(TGT, '10.0.0.1')),
        ('%s/fd00::1,3260,1/default' % TGT, record(TGT, 'fd00::1')),
        ('iqn.2025-01.lab.openiscsi:other/10.0.0.1,3260,1/default',
         record('iqn.2025-01.lab.openiscsi:other', '10.0.0.1')),
    ])
    by_target, _ignored = probe.build_requests({'targets': None, 'target': TGT, 'portal': None}, root)
    assert [r['portal'] for r in by_target] == ['10.0.0.1:3260', '[fd00::1]:3260']
    by_portal, _ignored = probe.build_requests({'targets': None, 'target': None, 'portal': '[FD00:0::1]'}, root)
    assert [(r['target'], r['portal']) for r in by_portal] == [(TGT, '[fd00::1]:3260')]


@pytest.mark.parametrize('auth, match', [
    ({'authmethod': 'CHAP', 'password': SECRET}, 'username and a password'),
    ({'authmethod': 'CHAP', 'username': 'u', 'password': SECRET, 'username_in': 'x'}, 'both username_in'),
    ({'authmethod': 'CHAP', 'username': 'u', 'password': SECRET, 'chap_algs': 'MD4'}, 'unknown CHAP algorithm'),
    ({'authmethod': 'KRB5', 'username': 'u', 'password': SECRET}, 'not supported'),
])
def test_bad_record_auth_is_reported_without_secret(auth, match):
    rec = {'target': TGT, 'address': '10.0.0.1', 'port': 3260, 'portal': '10.0.0.1:3260', 'tpgt': 1,
           'iface': 'default', 'auth': {k.replace('authmethod', 'method'): v for k, v in auth.items()}}
    request = IP.requests_from_nodes([rec])[0]
    assert match in request['error'] and SECRET not in request['error']
    result = IP.run_request(request, NAME)
    assert result['error']['kind'] == 'input' and not result['reachable']


def test_authmethod_none_ignores_stored_credentials():
    rec = {'target': TGT, 'address': '10.0.0.1', 'port': 3260, 'iface': 'default',
           'auth': {'method': None, 'username': 'u', 'password': SECRET}}
    assert IP.requests_from_nodes([rec])[0]['chap'] is None


@pytest.mark.parametrize('value, expected', [(None, ('None',)), ('None', ('None',)), ('CRC32C', ('CRC32C',)),
                                             ('None,CRC32C', ('None', 'CRC32C'))])
def test_digest_settings(value, expected):
    assert IP._digest(value) == expected


def test_digest_setting_invalid():
    with pytest.raises(ValueError):
        IP._digest('MD5')


# --------------------------------------------------------------------------------------------- module runs (stubbed)
def test_module_node_db_source(capsys, monkeypatch, tmp_path):
    chap = {'authmethod': 'CHAP', 'username': 'db01', 'password': SECRET}
    root = host(tmp_path, [('%s/10.0.0.1,3260,1/default' % TGT, record(TGT, '10.0.0.1', auth=chap))])
    result, calls, out = run(capsys, monkeypatch, root, {})
    assert result['_rc'] == 0 and result['changed'] is False
    assert result['initiator_name'] == NAME and result['source'] == 'node_db' and result['node_db'] == '/etc/iscsi'
    assert result['summary'] == {'total': 1, 'reachable': 1, 'authenticated': 1, 'failed': 0}
    request, initiator, kw = calls[0]
    assert initiator == NAME and request['chap'].username == 'db01'
    assert kw == {'luns': True, 'timeout': 5.0, 'total_timeout': 30.0, 'max_redirects': 4}
    assert SECRET not in out


def test_module_explicit_targets(capsys, monkeypatch, tmp_path):
    root = host(tmp_path, [])
    args = {'targets': [{'target': TGT.upper().replace('IQN', 'iqn'), 'portal': '[2001:db8::1]:3261',
                         'auth': {'username': 'u', 'password': SECRET, 'username_in': 't',
                                  'password_in': SECRET_IN, 'chap_algorithms': ['SHA3-256', 'MD5']},
                         'header_digest': 'CRC32C'}],
            'initiator_name': 'iqn.2024-01.org.example:other', 'luns': False, 'timeout': 2, 'parallel': 1}
    result, calls, out = run(capsys, monkeypatch, root, args)
    assert result['_rc'] == 0 and result['source'] == 'targets' and result['node_db'] is None
    request, initiator, kw = calls[0]
    assert request['target'] == TGT and (request['address'], request['port']) == ('2001:db8::1', 3261)
    assert request['chap'].mutual and request['chap'].algorithms == (8, 5)
    assert request['header_digest'] == ('CRC32C',) and kw['luns'] is False and kw['timeout'] == 2.0
    assert initiator == 'iqn.2024-01.org.example:other'
    assert SECRET not in out and SECRET_IN not in out


def test_secrets_scrubbed_even_if_a_result_carried_one(capsys, monkeypatch, tmp_path):
    root = host(tmp_path, [])
    args = {'targets': [{'target': TGT, 'portal': '10.0.0.1', 'auth': {'username': 'u', 'password': SECRET}}]}
    echo = {'error': {'message': 'echo %s' % SECRET, 'kind': 'x', 'retryable': False}}
    result, _ignored, out = run(capsys, monkeypatch, root, args, stub=lambda r: echo)
    assert SECRET not in out and '********' in result['probes'][0]['error']['message']


def test_fail_on_error(capsys, monkeypatch, tmp_path):
    root = host(tmp_path, [('%s/10.0.0.1,3260,1/default' % TGT, record(TGT, '10.0.0.1')),
                           ('%s/10.0.0.2,3260,1/default' % TGT, record(TGT, '10.0.0.2'))])

    def stub(request):
        if request['address'] == '10.0.0.2':
            return {'authenticated': False, 'error': {'message': 'login failed with status 0x0201',
                                                      'kind': 'login', 'retryable': False}}
        return {}
    result, _ignored, _ignored = run(capsys, monkeypatch, root, {'fail_on_error': True, 'parallel': 2}, stub=stub)
    assert result['_rc'] == 1 and result['failed'] is True
    assert result['msg'] == '1 of 2 probes failed: %s 10.0.0.2:3260: login failed with status 0x0201' % TGT
    assert result['summary']['failed'] == 1 and len(result['probes']) == 2
    ok, _ignored, _ignored = run(capsys, monkeypatch, root, {'fail_on_error': False}, stub=stub)
    assert ok['_rc'] == 0 and ok['summary'] == {'total': 2, 'reachable': 2, 'authenticated': 1, 'failed': 1}


@pytest.mark.parametrize('args, name, match', [
    ({}, None, 'initiator_name: not given'),
    ({'initiator_name': 'not a name'}, NAME, 'initiator_name'),
    ({'targets': [{'target': 'bad name', 'portal': '10.0.0.1'}]}, NAME, 'targets[0].target'),
    ({'targets': [{'target': TGT, 'portal': '10.0.0.1,1'}]}, NAME, 'targets[0].portal'),
    ({'targets': [{'target': TGT, 'portal': '10.0.0.1', 'auth': {'username': 'u'}}]}, NAME,
     'targets[0].auth: CHAP needs a username and a password'),
    ({'target': TGT, 'targets': [{'target': TGT, 'portal': '10.0.0.1'}]}, NAME, 'mutually exclusive'),
    ({'timeout': 0}, NAME, 'timeout: must be a positive'),
    ({'parallel': 0}, NAME, 'parallel'),
])
def test_input_errors_fail_before_any_probe(capsys, monkeypatch, tmp_path, args, name, match):
    root = host(tmp_path, [('%s/10.0.0.1,3260,1/default' % TGT, record(TGT, '10.0.0.1'))], name=name)
    result, calls, _ignored = run(capsys, monkeypatch, root, args)
    assert result['_rc'] == 1 and match in result['msg'] and calls == []


def test_no_records_no_probes(capsys, monkeypatch, tmp_path):
    result, calls, _ignored = run(capsys, monkeypatch, host(tmp_path, []), {})
    assert result['_rc'] == 0 and result['probes'] == [] and result['summary']['total'] == 0 and calls == []


def test_check_mode_runs_the_same_read_only_probe(capsys, monkeypatch, tmp_path):
    root = host(tmp_path, [('%s/10.0.0.1,3260,1/default' % TGT, record(TGT, '10.0.0.1'))])
    result, calls, _ignored = run(capsys, monkeypatch, root, {'_ansible_check_mode': True})
    assert result['_rc'] == 0 and len(calls) == 1 and result['changed'] is False
