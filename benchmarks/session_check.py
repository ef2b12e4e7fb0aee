# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of the session checker: 4096 synthetic iSCSI sessions.

    .venv/bin/python benchmarks/session_check.py [--sessions 4096] [--repeat 5]

Builds a synthetic sysfs tree (the kernel's layout: the class links of sessions, connections, SCSI devices and
disks; session/connection/target/LUN directories; one logged-in connection, a controller LUN 0 and a disk LUN 1 per
session; every 64th session FAILED with blocked devices) on tmpfs (/dev/shm) when available -- in the page cache, as
real sysfs is in memory -- then times, as the median of --repeat runs, wall clock and CPU time (this process plus
the reader's forked workers; the machine is shared: CPU time is what the check itself costs, wall time what it took
with everyone else's load):

* check      - THE figure: one full session_check poll, _sysfs.read_sessions(brief=True) + _health.evaluate with
               every expectation on (node records with automatic startup, min_paths, targets); goal < 100 ms wall;
* poll       - the same for a later poll of session_check's ``wait``: the identity cache holds each session's target,
               portal and iface, so only the changing files are read;
* read       - the reader alone, with its default number of forked readers (one per CPU, _sysfs.PARALLEL_MIN);
* read1      - the reader in one process (workers=1);
* evaluate   - the health verdict alone, over the reader's output;
* floor      - only os.open/os.read/os.close of the files the verdict cannot do without (each session's state, its
               connection's state, its devices' states), paths precomputed, in one process: what this machine's
               system calls cost before any Python logic;
* floor1     - the same for every file and class link a first poll needs (the report's and the expectations' too),
               and the wall time that leaves at best when the readers share it out over the CPUs.

With ``--maps N`` (default 1024) it then times the multipath part of a poll over N dm-multipath maps of 2 to 4 paths
each (a tree of their paths' sessions, every 64th FAILED): ``maps`` (the maps read from sysfs and joined with the
session reports, every map expectation on), ``mapsread`` (the reader alone) and ``godown`` ("can this portal go
down?").

Prints one line per figure, the ratio of the check to the 100 ms goal and the verdict.  Exit status 0 whatever the
verdict (a figure, not a test); 2 when the reader's output is wrong.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "unit"))
# conftest makes the collection importable from a plain checkout.
import conftest  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import

from ansible_collections.openiscsi.initiator.plugins.module_utils import _dm, _health, _sysfs  # noqa: E402

TARGET_MS = 100.0
IQN = "iqn.2025-01.bench.openiscsi:tgt-%04d"


def _write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def build_tree(root, count):
    """The kernel's layout for *count* software-iSCSI sessions (session N on hostN+1, LUN 0 + LUN 1)."""
    cls = os.path.join(root, "sys/class/iscsi_session")
    ccls = os.path.join(root, "sys/class/iscsi_connection")
    dcls = os.path.join(root, "sys/class/scsi_device")
    bcls = os.path.join(root, "sys/class/block")
    for directory in (cls, ccls, dcls, bcls):
        os.makedirs(directory)
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
            hctl = "%d:0:0:%d" % (host, lun)
            os.makedirs(os.path.join(ddir, "scsi_device", hctl))
            os.symlink(os.path.relpath(os.path.join(ddir, "scsi_device", hctl), dcls), os.path.join(dcls, hctl))
            _write(os.path.join(ddir, "state"), ("blocked" if failed else "running") + "\n")
            if lun:
                bdir = os.path.join(ddir, "block", "sd%d" % sid)
                os.makedirs(bdir)
                os.symlink(os.path.relpath(bdir, bcls), os.path.join(bcls, "sd%d" % sid))


def build_maps(root, count):
    """*count* dm-multipath maps over the sessions of :func:`build_tree` (which must hold at least
    :func:`map_paths` (count) sessions): map k takes the disks of the next 2, 3 or 4 sessions (in turn) as its paths,
    laid out as the kernel does (``sys/block/dm-k`` with ``dm/name``, ``dm/uuid``, ``size`` and ``slaves/``; each path's
    ``sys/block/sdN`` with ``device`` and ``size``, the SCSI device's ``wwid``).  Returns the number of paths."""
    sid = 1
    for k in range(count):
        wwid = "36001405%024x" % k
        base = os.path.join(root, "sys/devices/virtual/block/dm-%d" % k)
        os.makedirs(os.path.join(base, "dm"))
        os.makedirs(os.path.join(base, "slaves"))
        _write(os.path.join(base, "dm", "name"), "mpath%d\n" % k)
        _write(os.path.join(base, "dm", "uuid"), "mpath-%s\n" % wwid)
        _write(os.path.join(base, "size"), "131072\n")
        os.makedirs(os.path.join(root, "sys/block"), exist_ok=True)
        os.symlink(os.path.relpath(base, os.path.join(root, "sys/block")), os.path.join(root, "sys/block/dm-%d" % k))
        for _path in range(2 + k % 3):
            bdir = os.path.realpath(os.path.join(root, "sys/class/block", "sd%d" % sid))
            ddir = os.path.dirname(os.path.dirname(bdir))
            os.symlink("../../../" + os.path.basename(ddir), os.path.join(bdir, "device"))
            _write(os.path.join(bdir, "size"), "131072\n")
            _write(os.path.join(bdir, "dev"), "8:%d\n" % sid)
            _write(os.path.join(ddir, "wwid"), "naa.%s\n" % wwid[1:])
            os.symlink(os.path.relpath(bdir, os.path.join(root, "sys/block")), os.path.join(root, "sys/block/sd%d" % sid))
            os.symlink(os.path.relpath(bdir, os.path.join(base, "slaves")), os.path.join(base, "slaves", "sd%d" % sid))
            sid += 1
    return sid - 1


def map_paths(count):
    """Paths (sessions) that :func:`build_maps` uses for *count* maps."""
    return sum(2 + k % 3 for k in range(count))


def bench_maps(count, repeat, base):
    """The multipath part of a session_check poll over *count* maps of 2 to 4 paths: the maps read from sysfs and
    joined with the session reports (every expectation on), and the "can this portal go down?" answer."""
    root = tempfile.mkdtemp(prefix="session-check-maps.", dir=base)
    try:
        n = map_paths(count)
        build_tree(root, n)
        build_maps(root, count)
        sessions = _health.evaluate(_sysfs.read_sessions(root, brief=True))["sessions"]

        def maps_check():
            return _health.evaluate_maps(sessions, _dm.read_maps(root), min_map_paths=2, no_last_path=True,
                                         expect_multipath=True)

        reports, problems = maps_check()
        degraded = sum(1 for m in reports if m["healthy_paths"] < m["total_paths"])
        if len(reports) != count or sum(m["total_paths"] for m in reports) != n or not degraded:
            print("wrong map report: %d maps, %d paths" % (len(reports), sum(m["total_paths"] for m in reports)))
            return 2
        portal = reports[0]["paths"][0]["portal"]
        figures = [
            ("maps", "_dm.read_maps + _health.evaluate_maps, every expectation", median_of(maps_check, repeat)),
            ("mapsread", "_dm.read_maps alone", median_of(lambda: _dm.read_maps(root), repeat)),
            ("godown", "_health.can_go_down of one portal", median_of(
                lambda: _health.can_go_down(reports, portal=portal), repeat)),
        ]
        print("multipath maps: %d maps of 2 to 4 paths (%d paths, %d maps degraded by the FAILED sessions, %d "
              "problems), median of %d runs" % (count, n, degraded, len(problems), repeat))
        for key, what, (wall, cpu, _result) in figures:
            print("%-8s %-58s wall %8.1f ms  cpu %8.1f ms  (%5.1f us/map cpu)"
                  % (key, what, wall, cpu, cpu * 1000.0 / count))
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


def records_for(count):
    return [{"target": IQN % (sid % 1024), "address": "10.%d.%d.1" % (sid // 256 % 256, sid % 256), "port": 3260,
             "tpgt": 1, "iface": "default", "startup": "automatic"} for sid in range(1, count + 1)]


def floor_paths(root, count):
    """The verdict's files: each session's state, its connection's state, its LUNs' states."""
    paths = []
    for sid in range(1, count + 1):
        host = sid + 1
        sdev = os.path.join(root, "sys/devices/platform/host%d/session%d" % (host, sid))
        cname = "connection%d:0" % sid
        paths.append(os.path.join(sdev, "iscsi_session", "session%d" % sid, "state"))
        paths.append(os.path.join(sdev, cname, "iscsi_connection", cname, "state"))
        for lun in (0, 1):
            paths.append(os.path.join(sdev, "target%d:0:0" % host, "%d:0:0:%d" % (host, lun), "state"))
    return paths


def first_poll_paths(root, count):
    """What a first poll cannot do without: the files (the verdict's, plus each session's target, tpgt, iface and
    recovery_tmo and its connection's persistent address and port, which the report and the expectations need) and
    the class links it resolves (each session's, each LUN's scsi_device link, each disk's block link)."""
    files, links = [], []
    for sid in range(1, count + 1):
        host = sid + 1
        sdev = os.path.join(root, "sys/devices/platform/host%d/session%d" % (host, sid))
        scls = os.path.join(sdev, "iscsi_session", "session%d" % sid)
        cname = "connection%d:0" % sid
        cdir = os.path.join(sdev, cname, "iscsi_connection", cname)
        files += [os.path.join(scls, a) for a in ("state", "targetname", "tpgt", "ifacename", "recovery_tmo")]
        files += [os.path.join(cdir, a) for a in ("state", "persistent_address", "persistent_port")]
        files += [os.path.join(sdev, "target%d:0:0" % host, "%d:0:0:%d" % (host, lun), "state") for lun in (0, 1)]
        links.append(os.path.join(root, "sys/class/iscsi_session/session%d" % sid))
        links += [os.path.join(root, "sys/class/scsi_device/%d:0:0:%d" % (host, lun)) for lun in (0, 1)]
        links.append(os.path.join(root, "sys/class/block/sd%d" % sid))
    return files, links


def read_first_floor(files, links):
    read_floor(files)
    readlink = os.readlink
    for path in links:
        readlink(path)


def read_floor(paths):
    opener, reader, closer, flags = os.open, os.read, os.close, os.O_RDONLY
    for path in paths:
        fd = opener(path, flags)
        reader(fd, 4096)
        closer(fd)
    return len(paths)


def cpu_seconds():
    """CPU time of this process and of its finished children (the reader's forked workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def median_of(fn, repeat):
    """``(median wall ms, median CPU ms, last result)`` over *repeat* runs."""
    walls, cpus = [], []
    result = None
    for _round in range(repeat):
        c0, t0 = cpu_seconds(), time.perf_counter()
        result = fn()
        walls.append((time.perf_counter() - t0) * 1000.0)
        cpus.append((cpu_seconds() - c0) * 1000.0)
    return statistics.median(walls), statistics.median(cpus), result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--sessions", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--maps", type=int, default=1024,
                    help="multipath maps of 2 to 4 paths for the maps figures (0: none)")
    args = ap.parse_args()
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    root = tempfile.mkdtemp(prefix="session-check-bench.", dir=base)
    n = args.sessions
    unhealthy = n // 64
    try:
        t0 = time.perf_counter()
        build_tree(root, n)
        built = time.perf_counter() - t0
        records = records_for(n)
        targets = sorted(set(r["target"] for r in records))[:16]

        def check():
            return _health.evaluate(_sysfs.read_sessions(root, brief=True), records, expect_automatic=True,
                                    min_paths=1, targets=targets)

        report = check()  # warm-up (imports, the page cache), and the correctness check
        if report["counts"] != {"sessions": n, "healthy": n - unhealthy, "unhealthy": unhealthy} or \
                report["healthy"]:
            print("wrong report: %r" % (report["counts"],))
            return 2
        sessions = _sysfs.read_sessions(root, brief=True)
        if sessions != _sysfs.read_sessions(root, brief=True, workers=1):
            print("the forked readers' result differs from one process's")
            return 2
        readers = max(1, min(_sysfs.PARALLEL_MAX, _sysfs._cpus(), n // _sysfs.PARALLEL_MIN))  # pylint: disable=protected-access

        def read():
            return _sysfs.read_sessions(root, brief=True)

        def evaluate():
            return _health.evaluate(sessions, records, expect_automatic=True, min_paths=1, targets=targets)

        identities = {}
        _sysfs.read_sessions(root, brief=True, cache=identities)

        def poll():
            return _health.evaluate(_sysfs.read_sessions(root, brief=True, cache=identities), records,
                                    expect_automatic=True, min_paths=1, targets=targets)

        if poll()["counts"] != report["counts"]:
            print("a poll with the identity cache gives another report")
            return 2
        figures = [
            ("check", "read + evaluate: one session_check poll", median_of(check, args.repeat)),
            ("poll", "the same, a later poll of wait (identity cache)", median_of(poll, args.repeat)),
            ("read", "_sysfs.read_sessions(brief=True), %d reader(s)" % readers, median_of(read, args.repeat)),
            ("read1", "the same in this process alone (workers=1)",
             median_of(lambda: _sysfs.read_sessions(root, brief=True, workers=1), args.repeat)),
            ("evaluate", "_health.evaluate, every expectation on", median_of(evaluate, args.repeat)),
        ]
        paths = floor_paths(root, n)
        figures.append(("floor", "open/read/close of the %d verdict files only" % len(paths),
                        median_of(lambda: read_floor(paths), args.repeat)))
        files, links = first_poll_paths(root, n)
        figures.append(("floor1", "%d files + %d readlinks: a first poll's system calls" % (len(files), len(links)),
                        median_of(lambda: read_first_floor(files, links), args.repeat)))
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print("session_check benchmark: %d synthetic sessions (%d unhealthy), tree on %s (built in %.1f s), "
              "median of %d runs, %d CPUs, 1-min load %.2f"
              % (n, unhealthy, base or "disk", built, args.repeat, os.cpu_count() or 0, load))
        for key, what, (wall, cpu, _result) in figures:
            print("%-8s %-58s wall %8.1f ms  cpu %8.1f ms  (%5.1f us/session cpu)"
                  % (key, what, wall, cpu, cpu * 1000.0 / n))
        cpus = _sysfs._cpus()  # pylint: disable=protected-access
        floor1 = figures[-1][2][1]
        print("first poll's system calls alone: %.1f ms CPU = at least %.1f ms wall on %d CPU(s), before any Python "
              "logic" % (floor1, floor1 / max(1, min(cpus, readers)), cpus))
        for index, what in ((0, "checked (read + evaluate), first poll"), (1, "re-checked by a later poll of wait")):
            wall, cpu, _result = figures[index][2]
            print("goal: %d sessions %s in < %.0f ms: %s -- wall %.1f ms = %.2fx the goal, cpu %.1f ms = %.2fx"
                  % (n, what, TARGET_MS, "MET" if wall < TARGET_MS else "MISSED", wall, wall / TARGET_MS, cpu,
                     cpu / TARGET_MS))
        return bench_maps(args.maps, args.repeat, base) if args.maps else 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
