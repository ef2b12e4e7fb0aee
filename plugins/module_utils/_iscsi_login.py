# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to the openiscsi.initiator collection: not a public API, may change without notice.

"""iSCSI login state machine (RFC 7143 sections 6.3, 11.12, 11.13, 12, 13): security phase with CHAP, operational
parameter negotiation, stage transitions.  Pure logic: :class:`LoginNegotiator` turns Login Response PDUs into the
next Login Request PDU; the transport lives in ``_iscsi_session``.
"""

from __future__ import annotations

import secrets

from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_chap import (
    ALGORITHMS,
    new_challenge,
    new_identifier,
    parse_challenge,
    parse_identifier,
    encode_value,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_errors import (
    ISCSIAuthError,
    ISCSILimitError,
    ISCSILoginError,
    ISCSINegotiationError,
    ISCSIProtocolError,
    ISCSIRedirectError,
    ISCSIRejectError,
    ISCSITextError,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_pdu import (
    OP_LOGIN_RSP,
    OP_REJECT,
    STAGE_FULL_FEATURE,
    STAGE_OPERATIONAL,
    STAGE_SECURITY,
    login_request,
    login_response_fields,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_text import (
    IRRELEVANT,
    NOT_UNDERSTOOD,
    REJECT,
    SPECIAL_VALUES,
    TextBuffer,
    decode_binary,
    decode_bool,
    decode_number,
    encode_text,
    decode_text,
    pairs_to_dict,
    parse_target_address,
)

MAX_LOGIN_PDU_DATA = 8192        # stay within the login-phase MaxRecvDataSegmentLength of any target
MAX_DSL_LIMIT = 2 ** 24 - 1

# Operational keys: name -> (result function, RFC default, minimum, maximum)
OPERATIONAL_KEYS = {
    'HeaderDigest': ('list', 'None', None, None),
    'DataDigest': ('list', 'None', None, None),
    'MaxRecvDataSegmentLength': ('declarative', 8192, 512, MAX_DSL_LIMIT),
    'MaxBurstLength': ('min', 262144, 512, MAX_DSL_LIMIT),
    'FirstBurstLength': ('min', 65536, 512, MAX_DSL_LIMIT),
    'DefaultTime2Wait': ('max', 2, 0, 3600),
    'DefaultTime2Retain': ('min', 20, 0, 3600),
    'MaxOutstandingR2T': ('min', 1, 1, 65535),
    'ErrorRecoveryLevel': ('min', 0, 0, 2),
    'MaxConnections': ('min', 1, 1, 65535),
    'InitialR2T': ('or', True, None, None),
    'ImmediateData': ('and', True, None, None),
    'DataPDUInOrder': ('or', True, None, None),
    'DataSequenceInOrder': ('or', True, None, None),
    'IFMarker': ('and', False, None, None),
    'OFMarker': ('and', False, None, None),
    'OFMarkInt': ('irrelevant', None, None, None),
    'IFMarkInt': ('irrelevant', None, None, None),
    'iSCSIProtocolLevel': ('min', 0, 0, 31),
    'TaskReporting': ('list', 'RFC3720', None, None),
}
# Declarations only the target makes; recorded, never answered.
TARGET_DECLARATIONS = frozenset(['TargetAlias', 'TargetPortalGroupTag', 'TargetAddress'])
# Declarations only the initiator makes; ignored if a target echoes them.
INITIATOR_DECLARATIONS = frozenset(['InitiatorName', 'InitiatorAlias', 'TargetName', 'SessionType'])
SECURITY_KEYS_PREFIX = ('AuthMethod', 'CHAP_', 'SRP_', 'KRB_', 'SPKM')

# What we use and offer by default in a Normal session (values as Python types).
DEFAULT_INITIATOR_VALUES = {
    'HeaderDigest': ('None',),
    'DataDigest': ('None',),
    'MaxRecvDataSegmentLength': 262144,
    'MaxBurstLength': 262144,
    'FirstBurstLength': 65536,
    'DefaultTime2Wait': 2,
    'DefaultTime2Retain': 0,
    'MaxOutstandingR2T': 1,
    'ErrorRecoveryLevel': 0,
    'MaxConnections': 1,
    'InitialR2T': True,
    'ImmediateData': True,
    'DataPDUInOrder': True,
    'DataSequenceInOrder': True,
    'IFMarker': False,
    'OFMarker': False,
    'iSCSIProtocolLevel': 0,
    'TaskReporting': ('RFC3720',),
}
NORMAL_OFFER = ('HeaderDigest', 'DataDigest', 'MaxRecvDataSegmentLength', 'InitialR2T', 'ImmediateData',
                'MaxBurstLength', 'FirstBurstLength', 'DefaultTime2Wait', 'DefaultTime2Retain',
                'MaxOutstandingR2T', 'DataPDUInOrder', 'DataSequenceInOrder', 'ErrorRecoveryLevel', 'MaxConnections')
DISCOVERY_OFFER = ('HeaderDigest', 'DataDigest', 'MaxRecvDataSegmentLength')

DIGEST_VALUES = ('None', 'CRC32C')


def random_isid():
    """A random-format ISID (RFC 7143 10.12.5): type 10b, 24 random bits, random 16-bit qualifier."""
    return bytes([0x80]) + secrets.token_bytes(5)


def _fmt(value):
    if isinstance(value, bool):
        return 'Yes' if value else 'No'
    if isinstance(value, (tuple, list)):
        return ','.join(value)
    return str(value)


class LoginRedirect(ISCSIRedirectError):
    """Raised by the negotiator for status class 1; the session follows it (with a hop cap)."""

    kind = 'redirect'

    def __init__(self, address, port, tpgt, permanent):
        self.address = address
        self.port = port
        self.tpgt = tpgt
        self.permanent = permanent
        super(LoginRedirect, self).__init__('target moved %s to %s:%d' % (
            'permanently' if permanent else 'temporarily', address, port), retryable=True)


class LoginParams(object):
    """What a login needs.  ``target_name`` None means a Discovery session.

    ``header_digest``/``data_digest``: ordered offers, e.g. ``('None',)`` (default), ``('CRC32C', 'None')``
    (prefer), ``('CRC32C',)`` (require).  ``values`` overrides entries of DEFAULT_INITIATOR_VALUES; ``offer``
    overrides which operational keys are offered (the rest are only used to answer target proposals).
    """

    def __init__(self, initiator_name, target_name=None, isid=None, tsih=0, cid=0, chap=None,
                 header_digest=('None',), data_digest=('None',), max_recv_data_segment_length=262144,
                 initiator_alias=None, values=None, offer=None, max_rounds=32, max_response_bytes=65536):
        if not initiator_name:
            raise ValueError('initiator_name is required')
        self.initiator_name = initiator_name
        self.target_name = target_name
        self.isid = bytes(isid) if isid is not None else random_isid()
        if len(self.isid) != 6:
            raise ValueError('ISID must be 6 bytes')
        self.tsih = tsih
        self.cid = cid
        self.chap = chap
        self.initiator_alias = initiator_alias
        self.max_rounds = max_rounds
        self.max_response_bytes = max_response_bytes
        vals = dict(DEFAULT_INITIATOR_VALUES)
        vals['HeaderDigest'] = _digest_list(header_digest, 'header_digest')
        vals['DataDigest'] = _digest_list(data_digest, 'data_digest')
        if not 512 <= max_recv_data_segment_length <= MAX_DSL_LIMIT:
            raise ValueError('max_recv_data_segment_length must be 512..16777215')
        vals['MaxRecvDataSegmentLength'] = max_recv_data_segment_length
        vals.update(values or {})
        self.values = vals
        if offer is None:
            offer = DISCOVERY_OFFER if self.discovery else NORMAL_OFFER
        self.offer = tuple(offer)

    @property
    def discovery(self):
        return self.target_name is None

    @property
    def session_type(self):
        return 'Discovery' if self.discovery else 'Normal'


def _digest_list(value, field):
    if isinstance(value, str):
        value = [v.strip() for v in value.split(',')]
    value = tuple(value)
    if not value or any(v not in DIGEST_VALUES for v in value):
        raise ValueError('%s must be a list of None/CRC32C' % field)
    return value


class LoginNegotiator(object):
    """Drive one connection's login.  ``first_request()`` then ``handle(response)`` until it returns None.

    After completion: ``tsih``, ``statsn``, ``exp_cmdsn``, ``max_cmdsn``, ``negotiated`` (operational results as
    Python values), ``target_info`` (TargetPortalGroupTag, TargetAlias), ``auth_method`` ('CHAP' or 'None'),
    ``chap_algorithm`` and ``mutual_verified``.
    """

    def __init__(self, params, itt=1, cmdsn=1):
        self.p = params
        self.itt = itt
        self.cmdsn = cmdsn
        self.stage = STAGE_SECURITY
        self.state = 'start'
        self.rounds = 0
        self.exp_statsn = 0
        self.complete = False
        self.tsih = 0
        self.statsn = None
        self.exp_cmdsn = None
        self.max_cmdsn = None
        self.auth_method = None
        self.chap_algorithm = None
        self.mutual_verified = False
        self.target_info = {}
        self.negotiated = {}
        self.offered = {}
        self.proposed = []              # keys the target proposed (we answered them)
        self._answered = set()
        self._requested_nsg = None
        self._requested_transit = False
        self._buffer = None
        self._chap_id = None
        self._chap_challenge = None
        self._last = None

    # ------------------------------------------------------------------ requests
    def _request(self, pairs, transit, nsg, cont=False, ack=False):
        data = encode_text(pairs) if pairs else b''
        if len(data) > MAX_LOGIN_PDU_DATA:
            raise ISCSIProtocolError('login request of %d bytes exceeds %d' % (len(data), MAX_LOGIN_PDU_DATA))
        if not ack:
            # An empty acknowledgement of a continued response keeps the transit asked for before.
            self._requested_transit = transit
            self._requested_nsg = nsg if transit else None
            self._last = (self.stage, nsg, transit)
        return login_request(self.p.isid, self.p.tsih, self.itt, self.p.cid, self.cmdsn, self.exp_statsn,
                             self.stage, nsg, transit, data, cont)

    def auth_offer(self):
        chap = self.p.chap
        if chap is None:
            return ['None']
        if chap.require_chap:
            return ['CHAP']
        return ['CHAP', 'None']

    def first_request(self):
        pairs = [('InitiatorName', self.p.initiator_name)]
        if self.p.initiator_alias:
            pairs.append(('InitiatorAlias', self.p.initiator_alias))
        pairs.append(('SessionType', self.p.session_type))
        if not self.p.discovery:
            pairs.append(('TargetName', self.p.target_name))
        pairs.append(('AuthMethod', ','.join(self.auth_offer())))
        return self._request(pairs, True, STAGE_OPERATIONAL)

    # ------------------------------------------------------------------ responses
    def handle(self, pdu):
        """Consume one Login Response; return the next Login Request PDU, or None when the login is complete."""
        if self.complete:
            raise ISCSIProtocolError('login already complete')
        self.rounds += 1
        if self.rounds > self.p.max_rounds:
            raise ISCSILimitError('login did not complete within %d exchanges' % self.p.max_rounds)
        if pdu.opcode == OP_REJECT:
            raise ISCSIRejectError(pdu.u8(2), 'login')
        if pdu.opcode != OP_LOGIN_RSP:
            raise ISCSIProtocolError('expected a Login Response, got %s' % pdu.name)
        f = login_response_fields(pdu)
        if f['itt'] != self.itt:
            raise ISCSIProtocolError('Login Response for task tag 0x%08x, expected 0x%08x' % (f['itt'], self.itt))
        if f['status_class'] != 0:
            self._status_error(f, pdu.data)
        if f['version_active'] != 0:
            raise ISCSIProtocolError('target selected unsupported iSCSI version %d' % f['version_active'])
        if f['isid'] != self.p.isid:
            raise ISCSIProtocolError('Login Response carries a different ISID')
        if f['transit'] and f['cont']:
            raise ISCSIProtocolError('Login Response with both T and C bits set')
        if f['csg'] != self.stage:
            raise ISCSIProtocolError('Login Response for stage %d while the login is in stage %d'
                                     % (f['csg'], self.stage))
        self.statsn = f['statsn']
        self.exp_statsn = (f['statsn'] + 1) & 0xFFFFFFFF
        self.exp_cmdsn = f['exp_cmdsn']
        self.max_cmdsn = f['max_cmdsn']

        if self._buffer is None:
            self._buffer = TextBuffer(self.p.max_response_bytes, self.p.max_rounds)
        self._buffer.add(pdu.data)
        if f['cont']:
            # More of this response follows: acknowledge with an empty request (T=0).
            return self._request([], False, self._last[1] if self._last else self.stage, ack=True)
        try:
            keys = pairs_to_dict(decode_text(self._buffer.getvalue()))
        finally:
            self._buffer = None

        transit = f['transit']
        nsg = f['nsg']
        if transit:
            if not self._requested_transit:
                raise ISCSIProtocolError('target set the T bit although the initiator did not ask to transit')
            if nsg == 2 or nsg <= self.stage or nsg > self._requested_nsg:
                raise ISCSIProtocolError('target chose an invalid next stage %d (current %d, requested %d)'
                                         % (nsg, self.stage, self._requested_nsg))
        for key in ('TargetPortalGroupTag', 'TargetAlias'):
            if key in keys:
                self._declaration(key, keys.pop(key))
        if self.stage == STAGE_SECURITY:
            return self._security(keys, transit, nsg, f)
        return self._operational(keys, transit, nsg, f)

    def _status_error(self, f, data):
        if f['status_class'] == 0x01:
            try:
                keys = dict(decode_text(data))
                address = parse_target_address(keys['TargetAddress'])
            except (KeyError, ISCSITextError):
                raise ISCSIRedirectError('target redirected (status 0x01%02x) without a usable TargetAddress'
                                         % f['status_detail'], retryable=False)
            raise LoginRedirect(address['address'], address['port'], address['tpgt'], f['status_detail'] == 0x02)
        raise ISCSILoginError(f['status_class'], f['status_detail'], self.p.target_name)

    def _declaration(self, key, value):
        if key == 'TargetPortalGroupTag':
            try:
                self.target_info[key] = decode_number(value, 0, 65535)
            except ISCSITextError:
                raise ISCSIProtocolError('invalid TargetPortalGroupTag %r' % value[:20])
        else:
            self.target_info[key] = value

    def _advance(self, nsg, f, answers=()):
        """The target accepted a transit to ``nsg``."""
        self.stage = nsg
        if nsg == STAGE_FULL_FEATURE:
            self._finish(f)
            return None
        # nsg is operational: answer what is pending, offer our keys, ask for full feature phase.
        return self._request(list(answers) + self._operational_offer(), True, STAGE_FULL_FEATURE)

    # ------------------------------------------------------------------ security stage
    def _security(self, keys, transit, nsg, f):
        chap = self.p.chap
        if self.state == 'start':
            offered = self.auth_offer()
            method = keys.pop('AuthMethod', None)
            answers = self._process_keys(keys)
            if method is None:
                if not transit:
                    return self._request(answers, True, STAGE_OPERATIONAL)
                method = 'None'                       # target skipped authentication
            if method in SPECIAL_VALUES:
                raise ISCSIAuthError('target refused the offered authentication methods (%s): answered %s'
                                     % (','.join(offered), method))
            if method not in offered:
                if method == 'None' and chap is not None:
                    raise ISCSIAuthError('target skipped authentication although CHAP is required '
                                         '(downgrade refused)')
                raise ISCSIAuthError('target selected AuthMethod=%s, which was not offered (%s)'
                                     % (method[:40], ','.join(offered)))
            if method == 'None':
                self.auth_method = 'None'
                self.state = 'done'
                if transit:
                    return self._advance(nsg, f, answers)
                return self._request(answers, True, STAGE_OPERATIONAL)
            # CHAP
            if transit:
                raise ISCSIProtocolError('target left the security stage before the CHAP exchange')
            self.auth_method = 'CHAP'
            self.state = 'chap_a'
            pairs = [('CHAP_A', ','.join(str(a) for a in chap.algorithms))] + answers
            return self._request(pairs, False, STAGE_OPERATIONAL)

        if self.state == 'chap_a':
            if transit:
                raise ISCSIProtocolError('target left the security stage before the CHAP exchange')
            value = keys.pop('CHAP_A', None)
            if value is None:
                raise ISCSIProtocolError('target did not answer CHAP_A')
            offered = ','.join(str(a) for a in chap.algorithms)
            if value in SPECIAL_VALUES:
                raise ISCSIAuthError('target supports none of the offered CHAP algorithms (CHAP_A=%s)' % offered)
            try:
                algorithm = decode_number(value, 0, 255)
            except ISCSITextError:
                raise ISCSIAuthError('target sent an invalid CHAP_A')
            if algorithm not in chap.algorithms:
                raise ISCSIAuthError('target chose CHAP_A=%d, which was not offered (%s)' % (algorithm, offered))
            if 'CHAP_I' not in keys or 'CHAP_C' not in keys:
                raise ISCSIProtocolError('target did not send CHAP_I and CHAP_C')
            identifier = parse_identifier(keys.pop('CHAP_I'))
            challenge = parse_challenge(keys.pop('CHAP_C'))
            answers = self._process_keys(keys)
            self.chap_algorithm = algorithm
            response = chap.respond(algorithm, identifier, challenge)
            pairs = [('CHAP_N', chap.username), ('CHAP_R', encode_value(response, chap.response_encoding))]
            if chap.mutual:
                self._chap_id = new_identifier()
                self._chap_challenge = new_challenge(algorithm, avoid=challenge)
                pairs.append(('CHAP_I', str(self._chap_id)))
                pairs.append(('CHAP_C', encode_value(self._chap_challenge, chap.response_encoding)))
            self.state = 'chap_r'
            return self._request(pairs + answers, True, STAGE_OPERATIONAL)

        if self.state == 'chap_r':
            name = keys.pop('CHAP_N', None)
            value = keys.pop('CHAP_R', None)
            answers = self._process_keys(keys)
            if chap.mutual and not self.mutual_verified:
                if name is None or value is None:
                    if transit or name is not None or value is not None:
                        raise ISCSIAuthError('target did not answer the mutual CHAP challenge (downgrade refused)')
                else:
                    try:
                        response = decode_binary(value, max_len=1024)
                    except ISCSITextError:
                        raise ISCSIAuthError('target sent an invalid CHAP_R')
                    chap.verify_target(self.chap_algorithm, self._chap_id, self._chap_challenge, name, response)
                    self.mutual_verified = True
            if transit:
                self.state = 'done'
                return self._advance(nsg, f, answers)
            return self._request(answers, True, STAGE_OPERATIONAL)

        # state 'done' but still in the security stage: the target answered T=0 to our transit request.
        answers = self._process_keys(keys)
        if transit:
            return self._advance(nsg, f, answers)
        return self._request(answers, True, STAGE_OPERATIONAL)

    # ------------------------------------------------------------------ operational stage
    def _operational_offer(self):
        pairs = []
        for key in self.p.offer:
            if key in self.negotiated or key in self.offered:
                continue
            value = self.p.values[key]
            pairs.append((key, _fmt(value)))
            self.offered[key] = value
        return pairs

    def _operational(self, keys, transit, nsg, f):
        answers = self._process_keys(keys)
        if transit:
            return self._advance(nsg, f)
        return self._request(answers, True, STAGE_FULL_FEATURE)

    def _process_keys(self, keys):
        """Record declarations and answers to our offers; return answers to the target's proposals."""
        answers = []
        for key, value in keys.items():
            if key.startswith(SECURITY_KEYS_PREFIX):
                raise ISCSIProtocolError('unexpected security key %s %s' % (
                    key, 'in the operational stage' if self.stage else 'at this point of the CHAP exchange'))
            if key in TARGET_DECLARATIONS:
                self._declaration(key, value)
            elif key in INITIATOR_DECLARATIONS:
                continue
            elif key == 'MaxRecvDataSegmentLength':
                try:
                    self.negotiated['TargetMaxRecvDataSegmentLength'] = decode_number(value, 512, MAX_DSL_LIMIT)
                except ISCSITextError:
                    raise ISCSINegotiationError('target declared an invalid MaxRecvDataSegmentLength')
            elif key in self.offered and key not in self._answered:
                self._answered.add(key)
                self.negotiated[key] = self._check_answer(key, self.offered[key], value)
            elif key in self.negotiated:
                if _fmt(self.negotiated[key]) != value:
                    raise ISCSIProtocolError('target renegotiated %s' % key)
            elif key in OPERATIONAL_KEYS:
                self.proposed.append(key)
                answer, result = self._answer(key, value)
                answers.append((key, answer))
                if result is not None:
                    self.negotiated[key] = result
            else:
                answers.append((key, NOT_UNDERSTOOD))
        return answers

    def _check_answer(self, key, ours, value):
        """Validate the target's reply to one of our offers and return the negotiated value."""
        kind, default, lo, hi = OPERATIONAL_KEYS[key]
        if value in (REJECT, IRRELEVANT, NOT_UNDERSTOOD):
            if kind == 'list':
                if default not in ours:
                    raise ISCSINegotiationError('target answered %s=%s but %s is required' % (key, value, _fmt(ours)))
                return default
            return default
        if kind == 'list':
            if value not in ours:
                raise ISCSINegotiationError('target answered %s=%s, not one of the offered %s'
                                            % (key, value[:40], _fmt(ours)))
            return value
        if kind in ('min', 'max'):
            try:
                number = decode_number(value, lo, hi)
            except ISCSITextError:
                raise ISCSINegotiationError('target answered an invalid %s=%s' % (key, value[:40]))
            if (kind == 'min' and number > ours) or (kind == 'max' and number < ours):
                raise ISCSINegotiationError('target answered %s=%d, violating the %s function (offered %d)'
                                            % (key, number, 'minimum' if kind == 'min' else 'maximum', ours))
            return number
        if kind in ('or', 'and'):
            try:
                flag = decode_bool(value)
            except ISCSITextError:
                raise ISCSINegotiationError('target answered an invalid %s=%s' % (key, value[:40]))
            if (kind == 'or' and ours and not flag) or (kind == 'and' and not ours and flag):
                raise ISCSINegotiationError('target answered %s=%s, violating the %s function'
                                            % (key, value, kind.upper()))
            return flag
        return default

    def _answer(self, key, value):
        """Answer a key the target proposed: returns ``(answer string, negotiated value or None)``."""
        kind, default, lo, hi = OPERATIONAL_KEYS[key]
        ours = self.p.values.get(key, default)
        if kind == 'irrelevant':
            return IRRELEVANT, None
        if value in SPECIAL_VALUES:
            raise ISCSIProtocolError('target proposed %s=%s' % (key, value))
        if kind == 'list':
            for choice in value.split(','):
                if choice in ours:
                    return choice, choice
            if default in ours and default in value.split(','):
                return default, default
            return REJECT, default
        if kind in ('min', 'max'):
            try:
                number = decode_number(value, lo, hi)
            except ISCSITextError:
                return REJECT, None
            result = min(ours, number) if kind == 'min' else max(ours, number)
            return str(result), result
        try:
            flag = decode_bool(value)
        except ISCSITextError:
            return REJECT, None
        result = (ours or flag) if kind == 'or' else (ours and flag)
        return _fmt(result), result

    # ------------------------------------------------------------------ completion
    def _finish(self, f):
        self.complete = True
        self.tsih = f['tsih']
        for key, (kind, default, lo, hi) in OPERATIONAL_KEYS.items():
            # Keys never negotiated (or offers left unanswered) take the RFC default.
            if kind not in ('declarative', 'irrelevant') and key not in self.negotiated:
                self.negotiated[key] = default
        self.negotiated['MaxRecvDataSegmentLength'] = self.p.values['MaxRecvDataSegmentLength']
        self.negotiated.setdefault('TargetMaxRecvDataSegmentLength', 8192)
        fb = self.negotiated.get('FirstBurstLength')
        mb = self.negotiated.get('MaxBurstLength')
        if fb is not None and mb is not None and fb > mb:
            self.negotiated['FirstBurstLength'] = mb
        for key in ('HeaderDigest', 'DataDigest'):
            if self.negotiated[key] not in self.p.values[key]:
                raise ISCSINegotiationError('%s=%s was negotiated but %s is required'
                                            % (key, self.negotiated[key], _fmt(self.p.values[key])))

    def summary(self):
        """Negotiation results without secrets, for reports."""
        return {
            'auth_method': self.auth_method,
            'chap_algorithm': ALGORITHMS[self.chap_algorithm][0] if self.chap_algorithm else None,
            'mutual_chap': self.mutual_verified,
            'tsih': self.tsih,
            'target_portal_group_tag': self.target_info.get('TargetPortalGroupTag'),
            'target_alias': self.target_info.get('TargetAlias'),
            'target_proposed_keys': list(self.proposed),
            'login_exchanges': self.rounds,
            'negotiated': dict(self.negotiated),
        }
