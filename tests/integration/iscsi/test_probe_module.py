# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""openiscsi.initiator.probe run in-process (patch_module_args) against tgtd on 127.0.0.1: explicit targets and
node records read from a node DB tree (the module's ROOT pointed at a temporary directory)."""

from __future__ import annotations

import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.openiscsi.initiator.plugins.modules import probe

from iscsi_tgtd import INITIATOR, IQN, MiB, chap_lines, free_port, node_record, put_file

pytestmark = pytest.mark.tgtd


def run_module(capsys, monkeypatch, args, root=None):
    if root is not None:
        monkeypatch.setattr(probe, 'ROOT', root)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            probe.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    result['_rc'] = exc.value.code
    return result, out


def by_target(result):
    return {p['target'].rsplit(':', 1)[1]: p for p in result['probes']}


def test_explicit_targets(tgt, capsys, monkeypatch):
    portal = '%s:%d' % (tgt.host, tgt.port)
    args = {'initiator_name': INITIATOR, 'targets': [
        {'target': tgt.plain, 'portal': portal},
        {'target': tgt.chap, 'portal': portal, 'auth': {'username': tgt.user, 'password': tgt.secret}},
        {'target': tgt.mutual, 'portal': portal,
         'auth': {'username': tgt.m_user, 'password': tgt.m_secret, 'username_in': tgt.t_user,
                  'password_in': tgt.t_secret}},
        {'target': tgt.chap, 'portal': portal, 'auth': {'username': tgt.user, 'password': 'wrong-secret-123'}},
        {'target': tgt.hidden, 'portal': portal},
        {'target': tgt.digest, 'portal': portal, 'header_digest': 'CRC32C', 'data_digest': 'CRC32C'},
    ]}
    result, out = run_module(capsys, monkeypatch, args)
    assert result['_rc'] == 0 and result['changed'] is False and result['source'] == 'targets'
    probes = result['probes']
    assert [p['authenticated'] for p in probes] == [True, True, True, False, False, True]
    assert all(p['reachable'] for p in probes)
    plain, chap, mutual, wrong, hidden, digest = probes
    assert plain['auth_method'] == 'None' and chap['auth_method'] == 'CHAP' and mutual['mutual_chap'] is True
    sizes = [lun['size_bytes'] for lun in plain['luns'] if 'size_bytes' in lun]
    assert sizes == [os.path.getsize(f) for f in tgt.plain_files]
    assert [lun['size_bytes'] for lun in chap['luns'] if 'size_bytes' in lun] == [4 * MiB]
    assert wrong['error']['status'] == '0201' and hidden['error']['status'] == '0203'
    assert digest['luns'][1]['size_bytes'] == MiB
    assert result['summary'] == {'total': 6, 'reachable': 6, 'authenticated': 4, 'failed': 2}
    for secret in (tgt.secret, tgt.m_secret, tgt.t_secret, 'wrong-secret-123'):
        assert secret not in out
    # what tgtd saw: every probe logged out again
    assert all(p['logged_out'] for p in probes if p['authenticated'])


@pytest.fixture
def node_db(tgt, tmp_path):
    root = str(tmp_path)
    put_file(root, '/var/lib/dpkg/status',
             'Package: open-iscsi\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.1.8-1\n')
    put_file(root, '/etc/iscsi/initiatorname.iscsi', 'InitiatorName=%s\n' % INITIATOR)
    port = tgt.port
    entries = [
        (tgt.plain, ''),
        (tgt.chap, chap_lines(tgt.user, tgt.secret)),
        (tgt.mutual, chap_lines(tgt.m_user, tgt.m_secret, tgt.t_user, tgt.t_secret)),
        (IQN + 'gone', ''),
    ]
    for target, auth in entries:
        put_file(root, '/etc/iscsi/nodes/%s/127.0.0.1,%d,1/default' % (target, port), node_record(target, port, auth))
    # a record of the same target for a portal where nothing listens
    closed = free_port()
    put_file(root, '/etc/iscsi/nodes/%s/127.0.0.1,%d,1/default' % (tgt.plain, closed), node_record(tgt.plain, closed))
    return root, closed


def test_node_db_records(tgt, node_db, capsys, monkeypatch):
    root, closed = node_db
    result, out = run_module(capsys, monkeypatch, {'timeout': 2, 'total_timeout': 5}, root=root)
    assert result['_rc'] == 0 and result['source'] == 'node_db' and result['node_db'] == '/etc/iscsi'
    assert result['initiator_name'] == INITIATOR
    found = {(p['target'], p['portal']): p for p in result['probes']}
    here = '127.0.0.1:%d' % tgt.port
    assert found[(tgt.plain, here)]['authenticated'] and found[(tgt.plain, here)]['auth_method'] == 'None'
    assert found[(tgt.chap, here)]['auth_method'] == 'CHAP'
    assert found[(tgt.mutual, here)]['mutual_chap'] is True
    assert found[(IQN + 'gone', here)]['error']['status'] == '0203'
    unreachable = found[(tgt.plain, '127.0.0.1:%d' % closed)]
    assert not unreachable['reachable'] and unreachable['error']['kind'] == 'connection'
    assert all(p['tpgt'] == 1 and p['ifaces'] == ['default'] and p['source'] == 'node_db' for p in result['probes'])
    assert result['summary'] == {'total': 5, 'reachable': 4, 'authenticated': 3, 'failed': 2}
    for secret in (tgt.secret, tgt.m_secret, tgt.t_secret):
        assert secret not in out
    # the node DB is read, never written
    assert sorted(os.listdir(os.path.join(root, 'etc/iscsi/nodes'))) == sorted({tgt.plain, tgt.chap, tgt.mutual,
                                                                                IQN + 'gone'})


def test_node_db_filter_and_fail_on_error(tgt, node_db, capsys, monkeypatch):
    root, closed = node_db
    args = {'target': tgt.plain, 'fail_on_error': True, 'timeout': 2}
    result = run_module(capsys, monkeypatch, args, root=root)[0]
    assert result['_rc'] == 1 and result['failed'] is True
    assert sorted(p['portal'] for p in result['probes']) == sorted(['127.0.0.1:%d' % closed,
                                                                    '127.0.0.1:%d' % tgt.port])
    assert result['msg'].startswith('1 of 2 probes failed: %s 127.0.0.1:%d: cannot connect' % (tgt.plain, closed))
    args = {'target': tgt.plain, 'portal': '127.0.0.1:%d' % tgt.port, 'fail_on_error': True}
    ok = run_module(capsys, monkeypatch, args, root=root)[0]
    assert ok['_rc'] == 0 and ok['summary']['authenticated'] == 1
