# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets out of a module's result and log, at a cost linear in the result's size.

ansible-core removes no_log values from a result by replacing every secret in every string of it (and in the
invocation it adds, which echoes every parameter): strings x secrets ``str.replace`` calls, 201 million for one node
task with 4096 CHAP records.  :class:`Scrubber` gives the same output (a string equal to a secret becomes
``VALUE_SPECIFIED_IN_NO_LOG_PARAMETER``, a secret inside a string becomes ``********``, an integer whose digits
hold a secret becomes the placeholder) by looking each string's substrings up in a set: cost = characters x
distinct secret lengths.  :class:`ScrubbingModule` uses it for the invocation log, warnings and ``exit_json``.
"""

from __future__ import annotations

from ansible_collections.openiscsi.initiator.plugins.module_utils._module import SettingsModule

PLACEHOLDER = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
MASK = "*" * 8


class Scrubber:
    """Removes the given secrets from strings and nested dicts/lists/tuples (keys are kept, as ansible-core does)."""

    def __init__(self, secrets):
        self.secrets = frozenset(str(s) for s in secrets if s is not None and str(s) != "")
        self.lengths = sorted(set(len(s) for s in self.secrets), reverse=True)

    def hits(self, text):
        """The secrets that occur in *text*."""
        found = set()
        size = len(text)
        for length in self.lengths:
            if length > size:
                continue
            if length == size:
                if text in self.secrets:
                    found.add(text)
                continue
            found.update(self.secrets.intersection(text[i:i + length] for i in range(size - length + 1)))
        return found

    def text(self, value):
        """*value* (a str) with the secrets removed."""
        if not self.secrets:
            return value
        if value in self.secrets:
            return PLACEHOLDER
        found = self.hits(value)
        for secret in sorted(found, key=len, reverse=True):  # longest first, as ansible-core does
            value = value.replace(secret, MASK)
        return value

    def scrub(self, value):
        """A copy of *value* with every secret removed from its strings (and integers)."""
        if not self.secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, (int, float)):
            digits = str(value)
            return PLACEHOLDER if digits in self.secrets or self.hits(digits) else value
        if isinstance(value, dict):
            return dict((key, self.scrub(item)) for key, item in value.items())
        if isinstance(value, (list, tuple, set, frozenset)):
            return [self.scrub(item) for item in value]
        return value


class ScrubbingModule(SettingsModule):
    """A :class:`SettingsModule` (a secret given by mistake under ``settings`` is a no_log value from the start) whose
    invocation log, ``warn`` and ``exit_json`` remove its no_log values with
    :class:`Scrubber` (linear) instead of ansible-core's strings x secrets replacement (ansible-core's own pass then
    runs over an empty set of values: what it gets is clean already).

    ``fail_json`` is left to ansible-core: a failure's result is small, and its traceback is only scrubbed there."""

    def _scrubber(self):
        cached = getattr(self, "_scrubber_cache", None)
        if cached is None or cached[0] != len(self.no_log_values):  # the module may add values after the start
            cached = (len(self.no_log_values), Scrubber(self.no_log_values))
            self._scrubber_cache = cached
        return cached[1]

    def _log_invocation(self):
        scrubber = self._scrubber()
        params, values = self.params, self.no_log_values
        self.params, self.no_log_values = scrubber.scrub(params), set()
        try:
            super()._log_invocation()
        finally:
            self.params, self.no_log_values = params, values

    def warn(self, warning, *args, **kwargs):
        super().warn(self._scrubber().text(warning), *args, **kwargs)

    def _scrubbed_result(self, kwargs):
        kwargs = dict(kwargs)
        kwargs.setdefault("invocation", {"module_args": self.params})
        return self._scrubber().scrub(kwargs)

    def exit_json(self, **kwargs):
        kwargs = self._scrubbed_result(kwargs)
        self.no_log_values = set()
        super().exit_json(**kwargs)
