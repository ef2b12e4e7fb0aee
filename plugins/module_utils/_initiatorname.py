# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""Parser and renderer for /etc/iscsi/initiatorname.iscsi.

How the file is read by its consumers (the rules this module reproduces):

* iscsid and iscsiadm read it line by line, strip white space (C ``isspace``) from both ends of each line, and take
  the text after ``InitiatorName=`` (and ``InitiatorAlias=``) from every line that starts with that exact key; lines
  with nothing after the key are skipped and the LAST remaining line wins.  Anything else (comments, blank lines,
  unknown lines) is ignored.
* Debian's startup check (run before iscsid starts) requires a line matching ``^InitiatorName=[^ \\t]``, so the key
  must start the line.  If any line starts with ``GenerateName=yes`` it REWRITES the whole file with a freshly
  generated name at the next start of iscsid - even when a name is present.

:meth:`InitiatorNameFile.parse` keeps every character of the input (header comments, blank lines, unknown lines,
CRLF endings, a missing final newline) and records problems as :class:`Finding` objects.  :meth:`render` changes only
the name, alias and ``GenerateName`` lines it is asked to change, so ``parse(text).render() == text`` for any text.

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._names import normalize_name

NAME_KEY = "InitiatorName="
ALIAS_KEY = "InitiatorAlias="
GENERATE_KEY = "GenerateName="
# iSCSI text values (InitiatorAlias among them) are at most 255 bytes (RFC 7143 6.1).
MAX_ALIAS_BYTES = 255
_C_SPACE = " \t\n\v\f\r"

HEADER = (
    "## iSCSI initiator name of this host, read by iscsid (which will not start without it).\n"
    "## Targets grant access by this name: changing it can make their access control\n"
    "## lists reject this host.  Each initiator needs its own name: never copy this file\n"
    "## to another machine.  Managed by the openiscsi.initiator.initiator_name module.\n"
)

KEEP = object()  # render(): leave this setting as it is


class Finding:
    """One problem found in the file.

    ``code`` is stable (``missing``, ``duplicate``, ``empty``, ``invalid``, ``indented``, ``not_normalized``,
    ``generate``, ``unknown_line``, ``alias_duplicate``, ``alias_empty``); ``line`` is 1-based or ``None``;
    ``severity`` is ``error`` (the file is malformed: iscsid or Debian's start-up would not use the name as written)
    or ``warning``.
    """

    __slots__ = ("code", "line", "severity", "message")

    def __init__(self, code, line, severity, message):
        self.code = code
        self.line = line
        self.severity = severity
        self.message = message

    def as_dict(self):
        return {"code": self.code, "line": self.line, "severity": self.severity, "message": self.message}

    def __str__(self):
        where = "line %d: " % self.line if self.line else ""
        return where + self.message

    def __repr__(self):
        return "Finding(%r, %r, %r, %r)" % (self.code, self.line, self.severity, self.message)


class _Line:
    """One line: ``body`` (without the end of line) and ``eol`` (``'\\n'``, ``'\\r\\n'`` or ``''`` at the end)."""

    __slots__ = ("body", "eol", "kind", "value")

    def __init__(self, body, eol):
        self.body = body
        self.eol = eol
        stripped = body.strip(_C_SPACE)
        self.value = None
        if stripped == "":
            self.kind = "blank"
        elif stripped.startswith("#"):
            self.kind = "comment"
        elif stripped.startswith(NAME_KEY):
            self.kind = "name"
            self.value = stripped[len(NAME_KEY):]
        elif stripped.startswith(ALIAS_KEY):
            self.kind = "alias"
            self.value = stripped[len(ALIAS_KEY):]
        elif stripped.startswith(GENERATE_KEY):
            self.kind = "generate"
            self.value = stripped[len(GENERATE_KEY):]
        else:
            self.kind = "other"

    @property
    def text(self):
        return self.body + self.eol


def _split(text):
    """Split like fgets(): on '\\n' only; a CR before it stays part of the end of line."""
    lines = []
    parts = text.split("\n")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if last and part == "":
            break
        if not last and part.endswith("\r"):
            lines.append(_Line(part[:-1], "\r\n"))
        else:
            lines.append(_Line(part, "" if last else "\n"))
    return lines


