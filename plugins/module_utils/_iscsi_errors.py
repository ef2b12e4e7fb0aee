# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to the openiscsi.initiator collection: not a public API, may change without notice.

"""Error hierarchy of the pure-Python iSCSI initiator.

Every error the library raises is an :class:`ISCSIError`.  Each carries a ``retryable`` verdict: True when the
same attempt may succeed later without any change on the initiator side (timeouts, connection resets, target
busy), False when something must be fixed first (credentials, names, ACLs, protocol violations).

Messages never contain secrets: CHAP passwords, challenges and responses are never formatted into them.
"""

from __future__ import annotations


class ISCSIError(Exception):
    """Base class of every error raised by the iSCSI initiator library."""

    retryable = False
    kind = 'error'

    def __init__(self, message, retryable=None):
        super(ISCSIError, self).__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = bool(retryable)

    def to_dict(self):
        """A JSON-friendly summary (message, kind, retryable) for module return values."""
        return {'message': self.message, 'kind': self.kind, 'retryable': self.retryable}


class ISCSIProtocolError(ISCSIError):
    """The peer sent something that violates the protocol (malformed PDU, wrong opcode, bad key/value)."""

    kind = 'protocol'


class ISCSITruncatedError(ISCSIProtocolError):
    """The byte stream or buffer ended in the middle of a PDU."""

    kind = 'truncated'


class ISCSILimitError(ISCSIProtocolError):
    """The peer exceeded a configured bound (segment length, total text size, continuation rounds)."""

    kind = 'limit'


class ISCSITextError(ISCSIProtocolError):
    """A text key=value segment could not be decoded."""

    kind = 'text'


class ISCSIDigestError(ISCSIProtocolError):
    """A CRC32C header or data digest did not match."""

    kind = 'digest'
    retryable = True


class ISCSIConnectionError(ISCSIError):
    """The TCP connection could not be opened or was closed by the peer."""

    kind = 'connection'
    retryable = True


class ISCSITimeout(ISCSIConnectionError):
    """A socket operation or the whole exchange ran out of time."""

    kind = 'timeout'
    retryable = True


class ISCSINegotiationError(ISCSIError):
    """Operational parameter negotiation failed (e.g. required digest refused)."""

    kind = 'negotiation'


class ISCSIAuthError(ISCSIError):
    """Authentication failed or was refused locally (mutual CHAP mismatch, downgrade attempt, unsupported algorithm)."""

    kind = 'authentication'


class ISCSIRedirectError(ISCSIError):
    """Too many redirects, or a redirect without a usable TargetAddress."""

    kind = 'redirect'
    retryable = True


class ISCSIStateError(ISCSIError):
    """The caller used the session in the wrong state (e.g. SCSI command before login)."""

    kind = 'state'


# Login response status: (class, detail) -> (short name, explanation, retryable).
LOGIN_STATUS = {
    (0x00, 0x00): ('success', 'login succeeded', False),
    (0x01, 0x01): ('target moved temporarily', 'the target redirected the login to another address', True),
    (0x01, 0x02): ('target moved permanently', 'the target redirected the login to another address', True),
    (0x02, 0x00): ('initiator error',
                   'the target refused a parameter of the login request (tgt also answers this to an unsupported '
                   'CHAP algorithm or a CHAP response of the wrong length)', False),
    (0x02, 0x01): ('authentication failure',
                   'wrong CHAP user name or secret, CHAP required but not offered, CHAP offered to a target without '
                   'accounts, or mutual CHAP requested from a target without an outgoing account', False),
    (0x02, 0x02): ('authorization failure', 'the initiator is not allowed to access this target', False),
    (0x02, 0x03): ('not found',
                   'no such target name, or the target hides it from this initiator (ACL)', False),
    (0x02, 0x04): ('target removed', 'the target no longer exists at this address', False),
    (0x02, 0x05): ('unsupported version', 'the target does not support iSCSI version 0', False),
    (0x02, 0x06): ('too many connections', 'the target accepts no further connections for this session', True),
    (0x02, 0x07): ('missing parameter',
                   'a required login key is missing (TargetName, InitiatorName) or the ISID is invalid', False),
    (0x02, 0x08): ('cannot include in session', 'the target does not support multiple connections or this CID', False),
    (0x02, 0x09): ('session type not supported', 'the target does not support this SessionType', False),
    (0x02, 0x0a): ('session does not exist', 'the TSIH refers to a session the target does not know', False),
    (0x02, 0x0b): ('invalid during login', 'the request is not valid during login', False),
    (0x03, 0x00): ('target error', 'the target reported an internal error', True),
    (0x03, 0x01): ('service unavailable', 'the target is temporarily unable to serve the login', True),
    (0x03, 0x02): ('out of resources', 'the target is out of resources', True),
}

