# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to the openiscsi.initiator collection: not a public API, may change without notice.

"""iSCSI PDU framing (RFC 7143 section 11): 48-byte Basic Header Segment, AHS, data segment, padding, CRC32C digests.

Pure functions and a small :class:`PDU` container; no sockets here.  :func:`decode_pdu` parses a complete buffer
(used by tests and fuzzing), :func:`read_pdu` pulls one PDU from any ``recv_exact(n)`` callable and checks the
length bounds *before* allocating anything.
"""

from __future__ import annotations

import struct

from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_errors import (
    ISCSIDigestError,
    ISCSILimitError,
    ISCSIProtocolError,
    ISCSITruncatedError,
)

BHS_LEN = 48
MAX_DSL = 0xFFFFFF            # 24-bit DataSegmentLength
RESERVED_TAG = 0xFFFFFFFF     # ITT/TTT "none"

# Initiator opcodes
OP_NOP_OUT = 0x00
OP_SCSI_CMD = 0x01
OP_TMF_REQ = 0x02
OP_LOGIN_REQ = 0x03
OP_TEXT_REQ = 0x04
OP_DATA_OUT = 0x05
OP_LOGOUT_REQ = 0x06
OP_SNACK = 0x10
# Target opcodes
OP_NOP_IN = 0x20
OP_SCSI_RSP = 0x21
OP_TMF_RSP = 0x22
OP_LOGIN_RSP = 0x23
OP_TEXT_RSP = 0x24
OP_DATA_IN = 0x25
OP_LOGOUT_RSP = 0x26
OP_R2T = 0x31
OP_ASYNC = 0x32
OP_REJECT = 0x3F

INITIATOR_OPCODES = frozenset([OP_NOP_OUT, OP_SCSI_CMD, OP_TMF_REQ, OP_LOGIN_REQ, OP_TEXT_REQ, OP_DATA_OUT,
                               OP_LOGOUT_REQ, OP_SNACK])
TARGET_OPCODES = frozenset([OP_NOP_IN, OP_SCSI_RSP, OP_TMF_RSP, OP_LOGIN_RSP, OP_TEXT_RSP, OP_DATA_IN,
                            OP_LOGOUT_RSP, OP_R2T, OP_ASYNC, OP_REJECT])
KNOWN_OPCODES = INITIATOR_OPCODES | TARGET_OPCODES

OPCODE_NAMES = {
    OP_NOP_OUT: 'NOP-Out', OP_SCSI_CMD: 'SCSI Command', OP_TMF_REQ: 'Task Management Request',
    OP_LOGIN_REQ: 'Login Request', OP_TEXT_REQ: 'Text Request', OP_DATA_OUT: 'Data-Out',
    OP_LOGOUT_REQ: 'Logout Request', OP_SNACK: 'SNACK', OP_NOP_IN: 'NOP-In', OP_SCSI_RSP: 'SCSI Response',
    OP_TMF_RSP: 'Task Management Response', OP_LOGIN_RSP: 'Login Response', OP_TEXT_RSP: 'Text Response',
    OP_DATA_IN: 'Data-In', OP_LOGOUT_RSP: 'Logout Response', OP_R2T: 'R2T', OP_ASYNC: 'Asynchronous Message',
    OP_REJECT: 'Reject',
}

# Byte-0 and byte-1 flag bits
FLAG_IMMEDIATE = 0x40         # byte 0
FLAG_FINAL = 0x80             # byte 1: F (text, SCSI, data) / T (login)
FLAG_CONTINUE = 0x40          # byte 1: C (login, text)
LOGIN_TRANSIT = 0x80

# Login stages
STAGE_SECURITY = 0
STAGE_OPERATIONAL = 1
STAGE_FULL_FEATURE = 3


def opcode_name(opcode):
    return OPCODE_NAMES.get(opcode, 'opcode 0x%02x' % opcode)


def pad_len(length):
    """Number of zero bytes that pad ``length`` to a multiple of 4."""
    return (4 - (length & 3)) & 3


# ---------------------------------------------------------------------------------------------------------------------
# CRC32C (Castagnoli, reflected polynomial 0x82F63B78); the standard library has none.

def _make_crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _bit in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC32C_TABLE = _make_crc32c_table()


