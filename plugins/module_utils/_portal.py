# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""iSCSI portals: ``host[:port]`` parsing, validation and normalization.

Accepted spellings (the ones ``iscsiadm -p`` and SendTargets use):

* ``192.0.2.10`` and ``192.0.2.10:3261``;
* ``[2001:db8::10]`` and ``[2001:db8::10]:3261`` - an IPv6 address is ALWAYS written in brackets, so that the port
  cannot be confused with the last group of the address;
* ``storage.example.com`` and ``storage.example.com:3261`` (a DNS name; open-iscsi stores it as given).

The port defaults to 3260 (the IANA iSCSI port) and must be 1..65535.  A ``,tpgt`` suffix is refused with a pointer to
the separate ``tpgt`` option.

:func:`parse_portal` returns a :class:`Portal`; :meth:`Portal.key` is the comparison form (IPv6 compressed and lower
case, DNS names lower case), :attr:`Portal.address` the text open-iscsi keeps in ``node.conn[0].address`` (no brackets)
and :meth:`Portal.arg` the ``-p`` argument of iscsiadm.

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._textrules import ascii_int, is_ascii_digits

DEFAULT_PORT = 3260
_LABEL_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
_EXAMPLES = "192.0.2.10, 192.0.2.10:3260, [2001:db8::10]:3260 or storage.example.com:3260"


class Portal(tuple):
    """``(address, port)``; ``address`` without brackets, exactly as open-iscsi stores it."""

    __slots__ = ()

    def __new__(cls, address, port=DEFAULT_PORT):
        return tuple.__new__(cls, (address, int(port)))

    @property
    def address(self):
        return self[0]

    @property
    def port(self):
        return self[1]

    @property
    def is_ipv6(self):
        return ":" in self[0]

    def host(self):
        """The address as written in a portal: IPv6 in brackets."""
        return "[%s]" % self[0] if self.is_ipv6 else self[0]

    def arg(self):
        """The ``-p`` argument for iscsiadm: ``addr:port`` or ``[v6]:port``."""
        return "%s:%d" % (self.host(), self[1])

    def key(self):
        """The comparison form: ``(normalized address, port)``."""
        return (normalize_address(self[0]), self[1])

    def __str__(self):
        return self.arg()

    def __repr__(self):
        return "Portal(%r, %d)" % (self[0], self[1])


def normalize_address(address):
    """Comparison form of a stored address: IPv4/IPv6 canonical text, other text lower case.  Never raises."""
    text = (address or "").strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text.lower()


def check_port(value, field="port"):
    """Return *value* as an int in 1..65535 or raise :class:`InputError`."""
    if isinstance(value, bool):
        raise InputError(field, "must be a TCP port number 1..65535, got %r" % (value,))
    if isinstance(value, str):
        number = ascii_int(value.strip())
        if number is None:
            raise InputError(field, "port %r is not a number in ASCII digits 0-9; give a TCP port 1..65535 (iSCSI uses "
                                    "%d)" % (value, DEFAULT_PORT))
        value = number
    if not isinstance(value, int):
        raise InputError(field, "must be a TCP port number 1..65535, got %s" % type(value).__name__)
    if not 1 <= value <= 65535:
        raise InputError(field, "port %d is out of range; give a TCP port 1..65535 (iSCSI uses %d)"
                         % (value, DEFAULT_PORT))
    return value


def _check_dns_name(host, field, original):
    name = host.lower()
    if name.endswith("."):
        name = name[:-1]
    if not name or len(name) > 253:
        raise InputError(field, "%r is not a valid host; give an IPv4 address, an IPv6 address in brackets or a DNS "
                                "name, e.g. %s" % (original, _EXAMPLES))
    labels = name.split(".")
    for label in labels:
        if not _LABEL_RE.match(label):
            raise InputError(field, "%r is not a valid host: label %r of the DNS name is not letters, digits and "
                                    "inner hyphens (1-63 characters); give an IPv4 address, an IPv6 address in "
                                    "brackets or a DNS name, e.g. %s" % (original, label, _EXAMPLES))
    if is_ascii_digits(labels[-1]):
        # 300.1.1.1, 10.0.0 - looks like an IPv4 address but is not one.
        raise InputError(field, "%r is not a valid IPv4 address; each of the four numbers must be 0..255, e.g. %s"
                         % (original, _EXAMPLES))
    return name


def parse_portal(value, field="portal", default_port=DEFAULT_PORT):
    """Parse ``host[:port]`` into a :class:`Portal` or raise :class:`InputError` naming *field* and the fix."""
    if isinstance(value, Portal):
        return value
    if not isinstance(value, str):
        raise InputError(field, "must be a string host[:port], e.g. %s; got %s" % (_EXAMPLES, type(value).__name__))
    text = value.strip()
    if not text:
        raise InputError(field, "must not be empty; give host[:port], e.g. %s" % _EXAMPLES)
    if any(c.isspace() for c in text):
        raise InputError(field, "%r contains white space; give host[:port], e.g. %s" % (value, _EXAMPLES))
    if "," in text:
        raise InputError(field, "%r has a ',tpgt' part; give the portal group tag in the separate 'tpgt' option and "
                                "the portal as host[:port]" % (value,))
    if "/" in text or "@" in text:
        raise InputError(field, "%r is not host[:port] (no URL, user or path parts); e.g. %s" % (value, _EXAMPLES))

    port = default_port
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise InputError(field, "%r opens '[' without a closing ']'; write IPv6 portals as [2001:db8::10]:3260"
                             % (value,))
        host = text[1:end]
        rest = text[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise InputError(field, "%r: only ':port' may follow ']'; write IPv6 portals as [2001:db8::10]:3260"
                                 % (value,))
            port = check_port(rest[1:], field)
        try:
            addr = ipaddress.IPv6Address(host)
        except ValueError:
            raise InputError(field, "%r: %r in brackets is not an IPv6 address; brackets are for IPv6 only, e.g. "
                                    "[2001:db8::10]:3260" % (value, host))
        return Portal(str(addr), port)

    if text.count(":") > 1:
        try:
            ipaddress.IPv6Address(text)
            plain = True
        except ValueError:
            plain = False
        hint = "[%s]" % text if plain else "[2001:db8::10]:3260"
        raise InputError(field, "%r looks like an IPv6 address without brackets; IPv6 portals must be written in "
                                "brackets so the port cannot be mistaken for part of the address, e.g. %s or %s:%d"
                         % (value, hint, hint if plain else "[2001:db8::10]", DEFAULT_PORT))
    host = text
    if ":" in text:
        host, _sep, port_text = text.partition(":")
        port = check_port(port_text, field)
    if not host:
        raise InputError(field, "%r has no host before ':'; e.g. %s" % (value, _EXAMPLES))
    try:
        return Portal(str(ipaddress.IPv4Address(host)), port)
    except ValueError:
        pass
    return Portal(_check_dns_name(host, field, value), port)
