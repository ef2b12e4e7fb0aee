# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to the openiscsi.initiator collection: not a public API, may change without notice.

"""iSCSI session over TCP: connect with timeouts, login (following redirects with a hop cap), SendTargets, SCSI
commands, NOP-In answering, logout.  One connection per session, one outstanding command at a time.

Every socket operation has a timeout (``timeout``) and every public operation a total deadline
(``operation_timeout``, plus an optional absolute ``deadline`` for the whole session) so a peer that trickles
bytes cannot hold us forever.  Received data segments are bounded by the MaxRecvDataSegmentLength we declared,
text responses by ``max_text_bytes`` and ``max_text_rounds``.
"""

from __future__ import annotations

import select
import socket
import time

from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_errors import (
    ISCSIAuthError,
    ISCSIConnectionError,
    ISCSIError,
    ISCSIProtocolError,
    ISCSIRedirectError,
    ISCSIRejectError,
    ISCSISCSIError,
    ISCSIStateError,
    ISCSITimeout,
    ISCSITruncatedError,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_login import (
    LoginNegotiator,
    LoginParams,
    LoginRedirect,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_pdu import (
    OP_ASYNC,
    OP_DATA_IN,
    OP_LOGIN_RSP,
    OP_LOGOUT_RSP,
    OP_NOP_IN,
    OP_REJECT,
    OP_SCSI_RSP,
    OP_TEXT_RSP,
    RESERVED_TAG,
    TARGET_OPCODES,
    data_in_fields,
    logout_request,
    nop_out,
    read_pdu,
    scsi_command,
    scsi_response_fields,
    text_request,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_text import (
    TextBuffer,
    encode_text,
    format_portal,
    parse_send_targets,
)

DEFAULT_PORT = 3260
LOGOUT_RESPONSES = {
    0: 'connection or session closed successfully',
    1: 'CID not found',
    2: 'connection recovery is not supported',
    3: 'cleanup failed for various reasons',
}
ASYNC_EVENTS = {
    0: 'SCSI asynchronous event',
    1: 'target requests logout',
    2: 'target will drop this connection',
    3: 'target will drop all connections of the session',
    4: 'target requests parameter negotiation',
}


def _sn_lt(a, b):
    """Serial number arithmetic (RFC 1982, 32 bits): a < b."""
    return a != b and ((b - a) & 0xFFFFFFFF) < 0x80000000


class Transport(object):
    """A TCP connection with a per-operation timeout and an absolute deadline (time.monotonic())."""

    def __init__(self, timeout=10.0, sock_factory=None):
        self.timeout = float(timeout)
        self.deadline = None
        self.sock = None
        self._sock_factory = sock_factory or socket.create_connection
        self.peer = None
        self.local = None
        self.bytes_received = 0

    def _budget(self, what):
        if self.deadline is None:
            return self.timeout
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise ISCSITimeout('total time limit exceeded while %s' % what)
        return min(self.timeout, remaining)

    def _timed_out(self, what, budget):
        if budget < self.timeout:
            return ISCSITimeout('total time limit exceeded while %s' % what)
        return ISCSITimeout('no answer from the target within %.3g s while %s' % (self.timeout, what))

    def connect(self, host, port):
        self.close()
        budget = self._budget('connecting')
        try:
            sock = self._sock_factory((host, port), budget)
        except socket.timeout:
            raise self._timed_out('connecting to %s' % format_portal(host, port), budget)
        except socket.gaierror as exc:
            raise ISCSIConnectionError('cannot resolve %s: %s' % (host, exc.strerror or exc), retryable=False)
        except OSError as exc:
            raise ISCSIConnectionError('cannot connect to %s: %s' % (format_portal(host, port), exc.strerror or exc))
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass
        self.sock = sock
        try:
            self.peer = sock.getpeername()[:2]
            self.local = sock.getsockname()[:2]
        except OSError:
            self.peer = (host, port)

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def send(self, data):
        if self.sock is None:
            raise ISCSIConnectionError('not connected')
        budget = self._budget('sending')
        try:
            self.sock.settimeout(budget)
            self.sock.sendall(data)
        except socket.timeout:
            raise self._timed_out('sending', budget)
        except OSError as exc:
            raise ISCSIConnectionError('connection lost while sending: %s' % (exc.strerror or exc))

    def recv_exact(self, n, at_boundary=False):
        """Exactly ``n`` bytes.  EOF before the first byte of a PDU is a closed connection; later, a truncated PDU."""
        if self.sock is None:
            raise ISCSIConnectionError('not connected')
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            budget = self._budget('receiving')
            try:
                self.sock.settimeout(budget)
                count = self.sock.recv_into(view[got:], n - got)
            except socket.timeout:
                raise self._timed_out('waiting for data', budget)
            except OSError as exc:
                raise ISCSIConnectionError('connection lost while receiving: %s' % (exc.strerror or exc))
            if count == 0:
                if at_boundary and got == 0:
                    raise ISCSIConnectionError('the target closed the connection')
                raise ISCSITruncatedError('the target closed the connection in the middle of a PDU')
            got += count
            self.bytes_received += count
        return bytes(buf)

    def readable(self, wait):
        """True when data (or EOF) is waiting within ``wait`` seconds."""
        if self.sock is None:
            return False
        ready = select.select([self.sock], [], [], max(0.0, wait))[0]
        return bool(ready)


class ScsiResult(object):
    """Outcome of one SCSI command: status, data read, raw sense bytes, residual information."""

    __slots__ = ('status', 'data', 'sense', 'response', 'residual', 'underflow', 'overflow', 'status_in_data_in')

    def __init__(self, status, data=b'', sense=b'', response=0, residual=0, underflow=False, overflow=False,
                 status_in_data_in=False):
        self.status = status
        self.data = data
        self.sense = sense
        self.response = response
        self.residual = residual
        self.underflow = underflow
        self.overflow = overflow
        self.status_in_data_in = status_in_data_in

    def __repr__(self):
        return '<ScsiResult status=0x%02x data=%d sense=%d residual=%d>' % (
            self.status, len(self.data), len(self.sense), self.residual)


class Session(object):
    """One iSCSI session (one connection).  ``target_name=None`` opens a Discovery session.

    Typical use::

        with Session('192.0.2.1', 3260, initiator_name=iqn, target_name=tgt, chap=creds) as s:
            s.login()
            luns = report_luns(s)
    """

    def __init__(self, host, port=DEFAULT_PORT, initiator_name=None, target_name=None, chap=None, isid=None,
                 timeout=10.0, operation_timeout=30.0, deadline=None, max_redirects=4,
                 header_digest=('None',), data_digest=('None',), max_recv_data_segment_length=262144,
                 max_text_bytes=1048576, max_text_rounds=4096, login_values=None, login_offer=None,
                 sock_factory=None):
        self.host = host
        self.port = int(port)
        self.target_name = target_name
        self.params = LoginParams(initiator_name, target_name=target_name, isid=isid, chap=chap,
                                  header_digest=header_digest, data_digest=data_digest,
                                  max_recv_data_segment_length=max_recv_data_segment_length,
                                  values=login_values, offer=login_offer)
        self.transport = Transport(timeout, sock_factory)
        self.operation_timeout = float(operation_timeout)
        self.session_deadline = deadline
        self.max_redirects = max_redirects
        self.max_text_bytes = max_text_bytes
        self.max_text_rounds = max_text_rounds
        self.state = 'new'
        self.redirects = []
        self.portal = None
        self.login_info = None
        self.header_digest = False
        self.data_digest = False
        self.max_recv = max(8192, max_recv_data_segment_length)
        self.target_max_recv = 8192
        self.tsih = 0
        self._itt = 0
        self.cmdsn = 1
        self.exp_statsn = 0
        self.exp_cmdsn = 1
        self.max_cmdsn = 1
        self.nop_ins_answered = 0
        self.async_events = []
        self.logout_requested = False
        self.reached_target = False
        self.text_pdus = 0              # Text Response PDUs of the last SendTargets

    # ------------------------------------------------------------------ plumbing
    @property
    def isid(self):
        return self.params.isid

    @property
    def discovery(self):
        return self.params.discovery

    def _begin(self, timeout=None):
        limit = time.monotonic() + (self.operation_timeout if timeout is None else timeout)
        if self.session_deadline is not None:
            limit = min(limit, self.session_deadline)
        self.transport.deadline = limit

    def _next_itt(self):
        self._itt = (self._itt + 1) & 0xFFFFFFFF
        if self._itt == RESERVED_TAG:
            self._itt = 1
        return self._itt

    def _send(self, pdu):
        self.transport.send(pdu.encode(self.header_digest, self.data_digest))

    def _read(self, allowed=TARGET_OPCODES, max_data=None):
        first = [True]

        def rx(n):
            at_boundary = first[0]
            first[0] = False
            return self.transport.recv_exact(n, at_boundary)
        return read_pdu(rx, self.max_recv if max_data is None else max_data, self.header_digest, self.data_digest,
                        allowed)

    def _update_sn(self, pdu, has_statsn):
        if has_statsn:
            statsn = pdu.u32(24)
            nxt = (statsn + 1) & 0xFFFFFFFF
            if _sn_lt(self.exp_statsn, nxt):
                self.exp_statsn = nxt
        exp_cmdsn = pdu.u32(28)
        max_cmdsn = pdu.u32(32)
        # RFC 7143 4.2.2.1: ignore the window update when MaxCmdSN < ExpCmdSN - 1.
        if not _sn_lt(max_cmdsn, (exp_cmdsn - 1) & 0xFFFFFFFF):
            if _sn_lt(self.exp_cmdsn, exp_cmdsn):
                self.exp_cmdsn = exp_cmdsn
            if _sn_lt(self.max_cmdsn, max_cmdsn):
                self.max_cmdsn = max_cmdsn

    def _answer_nop_in(self, pdu):
        ttt = pdu.u32(20)
        if ttt != RESERVED_TAG:
            self._send(nop_out(RESERVED_TAG, ttt, self.cmdsn, self.exp_statsn, lun=pdu.lun, immediate=True))
            self.nop_ins_answered += 1

    def _handle_unsolicited(self, pdu):
        """NOP-In pings, async messages.  Returns True when the PDU was consumed."""
        op = pdu.opcode
        if op == OP_NOP_IN and pdu.itt == RESERVED_TAG:
            self._update_sn(pdu, False)
            self._answer_nop_in(pdu)
            return True
        if op == OP_ASYNC:
            self._update_sn(pdu, True)
            event = pdu.u8(36)
            self.async_events.append(event)
            if event == 1:
                self.logout_requested = True
            elif event in (2, 3):
                raise ISCSIConnectionError('target announced: %s' % ASYNC_EVENTS[event])
            return True
        return False

    def _receive(self, itt, opcodes, context):
        """Next PDU for task ``itt`` with one of ``opcodes``; answers NOP-Ins and consumes async messages."""
        while True:
            pdu = self._read()
            if self._handle_unsolicited(pdu):
                continue
            op = pdu.opcode
            if op == OP_REJECT:
                self._update_sn(pdu, True)
                rejected_itt = None
                if len(pdu.data) >= 20:
                    rejected_itt = int.from_bytes(pdu.data[16:20], 'big')
                if rejected_itt in (None, itt):
                    raise ISCSIRejectError(pdu.u8(2), context)
                continue
            if pdu.itt != itt:
                raise ISCSIProtocolError('unexpected %s for task 0x%08x while waiting for the %s answer'
                                         % (pdu.name, pdu.itt, context))
            if op not in opcodes:
                raise ISCSIProtocolError('unexpected %s while waiting for the %s answer'
                                         % (pdu.name, context))
            return pdu

    def _require(self, state, discovery=None):
        if self.state != state:
            raise ISCSIStateError('session is %s, needs to be %s' % (self.state, state))
        if discovery is True and not self.discovery:
            raise ISCSIStateError('SendTargets needs a Discovery session (tgt drops Normal sessions that try)')
        if discovery is False and self.discovery:
            raise ISCSIStateError('SCSI commands need a Normal session')

    # ------------------------------------------------------------------ login
    def login(self, timeout=None):
        """Connect and log in, following redirects up to ``max_redirects`` hops.  Returns the login summary."""
        if self.state != 'new':
            raise ISCSIStateError('login() is allowed once per session object')
        self._begin(timeout)
        host, port = self.host, self.port
        hops = 0
        while True:
            try:
                self.transport.connect(host, port)
                negotiator = LoginNegotiator(self.params, itt=self._next_itt(), cmdsn=self.cmdsn)
                self._send(negotiator.first_request())
                while True:
                    try:
                        pdu = self._read(allowed=(OP_LOGIN_RSP, OP_REJECT), max_data=self.max_recv)
                    except ISCSIConnectionError as exc:
                        if negotiator.rounds or isinstance(exc, (ISCSITimeout, ISCSITruncatedError)):
                            raise
                        raise self._closed_at_login(negotiator, exc)
                    self.reached_target = True
                    nxt = negotiator.handle(pdu)
                    if nxt is None:
                        break
                    self._send(nxt)
            except LoginRedirect as redirect:
                self.transport.close()
                hops += 1
                self.redirects.append(format_portal(redirect.address, redirect.port))
                if hops > self.max_redirects:
                    raise ISCSIRedirectError('more than %d redirects (redirect loop or too long a chain); the last '
                                             'one pointed to %s' % (self.max_redirects, self.redirects[-1]),
                                             retryable=False)
                host, port = redirect.address, redirect.port
                continue
            except BaseException:
                self.transport.close()
                self.state = 'closed'
                raise
            break
        self.portal = (host, port)
        self.login_info = negotiator.summary()
        self.tsih = negotiator.tsih
        self.exp_statsn = negotiator.exp_statsn
        self.exp_cmdsn = negotiator.exp_cmdsn
        self.max_cmdsn = negotiator.max_cmdsn
        neg = negotiator.negotiated
        self.header_digest = neg.get('HeaderDigest') == 'CRC32C'
        self.data_digest = neg.get('DataDigest') == 'CRC32C'
        self.target_max_recv = neg.get('TargetMaxRecvDataSegmentLength', 8192)
        self.state = 'logged_in'
        info = dict(self.login_info)
        info['portal'] = format_portal(host, port)
        info['redirects'] = list(self.redirects)
        return info

    def _closed_at_login(self, negotiator, exc):
        """The target accepted the connection, read the first Login Request and closed the connection without a
        Login Response.  With ``AuthMethod=None`` offered this is how LIO ends a security negotiation it cannot
        accept (a portal that requires CHAP): say so, and do not call the portal unreachable."""
        if negotiator.auth_offer() != ['None'] or not str(exc).startswith('the target closed'):
            return exc
        self.reached_target = True
        return ISCSIAuthError(
            'the target closed the connection in answer to the login request, without a Login Response: it ended '
            'the security negotiation, most likely because it requires CHAP and the initiator offered '
            'AuthMethod=None (no CHAP credentials are set); give the node record (or discovery record) its CHAP '
            'user name and password')

    # ------------------------------------------------------------------ discovery
    def send_targets(self, value='All', timeout=None):
        """SendTargets in a Discovery session; returns ``[{'name', 'alias', 'portals'}]`` with continuation."""
        self._require('logged_in', discovery=True)
        self._begin(timeout)
        itt = self._next_itt()
        ttt = RESERVED_TAG
        buf = TextBuffer(self.max_text_bytes, self.max_text_rounds)
        data = encode_text([('SendTargets', value)])
        while True:
            self._send(text_request(itt, ttt, self.cmdsn, self.exp_statsn, data, final=True))
            self.cmdsn = (self.cmdsn + 1) & 0xFFFFFFFF
            pdu = self._receive(itt, (OP_TEXT_RSP,), 'SendTargets')
            self._update_sn(pdu, True)
            buf.add(pdu.data)
            self.text_pdus = buf.rounds
            final, cont = pdu.final, pdu.cont
            if final and cont:
                raise ISCSIProtocolError('Text Response with both F and C bits set')
            if final:
                break
            ttt = pdu.u32(20)
            data = b''
        targets = parse_send_targets(buf.pairs())
        here = self.portal or (self.host, self.port)
        for target in targets:
            if not target['portals']:
                # No TargetAddress: the target is reachable where we asked (RFC 7143 appendix C).
                target['portals'].append({'address': here[0], 'port': here[1], 'tpgt': None})
        return targets

    # ------------------------------------------------------------------ SCSI
    def _wait_window(self):
        """Block (answering NOP-Ins) while the target's command window is closed."""
        while _sn_lt(self.max_cmdsn, self.cmdsn):
            pdu = self._read()
            if not self._handle_unsolicited(pdu):
                raise ISCSIProtocolError('unexpected %s while the command window is closed' % pdu.name)

    def scsi_command(self, lun, cdb, expected_length, timeout=None):
        """Run one read (or no-data) SCSI command; returns a :class:`ScsiResult` (status may be non-GOOD)."""
        self._require('logged_in', discovery=False)
        self._begin(timeout)
        if not 0 <= expected_length <= self.max_recv * 64:
            raise ValueError('expected_length out of range')
        self._wait_window()
        itt = self._next_itt()
        self._send(scsi_command(itt, lun, cdb, expected_length, self.cmdsn, self.exp_statsn))
        self.cmdsn = (self.cmdsn + 1) & 0xFFFFFFFF
        buf = bytearray(expected_length)
        extent = 0
        while True:
            pdu = self._receive(itt, (OP_DATA_IN, OP_SCSI_RSP), 'SCSI command 0x%02x' % bytes(cdb)[0])
            if pdu.opcode == OP_DATA_IN:
                f = data_in_fields(pdu)
                self._update_sn(pdu, f['has_status'])
                end = f['offset'] + len(pdu.data)
                if end > expected_length:
                    raise ISCSIProtocolError('Data-In beyond the expected transfer length (%d > %d)'
                                             % (end, expected_length))
                buf[f['offset']:end] = pdu.data
                extent = max(extent, end)
                if f['has_status']:
                    if not f['final']:
                        raise ISCSIProtocolError('Data-In with status but without the F bit')
                    length = extent
                    if f['underflow']:
                        length = min(extent, max(0, expected_length - f['residual']))
                    return ScsiResult(f['status'], bytes(buf[:length]), b'', 0, f['residual'], f['underflow'],
                                      f['overflow'], True)
                continue
            f = scsi_response_fields(pdu)
            self._update_sn(pdu, True)
            if f['response'] != 0:
                raise ISCSISCSIError('target failure: SCSI Response code 0x%02x' % f['response'],
                                     retryable=True)
            sense = b''
            if len(pdu.data) >= 2:
                sense_len = int.from_bytes(pdu.data[:2], 'big')
                sense = bytes(pdu.data[2:2 + sense_len])
            length = extent
            if f['underflow']:
                length = min(extent, max(0, expected_length - f['residual']))
            return ScsiResult(f['status'], bytes(buf[:length]), sense, f['response'], f['residual'],
                              f['underflow'], f['overflow'], False)

    # ------------------------------------------------------------------ NOP, idle, logout
    def ping(self, data=b'', timeout=None):
        """NOP-Out ping; checks that the target echoes ``data``.  Returns the round-trip time in seconds."""
        self._require('logged_in')
        self._begin(timeout)
        if len(data) > self.target_max_recv:
            raise ValueError('ping data longer than the target accepts')
        itt = self._next_itt()
        start = time.monotonic()
        self._send(nop_out(itt, RESERVED_TAG, self.cmdsn, self.exp_statsn, data=data, immediate=True))
        pdu = self._receive(itt, (OP_NOP_IN,), 'NOP-Out')
        self._update_sn(pdu, True)
        if pdu.data != bytes(data):
            raise ISCSIProtocolError('NOP-In did not echo the ping data')
        return time.monotonic() - start

    def service(self, seconds):
        """Stay idle for ``seconds`` while answering the target's NOP-In pings (keeps the session alive)."""
        self._require('logged_in')
        end = time.monotonic() + seconds
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            if not self.transport.readable(remaining):
                return
            self._begin()
            pdu = self._read()
            if not self._handle_unsolicited(pdu):
                raise ISCSIProtocolError('unexpected %s while idle' % pdu.name)

    def logout(self, timeout=None):
        """Logout (close the session) and close the connection.  Returns the Logout Response code."""
        if self.state != 'logged_in':
            self.close()
            return None
        self._begin(timeout)
        try:
            itt = self._next_itt()
            self._send(logout_request(itt, 0, self.cmdsn, self.exp_statsn, reason=0))
            pdu = self._receive(itt, (OP_LOGOUT_RSP,), 'Logout')
            self._update_sn(pdu, True)
            response = pdu.u8(2)
            if response != 0:
                raise ISCSIError('logout refused: %s' % LOGOUT_RESPONSES.get(response, 'code %d' % response))
            return response
        finally:
            self.close()

    def close(self):
        self.transport.close()
        self.state = 'closed'

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.state == 'logged_in':
            try:
                self.logout(timeout=min(self.operation_timeout, 5.0))
            except ISCSIError:
                pass
        self.close()
        return False
