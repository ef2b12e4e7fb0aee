# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""openiscsi.initiator.discovery with backend=python, end to end: the module's real main() runs as a process in a
private mount namespace whose /etc/iscsi is a temporary node DB (tests/unit/plugins/modules/iscsi_ns.py), asks a
tgtd on 127.0.0.1 with discovery CHAP (one-way and mutual) over the pure-Python initiator, and creates the node
records with this machine's REAL iscsiadm, whose own reader then checks them.  This machine's kernel has no iSCSI
transport, so the iscsiadm backend cannot discover here; the python backend can."""

from __future__ import annotations

import os
import sys

import pytest

from iscsi_tgtd import INITIATOR, MiB

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'unit', 'plugins', 'modules'))
from iscsi_ns import Namespace, PYROOT, needs_iscsiadm  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = [pytest.mark.tgtd, needs_iscsiadm]

USER, SECRET = 'disc-user', 'Disc-Secret-py-4711'
T_USER, T_SECRET = 'disc-target', 'Disc-Target-py-0815'


@pytest.fixture(scope='module')
def disc_tgtd(tgtd_factory):
    d = tgtd_factory()
    a = d.add_target(1, 'pydisc-a', [2 * MiB, MiB])[0]
    b = d.add_target(2, 'pydisc-b', [MiB])[0]
    d.add_target(3, 'pydisc-hidden', [MiB], acl=None)
    d.add_account(USER, SECRET)                       # no tid: discovery sessions need CHAP
    d.add_account(T_USER, T_SECRET, outgoing=True)    # and the target answers mutual CHAP
    return d, sorted([a, b])


@pytest.fixture
def ns(tmp_path):
    if not os.path.isdir(PYROOT):
        pytest.skip('run through pytest from the repository (tests/unit/conftest.py makes .build/pyroot)')
    n = Namespace(tmp_path)
    (n.db / 'initiatorname.iscsi').write_text('InitiatorName=%s\n' % INITIATOR)
    return n


def nodes_listed(ns):
    """``iscsiadm -m node`` (iscsiadm's own reader) as a sorted list of lines."""
    res = ns.iscsiadm('-m', 'node')
    return sorted(line for line in res.stdout.splitlines() if line.strip())


def test_python_backend_mutual_chap_creates_records_iscsiadm_reads(disc_tgtd, ns):
    d, names = disc_tgtd
    portal = '127.0.0.1:%d' % d.port
    auth = {'username': USER, 'password': SECRET, 'username_in': T_USER, 'password_in': T_SECRET}
    args = {'portals': [portal], 'backend': 'python', 'auth': auth, 'timeout': 5}

    pred = ns.module(_name='discovery', check=True, **args)
    assert not pred.get('failed'), pred
    assert ns.tree() == {} and not (ns.db / 'send_targets').exists(), 'check mode wrote to the node DB'
    expected = [{'target': n, 'portal': portal, 'tpgt': 1, 'iface': 'default'} for n in names]
    assert pred['changed'] is True and pred['created'] == expected and pred['portals'][0]['targets_known'] is True

    res = ns.module(_name='discovery', **args)
    assert not res.get('failed'), res
    assert res['backend'] == 'python' and res['changed'] is True and res['created'] == expected
    assert res['targets'] == expected  # the ACL-hidden target is not offered
    assert nodes_listed(ns) == sorted('%s,1 %s' % (portal, n) for n in names)
    for name in names:
        shown = ns.iscsiadm('-m', 'node', '-T', name, '-p', portal).stdout
        assert 'node.discovery_address = 127.0.0.1\n' in shown
        assert 'node.discovery_port = %d\n' % d.port in shown
        assert 'node.discovery_type = send_targets\n' in shown
        assert 'node.conn[0].port = %d\n' % d.port in shown and 'node.tpgt = 1\n' in shown
    # the discovery record holds the credentials; iscsiadm reads them back (masked)
    st = ns.iscsiadm('-m', 'discoverydb', '-t', 'st', '-p', portal).stdout
    assert 'discovery.sendtargets.auth.username_in = %s' % T_USER in st
    assert 'discovery.sendtargets.auth.password_in = ********' in st
    # no secret anywhere it must not be: argv of every iscsiadm call, the module's output
    flat = '\n'.join('\0'.join(c) for c in ns.calls())
    for secret in (SECRET, T_SECRET):
        assert secret not in flat and secret not in res['_raw'] and secret not in pred['_raw']
    assert not any('--discover' in c for c in ns.calls())

    # idempotent: the stored credentials are used when auth is omitted, nothing is created again
    before = ns.tree()
    again = ns.module(_name='discovery', portals=[portal], backend='python')
    assert not again.get('failed'), again
    assert again['changed'] is False and again['created'] == [] and again['targets'] == expected
    assert ns.tree() == before

    # records made like iscsiadm's discovery makes them: its own `discoverydb -o delete` finds and removes them
    ns.iscsiadm('-m', 'discoverydb', '-t', 'st', '-p', portal, '-o', 'delete')
    assert nodes_listed(ns) == []


def test_python_backend_refusals_are_clear(disc_tgtd, ns):
    d, _names = disc_tgtd
    portal = '127.0.0.1:%d' % d.port
    none = ns.module(_name='discovery', portals=[portal], backend='python')
    assert none.get('failed') and 'discovery at %s (python backend)' % portal in none['msg']
    assert '0x0201' in none['msg'] and 'no discovery CHAP was used' in none['msg']

    wrong = ns.module(_name='discovery', portals=[portal], backend='python',
                      auth={'username': USER, 'password': 'Not-The-Secret-1'})
    assert wrong.get('failed') and 'auth.username/auth.password' in wrong['msg']
    assert 'Not-The-Secret-1' not in wrong['_raw']

    bad_mutual = ns.module(_name='discovery', portals=[portal], backend='python',
                           auth={'username': USER, 'password': SECRET, 'username_in': T_USER,
                                 'password_in': 'Not-The-Target-2'})
    assert bad_mutual.get('failed') and 'mutual CHAP failed' in bad_mutual['msg']
    assert 'Not-The-Target-2' not in bad_mutual['_raw'] and SECRET not in bad_mutual['_raw']
    assert nodes_listed(ns) == []  # nothing discovered, no node record


def test_auto_picks_python_without_a_kernel_transport(disc_tgtd, ns):
    if os.path.isdir('/sys/module/iscsi_tcp'):
        pytest.skip('this kernel has iscsi_tcp loaded: auto would pick iscsiadm')
    d, names = disc_tgtd
    portal = '127.0.0.1:%d' % d.port
    res = ns.module(_name='discovery', portals=[portal], backend='auto', create_nodes=False,
                    auth={'username': USER, 'password': SECRET})
    assert not res.get('failed'), res
    assert res['backend'] == 'python' and res['backend_reason'].startswith('auto: ')
    assert [t['target'] for t in res['targets']] == names and nodes_listed(ns) == []
