# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sum the pytest JUnit XML reports of `make test` into one closing line: 'tests: N passed, N failed, N skipped'."""

from __future__ import annotations

import pathlib
import sys
import xml.etree.ElementTree as ET


def main(folder):
    passed = failed = skipped = 0
    for report in sorted(pathlib.Path(folder).glob("*.xml")):
        root = ET.parse(report).getroot()
        suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
        p = f = s = 0
        for suite in suites:
            total = int(suite.get("tests", 0))
            f += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            s += int(suite.get("skipped", 0))
            p += total - int(suite.get("failures", 0)) - int(suite.get("errors", 0)) - int(suite.get("skipped", 0))
        print("  %-12s %d passed, %d failed, %d skipped" % (report.stem, p, f, s))
        passed, failed, skipped = passed + p, failed + f, skipped + s
    print("tests: %d passed, %d failed, %d skipped" % (passed, failed, skipped))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".build/junit")
