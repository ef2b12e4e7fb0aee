# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`make help` lists every .PHONY target of the Makefile, each with one line of text (from its `## ` comment)."""

from __future__ import annotations

import os
import re
import subprocess

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def phony_targets():
    with open(os.path.join(REPO, "Makefile"), encoding="utf-8") as fh:
        text = fh.read().replace("\\\n", " ")
    targets = set()
    for line in text.splitlines():
        match = re.match(r"\.PHONY\s*:(.*)", line)
        if match:
            targets.update(match.group(1).split())
    return targets


def test_help_has_a_line_for_every_phony_target():
    targets = phony_targets()
    assert {"help", "units", "test", "docs", "docs-test"} <= targets
    out = subprocess.run(["make", "--no-print-directory", "-s", "help"], cwd=REPO, check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True).stdout
    lines = {}
    for line in out.splitlines():
        match = re.match(r"make (\S+)\s+(\S.*)$", line)
        assert match, "not a `make <target>  <text>` line: %r" % line
        assert match.group(1) not in lines, "two lines for %s" % match.group(1)
        lines[match.group(1)] = match.group(2)
    missing = sorted(targets - set(lines))
    assert not missing, "phony targets without a `## ` line in `make help`: %s" % missing
