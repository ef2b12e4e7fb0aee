# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""openiscsi.initiator.session_check probe=true run in-process against tgtd on 127.0.0.1: the module's ROOT is a
temporary tree with a Debian 12 node DB whose records carry their CHAP settings (one-way, mutual, a wrong secret);
the probe reads them from the record files, logs in with the pure-Python initiator, reads the LUNs and logs out."""

from __future__ import annotations

import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.openiscsi.initiator.plugins.modules import session_check

from iscsi_tgtd import INITIATOR, MiB, chap_lines, node_record, put_file

pytestmark = pytest.mark.tgtd

WRONG = 'Wrong-Secret-probe-9'


@pytest.fixture
def host_tree(tgt, tmp_path):
    """A host: initiator name, node records with CHAP, an (empty) sysfs: no kernel session."""
    root = str(tmp_path)
    put_file(root, '/etc/iscsi/initiatorname.iscsi', 'InitiatorName=%s\n' % INITIATOR)
    put_file(root, '/var/lib/dpkg/status',
             'Package: open-iscsi\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.1.8-1\n')
    os.makedirs(os.path.join(root, 'sys/class/iscsi_session'))
    port = tgt.port
    for target, auth in ((tgt.plain, ''), (tgt.chap, chap_lines(tgt.user, tgt.secret)),
                         (tgt.mutual, chap_lines(tgt.m_user, tgt.m_secret, tgt.t_user, tgt.t_secret))):
        put_file(root, '/etc/iscsi/nodes/%s/127.0.0.1,%d,1/default' % (target, port), node_record(target, port, auth))
    return root


def run(capsys, monkeypatch, root, **args):
    monkeypatch.setattr(session_check, 'ROOT', root)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            session_check.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    result['_rc'] = exc.value.code
    result['_raw'] = out
    return result


def files_of(root):
    out = {}
    for base, _dirs, files in os.walk(root):
        for name in files:
            with open(os.path.join(base, name), 'rb') as handle:
                out[os.path.join(base, name)] = handle.read()
    return out


def test_probe_with_the_records_credentials(tgt, host_tree, capsys, monkeypatch):
    before = files_of(host_tree)
    res = run(capsys, monkeypatch, host_tree, probe=True, probe_timeout=3)
    assert res['_rc'] == 0 and res['healthy'] is True, res.get('msg')
    portal = '127.0.0.1:%d' % tgt.port
    by = {p['target']: p for p in res['probes']}
    assert sorted(by) == sorted([tgt.plain, tgt.chap, tgt.mutual])
    assert all(p['portal'] == portal and p['reachable'] and p['authenticated'] and p['logged_out']
               for p in res['probes'])
    assert by[tgt.plain]['auth_method'] == 'None'
    assert by[tgt.chap]['auth_method'] == 'CHAP' and by[tgt.chap]['mutual_chap'] is False
    assert by[tgt.mutual]['mutual_chap'] is True
    # LUN sizes are the backing files' sizes
    assert [lun['size_bytes'] for lun in by[tgt.plain]['luns'] if 'size_bytes' in lun] == \
        [os.path.getsize(f) for f in tgt.plain_files]
    assert [lun['size_bytes'] for lun in by[tgt.chap]['luns'] if 'size_bytes' in lun] == [4 * MiB]
    assert res['probe_summary'] == {'total': 3, 'reachable': 3, 'authenticated': 3, 'failed': 0,
                                    'initiator_name': INITIATOR}
    for secret in (tgt.secret, tgt.m_secret, tgt.t_secret):
        assert secret not in res['_raw']
    assert files_of(host_tree) == before  # only read
    # every probe logged out: tgtd holds no session of ours
    for tid in (1, 2, 3):
        assert INITIATOR not in tgt.d.sessions(tid)


def test_a_wrong_stored_password_makes_the_host_unhealthy(tgt, host_tree, capsys, monkeypatch):
    path = os.path.join(host_tree, 'etc/iscsi/nodes/%s/127.0.0.1,%d,1/default' % (tgt.chap, tgt.port))
    put_file(host_tree, path[len(host_tree):], node_record(tgt.chap, tgt.port, chap_lines(tgt.user, WRONG)))
    res = run(capsys, monkeypatch, host_tree, probe=True, probe_timeout=3)
    assert res['_rc'] == 1 and res['failed'] is True and res['healthy'] is False
    bad = [p for p in res['probes'] if not p['authenticated']]
    assert [(p['target'], p['reachable'], p['error']['status']) for p in bad] == [(tgt.chap, True, '0201')]
    assert [p['kind'] for p in res['problems']] == ['probe']
    assert 'probe %s via 127.0.0.1:%d: login to %s failed with status 0x0201' % (tgt.chap, tgt.port, tgt.chap) \
        in res['msg']
    assert WRONG not in res['_raw'] and tgt.secret not in res['_raw']
    # limited to the good records the host is healthy again; report-only never fails
    good = run(capsys, monkeypatch, host_tree, probe=True, probe_targets=[tgt.plain, tgt.mutual])
    assert good['_rc'] == 0 and good['healthy'] is True and good['probe_summary']['total'] == 2
    report = run(capsys, monkeypatch, host_tree, probe=True, fail_on_unhealthy=False)
    assert report['_rc'] == 0 and report['healthy'] is False


def test_an_unreachable_portal_is_reported_within_the_timeout(tgt, host_tree, capsys, monkeypatch):
    from iscsi_tgtd import free_port  # pylint: disable=import-outside-toplevel
    closed = free_port()
    put_file(host_tree, '/etc/iscsi/nodes/%s/127.0.0.1,%d,1/default' % (tgt.plain, closed), node_record(tgt.plain, closed))
    res = run(capsys, monkeypatch, host_tree, probe=True, probe_portals=['127.0.0.1:%d' % closed], probe_timeout=2)
    assert res['_rc'] == 1 and [p['portal'] for p in res['probes']] == ['127.0.0.1:%d' % closed]
    probe = res['probes'][0]
    assert probe['reachable'] is False and probe['error']['kind'] == 'connection'
    assert probe['elapsed_ms'] < 12000
