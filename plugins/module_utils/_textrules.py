# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""What the real readers of the host's files take as a line end and as a number -- the one owner of those rules.

Every reader of the files the collection writes splits lines on ``\\n`` ONLY: iscsiadm and iscsid (``fgets``),
libmount (``getline``), the shell (``dash``/``sh``).  Python's ``str.splitlines`` also breaks at ``\\r``, ``\\v``,
``\\f``, ``\\x1c``-``\\x1e``, ``\\x85``, U+2028 and U+2029; a parser of the collection that used it would see lines
the real reader does not.  So:

* :func:`split_lf` is the only way module_utils split a file into lines: on ``\\n``, every other byte kept;
* :func:`check_one_line` refuses a value holding a control character (any C0 control but TAB, DEL, C1 controls such
  as ``\\x85``) or U+2028/U+2029 before anything is written, with an :class:`~._errors.InputError` naming the field.
  Formats that can encode such a character (fstab's octal escapes, sh single quotes) do so instead of calling it;
* :func:`ascii_int` reads a decimal number the way C's ``strtol``/``atoi`` does: ASCII digits only.  Python's
  ``str.isdigit`` accepts ``'²'`` and ``int()`` accepts ``'٣'`` and ``'1_0'``; neither is a number for iscsiadm.

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations

import re

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError

# More digits than any number the collection reads has; also far below Python's int() limit (4300 digits).
MAX_DIGITS = 64
_INT_RE = re.compile(r"[+-]?[0-9]+\Z")
_UINT_RE = re.compile(r"[0-9]+\Z")
# C0 controls except TAB, DEL, the C1 controls (\x85 among them) and the Unicode line/paragraph separators.
_CONTROL_RE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def split_lf(text):
    """The lines of *text* as a ``\\n``-splitting reader sees them, each with its ``\\n`` (the last one may lack it).
    ``"".join(split_lf(text)) == text`` always."""
    if not text:
        return []
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def ascii_int(text, signed=False, max_digits=MAX_DIGITS):
    """The int *text* spells in ASCII decimal digits (an optional sign when *signed*), else ``None``.  Never raises:
    ``'²'``, ``'٣'``, ``'1_0'``, ``' 1'``, ``''`` and numbers longer than *max_digits* give ``None``."""
    if not isinstance(text, str) or len(text) > max_digits + 1:
        return None
    if not (_INT_RE if signed else _UINT_RE).match(text):
        return None
    if len(text.lstrip("+-")) > max_digits:
        return None
    return int(text, 10)


def is_ascii_digits(text):
    """True when *text* is one or more ASCII digits ``0``-``9`` (what ``str.isdigit`` wrongly widens)."""
    return isinstance(text, str) and bool(_UINT_RE.match(text))


def first_control(value):
    """The first character of *value* no reader keeps on one line as it is (see the module docstring), or ``None``."""
    m = _CONTROL_RE.search(value)
    return m.group(0) if m else None


def check_one_line(value, field, what="the value"):
    """Return *value* or raise :class:`InputError` naming *field* when it holds a control character or a line
    separator (which the file's reader and the collection's own parsers would read differently)."""
    ch = first_control(value)
    if ch is not None:
        raise InputError(field, "%s holds the control character %s (U+%04X); give it on one line without control "
                                "characters (a reader of the file would split or change it there)"
                         % (what, repr(ch), ord(ch)))
    return value