def crc32c(data, crc=0):
    """CRC32C of ``data``; ``crc`` continues a previous value (as returned by this function)."""
    table = _CRC32C_TABLE
    c = crc ^ 0xFFFFFFFF
    for b in bytes(data):
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def crc32c_digest(data):
    """The 4 digest bytes as sent on the wire (least significant byte first)."""
    return struct.pack('<I', crc32c(data))


# ---------------------------------------------------------------------------------------------------------------------

class PDU(object):
    """One iSCSI PDU: a 48-byte BHS (kept raw), the AHS bytes and the data segment (without padding)."""

    __slots__ = ('bhs', 'ahs', 'data')

    def __init__(self, opcode=0, immediate=False, flags=0, bhs=None, ahs=b'', data=b''):
        if bhs is not None:
            if len(bhs) != BHS_LEN:
                raise ISCSIProtocolError('a BHS is %d bytes, got %d' % (BHS_LEN, len(bhs)))
            self.bhs = bytearray(bhs)
        else:
            self.bhs = bytearray(BHS_LEN)
            self.bhs[0] = (opcode & 0x3F) | (FLAG_IMMEDIATE if immediate else 0)
            self.bhs[1] = flags & 0xFF
        self.ahs = bytes(ahs)
        self.data = bytes(data)

    # --- generic field access
    def u8(self, offset):
        return self.bhs[offset]

    def u16(self, offset):
        return struct.unpack_from('>H', self.bhs, offset)[0]

    def u32(self, offset):
        return struct.unpack_from('>I', self.bhs, offset)[0]

    def set_u8(self, offset, value):
        self.bhs[offset] = value & 0xFF

    def set_u16(self, offset, value):
        struct.pack_into('>H', self.bhs, offset, value & 0xFFFF)

    def set_u32(self, offset, value):
        struct.pack_into('>I', self.bhs, offset, value & 0xFFFFFFFF)

    def field(self, offset, length):
        return bytes(self.bhs[offset:offset + length])

    def set_field(self, offset, value):
        value = bytes(value)
        self.bhs[offset:offset + len(value)] = value

    # --- common fields
    @property
    def opcode(self):
        return self.bhs[0] & 0x3F

    @property
    def immediate(self):
        return bool(self.bhs[0] & FLAG_IMMEDIATE)

    @property
    def flags(self):
        return self.bhs[1]

    @flags.setter
    def flags(self, value):
        self.bhs[1] = value & 0xFF

    @property
    def final(self):
        return bool(self.bhs[1] & FLAG_FINAL)

    @property
    def cont(self):
        return bool(self.bhs[1] & FLAG_CONTINUE)

    @property
    def total_ahs_length(self):
        """TotalAHSLength in 4-byte words as found in the header."""
        return self.bhs[4]

    @property
    def data_segment_length(self):
        """DataSegmentLength as found in the header (24 bits)."""
        return (self.bhs[5] << 16) | (self.bhs[6] << 8) | self.bhs[7]

    @property
    def lun(self):
        return self.field(8, 8)

    @lun.setter
    def lun(self, value):
        value = bytes(value)
        if len(value) != 8:
            raise ValueError('LUN field is 8 bytes')
        self.set_field(8, value)

    @property
    def itt(self):
        return self.u32(16)

    @itt.setter
    def itt(self, value):
        self.set_u32(16, value)

    @property
    def name(self):
        return opcode_name(self.opcode)

    def encode(self, header_digest=False, data_digest=False):
        """Wire bytes: BHS, AHS, [header digest], data, padding, [data digest when there is data]."""
        if len(self.ahs) % 4:
            raise ValueError('AHS length must be a multiple of 4')
        if len(self.ahs) > 255 * 4:
            raise ValueError('AHS too long')
        dsl = len(self.data)
        if dsl > MAX_DSL:
            raise ValueError('data segment longer than 2^24-1 bytes')
        self.bhs[4] = len(self.ahs) // 4
        self.bhs[5] = (dsl >> 16) & 0xFF
        self.bhs[6] = (dsl >> 8) & 0xFF
        self.bhs[7] = dsl & 0xFF
        header = bytes(self.bhs) + self.ahs
        parts = [header]
        if header_digest:
            parts.append(crc32c_digest(header))
        if dsl:
            padded = self.data + b'\0' * pad_len(dsl)
            parts.append(padded)
            if data_digest:
                parts.append(crc32c_digest(padded))
        return b''.join(parts)

    def __repr__(self):
        return '<PDU %s flags=0x%02x itt=0x%08x dsl=%d>' % (self.name, self.flags, self.itt, len(self.data))


