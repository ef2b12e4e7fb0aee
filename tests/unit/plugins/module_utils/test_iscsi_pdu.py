# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import socket
import struct

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _iscsi_pdu as P
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_errors import (
    ISCSIConnectionError,
    ISCSIDigestError,
    ISCSIError,
    ISCSILimitError,
    ISCSIProtocolError,
    ISCSITruncatedError,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_session import Transport

ISID = bytes.fromhex('80a1b2c3d4e5')


def _chunked(buf, size=1):
    """A recv_exact(n) over ``buf`` that internally gathers ``size``-byte pieces (1-byte socket reads)."""
    pos = [0]

    def recv_exact(n):
        out = bytearray()
        while len(out) < n:
            if pos[0] >= len(buf):
                raise ISCSITruncatedError('EOF')
            piece = buf[pos[0]:pos[0] + min(size, n - len(out))]
            pos[0] += len(piece)
            out += piece
        return bytes(out)
    recv_exact.pos = pos
    return recv_exact


# --------------------------------------------------------------------------------------------- CRC32C (RFC 3720 B.4)
@pytest.mark.parametrize('data, wire', [
    (bytes(32), 'aa36918a'),
    (b'\xff' * 32, '43aba862'),
    (bytes(range(32)), '4e79dd46'),
    (bytes(range(31, -1, -1)), '5cdb3f11'),
    (bytes.fromhex('01c00000000000000000000000000000140000000000040000000014000000182800000000000000'
                   '0200000000000000'), '563a96d9'),
])
def test_crc32c_rfc3720_vectors(data, wire):
    assert P.crc32c_digest(data).hex() == wire


def test_crc32c_check_value_and_continuation():
    assert P.crc32c(b'123456789') == 0xE3069283
    assert P.crc32c(b'6789', P.crc32c(b'12345')) == 0xE3069283
    assert P.crc32c(b'') == 0


# --------------------------------------------------------------------------------------------- round trips
def _roundtrip(pdu, **kw):
    wire = pdu.encode(**kw)
    back, used = P.decode_pdu(wire, **kw)
    assert used == len(wire)
    assert bytes(back.bhs) == bytes(pdu.bhs)
    assert back.data == pdu.data
    assert back.ahs == pdu.ahs
    return back


INITIATOR_PDUS = [
    lambda: P.login_request(ISID, 0x1234, 7, 1, 99, 5, P.STAGE_SECURITY, P.STAGE_OPERATIONAL, True,
                            b'InitiatorName=iqn.x\0'),
    lambda: P.login_request(ISID, 0, 8, 0, 1, 0, P.STAGE_OPERATIONAL, P.STAGE_FULL_FEATURE, False, b'', cont=True),
    lambda: P.text_request(9, 0x77, 10, 11, b'SendTargets=All\0', final=False, cont=True),
    lambda: P.logout_request(12, 3, 13, 14, reason=2),
    lambda: P.nop_out(P.RESERVED_TAG, 0x55, 15, 16, lun=P.encode_lun(3), data=b'ping'),
    lambda: P.scsi_command(17, 300, bytes([0x9E, 0x10]) + bytes(14), 32, 18, 19),
]

TARGET_PDUS = [
    lambda: P.login_response(ISID, 0x2001, 7, 100, 2, 9, 1, 3, True, b'TargetAlias=x\0', status_class=0),
    lambda: P.login_response(ISID, 0, 7, 0, 0, 0, 0, 0, False, b'', status_class=2, status_detail=1),
    lambda: P.text_response(9, 0x42, 101, 3, 10, b'TargetName=iqn.t\0', final=False, cont=True),
    lambda: P.nop_in(P.RESERVED_TAG, 0x1000, 102, 4, 11, lun=P.encode_lun(2)),
    lambda: P.logout_response(12, 103, 5, 12, response=1, time2wait=2, time2retain=20),
    lambda: P.scsi_response(17, 104, 6, 13, status=2, sense=b'\x70\x00\x06' + bytes(15), residual=8,
                            underflow=True),
    lambda: P.data_in(17, 0, 0, b'abc', 6, 13, status=0, statsn=105, residual=29, underflow=True),
    lambda: P.reject(0x09, bytes(48), 106, 7, 14),
    lambda: P.async_message(1, 107, 8, 15, param3=5),
]


@pytest.mark.parametrize('make', INITIATOR_PDUS + TARGET_PDUS)
@pytest.mark.parametrize('digests', [False, True])
def test_bhs_round_trip_every_pdu(make, digests):
    pdu = make()
    back = _roundtrip(pdu, header_digest=digests, data_digest=digests)
    assert back.opcode == pdu.opcode
    assert back.itt == pdu.itt


def test_request_fields_round_trip():
    pdu = P.login_request(ISID, 0x1234, 7, 1, 99, 5, 0, 1, True, b'a=b\0')
    f = P.request_fields(P.decode_pdu(pdu.encode())[0])
    assert f == {'opcode': P.OP_LOGIN_REQ, 'immediate': True, 'itt': 7, 'transit': True, 'cont': False, 'csg': 0,
                 'nsg': 1, 'version_max': 0, 'version_min': 0, 'isid': ISID, 'tsih': 0x1234, 'cid': 1,
                 'cmdsn': 99, 'exp_statsn': 5}
    cmd = P.request_fields(P.scsi_command(17, 300, b'\x12\x00\x00\x00\xff\x00', 255, 18, 19))
    assert cmd['read'] and not cmd['write'] and cmd['attr'] == 1
    assert cmd['lun'] == bytes([0x41, 0x2C, 0, 0, 0, 0, 0, 0])
    assert cmd['cdb'] == b'\x12\x00\x00\x00\xff\x00' + bytes(10)
    assert cmd['expected_length'] == 255


def test_login_request_flags_layout():
    pdu = P.login_request(ISID, 0, 1, 0, 1, 0, 1, 3, True)
    assert pdu.bhs[0] == 0x43           # immediate + opcode 3
    assert pdu.bhs[1] == 0x80 | (1 << 2) | 3
    no_transit = P.login_request(ISID, 0, 1, 0, 1, 0, 0, 1, False)
    assert no_transit.bhs[1] == 0x00    # NSG only meaningful with T
    fields = P.login_response_fields(P.login_response(ISID, 5, 1, 9, 2, 3, 1, 3, True, status_class=3,
                                                      status_detail=2))
    assert (fields['csg'], fields['nsg'], fields['transit'], fields['status_class'], fields['status_detail']) == \
        (1, 3, True, 3, 2)


# --------------------------------------------------------------------------------------------- lengths, padding, AHS
@pytest.mark.parametrize('length', [0, 1, 2, 3, 4, 5])
def test_padding_0_to_5(length):
    data = bytes(range(1, length + 1))
    wire = P.nop_out(1, P.RESERVED_TAG, 1, 1, data=data).encode()
    padded = length + (-length % 4)
    assert len(wire) == 48 + padded
    assert wire[48 + length:] == b'\0' * (padded - length)
    assert P.pad_len(length) == padded - length
    assert P.decode_pdu(wire)[0].data == data


def test_data_digest_absent_without_data():
    wire = P.nop_out(1, P.RESERVED_TAG, 1, 1).encode(header_digest=True, data_digest=True)
    assert len(wire) == 52


def test_data_digest_covers_padding():
    wire = P.nop_out(1, P.RESERVED_TAG, 1, 1, data=b'abcde').encode(header_digest=False, data_digest=True)
    assert wire[-4:] == P.crc32c_digest(b'abcde\0\0\0')


@pytest.mark.parametrize('dsl', [0x000100, 0x010000, 0xFFFFFF])
def test_24_bit_length_field(dsl):
    bhs = bytearray(P.nop_in(P.RESERVED_TAG, P.RESERVED_TAG, 1, 1, 1).encode())
    bhs[5:8] = dsl.to_bytes(3, 'big')
    pdu = P.PDU(bhs=bytes(bhs))
    assert pdu.data_segment_length == dsl
    with pytest.raises(ISCSILimitError, match='DataSegmentLength %d' % dsl):
        P.decode_pdu(bytes(bhs), max_data_segment=dsl - 1)
    with pytest.raises(ISCSITruncatedError):
        P.decode_pdu(bytes(bhs), max_data_segment=dsl)


def test_encode_refuses_oversize():
    pdu = P.PDU(P.OP_NOP_OUT, data=b'x')
    pdu.data = b'\0' * (P.MAX_DSL + 1)
    with pytest.raises(ValueError):
        pdu.encode()


def test_ahs_is_skipped_and_kept():
    pdu = P.text_response(1, P.RESERVED_TAG, 1, 1, 1, b'TargetName=iqn.a\0')
    pdu.ahs = b'\x00\x04\x01\x00' + b'\xaa\xbb\xcc\xdd'
    wire = pdu.encode(header_digest=True)
    assert wire[4] == 2
    back = P.read_pdu(_chunked(wire), header_digest=True)
    assert back.ahs == pdu.ahs and back.data == b'TargetName=iqn.a\0'


def test_header_digest_covers_ahs():
    pdu = P.nop_in(1, P.RESERVED_TAG, 1, 1, 1)
    pdu.ahs = b'\x01\x02\x03\x04'
    wire = bytearray(pdu.encode(header_digest=True))
    wire[49] ^= 0xFF                    # corrupt the AHS only
    with pytest.raises(ISCSIDigestError):
        P.decode_pdu(bytes(wire), header_digest=True)


@pytest.mark.parametrize('where', ['header', 'data'])
def test_digest_mismatch_detected(where):
    wire = bytearray(P.text_response(1, P.RESERVED_TAG, 1, 1, 1, b'a=b\0').encode(True, True))
    wire[10 if where == 'header' else 48 + 4 + 1] ^= 0x01
    with pytest.raises(ISCSIDigestError, match=where):
        P.decode_pdu(bytes(wire), header_digest=True, data_digest=True)
    with pytest.raises(ISCSIDigestError, match=where):
        P.read_pdu(_chunked(bytes(wire), 3), header_digest=True, data_digest=True)


# --------------------------------------------------------------------------------------------- streaming reads
@pytest.mark.parametrize('size', [1, 2, 5, 47, 48, 1000])
def test_read_pdu_with_small_socket_reads(size):
    pdus = [P.text_response(i, P.RESERVED_TAG, i, 1, 1, ('k%d=' % i).encode() + b'v' * i + b'\0')
            for i in range(1, 8)]
    stream = b''.join(p.encode(True, True) for p in pdus)
    rx = _chunked(stream, size)
    for original in pdus:
        got = P.read_pdu(rx, header_digest=True, data_digest=True)
        assert got.itt == original.itt and got.data == original.data
    assert rx.pos[0] == len(stream)


def test_read_pdu_checks_length_before_reading_data():
    bhs = bytearray(P.text_response(1, P.RESERVED_TAG, 1, 1, 1).encode())
    bhs[5:8] = (0xFFFFFF).to_bytes(3, 'big')
    rx = _chunked(bytes(bhs))
    with pytest.raises(ISCSILimitError, match='16777215'):
        P.read_pdu(rx, max_data_segment=8192)
    assert rx.pos[0] == 48              # nothing beyond the header was requested


@pytest.mark.parametrize('cut', [0, 1, 47, 48, 50, 52])
def test_decode_truncated(cut):
    wire = P.text_response(1, P.RESERVED_TAG, 1, 1, 1, b'abcdefg=h\0').encode()
    with pytest.raises(ISCSITruncatedError):
        P.decode_pdu(wire[:cut])


def test_unknown_and_unexpected_opcode():
    wire = bytearray(P.nop_in(1, 1, 1, 1, 1).encode())
    wire[0] = 0x3A                      # reserved opcode
    with pytest.raises(ISCSIProtocolError, match='0x3a'):
        P.decode_pdu(bytes(wire))
    good = P.nop_in(1, 1, 1, 1, 1).encode()
    with pytest.raises(ISCSIProtocolError, match='0x20'):
        P.read_pdu(_chunked(good), allowed_opcodes=(P.OP_LOGIN_RSP,))


def _socketpair_transport():
    a, b = socket.socketpair()
    t = Transport(timeout=2.0)
    t.sock = a
    return t, b


def test_transport_eof_mid_pdu_is_truncation():
    t, peer = _socketpair_transport()
    try:
        peer.sendall(P.nop_in(1, 1, 1, 1, 1).encode()[:20])
        peer.close()
        with pytest.raises(ISCSITruncatedError, match='middle of a PDU'):
            P.read_pdu(t.recv_exact)
    finally:
        t.close()


def test_transport_eof_at_boundary_is_closed_connection():
    t, peer = _socketpair_transport()
    try:
        peer.close()
        with pytest.raises(ISCSIConnectionError, match='closed the connection') as info:
            t.recv_exact(48, at_boundary=True)
        assert not isinstance(info.value, ISCSITruncatedError)
        assert info.value.retryable
    finally:
        t.close()


def test_transport_one_byte_at_a_time():
    t, peer = _socketpair_transport()
    try:
        wire = P.text_response(3, P.RESERVED_TAG, 1, 1, 1, b'x=y\0').encode()
        for i in range(len(wire)):
            peer.send(wire[i:i + 1])
        got = P.read_pdu(t.recv_exact)
        assert got.itt == 3 and got.data == b'x=y\0'
    finally:
        peer.close()
        t.close()


# --------------------------------------------------------------------------------------------- LUN encoding
@pytest.mark.parametrize('lun, raw', [
    (0, '0000000000000000'), (1, '0001000000000000'), (255, '00ff000000000000'),
    (256, '4100000000000000'), (16383, '7fff000000000000'),
])
def test_lun_encoding(lun, raw):
    assert P.encode_lun(lun).hex() == raw
    assert P.decode_lun(bytes.fromhex(raw)) == lun


def test_lun_other_addressing_kept_as_hex():
    assert P.decode_lun(bytes.fromhex('c101000000000000')) == 'c101000000000000'
    with pytest.raises(ValueError):
        P.encode_lun(16384)
    with pytest.raises(ISCSIProtocolError):
        P.decode_lun(b'\0' * 7)


def test_all_errors_are_iscsi_errors():
    for cls in (ISCSIDigestError, ISCSILimitError, ISCSITruncatedError, ISCSIProtocolError, ISCSIConnectionError):
        assert issubclass(cls, ISCSIError)


def test_fields_big_endian():
    pdu = P.scsi_command(0x01020304, 1, bytes(6), 0x0A0B0C0D, 0x11121314, 0x21222324)
    raw = pdu.encode()
    assert raw[16:20] == bytes([1, 2, 3, 4])
    assert struct.unpack('>I', raw[20:24])[0] == 0x0A0B0C0D
    assert raw[24:28] == bytes([0x11, 0x12, 0x13, 0x14])
    assert raw[28:32] == bytes([0x21, 0x22, 0x23, 0x24])


@pytest.mark.parametrize('opcode', sorted(P.KNOWN_OPCODES))
def test_generic_round_trip_of_every_opcode(opcode):
    # Every field of the BHS survives encode/decode, for all opcodes (also TMF, Data-Out, SNACK, R2T).
    body = bytes((opcode * 7 + i * 13) & 0xFF for i in range(48))
    pdu = P.PDU(bhs=bytes([opcode | (0x40 if opcode in P.INITIATOR_OPCODES else 0)]) + body[1:], data=b'xyz')
    pdu.ahs = b''
    back = _roundtrip(pdu, header_digest=True, data_digest=True)
    assert back.opcode == opcode and back.name != 'opcode 0x%02x' % opcode
    assert bytes(back.bhs[8:48]) == body[8:48] and back.bhs[1:4] == body[1:4]
    assert back.data_segment_length == 3 and back.total_ahs_length == 0
