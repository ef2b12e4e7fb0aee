# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Fixtures: tgtd daemons on 127.0.0.1 started by the tests (see iscsi_tgtd.py); skipped only without tgtd."""

from __future__ import annotations

import pytest

from iscsi_tgtd import MiB, Tgtd, have_tgtd


@pytest.fixture(scope='session')
def tgtd_factory(tmp_path_factory):
    """Start extra tgtd daemons; all are stopped at the end of the session."""
    if not have_tgtd():
        pytest.skip('tgtd/tgtadm not installed (Debian package tgt)')
    started = []

    def start(host='127.0.0.1', port=None):
        daemon = Tgtd(tmp_path_factory.mktemp('tgtd'), host=host, port=port).start()
        started.append(daemon)
        return daemon
    yield start
    for daemon in started:
        daemon.stop()


class Layout(object):
    """Names, secrets and files of the main tgtd's targets."""


@pytest.fixture(scope='session')
def tgt(tgtd_factory):
    """The main tgtd with one target per scenario."""
    d = tgtd_factory()
    lay = Layout()
    lay.d = d
    lay.host, lay.port = d.host, d.port
    lay.plain, lay.plain_files = d.add_target(1, 'plain', [10 * MiB, 3 * MiB + 4096])
    lay.chap, lay.chap_files = d.add_target(2, 'chap', [4 * MiB])
    lay.user, lay.secret = 'alice', 'alice-secret-1'
    d.add_account(lay.user, lay.secret, tid=2)
    lay.long255 = ('long255', 'a' * 255)
    lay.long256 = ('long256', 'b' * 256)
    d.add_account(lay.long255[0], lay.long255[1], tid=2)
    d.add_account(lay.long256[0], lay.long256[1], tid=2)
    lay.mutual, lay.mutual_files = d.add_target(3, 'mutual', [2 * MiB])
    lay.m_user, lay.m_secret = 'bob', 'bob-secret-12'
    lay.t_user, lay.t_secret = 'tgt-mutual', 'target-secret-99'
    d.add_account(lay.m_user, lay.m_secret, tid=3)
    d.add_account(lay.t_user, lay.t_secret, tid=3, outgoing=True)
    lay.hidden, _ignored = d.add_target(4, 'hidden', [1 * MiB], acl=None)
    lay.nop, _ignored = d.add_target(5, 'nop', [1 * MiB])
    d.update(5, 'nop_interval', 1)
    d.update(5, 'nop_count', 2)
    lay.digest, _ignored = d.add_target(6, 'digest', [1 * MiB])
    d.update(6, 'HeaderDigest', 'CRC32C')
    d.update(6, 'DataDigest', 'CRC32C')
    # Redirect loop: tgt redirects only when the initiator's address differs from RedirectAddress, and a
    # connection to 127.0.0.2 comes from 127.0.0.1, so target 7 redirects to 127.0.0.2 for ever.
    d.add_portal('127.0.0.2')
    lay.loop, _ignored = d.add_target(7, 'loop', [1 * MiB])
    d.update(7, 'RedirectAddress', '127.0.0.2')
    d.update(7, 'RedirectPort', d.port)
    d.update(7, 'RedirectReason', 'Temporary')
    lay.ua, _ignored = d.add_target(8, 'ua', [1 * MiB])
    lay.isid, _ignored = d.add_target(9, 'isid', [1 * MiB])
    # Values that differ from tgt's defaults make it answer T=0, declare and propose keys.
    lay.keys, _ignored = d.add_target(11, 'keys', [1 * MiB])
    d.update(11, 'MaxRecvDataSegmentLength', 65536)
    d.update(11, 'MaxOutstandingR2T', 4)
    return lay