def _check_header(bhs, max_data_segment, allowed_opcodes):
    opcode = bhs[0] & 0x3F
    if opcode not in allowed_opcodes:
        raise ISCSIProtocolError('unknown or unexpected PDU opcode 0x%02x' % opcode)
    ahs_len = bhs[4] * 4
    dsl = (bhs[5] << 16) | (bhs[6] << 8) | bhs[7]
    if dsl > max_data_segment:
        raise ISCSILimitError('%s announces DataSegmentLength %d, above the accepted maximum of %d bytes'
                              % (opcode_name(opcode), dsl, max_data_segment))
    return ahs_len, dsl


def decode_pdu(buf, max_data_segment=MAX_DSL, header_digest=False, data_digest=False,
               allowed_opcodes=KNOWN_OPCODES):
    """Decode one PDU from the start of ``buf``.  Returns ``(pdu, bytes_consumed)``.

    Raises :class:`ISCSITruncatedError` when ``buf`` ends inside the PDU, :class:`ISCSILimitError` for a
    DataSegmentLength above ``max_data_segment``, :class:`ISCSIDigestError` on a digest mismatch and
    :class:`ISCSIProtocolError` for anything else malformed.
    """
    buf = memoryview(bytes(buf))
    if len(buf) < BHS_LEN:
        raise ISCSITruncatedError('PDU truncated: %d of %d header bytes' % (len(buf), BHS_LEN))
    bhs = bytes(buf[:BHS_LEN])
    ahs_len, dsl = _check_header(bhs, max_data_segment, allowed_opcodes)
    pos = BHS_LEN
    need = pos + ahs_len + (4 if header_digest else 0)
    if len(buf) < need:
        raise ISCSITruncatedError('PDU truncated inside the AHS or header digest')
    ahs = bytes(buf[pos:pos + ahs_len])
    pos += ahs_len
    if header_digest:
        if bytes(buf[pos:pos + 4]) != crc32c_digest(bhs + ahs):
            raise ISCSIDigestError('header digest mismatch')
        pos += 4
    data = b''
    if dsl:
        padded_len = dsl + pad_len(dsl)
        need = pos + padded_len + (4 if data_digest else 0)
        if len(buf) < need:
            raise ISCSITruncatedError('PDU truncated: data segment of %d bytes incomplete' % dsl)
        padded = bytes(buf[pos:pos + padded_len])
        pos += padded_len
        if data_digest:
            if bytes(buf[pos:pos + 4]) != crc32c_digest(padded):
                raise ISCSIDigestError('data digest mismatch')
            pos += 4
        data = padded[:dsl]
    return PDU(bhs=bhs, ahs=ahs, data=data), pos


def read_pdu(recv_exact, max_data_segment=MAX_DSL, header_digest=False, data_digest=False,
             allowed_opcodes=KNOWN_OPCODES):
    """Read one PDU with ``recv_exact(n)`` (which returns exactly n bytes or raises).

    The length fields are checked against ``max_data_segment`` before the data segment is read, so a hostile
    peer cannot make us allocate more than ``max_data_segment`` + 1028 bytes per PDU.
    """
    bhs = recv_exact(BHS_LEN)
    ahs_len, dsl = _check_header(bhs, max_data_segment, allowed_opcodes)
    ahs = recv_exact(ahs_len) if ahs_len else b''
    if header_digest:
        if recv_exact(4) != crc32c_digest(bytes(bhs) + ahs):
            raise ISCSIDigestError('header digest mismatch')
    data = b''
    if dsl:
        padded = recv_exact(dsl + pad_len(dsl))
        if data_digest:
            if recv_exact(4) != crc32c_digest(padded):
                raise ISCSIDigestError('data digest mismatch')
        data = bytes(padded[:dsl])
    return PDU(bhs=bytes(bhs), ahs=ahs, data=data)


# ---------------------------------------------------------------------------------------------------------------------
# LUN field encoding (SAM-5 single level): peripheral device addressing up to 255, flat space up to 16383.