_CLASS_NAMES = {0x01: 'redirection', 0x02: 'initiator error', 0x03: 'target error'}


def login_status_info(status_class, status_detail):
    """Return ``(name, explanation, retryable)`` for a login status, also for codes not in the RFC table."""
    key = (status_class & 0xFF, status_detail & 0xFF)
    if key in LOGIN_STATUS:
        return LOGIN_STATUS[key]
    cls_name = _CLASS_NAMES.get(key[0], 'unknown class')
    # Class 1 is always redirection, class 3 a target-side (transient) error, anything else is not retryable.
    return ('%s (unknown detail)' % cls_name, 'status not defined by RFC 7143', key[0] in (0x01, 0x03))


class ISCSILoginError(ISCSIError):
    """The target answered the login with a non-zero status class."""

    kind = 'login'

    def __init__(self, status_class, status_detail, target=None):
        name, explanation, retryable = login_status_info(status_class, status_detail)
        self.status_class = status_class & 0xFF
        self.status_detail = status_detail & 0xFF
        self.status = '%02x%02x' % (self.status_class, self.status_detail)
        self.status_name = name
        where = (' to %s' % target) if target else ''
        message = 'login%s failed with status 0x%s (%s): %s' % (where, self.status, name, explanation)
        super(ISCSILoginError, self).__init__(message, retryable=retryable)

    def to_dict(self):
        result = super(ISCSILoginError, self).to_dict()
        result['status'] = self.status
        result['status_name'] = self.status_name
        return result


# Reject reasons (RFC 7143 11.17.1): code -> (explanation, retryable).
REJECT_REASONS = {
    0x01: ('reserved reason code', False),
    0x02: ('data (payload) digest error', True),
    0x03: ('SNACK reject', True),
    0x04: ('protocol error', False),
    0x05: ('command not supported', False),
    0x06: ('immediate command rejected: too many immediate commands', True),
    0x07: ('task in progress', True),
    0x08: ('invalid data ACK', False),
    0x09: ('invalid PDU field', False),
    0x0a: ('long operation rejected: cannot generate a target transfer tag, out of resources', True),
    0x0b: ('negotiation reset', False),
    0x0c: ('waiting for logout', True),
}


def reject_reason_info(reason):
    """Return ``(explanation, retryable)`` for a Reject PDU reason code."""
    return REJECT_REASONS.get(reason & 0xFF, ('unknown reason code 0x%02x' % (reason & 0xFF), False))


class ISCSIRejectError(ISCSIError):
    """The target answered with a Reject PDU."""

    kind = 'reject'

    def __init__(self, reason, context=None):
        explanation, retryable = reject_reason_info(reason)
        self.reason = reason & 0xFF
        what = (' %s' % context) if context else ''
        message = 'target rejected the%s request with reason 0x%02x (%s)' % (what, self.reason, explanation)
        super(ISCSIRejectError, self).__init__(message, retryable=retryable)


class ISCSISCSIError(ISCSIError):
    """A SCSI command ended with a non-GOOD status."""

    kind = 'scsi'

    def __init__(self, message, status=None, sense=None, retryable=False):
        self.status = status
        self.sense = sense
        super(ISCSISCSIError, self).__init__(message, retryable=retryable)

    def to_dict(self):
        result = super(ISCSISCSIError, self).to_dict()
        result['scsi_status'] = self.status
        if self.sense:
            result['sense'] = dict(self.sense)
        return result
