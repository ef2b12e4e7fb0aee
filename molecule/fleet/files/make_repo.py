# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build re-versioned copies of the lab guests' open-iscsi .deb and a flat apt repository for each (molecule/fleet).

    python3 make_repo.py --version 2.1.8-1 --release bookworm --out DIR --suffix +lab1 --suffix +lab2

For each suffix: DIR/<suffix>/open-iscsi_<version><suffix>_<arch>.deb and DIR/<suffix>/Packages.  The package is
the guests' own .deb unpacked with ``dpkg-deb -R`` and packed again with ``dpkg-deb -b`` with only the Version
field changed: the same files and the same maintainer scripts (preinst/postinst), so an upgrade to it runs
Debian's real upgrade path.  The original .deb comes from the lab image's download cache
($LAB_CACHE_DIR/debs-<release>/, filled by debootstrap when the image was built), else ``apt-get download``.
Prints a JSON summary.  Standard library plus dpkg-deb and dpkg-scanpackages (dpkg-dev).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time


def cache_dir():
    return os.environ.get("LAB_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "openiscsi-lab")


def find_deb(package, version, release, work):
    name = "%s_%s_" % (package, version.replace(":", "%3a"))
    hits = sorted(glob.glob(os.path.join(cache_dir(), "debs-%s" % release, name + "*.deb")))
    if hits:
        return hits[0], "lab image cache"
    res = subprocess.run(["apt-get", "download", "%s=%s" % (package, version)], cwd=work, capture_output=True,
                         text=True, check=False)
    hits = sorted(glob.glob(os.path.join(work, name + "*.deb")))
    if res.returncode != 0 or not hits:
        sys.exit("no %s %s .deb: not in %s/debs-%s and apt-get download failed: %s"
                 % (package, version, cache_dir(), release, res.stderr.strip()))
    return hits[0], "apt-get download"


def rebuild(orig, suffix, dest, work):
    tree = os.path.join(work, "tree" + re.sub(r"[^A-Za-z0-9]", "_", suffix))
    subprocess.run(["dpkg-deb", "-R", orig, tree], check=True)
    control = os.path.join(tree, "DEBIAN", "control")
    with open(control, encoding="utf-8") as handle:
        text = handle.read()
    version = re.search(r"^Version: (\S+)$", text, re.M).group(1)
    text = re.sub(r"^Version: \S+$", "Version: %s%s" % (version, suffix), text, count=1, flags=re.M)
    with open(control, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.makedirs(dest, exist_ok=True)
    subprocess.run(["dpkg-deb", "-Zgzip", "-b", tree, dest], check=True, stdout=subprocess.DEVNULL)
    shutil.rmtree(tree)
    with open(os.path.join(dest, "Packages"), "w", encoding="utf-8") as handle:
        subprocess.run(["dpkg-scanpackages", "--multiversion", ".", "/dev/null"], cwd=dest, stdout=handle,
                       stderr=subprocess.DEVNULL, check=True)
    debs = sorted(glob.glob(os.path.join(dest, "*.deb")))
    return {"suffix": suffix, "version": version + suffix, "dir": dest, "deb": os.path.basename(debs[-1])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--package", default="open-iscsi")
    ap.add_argument("--version", required=True, help="the version installed in the guests")
    ap.add_argument("--release", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--suffix", action="append", required=True)
    args = ap.parse_args()
    t0 = time.monotonic()
    work = tempfile.mkdtemp(prefix="fleet-repo.")
    try:
        orig, source = find_deb(args.package, args.version, args.release, work)
        repos = [rebuild(orig, s, os.path.join(args.out, s.strip("+~")), work) for s in args.suffix]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"original": orig, "source": source, "repos": repos,
                      "seconds": round(time.monotonic() - t0, 2)}))


if __name__ == "__main__":
    main()