def encode_lun(lun):
    if not 0 <= lun <= 0x3FFF:
        raise ValueError('LUN %r outside 0..16383' % (lun,))
    if lun < 256:
        return bytes([0, lun, 0, 0, 0, 0, 0, 0])
    return bytes([0x40 | (lun >> 8), lun & 0xFF, 0, 0, 0, 0, 0, 0])


def decode_lun(raw):
    """Decode an 8-byte LUN field; single-level peripheral and flat addressing give an int, others the hex string."""
    raw = bytes(raw)
    if len(raw) != 8:
        raise ISCSIProtocolError('LUN field must be 8 bytes, got %d' % len(raw))
    method = raw[0] >> 6
    if raw[2:] == b'\0' * 6 and method in (0, 1):
        if method == 0 and raw[0] == 0:
            return raw[1]
        if method == 1:
            return ((raw[0] & 0x3F) << 8) | raw[1]
    return raw.hex()


# ---------------------------------------------------------------------------------------------------------------------
# Builders for the initiator PDUs the library sends.

def login_request(isid, tsih, itt, cid, cmdsn, exp_statsn, csg, nsg, transit, data=b'', cont=False):
    flags = (LOGIN_TRANSIT if transit else 0) | (FLAG_CONTINUE if cont else 0) | ((csg & 3) << 2)
    if transit:
        flags |= nsg & 3
    pdu = PDU(OP_LOGIN_REQ, immediate=True, flags=flags, data=data)
    pdu.set_u8(2, 0)   # Version-max
    pdu.set_u8(3, 0)   # Version-min
    isid = bytes(isid)
    if len(isid) != 6:
        raise ValueError('ISID is 6 bytes')
    pdu.set_field(8, isid)
    pdu.set_u16(14, tsih)
    pdu.itt = itt
    pdu.set_u16(20, cid)
    pdu.set_u32(24, cmdsn)
    pdu.set_u32(28, exp_statsn)
    return pdu


def text_request(itt, ttt, cmdsn, exp_statsn, data=b'', final=True, cont=False, immediate=False):
    flags = (FLAG_FINAL if final else 0) | (FLAG_CONTINUE if cont else 0)
    pdu = PDU(OP_TEXT_REQ, immediate=immediate, flags=flags, data=data)
    pdu.itt = itt
    pdu.set_u32(20, ttt)
    pdu.set_u32(24, cmdsn)
    pdu.set_u32(28, exp_statsn)
    return pdu


def logout_request(itt, cid, cmdsn, exp_statsn, reason=0):
    pdu = PDU(OP_LOGOUT_REQ, immediate=True, flags=FLAG_FINAL | (reason & 0x7F))
    pdu.itt = itt
    pdu.set_u16(20, cid)
    pdu.set_u32(24, cmdsn)
    pdu.set_u32(28, exp_statsn)
    return pdu


def nop_out(itt, ttt, cmdsn, exp_statsn, lun=b'\0' * 8, data=b'', immediate=True):
    pdu = PDU(OP_NOP_OUT, immediate=immediate, flags=FLAG_FINAL, data=data)
    pdu.lun = lun
    pdu.itt = itt
    pdu.set_u32(20, ttt)
    pdu.set_u32(24, cmdsn)
    pdu.set_u32(28, exp_statsn)
    return pdu


def scsi_command(itt, lun, cdb, expected_length, cmdsn, exp_statsn, read=True, immediate=False):
    cdb = bytes(cdb)
    if not 6 <= len(cdb) <= 16:
        raise ValueError('CDB length %d not supported (6..16)' % len(cdb))
    flags = FLAG_FINAL | (0x40 if read and expected_length else 0) | 0x01   # ATTR = Simple
    pdu = PDU(OP_SCSI_CMD, immediate=immediate, flags=flags)
    pdu.lun = encode_lun(lun) if isinstance(lun, int) else lun
    pdu.itt = itt
    pdu.set_u32(20, expected_length)
    pdu.set_u32(24, cmdsn)
    pdu.set_u32(28, exp_statsn)
    pdu.set_field(32, cdb + b'\0' * (16 - len(cdb)))
    return pdu


# ---------------------------------------------------------------------------------------------------------------------
# Readers for the fields of target PDUs (tables in RFC 7143 section 11).

