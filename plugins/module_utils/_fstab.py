# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""THE parser and renderer for /etc/fstab (and files in its format) of the collection.

The file is read the way libmount reads it (util-linux libmount/src/tab_parse.c):

* a line whose first non-blank character is ``#`` is a comment; a ``#`` anywhere else is data (a device such as
  ``/dev/disk/by-label/a#b`` or an option value);
* blank lines (only spaces/tabs) are ignored;
* fields are separated by runs of spaces and tabs; inside a field ``\\ooo`` (three octal digits) stands for the
  byte with that value (``\\040`` space, ``\\011`` tab, ``\\012`` newline, ``\\134`` backslash) and nothing else
  is an escape;
* fields: source, target, fstype, options, freq, passno; the last three may be missing (``defaults``, 0, 0);
* the last line may lack its newline.

Everything is kept as it was read: :meth:`Fstab.render` returns the input byte for byte (the text is ``str``
decoded with ``surrogateescape``, so undecodable bytes survive) until an option is changed, and a change rewrites
only the option field of that one line -- the original spelling of the existing options included.

Lines that are not comments and have fewer than three fields, or more than six, are ``invalid``: they are kept
verbatim, reported, and never changed.

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations

import re

BLANKS = " \t"
_OCTAL_RE = re.compile(r"\\([0-7]{3})")
# The characters libmount's mangle() escapes (plus '#', which would start a comment at the beginning of a line).
_ESCAPE = {" ": "\\040", "\t": "\\011", "\n": "\\012", "\\": "\\134"}

BLANK = "blank"
COMMENT = "comment"
ENTRY = "entry"
INVALID = "invalid"

FIELD_NAMES = ("source", "target", "fstype", "options", "freq", "passno")


def unescape(field):
    """A field's value: ``\\ooo`` octal escapes decoded, nothing else touched."""
    if "\\" not in field:
        return field
    return _OCTAL_RE.sub(lambda m: chr(int(m.group(1), 8) & 0xFF) if int(m.group(1), 8) < 256 else m.group(0),
                         field)


def escape(value):
    """The fstab spelling of a value (the inverse of :func:`unescape` for the characters that need it)."""
    return "".join(_ESCAPE.get(ch, ch) for ch in value)


def split_options(text):
    """``[(start, end)]`` spans of the comma-separated options in *text* (a raw option field).

    Commas inside double quotes do not separate (libmount's ``mnt_optstr_next_option``: ``context="a,b"``).
    Empty options (``a,,b``) produce empty spans, which callers skip.
    """
    spans = []
    start = 0
    quoted = False
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            spans.append((start, i))
            start = i + 1
    spans.append((start, len(text)))
    return spans


def option_name(option):
    """``ro`` for ``ro``, ``x-systemd.device-timeout`` for ``x-systemd.device-timeout=10s``."""
    return option.split("=", 1)[0]


