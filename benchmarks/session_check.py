# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of the session checker: 4096 synthetic iSCSI sessions.

    .venv/bin/python benchmarks/session_check.py [--sessions 4096] [--repeat 5]

Builds a synthetic sysfs tree (the kernel's layout: class symlinks, session/connection/target/LUN directories; one
logged-in connection, a controller LUN 0 and a disk LUN 1 per session; every 64th session FAILED with blocked
devices) on tmpfs (/dev/shm) when available, then times, best of --repeat runs:

* evaluate   - _health.evaluate over the reader's output with every expectation on (node records with automatic
               startup, min_paths, targets): the health check itself, target < 100 ms for 4096 sessions;
* read       - _sysfs.read_sessions(brief=True): reading the tree (what each poll of ``wait`` costs on top);
* poll       - read + evaluate, i.e. one poll of session_check.

Prints one line per figure and the verdict for the 100 ms target.  Exit status 1 when evaluate misses it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "unit"))
# conftest makes the collection importable from a plain checkout.
import conftest  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import

from ansible_collections.openiscsi.initiator.plugins.module_utils import _health, _sysfs  # noqa: E402

TARGET_MS = 100.0
IQN = "iqn.2025-01.bench.openiscsi:tgt-%04d"


def _write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def build_tree(root, count):
    """The kernel's layout for *count* software-iSCSI sessions (session N on hostN+1, LUN 0 + LUN 1)."""
    cls = os.path.join(root, "sys/class/iscsi_session")
    ccls = os.path.join(root, "sys/class/iscsi_connection")
    os.makedirs(cls)
    os.makedirs(ccls)
    for sid in range(1, count + 1):
        host = sid + 1
        failed = sid % 64 == 0
        sdev = os.path.join(root, "sys/devices/platform/host%d/session%d" % (host, sid))
        scls = os.path.join(sdev, "iscsi_session", "session%d" % sid)
        os.makedirs(scls)
        for name, value in (("state", "FAILED" if failed else "LOGGED_IN"), ("targetname", IQN % (sid % 1024)),
                            ("tpgt", "1"), ("ifacename", "default"), ("recovery_tmo", "120"),
                            ("isid", "00023d%06x" % sid)):
            _write(os.path.join(scls, name), value + "\n")
        os.symlink(os.path.relpath(scls, cls), os.path.join(cls, "session%d" % sid))
        cname = "connection%d:0" % sid
        cdir = os.path.join(sdev, cname, "iscsi_connection", cname)
        os.makedirs(cdir)
        for name, value in (("state", "failed" if failed else "up"),
                            ("persistent_address", "10.%d.%d.1" % (sid // 256 % 256, sid % 256)),
                            ("persistent_port", "3260")):
            _write(os.path.join(cdir, name), value + "\n")
        os.symlink(os.path.relpath(cdir, ccls), os.path.join(ccls, cname))
        for lun in (0, 1):
            ddir = os.path.join(sdev, "target%d:0:0" % host, "%d:0:0:%d" % (host, lun))
            os.makedirs(ddir)
            _write(os.path.join(ddir, "state"), ("blocked" if failed else "running") + "\n")
            if lun:
                os.makedirs(os.path.join(ddir, "block", "sd%d" % sid))


def records_for(count):
    return [{"target": IQN % (sid % 1024), "address": "10.%d.%d.1" % (sid // 256 % 256, sid % 256), "port": 3260,
             "tpgt": 1, "iface": "default", "startup": "automatic"} for sid in range(1, count + 1)]


def best(fn, repeat):
    times = []
    result = None
    for _round in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1000.0, result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--sessions", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    root = tempfile.mkdtemp(prefix="session-check-bench.", dir=base)
    try:
        t0 = time.perf_counter()
        build_tree(root, args.sessions)
        built = time.perf_counter() - t0
        records = records_for(args.sessions)
        sessions = _sysfs.read_sessions(root, brief=True)
        assert len(sessions) == args.sessions, len(sessions)
        targets = sorted(set(r["target"] for r in records))[:16]

        def evaluate():
            return _health.evaluate(sessions, records, expect_automatic=True, min_paths=1, targets=targets)

        eval_ms, report = best(evaluate, args.repeat)
        unhealthy = args.sessions // 64
        assert report["counts"] == {"sessions": args.sessions, "healthy": args.sessions - unhealthy,
                                    "unhealthy": unhealthy}, report["counts"]
        assert not report["healthy"]
        read_ms, _result = best(lambda: _sysfs.read_sessions(root, brief=True), args.repeat)
        poll_ms, _result = best(lambda: evaluate() if _sysfs.read_sessions(root, brief=True) else None, args.repeat)
        n = args.sessions
        print("session_check benchmark: %d synthetic sessions (%d unhealthy), tree on %s, built in %.1f s, "
              "best of %d" % (n, unhealthy, base or "disk", built, args.repeat))
        print("evaluate (health check over the reader's output): %8.1f ms  (%5.1f us/session)"
              % (eval_ms, eval_ms * 1000 / n))
        print("read     (_sysfs.read_sessions brief=True):       %8.1f ms  (%5.1f us/session)"
              % (read_ms, read_ms * 1000 / n))
        print("poll     (read + evaluate, one session_check poll):%7.1f ms  (%5.1f us/session)" % (
            poll_ms, poll_ms * 1000 / n))
        ok = eval_ms < TARGET_MS
        print("target: %d sessions checked in < %.0f ms: %s (%.1f ms)" % (n, TARGET_MS, "PASS" if ok else "FAIL",
                                                                          eval_ms))
        return 0 if ok else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