def login_response_fields(pdu):
    flags = pdu.flags
    return {
        'transit': bool(flags & LOGIN_TRANSIT),
        'cont': bool(flags & FLAG_CONTINUE),
        'csg': (flags >> 2) & 3,
        'nsg': flags & 3,
        'version_max': pdu.u8(2),
        'version_active': pdu.u8(3),
        'isid': pdu.field(8, 6),
        'tsih': pdu.u16(14),
        'itt': pdu.itt,
        'statsn': pdu.u32(24),
        'exp_cmdsn': pdu.u32(28),
        'max_cmdsn': pdu.u32(32),
        'status_class': pdu.u8(36),
        'status_detail': pdu.u8(37),
    }


def scsi_response_fields(pdu):
    flags = pdu.flags
    return {
        'bidi_overflow': bool(flags & 0x10),
        'bidi_underflow': bool(flags & 0x08),
        'overflow': bool(flags & 0x04),
        'underflow': bool(flags & 0x02),
        'response': pdu.u8(2),
        'status': pdu.u8(3),
        'itt': pdu.itt,
        'statsn': pdu.u32(24),
        'exp_cmdsn': pdu.u32(28),
        'max_cmdsn': pdu.u32(32),
        'exp_datasn': pdu.u32(36),
        'bidi_residual': pdu.u32(40),
        'residual': pdu.u32(44),
    }


def data_in_fields(pdu):
    flags = pdu.flags
    return {
        'final': bool(flags & 0x80),
        'ack': bool(flags & 0x40),
        'overflow': bool(flags & 0x04),
        'underflow': bool(flags & 0x02),
        'has_status': bool(flags & 0x01),
        'status': pdu.u8(3),
        'itt': pdu.itt,
        'ttt': pdu.u32(20),
        'statsn': pdu.u32(24),
        'exp_cmdsn': pdu.u32(28),
        'max_cmdsn': pdu.u32(32),
        'datasn': pdu.u32(36),
        'offset': pdu.u32(40),
        'residual': pdu.u32(44),
    }


def request_fields(pdu):
    """Fields of the initiator PDUs this library sends (used by test peers and for symmetric round trips)."""
    op = pdu.opcode
    f = {'opcode': op, 'immediate': pdu.immediate, 'itt': pdu.itt}
    if op == OP_LOGIN_REQ:
        flags = pdu.flags
        f.update({'transit': bool(flags & LOGIN_TRANSIT), 'cont': bool(flags & FLAG_CONTINUE),
                  'csg': (flags >> 2) & 3, 'nsg': flags & 3, 'version_max': pdu.u8(2), 'version_min': pdu.u8(3),
                  'isid': pdu.field(8, 6), 'tsih': pdu.u16(14), 'cid': pdu.u16(20), 'cmdsn': pdu.u32(24),
                  'exp_statsn': pdu.u32(28)})
    elif op in (OP_TEXT_REQ, OP_NOP_OUT):
        f.update({'final': pdu.final, 'cont': pdu.cont, 'lun': pdu.lun, 'ttt': pdu.u32(20), 'cmdsn': pdu.u32(24),
                  'exp_statsn': pdu.u32(28)})
    elif op == OP_LOGOUT_REQ:
        f.update({'reason': pdu.flags & 0x7F, 'cid': pdu.u16(20), 'cmdsn': pdu.u32(24), 'exp_statsn': pdu.u32(28)})
    elif op == OP_SCSI_CMD:
        f.update({'read': bool(pdu.flags & 0x40), 'write': bool(pdu.flags & 0x20), 'attr': pdu.flags & 0x07,
                  'lun': pdu.lun, 'expected_length': pdu.u32(20), 'cmdsn': pdu.u32(24), 'exp_statsn': pdu.u32(28),
                  'cdb': pdu.field(32, 16)})
    return f


# ---------------------------------------------------------------------------------------------------------------------
# Builders for target PDUs: the initiator never sends these; test peers, fuzzers and benchmarks do.

def _target_pdu(opcode, flags, itt, statsn, exp_cmdsn, max_cmdsn, data=b''):
    pdu = PDU(opcode, flags=flags, data=data)
    pdu.itt = itt
    pdu.set_u32(24, statsn)
    pdu.set_u32(28, exp_cmdsn)
    pdu.set_u32(32, max_cmdsn)
    return pdu


