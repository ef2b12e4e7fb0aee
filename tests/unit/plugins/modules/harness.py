# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers shared by the module tests: run a module in-process, fingerprint a tree to prove nothing was written."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args


def run_module(capsys, module, args, check=False, diff=True):
    """Run ``module.main()`` with ``args`` (check mode / diff as asked) and return its result.

    The result also holds ``_raw`` (the whole JSON the module printed, to search for leaked secrets) and ``_rc`` (the
    exit code, which must agree with ``failed``); ``warnings`` are plain strings; ``invocation`` is dropped."""
    args = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
    # module.warn() collects in a process-wide registry: start each in-process run with an empty one.
    ansible_warnings._global_warnings.clear()  # pylint: disable=protected-access
    with patch_module_args(args):
        with pytest.raises(SystemExit) as info:
            module.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    assert (info.value.code == 0) != bool(result.get("failed")), result
    result["warnings"] = [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]
    result.pop("invocation", None)
    result["_raw"] = out
    result["_rc"] = info.value.code
    return result


def file_states(root):
    """Every path under ``root`` -> (sha256 of a regular file's bytes or None, st_mode, st_mtime_ns): a change of
    one byte, one mode bit or one write shows."""
    out = {}
    for base, dirs, files in os.walk(str(root)):
        for name in dirs + files:
            path = os.path.join(base, name)
            st = os.lstat(path)
            digest = None
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
            out[os.path.relpath(path, str(root))] = (digest, st.st_mode, st.st_mtime_ns)
    return out
