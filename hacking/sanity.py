# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run ``ansible-test sanity`` and prove that every test really ran.

Usage (from the collection root of the real tree): ``python hacking/sanity.py ANSIBLE-TEST-COMMAND...``.

ansible-test reports a test it could not run (no venv, no libyaml, no interpreter) as a *skip* with a warning
and still exits 0: a failure in disguise.  This wrapper runs the given command with ``--junit`` and reads the
per-test JUnit files it writes under tests/output/junit/: it prints which tests passed, which had nothing to
check, which were skipped and which failed, and exits non-zero when ansible-test failed, when any test was
skipped for a reason, or when an ignore file exists under tests/sanity/ (the collection passes without one).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

JUNIT_DIR = os.path.join("tests", "output", "junit")
NOT_APPLICABLE = "No tests applicable."
PREFIX = "ansible-test-sanity-"


def classify(path):
    """Return (name, status, detail) for one JUnit file written by ansible-test."""
    name = os.path.basename(path)[:-len(".xml")]
    if name.startswith(PREFIX):
        name = name[len(PREFIX):]
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        for child in case:
            if child.tag == "skipped":
                reason = child.get("message") or (child.text or "").strip()
                if reason == NOT_APPLICABLE:
                    return name, "not-applicable", ""
                return name, "skipped", reason
            if child.tag in ("failure", "error"):
                return name, "failed", (child.get("message") or "").strip()
    return name, "passed", ""


def main(argv):
    """Run the command, summarise the results, return the exit status."""
    if not argv:
        print("usage: sanity.py ANSIBLE-TEST-COMMAND...", file=sys.stderr)
        return 2
    ignores = sorted(glob.glob(os.path.join("tests", "sanity", "ignore-*.txt")))
    shutil.rmtree(JUNIT_DIR, ignore_errors=True)
    status = subprocess.call(list(argv) + ["--junit"])
    results = [classify(path) for path in sorted(glob.glob(os.path.join(JUNIT_DIR, "*.xml")))]
    by_status = {}
    for name, state, detail in results:
        by_status.setdefault(state, []).append((name, detail))
    print("\n== sanity summary (%d tests)" % len(results))
    for state in ("passed", "not-applicable", "skipped", "failed"):
        entries = by_status.get(state, [])
        print("%-15s %3d  %s" % (state + ":", len(entries), " ".join(name for name, detail in entries)))
        for name, detail in entries:
            if detail and state == "skipped":
                print("    %s: %s" % (name, detail))
    problems = []
    if status:
        problems.append("ansible-test exited with status %d" % status)
    if not results:
        problems.append("no JUnit results found in %s" % JUNIT_DIR)
    if by_status.get("skipped"):
        problems.append("%d test(s) skipped: a skipped test is a failure in disguise" % len(by_status["skipped"]))
    if ignores:
        problems.append("ignore files are not allowed: %s" % ", ".join(ignores))
    for problem in problems:
        print("FAILED: %s" % problem)
    if not problems:
        print("sanity: all %d tests passed or had nothing to check, none skipped, no ignore file" % len(results))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
