# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures shared by the module tests."""

from __future__ import annotations

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _iscsiadm


@pytest.fixture
def no_commands(monkeypatch):
    """Any iscsiadm command fails the test; the list holds what was tried."""
    calls = []

    def refuse(self, args, **kw):
        calls.append(args)
        raise AssertionError("iscsiadm must not run here: %r" % (args,))

    monkeypatch.setattr(_iscsiadm.Iscsiadm, "run", refuse)
    return calls
