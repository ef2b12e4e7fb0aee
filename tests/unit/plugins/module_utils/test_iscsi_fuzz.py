# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Hypothesis fuzzing of the decoders: arbitrary input may only raise the library's own ISCSIError, fast.

The PDU decoder and the text decoder tests count the examples they really ran and assert at least 10,000 each;
the other fuzz tests run 1,000 to 2,000.
Marked ``fuzz`` (tens of seconds in total): ``pytest -m fuzz`` runs only these, ``-m 'not fuzz'`` skips them.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.openiscsi.initiator.plugins.module_utils import _iscsi_login as L
from ansible_collections.openiscsi.initiator.plugins.module_utils import _iscsi_pdu as P
from ansible_collections.openiscsi.initiator.plugins.module_utils import _iscsi_scsi as S
from ansible_collections.openiscsi.initiator.plugins.module_utils import _iscsi_text as T
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_chap import ChapCredentials
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_errors import ISCSIError

pytestmark = pytest.mark.fuzz

EXAMPLES = 10000
# CPU seconds one example may take before we call it a hang.  CPU time, not wall time: the decoders are pure
# computation, so a hang burns CPU, while a loaded CI machine only stretches wall time.
SLOW = 2.0
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
COUNTS = {}         # examples really run, per test (read by tooling; asserted below)
SMALL = settings(max_examples=2000, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _guard(fn, *args, **kwargs):
    start = time.process_time()
    try:
        return fn(*args, **kwargs)
    except ISCSIError:
        return None
    finally:
        assert time.process_time() - start < SLOW


# A valid PDU, then damaged: reaches past the header checks far more often than random bytes.
target_pdus = st.one_of(
    st.builds(lambda itt, data: P.text_response(itt, P.RESERVED_TAG, 1, 1, 1, data),
              st.integers(0, 2 ** 32 - 1), st.binary(max_size=64)),
    st.builds(lambda data, cls: P.login_response(b'\x80' * 6, 1, 1, 1, 1, 1, 0, 1, True, data, status_class=cls),
              st.binary(max_size=64), st.integers(0, 255)),
    st.builds(lambda data, off: P.data_in(1, 0, off, data, 1, 1, status=0),
              st.binary(max_size=64), st.integers(0, 2 ** 32 - 1)),
    st.builds(lambda data: P.nop_in(P.RESERVED_TAG, 7, 1, 1, 1, data=data), st.binary(max_size=32)),
)


@st.composite
def damaged_wire(draw):
    pdu = draw(target_pdus)
    if draw(st.booleans()):
        pdu.ahs = b'\0' * (4 * draw(st.integers(0, 3)))
    hd, dd = draw(st.booleans()), draw(st.booleans())
    wire = bytearray(pdu.encode(hd, dd))
    for _ignored in range(draw(st.integers(0, 4))):
        pos = draw(st.integers(0, len(wire) - 1))
        wire[pos] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(wire)))
    return bytes(wire[:cut]) if draw(st.booleans()) else bytes(wire), hd, dd


pdu_inputs = st.one_of(
    st.tuples(st.binary(max_size=400), st.booleans(), st.booleans()),       # anything at all
    damaged_wire(),                                                          # valid PDUs, damaged
)


def test_fuzz_decode_pdu():
    count = [0]

    @FUZZ
    @given(pdu_inputs, st.sampled_from([0, 64, 8192, P.MAX_DSL]), st.booleans())
    def run(case, limit, target_only):
        data, hd, dd = case
        count[0] += 1
        allowed = P.TARGET_OPCODES if target_only else P.KNOWN_OPCODES
        result = _guard(P.decode_pdu, data, limit, hd, dd, allowed)
        if result is not None:
            pdu, used = result
            assert used <= len(data) and len(pdu.data) <= limit
            _guard(P.login_response_fields, pdu)
            _guard(P.data_in_fields, pdu)
            _guard(P.scsi_response_fields, pdu)
            _guard(P.request_fields, pdu)
            _guard(P.decode_lun, pdu.lun)
    run()
    COUNTS['test_fuzz_decode_pdu'] = count[0]
    assert count[0] >= EXAMPLES


def test_fuzz_read_pdu_stream_chunks():
    count = [0]

    @SMALL
    @given(st.binary(max_size=300), st.integers(1, 64), st.booleans())
    def run(data, chunk, hd):
        count[0] += 1
        pos = [0]

        def rx(n):
            out = bytearray()
            while len(out) < n:
                if pos[0] >= len(data):
                    raise P.ISCSITruncatedError('EOF')
                piece = data[pos[0]:pos[0] + min(chunk, n - len(out))]
                pos[0] += len(piece)
                out += piece
            return bytes(out)
        _guard(P.read_pdu, rx, 1024, hd, False)
        assert pos[0] <= len(data)
    run()
    COUNTS['test_fuzz_read_pdu_stream_chunks'] = count[0]
    assert count[0] >= 2000


