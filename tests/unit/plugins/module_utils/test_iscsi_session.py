# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Session behaviour against an in-memory scripted target (no sockets, no threads)."""

from __future__ import annotations

import socket
import time

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _iscsi_pdu as P
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_chap import ChapCredentials
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_errors import (
    ISCSIAuthError,
    ISCSIConnectionError,
    ISCSIDigestError,
    ISCSILimitError,
    ISCSIProtocolError,
    ISCSIRedirectError,
    ISCSIRejectError,
    ISCSISCSIError,
    ISCSIStateError,
    ISCSITimeout,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_scsi import (
    cdb_inquiry,
    cdb_test_unit_ready,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_session import Session, _sn_lt
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_text import decode_text, encode_text

INIT = 'iqn.2024-01.test:initiator'
TGT = 'iqn.2024-01.test:target'


class MiniTarget(object):
    """Just enough of a target: login without auth, SendTargets, scripted SCSI answers, logout."""

    def __init__(self):
        self.sent = []                 # request PDUs received from the initiator
        self.statsn = 1000
        self.exp_cmdsn = 1
        self.window = 32
        self.digests = (False, False)
        self.want_digests = (False, False)
        self.logged_in = False
        self.scsi = None               # callable(pdu) -> list of PDUs
        self.text_chunk = None         # split SendTargets answers into chunks of this size
        self.text_cont_flag = False    # set C on partial answers (tgt does not)
        self.send_targets_data = b''
        self.redirect_to = None
        self.before_response = []      # PDUs injected before the next response
        self.connections = []
        self.closed = False
        self._text_pos = {}

    def sn(self):
        self.statsn += 1
        return self.statsn

    def max_cmdsn(self):
        return self.exp_cmdsn + self.window - 1

    def respond(self, pdu):
        self.sent.append(pdu)
        f = P.request_fields(pdu)
        if not pdu.immediate and pdu.opcode in (P.OP_SCSI_CMD, P.OP_TEXT_REQ):
            self.exp_cmdsn = f['cmdsn'] + 1
        out = list(self.before_response)
        self.before_response = []
        if pdu.opcode == P.OP_LOGIN_REQ:
            if self.redirect_to:
                out.append(P.login_response(f['isid'], 0, f['itt'], 0, 0, 0, f['csg'], 0, False,
                                            encode_text([('TargetAddress', self.redirect_to)]),
                                            status_class=1, status_detail=1))
                return out
            answers = []
            for key, value in decode_text(pdu.data):
                if key in ('HeaderDigest', 'DataDigest'):
                    want = self.want_digests[0 if key == 'HeaderDigest' else 1]
                    choices = value.split(',')
                    answers.append((key, 'CRC32C' if want and 'CRC32C' in choices else choices[-1]))
                elif key in ('MaxRecvDataSegmentLength',):
                    answers.append((key, '8192'))
                elif key not in ('InitiatorName', 'SessionType', 'TargetName', 'AuthMethod'):
                    answers.append((key, value))
            nsg = f['nsg'] if f['transit'] else 0
            out.append(P.login_response(f['isid'], 0x42 if nsg == 3 else 0, f['itt'], self.sn(), self.exp_cmdsn,
                                        self.max_cmdsn(), f['csg'], nsg, f['transit'], encode_text(answers)))
            if nsg == 3:
                self.logged_in = True
                hd = dict(decode_text(pdu.data)).get('HeaderDigest', '')
                dd = dict(decode_text(pdu.data)).get('DataDigest', '')
                self.digests = (self.want_digests[0] and 'CRC32C' in hd, self.want_digests[1] and 'CRC32C' in dd)
            return out
        if pdu.opcode == P.OP_TEXT_REQ:
            itt = f['itt']
            pos = self._text_pos.get(itt, 0)
            data = self.send_targets_data
            chunk = self.text_chunk or len(data) or 1
            piece = data[pos:pos + chunk]
            self._text_pos[itt] = pos + len(piece)
            final = self._text_pos[itt] >= len(data)
            out.append(P.text_response(itt, P.RESERVED_TAG if final else 0x500 + pos, self.sn(), self.exp_cmdsn,
                                       self.max_cmdsn(), piece, final=final,
                                       cont=(not final and self.text_cont_flag)))
            return out
        if pdu.opcode == P.OP_SCSI_CMD:
            out.extend(self.scsi(pdu, self))
            return out
        if pdu.opcode == P.OP_NOP_OUT:
            if f['itt'] != P.RESERVED_TAG:
                out.append(P.nop_in(f['itt'], P.RESERVED_TAG, self.sn(), self.exp_cmdsn, self.max_cmdsn(),
                                    data=pdu.data))
            return out
        if pdu.opcode == P.OP_LOGOUT_REQ:
            out.append(P.logout_response(f['itt'], self.sn(), self.exp_cmdsn, self.max_cmdsn()))
            self.closed = True
            return out
        raise AssertionError('unexpected %r' % pdu)

    def requests(self, opcode):
        return [p for p in self.sent if p.opcode == opcode]


class FakeSocket(object):
    def __init__(self, target, address, chunk=None, delay=0.0):
        self.target = target
        self.address = address
        self.inbuf = bytearray()
        self.outbuf = b''
        self.chunk = chunk
        self.delay = delay
        self.timeout = None

    def settimeout(self, value):
        self.timeout = value

    def setsockopt(self, *args):
        pass

    def getpeername(self):
        return self.address

    def getsockname(self):
        return ('127.0.0.1', 40000)

    def sendall(self, data):
        self.outbuf += data
        while True:
            hd = self.target.logged_in and self.target.digests[0]
            dd = self.target.logged_in and self.target.digests[1]
            try:
                pdu, used = P.decode_pdu(self.outbuf, header_digest=hd, data_digest=dd)
            except P.ISCSITruncatedError:
                return
            self.outbuf = self.outbuf[used:]
            was_in = self.target.logged_in
            for rsp in self.target.respond(pdu):
                hd = was_in and self.target.digests[0]
                dd = was_in and self.target.digests[1]
                self.inbuf += rsp.encode(hd, dd)

    def recv_into(self, view, n):
        if not self.inbuf:
            if self.target.closed:
                return 0
            raise socket.timeout('timed out')
        if self.delay:
            time.sleep(self.delay)
        k = min(n, len(self.inbuf), self.chunk or n)
        view[:k] = self.inbuf[:k]
        del self.inbuf[:k]
        return k

    def close(self):
        pass


def make_session(target, chunk=None, delay=0.0, **kw):
    def factory(address, timeout):
        target.connections.append(address)
        target.closed = False
        return FakeSocket(target, address, chunk, delay)
    kw.setdefault('timeout', 1.0)
    return Session('192.0.2.10', 3260, initiator_name=INIT, sock_factory=factory, **kw)


def good_inquiry(pdu, target):
    f = P.request_fields(pdu)
    data = bytes([0, 0, 5, 2, 31, 0, 0, 0]) + b'VENDOR  PRODUCT-NAME    0001'
    return [P.data_in(f['itt'], 0, 0, data, target.exp_cmdsn, target.max_cmdsn(), status=0,
                      statsn=target.sn())]


# --------------------------------------------------------------------------------------------- login / logout
def test_login_logout_and_sequence_numbers():
    target = MiniTarget()
    s = make_session(target, target_name=TGT)
    info = s.login()
    assert s.state == 'logged_in' and info['portal'] == '192.0.2.10:3260' and info['redirects'] == []
    assert s.tsih == 0x42 and s.exp_statsn == target.statsn + 1
    assert s.target_max_recv == 8192
    target.scsi = good_inquiry
    result = s.scsi_command(0, cdb_inquiry(), 255)
    assert result.status == 0 and result.data[8:16] == b'VENDOR  '
    cmd = P.request_fields(target.requests(P.OP_SCSI_CMD)[0])
    login_cmdsn = P.request_fields(target.requests(P.OP_LOGIN_REQ)[0])['cmdsn']
    assert cmd['cmdsn'] == login_cmdsn and not cmd['immediate']      # first command reuses the login CmdSN
    assert s.logout() == 0
    logout = P.request_fields(target.requests(P.OP_LOGOUT_REQ)[0])
    assert logout['reason'] == 0 and logout['immediate'] and logout['exp_statsn'] == target.statsn
    assert logout['cmdsn'] == cmd['cmdsn'] + 1
    assert s.state == 'closed'
    with pytest.raises(ISCSIStateError):
        s.scsi_command(0, cdb_test_unit_ready(), 0)


def test_context_manager_logs_out():
    target = MiniTarget()
    with make_session(target, target_name=TGT) as s:
        s.login()
    assert len(target.requests(P.OP_LOGOUT_REQ)) == 1 and s.state == 'closed'


def test_target_closing_at_auth_method_none_is_an_authentication_failure():
    """LIO closes the connection without a Login Response when a portal requires CHAP and AuthMethod=None is offered:
    the portal is reachable and the error says CHAP is most likely missing."""
    target = MiniTarget()
    target.respond = lambda pdu: (target.sent.append(pdu), setattr(target, "closed", True), [])[2]
    s = make_session(target, target_name=TGT)
    with pytest.raises(ISCSIAuthError) as info:
        s.login()
    assert "most likely because it requires CHAP" in str(info.value) and not info.value.retryable
    assert s.reached_target is True
    # with CHAP offered, the same close stays a connection error
    target2 = MiniTarget()
    target2.respond = lambda pdu: (target2.sent.append(pdu), setattr(target2, "closed", True), [])[2]
    s2 = make_session(target2, target_name=TGT, chap=ChapCredentials("user", "secret-secret1"))
    with pytest.raises(ISCSIConnectionError) as info2:
        s2.login()
    assert not isinstance(info2.value, ISCSIAuthError) and "the target closed the connection" in str(info2.value)


def test_login_twice_refused():
    target = MiniTarget()
    s = make_session(target, target_name=TGT)
    s.login()
    with pytest.raises(ISCSIStateError):
        s.login()


def test_redirect_followed_then_loop_capped():
    target = MiniTarget()
    target.redirect_to = '[2001:db8::7]:3261,1'
    s = make_session(target, target_name=TGT, max_redirects=3)
    with pytest.raises(ISCSIRedirectError, match='more than 3 redirects') as info:
        s.login()
    assert not info.value.retryable
    assert target.connections == [('192.0.2.10', 3260)] + [('2001:db8::7', 3261)] * 3
    assert s.redirects == ['[2001:db8::7]:3261'] * 4


def test_redirect_then_success():
    target = MiniTarget()
    target.redirect_to = '198.51.100.9:3262'

    def factory(address, timeout):
        target.connections.append(address)
        if address[0] == '198.51.100.9':
            target.redirect_to = None
        return FakeSocket(target, address)
    s = Session('192.0.2.10', 3260, initiator_name=INIT, target_name=TGT, sock_factory=factory)
    info = s.login()
    assert info['portal'] == '198.51.100.9:3262' and info['redirects'] == ['198.51.100.9:3262']


# --------------------------------------------------------------------------------------------- SendTargets
ST_DATA = b''.join(
    encode_text([('TargetName', 'iqn.2024-01.test:%s-%03d' % ('x' * 40, i)),
                 ('TargetAddress', '192.0.2.10:3260,1'), ('TargetAddress', '[2001:db8::10]:3260,1')])
    for i in range(30))


@pytest.mark.parametrize('cont_flag', [False, True])
@pytest.mark.parametrize('chunk', [7, 512, 100000])
def test_send_targets_continuation(chunk, cont_flag):
    target = MiniTarget()
    target.send_targets_data = ST_DATA
    target.text_chunk = chunk
    target.text_cont_flag = cont_flag
    s = make_session(target)
    s.login()
    targets = s.send_targets()
    assert len(targets) == 30
    assert targets[29]['name'] == 'iqn.2024-01.test:%s-029' % ('x' * 40)
    assert targets[0]['portals'] == [{'address': '192.0.2.10', 'port': 3260, 'tpgt': 1},
                                     {'address': '2001:db8::10', 'port': 3260, 'tpgt': 1}]
    reqs = [P.request_fields(p) for p in target.requests(P.OP_TEXT_REQ)]
    expected_rounds = -(-len(ST_DATA) // chunk)
    assert len(reqs) == expected_rounds
    assert len({r['itt'] for r in reqs}) == 1
    assert all(r['final'] and not r['cont'] for r in reqs)
    assert reqs[0]['ttt'] == P.RESERVED_TAG
    for i, r in enumerate(reqs[1:]):
        assert r['ttt'] == 0x500 + i * chunk                              # TTT echoed
    assert [r['cmdsn'] for r in reqs] == list(range(reqs[0]['cmdsn'], reqs[0]['cmdsn'] + len(reqs)))
    assert all(p.data == b'' for p in target.requests(P.OP_TEXT_REQ)[1:])


def test_send_targets_without_address_uses_discovery_portal():
    target = MiniTarget()
    target.send_targets_data = encode_text([('TargetName', 'iqn.2024-01.test:a')])
    s = make_session(target)
    s.login()
    assert s.send_targets() == [{'name': 'iqn.2024-01.test:a', 'alias': None,
                                 'portals': [{'address': '192.0.2.10', 'port': 3260, 'tpgt': None}]}]


def test_send_targets_bounded():
    target = MiniTarget()
    target.send_targets_data = ST_DATA
    target.text_chunk = 16
    s = make_session(target, max_text_rounds=10)
    s.login()
    with pytest.raises(ISCSILimitError, match='more than 10'):
        s.send_targets()
    target2 = MiniTarget()
    target2.send_targets_data = ST_DATA
    s2 = make_session(target2, max_text_bytes=1000)
    s2.login()
    with pytest.raises(ISCSILimitError, match='larger than 1000'):
        s2.send_targets()


def test_send_targets_only_in_discovery_and_scsi_only_in_normal():
    target = MiniTarget()
    s = make_session(target, target_name=TGT)
    s.login()
    with pytest.raises(ISCSIStateError, match='Discovery'):
        s.send_targets()
    d = make_session(MiniTarget())
    d.login()
    with pytest.raises(ISCSIStateError, match='Normal'):
        d.scsi_command(0, cdb_test_unit_ready(), 0)


# --------------------------------------------------------------------------------------------- NOP-In, async, reject
def test_unsolicited_nop_in_is_answered():
    target = MiniTarget()
    target.scsi = good_inquiry
    s = make_session(target, target_name=TGT)
    s.login()
    lun = P.encode_lun(3)
    target.before_response = [P.nop_in(P.RESERVED_TAG, 0x7777, target.statsn + 1, target.exp_cmdsn,
                                       target.max_cmdsn(), lun=lun),
                              P.nop_in(P.RESERVED_TAG, P.RESERVED_TAG, target.statsn + 1, target.exp_cmdsn,
                                       target.max_cmdsn())]
    exp_statsn = s.exp_statsn
    assert s.scsi_command(0, cdb_inquiry(), 255).status == 0
    nops = [P.request_fields(p) for p in target.requests(P.OP_NOP_OUT)]
    assert len(nops) == 1 and s.nop_ins_answered == 1                 # TTT=FFFFFFFF needs no answer
    nop = nops[0]
    assert nop['itt'] == P.RESERVED_TAG and nop['ttt'] == 0x7777 and nop['immediate'] and nop['lun'] == lun
    assert nop['exp_statsn'] == exp_statsn                            # unsolicited NOP-In does not advance StatSN


def test_async_messages():
    target = MiniTarget()
    target.scsi = good_inquiry
    s = make_session(target, target_name=TGT)
    s.login()
    target.before_response = [P.async_message(1, target.statsn + 1, target.exp_cmdsn, target.max_cmdsn())]
    s.scsi_command(0, cdb_inquiry(), 255)
    assert s.logout_requested and s.async_events == [1]
    target.before_response = [P.async_message(2, target.statsn + 1, target.exp_cmdsn, target.max_cmdsn())]
    with pytest.raises(ISCSIConnectionError, match='drop this connection'):
        s.scsi_command(0, cdb_inquiry(), 255)


def test_reject_of_our_command():
    target = MiniTarget()
    s = make_session(target, target_name=TGT)
    s.login()
    target.scsi = lambda pdu, t: [P.reject(0x05, bytes(pdu.bhs), t.sn(), t.exp_cmdsn, t.max_cmdsn())]
    with pytest.raises(ISCSIRejectError, match='0x05 \\(command not supported\\)'):
        s.scsi_command(0, cdb_inquiry(), 255)


@pytest.mark.parametrize('make, match', [
    (lambda f, t: [P.data_in(f['itt'] + 1, 0, 0, b'x', 1, 9, status=0)], 'for task'),
    (lambda f, t: [P.text_response(f['itt'], P.RESERVED_TAG, 1, 1, 9)], 'unexpected Text Response'),
    (lambda f, t: [P.data_in(f['itt'], 0, 250, b'x' * 10, 1, 9, status=0)], 'beyond the expected'),
    (lambda f, t: [_no_final(P.data_in(f['itt'], 0, 0, b'x', 1, 9, status=0))], 'without the F bit'),
])
def test_scsi_protocol_violations(make, match):
    target = MiniTarget()
    s = make_session(target, target_name=TGT)
    s.login()
    target.scsi = lambda pdu, t: make(P.request_fields(pdu), t)
    with pytest.raises(ISCSIProtocolError, match=match):
        s.scsi_command(0, cdb_inquiry(), 255)


def _no_final(pdu):
    pdu.flags = pdu.flags & ~0x80
    return pdu


# --------------------------------------------------------------------------------------------- SCSI data path
def test_data_in_sequence_and_status_in_response_with_sense():
    target = MiniTarget()
    s = make_session(target, target_name=TGT)
    s.login()
    sense = bytes([0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x25, 0x00, 0, 0, 0, 0])

    def scsi(pdu, t):
        f = P.request_fields(pdu)
        return [P.data_in(f['itt'], 0, 0, b'AAAA', t.exp_cmdsn, t.max_cmdsn()),
                P.data_in(f['itt'], 1, 4, b'BBBB', t.exp_cmdsn, t.max_cmdsn()),
                P.scsi_response(f['itt'], t.sn(), t.exp_cmdsn, t.max_cmdsn(), status=2, sense=sense,
                                residual=247, underflow=True)]
    target.scsi = scsi
    result = s.scsi_command(1, cdb_inquiry(), 255)
    assert result.status == 2 and result.data == b'AAAABBBB' and result.sense == sense
    assert result.underflow and result.residual == 247 and not result.status_in_data_in


def test_data_in_out_of_order_offsets_and_residual_in_data_in():
    target = MiniTarget()
    s = make_session(target, target_name=TGT)
    s.login()

    def scsi(pdu, t):
        f = P.request_fields(pdu)
        return [P.data_in(f['itt'], 1, 8, b'CCCCDDDD', t.exp_cmdsn, t.max_cmdsn()),
                P.data_in(f['itt'], 0, 0, b'AAAABBBB', t.exp_cmdsn, t.max_cmdsn(), status=0, statsn=t.sn(),
                          residual=16, underflow=True)]
    target.scsi = scsi
    result = s.scsi_command(1, cdb_inquiry(32), 32)
    assert result.data == b'AAAABBBBCCCCDDDD' and result.status_in_data_in and result.residual == 16


def test_scsi_response_target_failure():
    target = MiniTarget()
    s = make_session(target, target_name=TGT)
    s.login()
    target.scsi = lambda pdu, t: [P.scsi_response(P.request_fields(pdu)['itt'], t.sn(), t.exp_cmdsn,
                                                  t.max_cmdsn(), response=1)]
    with pytest.raises(ISCSISCSIError, match='target failure') as info:
        s.scsi_command(0, cdb_test_unit_ready(), 0)
    assert info.value.retryable


def test_closed_command_window_waits_for_nop_in():
    target = MiniTarget()
    target.window = 0                          # MaxCmdSN = ExpCmdSN - 1: window closed at login
    target.scsi = good_inquiry
    s = make_session(target, target_name=TGT)
    s.login()
    assert _sn_lt(s.max_cmdsn, s.cmdsn)
    # the target opens the window with a NOP-In (queued for the next read)
    s.transport.sock.inbuf += P.nop_in(P.RESERVED_TAG, P.RESERVED_TAG, target.statsn + 1, target.exp_cmdsn,
                                       target.exp_cmdsn + 4).encode()
    target.window = 5
    assert s.scsi_command(0, cdb_inquiry(), 255).status == 0


def test_closed_window_never_opened_times_out():
    target = MiniTarget()
    target.window = 0
    s = make_session(target, target_name=TGT, timeout=0.05)
    s.login()
    with pytest.raises(ISCSITimeout):
        s.scsi_command(0, cdb_inquiry(), 255)


# --------------------------------------------------------------------------------------------- digests, ping
def test_crc32c_digests_after_login_and_ping_echo():
    target = MiniTarget()
    target.want_digests = (True, True)
    s = make_session(target, target_name=TGT, header_digest=('CRC32C', 'None'), data_digest=('CRC32C', 'None'))
    info = s.login()
    assert info['negotiated']['HeaderDigest'] == 'CRC32C' and info['negotiated']['DataDigest'] == 'CRC32C'
    assert s.header_digest and s.data_digest
    assert s.ping(b'hello digests') >= 0
    target.scsi = good_inquiry
    assert s.scsi_command(0, cdb_inquiry(), 255).status == 0
    # corrupt the next data digest on the wire
    target.scsi = good_inquiry
    orig = s.transport.sock.sendall

    def corrupting(data):
        orig(data)
        s.transport.sock.inbuf[-1] ^= 0xFF
    s.transport.sock.sendall = corrupting
    with pytest.raises(ISCSIDigestError, match='data digest'):
        s.scsi_command(0, cdb_inquiry(), 255)


def test_ping_wrong_echo():
    target = MiniTarget()
    s = make_session(target, target_name=TGT)
    s.login()
    orig = target.respond

    def bad_echo(pdu):
        out = orig(pdu)
        for rsp in out:
            if rsp.opcode == P.OP_NOP_IN:
                rsp.data = b'other'
        return out
    target.respond = bad_echo
    with pytest.raises(ISCSIProtocolError, match='echo'):
        s.ping(b'hello')


# --------------------------------------------------------------------------------------------- timeouts
def test_silent_target_times_out_quickly():
    target = MiniTarget()
    target.respond = lambda pdu: []
    s = make_session(target, target_name=TGT, timeout=0.2)
    start = time.monotonic()
    with pytest.raises(ISCSITimeout, match='no answer'):
        s.login()
    assert time.monotonic() - start < 1.0
    assert s.state == 'closed'


def test_trickling_target_hits_total_deadline():
    target = MiniTarget()
    s = make_session(target, target_name=TGT, chunk=1, delay=0.01, timeout=5.0, operation_timeout=0.2)
    start = time.monotonic()
    with pytest.raises(ISCSITimeout, match='total time limit'):
        s.login()
    assert time.monotonic() - start < 1.5


def test_connect_errors_are_library_errors():
    def refuse(address, timeout):
        raise ConnectionRefusedError(111, 'Connection refused')

    def slow(address, timeout):
        raise socket.timeout('timed out')
    s = Session('192.0.2.1', 3260, initiator_name=INIT, sock_factory=refuse)
    with pytest.raises(ISCSIConnectionError, match='cannot connect to 192.0.2.1:3260: Connection refused') as info:
        s.login()
    assert info.value.retryable
    s = Session('192.0.2.1', 3260, initiator_name=INIT, sock_factory=slow)
    with pytest.raises(ISCSITimeout):
        s.login()


def test_session_deadline_caps_every_operation():
    target = MiniTarget()
    s = make_session(target, target_name=TGT, deadline=time.monotonic() - 1)
    with pytest.raises(ISCSITimeout, match='total time limit'):
        s.login()


def test_serial_number_arithmetic():
    assert _sn_lt(1, 2) and not _sn_lt(2, 1) and not _sn_lt(5, 5)
    assert _sn_lt(0xFFFFFFFF, 0) and not _sn_lt(0, 0xFFFFFFFF)
