# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""The one parser/renderer for open-iscsi's ``key = value`` files.

iscsid.conf, node records (``# BEGIN RECORD`` ... ``# END RECORD``), iface records and send_targets records all use
the same line format: ``key = value``, ``#`` comments, blank lines; a line ends at ``\n`` only (``fgets``), see
:mod:`._textrules`.  :class:`KVFile` keeps every line as it was read
(comments, spacing, ordering, line endings, a missing final newline) and changes only the lines it is asked to, so a
parse followed by a render with no change gives back the input byte for byte.

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations

import re

from ansible_collections.openiscsi.initiator.plugins.module_utils._textrules import first_control, split_lf

# A key as open-iscsi writes it: node.conn[0].timeo.login_timeout, iface.iscsi_ifacename, discovery.sendtargets.x ...
KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\[\]-]*\Z")
_ACTIVE_RE = re.compile(r"^(?P<indent>[ \t]*)(?P<key>[A-Za-z0-9_][A-Za-z0-9_.\[\]-]*)(?P<sep>[ \t]*=[ \t]*)"
                        r"(?P<value>.*?)(?P<trail>[ \t]*)(?P<eol>\r?\n)?\Z", re.S)
_COMMENTED_RE = re.compile(r"^(?P<indent>[ \t]*)#[ \t]*(?P<key>[A-Za-z0-9_][A-Za-z0-9_.\[\]-]*)[ \t]*=[ \t]*"
                           r"(?P<value>.*?)[ \t]*(?P<eol>\r?\n)?\Z", re.S)


class _Line:
    __slots__ = ("raw", "key", "value", "commented")

    def __init__(self, raw):
        self.raw = raw
        self.key = None
        self.value = None
        self.commented = False
        m = _ACTIVE_RE.match(raw)
        if m:
            self.key = m.group("key")
            self.value = m.group("value")
            return
        m = _COMMENTED_RE.match(raw)
        if m:
            self.key = m.group("key")
            self.value = m.group("value")
            self.commented = True

    @property
    def active(self):
        return self.key is not None and not self.commented

    @property
    def eol(self):
        if self.raw.endswith("\r\n"):
            return "\r\n"
        if self.raw.endswith("\n"):
            return "\n"
        return ""


def check_key(key):
    """Raise ValueError unless *key* can be written as a key of these files."""
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise ValueError("invalid key %r: keys are letters, digits and . _ - [ ] only" % (key,))


def check_value(value):
    """Raise ValueError unless *value* can be written on one line."""
    if not isinstance(value, str):
        raise ValueError("value must be a string")
    ch = first_control(value)
    if ch is not None:
        raise ValueError("value must not contain a control character or line separator (found U+%04X)" % ord(ch))
    if value != value.strip(" \t"):
        raise ValueError("value must not start or end with white space (open-iscsi strips it)")