class FstabLine:
    """One line of the file: ``raw`` (without its end of line), ``eol`` (``\\n``, ``\\r\\n`` or ``''``), ``kind``,
    ``lineno`` (1-based) and, for entries, the ``spans`` of the fields in ``raw``."""

    __slots__ = ("raw", "eol", "kind", "lineno", "spans", "problem")

    def __init__(self, raw, eol, lineno):
        self.raw = raw
        self.eol = eol
        self.lineno = lineno
        self.spans = []
        self.problem = None
        stripped = raw.lstrip(BLANKS)
        if not stripped.strip(BLANKS):
            self.kind = BLANK
        elif stripped.startswith("#"):
            self.kind = COMMENT
        else:
            self.spans = [(m.start(), m.end()) for m in re.finditer(r"[^ \t]+", raw)]
            if len(self.spans) < 3:
                self.kind = INVALID
                self.problem = "%d field(s); an entry needs at least source, mount point and type" % len(self.spans)
            elif len(self.spans) > 6:
                self.kind = INVALID
                self.problem = "%d fields; an entry has at most 6 (unescaped blank inside a field?)" % len(self.spans)
            else:
                self.kind = ENTRY
                freq_pass = [self.raw_field(i) for i in (4, 5) if i < len(self.spans)]
                for value in freq_pass:
                    if not value.isdigit():
                        self.kind = INVALID
                        self.problem = "dump/pass field %r is not a number" % value
                        break

    # ---- raw access
    def raw_field(self, index):
        if index >= len(self.spans):
            return None
        start, end = self.spans[index]
        return self.raw[start:end]

    def field(self, index):
        raw = self.raw_field(index)
        return None if raw is None else unescape(raw)

    # ---- the entry's values (libmount's defaults for missing fields)
    @property
    def source(self):
        return self.field(0)

    @property
    def target(self):
        return self.field(1)

    @property
    def fstype(self):
        return self.field(2)

    @property
    def raw_options(self):
        raw = self.raw_field(3)
        return "defaults" if raw is None else raw

    @property
    def options(self):
        """The option list (unescaped, in file order, empty items dropped)."""
        raw = self.raw_options
        return [unescape(raw[s:e]) for s, e in split_options(raw) if e > s]

    @property
    def freq(self):
        value = self.field(4)
        return int(value) if value is not None else 0

    @property
    def passno(self):
        value = self.field(5)
        return int(value) if value is not None else 0

    @property
    def options_problem(self):
        """Why the option field cannot be changed safely (an unbalanced double quote), else ``None``."""
        if self.raw_options.count('"') % 2:
            return "the option field has an unbalanced double quote"
        return None

    def text(self):
        return self.raw + self.eol

    def as_dict(self):
        """JSON-ready description (for entries: the fields; otherwise the kind and text)."""
        if self.kind != ENTRY:
            return {"line": self.lineno, "kind": self.kind, "text": self.raw, "problem": self.problem}
        return {"line": self.lineno, "kind": self.kind, "source": self.source, "target": self.target,
                "fstype": self.fstype, "options": ",".join(self.options), "freq": self.freq, "passno": self.passno}

    # ---- change
    def with_options(self, add=(), set_values=None):
        """The raw line with *add* options appended (those not yet present by name) and *set_values*
        (``{name: value}``) given; ``None`` when nothing would change.  Only the option field changes.

        Raises ``ValueError`` when the line is no entry or :attr:`options_problem` is set."""
        if self.kind != ENTRY or self.options_problem:
            raise ValueError(self.problem or self.options_problem)
        raw_opts = self.raw_field(3)
        set_values = dict(set_values or {})
        had_field = raw_opts is not None
        if raw_opts is None:
            raw_opts = "defaults"
        spans = [(s, e) for s, e in split_options(raw_opts) if e > s]
        present = {}
        for s, e in spans:
            present.setdefault(option_name(unescape(raw_opts[s:e])), []).append((s, e))
        pieces = []  # replacements (start, end, text) inside raw_opts
        for name, value in set_values.items():
            wanted = name if value is None else "%s=%s" % (name, value)
            where = present.get(name)
            if where:
                for s, e in where:
                    if unescape(raw_opts[s:e]) != wanted:
                        pieces.append((s, e, escape(wanted)))
        appended = []
        for option in add:
            if option_name(option) in present or option in appended:
                continue
            appended.append(option)
        for name, value in set_values.items():
            if name not in present:
                appended.append(name if value is None else "%s=%s" % (name, value))
        if not pieces and not appended:
            return None
        new_opts = raw_opts
        for s, e, text in sorted(pieces, reverse=True):
            new_opts = new_opts[:s] + text + new_opts[e:]
        if appended:
            tail = ",".join(escape(o) for o in appended)
            new_opts = (new_opts + "," + tail) if new_opts else tail
        if had_field:
            start, end = self.spans[3]
            return self.raw[:start] + new_opts + self.raw[end:]
        # No option field yet: it goes right after the type, with the separator the line already uses.
        start, end = self.spans[2]
        sep = "\t" if "\t" in self.raw[self.spans[1][1]:self.spans[2][0]] else " "
        return self.raw[:end] + sep + new_opts + self.raw[end:]


class Fstab:
    """A parsed fstab: ``lines`` (every line, :class:`FstabLine`) in file order."""

    def __init__(self, lines):
        self.lines = lines

    @classmethod
    def parse(cls, text):
        lines = []
        if text:
            pos = 0
            lineno = 0
            length = len(text)
            while pos < length:
                lineno += 1
                nl = text.find("\n", pos)
                if nl < 0:
                    raw, eol, pos = text[pos:], "", length
                else:
                    raw, eol, pos = text[pos:nl], "\n", nl + 1
                    if raw.endswith("\r"):
                        raw, eol = raw[:-1], "\r\n"
                lines.append(FstabLine(raw, eol, lineno))
        return cls(lines)

    def render(self):
        return "".join(line.text() for line in self.lines)

    def entries(self):
        return [line for line in self.lines if line.kind == ENTRY]

    def invalid(self):
        return [line for line in self.lines if line.kind == INVALID]

    def by_target(self, target):
        return [line for line in self.entries() if line.target == target]

    def duplicates(self):
        """``{mount point: [line numbers]}`` for mount points listed more than once (swap and ``none`` excepted)."""
        seen = {}
        for line in self.entries():
            if line.fstype == "swap" or line.target in ("none", "swap"):
                continue
            seen.setdefault(line.target, []).append(line.lineno)
        return {k: v for k, v in seen.items() if len(v) > 1}

    def set_options(self, line, add=(), set_values=None):
        """Change *line*'s option field in place; True when it changed."""
        new_raw = line.with_options(add, set_values)
        if new_raw is None:
            return False
        index = self.lines.index(line)
        replacement = FstabLine(new_raw, line.eol, line.lineno)
        self.lines[index] = replacement
        return True
