# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to the openiscsi.initiator collection: not a public API, may change without notice.

"""The few SCSI commands the probe needs (SPC-4/SBC-3): TEST UNIT READY, INQUIRY, REPORT LUNS, READ CAPACITY(16)
and (10); sense data parsing; UNIT ATTENTION retry.  CDB builders and parsers are pure; the ``run``-style helpers
take any object with ``scsi_command(lun, cdb, expected_length)`` returning a ScsiResult-like object.
"""

from __future__ import annotations

import struct

from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_errors import (
    ISCSIProtocolError,
    ISCSISCSIError,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_pdu import decode_lun

GOOD = 0x00
CHECK_CONDITION = 0x02
CONDITION_MET = 0x04
BUSY = 0x08
RESERVATION_CONFLICT = 0x18
TASK_SET_FULL = 0x28
ACA_ACTIVE = 0x30
TASK_ABORTED = 0x40

STATUS_NAMES = {
    GOOD: 'GOOD', CHECK_CONDITION: 'CHECK CONDITION', CONDITION_MET: 'CONDITION MET', BUSY: 'BUSY',
    RESERVATION_CONFLICT: 'RESERVATION CONFLICT', TASK_SET_FULL: 'TASK SET FULL', ACA_ACTIVE: 'ACA ACTIVE',
    TASK_ABORTED: 'TASK ABORTED',
}

SENSE_KEYS = {
    0x0: 'NO SENSE', 0x1: 'RECOVERED ERROR', 0x2: 'NOT READY', 0x3: 'MEDIUM ERROR', 0x4: 'HARDWARE ERROR',
    0x5: 'ILLEGAL REQUEST', 0x6: 'UNIT ATTENTION', 0x7: 'DATA PROTECT', 0x8: 'BLANK CHECK',
    0x9: 'VENDOR SPECIFIC', 0xA: 'COPY ABORTED', 0xB: 'ABORTED COMMAND', 0xD: 'VOLUME OVERFLOW',
    0xE: 'MISCOMPARE', 0xF: 'COMPLETED',
}
UNIT_ATTENTION = 0x6
NOT_READY = 0x2
ILLEGAL_REQUEST = 0x5

ASC_NAMES = {
    (0x04, None): 'logical unit not ready',
    (0x20, 0x00): 'invalid command operation code',
    (0x24, 0x00): 'invalid field in CDB',
    (0x25, 0x00): 'logical unit not supported',
    (0x28, 0x00): 'not ready to ready change, medium may have changed',
    (0x29, None): 'power on, reset, or bus device reset occurred',
    (0x2A, None): 'parameters changed',
    (0x3A, None): 'medium not present',
    (0x3F, 0x0E): 'reported LUNs data has changed',
}

DEVICE_TYPES = {
    0x00: 'disk', 0x01: 'tape', 0x02: 'printer', 0x03: 'processor', 0x04: 'write-once', 0x05: 'cd/dvd',
    0x07: 'optical', 0x08: 'medium changer', 0x0C: 'storage array controller', 0x0D: 'enclosure',
    0x0E: 'simplified disk', 0x0F: 'optical card', 0x11: 'object storage', 0x12: 'automation/drive interface',
    0x1E: 'well known logical unit', 0x1F: 'unknown',
}

INQUIRY_ALLOC = 255
READ_CAPACITY16_ALLOC = 32
REPORT_LUNS_MAX_ALLOC = 16 + 8 * 16384


# ---------------------------------------------------------------------------------------------------------------------
# CDBs

def cdb_test_unit_ready():
    return bytes(6)


def cdb_inquiry(allocation=INQUIRY_ALLOC, evpd=False, page=0):
    return struct.pack('>BBBHB', 0x12, 1 if evpd else 0, page if evpd else 0, allocation, 0)


def cdb_report_luns(allocation, select_report=0):
    return struct.pack('>BBB3xIBB', 0xA0, 0, select_report, allocation, 0, 0)


def cdb_read_capacity16(allocation=READ_CAPACITY16_ALLOC):
    return struct.pack('>BBQIBB', 0x9E, 0x10, 0, allocation, 0, 0)


def cdb_read_capacity10():
    return bytes([0x25]) + bytes(9)


# ---------------------------------------------------------------------------------------------------------------------
# Parsers (never raise on short or odd data other than ISCSIProtocolError)

def describe_asc(asc, ascq):
    if asc is None:
        return None
    return ASC_NAMES.get((asc, ascq)) or ASC_NAMES.get((asc, None))


def parse_sense(sense):
    """Fixed (0x70/0x71) or descriptor (0x72/0x73) sense data -> dict; None when empty."""
    sense = bytes(sense or b'')
    if not sense:
        return None
    code = sense[0] & 0x7F
    result = {'response_code': code, 'deferred': code in (0x71, 0x73), 'key': None, 'asc': None, 'ascq': None,
              'information': None}
    if code in (0x70, 0x71):
        if len(sense) > 2:
            result['key'] = sense[2] & 0x0F
        if len(sense) > 12:
            result['asc'] = sense[12]
        if len(sense) > 13:
            result['ascq'] = sense[13]
        if sense[0] & 0x80 and len(sense) >= 7:
            result['information'] = struct.unpack('>I', sense[3:7])[0]
    elif code in (0x72, 0x73):
        if len(sense) > 1:
            result['key'] = sense[1] & 0x0F
        if len(sense) > 2:
            result['asc'] = sense[2]
        if len(sense) > 3:
            result['ascq'] = sense[3]
        # Information descriptor (type 0x00) in the descriptor list starting at byte 8.
        pos = 8
        end = min(len(sense), 8 + (sense[7] if len(sense) > 7 else 0))
        while pos + 2 <= end:
            dtype, dlen = sense[pos], sense[pos + 1]
            if dtype == 0x00 and dlen >= 0x0A and pos + 12 <= len(sense):
                result['information'] = struct.unpack('>Q', sense[pos + 4:pos + 12])[0]
            pos += 2 + dlen
    result['key_name'] = SENSE_KEYS.get(result['key']) if result['key'] is not None else None
    result['description'] = describe_asc(result['asc'], result['ascq'])
    return result


def format_sense(sense):
    if not sense:
        return 'no sense data'
    parts = []
    if sense.get('key') is not None:
        parts.append('sense key 0x%x (%s)' % (sense['key'], sense.get('key_name') or 'reserved'))
    if sense.get('asc') is not None:
        parts.append('ASC/ASCQ %02x/%02x' % (sense['asc'], sense.get('ascq') or 0))
    if sense.get('description'):
        parts.append(sense['description'])
    return ', '.join(parts) or 'unparsable sense data'


def parse_inquiry(data):
    data = bytes(data)
    if len(data) < 5:
        raise ISCSIProtocolError('INQUIRY data too short (%d bytes)' % len(data))

    def text(lo, hi):
        return data[lo:hi].decode('ascii', 'replace').strip() if len(data) > lo else ''
    dtype = data[0] & 0x1F
    return {
        'peripheral_qualifier': data[0] >> 5,
        'device_type': dtype,
        'device_type_name': DEVICE_TYPES.get(dtype, 'type 0x%02x' % dtype),
        'removable': bool(data[1] & 0x80),
        'version': data[2],
        'response_data_format': data[3] & 0x0F,
        'vendor': text(8, 16),
        'product': text(16, 32),
        'revision': text(32, 36),
    }


def parse_report_luns(data):
    """Returns ``(lun_list_length_in_bytes, [luns])``; LUNs decode to ints for single-level addressing."""
    data = bytes(data)
    if len(data) < 8:
        raise ISCSIProtocolError('REPORT LUNS data too short (%d bytes)' % len(data))
    length = struct.unpack('>I', data[:4])[0]
    end = min(len(data), 8 + length)
    luns = []
    for pos in range(8, end - 7, 8):
        luns.append(decode_lun(data[pos:pos + 8]))
    return length, luns


def parse_read_capacity16(data):
    data = bytes(data)
    if len(data) < 12:
        raise ISCSIProtocolError('READ CAPACITY(16) data too short (%d bytes)' % len(data))
    last_lba, block = struct.unpack('>QI', data[:12])
    result = {'last_lba': last_lba, 'block_size': block, 'blocks': last_lba + 1,
              'size_bytes': (last_lba + 1) * block}
    if len(data) >= 16:
        result.update({
            'protection': bool(data[12] & 0x01),
            'logical_per_physical_exponent': data[13] & 0x0F,
            'thin_provisioned': bool(data[14] & 0x80),
            'lowest_aligned_lba': ((data[14] & 0x3F) << 8) | data[15],
        })
    return result


def parse_read_capacity10(data):
    data = bytes(data)
    if len(data) < 8:
        raise ISCSIProtocolError('READ CAPACITY(10) data too short (%d bytes)' % len(data))
    last_lba, block = struct.unpack('>II', data[:8])
    return {'last_lba': last_lba, 'block_size': block, 'blocks': last_lba + 1, 'size_bytes': (last_lba + 1) * block}


# ---------------------------------------------------------------------------------------------------------------------
# Running commands

def check(result, what):
    """Raise ISCSISCSIError unless ``result.status`` is GOOD."""
    if result.status == GOOD:
        return result
    sense = parse_sense(result.sense)
    name = STATUS_NAMES.get(result.status, 'status 0x%02x' % result.status)
    message = '%s failed: %s' % (what, name)
    if result.status == CHECK_CONDITION:
        message += ' (%s)' % format_sense(sense)
    retryable = result.status in (BUSY, TASK_SET_FULL) or bool(
        sense and sense.get('key') in (UNIT_ATTENTION, NOT_READY))
    raise ISCSISCSIError(message, status=result.status, sense=sense, retryable=retryable)


def run(session, lun, cdb, allocation, what, retries=5):
    """Run a command, retrying on UNIT ATTENTION, BUSY and TASK SET FULL up to ``retries`` times."""
    attempt = 0
    while True:
        result = session.scsi_command(lun, cdb, allocation)
        if result.status == GOOD:
            return result
        sense = parse_sense(result.sense) if result.status == CHECK_CONDITION else None
        transient = result.status in (BUSY, TASK_SET_FULL) or bool(sense and sense.get('key') == UNIT_ATTENTION)
        if transient and attempt < retries:
            attempt += 1
            continue
        return check(result, what)


def test_unit_ready(session, lun, retries=5):
    run(session, lun, cdb_test_unit_ready(), 0, 'TEST UNIT READY on LUN %s' % lun, retries)
    return True


def inquiry(session, lun, retries=5):
    result = run(session, lun, cdb_inquiry(), INQUIRY_ALLOC, 'INQUIRY on LUN %s' % lun, retries)
    return parse_inquiry(result.data)


def report_luns(session, lun=0, retries=5, allocation=16 + 8 * 256):
    """All LUNs the target reports; grows the allocation when the list is longer (bounded)."""
    while True:
        result = run(session, lun, cdb_report_luns(allocation), allocation, 'REPORT LUNS', retries)
        length, luns = parse_report_luns(result.data)
        if length + 8 <= allocation or allocation >= REPORT_LUNS_MAX_ALLOC:
            return luns
        allocation = min(REPORT_LUNS_MAX_ALLOC, length + 8)


def read_capacity(session, lun, retries=5):
    """READ CAPACITY(16), falling back to READ CAPACITY(10) when the opcode is not supported."""
    try:
        result = run(session, lun, cdb_read_capacity16(), READ_CAPACITY16_ALLOC,
                     'READ CAPACITY(16) on LUN %s' % lun, retries)
        return parse_read_capacity16(result.data)
    except ISCSISCSIError as exc:
        sense = exc.sense or {}
        if not (sense.get('key') == ILLEGAL_REQUEST and sense.get('asc') in (0x20, 0x24)):
            raise
    result = run(session, lun, cdb_read_capacity10(), 8, 'READ CAPACITY(10) on LUN %s' % lun, retries)
    return parse_read_capacity10(result.data)