def validate_alias(value, field="alias"):
    """Check an InitiatorAlias value; returns it unchanged or raises :class:`InputError`."""
    if not isinstance(value, str):
        raise InputError(field, "must be a string, got %s" % type(value).__name__)
    if value == "":
        raise InputError(field, "must not be empty; to remove the alias use state: absent")
    if value.strip(_C_SPACE) != value:
        raise InputError(field, "has leading or trailing white space, which iscsid strips; remove it")
    for pos, char in enumerate(value, 1):
        if "\udc80" <= char <= "\udcff":
            raise InputError(field, "byte 0x%02x at position %d is not valid UTF-8" % (ord(char) - 0xDC00, pos))
        if not char.isprintable() and char not in " \t":
            raise InputError(field, "control character %r at position %d cannot be stored on one line" % (char, pos))
    size = len(value.encode("utf-8"))
    if size > MAX_ALIAS_BYTES:
        raise InputError(field, "is %d bytes long; an iSCSI alias is at most %d bytes of UTF-8"
                         % (size, MAX_ALIAS_BYTES))
    return value


class InitiatorNameFile:
    """The parsed file.  Build with :meth:`parse` (or :meth:`empty` when the file does not exist)."""

    def __init__(self, lines, exists=True):
        self._lines = lines
        self.exists = exists
        self.findings = self._check()

    @classmethod
    def parse(cls, text):
        return cls(_split(text), exists=True)

    @classmethod
    def empty(cls):
        """The state of a missing file (renders to ``''`` unless a name is set)."""
        return cls([], exists=False)

    # -- what iscsid reads -------------------------------------------------------------------------------------------
    def _last(self, kind):
        for line in reversed(self._lines):
            if line.kind == kind and line.value:
                return line.value
        return None

    @property
    def name(self):
        """The name iscsid would use (last non-empty ``InitiatorName=`` value, as written) or ``None``."""
        return self._last("name")

    @property
    def alias(self):
        """The alias iscsid would use, or ``None``."""
        return self._last("alias")

    @property
    def generate_pending(self):
        """True when Debian's startup check would replace the file with a generated name (``^GenerateName=yes``)."""
        return any(line.kind == "generate" and line.body.startswith(GENERATE_KEY + "yes") for line in self._lines)

    @property
    def valid_name(self):
        """The effective name normalized, or ``None`` when it is missing or invalid."""
        if self.name is None:
            return None
        try:
            return normalize_name(self.name)
        except InputError:
            return None

    def errors(self):
        return [f for f in self.findings if f.severity == "error"]

    def warnings(self):
        return [f for f in self.findings if f.severity == "warning"]

    # -- checks ------------------------------------------------------------------------------------------------------
    def _check(self):
        found = []
        if not self.exists:
            return found
        numbered = list(enumerate(self._lines, 1))
        names = [(n, line) for n, line in numbered if line.kind == "name"]
        aliases = [(n, line) for n, line in numbered if line.kind == "alias"]
        effective = [(n, line) for n, line in names if line.value]

        for n, line in names:
            if not line.value:
                found.append(Finding("empty", n, "error", "'InitiatorName=' has no value; iscsid skips this line"))
                continue
            if line.body[:1] in (" ", "\t", "\v", "\f"):
                found.append(Finding("indented", n, "error",
                                     "InitiatorName= does not start the line; Debian's start-up check requires it at "
                                     "the beginning of the line and refuses to start iscsid otherwise"))
            try:
                normalized = normalize_name(line.value, "InitiatorName")
            except InputError as exc:
                found.append(Finding("invalid", n, "error", "invalid name %s: %s" % (_quote(line.value), exc.message)))
                continue
            if normalized != line.value:
                found.append(Finding("not_normalized", n, "warning",
                                     "name %s is not in normalized (lower-case) form %s; targets may compare names "
                                     "literally" % (_quote(line.value), normalized)))
        if not effective:
            msg = "no InitiatorName= line with a value; iscsid will not start without one"
            if self.generate_pending:
                msg += " (GenerateName=yes is present: Debian generates a name when iscsid next starts)"
            found.append(Finding("missing", None, "error", msg))
        elif len(effective) > 1:
            found.append(Finding("duplicate", effective[-1][0], "error",
                                 "%d InitiatorName= lines (lines %s); iscsid uses only the last one, %s"
                                 % (len(effective), ", ".join(str(item[0]) for item in effective),
                                    _quote(effective[-1][1].value))))
        for n, line in numbered:
            if line.kind == "generate" and line.body.startswith(GENERATE_KEY + "yes") and effective:
                found.append(Finding("generate", n, "error",
                                     "GenerateName=yes makes Debian's start-up check replace this file, and the name "
                                     "%s with it, by a newly generated name when iscsid next starts"
                                     % _quote(effective[-1][1].value)))
            elif line.kind == "other":
                found.append(Finding("unknown_line", n, "error", "unrecognized line %s%s; iscsid ignores it"
                                     % (_quote(line.body.strip(_C_SPACE)[:60]), _hint(line.body))))
        alias_values = [(n, line) for n, line in aliases if line.value]
        for n, line in aliases:
            if not line.value:
                found.append(Finding("alias_empty", n, "warning", "'InitiatorAlias=' has no value; iscsid skips it"))
        if len(alias_values) > 1:
            found.append(Finding("alias_duplicate", alias_values[-1][0], "warning",
                                 "%d InitiatorAlias= lines (lines %s); iscsid uses only the last one"
                                 % (len(alias_values), ", ".join(str(item[0]) for item in alias_values))))
        found.sort(key=lambda f: (f.line or 0))
        return found

    # -- rendering ---------------------------------------------------------------------------------------------------
    def render(self, name=KEEP, alias=KEEP, drop_unknown=False):
        """Return the file text with the requested changes; with no arguments, the input unchanged.

        ``name``: a (normalized) name to write as the only ``InitiatorName=`` line - the first such line is rewritten
        in place, other name lines and every ``GenerateName=`` line are removed; with no name line the new one goes
        where the first ``GenerateName=`` line was, or at the end.  ``alias``: a string to write as the only
        ``InitiatorAlias=`` line (the last existing one is rewritten, or a new one follows the name line), ``None``
        to remove every alias line.  ``drop_unknown``: remove unrecognized lines.  Everything else is kept byte for
        byte.  A file that did not exist gets :data:`HEADER` first.
        """
        lines = list(self._lines)
        eol = _dominant_eol(lines)
        if not self.exists and name is not KEEP:
            lines = [_Line(body, "\n") for body in HEADER.split("\n")[:-1]]
        if drop_unknown:
            lines = [line for line in lines if line.kind != "other"]

        if name is not KEEP:
            first_name = next((i for i, line in enumerate(lines) if line.kind == "name"), None)
            first_gen = next((i for i, line in enumerate(lines) if line.kind == "generate"), None)
            new = NAME_KEY + name
            if first_name is not None:
                keep = lines[first_name]
                if keep.body != new:
                    lines[first_name] = _Line(new, keep.eol or "")
                lines = [line for i, line in enumerate(lines)
                         if i == first_name or line.kind not in ("name", "generate")]
            elif first_gen is not None:
                lines[first_gen] = _Line(new, lines[first_gen].eol)
                lines = [line for i, line in enumerate(lines) if i == first_gen or line.kind != "generate"]
            else:
                _terminate_last(lines, eol)
                lines.append(_Line(new, eol))

        if alias is not KEEP:
            if alias is None:
                lines = [line for line in lines if line.kind != "alias"]
            else:
                new = ALIAS_KEY + alias
                idx = [i for i, line in enumerate(lines) if line.kind == "alias"]
                if idx:
                    target = next((i for i in reversed(idx) if lines[i].value), idx[-1])
                    if lines[target].body != new:
                        lines[target] = _Line(new, lines[target].eol)
                    lines = [line for i, line in enumerate(lines) if i == target or line.kind != "alias"]
                else:
                    at = max((i for i, line in enumerate(lines) if line.kind == "name"), default=None)
                    if at is None:
                        _terminate_last(lines, eol)
                        lines.append(_Line(new, eol))
                    else:
                        if lines[at].eol == "":
                            lines[at] = _Line(lines[at].body, eol)
                            lines.insert(at + 1, _Line(new, ""))
                        else:
                            lines.insert(at + 1, _Line(new, eol))
        return "".join(line.text for line in lines)


def _dominant_eol(lines):
    crlf = sum(1 for line in lines if line.eol == "\r\n")
    lf = sum(1 for line in lines if line.eol == "\n")
    return "\r\n" if crlf > lf else "\n"


def _terminate_last(lines, eol):
    if lines and lines[-1].eol == "":
        lines[-1] = _Line(lines[-1].body, eol)


def _quote(value):
    """A file value for a message: repr-like quoting, undecodable bytes shown as \\xNN."""
    return repr(value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))


def _hint(body):
    stripped = body.strip(_C_SPACE)
    key = stripped.split("=", 1)[0].strip(_C_SPACE) if "=" in stripped else ""
    for real in ("InitiatorName", "InitiatorAlias", "GenerateName"):
        if key.lower() == real.lower():
            if key != real:
                return " (the key is case-sensitive: write %s=)" % real
            return " (no spaces around '=' allowed: write %s=value)" % real
    return ""
