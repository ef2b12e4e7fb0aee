# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Hostile targets: a small fake server on 127.0.0.1 that misbehaves on purpose.  Each case must end within the
configured time limits with a clear ISCSIError, and without memory growing with what the peer sends."""

from __future__ import annotations

import re
import socket
import threading
import time
import tracemalloc

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _iscsi_pdu as P
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_errors import (
    ISCSIConnectionError,
    ISCSIError,
    ISCSILimitError,
    ISCSIProtocolError,
    ISCSITimeout,
    ISCSITruncatedError,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_probe import probe
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_session import Session
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_text import decode_text, encode_text

from iscsi_tgtd import INITIATOR

TARGET = 'iqn.2024-01.org.example.tgt:hostile'


class Peer(object):
    """The target side of one accepted connection."""

    def __init__(self, conn, stop):
        self.conn = conn
        self.stop = stop
        self.statsn = 500
        conn.settimeout(0.2)

    def recv_exact(self, n):
        buf = b''
        while len(buf) < n:
            if self.stop.is_set():
                raise EOFError
            try:
                chunk = self.conn.recv(n - len(buf))
            except socket.timeout:
                continue
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def read(self):
        return P.read_pdu(self.recv_exact)

    def send(self, data):
        if isinstance(data, P.PDU):
            data = data.encode()
        self.conn.sendall(data)

    def idle(self):
        while not self.stop.is_set():
            try:
                if not self.conn.recv(4096):
                    return
            except socket.timeout:
                continue
            except OSError:
                return

    def login(self):
        """Accept a login without authentication (two exchanges), like a friendly target."""
        while True:
            req = self.read()
            f = P.request_fields(req)
            answers = [(k, v.split(',')[-1] if k.endswith('Digest') else v) for k, v in decode_text(req.data)
                       if k not in ('InitiatorName', 'SessionType', 'TargetName', 'AuthMethod')]
            if f['csg'] == 0:
                answers = [('AuthMethod', 'None')]
            self.statsn += 1
            done = f['nsg'] == 3
            self.send(P.login_response(f['isid'], 7 if done else 0, f['itt'], self.statsn, f['cmdsn'],
                                       f['cmdsn'] + 16, f['csg'], f['nsg'], True, encode_text(answers)))
            if done:
                return f


class HostileServer(object):
    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.stop = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.sent = 0
        self.errors = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                conn, _ignored = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self.behaviour(Peer(conn, self.stop), self)
            except (EOFError, OSError, BrokenPipeError):
                pass
            except Exception as exc:              # keep test failures visible
                self.errors.append(exc)
            finally:
                conn.close()

    def close(self):
        self.stop.set()
        self.sock.close()
        self.thread.join(5)
        assert not self.thread.is_alive()
        assert not self.errors, self.errors


@pytest.fixture
def hostile():
    servers = []

    def start(behaviour):
        server = HostileServer(behaviour)
        servers.append(server)
        return server
    yield start
    for server in servers:
        server.close()


def run(port, timeout=1.0, operation_timeout=3.0, discovery=False, **kw):
    """Login (+ SendTargets for discovery); returns (exception, seconds, peak traced bytes)."""
    tracemalloc.start()
    start = time.monotonic()
    s = Session('127.0.0.1', port, initiator_name=INITIATOR, target_name=None if discovery else TARGET,
                timeout=timeout, operation_timeout=operation_timeout, **kw)
    try:
        s.login()
        if discovery:
            s.send_targets()
        s.logout()
    except ISCSIError as exc:
        error = exc
    else:
        error = None
    finally:
        elapsed = time.monotonic() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        s.close()
    return error, elapsed, peak


# --------------------------------------------------------------------------------------------- cases
def test_truncated_pdu_then_close(hostile):
    def behaviour(peer, server):
        peer.read()
        peer.send(P.login_response(b'\x80' * 6, 0, 1, 1, 1, 1, 0, 1, True).encode()[:30])
    error, elapsed, _ignored = run(hostile(behaviour).port)
    assert isinstance(error, ISCSITruncatedError) and 'middle of a PDU' in str(error)
    assert elapsed < 1.0


def test_truncated_pdu_then_silence(hostile):
    def behaviour(peer, server):
        peer.read()
        peer.send(P.login_response(b'\x80' * 6, 0, 1, 1, 1, 1, 0, 1, True).encode()[:30])
        peer.idle()
    error, elapsed, _ignored = run(hostile(behaviour).port, timeout=0.5)
    assert isinstance(error, ISCSITimeout) and 'within 0.5 s' in str(error)
    assert 0.4 < elapsed < 1.5


def test_absurd_data_segment_length(hostile):
    def behaviour(peer, server):
        peer.read()
        bhs = bytearray(P.login_response(b'\x80' * 6, 0, 1, 1, 1, 1, 0, 1, True).encode())
        bhs[5:8] = b'\xff\xff\xff'
        peer.send(bytes(bhs))
        junk = b'\xaa' * 65536
        while not peer.stop.is_set():             # keeps offering data for ever
            peer.send(junk)
    error, elapsed, peak = run(hostile(behaviour).port)
    assert isinstance(error, ISCSILimitError)
    assert 'DataSegmentLength 16777215' in str(error)
    assert elapsed < 1.0 and peak < 512 * 1024


def test_wrong_opcode_during_login(hostile):
    def behaviour(peer, server):
        peer.read()
        peer.send(P.scsi_response(1, 1, 1, 1))
        peer.idle()
    error, elapsed, _ignored = run(hostile(behaviour).port)
    assert isinstance(error, ISCSIProtocolError) and 'opcode 0x21' in str(error)
    assert elapsed < 1.0


def test_wrong_opcode_answering_send_targets(hostile):
    def behaviour(peer, server):
        peer.login()
        f = P.request_fields(peer.read())
        peer.send(P.logout_response(f['itt'], 600, f['cmdsn'] + 1, f['cmdsn'] + 9))
        peer.idle()
    error, elapsed, _ignored = run(hostile(behaviour).port, discovery=True)
    assert isinstance(error, ISCSIProtocolError) and 'unexpected Logout Response' in str(error)
    assert elapsed < 1.0


@pytest.mark.parametrize('piece', [b'', b'TargetName=iqn.2024-01.x:' + b'y' * 80])
def test_never_ending_continuation(hostile, piece):
    def behaviour(peer, server):
        peer.login()
        while True:
            f = P.request_fields(peer.read())
            peer.statsn += 1
            peer.send(P.text_response(f['itt'], 0x1234, peer.statsn, f['cmdsn'] + 1, f['cmdsn'] + 9, piece,
                                      final=False))
    error, elapsed, peak = run(hostile(behaviour).port, discovery=True, max_text_bytes=8192, max_text_rounds=200)
    assert isinstance(error, ISCSILimitError)
    assert ('more than 200 PDUs' if not piece else 'larger than 8192 bytes') in str(error)
    assert elapsed < 3.0 and peak < 1024 * 1024


def test_never_ending_continuation_stopped_by_deadline(hostile):
    def behaviour(peer, server):
        peer.login()
        while True:
            f = P.request_fields(peer.read())
            time.sleep(0.05)
            peer.send(P.text_response(f['itt'], 0x1234, 700, f['cmdsn'] + 1, f['cmdsn'] + 9, b'', final=False))
    error, elapsed, _ignored = run(hostile(behaviour).port, discovery=True, operation_timeout=0.6)
    assert isinstance(error, ISCSITimeout) and 'total time limit' in str(error)
    assert elapsed < 1.5


def test_silent_target(hostile):
    def behaviour(peer, server):
        peer.idle()
    error, elapsed, _ignored = run(hostile(behaviour).port, timeout=0.5)
    assert isinstance(error, ISCSITimeout) and 'no answer from the target within 0.5 s' in str(error)
    assert error.retryable
    assert 0.4 < elapsed < 1.5


def test_byte_at_a_time_slow_target(hostile):
    def behaviour(peer, server):
        req = peer.read()
        f = P.request_fields(req)
        wire = P.login_response(f['isid'], 0, f['itt'], 1, 1, 9, 0, 1, True,
                                encode_text([('AuthMethod', 'None')] + [('TargetAlias', 'z' * 200)])).encode()
        for i in range(len(wire)):                # 0.05 s per byte: each read is quick, the whole is not
            if peer.stop.is_set():
                return
            peer.send(wire[i:i + 1])
            time.sleep(0.05)
    error, elapsed, _ignored = run(hostile(behaviour).port, timeout=1.0, operation_timeout=1.0)
    assert isinstance(error, ISCSITimeout) and 'total time limit' in str(error)
    assert 0.9 < elapsed < 1.6


def test_garbage_instead_of_pdu(hostile):
    def behaviour(peer, server):
        peer.read()
        peer.send(b'HTTP/1.1 400 Bad Request\r\n\r\n' + b'\0' * 40)
        peer.idle()
    error, elapsed, _ignored = run(hostile(behaviour).port)
    assert isinstance(error, ISCSIProtocolError) and 'opcode' in str(error)
    assert elapsed < 1.0


def test_closes_immediately(hostile):
    def behaviour(peer, server):
        return
    error, elapsed, _ignored = run(hostile(behaviour).port)
    # EOF or RST (the login request was left unread), depending on timing
    assert isinstance(error, ISCSIConnectionError) and re.search('closed the connection|reset', str(error))
    assert error.retryable and elapsed < 1.0


def test_connection_refused():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    result = probe('127.0.0.1', port, TARGET, INITIATOR, timeout=1.0, total_timeout=2.0)
    assert not result['reachable'] and not result['authenticated']
    assert result['error']['kind'] == 'connection' and 'refused' in result['error']['message']
    assert result['error']['retryable']


def test_friendly_fake_target_works(hostile):
    # Control: the fake server's own login is correct, so the failures above come from the behaviours.
    def behaviour(peer, server):
        peer.login()
        f = P.request_fields(peer.read())
        data = encode_text([('TargetName', TARGET), ('TargetAddress', '127.0.0.1:3260,1')])
        peer.send(P.text_response(f['itt'], P.RESERVED_TAG, 601, f['cmdsn'] + 1, f['cmdsn'] + 9, data))
        f = P.request_fields(peer.read())
        peer.send(P.logout_response(f['itt'], 602, f['cmdsn'], f['cmdsn'] + 8))
    error, elapsed, _ignored = run(hostile(behaviour).port, discovery=True)
    assert error is None and elapsed < 1.0
