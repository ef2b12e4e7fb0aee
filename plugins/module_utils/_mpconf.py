# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""The one parser/renderer for ``/etc/multipath.conf`` (multipath-tools' configuration format).

The reader this mirrors is multipath-tools' own (libmultipath ``parser.c``, 0.9.4 in Debian 12, 0.11 in Debian 13):

* a line is what ``fgets`` returns into a 1024-byte buffer, cut at the first ``\\n`` or ``\\r``; a longer line is
  read as several lines (:class:`MpConfError` here: such a file is not edited);
* outside a double-quoted string, white space and every non-ASCII byte separate tokens, ``{`` and ``}`` are tokens of
  their own, and ``#`` or ``!`` ends the line (a comment);
* inside a double-quoted string everything up to the next lone ``"`` is the value; ``""`` stands for one ``"``;
* a line whose first token is a section keyword of the current level (``defaults``, ``devices``, ``device`` ...)
  opens that section (the ``{`` belongs on the same line; anything after it on the line is ignored); a line whose
  first token is ``}`` closes the current section; every other line is ``keyword value`` (the rest of the line after
  the value is ignored, a ``}`` there included).

:class:`MpConf` keeps every line as read and changes only the lines it is asked to, so parse + render with no change
gives the input back byte for byte.  :func:`render_value` refuses every value the reader would read back differently
(control characters, non-ASCII, a value starting with ``#`` or ``!``, over-long lines).

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations

import re

# fgets() into a 1024-byte buffer: at most 1023 bytes of a line (newline included) arrive in one piece.
MAX_LINE_BYTES = 1023

# Which keywords open a section, per enclosing section (None = top level).  multipath-tools 0.9 and 0.11 agree.
SECTIONS = {
    None: ("defaults", "blacklist", "blacklist_exceptions", "devices", "multipaths", "overrides"),
    "blacklist": ("device",),
    "blacklist_exceptions": ("device",),
    "devices": ("device",),
    "multipaths": ("multipath",),
    "overrides": ("protocol",),
    "device": ("protocol",),
}
# The entries of blacklist and blacklist_exceptions other than device sub-sections.
BLACKLIST_KINDS = ("devnode", "wwid", "property", "protocol")

KEY_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
_SPACE = " \t\n\v\f\r"


class _Quote(str):
    """The token of a double quote that opens or closes a string (a string's content can be ``"`` itself)."""


QUOTE = _Quote('"')


class MpConfError(ValueError):
    """A multipath.conf this module will not edit, or a value it will not write; the message says which and why."""


def _is_sep(char):
    return char in _SPACE or ord(char) > 127


def tokenize(line):
    """The tokens multipath-tools makes of one line (without its end of line), or ``None`` for a blank/comment line.

    A quoted string gives three tokens: :data:`QUOTE`, the string (``""`` inside it already turned into ``"``),
    :data:`QUOTE`; an empty string gives two :data:`QUOTE`."""
    i, n = 0, len(line)
    while i < n and _is_sep(line[i]):
        i += 1
    if i >= n or line[i] in "!#":
        return None
    tokens = []
    in_string = False
    while True:
        start = i
        if i < n and line[i] == '"' and not (in_string and i + 1 < n and line[i + 1] == '"'):
            i += 1
            tokens.append(QUOTE)
            in_string = not in_string
        elif not in_string and i < n and line[i] in "{}":
            tokens.append(line[i])
            i += 1
        else:
            doubled = False
            while True:
                while i < n and line[i] != '"' and (
                        in_string or not (_is_sep(line[i]) or line[i] in "!#{}")):
                    i += 1
                if in_string and i + 1 < n and line[i] == '"' and line[i + 1] == '"':
                    doubled = True
                    i += 2
                    continue
                break
            token = line[start:i]
            tokens.append(token.replace('""', '"') if doubled else token)
        while i < n and not in_string and _is_sep(line[i]):
            i += 1
        if i >= n or (not in_string and line[i] in "!#"):
            return tokens


def value_of(tokens):
    """The value of a ``keyword value`` line's tokens (``None`` when it has none)."""
    if len(tokens) < 2:
        return None
    if tokens[1] is not QUOTE:
        return tokens[1]
    if len(tokens) > 2 and tokens[2] is not QUOTE:
        return tokens[2]
    return ""


def check_key(key, field):
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise MpConfError("%s: %r is not a multipath.conf keyword (lower-case letters, digits and _)" % (field, key))


def render_value(value, field):
    """``value`` written so that multipath-tools reads exactly ``value`` back: a bare integer, else a quoted string.
    Refuses what no spelling carries through every reader (multipath-tools 0.9 and 0.11 read a doubled ``""``
    inside a string differently at its ends, so a value holding ``"`` is refused too)."""
    if isinstance(value, bool):
        value = "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise MpConfError("%s: give a string or a number, got %s" % (field, type(value).__name__))
    bad = [c for c in value if not (" " <= c <= "~")]
    if bad:
        raise MpConfError("%s: %r holds %r; multipath-tools reads only printable ASCII in a value (control "
                          "characters end or split the line, other bytes are read as blanks)" % (field, value, bad[0]))
    if '"' in value:
        raise MpConfError("%s: %r holds a double quote, which multipath-tools releases read differently; "
                          "leave it out (a regular expression can use . or [\"] instead)" % (field, value))
    if value[:1] in ("#", "!"):
        raise MpConfError("%s: %r starts with %r, which multipath-tools 0.11 reads as a comment even inside quotes"
                          % (field, value, value[0]))
    if re.match(r"-?[0-9]+\Z", value):
        return value
    return '"%s"' % value


class _Line:
    __slots__ = ("raw", "tokens")

    def __init__(self, raw):
        self.raw = raw
        body = re.split(r"[\r\n]", raw, maxsplit=1)[0]
        self.tokens = tokenize(body)

    @property
    def first(self):
        return self.tokens[0] if self.tokens else None


class Section:
    """One section as multipath-tools reads it: its opening line, its closing line (``None``: runs to the end of the
    file), its ``keyword value`` lines and its sub-sections, in file order."""

    __slots__ = ("name", "open", "close", "parent", "entries", "children", "depth", "addr")

    def __init__(self, name, open_idx, parent, depth, addr):
        self.name = name
        self.addr = addr      # (index among the top-level sections, index among the parent's children, ...)
        self.open = open_idx
        self.close = None
        self.parent = parent
        self.entries = []     # line indexes of keyword lines
        self.children = []    # sub-sections
        self.depth = depth


class MpConf:
    """A parsed multipath.conf; see the module docstring."""

    def __init__(self, text=""):
        self.lines = []
        for match in re.finditer(r"[^\n]*\n|[^\n]+\Z", text):
            raw = match.group(0)
            if len(raw.encode("utf-8", "surrogateescape")) > MAX_LINE_BYTES:
                raise MpConfError("line %d is %d bytes long: multipath-tools reads a line of more than %d bytes as "
                                  "several lines; shorten it by hand first"
                                  % (len(self.lines) + 1, len(raw.encode("utf-8", "surrogateescape")), MAX_LINE_BYTES))
            self.lines.append(_Line(raw))
        self._parse()

    @classmethod
    def parse(cls, text):
        return cls(text or "")

    def render(self):
        return "".join(line.raw for line in self.lines)

    # ------------------------------------------------------------------------------------------------ reading
    def _parse(self):
        self.top = []          # top-level sections in order
        self.stray = []        # keyword lines outside any section, or unknown top-level words
        stack = []
        for idx, line in enumerate(self.lines):
            first = line.first
            if first is None:
                continue
            current = stack[-1] if stack else None
            if first == "}":
                if current is not None:
                    current.close = idx
                    stack.pop()
                continue
            if first in SECTIONS.get(current.name if current else None, ()):
                siblings = current.children if current else self.top
                section = Section(first, idx, current, len(stack),
                                  (current.addr if current else ()) + (len(siblings),))
                siblings.append(section)
                stack.append(section)
                continue
            if current is None:
                self.stray.append(idx)
            else:
                current.entries.append(idx)

    def sections(self, name):
        """Top-level sections called ``name`` (multipath-tools reads every one of them, in order)."""
        return [s for s in self.top if s.name == name]

    def entry_values(self, section):
        """``[(keyword, value), ...]`` of a section's keyword lines, in order."""
        out = []
        for idx in section.entries:
            tokens = self.lines[idx].tokens
            out.append((tokens[0], value_of(tokens)))
        return out

    def get(self, section, key):
        """The value multipath-tools takes for ``key`` in ``section`` (the last line wins), or ``None``."""
        found = None
        for k, v in self.entry_values(section):
            if k == key:
                found = v
        return found

    def effective(self):
        """What multipath-tools takes from the file, without comments, spacing and line layout: a nested tuple of
        ``(section, ((keyword, value), ...), (sub-sections ...))``.  Two files with the same effective() configure
        multipathd the same way."""
        def view(section):
            return (section.name, tuple(self.entry_values(section)), tuple(view(c) for c in section.children))
        return tuple(view(s) for s in self.top)

    def as_dict(self):
        """A plain view for results: ``{section: [...]}`` with keyword dicts and sub-section lists."""
        def view(section):
            out = {}
            for k, v in self.entry_values(section):
                out[k] = v
            for child in section.children:
                out.setdefault(child.name, []).append(view(child))
            return out
        result = {}
        for section in self.top:
            result.setdefault(section.name, []).append(view(section))
        return result

    # ------------------------------------------------------------------------------------------------ finding
    def find_section(self, name, create=False):
        """The LAST top-level section ``name`` (where a new keyword line goes), creating it at the end if asked."""
        found = self.sections(name)
        if found:
            return found[-1]
        if not create:
            return None
        return self._append_section(None, name, [])

    def find_sub(self, parent_name, sub_name, match, create=False, ident=()):
        """The sub-sections ``sub_name`` of every top-level ``parent_name`` whose keyword lines include every
        ``(keyword, value)`` of ``match``; with ``create`` and none found, a new one holding ``ident`` lines is added
        to the last ``parent_name`` (made if missing)."""
        found = []
        for parent in self.sections(parent_name):
            for child in parent.children:
                if child.name != sub_name:
                    continue
                values = dict(self.entry_values(child))
                if all(values.get(k) == v for k, v in match):
                    found.append(child)
        if found or not create:
            return found
        parent = self.find_section(parent_name, create=True)
        return [self._append_section(parent, sub_name, list(ident))]

    # ------------------------------------------------------------------------------------------------ editing
    def _indent(self, depth):
        return "\t" * depth

    def _eol(self):
        for line in self.lines:
            if line.raw.endswith("\r\n"):
                return "\r\n"
        return "\n"

    def _insert(self, at, raws):
        """Insert raw lines before line index ``at`` and re-parse (indexes move)."""
        self.lines[at:at] = [_Line(raw) for raw in raws]
        self._parse()

    def _ensure_final_newline(self):
        if self.lines and not self.lines[-1].raw.endswith("\n"):
            self.lines[-1] = _Line(self.lines[-1].raw + self._eol())

    def _line(self, depth, body):
        raw = self._indent(depth) + body + self._eol()
        if len(raw.encode("utf-8")) > MAX_LINE_BYTES:
            raise MpConfError("%r: the line would be longer than the %d bytes multipath-tools reads in one piece"
                              % (body[:60], MAX_LINE_BYTES))
        return raw

    def _append_section(self, parent, name, ident):
        """A new section ``name`` (with ``ident`` ``(keyword, rendered value)`` lines) at the end of ``parent`` (or
        of the file); returns it."""
        depth = parent.depth + 1 if parent is not None else 0
        raws = [self._line(depth, name + " {")]
        raws += [self._line(depth + 1, "%s %s" % (k, v)) for k, v in ident]
        raws.append(self._line(depth, "}"))
        if parent is None:
            self._ensure_final_newline()
            at = len(self.lines)
        else:
            parent = self._closed(parent)
            at = parent.close
        self._insert(at, raws)
        if parent is None:
            return self.top[-1]
        return self.refresh(parent).children[-1]

    def refresh(self, section):
        """The same section after an edit re-parsed the file (every edit re-makes the sections; the address, its
        place among its siblings, stays as long as no section before it was added or removed)."""
        found = None
        siblings = self.top
        for i in section.addr:
            found = siblings[i]
            siblings = found.children
        return found

    def line_value(self, idx):
        """The value of keyword line ``idx``."""
        return value_of(self.lines[idx].tokens)

    def set(self, section, key, rendered):
        """Make ``key`` hold ``rendered`` (an already rendered value) in ``section``: the first line with ``key`` is
        rewritten (keeping its indentation and any trailing comment), later duplicates are removed, or a new line is
        added before the closing brace.  Returns True when the file changed."""
        idxs = [i for i in section.entries if self.lines[i].first == key]
        if idxs:
            first, rest = idxs[0], idxs[1:]
            line = self.lines[first]
            changed = False
            if value_of(line.tokens) != value_of(tokenize(key + " " + rendered)) or len(idxs) > 1:
                indent = re.match(r"[ \t]*", line.raw).group(0)
                comment = _trailing_comment(line.raw)
                eol = "\r\n" if line.raw.endswith("\r\n") else ("\n" if line.raw.endswith("\n") else "")
                new_raw = "%s%s %s%s%s" % (indent, key, rendered, comment, eol)
                if new_raw != line.raw:
                    self.lines[first] = _Line(new_raw)
                    changed = True
            for idx in sorted(rest, reverse=True):
                del self.lines[idx]
                changed = True
            self._parse()
            return changed
        self.add_entry(section, key, rendered)
        return True

    def remove(self, section, key, value=None):
        """Remove every ``key`` line of ``section`` (only those whose value is ``value`` when given)."""
        idxs = [i for i in section.entries
                if self.lines[i].first == key and (value is None or value_of(self.lines[i].tokens) == value)]
        for idx in sorted(idxs, reverse=True):
            del self.lines[idx]
        if idxs:
            self._parse()
        return bool(idxs)

    def _closed(self, section):
        """``section`` with a closing brace (one is added at the end of the file for a section left open)."""
        if section.close is None:
            self._ensure_final_newline()
            self.lines.append(_Line(self._line(section.depth, "}")))
            self._parse()
            section = self.refresh(section)
        return section

    def add_entry(self, section, key, rendered):
        """Append a ``key value`` line to ``section`` even when ``key`` is there already (blacklist entries)."""
        section = self._closed(section)
        self._insert(section.close, [self._line(section.depth + 1, "%s %s" % (key, rendered))])

    def delete_section(self, section):
        """Remove a section, its opening and closing lines and everything between."""
        end = section.close if section.close is not None else len(self.lines) - 1
        del self.lines[section.open:end + 1]
        self._parse()


def _trailing_comment(raw):
    """The `` # comment`` after a keyword line's value (with the blanks before it), or ''."""
    body = re.split(r"[\r\n]", raw, maxsplit=1)[0]
    in_string = False
    i = 0
    while i < len(body):
        c = body[i]
        if c == '"':
            if in_string and body[i + 1:i + 2] == '"':
                i += 2
                continue
            in_string = not in_string
        elif not in_string and c in "#!":
            j = i
            while j > 0 and body[j - 1] in " \t":
                j -= 1
            return body[j:]
        i += 1
    return ""
