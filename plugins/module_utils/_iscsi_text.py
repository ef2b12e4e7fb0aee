# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to the openiscsi.initiator collection: not a public API, may change without notice.

"""iSCSI text keys (RFC 7143 section 6): ``key=value\\0`` codec, binary and numeric values, continuation
buffering, TargetAddress parsing and SendTargets response parsing.  Pure functions, no sockets.
"""

from __future__ import annotations

import base64
import binascii
import re

from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_errors import (
    ISCSILimitError,
    ISCSITextError,
)

MAX_KEY_LEN = 63
DEFAULT_PORT = 3260

REJECT = 'Reject'
IRRELEVANT = 'Irrelevant'
NOT_UNDERSTOOD = 'NotUnderstood'
SPECIAL_VALUES = frozenset([REJECT, IRRELEVANT, NOT_UNDERSTOOD])

_KEY_RE = re.compile(r'\A[A-Za-z0-9.\-+@_]{1,63}\Z')
_HEX_RE = re.compile(r'\A[0-9A-Fa-f]+\Z')
_B64_RE = re.compile(r'\A[A-Za-z0-9+/]+={0,2}\Z')
_DEC_RE = re.compile(r'\A[0-9]+\Z')


def check_key(key):
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise ISCSITextError('invalid text key %r: 1-63 characters of A-Z a-z 0-9 . - + @ _' % (key[:80] if isinstance(key, str) else key,))
    return key


def encode_text(pairs):
    """Encode an iterable of (key, value) pairs, or a dict, as ``key=value\\0`` bytes (UTF-8)."""
    if isinstance(pairs, dict):
        pairs = pairs.items()
    out = []
    for key, value in pairs:
        check_key(key)
        if isinstance(value, bool):
            value = 'Yes' if value else 'No'
        value = str(value)
        if '\0' in value:
            raise ISCSITextError('value of key %s contains a NUL byte' % key)
        out.append(('%s=%s' % (key, value)).encode('utf-8') + b'\0')
    return b''.join(out)


def decode_text(data, max_pairs=100000):
    """Decode a complete text data segment into a list of ``(key, value)`` string pairs, in order.

    Empty segments between NULs (extra padding some targets send) are skipped.  The data must end at a pair
    boundary: bytes after the last NUL mean an incomplete pair (join continued PDUs *before* decoding).
    Duplicates are kept (SendTargets repeats TargetName/TargetAddress); :func:`pairs_to_dict` refuses them.
    """
    data = bytes(data)
    if not data:
        return []
    parts = data.split(b'\0')
    if parts[-1] != b'':
        raise ISCSITextError('text data ends inside a key=value pair (%d bytes without terminating NUL)'
                             % len(parts[-1]))
    pairs = []
    for raw in parts[:-1]:
        if not raw:
            continue
        if len(pairs) >= max_pairs:
            raise ISCSILimitError('more than %d text keys' % max_pairs)
        eq = raw.find(b'=')
        if eq < 0:
            raise ISCSITextError('text segment without "=": %r' % raw[:80])
        try:
            key = raw[:eq].decode('ascii')
            value = raw[eq + 1:].decode('utf-8')
        except UnicodeDecodeError:
            raise ISCSITextError('text segment is not valid UTF-8: %r' % raw[:80])
        check_key(key)
        pairs.append((key, value))
    return pairs


def pairs_to_dict(pairs):
    """Pairs to a dict, refusing a key that occurs twice (not allowed in a negotiation, RFC 7143 6.2)."""
    result = {}
    for key, value in pairs:
        if key in result:
            raise ISCSITextError('key %s sent twice in one negotiation' % key)
        result[key] = value
    return result


class TextBuffer(object):
    """Joins the data segments of continued Text/Login responses with bounds on size and rounds.

    Targets may split a response anywhere, even inside a pair and without the C bit (tgt does), so the raw bytes
    are joined and decoded once the last segment arrived.
    """

    def __init__(self, max_bytes=1048576, max_rounds=4096):
        self.max_bytes = max_bytes
        self.max_rounds = max_rounds
        self.rounds = 0
        self._parts = []
        self._size = 0

    def add(self, data):
        self.rounds += 1
        if self.rounds > self.max_rounds:
            raise ISCSILimitError('response continued for more than %d PDUs' % self.max_rounds)
        self._size += len(data)
        if self._size > self.max_bytes:
            raise ISCSILimitError('text response larger than %d bytes' % self.max_bytes)
        if data:
            self._parts.append(bytes(data))

    @property
    def size(self):
        return self._size

    def getvalue(self):
        return b''.join(self._parts)

    def pairs(self):
        return decode_text(self.getvalue())


# ---------------------------------------------------------------------------------------------------------------------
# Values

