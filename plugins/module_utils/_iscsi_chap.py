# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to the openiscsi.initiator collection: not a public API, may change without notice.

"""CHAP for iSCSI (RFC 1994, RFC 7143 12.1.3): response computation, algorithm selection, mutual verification.

``R = H(bytes([CHAP_I]) + secret + challenge)``.  Algorithms by IANA number: 5 MD5 (default), 6 SHA-1, 7 SHA-256,
8 SHA3-256.  Note tgt interprets 7 as SHA-1 and accepts only 5 and 7: offer stronger algorithms only by an explicit
ordered list.  Secrets are handled as bytes and never put into messages or reprs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_errors import (
    ISCSIAuthError,
    ISCSITextError,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_text import (
    decode_binary,
    decode_number,
    encode_base64,
    encode_hex,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._textrules import ascii_int

CHAP_MD5 = 5
CHAP_SHA1 = 6
CHAP_SHA256 = 7
CHAP_SHA3_256 = 8

ALGORITHMS = {
    CHAP_MD5: ('MD5', 'md5', 16),
    CHAP_SHA1: ('SHA1', 'sha1', 20),
    CHAP_SHA256: ('SHA256', 'sha256', 32),
    CHAP_SHA3_256: ('SHA3-256', 'sha3_256', 32),
}
# Names as iscsid.conf spells them (node.session.auth.chap_algs) and friendly aliases.
ALGORITHM_NAMES = {
    'MD5': CHAP_MD5, 'SHA1': CHAP_SHA1, 'SHA-1': CHAP_SHA1, 'SHA256': CHAP_SHA256, 'SHA-256': CHAP_SHA256,
    'SHA3-256': CHAP_SHA3_256, 'SHA3_256': CHAP_SHA3_256,
}
DEFAULT_ALGORITHMS = (CHAP_MD5,)
MAX_CHALLENGE = 1024
MIN_CHALLENGE = 1


def algorithm_number(value):
    """Accept 5..8 (int or decimal string) or a name (MD5, SHA1, SHA256, SHA3-256); return the number."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and ascii_int(value.strip()) is not None:
        number = ascii_int(value.strip())
    elif isinstance(value, str) and value.strip().upper() in ALGORITHM_NAMES:
        number = ALGORITHM_NAMES[value.strip().upper()]
    else:
        raise ValueError('unknown CHAP algorithm %r (use MD5, SHA1, SHA256, SHA3-256 or 5-8)' % (value,))
    if number not in ALGORITHMS:
        raise ValueError('unknown CHAP algorithm %r (use MD5, SHA1, SHA256, SHA3-256 or 5-8)' % (value,))
    return number


def algorithm_list(values):
    """Normalise an ordered list of algorithms, removing duplicates; empty means the default (MD5)."""
    result = []
    for value in values or ():
        number = algorithm_number(value)
        if number not in result:
            result.append(number)
    return tuple(result) or DEFAULT_ALGORITHMS


def _hasher(algorithm):
    name = ALGORITHMS[algorithm][1]
    try:
        return hashlib.new(name, usedforsecurity=False)
    except TypeError:                               # Python without the usedforsecurity argument
        return hashlib.new(name)


def digest_size(algorithm):
    return ALGORITHMS[algorithm][2]


def _as_bytes(secret):
    if isinstance(secret, str):
        return secret.encode('utf-8')
    return bytes(secret)


def chap_response(algorithm, identifier, secret, challenge):
    """H(identifier byte + secret + challenge)."""
    if algorithm not in ALGORITHMS:
        raise ISCSIAuthError('unsupported CHAP algorithm %r' % (algorithm,))
    if not 0 <= identifier <= 255:
        raise ISCSIAuthError('CHAP identifier %r outside 0..255' % (identifier,))
    h = _hasher(algorithm)
    h.update(bytes([identifier]))
    h.update(_as_bytes(secret))
    h.update(bytes(challenge))
    return h.digest()


def parse_identifier(value):
    """CHAP_I: a number 0..255 (decimal or 0x hex)."""
    try:
        return decode_number(value, 0, 255)
    except ISCSITextError:
        raise ISCSIAuthError('target sent an invalid CHAP_I (must be 0..255)')


def parse_challenge(value):
    """CHAP_C: binary value of 1..1024 bytes."""
    try:
        challenge = decode_binary(value)
    except ISCSITextError as exc:
        raise ISCSIAuthError('target sent an invalid CHAP_C: %s' % exc.message)
    if not MIN_CHALLENGE <= len(challenge) <= MAX_CHALLENGE:
        raise ISCSIAuthError('target sent a CHAP_C of %d bytes (allowed 1..%d)' % (len(challenge), MAX_CHALLENGE))
    return challenge


def new_challenge(algorithm, avoid=None):
    """A random challenge (at least 16 bytes, at least the digest size) different from ``avoid``."""
    length = max(16, digest_size(algorithm))
    while True:
        challenge = secrets.token_bytes(length)
        if challenge != avoid:
            return challenge


def new_identifier():
    return secrets.randbelow(256)


def encode_value(data, encoding='hex'):
    return encode_base64(data) if encoding == 'base64' else encode_hex(data)


class ChapCredentials(object):
    """One-way (username/password) and optional mutual (username_in/password_in) CHAP settings.

    ``algorithms`` is the ordered list offered as CHAP_A.  ``require_chap`` (always on for mutual) refuses a
    target that selects AuthMethod=None.  ``response_encoding`` is ``hex`` or ``base64`` for CHAP_R/CHAP_C.
    """

    __slots__ = ('username', '_password', 'username_in', '_password_in', 'algorithms', 'require_chap',
                 'response_encoding')

    def __init__(self, username, password, username_in=None, password_in=None, algorithms=None,
                 require_chap=False, response_encoding='hex'):
        if not username:
            raise ValueError('CHAP username is required')
        if password is None or len(_as_bytes(password)) == 0:
            raise ValueError('CHAP password is required')
        if (username_in is None) != (password_in is None) or (password_in is not None and not password_in):
            raise ValueError('mutual CHAP needs both username_in and password_in')
        if response_encoding not in ('hex', 'base64'):
            raise ValueError('response_encoding must be hex or base64')
        self.username = username
        self._password = _as_bytes(password)
        self.username_in = username_in
        self._password_in = _as_bytes(password_in) if password_in is not None else None
        self.algorithms = algorithm_list(algorithms)
        self.require_chap = bool(require_chap) or self.mutual
        self.response_encoding = response_encoding

    @property
    def mutual(self):
        return self._password_in is not None

    def respond(self, algorithm, identifier, challenge):
        return chap_response(algorithm, identifier, self._password, challenge)

    def verify_target(self, algorithm, identifier, challenge, name, response):
        """Check the target's CHAP_N and CHAP_R for our challenge; raise ISCSIAuthError if either is wrong."""
        expected = chap_response(algorithm, identifier, self._password_in, challenge)
        name_ok = hmac.compare_digest(_as_bytes(name), _as_bytes(self.username_in))
        response_ok = hmac.compare_digest(bytes(response), expected)
        if not (name_ok and response_ok):
            raise ISCSIAuthError('mutual CHAP failed: the target did not prove knowledge of the incoming secret '
                                 '(%s)' % ('wrong CHAP_R' if name_ok else 'wrong CHAP_N'))

    def __repr__(self):
        return '<ChapCredentials user=%r mutual=%s algorithms=%r>' % (self.username, self.mutual, self.algorithms)
