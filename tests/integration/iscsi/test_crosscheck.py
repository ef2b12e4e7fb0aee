# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Cross-checks against libiscsi's command line tools (Debian libiscsi-bin): same targets and portals as
iscsi-ls, same sizes as iscsi-readcapacity16, same vendor/product/type as iscsi-inq.  CHAP credentials go to the
tools through LIBISCSI_CHAP_USERNAME/LIBISCSI_CHAP_PASSWORD, not their command line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_chap import ChapCredentials
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_probe import discover, probe
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_text import format_portal

from iscsi_tgtd import INITIATOR, MiB

pytestmark = pytest.mark.tgtd


@pytest.fixture(scope='module', autouse=True)
def libiscsi_tools():
    missing = [t for t in ('iscsi-ls', 'iscsi-inq', 'iscsi-readcapacity16') if not shutil.which(t)]
    if missing:
        pytest.skip('libiscsi-bin tools missing: %s' % ', '.join(missing))


def tool(args, chap=None, check=True):
    env = dict(os.environ, LANG='C', LC_ALL='C')
    if chap:
        env['LIBISCSI_CHAP_USERNAME'], env['LIBISCSI_CHAP_PASSWORD'] = chap
    res = subprocess.run(args, capture_output=True, text=True, env=env, timeout=30, check=False)
    if check:
        assert res.returncode == 0, (args, res.stdout, res.stderr)
    return res


def url(host, port, target=None, lun=None):
    text = 'iscsi://%s:%d' % ('[%s]' % host if ':' in host else host, port)
    if target:
        text += '/%s/%d' % (target, lun)
    return text


def iscsi_ls(host, port, chap=None):
    """(target, portal) pairs, sorted: iscsi-ls prints them in reverse order of the SendTargets response."""
    out = tool(['iscsi-ls', '-i', INITIATOR, url(host, port)], chap).stdout
    return sorted(re.findall(r'^Target:(\S+) Portal:(\S+)$', out, re.M))


def ours(host, port, chap=None):
    return sorted((t['name'], format_portal(p['address'], p['port'], p['tpgt']))
                  for t in discover(host, port, initiator_name=INITIATOR, chap=chap) for p in t['portals'])


def test_targets_and_portals_match_iscsi_ls(tgt):
    theirs = iscsi_ls(tgt.host, tgt.port)
    assert theirs and ours(tgt.host, tgt.port) == theirs


@pytest.fixture(scope='module')
def crowded(tgtd_factory):
    d = tgtd_factory()
    for tid in range(1, 31):
        d.add_target(tid, 'crowd-%02d-' % tid + 'q' * 150, [MiB * (tid % 3 + 1)])
    return d


def test_many_long_names_match_iscsi_ls(crowded):
    theirs = iscsi_ls(crowded.host, crowded.port)
    assert len(theirs) == 30
    assert ours(crowded.host, crowded.port) == theirs
    # also with continuation forced by a small MaxRecvDataSegmentLength on our side
    small = discover(crowded.host, crowded.port, initiator_name=INITIATOR, max_recv_data_segment_length=512)
    assert sorted(t['name'] for t in small) == [name for name, _ignored in theirs]


def test_ipv6_portal_in_brackets_matches_iscsi_ls(tgtd_factory):
    d = tgtd_factory(host='::1')
    name, files = d.add_target(1, 'six', [2 * MiB])
    theirs = iscsi_ls('::1', d.port)
    assert theirs == [(name, '[::1]:%d,1' % d.port)]
    assert ours('::1', d.port) == theirs
    result = probe('::1', d.port, name, INITIATOR)
    assert result['portal'] == '[::1]:%d' % d.port
    assert [lun.get('size_bytes') for lun in result['luns']] == [None, os.path.getsize(files[0])]


@pytest.fixture(scope='module')
def disc_chap_daemon(tgtd_factory):
    d = tgtd_factory()
    d.add_target(1, 'cx-a', [MiB])
    d.add_account('cx-user', 'cx-secret-123')
    return d


