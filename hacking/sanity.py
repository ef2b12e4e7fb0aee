# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run ``ansible-test sanity`` and prove that every test really ran.

Usage (from the collection root of the real tree): ``python hacking/sanity.py ANSIBLE-TEST-COMMAND...``.

ansible-test reports a test it could not run as a *skip* and still exits 0: a failure in disguise.  Some skips
carry a reason (no venv, no libyaml, no interpreter); others look exactly like "nothing to check" in the
results and only show as a warning on the console (shellcheck or pwsh missing, the import test's venv).
This wrapper runs the command with ``--junit``, echoes its output while watching for those warnings, reads
the per-test JUnit files under tests/output/junit/, prints which tests passed, had nothing to check, were
skipped or failed, and exits non-zero when ansible-test failed, when any test was skipped, or when an ignore
file exists under tests/sanity/ (the collection passes without one).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

JUNIT_DIR = os.path.join("tests", "output", "junit")
NOT_APPLICABLE = "No tests applicable."
PREFIX = "ansible-test-sanity-"
RUNNING = re.compile(r'^Running sanity test "([^"]+)"(?: on Python (\S+))?')
# Console warnings that mean "this test did not run".
SKIP_WARNINGS = re.compile(r'^WARNING: (Skipping sanity test .*|Required program "[^"]+" not found\.)\s*$')
# ansible-test repeats earlier warnings at the end; stop attributing them to the last test there.
REVIEW = re.compile(r"^WARNING: Reviewing previous \d+ warning")


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


def run(argv):
    """Run the command, echo its output, return (exit status, {test name: skip warning})."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    warned = {}
    current = None
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                          universal_newlines=True, errors="replace") as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if REVIEW.match(line):
                current = None
                continue
            match = RUNNING.match(line)
            if match:
                current = match.group(1) + ("-python-%s" % match.group(2) if match.group(2) else "")
                continue
            match = SKIP_WARNINGS.match(line)
            if match and current:
                warned.setdefault(current, match.group(1))
    return proc.returncode, warned


def main(argv):
    """Run the command, summarise the results, return the exit status."""
    if not argv:
        print("usage: sanity.py ANSIBLE-TEST-COMMAND...", file=sys.stderr)
        return 2
    ignores = sorted(glob.glob(os.path.join("tests", "sanity", "ignore-*.txt")))
    shutil.rmtree(JUNIT_DIR, ignore_errors=True)
    status, warned = run(list(argv) + ["--junit"])
    results = []
    for path in sorted(glob.glob(os.path.join(JUNIT_DIR, "*.xml"))):
        name, state, detail = classify(path)
        if state in ("passed", "not-applicable") and name in warned:
            state, detail = "skipped", warned[name]
        results.append((name, state, detail))
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