# --------------------------------------------------------------------------------------------- text
text_bytes = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from([b'TargetName', b'TargetAddress', b'=', b'\0', b'iqn.2024-01.a:b', b'[::1]:3260,1',
                              b'1.2.3.4', b':', b',', b'0x', b'0b', b'\xc3\xa9', b'\xff', b'X-a', b'Reject',
                              b'TargetAlias', b'k' * 64]), max_size=40).map(b''.join),
)


def test_fuzz_decode_text():
    count = [0]

    @FUZZ
    @given(text_bytes, st.integers(1, 50))
    def run(data, split):
        count[0] += 1
        pairs = _guard(T.decode_text, data)
        if pairs is not None:
            for key, value in pairs:
                assert isinstance(key, str) and 1 <= len(key) <= 63 and isinstance(value, str)
            _guard(T.pairs_to_dict, pairs)
            _guard(T.parse_send_targets, pairs)
        # the same bytes delivered in pieces decode identically
        buf = T.TextBuffer(max_bytes=10000, max_rounds=1000)
        for i in range(0, len(data), split):
            buf.add(data[i:i + split])
        again = _guard(buf.pairs)
        assert again == pairs
    run()
    COUNTS['test_fuzz_decode_text'] = count[0]
    assert count[0] >= EXAMPLES


def test_fuzz_text_round_trip():
    count = [0]
    keys = st.text(alphabet='ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-+@_', min_size=1,
                   max_size=63)
    values = st.text(max_size=50).filter(lambda v: '\0' not in v)

    @settings(max_examples=1000, deadline=None, database=None)
    @given(st.lists(st.tuples(keys, values), max_size=10))
    def run(pairs):
        count[0] += 1
        assert T.decode_text(T.encode_text(pairs)) == pairs
    run()
    COUNTS['test_fuzz_text_round_trip'] = count[0]
    assert count[0] >= 1000


@SMALL
@given(st.text(max_size=80))
def test_fuzz_value_decoders(value):
    _guard(T.decode_binary, value)
    _guard(T.decode_number, value)
    _guard(T.decode_bool, value)
    address = _guard(T.parse_target_address, value)
    if address is not None:
        assert 1 <= address['port'] <= 65535 and address['address']


@SMALL
@given(st.binary(min_size=1, max_size=40))
def test_fuzz_scsi_parsers(data):
    _guard(S.parse_sense, data)
    _guard(S.parse_inquiry, data)
    _guard(S.parse_report_luns, data)
    _guard(S.parse_read_capacity16, data)


# --------------------------------------------------------------------------------------------- login
@SMALL
@given(st.lists(st.tuples(st.sampled_from(['AuthMethod', 'CHAP_A', 'CHAP_I', 'CHAP_C', 'CHAP_N', 'CHAP_R',
                                           'HeaderDigest', 'MaxBurstLength', 'InitialR2T', 'TargetAddress',
                                           'MaxRecvDataSegmentLength', 'OFMarkInt', 'Foo']),
                          st.sampled_from(['CHAP', 'None', '5', '0x01', '0bAQ==', '256', 'Yes', 'No', 'CRC32C',
                                           'Reject', '', '512', '[::1]', 'x'])), max_size=6),
       st.integers(0, 3), st.integers(0, 3), st.booleans(), st.booleans(), st.integers(0, 3), st.booleans())
def test_fuzz_login_responses(pairs, csg, nsg, transit, cont, status_class, mutual):
    chap = ChapCredentials('u', 'secretsecret1', 't', 'secretsecret2') if mutual else ChapCredentials('u', 'p')
    neg = L.LoginNegotiator(L.LoginParams('iqn.2024-01.a:b', target_name='iqn.2024-01.a:t', isid=b'\x80' * 6,
                                          chap=chap))
    req = neg.first_request()
    for _ignored in range(3):
        try:
            data = T.encode_text(pairs)
        except ISCSIError:
            return
        rsp = P.login_response(b'\x80' * 6, 1, req.itt, 1, 1, 1, csg, nsg, transit, data, cont=cont,
                               status_class=status_class if status_class != 1 or pairs else 0)
        req = _guard(neg.handle, rsp)
        if req is None:
            return
