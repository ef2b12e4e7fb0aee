# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""THE parser and renderer for the collection's ``KEY=value`` files that are SOURCED by a POSIX shell.

Files: /etc/default/open-iscsi, /etc/iscsi/iscsi.initramfs, /etc/initramfs-tools/conf.d/open-iscsi.

Reading: the text is cut into *logical lines* the way the shell reads commands: a line ends at ``\\n`` only (no
other character ends a line for sh), except inside single or double quotes and after an unquoted backslash, so
``KEY='first\\nsecond'`` is ONE line whose value holds a newline (a ``#`` comment ends at the ``\\n`` whatever quotes
it holds).  Here-documents and multi-line ``$( )`` are not followed: their lines stay separate, are kept as they are
and are opaque. Every logical line is kept verbatim. A logical line is an *assignment* when it is exactly one simple
shell assignment (optionally after ``export``, optionally followed by blanks and a ``# comment``) whose value is a
plain word: unquoted characters without shell meaning, ``'single quoted'`` and ``"double quoted"`` parts (inside
double quotes only ``\\$ \\` \\" \\\\`` escapes, and no ``$`` or backquote at all). Its value is what the shell
would assign. Any other line (comments, blank lines, conditionals, an assignment whose value expands a variable or
runs a command) is *opaque*: kept as it is and never interpreted, and reported by :meth:`ShFile.opaque_assignments`
when it assigns a key the caller manages. As in the shell, the LAST assignment of a key wins.

Writing: :meth:`ShFile.set` replaces the last assignment line of the key (earlier ones are left: the shell overrides
them anyway) or appends one; :meth:`ShFile.remove` drops every assignment line of the key.  Values are rendered so
that sourcing the file assigns exactly the value and nothing else can happen: plain words unquoted, anything else in
single quotes (``'`` as ``'\\''``).  NUL, newline and carriage return cannot be rendered safely and raise
:class:`~._errors.InputError`.  Keys must be shell names.

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations

import re

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ASSIGN_RE = re.compile(r"^([ \t]*)(export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)=")
# Characters that may stand unquoted in a word without any shell meaning.
SAFE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.,:/@%+=-")
_FORBIDDEN = ("\0", "\n", "\r")


def quote(value):
    """The shell spelling of *value*: as it is when every character is safe (and it is not empty), else single
    quoted.  Raises ``ValueError`` for NUL, newline or carriage return."""
    for ch in _FORBIDDEN:
        if ch in value:
            raise ValueError("value contains %r" % ch)
    if value and all(ch in SAFE_CHARS for ch in value):
        return value
    return "'" + value.replace("'", "'\\''") + "'"


def parse_word(text):
    """``(value, rest)`` for the shell word at the start of *text*, or ``None`` when it is not a plain word.

    *rest* is what follows the word (blanks and an optional comment); it must be only that, else ``None``.
    """
    out = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in " \t":
            break
        if ch == "'":
            end = text.find("'", i + 1)
            if end < 0:
                return None
            out.append(text[i + 1:end])
            i = end + 1
        elif ch == '"':
            i += 1
            while True:
                if i >= n:
                    return None
                c = text[i]
                if c == '"':
                    i += 1
                    break
                if c in "$`":
                    return None
                if c == "\\" and i + 1 < n and text[i + 1] in '$`"\\':
                    out.append(text[i + 1])
                    i += 2
                    continue
                if c == "\\" and i + 1 < n and text[i + 1] == "\n":
                    return None
                out.append(c)
                i += 1
        elif ch == "\\":
            if i + 1 >= n:
                return None
            if text[i + 1] != "\n":  # backslash-newline is a line continuation: both go
                out.append(text[i + 1])
            i += 2
        elif ch in SAFE_CHARS or (ch in "]^!{}~" and not (ch == "~" and i == 0)):
            out.append(ch)  # no globbing (* ? [) and no tilde expansion: a plain word
            i += 1
        else:
            return None  # $ ` ( ) ; & | < > # etc.
    rest = text[i:]
    stripped = rest.lstrip(" \t")
    if stripped and not stripped.startswith("#"):
        return None
    return "".join(out), rest


def logical_line_end(text, pos):
    """The index of the ``\\n`` that ends the shell command line starting at *pos*, or -1 at the end of *text*:
    newlines inside quotes and after an unquoted backslash do not end it, a ``#`` comment ends at the next one."""
    n = len(text)
    i = pos
    word_start = True
    while i < n:
        ch = text[i]
        if ch == "\n":
            return i
        if ch == "\\":
            i += 2
            word_start = False
            continue
        if ch == "'":
            end = text.find("'", i + 1)
            if end < 0:
                return text.find("\n", i)  # unterminated: a syntax error for sh; keep the physical line
            i = end + 1
            word_start = False
            continue
        if ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                return text.find("\n", i)
            i = j + 1
            word_start = False
            continue
        if ch == "#" and word_start:
            return text.find("\n", i)
        word_start = ch in " \t;&|()<>"
        i += 1
    return -1


class ShLine:
    __slots__ = ("raw", "eol", "lineno", "key", "value", "opaque_key")

    def __init__(self, raw, eol, lineno):
        self.raw = raw
        self.eol = eol
        self.lineno = lineno
        self.key = None
        self.value = None
        self.opaque_key = None
        m = _ASSIGN_RE.match(raw)
        if m:
            parsed = parse_word(raw[m.end():])
            if parsed is None:
                self.opaque_key = m.group(3)
            else:
                self.key = m.group(3)
                self.value = parsed[0]

    def text(self):
        return self.raw + self.eol


class ShFile:
    """A parsed sh-sourced ``KEY=value`` file (see the module docstring)."""

    def __init__(self, lines):
        self.lines = lines

    @classmethod
    def parse(cls, text):
        lines = []
        pos = 0
        lineno = 0
        text = text or ""
        while pos < len(text):
            lineno += 1
            nl = logical_line_end(text, pos)
            if nl < 0:
                raw, eol, pos = text[pos:], "", len(text)
            else:
                raw, eol, pos = text[pos:nl], "\n", nl + 1
            lines.append(ShLine(raw, eol, lineno))
            lineno += raw.count("\n")
        return cls(lines)

    def render(self):
        return "".join(line.text() for line in self.lines)

    def get(self, key, default=None):
        """The value the shell ends up with (last plain assignment), or *default*.

        An opaque assignment AFTER the last plain one makes the value unknown: ``default`` is returned; check
        :meth:`opaque_assignments`.
        """
        value = default
        for line in self.lines:
            if line.key == key:
                value = line.value
            elif line.opaque_key == key:
                value = default
        return value

    def has(self, key):
        return any(line.key == key or line.opaque_key == key for line in self.lines)

    def keys(self):
        out = []
        for line in self.lines:
            k = line.key or line.opaque_key
            if k and k not in out:
                out.append(k)
        return out

    def items(self):
        return [(k, self.get(k)) for k in self.keys()]

    def opaque_assignments(self, keys=None):
        """``[(lineno, key, raw)]`` of assignments this parser does not interpret (of *keys* when given)."""
        return [(line.lineno, line.opaque_key, line.raw) for line in self.lines
                if line.opaque_key and (keys is None or line.opaque_key in keys)]

    @staticmethod
    def render_assignment(key, value, field=None):
        if not NAME_RE.match(key or ""):
            raise InputError(field or "key", "%r is not a shell variable name" % (key,))
        try:
            return "%s=%s" % (key, quote(value))
        except ValueError as exc:
            raise InputError(field or key, "cannot be written to a shell file: %s" % exc)

    def set(self, key, value, field=None):
        """Make the shell assign *value* to *key*; True when the text changed."""
        new_raw = self.render_assignment(key, value, field)
        last = None
        for line in self.lines:
            if line.key == key or line.opaque_key == key:
                last = line
        if last is not None:
            if last.key == key and last.value == value:
                return False
            m = _ASSIGN_RE.match(last.raw)
            indent = m.group(1) + (m.group(2) or "")
            index = self.lines.index(last)
            self.lines[index] = ShLine(indent + new_raw, last.eol, last.lineno)
            return True
        if self.lines and self.lines[-1].eol == "":
            self.lines[-1] = ShLine(self.lines[-1].raw, "\n", self.lines[-1].lineno)
        self.lines.append(ShLine(new_raw, "\n", len(self.lines) + 1))
        return True

    def remove(self, key):
        """Drop every assignment of *key* (plain or opaque); True when something was removed."""
        kept = [line for line in self.lines if line.key != key and line.opaque_key != key]
        changed = len(kept) != len(self.lines)
        self.lines = kept
        return changed
