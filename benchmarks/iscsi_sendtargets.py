# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Benchmark of the pure-Python iSCSI initiator on loopback (prints figures; needs tgtd and libiscsi-bin).

1. SendTargets of N targets (default 256): our exchange (connect, login, SendTargets, logout) timed inside the
   process, versus the whole-process wall time of libiscsi's ``iscsi-ls`` in the same run.  Goal: ratio <= 2.
   The interpreter's start-up (and start-up + importing the library) is reported separately.
2. Login probe latency: connect, login, REPORT LUNS, READ CAPACITY(16), logout -- and the module's full
   ``probe()`` (which adds INQUIRY per LUN).

Usage: .venv/bin/python benchmarks/iscsi_sendtargets.py [--targets 256] [--runs 50]
Exit status 0 when the SendTargets ratio meets the goal, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'integration', 'iscsi'))

from iscsi_tgtd import INITIATOR, MiB, Tgtd  # noqa: E402  (also makes the collection importable)

from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_probe import discover, probe  # noqa: E402
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_scsi import (  # noqa: E402
    read_capacity,
    report_luns,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_session import Session  # noqa: E402

GOAL = 2.0


def timed(fn, runs):
    samples = []
    result = None
    for _ignored in range(runs):
        start = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - start)
    return samples, result


def fmt(samples):
    ms = sorted(s * 1000.0 for s in samples)
    p90 = ms[min(len(ms) - 1, int(round(0.9 * (len(ms) - 1))))]
    return 'median %7.3f ms   min %7.3f ms   p90 %7.3f ms   (n=%d)' % (statistics.median(ms), ms[0], p90, len(ms))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--targets', type=int, default=256)
    parser.add_argument('--runs', type=int, default=50)
    args = parser.parse_args()
    for tool in ('tgtd', 'tgtadm', 'iscsi-ls'):
        if not shutil.which(tool):
            sys.exit('%s not found (Debian packages tgt, libiscsi-bin)' % tool)

    workdir = tempfile.mkdtemp(prefix='iscsi-bench-')
    daemon = Tgtd(workdir).start()
    try:
        setup = time.perf_counter()
        names = []
        for tid in range(1, args.targets + 1):
            luns = [64 * MiB, 16 * MiB] if tid == 1 else []
            name = daemon.add_target(tid, 'iqn.2024-01.org.example.bench:target-%04d' % tid, luns)[0]
            names.append(name)
        setup = time.perf_counter() - setup
        host, port = daemon.host, daemon.port
        url = 'iscsi://%s:%d' % (host, port)

        # correctness first: both see the same targets
        ours = discover(host, port, initiator_name=INITIATOR)
        assert [t['name'] for t in ours] == names, 'our SendTargets result differs from the configured targets'
        ls = subprocess.run(['iscsi-ls', '-i', INITIATOR, url], capture_output=True, text=True, check=True)
        assert sorted(line.split()[0][len('Target:'):] for line in ls.stdout.splitlines()) == sorted(names)

        def our_exchange():
            return discover(host, port, initiator_name=INITIATOR)

        def iscsi_ls():
            subprocess.run(['iscsi-ls', '-i', INITIATOR, url], stdout=subprocess.DEVNULL, check=True)

        def python_startup():
            subprocess.run([sys.executable, '-c', 'pass'], check=True)

        importer = ('import sys; sys.path.insert(0, %r); '
                    'import ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_probe'
                    % os.path.join(REPO, '.build', 'pyroot'))
        pycache = os.path.join(workdir, 'pycache')
        env_cached = dict(os.environ, PYTHONPYCACHEPREFIX=pycache)
        env_cached.pop('PYTHONDONTWRITEBYTECODE', None)
        env_compile = dict(os.environ, PYTHONDONTWRITEBYTECODE='1', PYTHONPYCACHEPREFIX=os.path.join(workdir, 'none'))

        def python_startup_import():
            subprocess.run([sys.executable, '-c', importer], check=True, env=env_cached)

        def python_startup_compile():
            subprocess.run([sys.executable, '-c', importer], check=True, env=env_compile)

        target = names[0]

        def login_probe():
            with Session(host, port, initiator_name=INITIATOR, target_name=target) as s:
                s.login()
                sizes = [read_capacity(s, lun)['size_bytes'] for lun in report_luns(s) if lun != 0]
                s.logout()
            return sizes

        def module_probe():
            return probe(host, port, target, INITIATOR)

        # warm-up (page cache, tgtd, interpreter caches), then interleave the measured runs
        for fn in (our_exchange, iscsi_ls, login_probe, python_startup_import):
            fn()
        ours_t, ls_t = [], []
        for _ignored in range(args.runs):
            ours_t += timed(our_exchange, 1)[0]
            ls_t += timed(iscsi_ls, 1)[0]
        start_t, _ignored = timed(python_startup, max(10, args.runs // 5))
        import_t, _ignored = timed(python_startup_import, max(10, args.runs // 5))
        compile_t, _ignored = timed(python_startup_compile, max(10, args.runs // 5))
        probe_t, sizes = timed(login_probe, args.runs)
        full_t, full = timed(module_probe, args.runs)
        assert sizes == [64 * MiB, 16 * MiB], sizes
        assert full['error'] is None and [l.get('size_bytes') for l in full['luns']] == [None, 64 * MiB, 16 * MiB]

        ratio = statistics.median(ours_t) / statistics.median(ls_t)
        with_startup = (statistics.median(ours_t) + statistics.median(import_t)) / statistics.median(ls_t)
        print('iSCSI SendTargets benchmark on loopback: tgtd %s:%d, %d targets (set up in %.2f s)'
              % (host, port, args.targets, setup))
        print('python %s (%s)' % (sys.version.split()[0], sys.executable))
        print('')
        print('SendTargets exchange (connect+login+SendTargets+logout), in process : %s' % fmt(ours_t))
        print('iscsi-ls whole process (libiscsi-bin), wall time                     : %s' % fmt(ls_t))
        print('python interpreter start-up (python -c pass)                         : %s' % fmt(start_t))
        print('python start-up + importing the library (bytecode cached)           : %s' % fmt(import_t))
        print('python start-up + importing the library (compiled, no .pyc)          : %s' % fmt(compile_t))
        print('login probe (login+REPORT LUNS+READ CAPACITY(16) x2+logout)          : %s' % fmt(probe_t))
        print('probe() as the module runs it (adds INQUIRY per LUN)                 : %s' % fmt(full_t))
        print('')
        print('ratio ours/iscsi-ls (medians, exchange only)  : %.2f  (goal <= %.1f: %s)'
              % (ratio, GOAL, 'met' if ratio <= GOAL else 'NOT met'))
        print('ratio ours/iscsi-ls (minimums)                : %.2f  (informational: less sensitive to a busy machine)'
              % (min(ours_t) / min(ls_t)))
        print('ratio incl. interpreter start-up and import   : %.2f  (informational)' % with_startup)
        print('load average during the run: %s' % ' '.join('%.2f' % v for v in os.getloadavg()))
        return 0 if ratio <= GOAL else 1
    finally:
        daemon.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
