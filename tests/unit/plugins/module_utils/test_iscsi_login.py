# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _iscsi_login as L
from ansible_collections.openiscsi.initiator.plugins.module_utils import _iscsi_pdu as P
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_chap import (
    ChapCredentials,
    chap_response,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_errors import (
    LOGIN_STATUS,
    ISCSIAuthError,
    ISCSIError,
    ISCSILimitError,
    ISCSILoginError,
    ISCSINegotiationError,
    ISCSIProtocolError,
    ISCSIRedirectError,
    ISCSIRejectError,
    ISCSITextError,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_text import (
    decode_binary,
    decode_text,
    encode_text,
)

INIT = 'iqn.2024-01.test:initiator'
TGT = 'iqn.2024-01.test:target'
ISID = bytes.fromhex('80a1b2c3d4e5')
TARGET_CHALLENGE = bytes(range(16))


def params(**kw):
    kw.setdefault('target_name', TGT)
    kw.setdefault('isid', ISID)
    return L.LoginParams(INIT, **kw)


def pairs_of(pdu):
    return dict(decode_text(pdu.data))


def fields(pdu):
    return P.request_fields(pdu)


class Step(object):
    """Builds target responses matching the negotiator's current request."""

    def __init__(self, neg):
        self.neg = neg
        self.statsn = 100

    def reply(self, request, pairs=(), transit=None, nsg=None, cont=False, status=(0, 0), csg=None, itt=None,
              isid=None, version=0, tsih=0x99, data=None):
        f = fields(request)
        if transit is None:
            transit = f['transit']
        if nsg is None:
            nsg = f['nsg'] if transit else 0
        self.statsn += 1
        body = data if data is not None else encode_text(list(pairs))
        return P.login_response(ISID if isid is None else isid, tsih, f['itt'] if itt is None else itt, self.statsn,
                                f['cmdsn'], f['cmdsn'] + 8, f['csg'] if csg is None else csg, nsg, transit, body,
                                cont=cont, status_class=status[0], status_detail=status[1],
                                version_active=version)


def accept_all(request):
    """Answers for every key of an operational offer, as a compliant target with equal defaults would send."""
    answers = []
    for key, value in decode_text(request.data):
        if key == 'MaxRecvDataSegmentLength':
            answers.append((key, '65536'))          # target's own declaration
        elif key in ('HeaderDigest', 'DataDigest', 'TaskReporting'):
            answers.append((key, value.split(',')[0]))
        else:
            answers.append((key, value))
    return answers


def login_none(neg, step):
    req = neg.first_request()
    req = neg.handle(step.reply(req, [('TargetPortalGroupTag', '1')]))
    assert neg.handle(step.reply(req, accept_all(req))) is None
    return req


# --------------------------------------------------------------------------------------------- no authentication
def test_login_without_auth_full_flow():
    neg = L.LoginNegotiator(params(), itt=5, cmdsn=1)
    step = Step(neg)
    first = neg.first_request()
    f = fields(first)
    assert (f['opcode'], f['immediate'], f['transit'], f['csg'], f['nsg']) == (P.OP_LOGIN_REQ, True, True, 0, 1)
    assert f['isid'] == ISID and f['tsih'] == 0 and f['itt'] == 5 and f['cmdsn'] == 1
    assert list(decode_text(first.data)) == [('InitiatorName', INIT), ('SessionType', 'Normal'),
                                             ('TargetName', TGT), ('AuthMethod', 'None')]
    op = neg.handle(step.reply(first, [('TargetPortalGroupTag', '1'), ('AuthMethod', 'None')]))
    fo = fields(op)
    assert (fo['transit'], fo['csg'], fo['nsg'], fo['cmdsn']) == (True, 1, 3, 1)
    assert fo['exp_statsn'] == step.statsn + 1
    offered = pairs_of(op)
    assert set(offered) == set(L.NORMAL_OFFER)
    assert 'InitiatorName' not in offered and 'TargetName' not in offered     # only in the first PDU
    assert offered['MaxRecvDataSegmentLength'] == '262144' and offered['HeaderDigest'] == 'None'
    assert neg.handle(step.reply(op, accept_all(op), tsih=0x1234)) is None
    assert neg.complete and neg.tsih == 0x1234 and neg.auth_method == 'None'
    assert neg.target_info['TargetPortalGroupTag'] == 1
    assert neg.negotiated['TargetMaxRecvDataSegmentLength'] == 65536
    assert neg.negotiated['MaxRecvDataSegmentLength'] == 262144
    assert neg.negotiated['HeaderDigest'] == 'None'
    assert neg.negotiated['ImmediateData'] is True
    summary = neg.summary()
    assert summary['auth_method'] == 'None' and summary['target_portal_group_tag'] == 1


def test_discovery_offers_only_three_keys():
    neg = L.LoginNegotiator(params(target_name=None))
    step = Step(neg)
    first = neg.first_request()
    assert pairs_of(first) == {'InitiatorName': INIT, 'SessionType': 'Discovery', 'AuthMethod': 'None'}
    op = neg.handle(step.reply(first))
    assert set(pairs_of(op)) == set(L.DISCOVERY_OFFER)
    assert neg.handle(step.reply(op, accept_all(op))) is None


def test_target_answers_t0_to_security_transit():
    neg = L.LoginNegotiator(params())
    step = Step(neg)
    first = neg.first_request()
    again = neg.handle(step.reply(first, [('AuthMethod', 'None')], transit=False))
    fa = fields(again)
    assert (fa['transit'], fa['csg'], fa['nsg']) == (True, 0, 1) and again.data == b''
    op = neg.handle(step.reply(again))
    assert fields(op)['csg'] == 1


def test_target_proposes_keys_with_t0_like_tgt():
    neg = L.LoginNegotiator(params())
    step = Step(neg)
    first = neg.first_request()
    op = neg.handle(step.reply(first))
    proposal = accept_all(op)
    proposal = [(k, v) for k, v in proposal if k != 'MaxOutstandingR2T'] + [('MaxOutstandingR2T', '1')]
    # tgt: T=0, declares its MaxRecvDataSegmentLength and proposes keys it was not offered
    neg2 = L.LoginNegotiator(params(offer=('HeaderDigest', 'DataDigest', 'MaxRecvDataSegmentLength')))
    step2 = Step(neg2)
    op2 = neg2.handle(step2.reply(neg2.first_request()))
    answer = neg2.handle(step2.reply(op2, [('HeaderDigest', 'None'), ('DataDigest', 'None'),
                                           ('MaxRecvDataSegmentLength', '262144'), ('MaxOutstandingR2T', '4'),
                                           ('MaxBurstLength', '131072'), ('InitialR2T', 'No'),
                                           ('ImmediateData', 'No'), ('DefaultTime2Wait', '5'),
                                           ('X-com.example.note', 'hi'), ('FutureKey', '1')], transit=False))
    fa = fields(answer)
    assert (fa['transit'], fa['csg'], fa['nsg']) == (True, 1, 3)
    assert pairs_of(answer) == {'MaxOutstandingR2T': '1', 'MaxBurstLength': '131072', 'InitialR2T': 'Yes',
                                'ImmediateData': 'No', 'DefaultTime2Wait': '5',
                                'X-com.example.note': 'NotUnderstood', 'FutureKey': 'NotUnderstood'}
    assert neg2.handle(step2.reply(answer)) is None
    assert neg2.negotiated['MaxOutstandingR2T'] == 1
    assert neg2.negotiated['MaxBurstLength'] == 131072
    assert neg2.negotiated['InitialR2T'] is True and neg2.negotiated['ImmediateData'] is False
    assert neg2.negotiated['DefaultTime2Wait'] == 5
    assert neg2.negotiated['TargetMaxRecvDataSegmentLength'] == 262144
    # keys never mentioned take the RFC default
    assert neg2.negotiated['ErrorRecoveryLevel'] == 0 and neg2.negotiated['FirstBurstLength'] == 65536
    assert neg.handle(step.reply(op, proposal)) is None


def test_login_response_continuation_split_mid_pair():
    neg = L.LoginNegotiator(params())
    step = Step(neg)
    op = neg.handle(step.reply(neg.first_request()))
    data = encode_text(accept_all(op) + [('TargetAlias', 'a' * 100)])
    ack = neg.handle(step.reply(op, data=data[:37], transit=False, cont=True))
    fa = fields(ack)
    assert ack.data == b'' and not fa['transit'] and fa['csg'] == 1
    assert neg.handle(step.reply(op, data=data[37:])) is None
    assert neg.target_info['TargetAlias'] == 'a' * 100
    assert neg.negotiated['TargetMaxRecvDataSegmentLength'] == 65536


def test_login_continuation_is_bounded():
    neg = L.LoginNegotiator(params(max_rounds=5))
    step = Step(neg)
    req = neg.first_request()
    with pytest.raises(ISCSILimitError, match='5 exchanges'):
        for _ignored in range(10):
            req = neg.handle(step.reply(req, data=b'x' * 10, transit=False, cont=True))


# --------------------------------------------------------------------------------------------- CHAP
def chap_flow(creds, target_pairs_after_r=None, algorithm='5', identifier='7', challenge=TARGET_CHALLENGE):
    neg = L.LoginNegotiator(params(chap=creds))
    step = Step(neg)
    first = neg.first_request()
    a_req = neg.handle(step.reply(first, [('TargetPortalGroupTag', '1'), ('AuthMethod', 'CHAP')],
                                  transit=False))
    r_req = neg.handle(step.reply(a_req, [('CHAP_A', algorithm), ('CHAP_I', identifier),
                                          ('CHAP_C', '0x' + challenge.hex())], transit=False))
    return neg, step, first, a_req, r_req


def test_chap_one_way():
    creds = ChapCredentials('alice', 'secretsecret1')
    neg, step, first, a_req, r_req = chap_flow(creds)
    assert pairs_of(first)['AuthMethod'] == 'CHAP,None'
    fa = fields(a_req)
    assert pairs_of(a_req) == {'CHAP_A': '5'} and not fa['transit']
    sent = pairs_of(r_req)
    assert sent['CHAP_N'] == 'alice'
    assert decode_binary(sent['CHAP_R']) == chap_response(5, 7, b'secretsecret1', TARGET_CHALLENGE)
    assert sent['CHAP_R'].startswith('0x')
    assert 'CHAP_I' not in sent and 'CHAP_C' not in sent
    fr = fields(r_req)
    assert (fr['transit'], fr['csg'], fr['nsg']) == (True, 0, 1)
    op = neg.handle(step.reply(r_req))
    assert neg.handle(step.reply(op, accept_all(op))) is None
    assert neg.auth_method == 'CHAP' and neg.chap_algorithm == 5 and not neg.mutual_verified
    assert neg.summary()['chap_algorithm'] == 'MD5'


def test_chap_hex_identifier_and_base64_response():
    creds = ChapCredentials('alice', 'secretsecret1', response_encoding='base64')
    neg, step, first, a_req, r_req = chap_flow(creds, identifier='0xff')
    value = pairs_of(r_req)['CHAP_R']
    assert value.startswith('0b')
    assert decode_binary(value) == chap_response(5, 255, b'secretsecret1', TARGET_CHALLENGE)


def test_chap_algorithm_list_and_target_choice():
    creds = ChapCredentials('alice', 'secretsecret1', algorithms=['SHA3-256', 'MD5'])
    neg, step, first, a_req, r_req = chap_flow(creds, algorithm='8')
    assert pairs_of(a_req) == {'CHAP_A': '8,5'}
    assert decode_binary(pairs_of(r_req)['CHAP_R']) == chap_response(8, 7, b'secretsecret1', TARGET_CHALLENGE)


@pytest.mark.parametrize('chosen, match', [('7', 'not offered'), ('Reject', 'none of the offered'),
                                           ('abc', 'invalid CHAP_A')])
def test_chap_algorithm_downgrade_refused(chosen, match):
    creds = ChapCredentials('alice', 'secretsecret1', algorithms=['SHA256', 'MD5'][1:])
    with pytest.raises(ISCSIAuthError, match=match):
        chap_flow(creds, algorithm=chosen)


@pytest.mark.parametrize('challenge_value, identifier, match', [
    ('0x' + 'ab' * 1025, '1', 'CHAP_C'), ('plain', '1', 'CHAP_C'), ('0x00', '256', 'CHAP_I'),
])
def test_chap_bad_challenge_or_identifier(challenge_value, identifier, match):
    neg = L.LoginNegotiator(params(chap=ChapCredentials('a', 'secretsecret1')))
    step = Step(neg)
    a_req = neg.handle(step.reply(neg.first_request(), [('AuthMethod', 'CHAP')], transit=False))
    with pytest.raises(ISCSIAuthError, match=match):
        neg.handle(step.reply(a_req, [('CHAP_A', '5'), ('CHAP_I', identifier), ('CHAP_C', challenge_value)],
                              transit=False))


def test_mutual_chap_success():
    creds = ChapCredentials('alice', 'secretsecret1', 'target', 'targetsecret2')
    neg, step, first, a_req, r_req = chap_flow(creds)
    assert pairs_of(first)['AuthMethod'] == 'CHAP'              # no None offered with mutual CHAP
    sent = pairs_of(r_req)
    own_id = int(sent['CHAP_I'])
    own_challenge = decode_binary(sent['CHAP_C'])
    assert 0 <= own_id <= 255 and len(own_challenge) >= 16 and own_challenge != TARGET_CHALLENGE
    answer = chap_response(5, own_id, b'targetsecret2', own_challenge)
    op = neg.handle(step.reply(r_req, [('CHAP_N', 'target'), ('CHAP_R', '0x' + answer.hex())]))
    assert neg.mutual_verified
    assert neg.handle(step.reply(op, accept_all(op))) is None
    assert neg.summary()['mutual_chap'] is True


def test_mutual_chap_challenges_are_random():
    challenges = set()
    for _ignored in range(5):
        creds = ChapCredentials('alice', 'secretsecret1', 'target', 'targetsecret2')
        r_req = chap_flow(creds)[4]
        challenges.add(pairs_of(r_req)['CHAP_C'])
    assert len(challenges) == 5


@pytest.mark.parametrize('tamper, match', [('response', 'wrong CHAP_R'), ('name', 'wrong CHAP_N')])
def test_mutual_chap_wrong_answer(tamper, match):
    creds = ChapCredentials('alice', 'secretsecret1', 'target', 'targetsecret2')
    neg, step, first, a_req, r_req = chap_flow(creds)
    sent = pairs_of(r_req)
    answer = chap_response(5, int(sent['CHAP_I']), b'targetsecret2' if tamper == 'name' else b'wrong',
                           decode_binary(sent['CHAP_C']))
    name = 'intruder' if tamper == 'name' else 'target'
    with pytest.raises(ISCSIAuthError, match=match) as info:
        neg.handle(step.reply(r_req, [('CHAP_N', name), ('CHAP_R', '0x' + answer.hex())]))
    assert 'targetsecret2' not in str(info.value) and 'secretsecret1' not in str(info.value)
    assert not info.value.retryable


def test_mutual_chap_target_skips_its_answer():
    creds = ChapCredentials('alice', 'secretsecret1', 'target', 'targetsecret2')
    neg, step, first, a_req, r_req = chap_flow(creds)
    with pytest.raises(ISCSIAuthError, match='downgrade'):
        neg.handle(step.reply(r_req))


@pytest.mark.parametrize('creds', [ChapCredentials('a', 'secretsecret1', require_chap=True),
                                   ChapCredentials('a', 'secretsecret1', 'b', 'secretsecret2')])
@pytest.mark.parametrize('answer, transit', [([('AuthMethod', 'None')], True), ([('AuthMethod', 'None')], False),
                                             ([], True)])
def test_downgrade_to_none_refused_when_chap_required(creds, answer, transit):
    neg = L.LoginNegotiator(params(chap=creds))
    step = Step(neg)
    with pytest.raises(ISCSIAuthError, match='downgrade|not offered'):
        neg.handle(step.reply(neg.first_request(), answer, transit=transit))


def test_chap_none_accepted_when_optional():
    neg = L.LoginNegotiator(params(chap=ChapCredentials('a', 'secretsecret1')))
    step = Step(neg)
    op = neg.handle(step.reply(neg.first_request(), [('AuthMethod', 'None')]))
    assert neg.handle(step.reply(op, accept_all(op))) is None
    assert neg.auth_method == 'None'


@pytest.mark.parametrize('answer, match', [('Reject', 'refused'), ('SRP', 'not offered'),
                                           ('NotUnderstood', 'refused')])
def test_auth_method_refusals(answer, match):
    neg = L.LoginNegotiator(params(chap=ChapCredentials('a', 'secretsecret1')))
    with pytest.raises(ISCSIAuthError, match=match):
        neg.handle(Step(neg).reply(neg.first_request(), [('AuthMethod', answer)], transit=False))


def test_chap_target_transits_before_exchange():
    neg = L.LoginNegotiator(params(chap=ChapCredentials('a', 'secretsecret1')))
    with pytest.raises(ISCSIProtocolError, match='before the CHAP exchange'):
        neg.handle(Step(neg).reply(neg.first_request(), [('AuthMethod', 'CHAP')], transit=True))


# --------------------------------------------------------------------------------------------- status codes
ALL_STATUSES = sorted(k for k in LOGIN_STATUS if k[0] >= 2) + [(0x02, 0x7F), (0x03, 0x7F), (0x05, 0x00)]


@pytest.mark.parametrize('status', ALL_STATUSES)
def test_every_login_status_maps_to_message_and_verdict(status):
    neg = L.LoginNegotiator(params())
    with pytest.raises(ISCSILoginError) as info:
        neg.handle(Step(neg).reply(neg.first_request(), status=status, transit=False, isid=bytes(6)))
    err = info.value
    assert err.status == '%02x%02x' % status
    assert ('0x%02x%02x' % status) in str(err)
    assert TGT in str(err)
    expected_retry = status[0] == 3 or status == (2, 6)
    assert err.retryable is expected_retry
    if status in LOGIN_STATUS:
        assert LOGIN_STATUS[status][0] in str(err)
    assert err.to_dict()['status'] == err.status


@pytest.mark.parametrize('detail, permanent', [(1, False), (2, True)])
def test_redirect(detail, permanent):
    neg = L.LoginNegotiator(params())
    with pytest.raises(L.LoginRedirect) as info:
        neg.handle(Step(neg).reply(neg.first_request(), [('TargetAddress', '[2001:db8::9]:3261,3')],
                                   status=(1, detail), transit=False))
    assert (info.value.address, info.value.port, info.value.tpgt, info.value.permanent) == \
        ('2001:db8::9', 3261, 3, permanent)
    assert isinstance(info.value, ISCSIRedirectError)


def test_redirect_without_address():
    neg = L.LoginNegotiator(params())
    with pytest.raises(ISCSIRedirectError, match='without a usable TargetAddress') as info:
        neg.handle(Step(neg).reply(neg.first_request(), status=(1, 1), transit=False))
    assert not isinstance(info.value, L.LoginRedirect)


# --------------------------------------------------------------------------------------------- protocol checks
@pytest.mark.parametrize('kwargs, match', [
    ({'itt': 999}, 'task tag'),
    ({'transit': True, 'cont': True}, 'both T and C'),
    ({'csg': 1}, 'stage 1'),
    ({'version': 1}, 'version'),
    ({'isid': bytes.fromhex('800000000001')}, 'ISID'),
    ({'nsg': 3}, 'invalid next stage'),
    ({'nsg': 2}, 'invalid next stage'),
    ({'data': b'AuthMethod=None\0AuthMethod=None\0'}, 'twice'),
    ({'data': b'AuthMethod=None'}, 'ends inside'),
    ({'pairs': [('AuthMethod', 'None'), ('CHAP_A', '5')]}, 'security key'),
    ({'pairs': [('TargetPortalGroupTag', 'x')]}, 'TargetPortalGroupTag'),
])
def test_protocol_violations(kwargs, match):
    neg = L.LoginNegotiator(params())
    step = Step(neg)
    with pytest.raises((ISCSIProtocolError, ISCSITextError), match=match):
        neg.handle(step.reply(neg.first_request(), **kwargs))


def test_transit_not_requested():
    neg = L.LoginNegotiator(params(chap=ChapCredentials('a', 'secretsecret1')))
    step = Step(neg)
    a_req = neg.handle(step.reply(neg.first_request(), [('AuthMethod', 'CHAP')], transit=False))
    with pytest.raises(ISCSIProtocolError, match='did not ask|before the CHAP'):
        neg.handle(step.reply(a_req, [('CHAP_A', '5'), ('CHAP_I', '1'), ('CHAP_C', '0x01')], transit=True,
                              nsg=1))


def test_security_key_in_operational_stage():
    neg = L.LoginNegotiator(params())
    step = Step(neg)
    op = neg.handle(step.reply(neg.first_request()))
    with pytest.raises(ISCSIProtocolError, match='operational stage'):
        neg.handle(step.reply(op, [('CHAP_A', '5')], transit=False))


def test_wrong_opcode_and_reject():
    neg = L.LoginNegotiator(params())
    neg.first_request()
    with pytest.raises(ISCSIProtocolError, match='expected a Login Response'):
        neg.handle(P.text_response(1, P.RESERVED_TAG, 1, 1, 1))
    neg = L.LoginNegotiator(params())
    neg.first_request()
    with pytest.raises(ISCSIRejectError, match='0x04'):
        neg.handle(P.reject(0x04, bytes(48), 0, 0, 0))


def test_rounds_cap():
    neg = L.LoginNegotiator(params(max_rounds=4))
    step = Step(neg)
    req = neg.first_request()
    with pytest.raises(ISCSILimitError, match='4 exchanges'):
        for _ignored in range(10):
            req = neg.handle(step.reply(req, transit=False))


def test_handle_after_complete():
    neg = L.LoginNegotiator(params())
    login_none(neg, Step(neg))
    with pytest.raises(ISCSIProtocolError, match='already complete'):
        neg.handle(P.login_response(ISID, 1, 1, 1, 1, 1, 1, 3, True))


def test_renegotiation_is_refused():
    neg = L.LoginNegotiator(params(offer=('MaxRecvDataSegmentLength',)))
    step = Step(neg)
    op = neg.handle(step.reply(neg.first_request()))
    nxt = neg.handle(step.reply(op, [('MaxBurstLength', '4096')], transit=False))
    assert pairs_of(nxt) == {'MaxBurstLength': '4096'}
    with pytest.raises(ISCSIProtocolError, match='renegotiated'):
        neg.handle(step.reply(nxt, [('MaxBurstLength', '2048')], transit=False))


# --------------------------------------------------------------------------------------------- every key
# (key, our value, target proposal, expected answer, expected result)
PROPOSALS = [
    ('HeaderDigest', ('None',), 'CRC32C,None', 'None', 'None'),
    ('HeaderDigest', ('CRC32C', 'None'), 'CRC32C,None', 'CRC32C', 'CRC32C'),
    ('HeaderDigest', ('CRC32C',), 'None', 'Reject', 'None'),
    ('DataDigest', ('CRC32C', 'None'), 'None', 'None', 'None'),
    ('MaxBurstLength', 262144, '1048576', '262144', 262144),
    ('MaxBurstLength', 262144, '4096', '4096', 4096),
    ('MaxBurstLength', 262144, '100', 'Reject', None),
    ('MaxBurstLength', 262144, 'lots', 'Reject', None),
    ('FirstBurstLength', 65536, '8192', '8192', 8192),
    ('DefaultTime2Wait', 2, '0', '2', 2),
    ('DefaultTime2Wait', 2, '20', '20', 20),
    ('DefaultTime2Wait', 2, '3601', 'Reject', None),
    ('DefaultTime2Retain', 0, '20', '0', 0),
    ('MaxOutstandingR2T', 1, '4', '1', 1),
    ('MaxOutstandingR2T', 1, '0', 'Reject', None),
    ('ErrorRecoveryLevel', 0, '2', '0', 0),
    ('MaxConnections', 1, '8', '1', 1),
    ('InitialR2T', True, 'No', 'Yes', True),
    ('InitialR2T', False, 'No', 'No', False),
    ('ImmediateData', True, 'No', 'No', False),
    ('ImmediateData', True, 'Yes', 'Yes', True),
    ('ImmediateData', False, 'Yes', 'No', False),
    ('DataPDUInOrder', True, 'No', 'Yes', True),
    ('DataSequenceInOrder', True, 'No', 'Yes', True),
    ('DataSequenceInOrder', True, 'maybe', 'Reject', None),
    ('IFMarker', False, 'Yes', 'No', False),
    ('OFMarker', False, 'No', 'No', False),
    ('OFMarkInt', None, '2048~8192', 'Irrelevant', None),
    ('IFMarkInt', None, '2048~8192', 'Irrelevant', None),
    ('iSCSIProtocolLevel', 0, '1', '0', 0),
    ('TaskReporting', ('RFC3720',), 'ResponseFence,RFC3720', 'RFC3720', 'RFC3720'),
]


@pytest.mark.parametrize('key, ours, proposal, answer, result', PROPOSALS)
def test_answer_target_proposal_for_every_key(key, ours, proposal, answer, result):
    values = {key: ours} if key not in ('HeaderDigest', 'DataDigest') and ours is not None else {}
    kw = {}
    if key == 'HeaderDigest':
        kw['header_digest'] = ours
    if key == 'DataDigest':
        kw['data_digest'] = ours
    neg = L.LoginNegotiator(params(values=values, offer=(), **kw))
    step = Step(neg)
    op = neg.handle(step.reply(neg.first_request()))
    assert op.data == b''
    nxt = neg.handle(step.reply(op, [(key, proposal)], transit=False))
    assert pairs_of(nxt) == {key: answer}
    if result is not None:
        assert neg.negotiated[key] == result
    else:
        assert key not in neg.negotiated


def test_every_operational_key_has_a_proposal_case():
    assert {case[0] for case in PROPOSALS} == set(L.OPERATIONAL_KEYS) - {'MaxRecvDataSegmentLength'}


# (key, offered, target answer, negotiated or exception)
ANSWERS = [
    ('HeaderDigest', ('CRC32C', 'None'), 'CRC32C', 'CRC32C'),
    ('HeaderDigest', ('CRC32C', 'None'), 'None', 'None'),
    ('HeaderDigest', ('CRC32C',), 'None', ISCSINegotiationError),
    ('HeaderDigest', ('CRC32C',), 'Reject', ISCSINegotiationError),
    ('HeaderDigest', ('None',), 'Reject', 'None'),
    ('DataDigest', ('None',), 'MD5', ISCSINegotiationError),
    ('MaxBurstLength', 262144, '131072', 131072),
    ('MaxBurstLength', 262144, '524288', ISCSINegotiationError),
    ('MaxBurstLength', 262144, 'big', ISCSINegotiationError),
    ('MaxBurstLength', 262144, 'Irrelevant', 262144),
    ('DefaultTime2Wait', 2, '5', 5),
    ('DefaultTime2Wait', 2, '1', ISCSINegotiationError),
    ('InitialR2T', True, 'Yes', True),
    ('InitialR2T', True, 'No', ISCSINegotiationError),
    ('ImmediateData', True, 'No', False),
    ('ImmediateData', False, 'Yes', ISCSINegotiationError),
    ('ImmediateData', True, 'perhaps', ISCSINegotiationError),
    ('ErrorRecoveryLevel', 0, '1', ISCSINegotiationError),
    ('MaxConnections', 1, 'NotUnderstood', 1),
]


@pytest.mark.parametrize('key, ours, answer, expected', ANSWERS)
def test_check_target_answer_to_our_offer(key, ours, answer, expected):
    kw = {'offer': (key,)}
    if key == 'HeaderDigest':
        kw['header_digest'] = ours
    elif key == 'DataDigest':
        kw['data_digest'] = ours
    else:
        kw['values'] = {key: ours}
    neg = L.LoginNegotiator(params(**kw))
    step = Step(neg)
    op = neg.handle(step.reply(neg.first_request()))
    assert list(pairs_of(op)) == [key]
    if isinstance(expected, type):
        with pytest.raises(expected):
            neg.handle(step.reply(op, [(key, answer)]))
    else:
        assert neg.handle(step.reply(op, [(key, answer)])) is None
        assert neg.negotiated[key] == expected


def test_unanswered_required_digest_fails_at_completion():
    neg = L.LoginNegotiator(params(header_digest=('CRC32C',)))
    step = Step(neg)
    op = neg.handle(step.reply(neg.first_request()))
    with pytest.raises(ISCSINegotiationError, match='HeaderDigest=None was negotiated'):
        neg.handle(step.reply(op, []))


def test_first_burst_capped_by_max_burst():
    neg = L.LoginNegotiator(params())
    step = Step(neg)
    op = neg.handle(step.reply(neg.first_request()))
    answers = dict(accept_all(op))
    answers['MaxBurstLength'] = '16384'
    assert neg.handle(step.reply(op, list(answers.items()))) is None
    assert neg.negotiated['FirstBurstLength'] == 16384


def test_operational_keys_in_security_stage_are_answered():
    neg = L.LoginNegotiator(params(offer=('HeaderDigest',)))
    step = Step(neg)
    op = neg.handle(step.reply(neg.first_request(), [('AuthMethod', 'None'), ('MaxConnections', '4')]))
    sent = pairs_of(op)
    assert sent == {'MaxConnections': '1', 'HeaderDigest': 'None'}


def test_invalid_target_mrdsl():
    neg = L.LoginNegotiator(params())
    step = Step(neg)
    op = neg.handle(step.reply(neg.first_request()))
    with pytest.raises(ISCSINegotiationError, match='MaxRecvDataSegmentLength'):
        neg.handle(step.reply(op, [('MaxRecvDataSegmentLength', '100')]))


# --------------------------------------------------------------------------------------------- params, ISID
def test_random_isid_format():
    isids = {L.random_isid() for _ignored in range(100)}
    assert len(isids) == 100
    for isid in isids:
        assert len(isid) == 6 and isid[0] == 0x80
    assert L.LoginParams(INIT).isid[0] == 0x80
    assert L.LoginParams(INIT).isid != L.LoginParams(INIT).isid


@pytest.mark.parametrize('kwargs', [{'isid': b'\x80'}, {'header_digest': ('MD5',)}, {'data_digest': ()},
                                    {'max_recv_data_segment_length': 100}])
def test_params_validation(kwargs):
    with pytest.raises(ValueError):
        L.LoginParams(INIT, **kwargs)
    with pytest.raises(ValueError):
        L.LoginParams('')


def test_digest_string_forms():
    p = L.LoginParams(INIT, header_digest='CRC32C,None', data_digest='None')
    assert p.values['HeaderDigest'] == ('CRC32C', 'None') and p.values['DataDigest'] == ('None',)


def test_zero_isid_is_sent_as_given():
    neg = L.LoginNegotiator(params(isid=bytes(6)))
    assert fields(neg.first_request())['isid'] == bytes(6)


def test_login_errors_are_library_errors():
    for cls in (ISCSIAuthError, ISCSILoginError, ISCSINegotiationError, ISCSIRedirectError, L.LoginRedirect):
        assert issubclass(cls, ISCSIError)
