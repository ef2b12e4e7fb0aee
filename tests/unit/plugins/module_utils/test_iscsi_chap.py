# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _iscsi_chap as C
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_errors import ISCSIAuthError

CHALLENGE = bytes(range(16))


# Vectors computed independently with `openssl dgst -<alg>` over  0x2a + b'secretsecret1' + bytes(range(16)).
@pytest.mark.parametrize('algorithm, expected', [
    (5, 'ec81cd0a4bf810bfcb485d7600dadf3f'),
    (6, '563873f1f0717e003b971f5171b459719226e931'),
    (7, '55954403e439449807f74596471a25e2b31edd9f17019f69bd8753307f7a8f04'),
    (8, 'ac6a9338ba31f2312a6761a2539a6446922c962735afa50653b89fc0f79fc51b'),
])
def test_chap_vectors(algorithm, expected):
    assert C.chap_response(algorithm, 0x2A, b'secretsecret1', CHALLENGE).hex() == expected
    assert C.chap_response(algorithm, 0x2A, 'secretsecret1', CHALLENGE).hex() == expected
    assert len(bytes.fromhex(expected)) == C.digest_size(algorithm)


@pytest.mark.parametrize('identifier, expected', [(0, 'bf49d203fba52f53d460fd5b8ac01d69'),
                                                  (255, '4b3eef0e03dfe48cd1c4ab928cf105f4')])
def test_chap_identifier_edges(identifier, expected):
    assert C.chap_response(5, identifier, b'p', b'\xff').hex() == expected


@pytest.mark.parametrize('value, expected', [('0', 0), ('255', 255), ('0x00', 0), ('0xff', 255), ('0xFF', 255),
                                             ('042', 42)])
def test_parse_identifier(value, expected):
    assert C.parse_identifier(value) == expected


@pytest.mark.parametrize('value', ['256', '0x100', '-1', '', 'abc', '0b/w=='])
def test_parse_identifier_rejects(value):
    with pytest.raises(ISCSIAuthError, match='CHAP_I'):
        C.parse_identifier(value)


def test_chap_response_rejects_identifier_256_and_unknown_algorithm():
    with pytest.raises(ISCSIAuthError):
        C.chap_response(5, 256, b'p', b'c')
    with pytest.raises(ISCSIAuthError):
        C.chap_response(9, 1, b'p', b'c')


def test_parse_challenge_sizes():
    assert C.parse_challenge('0x' + 'ab' * 1024) == b'\xab' * 1024
    assert C.parse_challenge('0bAQ==') == b'\x01'
    with pytest.raises(ISCSIAuthError, match='1025 bytes'):
        C.parse_challenge('0x' + 'ab' * 1025)
    with pytest.raises(ISCSIAuthError, match='invalid CHAP_C'):
        C.parse_challenge('1234')


def test_1024_byte_challenge_response():
    challenge = bytes(range(256)) * 4
    assert len(C.chap_response(5, 1, b'secret', challenge)) == 16


@pytest.mark.parametrize('values, expected', [
    (None, (5,)), ([], (5,)), (['MD5'], (5,)), (['SHA3-256', 'sha256', 'SHA1', 'MD5'], (8, 7, 6, 5)),
    ([8, '5', 5], (8, 5)), (['sha-256'], (7,)),
])
def test_algorithm_list(values, expected):
    assert C.algorithm_list(values) == expected


@pytest.mark.parametrize('value', ['SHA512', 4, 9, 'x', True])
def test_algorithm_unknown(value):
    with pytest.raises(ValueError):
        C.algorithm_number(value)


def test_own_challenge_random_and_not_the_targets():
    seen = set()
    target_challenge = b'\x00' * 16
    for _ignored in range(50):
        challenge = C.new_challenge(5, avoid=target_challenge)
        assert challenge != target_challenge
        assert len(challenge) == 16
        seen.add(challenge)
    assert len(seen) == 50
    assert len(C.new_challenge(7)) == 32


def test_new_challenge_retries_on_collision(monkeypatch):
    draws = iter([b'\x01' * 16, b'\x01' * 16, b'\x02' * 16])
    monkeypatch.setattr(C.secrets, 'token_bytes', lambda n: next(draws))
    assert C.new_challenge(5, avoid=b'\x01' * 16) == b'\x02' * 16


def test_mutual_verification():
    creds = C.ChapCredentials('init', 'initiatorsecret', 'tgt', 'targetsecret')
    challenge = b'\x10' * 16
    good = C.chap_response(5, 7, b'targetsecret', challenge)
    creds.verify_target(5, 7, challenge, 'tgt', good)
    with pytest.raises(ISCSIAuthError, match='wrong CHAP_R'):
        creds.verify_target(5, 7, challenge, 'tgt', good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(ISCSIAuthError, match='wrong CHAP_N'):
        creds.verify_target(5, 7, challenge, 'other', good)
    with pytest.raises(ISCSIAuthError, match='wrong CHAP_R'):
        creds.verify_target(5, 8, challenge, 'tgt', good)          # other identifier
    with pytest.raises(ISCSIAuthError, match='wrong CHAP_R'):
        creds.verify_target(5, 7, challenge, 'tgt', good[:8])      # truncated response


def test_verify_uses_constant_time_compare(monkeypatch):
    calls = []
    real = C.hmac.compare_digest

    def spy(a, b):
        calls.append((type(a), type(b)))
        return real(a, b)
    monkeypatch.setattr(C.hmac, 'compare_digest', spy)
    creds = C.ChapCredentials('init', 'initiatorsecret', 'tgt', 'targetsecret')
    creds.verify_target(5, 1, b'c' * 16, 'tgt', C.chap_response(5, 1, b'targetsecret', b'c' * 16))
    assert len(calls) == 2


def test_credentials_validation_and_no_secret_in_repr():
    creds = C.ChapCredentials('user', 'TopSecret123', 'tgt', 'OtherSecret456', algorithms=['SHA256', 'MD5'])
    assert creds.mutual and creds.require_chap
    assert creds.algorithms == (7, 5)
    text = repr(creds)
    assert 'TopSecret123' not in text and 'OtherSecret456' not in text
    assert not C.ChapCredentials('user', 'x').require_chap
    with pytest.raises(ValueError):
        C.ChapCredentials('', 'x')
    with pytest.raises(ValueError):
        C.ChapCredentials('u', '')
    with pytest.raises(ValueError):
        C.ChapCredentials('u', 'p', 'tgt', None)
    with pytest.raises(ValueError):
        C.ChapCredentials('u', 'p', response_encoding='base32')


def test_encode_value():
    assert C.encode_value(b'\x01\x02') == '0x0102'
    assert C.encode_value(b'\x01\x02', 'base64') == '0bAQI='
