# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _iscsi_text as T
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_errors import (
    ISCSILimitError,
    ISCSITextError,
)


# --------------------------------------------------------------------------------------------- key=value codec
def test_encode_decode_round_trip_order_kept():
    pairs = [('InitiatorName', 'iqn.2024-01.test:a'), ('SessionType', 'Normal'), ('HeaderDigest', 'CRC32C,None'),
             ('ImmediateData', True), ('MaxBurstLength', 262144)]
    data = T.encode_text(pairs)
    assert data.endswith(b'\0') and data.count(b'\0') == 5
    assert T.decode_text(data) == [(k, v if isinstance(v, str) else ('Yes' if v is True else str(v)))
                                   for k, v in pairs]


def test_empty_value_and_equals_in_value():
    data = b'TargetAlias=\0X-vendor.note=a=b==c\0'
    assert T.decode_text(data) == [('TargetAlias', ''), ('X-vendor.note', 'a=b==c')]
    assert T.encode_text([('TargetAlias', '')]) == b'TargetAlias=\0'


def test_extra_nuls_tolerated_and_empty_data():
    assert T.decode_text(b'a=1\0\0\0b=2\0') == [('a', '1'), ('b', '2')]
    assert T.decode_text(b'') == []


def test_utf8_values():
    data = T.encode_text([('TargetAlias', 'dísk ✓')])
    assert T.decode_text(data) == [('TargetAlias', 'dísk ✓')]


@pytest.mark.parametrize('data, match', [
    (b'a=1\0b=2', 'ends inside'),
    (b'novalue\0', 'without "="'),
    (b'=value\0', 'invalid text key'),
    (b'bad key=1\0', 'invalid text key'),
    (b'k' * 64 + b'=1\0', 'invalid text key'),
    (b'k=\xff\xfe\0', 'UTF-8'),
    (b'\xc3\xa9=1\0', 'UTF-8'),
])
def test_decode_errors(data, match):
    with pytest.raises(ISCSITextError, match=match):
        T.decode_text(data)


def test_key_of_63_bytes_ok():
    key = 'K' * 63
    assert T.decode_text(T.encode_text([(key, 'v')])) == [(key, 'v')]
    with pytest.raises(ISCSITextError):
        T.encode_text([('K' * 64, 'v')])
    with pytest.raises(ISCSITextError, match='NUL'):
        T.encode_text([('k', 'a\0b')])


def test_duplicates_kept_by_decoder_refused_in_negotiation():
    pairs = T.decode_text(b'TargetName=a\0TargetName=b\0')
    assert pairs == [('TargetName', 'a'), ('TargetName', 'b')]
    with pytest.raises(ISCSITextError, match='sent twice'):
        T.pairs_to_dict(pairs)


@pytest.mark.parametrize('value', [T.REJECT, T.IRRELEVANT, T.NOT_UNDERSTOOD])
def test_special_values_decode_as_text(value):
    assert T.decode_text(('HeaderDigest=%s\0' % value).encode()) == [('HeaderDigest', value)]
    assert value in T.SPECIAL_VALUES


# --------------------------------------------------------------------------------------------- continuation
@pytest.mark.parametrize('split_at', [1, 5, 11, 12, 13, 20, 26, 27])
def test_pair_split_across_pdus(split_at):
    data = b'TargetName=iqn.a\0TargetAddress=10.0.0.1:3260,1\0'
    buf = T.TextBuffer()
    buf.add(data[:split_at])        # first PDU (F=0 with or without C: the buffer does not care)
    buf.add(data[split_at:])
    assert buf.pairs() == [('TargetName', 'iqn.a'), ('TargetAddress', '10.0.0.1:3260,1')]
    assert buf.rounds == 2 and buf.size == len(data)


def test_split_before_decode_would_fail():
    data = b'TargetName=iqn.a\0TargetAddress=10.0.0.1:3260,1\0'
    with pytest.raises(ISCSITextError):
        T.decode_text(data[:20])


def test_text_buffer_limits():
    buf = T.TextBuffer(max_bytes=10, max_rounds=100)
    buf.add(b'a' * 10)
    with pytest.raises(ISCSILimitError, match='larger than 10'):
        buf.add(b'b')
    rounds = T.TextBuffer(max_bytes=1000, max_rounds=3)
    for _ignored in range(3):
        rounds.add(b'')
    with pytest.raises(ISCSILimitError, match='more than 3'):
        rounds.add(b'')


def test_max_pairs_bound():
    with pytest.raises(ISCSILimitError):
        T.decode_text(b'a=1\0' * 11, max_pairs=10)


# --------------------------------------------------------------------------------------------- binary / numbers
@pytest.mark.parametrize('value, expected', [
    ('0x00', b'\x00'),
    ('0xdeadBEEF', b'\xde\xad\xbe\xef'),
    ('0XABCD', b'\xab\xcd'),
    ('0xabc', b'\x0a\xbc'),                 # odd digit count: implied leading zero nibble
    ('0x1', b'\x01'),
    ('0bAAECAw==', b'\x00\x01\x02\x03'),    # base64 with padding
    ('0bAAECAw', b'\x00\x01\x02\x03'),      # without padding
    ('0BAAEC', b'\x00\x01\x02'),
    ('0b/w==', b'\xff'),
])
def test_decode_binary(value, expected):
    assert T.decode_binary(value) == expected


@pytest.mark.parametrize('value', ['0x', '0b', '0xg1', '0x12 ', 'abcd', '1234', '', '0b!!', '0bA', '0b====',
                                   '0x-1', 'x12'])
def test_decode_binary_invalid(value):
    with pytest.raises(ISCSITextError):
        T.decode_binary(value)


