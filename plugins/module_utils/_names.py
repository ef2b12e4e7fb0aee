# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""iSCSI names (RFC 3720 section 3.2.6, RFC 7143 section 4.2.7, RFC 3980 for ``naa.``): validation and generation.

Three name types exist:

* ``iqn.YYYY-MM.reversed.domain[:anything]`` - the date is a year and month when the naming authority owned the
  domain, the domain is written in reverse order, anything after the first ``:`` is chosen by that authority;
* ``eui.`` followed by exactly 16 hexadecimal digits (an EUI-64);
* ``naa.`` followed by 16 or 32 hexadecimal digits (an NAA identifier).

Names are compared after the iSCSI stringprep profile (RFC 3722).  For the ASCII names supported here that means
upper-case letters are folded to lower case; the characters left are ``a-z``, ``0-9``, ``-``, ``.`` and ``:``.
A name is at most 223 bytes of UTF-8.  Non-ASCII names (which RFC 3722 permits after nameprep) are refused: open-iscsi
tools and most targets do not handle them, and they are a frequent copy-paste accident.

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations

import re
import secrets

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError

MAX_NAME_BYTES = 223
DEBIAN_PREFIX = "iqn.1993-08.org.debian:01"
# Debian's iscsi-iname appends ':' and 12 hexadecimal digits (6 random bytes) to its prefix.
GENERATED_SUFFIX_HEX = 12

_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.:")
_HEX = frozenset("0123456789abcdef")
_DATE_RE = re.compile(r"(\d{4})-(\d{2})")
_EXAMPLE = "iqn.2001-04.com.example:storage1"


def _show(char):
    """A character as it should appear in an error message."""
    if char.isprintable() and not char.isspace():
        return "'%s'" % char
    if "\udc80" <= char <= "\udcff":
        return "byte 0x%02x" % (ord(char) - 0xDC00)
    return "%r (U+%04X)" % (char, ord(char))


def name_type(name):
    """``'iqn'``, ``'eui'`` or ``'naa'`` for a normalized name, ``None`` for anything else."""
    head = name[:4]
    return head[:3] if head in ("iqn.", "eui.", "naa.") else None


def normalize_name(value, field="name"):
    """Return the normalized (lower-case) form of the iSCSI name ``value``.

    Raises :class:`InputError` naming ``field``, the rule broken, and the offending character and its 1-based position.
    """
    if not isinstance(value, str):
        raise InputError(field, "must be a string, got %s" % type(value).__name__)
    if value == "":
        raise InputError(field, "must not be empty; give an iSCSI name such as %s" % _EXAMPLE)

    for pos, char in enumerate(value, 1):
        if "\udc80" <= char <= "\udcff":
            raise InputError(field, "%s at position %d is not valid UTF-8" % (_show(char), pos))
        if char.isspace():
            where = "leading" if pos == 1 else ("trailing" if pos == len(value) else "inner")
            raise InputError(field, "contains %s whitespace %s at position %d; iSCSI names have no spaces - remove it"
                             % (where, _show(char), pos))

    size = len(value.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise InputError(field, "is %d bytes long; an iSCSI name is at most %d bytes of UTF-8 (RFC 3720 3.2.6.1)"
                         % (size, MAX_NAME_BYTES))

    # stringprep for ASCII names: fold A-Z to a-z; anything outside the iSCSI character set is an error.
    name = value.lower() if value.isascii() else value
    for pos, char in enumerate(name, 1):
        if char in _ALLOWED:
            continue
        if not char.isascii():
            raise InputError(field, "character %s at position %d is not ASCII; only a-z, 0-9, '-', '.' and ':' are "
                                    "accepted (upper case is folded to lower case)" % (_show(char), pos))
        raise InputError(field, "character %s at position %d is not allowed in an iSCSI name; only a-z, 0-9, '-', "
                                "'.' and ':' are (upper case is folded to lower case)" % (_show(char), pos))

    kind = name_type(name)
    if kind is None:
        raise InputError(field, "%r does not start with 'iqn.', 'eui.' or 'naa.' (RFC 3720 3.2.6.3); for example %s"
                         % (value[:12], _EXAMPLE))
    if kind == "eui":
        _check_hex(field, name, (16,), "an EUI-64 identifier: 'eui.' followed by exactly 16 hexadecimal digits")
    elif kind == "naa":
        _check_hex(field, name, (16, 32), "an NAA identifier: 'naa.' followed by 16 or 32 hexadecimal digits")
    else:
        _check_iqn(field, name)
    return name


def _check_hex(field, name, lengths, what):
    digits = name[4:]
    for pos, char in enumerate(digits, 5):
        if char not in _HEX:
            raise InputError(field, "character %s at position %d is not a hexadecimal digit; the name must be %s"
                             % (_show(char), pos, what))
    if len(digits) not in lengths:
        raise InputError(field, "has %d hexadecimal digits after '%s'; the name must be %s"
                         % (len(digits), name[:4], what))


def _check_iqn(field, name):
    rest = name[4:]
    m = _DATE_RE.match(rest)
    if not m:
        raise InputError(field, "'iqn.' must be followed by a date YYYY-MM (a year and month when the naming authority "
                                "owned its domain) and the reversed domain, as in %s; got %r after 'iqn.'"
                         % (_EXAMPLE, rest[:12]))
    month = int(m.group(2))
    if not 1 <= month <= 12:
        raise InputError(field, "month %s in the date %s is not a month (01-12)" % (m.group(2), m.group(0)))
    if len(rest) == 7 or rest[7] != ".":
        raise InputError(field, "the date %s must be followed by '.' and the naming authority's reversed domain name, "
                                "as in %s" % (m.group(0), _EXAMPLE))
    start = 4 + 8  # index in name where the domain starts
    authority, colon, unique = name[start:].partition(":")
    if authority == "":
        raise InputError(field, "the reversed domain name after 'iqn.%s.' is missing (for example com.example in %s)"
                         % (m.group(0), _EXAMPLE))
    pos = start
    for label in authority.split("."):
        if label == "":
            raise InputError(field, "the reversed domain name %r has an empty label at position %d (two dots in a row, "
                                    "or a dot at its start or end)" % (authority, pos + 1))
        pos += len(label) + 1
    if colon and unique == "":
        raise InputError(field, "nothing follows the ':' at position %d; remove the ':' or add the naming authority's "
                                "unique string after it" % (start + len(authority) + 1))


def generate_iqn(prefix=DEBIAN_PREFIX, field="prefix"):
    """A new unique initiator name like Debian's ``iscsi-iname -p PREFIX``: ``PREFIX:`` + 12 random hex digits.

    The prefix must itself be a valid ``iqn.`` name (it is normalized to lower case) short enough to leave room for
    the 13 characters appended.  Randomness comes from :mod:`secrets` (the OS CSPRNG).
    """
    base = normalize_name(prefix, field)
    if name_type(base) != "iqn":
        raise InputError(field, "must be an 'iqn.' name (such as %s); ':' and %d hexadecimal digits are appended to it, "
                                "which 'eui.' and 'naa.' names cannot take" % (DEBIAN_PREFIX, GENERATED_SUFFIX_HEX))
    room = MAX_NAME_BYTES - 1 - GENERATED_SUFFIX_HEX
    if len(base) > room:
        raise InputError(field, "is %d bytes long; with ':' and %d hexadecimal digits appended the name would exceed "
                                "%d bytes - use a prefix of at most %d bytes"
                         % (len(base), GENERATED_SUFFIX_HEX, MAX_NAME_BYTES, room))
    return "%s:%s" % (base, secrets.token_hex(GENERATED_SUFFIX_HEX // 2))
