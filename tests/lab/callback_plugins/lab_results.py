# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# The lab fixture's callback (tests/lab/conftest.py enables it): every task result of a run, as JSON, into the
# file named by LAB_RESULTS_FILE.
from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "lab_results"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._lab_results = []

    def _lab_add(self, result, status):
        self._lab_results.append({
            "host": result._host.get_name(),
            "task": result._task.get_name(),
            "action": result._task.action,
            "status": status,
            "result": result._result,
        })
        self._lab_flush()

    def _lab_flush(self):
        path = os.environ.get("LAB_RESULTS_FILE")
        if path:
            with open(path, "w") as fh:
                json.dump(self._lab_results, fh, default=str)

    def v2_runner_on_ok(self, result):
        self._lab_add(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._lab_add(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._lab_add(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._lab_add(result, "unreachable")