def login_response(isid, tsih, itt, statsn, exp_cmdsn, max_cmdsn, csg, nsg, transit, data=b'', cont=False,
                   status_class=0, status_detail=0, version_active=0):
    flags = (LOGIN_TRANSIT if transit else 0) | (FLAG_CONTINUE if cont else 0) | ((csg & 3) << 2) | (nsg & 3)
    pdu = _target_pdu(OP_LOGIN_RSP, flags, itt, statsn, exp_cmdsn, max_cmdsn, data)
    pdu.set_u8(2, 0)
    pdu.set_u8(3, version_active)
    pdu.set_field(8, bytes(isid))
    pdu.set_u16(14, tsih)
    pdu.set_u8(36, status_class)
    pdu.set_u8(37, status_detail)
    return pdu


def text_response(itt, ttt, statsn, exp_cmdsn, max_cmdsn, data=b'', final=True, cont=False):
    pdu = _target_pdu(OP_TEXT_RSP, (FLAG_FINAL if final else 0) | (FLAG_CONTINUE if cont else 0), itt, statsn,
                      exp_cmdsn, max_cmdsn, data)
    pdu.set_u32(20, ttt)
    return pdu


def nop_in(itt, ttt, statsn, exp_cmdsn, max_cmdsn, lun=b'\0' * 8, data=b''):
    pdu = _target_pdu(OP_NOP_IN, FLAG_FINAL, itt, statsn, exp_cmdsn, max_cmdsn, data)
    pdu.lun = lun
    pdu.set_u32(20, ttt)
    return pdu


def logout_response(itt, statsn, exp_cmdsn, max_cmdsn, response=0, time2wait=0, time2retain=0):
    pdu = _target_pdu(OP_LOGOUT_RSP, FLAG_FINAL, itt, statsn, exp_cmdsn, max_cmdsn)
    pdu.set_u8(2, response)
    pdu.set_u16(40, time2wait)
    pdu.set_u16(42, time2retain)
    return pdu


def scsi_response(itt, statsn, exp_cmdsn, max_cmdsn, status=0, response=0, sense=b'', residual=0,
                  underflow=False, overflow=False, exp_datasn=0):
    data = (len(sense).to_bytes(2, 'big') + bytes(sense)) if sense else b''
    flags = FLAG_FINAL | (0x02 if underflow else 0) | (0x04 if overflow else 0)
    pdu = _target_pdu(OP_SCSI_RSP, flags, itt, statsn, exp_cmdsn, max_cmdsn, data)
    pdu.set_u8(2, response)
    pdu.set_u8(3, status)
    pdu.set_u32(36, exp_datasn)
    pdu.set_u32(44, residual)
    return pdu


def data_in(itt, datasn, offset, data, exp_cmdsn, max_cmdsn, final=False, status=None, statsn=0, residual=0,
            underflow=False, overflow=False, lun=b'\0' * 8):
    flags = (FLAG_FINAL if final or status is not None else 0) | (0x02 if underflow else 0) | \
        (0x04 if overflow else 0) | (0x01 if status is not None else 0)
    pdu = _target_pdu(OP_DATA_IN, flags, itt, statsn if status is not None else 0, exp_cmdsn, max_cmdsn, data)
    pdu.lun = lun
    pdu.set_u32(20, RESERVED_TAG)
    pdu.set_u8(3, status or 0)
    pdu.set_u32(36, datasn)
    pdu.set_u32(40, offset)
    pdu.set_u32(44, residual)
    return pdu


def reject(reason, rejected_header, statsn, exp_cmdsn, max_cmdsn):
    pdu = _target_pdu(OP_REJECT, FLAG_FINAL, RESERVED_TAG, statsn, exp_cmdsn, max_cmdsn, bytes(rejected_header))
    pdu.set_u8(2, reason)
    return pdu


def async_message(event, statsn, exp_cmdsn, max_cmdsn, param1=0, param2=0, param3=0):
    pdu = _target_pdu(OP_ASYNC, FLAG_FINAL, RESERVED_TAG, statsn, exp_cmdsn, max_cmdsn)
    pdu.set_u8(36, event)
    pdu.set_u16(38, param1)
    pdu.set_u16(40, param2)
    pdu.set_u16(42, param3)
    return pdu
