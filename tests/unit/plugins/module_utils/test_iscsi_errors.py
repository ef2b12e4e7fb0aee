# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _iscsi_errors as E

RETRYABLE_LOGIN = {(1, 1), (1, 2), (2, 6), (3, 0), (3, 1), (3, 2)}


@pytest.mark.parametrize('status', sorted(E.LOGIN_STATUS))
def test_login_status_table(status):
    name, explanation, retryable = E.login_status_info(*status)
    assert name and explanation
    assert retryable is (status in RETRYABLE_LOGIN)


def test_login_status_table_is_complete():
    expected = {(0, 0), (1, 1), (1, 2)} | {(2, d) for d in range(0x0C)} | {(3, d) for d in range(3)}
    assert set(E.LOGIN_STATUS) == expected


@pytest.mark.parametrize('status, retryable', [((1, 9), True), ((2, 0x55), False), ((3, 0x55), True),
                                               ((4, 0), False), ((0xFF, 0xFF), False)])
def test_unknown_login_status(status, retryable):
    name, explanation, verdict = E.login_status_info(*status)
    assert verdict is retryable and 'RFC 7143' in explanation
    err = E.ISCSILoginError(*status)
    assert err.status == '%02x%02x' % status and err.retryable is retryable


def test_login_error_message():
    err = E.ISCSILoginError(2, 1, 'iqn.2024-01.test:t')
    assert str(err).startswith('login to iqn.2024-01.test:t failed with status 0x0201 (authentication failure)')
    assert err.to_dict() == {'message': str(err), 'kind': 'login', 'retryable': False, 'status': '0201',
                             'status_name': 'authentication failure'}
    assert 'not found' in str(E.ISCSILoginError(2, 3)) and 'ACL' in str(E.ISCSILoginError(2, 3))


REJECT_RETRYABLE = {0x02, 0x03, 0x06, 0x07, 0x0A, 0x0C}


@pytest.mark.parametrize('reason', range(0x01, 0x0D))
def test_every_reject_reason(reason):
    err = E.ISCSIRejectError(reason, 'SendTargets')
    explanation, retryable = E.reject_reason_info(reason)
    assert explanation in str(err) and ('0x%02x' % reason) in str(err) and 'SendTargets' in str(err)
    assert err.retryable is (reason in REJECT_RETRYABLE) is retryable


def test_unknown_reject_reason():
    err = E.ISCSIRejectError(0x42)
    assert 'unknown reason code 0x42' in str(err) and not err.retryable


@pytest.mark.parametrize('cls, retryable', [
    (E.ISCSIProtocolError, False), (E.ISCSITruncatedError, False), (E.ISCSILimitError, False),
    (E.ISCSITextError, False), (E.ISCSIDigestError, True), (E.ISCSIConnectionError, True),
    (E.ISCSITimeout, True), (E.ISCSINegotiationError, False), (E.ISCSIAuthError, False),
    (E.ISCSIRedirectError, True), (E.ISCSIStateError, False),
])
def test_hierarchy_and_default_verdicts(cls, retryable):
    err = cls('something')
    assert isinstance(err, E.ISCSIError) and err.retryable is retryable
    assert cls('x', retryable=not retryable).retryable is (not retryable)
    assert err.to_dict()['kind'] == cls.kind


def test_scsi_error_dict():
    err = E.ISCSISCSIError('INQUIRY failed', status=2, sense={'key': 5})
    assert err.to_dict()['scsi_status'] == 2 and err.to_dict()['sense'] == {'key': 5}