def test_0b101_is_base64_not_a_binary_number():
    assert T.decode_binary('0b101') != b'\x05'
    with pytest.raises(ISCSITextError):
        T.decode_number('0b101')


def test_binary_max_len():
    assert len(T.decode_binary('0x' + 'ab' * 1024, max_len=1024)) == 1024
    with pytest.raises(ISCSITextError, match='longer'):
        T.decode_binary('0x' + 'ab' * 1025, max_len=1024)


def test_encoders_round_trip():
    data = bytes(range(256))
    assert T.decode_binary(T.encode_hex(data)) == data
    assert T.decode_binary(T.encode_base64(data)) == data
    assert T.encode_hex(b'\x0f') == '0x0f'


@pytest.mark.parametrize('value, expected', [('0', 0), ('255', 255), ('0x10', 16), ('0XfF', 255),
                                             ('00012', 12), ('18446744073709551615', 2 ** 64 - 1)])
def test_decode_number(value, expected):
    assert T.decode_number(value) == expected


@pytest.mark.parametrize('value', ['', '-1', '+1', '1.0', ' 1', '0x', '0b1', '1e3', '18446744073709551616'])
def test_decode_number_invalid(value):
    with pytest.raises(ISCSITextError):
        T.decode_number(value)


def test_decode_number_range():
    assert T.decode_number('256', 0, 256) == 256
    with pytest.raises(ISCSITextError, match='outside'):
        T.decode_number('256', 0, 255)


def test_decode_bool():
    assert T.decode_bool('Yes') is True and T.decode_bool('No') is False
    with pytest.raises(ISCSITextError):
        T.decode_bool('yes')


# --------------------------------------------------------------------------------------------- TargetAddress
@pytest.mark.parametrize('value, expected', [
    ('192.0.2.1:3260,1', ('192.0.2.1', 3260, 1)),
    ('192.0.2.1:3261', ('192.0.2.1', 3261, None)),
    ('192.0.2.1', ('192.0.2.1', 3260, None)),
    ('192.0.2.1,2', ('192.0.2.1', 3260, 2)),
    ('[2001:db8::1]:3260,1', ('2001:db8::1', 3260, 1)),
    ('[2001:db8::1]', ('2001:db8::1', 3260, None)),
    ('[2001:db8::1],7', ('2001:db8::1', 3260, 7)),
    ('[fe80::1%eth0]:3260,1', ('fe80::1%eth0', 3260, 1)),
    ('[::1]:13260', ('::1', 13260, None)),
    ('fe80::1', ('fe80::1', 3260, None)),
    ('storage.example.com:3260,12', ('storage.example.com', 3260, 12)),
    ('storage', ('storage', 3260, None)),
    ('192.0.2.1:3260,', ('192.0.2.1', 3260, None)),
])
def test_parse_target_address(value, expected):
    got = T.parse_target_address(value)
    assert (got['address'], got['port'], got['tpgt']) == expected


@pytest.mark.parametrize('value', ['', '   ', '[2001:db8::1', '[2001:db8::1]x', '[]:3260', '[1.2.3.4]',
                                   'host:0', 'host:65536', 'host:abc', ':3260', 'a b:3260', 'host:3260,x',
                                   'host:3260,70000', '[::1]:'])
def test_parse_target_address_invalid(value):
    with pytest.raises(ISCSITextError):
        T.parse_target_address(value)


@pytest.mark.parametrize('address, port, tpgt, text', [
    ('10.0.0.1', 3260, 1, '10.0.0.1:3260,1'),
    ('fe80::1%eth0', 3260, None, '[fe80::1%eth0]:3260'),
    ('host', 1, 0, 'host:1,0'),
])
def test_format_portal(address, port, tpgt, text):
    assert T.format_portal(address, port, tpgt) == text
    back = T.parse_target_address(text)
    assert (back['address'], back['port'], back['tpgt']) == (address, port, tpgt)


# --------------------------------------------------------------------------------------------- SendTargets
def test_send_targets_several_portals_ipv4_ipv6():
    pairs = T.decode_text(
        b'TargetName=iqn.2024-01.test:a\0TargetAddress=192.0.2.1:3260,1\0TargetAddress=[2001:db8::5]:3260,1\0'
        b'TargetAddress=192.0.2.1:3260,1\0TargetAlias=alpha\0'
        b'TargetName=iqn.2024-01.test:b\0TargetAddress=192.0.2.2:3261,2\0'
        b'TargetName=iqn.2024-01.test:c\0')
    targets = T.parse_send_targets(pairs)
    assert [t['name'] for t in targets] == ['iqn.2024-01.test:a', 'iqn.2024-01.test:b', 'iqn.2024-01.test:c']
    assert targets[0]['alias'] == 'alpha'
    assert targets[0]['portals'] == [{'address': '192.0.2.1', 'port': 3260, 'tpgt': 1},
                                     {'address': '2001:db8::5', 'port': 3260, 'tpgt': 1}]
    assert targets[1]['portals'] == [{'address': '192.0.2.2', 'port': 3261, 'tpgt': 2}]
    assert targets[2]['portals'] == []


def test_send_targets_none():
    assert T.parse_send_targets([]) == []


@pytest.mark.parametrize('pairs, match', [
    ([('TargetAddress', '1.2.3.4')], 'before any TargetName'),
    ([('TargetName', '')], 'empty TargetName'),
    ([('SendTargets', 'Reject')], 'Reject'),
    ([('TargetName', 'iqn.a'), ('TargetAddress', '[::1')], 'unterminated'),
])
def test_send_targets_errors(pairs, match):
    with pytest.raises(ISCSITextError, match=match):
        T.parse_send_targets(pairs)
