# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The pure-Python initiator against tgtd on 127.0.0.1 (the case list of the protocol reference)."""

from __future__ import annotations

import os
import time

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _iscsi_pdu as P
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_chap import ChapCredentials
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_errors import (
    ISCSIAuthError,
    ISCSIConnectionError,
    ISCSILoginError,
    ISCSINegotiationError,
    ISCSIRedirectError,
    ISCSISCSIError,
    ISCSIStateError,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_login import DISCOVERY_OFFER
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_probe import discover, probe
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_scsi import (
    CHECK_CONDITION,
    GOOD,
    cdb_test_unit_ready,
    inquiry,
    parse_sense,
    read_capacity,
    report_luns,
    test_unit_ready as tur,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_session import Session
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_text import encode_text

from iscsi_tgtd import INITIATOR, IQN, MiB

pytestmark = pytest.mark.tgtd


def session(tgt, target, **kw):
    return Session(tgt.host, tgt.port, initiator_name=INITIATOR, target_name=target, timeout=5, **kw)


def login_error(tgt, target, chap=None, **kw):
    s = session(tgt, target, chap=chap, **kw)
    with pytest.raises(ISCSILoginError) as info:
        s.login()
    assert s.state == 'closed'
    return info.value


# --------------------------------------------------------------------------------------------- discovery
def test_discovery_plain(tgt):
    targets = discover(tgt.host, tgt.port, initiator_name=INITIATOR)
    names = [t['name'] for t in targets]
    assert names == [IQN + n for n in ('plain', 'chap', 'mutual', 'nop', 'digest', 'loop', 'ua', 'isid', 'keys')]
    for target in targets:
        assert target['portals'] == [{'address': '127.0.0.1', 'port': tgt.port, 'tpgt': 1}]


def test_acl_hides_target(tgt):
    names = [t['name'] for t in discover(tgt.host, tgt.port, initiator_name=INITIATOR)]
    assert tgt.hidden not in names
    err = login_error(tgt, tgt.hidden)
    assert err.status == '0203' and 'ACL' in str(err) and not err.retryable


@pytest.fixture(scope='module')
def disc_chap(tgtd_factory):
    d = tgtd_factory()
    d.add_target(1, 'disc-a', [MiB])
    d.add_target(2, 'disc-b', [MiB])
    d.add_account('disc-user', 'disc-secret-1')             # no tid: discovery account
    return d


@pytest.fixture(scope='module')
def disc_mutual(tgtd_factory):
    d = tgtd_factory()
    d.add_target(1, 'disc-m', [MiB])
    d.add_account('disc-user', 'disc-secret-1')
    d.add_account('disc-target', 'disc-target-secret', outgoing=True)
    return d


def test_discovery_one_way_chap(disc_chap):
    d = disc_chap
    good = ChapCredentials('disc-user', 'disc-secret-1')
    names = [t['name'] for t in discover(d.host, d.port, initiator_name=INITIATOR, chap=good)]
    assert names == [IQN + 'disc-a', IQN + 'disc-b']
    for chap in (None, ChapCredentials('disc-user', 'wrong-secret-1'), ChapCredentials('nobody', 'disc-secret-1')):
        with pytest.raises(ISCSILoginError) as info:
            discover(d.host, d.port, initiator_name=INITIATOR, chap=chap)
        assert info.value.status == '0201'


def test_discovery_mutual_chap(disc_mutual):
    d = disc_mutual
    chap = ChapCredentials('disc-user', 'disc-secret-1', 'disc-target', 'disc-target-secret')
    with Session(d.host, d.port, initiator_name=INITIATOR, chap=chap) as s:
        info = s.login()
        assert info['mutual_chap'] is True and info['auth_method'] == 'CHAP'
        assert [t['name'] for t in s.send_targets()] == [IQN + 'disc-m']
        s.logout()
    wrong_target_secret = ChapCredentials('disc-user', 'disc-secret-1', 'disc-target', 'not-the-secret')
    with pytest.raises(ISCSIAuthError, match='mutual CHAP failed'):
        discover(d.host, d.port, initiator_name=INITIATOR, chap=wrong_target_secret)


@pytest.fixture(scope='module')
def many(tgtd_factory):
    d = tgtd_factory()
    names = []
    for tid in range(1, 26):
        name = 'long-name-%02d-' % tid + 'x' * 180
        names.append(d.add_target(tid, name, [])[0])
    return d, names


def test_send_targets_continuation_512(many):
    d, names = many
    chunks = []
    s = Session(d.host, d.port, initiator_name=INITIATOR, max_recv_data_segment_length=512)
    original = s._receive

    def spy(*args):
        pdu = original(*args)
        if pdu.opcode == P.OP_TEXT_RSP:
            chunks.append((pdu.final, pdu.cont, pdu.data))
        return pdu
    s._receive = spy
    with s:
        s.login()
        targets = s.send_targets()
        s.logout()
    assert [t['name'] for t in targets] == names
    assert all(len(data) <= 512 for _ignored, _ignored, data in chunks)
    total = sum(len(data) for _ignored, _ignored, data in chunks)
    assert total > 25 * 200 and len(chunks) == s.text_pdus == -(-total // 512)
    # tgt splits in the middle of a pair without setting C (F=0, C=0): the joined response still parses.
    assert any(not final and not cont and not data.endswith(b'\0') for final, cont, data in chunks)


# --------------------------------------------------------------------------------------------- login / CHAP
def test_login_none(tgt):
    result = probe(tgt.host, tgt.port, tgt.plain, INITIATOR, luns=False)
    assert result['authenticated'] and result['reachable'] and result['logged_out']
    assert result['auth_method'] == 'None' and result['target_portal_group_tag'] == 1


def test_login_one_way_chap(tgt):
    result = probe(tgt.host, tgt.port, tgt.chap, INITIATOR, chap=ChapCredentials(tgt.user, tgt.secret),
                   luns=False)
    assert result['error'] is None and result['auth_method'] == 'CHAP' and result['chap_algorithm'] == 'MD5'
    assert result['mutual_chap'] is False


def test_login_mutual_chap(tgt):
    chap = ChapCredentials(tgt.m_user, tgt.m_secret, tgt.t_user, tgt.t_secret)
    result = probe(tgt.host, tgt.port, tgt.mutual, INITIATOR, chap=chap, luns=False)
    assert result['error'] is None and result['mutual_chap'] is True


@pytest.mark.parametrize('encoding', ['base64', 'hex'])
def test_chap_response_encodings(tgt, encoding):
    chap = ChapCredentials(tgt.m_user, tgt.m_secret, tgt.t_user, tgt.t_secret, response_encoding=encoding)
    result = probe(tgt.host, tgt.port, tgt.mutual, INITIATOR, chap=chap, luns=False)
    assert result['error'] is None and result['mutual_chap'] is True


@pytest.mark.parametrize('case', ['wrong secret', 'unknown user', 'None to CHAP target',
                                  'mutual without outgoing account', 'CHAP only to no-auth target'])
def test_authentication_failures_0201(tgt, case):
    target, chap = {
        'wrong secret': (tgt.chap, ChapCredentials(tgt.user, 'not-the-secret')),
        'unknown user': (tgt.chap, ChapCredentials('mallory', tgt.secret)),
        'None to CHAP target': (tgt.chap, None),
        'mutual without outgoing account': (tgt.chap, ChapCredentials(tgt.user, tgt.secret, 'x', 'y-secret')),
        'CHAP only to no-auth target': (tgt.plain, ChapCredentials(tgt.user, tgt.secret, require_chap=True)),
    }[case]
    err = login_error(tgt, target, chap)
    assert err.status == '0201' and not err.retryable and 'authentication failure' in str(err)
    assert tgt.secret not in str(err)


def test_chap_none_offered_to_no_auth_target_gets_none(tgt):
    result = probe(tgt.host, tgt.port, tgt.plain, INITIATOR, chap=ChapCredentials(tgt.user, tgt.secret),
                   luns=False)
    assert result['authenticated'] and result['auth_method'] == 'None'


def test_wrong_target_secret_in_mutual_chap(tgt):
    chap = ChapCredentials(tgt.m_user, tgt.m_secret, tgt.t_user, 'not-the-target-secret')
    result = probe(tgt.host, tgt.port, tgt.mutual, INITIATOR, chap=chap, luns=False)
    assert result['reachable'] and not result['authenticated']
    assert result['error']['kind'] == 'authentication' and 'mutual CHAP failed' in result['error']['message']
    assert 'not-the-target-secret' not in str(result)


def test_password_255_ok_256_fails(tgt):
    ok = probe(tgt.host, tgt.port, tgt.chap, INITIATOR, chap=ChapCredentials(*tgt.long255), luns=False)
    assert ok['authenticated'], ok['error']
    err = login_error(tgt, tgt.chap, ChapCredentials(*tgt.long256))
    assert err.status == '0201'


@pytest.mark.parametrize('algorithms, status, chosen', [
    ([5], None, 'MD5'),
    (['SHA3-256', 'MD5'], None, 'MD5'),          # tgt does not know 8, picks 5
    # tgt maps CHAP_A=7 to SHA-1 (IANA: SHA-256): our SHA-256 response has the wrong length -> 0200.
    (['SHA256'], '0200', None),
    (['SHA3-256', 'SHA256', 'SHA1', 'MD5'], '0200', None),
    (['SHA1'], '0200', None),                     # tgt does not accept 6
])
def test_chap_algorithm_lists(tgt, algorithms, status, chosen):
    chap = ChapCredentials(tgt.user, tgt.secret, algorithms=algorithms)
    if status is None:
        result = probe(tgt.host, tgt.port, tgt.chap, INITIATOR, chap=chap, luns=False)
        assert result['authenticated'] and result['chap_algorithm'] == chosen
    else:
        assert login_error(tgt, tgt.chap, chap).status == status


def test_unknown_target(tgt):
    err = login_error(tgt, IQN + 'no-such-target')
    assert err.status == '0203'


def test_zero_isid_refused(tgt):
    err = login_error(tgt, tgt.plain, isid=bytes(6))
    assert err.status == '0207' and 'missing parameter' in str(err)


# --------------------------------------------------------------------------------------------- redirects
def test_redirect_loop_is_capped(tgt):
    s = session(tgt, tgt.loop, max_redirects=3)
    start = time.monotonic()
    with pytest.raises(ISCSIRedirectError, match='more than 3 redirects') as info:
        s.login()
    assert time.monotonic() - start < 5
    assert s.redirects == ['127.0.0.2:%d' % tgt.port] * 4
    assert not info.value.retryable


def test_redirect_followed(tgtd_factory):
    first = tgtd_factory()
    other = tgtd_factory(host='127.0.0.2')
    name, files = other.add_target(1, 'moved', [5 * MiB])
    first.add_target(1, 'moved', [])
    first.update(1, 'RedirectAddress', '127.0.0.2')
    first.update(1, 'RedirectPort', other.port)
    first.update(1, 'RedirectReason', 'Permanent')
    result = probe(first.host, first.port, name, INITIATOR)
    assert result['error'] is None, result['error']
    assert result['redirects'] == ['127.0.0.2:%d' % other.port]
    assert [lun['size_bytes'] for lun in result['luns'] if 'size_bytes' in lun] == [os.path.getsize(files[0])]


# --------------------------------------------------------------------------------------------- digests, keys
def test_crc32c_digests_with_nop_out_echo(tgt):
    with session(tgt, tgt.digest, header_digest=('CRC32C', 'None'), data_digest=('CRC32C', 'None')) as s:
        info = s.login()
        assert info['negotiated']['HeaderDigest'] == 'CRC32C' and info['negotiated']['DataDigest'] == 'CRC32C'
        assert s.header_digest and s.data_digest
        s.ping(b'digest echo payload')                  # NOP-Out with data, echoed in the NOP-In
        assert tur(s, 1)
        assert read_capacity(s, 1)['size_bytes'] == MiB
        s.logout()


def test_required_digest_refused_by_target_without_digests(tgt):
    s = session(tgt, tgt.plain, header_digest=('CRC32C',))
    with pytest.raises(ISCSINegotiationError, match='HeaderDigest'):
        s.login()


@pytest.mark.parametrize('offer', ['all', 'few'])
def test_target_answers_t0_and_proposes_keys(tgt, offer):
    # Target 'keys' has MaxRecvDataSegmentLength=65536 and MaxOutstandingR2T=4: tgt answers T=0, declares its
    # MaxRecvDataSegmentLength and proposes MaxOutstandingR2T when we did not offer it; we answer and re-ask T=1.
    kw = {'login_offer': DISCOVERY_OFFER} if offer == 'few' else {}
    with session(tgt, tgt.keys, **kw) as s:
        info = s.login()
        assert info['login_exchanges'] == 3
        assert info['target_proposed_keys'] == (['MaxOutstandingR2T'] if offer == 'few' else [])
        assert info['negotiated']['MaxOutstandingR2T'] == 1
        assert info['negotiated']['TargetMaxRecvDataSegmentLength'] == 65536 == s.target_max_recv
        assert tur(s, 1)
        s.logout()


# --------------------------------------------------------------------------------------------- SCSI
def test_unit_attention_then_success(tgt):
    with session(tgt, tgt.ua) as s:
        s.login()
        first = s.scsi_command(1, cdb_test_unit_ready(), 0)
        assert first.status == CHECK_CONDITION
        sense = parse_sense(first.sense)
        assert (sense['key'], sense['asc'], sense['ascq']) == (6, 0x29, 0x00)
        assert tur(s, 1) is True
        assert s.scsi_command(1, cdb_test_unit_ready(), 0).status == GOOD
        s.logout()


def test_inquiry_report_luns_read_capacity(tgt):
    with session(tgt, tgt.plain) as s:
        s.login()
        assert report_luns(s) == [0, 1, 2]
        controller = inquiry(s, 0)
        assert controller['device_type_name'] == 'storage array controller'
        for lun, path in enumerate(tgt.plain_files, start=1):
            inq = inquiry(s, lun)
            assert (inq['vendor'], inq['product'], inq['device_type']) == ('IET', 'VIRTUAL-DISK', 0)
            cap = read_capacity(s, lun)
            assert cap['size_bytes'] == os.path.getsize(path)
            assert cap['block_size'] == 512
        s.logout()


def test_probe_reports_luns_and_sizes(tgt):
    result = probe(tgt.host, tgt.port, tgt.plain, INITIATOR)
    disks = [lun for lun in result['luns'] if lun['device_type'] == 'disk']
    assert [(d['lun'], d['size_bytes']) for d in disks] == [(1, 10 * MiB), (2, 3 * MiB + 4096)]
    assert result['luns'][0]['lun'] == 0 and 'size_bytes' not in result['luns'][0]


def test_missing_lun(tgt):
    with session(tgt, tgt.plain) as s:
        s.login()
        tur(s, 1)
        with pytest.raises(ISCSISCSIError) as info:
            read_capacity(s, 7)
        assert (info.value.sense['key'], info.value.sense['asc'], info.value.sense['ascq']) == (5, 0x25, 0)
        assert 'logical unit not supported' in str(info.value)
        s.logout()


# --------------------------------------------------------------------------------------------- NOP-In
def test_unsolicited_nop_in_answered_keeps_session(tgt):
    with session(tgt, tgt.nop) as s:
        s.login()
        s.service(3.5)                      # tgt pings every second, drops after 2 missed answers
        assert s.nop_ins_answered >= 2
        assert tur(s, 1)
        s.logout()


def test_unanswered_nop_in_drops_session(tgt):
    # Control for the test above: without answering, tgt closes the connection.
    s = session(tgt, tgt.nop)
    s.login()
    time.sleep(4.5)
    with pytest.raises(ISCSIConnectionError):
        tur(s, 1)
    s.close()


# --------------------------------------------------------------------------------------------- sessions
def _wait_sessions(tgt, tid, count):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = tgt.d.sessions(tid).count(INITIATOR)
        if found == count:
            return found
        time.sleep(0.05)
    return tgt.d.sessions(tid).count(INITIATOR)


def test_same_isid_reinstates_random_isids_coexist(tgt):
    isid = bytes.fromhex('80feedbeef01')
    first = session(tgt, tgt.isid, isid=isid)
    first.login()
    tur(first, 1)
    second = session(tgt, tgt.isid, isid=isid)
    second.login()                          # same InitiatorName + ISID, TSIH 0: the target kills the first
    with pytest.raises(ISCSIConnectionError):
        tur(first, 1)
    first.close()
    assert tur(second, 1)
    second.logout()
    assert _wait_sessions(tgt, 9, 0) == 0

    a, b = session(tgt, tgt.isid), session(tgt, tgt.isid)
    assert a.isid != b.isid
    a.login()
    b.login()
    assert tur(a, 1) and tur(b, 1)
    assert _wait_sessions(tgt, 9, 2) == 2
    a.logout()
    b.logout()


def test_clean_logout_leaves_no_session(tgt):
    s = session(tgt, tgt.isid)
    s.login()
    assert _wait_sessions(tgt, 9, 1) == 1
    assert s.logout() == 0
    assert _wait_sessions(tgt, 9, 0) == 0


def test_no_send_targets_in_normal_session(tgt):
    with session(tgt, tgt.plain) as s:
        s.login()
        with pytest.raises(ISCSIStateError, match='Discovery'):
            s.send_targets()
        # What the guard prevents: tgt drops a Normal session that sends a Text Request.
        s._begin()
        s._send(P.text_request(0x777, P.RESERVED_TAG, s.cmdsn, s.exp_statsn, encode_text([('SendTargets', 'All')])))
        with pytest.raises(ISCSIConnectionError):
            s._receive(0x777, (P.OP_TEXT_RSP,), 'SendTargets')