def decode_binary(value, max_len=None):
    """Decode a binary value: ``0x``/``0X`` hex (odd digit count means a leading zero nibble) or ``0b``/``0B``
    base64 (padding optional).  Anything else, an empty value, or an invalid character raises ISCSITextError."""
    if not isinstance(value, str) or len(value) < 3 or value[0] != '0' or value[1] not in 'xXbB':
        raise ISCSITextError('not a binary value (needs a 0x or 0b prefix)')
    body = value[2:]
    if value[1] in 'xX':
        if not _HEX_RE.match(body):
            raise ISCSITextError('invalid hex digits in binary value')
        if len(body) % 2:
            body = '0' + body
        result = binascii.unhexlify(body)
    else:
        if not _B64_RE.match(body):
            raise ISCSITextError('invalid base64 characters in binary value')
        stripped = body.rstrip('=')
        if len(stripped) % 4 == 1:
            raise ISCSITextError('invalid base64 length in binary value')
        try:
            result = base64.b64decode(stripped + '=' * (-len(stripped) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ISCSITextError('invalid base64 binary value')
    if max_len is not None and len(result) > max_len:
        raise ISCSITextError('binary value of %d bytes, longer than %d' % (len(result), max_len))
    return result


def encode_hex(data):
    return '0x' + binascii.hexlify(bytes(data)).decode('ascii')


def encode_base64(data):
    return '0b' + base64.b64encode(bytes(data)).decode('ascii')


def decode_number(value, minimum=0, maximum=2 ** 64 - 1):
    """Decode a numerical value: decimal, or ``0x`` hex.  ``0b…`` (base64) and signs are refused: never int(v, 0)."""
    if not isinstance(value, str) or not value:
        raise ISCSITextError('empty numerical value')
    if value[:2] in ('0x', '0X'):
        digits, base, limit = value[2:], 16, len('%x' % maximum)
        if not _HEX_RE.match(digits):
            raise ISCSITextError('invalid hex number %r' % value[:40])
    elif _DEC_RE.match(value):
        digits, base, limit = value, 10, len('%d' % maximum)
    else:
        raise ISCSITextError('invalid number %r' % value[:40])
    # Leading zeros aside, more digits than the maximum has is out of range: decided before int(), which refuses
    # (ValueError) decimal strings of 4300+ digits and would spend quadratic time on long ones anyway.
    significant = digits.lstrip('0')
    if len(significant) > limit:
        raise ISCSITextError('number of %d digits outside %d..%d' % (len(significant), minimum, maximum))
    number = int(significant or '0', base)
    if not minimum <= number <= maximum:
        raise ISCSITextError('number %d outside %d..%d' % (number, minimum, maximum))
    return number


def decode_bool(value):
    if value == 'Yes':
        return True
    if value == 'No':
        return False
    raise ISCSITextError('invalid boolean value %r (Yes or No)' % value[:40])


# ---------------------------------------------------------------------------------------------------------------------
# TargetAddress and SendTargets

def parse_target_address(value, default_port=DEFAULT_PORT):
    """Parse ``host[:port][,tpgt]`` where host is a name, IPv4 address or ``[IPv6]`` (zone allowed).

    Returns a dict ``{'address', 'port', 'tpgt'}``; ``tpgt`` is None when absent.  An IPv6 address without brackets
    is accepted only without port.
    """
    if not isinstance(value, str) or not value.strip():
        raise ISCSITextError('empty TargetAddress')
    value = value.strip()
    tpgt = None
    if ',' in value:
        value, _sep, tag = value.rpartition(',')
        tpgt = decode_number(tag.strip(), 0, 65535) if tag.strip() else None
    port = default_port
    if value.startswith('['):
        end = value.find(']')
        if end < 0:
            raise ISCSITextError('TargetAddress %r: unterminated [' % value[:80])
        host = value[1:end]
        rest = value[end + 1:]
        if rest:
            if not rest.startswith(':') or not rest[1:]:
                raise ISCSITextError('TargetAddress %r: garbage after ]' % value[:80])
            port = decode_number(rest[1:], 1, 65535)
        if not host or ':' not in host:
            raise ISCSITextError('TargetAddress %r: brackets without an IPv6 address' % value[:80])
    elif value.count(':') > 1:
        host = value                                  # bare IPv6, no port possible
    elif ':' in value:
        host, _sep, port_s = value.partition(':')
        port = decode_number(port_s, 1, 65535)
    else:
        host = value
    if not host or any(c in host for c in ' \t/\\[]'):
        raise ISCSITextError('TargetAddress %r: invalid host' % value[:80])
    return {'address': host, 'port': port, 'tpgt': tpgt}


def format_portal(address, port, tpgt=None):
    """``addr:port[,tpgt]`` with IPv6 in brackets (zone kept)."""
    host = '[%s]' % address if ':' in address else address
    text = '%s:%d' % (host, port)
    if tpgt is not None:
        text += ',%d' % tpgt
    return text


def parse_send_targets(pairs):
    """Turn SendTargets response pairs into ``[{'name', 'alias', 'portals': [{'address','port','tpgt'}]}]``.

    TargetAddress and TargetAlias belong to the TargetName before them; a TargetAddress before any TargetName is a
    protocol error.  Duplicate portals of one target are kept once; the order of the response is preserved.
    """
    targets = []
    current = None
    current_keys = set()                        # the current target's portals, to drop repeats in O(1)
    seen = {}                                   # many targets share one address: parse each spelling once
    for key, value in pairs:
        if key == 'TargetName':
            if not value:
                raise ISCSITextError('empty TargetName in SendTargets response')
            current = {'name': value, 'alias': None, 'portals': []}
            current_keys = set()
            targets.append(current)
        elif key == 'TargetAddress':
            if current is None:
                raise ISCSITextError('TargetAddress before any TargetName in SendTargets response')
            if value not in seen:
                seen[value] = parse_target_address(value)
            portal = seen[value]
            key = (portal['address'], portal['port'], portal['tpgt'])
            if key not in current_keys:         # a list search here made parsing quadratic in a target's portals
                current_keys.add(key)
                current['portals'].append(dict(portal))
        elif key == 'TargetAlias':
            if current is not None:
                current['alias'] = value
        elif key == 'SendTargets' and value in SPECIAL_VALUES:
            raise ISCSITextError('target answered SendTargets=%s' % value)
        # other keys are ignored (vendor extensions)
    return targets