class KVFile:
    """A ``key = value`` file kept line by line."""

    def __init__(self, lines=None):
        self._lines = list(lines or [])
        self._effective = None  # {key: value} of the active lines (last wins); rebuilt after every change

    @classmethod
    def parse(cls, text):
        if isinstance(text, bytes):
            text = text.decode("utf-8", "surrogateescape")
        # Lines end at \n only, as iscsiadm's fgets() reads them (str.splitlines would also break at \v, \f, U+2028...)
        return cls([_Line(raw) for raw in split_lf(text)])

    # ----------------------------------------------------------------- reading
    def _index(self):
        if self._effective is None:
            self._effective = dict((line.key, line.value) for line in self._lines if line.active)
        return self._effective

    def get(self, key, default=None):
        """The effective value of *key*: its last active line (later lines win, as in open-iscsi)."""
        return self._index().get(key, default)

    def __contains__(self, key):
        return key in self._index()

    def items(self):
        """Active ``(key, value)`` pairs in file order (duplicates included)."""
        return [(line.key, line.value) for line in self._lines if line.active]

    def as_dict(self):
        """Effective values: the last active line of each key wins."""
        return dict(self._index())

    def duplicates(self):
        """Keys that have more than one active line."""
        seen, dups = set(), []
        for key, _value in self.items():
            if key in seen and key not in dups:
                dups.append(key)
            seen.add(key)
        return dups

    def commented_value(self, key):
        """The value of the first commented-out ``# key = value`` line (a shipped default), or None."""
        for line in self._lines:
            if line.commented and line.key == key:
                return line.value
        return None

    # ----------------------------------------------------------------- writing
    def set(self, key, value, replace_commented=False, before=None):
        """Make *key*'s effective value *value*.  Returns True when a line changed.

        The last active line of the key is edited in place (indentation and separator kept).  With no active line,
        *replace_commented* puts the setting in place of the first ``# key = ...`` comment line; otherwise the line
        is inserted before the first line whose raw text starts with *before* (e.g. ``# END RECORD``) or appended.
        """
        check_key(key)
        check_value(value)
        self._effective = None
        last = None
        for idx, line in enumerate(self._lines):
            if line.active and line.key == key:
                last = idx
        if last is not None:
            line = self._lines[last]
            if line.value == value:
                return False
            m = _ACTIVE_RE.match(line.raw)
            raw = "%s%s%s%s%s%s" % (m.group("indent"), key, m.group("sep"), value, m.group("trail"), m.group("eol") or "")
            self._lines[last] = _Line(raw)
            return True
        if replace_commented:
            for idx, line in enumerate(self._lines):
                if line.commented and line.key == key:
                    m = _COMMENTED_RE.match(line.raw)
                    self._lines[idx] = _Line("%s%s = %s%s" % (m.group("indent"), key, value, line.eol))
                    return True
        eol = self._eol()
        new = _Line("%s = %s%s" % (key, value, eol))
        if before is not None:
            for idx, line in enumerate(self._lines):
                if line.raw.startswith(before):
                    self._lines.insert(idx, new)
                    return True
        if self._lines and not self._lines[-1].eol:
            last_line = self._lines[-1]
            self._lines[-1] = _Line(last_line.raw + eol)
        self._lines.append(new)
        return True

    def remove(self, key):
        """Delete every active line of *key*.  Returns True when a line went."""
        check_key(key)
        self._effective = None
        kept = [line for line in self._lines if not (line.active and line.key == key)]
        changed = len(kept) != len(self._lines)
        self._lines = kept
        return changed

    def render(self):
        return "".join(line.raw for line in self._lines)

    def _eol(self):
        for line in self._lines:
            if line.eol:
                return line.eol
        return "\n"


# A line that _ACTIVE_RE takes for ``key = value`` (value without the blanks around it), over a whole text at once.
_VALUES_RE = re.compile(r"^[ \t]*([A-Za-z0-9_][A-Za-z0-9_.\[\]-]*)[ \t]*=[ \t]*(.*?)[ \t]*$", re.M)
# Line breaks str.splitlines knows besides \n: with any of them, read_values takes the line-by-line parse.
_OTHER_BREAKS_RE = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


class KVValues:
    """The reading side of :class:`KVFile` (``get``, ``in``, ``items``, ``as_dict``, ``duplicates``) for a text read
    and not changed: one regular expression over the whole text instead of an object per line (reading thousands of
    node records is most of a run with nothing to change)."""

    def __init__(self, pairs):
        self._pairs = pairs
        self._effective = dict(pairs)

    def get(self, key, default=None):
        return self._effective.get(key, default)

    def __contains__(self, key):
        return key in self._effective

    def items(self):
        return list(self._pairs)

    def as_dict(self):
        return dict(self._effective)

    def duplicates(self):
        if len(self._effective) == len(self._pairs):
            return []
        seen, dups = set(), []
        for key, _value in self._pairs:
            if key in seen and key not in dups:
                dups.append(key)
            seen.add(key)
        return dups


def read_values(text):
    """The active ``key = value`` pairs of *text*, for reading only: a :class:`KVValues` (or a :class:`KVFile` when
    the text has line breaks other than ``\\n``, which the line-by-line parse handles), same answers as
    ``KVFile.parse(text)``."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    if _OTHER_BREAKS_RE.search(text):
        return KVFile.parse(text)
    return KVValues(_VALUES_RE.findall(text))