def test_discovery_chap_matches_iscsi_ls(disc_chap_daemon):
    d = disc_chap_daemon
    theirs = iscsi_ls(d.host, d.port, chap=('cx-user', 'cx-secret-123'))
    assert theirs and ours(d.host, d.port, ChapCredentials('cx-user', 'cx-secret-123')) == theirs
    bad = tool(['iscsi-ls', '-i', INITIATOR, url(d.host, d.port)], ('cx-user', 'wrong'), check=False)
    assert bad.returncode != 0                  # the tool agrees that wrong credentials fail


def _readcapacity16(host, port, target, lun, chap=None):
    out = tool(['iscsi-readcapacity16', '-i', INITIATOR, url(host, port, target, lun)], chap).stdout
    return (int(re.search(r'^Total size:(\d+)', out, re.M).group(1)),
            int(re.search(r'^LOGICAL BLOCK LENGTH IN BYTES:(\d+)', out, re.M).group(1)),
            int(re.search(r'^RETURNED LOGICAL BLOCK ADDRESS:(\d+)', out, re.M).group(1)))


def _inq(host, port, target, lun, chap=None):
    out = tool(['iscsi-inq', '-i', INITIATOR, url(host, port, target, lun)], chap).stdout
    fields = dict(re.findall(r'^([A-Za-z ]+):(.*)$', out, re.M))
    return fields['Vendor'].strip(), fields['Product'].strip(), fields['Revision'].strip(), \
        fields['Peripheral Device Type'].strip()


@pytest.mark.parametrize('which', ['plain', 'chap', 'crowded'])
def test_sizes_and_inquiry_match_libiscsi(tgt, crowded, which):
    chap_pair = None
    if which == 'plain':
        host, port, target = tgt.host, tgt.port, tgt.plain
    elif which == 'chap':
        host, port, target = tgt.host, tgt.port, tgt.chap
        chap_pair = (tgt.user, tgt.secret)
    else:
        host, port = crowded.host, crowded.port
        target = discover(host, port, initiator_name=INITIATOR)[4]['name']
    result = probe(host, port, target, INITIATOR, chap=ChapCredentials(*chap_pair) if chap_pair else None)
    assert result['error'] is None, result['error']
    disks = [lun for lun in result['luns'] if lun['device_type'] == 'disk']
    assert disks
    for lun in result['luns']:
        vendor, product, revision, dtype = _inq(host, port, target, lun['lun'], chap_pair)
        assert (lun['vendor'], lun['product'], lun['revision']) == (vendor, product, revision)
        assert {'disk': 'DIRECT_ACCESS', 'storage array controller': 'STORAGE_ARRAY_CONTROLLER'}[
            lun['device_type']] == dtype
    for lun in disks:
        total, block, last_lba = _readcapacity16(host, port, target, lun['lun'], chap_pair)
        assert (lun['size_bytes'], lun['block_size'], lun['blocks']) == (total, block, last_lba + 1)


def test_lun_lists_match_iscsi_ls_s(crowded):
    # (iscsi-ls -s gives up at the first target it cannot log in to, hence a tgtd without CHAP or redirects)
    out = tool(['iscsi-ls', '-s', '-i', INITIATOR, url(crowded.host, crowded.port)]).stdout
    theirs = {}
    for block in out.split('Target:')[1:]:
        name = block.split()[0]
        theirs[name] = [(int(n), t) for n, t in re.findall(r'Lun:(\d+)\s+Type:(\S+)', block)]
    assert len(theirs) == 30
    names = {'disk': 'DIRECT_ACCESS', 'storage array controller': 'STORAGE_ARRAY_CONTROLLER'}
    for name, luns in theirs.items():
        result = probe(crowded.host, crowded.port, name, INITIATOR)
        assert [(lun['lun'], names[lun['device_type']]) for lun in result['luns']] == luns
