# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""List a built collection tarball and fail when it ships more than what users run.

Usage: python3 hacking/tarball_contents.py openiscsi-initiator-X.Y.Z.tar.gz

Allowed at the top of the tarball: the build's MANIFEST.json and FILES.json, plugins/, roles/, playbooks/, meta/,
docs/, changelogs/, README.md and a LICENSE/COPYING file.  Anything else (lab/, molecule/, tests/, hacking/,
benchmarks/, the Makefile, requirements files, pytest.ini, dot files ...) is development material that
galaxy.yml's build_ignore must keep out.  Prints the file count and size, and every offending path.
"""

import os
import sys
import tarfile

ALLOWED_TOP = frozenset(["MANIFEST.json", "FILES.json", "README.md", "LICENSE", "COPYING",
                         "plugins", "roles", "playbooks", "meta", "docs", "changelogs"])


def development_paths(names):
    """The member names of *names* that are not under an allowed top-level entry (sorted)."""
    bad = []
    for name in names:
        top = name.lstrip("./").split("/", 1)[0]
        if top and top not in ALLOWED_TOP:
            bad.append(name)
    return sorted(bad)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    path = argv[1]
    with tarfile.open(path) as tar:
        members = tar.getmembers()
    files = [m for m in members if m.isfile()]
    print("%s: %d files, %d bytes unpacked, %d bytes packed" % (
        os.path.basename(path), len(files), sum(m.size for m in files), os.path.getsize(path)))
    bad = development_paths(m.name for m in members)
    if bad:
        print("development paths in the tarball (add them to build_ignore in galaxy.yml):")
        for name in bad:
            print("  " + name)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
