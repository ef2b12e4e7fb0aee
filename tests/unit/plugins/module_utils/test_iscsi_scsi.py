# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import struct

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _iscsi_scsi as S
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_errors import (
    ISCSIProtocolError,
    ISCSISCSIError,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_session import ScsiResult

UA_SENSE = bytes([0x70, 0, 0x06, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x29, 0x00, 0, 0, 0, 0])
LUN_NOT_SUPPORTED = bytes([0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x25, 0x00, 0, 0, 0, 0])
INVALID_OPCODE = bytes([0x72, 0x05, 0x20, 0x00, 0, 0, 0, 0])


class StubSession(object):
    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def scsi_command(self, lun, cdb, allocation):
        self.calls.append((lun, bytes(cdb), allocation))
        answer = self.answers.pop(0)
        return answer(cdb, allocation) if callable(answer) else answer


# --------------------------------------------------------------------------------------------- CDBs
def test_cdbs():
    assert S.cdb_test_unit_ready() == bytes(6)
    assert S.cdb_inquiry(255) == bytes([0x12, 0, 0, 0, 255, 0])
    assert S.cdb_inquiry(96, evpd=True, page=0x83) == bytes([0x12, 1, 0x83, 0, 96, 0])
    assert S.cdb_report_luns(2064) == bytes([0xA0, 0, 0, 0, 0, 0]) + struct.pack('>I', 2064) + bytes(2)
    assert S.cdb_read_capacity16() == bytes([0x9E, 0x10]) + bytes(8) + struct.pack('>I', 32) + bytes(2)
    assert S.cdb_read_capacity10() == bytes([0x25]) + bytes(9)
    assert len(S.cdb_report_luns(16)) == 12 and len(S.cdb_read_capacity16()) == 16


# --------------------------------------------------------------------------------------------- sense
def test_fixed_sense():
    sense = S.parse_sense(UA_SENSE)
    assert (sense['key'], sense['asc'], sense['ascq']) == (6, 0x29, 0)
    assert sense['key_name'] == 'UNIT ATTENTION'
    assert sense['description'] == 'power on, reset, or bus device reset occurred'
    assert not sense['deferred'] and sense['information'] is None


def test_fixed_sense_with_information_and_deferred():
    raw = bytes([0xF1, 0, 0x03, 0, 0, 0x12, 0x34, 10, 0, 0, 0, 0, 0x11, 0x00])
    sense = S.parse_sense(raw)
    assert sense['deferred'] and sense['key'] == 3 and sense['information'] == 0x1234


def test_descriptor_sense_with_information():
    raw = bytes([0x72, 0x04, 0x44, 0x00, 0, 0, 0, 12]) + bytes([0x00, 0x0A, 0x80, 0]) + struct.pack('>Q', 77)
    sense = S.parse_sense(raw)
    assert (sense['key'], sense['asc'], sense['ascq'], sense['information']) == (4, 0x44, 0, 77)
    assert S.parse_sense(INVALID_OPCODE)['description'] == 'invalid command operation code'


@pytest.mark.parametrize('raw', [b'\x70', b'\x70\x00', b'\x72', b'\x7f' * 3, bytes([0x72, 0, 0, 0, 0, 0, 0, 200, 0])])
def test_short_or_odd_sense_never_crashes(raw):
    sense = S.parse_sense(raw)
    assert sense['response_code'] == raw[0] & 0x7F


def test_empty_sense_and_format():
    assert S.parse_sense(b'') is None
    assert S.format_sense(None) == 'no sense data'
    assert S.format_sense(S.parse_sense(LUN_NOT_SUPPORTED)) == \
        'sense key 0x5 (ILLEGAL REQUEST), ASC/ASCQ 25/00, logical unit not supported'


# --------------------------------------------------------------------------------------------- parsers
def test_parse_inquiry():
    data = bytes([0x00, 0x80, 0x05, 0x02, 31, 0, 0, 0]) + b'IET     VIRTUAL-DISK    0001'
    inq = S.parse_inquiry(data)
    assert inq == {'peripheral_qualifier': 0, 'device_type': 0, 'device_type_name': 'disk', 'removable': True,
                   'version': 5, 'response_data_format': 2, 'vendor': 'IET', 'product': 'VIRTUAL-DISK',
                   'revision': '0001'}
    ctrl = S.parse_inquiry(bytes([0x0C, 0, 5, 2, 31]))
    assert ctrl['device_type_name'] == 'storage array controller' and ctrl['vendor'] == ''
    assert S.parse_inquiry(bytes([0x7F, 0, 0, 0, 0]))['peripheral_qualifier'] == 3
    with pytest.raises(ISCSIProtocolError):
        S.parse_inquiry(b'\0' * 4)


def test_parse_report_luns():
    data = struct.pack('>I4x', 24) + bytes(8) + bytes([0, 1]) + bytes(6) + bytes([0x41, 0x2C]) + bytes(6)
    assert S.parse_report_luns(data) == (24, [0, 1, 300])
    # list longer than the data we got: only complete entries are returned
    assert S.parse_report_luns(data[:20]) == (24, [0])
    with pytest.raises(ISCSIProtocolError):
        S.parse_report_luns(b'\0' * 7)


@pytest.mark.parametrize('last_lba, block, size', [
    (20479, 512, 10485760),                 # 10 MiB file, 512-byte blocks: (last LBA + 1) * block length
    (0, 4096, 4096),
    (2 ** 40 - 1, 4096, 2 ** 40 * 4096),
])
def test_read_capacity16_maths(last_lba, block, size):
    data = struct.pack('>QI', last_lba, block) + bytes([0x00, 0x03, 0x80, 0x00]) + bytes(16)
    cap = S.parse_read_capacity16(data)
    assert cap['size_bytes'] == size and cap['blocks'] == last_lba + 1 and cap['block_size'] == block
    assert cap['logical_per_physical_exponent'] == 3 and cap['thin_provisioned']
    with pytest.raises(ISCSIProtocolError):
        S.parse_read_capacity16(data[:11])


def test_read_capacity10():
    cap = S.parse_read_capacity10(struct.pack('>II', 2047, 512))
    assert cap['size_bytes'] == 2048 * 512
    with pytest.raises(ISCSIProtocolError):
        S.parse_read_capacity10(b'\0' * 7)


# --------------------------------------------------------------------------------------------- retries
def test_unit_attention_is_retried():
    stub = StubSession([ScsiResult(2, sense=UA_SENSE), ScsiResult(2, sense=UA_SENSE), ScsiResult(0)])
    assert S.test_unit_ready(stub, 1) is True
    assert len(stub.calls) == 3 and stub.calls[0] == (1, bytes(6), 0)


def test_unit_attention_retry_is_bounded():
    stub = StubSession([ScsiResult(2, sense=UA_SENSE)] * 4)
    with pytest.raises(ISCSISCSIError, match='UNIT ATTENTION') as info:
        S.test_unit_ready(stub, 1, retries=3)
    assert len(stub.calls) == 4 and info.value.retryable


def test_busy_retried_and_other_errors_not():
    stub = StubSession([ScsiResult(0x08), ScsiResult(0x28), ScsiResult(0)])
    S.test_unit_ready(stub, 0)
    assert len(stub.calls) == 3
    stub = StubSession([ScsiResult(2, sense=LUN_NOT_SUPPORTED)])
    with pytest.raises(ISCSISCSIError, match='logical unit not supported') as info:
        S.inquiry(stub, 9)
    assert len(stub.calls) == 1 and not info.value.retryable
    assert info.value.sense['asc'] == 0x25 and info.value.status == 2
    assert info.value.to_dict()['sense']['key'] == 5
    stub = StubSession([ScsiResult(0x18)])
    with pytest.raises(ISCSISCSIError, match='RESERVATION CONFLICT'):
        S.test_unit_ready(stub, 0)


def test_report_luns_grows_allocation():
    def answer(cdb, allocation):
        count = 300
        body = b''.join(bytes([0x40 | (i >> 8), i & 0xFF]) + bytes(6) if i > 255 else bytes([0, i]) + bytes(6)
                        for i in range(count))
        data = struct.pack('>I4x', len(body)) + body
        return ScsiResult(0, data[:allocation])
    stub = StubSession([answer, answer])
    luns = S.report_luns(stub)
    assert luns == list(range(300))
    assert [c[2] for c in stub.calls] == [16 + 8 * 256, 8 + 8 * 300]


def test_read_capacity_falls_back_to_10():
    stub = StubSession([ScsiResult(2, sense=INVALID_OPCODE), ScsiResult(0, struct.pack('>II', 99, 512))])
    assert S.read_capacity(stub, 1)['size_bytes'] == 100 * 512
    stub = StubSession([ScsiResult(2, sense=LUN_NOT_SUPPORTED)])
    with pytest.raises(ISCSISCSIError):
        S.read_capacity(stub, 1)


def test_read_capacity16_after_unit_attention():
    data = struct.pack('>QI', 2047, 512) + bytes(20)
    stub = StubSession([ScsiResult(2, sense=UA_SENSE), ScsiResult(0, data)])
    assert S.read_capacity(stub, 1)['size_bytes'] == 2048 * 512
