# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""THE parser and renderer for /etc/fstab (and files in its format) of the collection.

The file is read the way libmount reads it (util-linux libmount/src/tab_parse.c):

* a line whose first non-blank character is ``#`` is a comment; a ``#`` anywhere else is data (a device such as
  ``/dev/disk/by-label/a#b`` or an option value);
* blank lines (only spaces/tabs) are ignored;
* a line ends at ``\\n`` only (``getline``), one ``\\r`` before it is dropped; ``\\v``, ``\\f``, U+2028 and the
  like are data (see :mod:`._textrules`);
* fields are separated by runs of spaces and tabs (nothing else); inside a field ``\\ooo`` (three octal digits)
  stands for the byte with that value modulo 256 (``\\040`` space, ``\\011`` tab, ``\\012`` newline, ``\\134``
  backslash; a NUL byte ends the field's value, as in C) and nothing else is an escape;
* the option field is unescaped first and then split at commas outside double quotes (``\\054`` is a separator,
  ``\\042`` a quote for libmount);
* fields: source, target, fstype, options, freq, passno; the last three may be missing (``defaults``, 0, 0); freq
  and passno are C ``strtol`` numbers (optional sign, ASCII digits) and anything after passno is ignored;
* the last line may lack its newline.

``tests/unit/plugins/module_utils/test_fstab_libmount.py`` checks this against ``findmnt --fstab -F`` (libmount).

Everything is kept as it was read: :meth:`Fstab.render` returns the input byte for byte (the text is ``str``
decoded with ``surrogateescape``, so undecodable bytes survive) until an option is changed, and a change rewrites
only the option field of that one line -- the original spelling of the existing options included.

Lines that are not comments and that libmount refuses (fewer than three fields, freq or passno not a number) are
``invalid``: they are kept verbatim, reported, and never changed.  New options are checked by
:func:`check_option`: an option must read back as exactly that one option.

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations

import re

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError

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
    """A field's value as libmount's unmangle() makes it: each ``\\ooo`` is the byte ``ooo`` modulo 256 (``\\377``
    the byte 0xff, kept as a surrogate like every undecodable byte), a NUL byte ends the value; nothing else is
    touched."""
    if "\\" not in field:
        return field
    raw = field.encode("utf-8", "surrogateescape")
    raw = re.sub(br"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8) & 0xFF]), raw)
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def c_int(text):
    """The int libmount stores for a freq/passno field (``strtol`` to a C long, then an ``int``), or ``None`` when
    libmount refuses the field (not an optional sign and ASCII digits)."""
    if not re.match(r"[+-]?[0-9]+\Z", text):
        return None
    value = max(min(int(text, 10), 2 ** 63 - 1), -2 ** 63) if len(text) < 40 else (
        -2 ** 63 if text.startswith("-") else 2 ** 63 - 1)
    value &= 0xFFFFFFFF
    return value - 2 ** 32 if value >= 2 ** 31 else value


def check_option(option, field="options"):
    """Return *option* when libmount reads it back as exactly this one option in any option field; else raise
    :class:`InputError` naming *field*.  A comma outside double quotes would make two options, an odd number of
    double quotes would swallow the options after it (``x"y,z"w`` is ONE option for libmount)."""
    if not isinstance(option, str) or not option or option.startswith("="):
        raise InputError(field, "%r is not a mount option: give name or name=value" % (option,))
    if option.count('"') % 2:
        raise InputError(field, "%r has an odd number of double quotes; libmount would read the options after it as "
                                "part of it. Quote a value whole, e.g. context=\"a,b\"" % (option,))
    if len(split_options(option)) != 1:
        raise InputError(field, "%r holds a comma outside double quotes, i.e. two options; give one option per item"
                         % (option,))
    if any(ch in option for ch in "\0\n"):
        raise InputError(field, "%r holds a NUL or newline" % (option,))
    return option


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
            else:
                # libmount ignores whatever follows passno (a 7th field, a '# comment')
                self.kind = ENTRY
                freq_pass = [self.raw_field(i) for i in (4, 5) if i < len(self.spans)]
                for value in freq_pass:
                    if c_int(value) is None:
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
    def options_text(self):
        """The option field as libmount holds it (unescaped; ``None`` when the line has none)."""
        raw = self.raw_field(3)
        return None if raw is None else unescape(raw)

    @property
    def options(self):
        """The option list as libmount splits it (unescaped, in file order, empty items dropped)."""
        text = unescape(self.raw_options)
        return [text[s:e] for s, e in split_options(text) if e > s]

    @property
    def freq(self):
        value = self.raw_field(4)
        return c_int(value) if value is not None else 0

    @property
    def passno(self):
        value = self.raw_field(5)
        return c_int(value) if value is not None else 0

    @property
    def options_problem(self):
        """Why the option field cannot be changed in place safely, else ``None``: an unbalanced double quote, or an
        escape that libmount turns into a separator, a quote or the end of the field (``\\054``, ``\\042``,
        ``\\000``): the raw field would split differently from what libmount reads."""
        raw = self.raw_options
        if raw.count('"') % 2:
            return "the option field has an unbalanced double quote"
        for m in _OCTAL_RE.finditer(raw):
            if int(m.group(1), 8) & 0xFF in (0, 0x22, 0x2C):
                return "the option field spells a comma, double quote or NUL as an octal escape (%s)" % m.group(0)
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
                if raw.endswith("\r"):  # libmount drops one \r at the end of a line, the last one included
                    raw, eol = raw[:-1], "\r" + eol
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
