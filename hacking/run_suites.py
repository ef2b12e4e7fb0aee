# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the suites of `make test` (each one a make target) on N workers, every suite to its end even when another fails.

With ``--jobs 1`` the suites run one after the other in the order given.  With more workers the queue is ordered
longest first (EXPECTED_SECONDS, measured on a 2-core machine) and each idle worker takes the next suite it may run:
the suites in one EXCLUSIVE group never run at the same time.  Worker N runs its suites with its own lab state
directory (``<LAB_STATE_DIR or REPO/.lab>-wN``), so two labs never share VMs, ports or SSH control sockets; every
state directory is torn down at the end whatever happened.

Every output line is printed with its suite's name in front (``[lab-trixie] ...``) and kept whole in
``.build/logs/<suite>.log``.  ``.build/test-summary.txt`` gets one line per suite: result, seconds, worker, start.
Exit status: 0 when every suite passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time

# Seconds each suite took on this project's 2-core machine (session 2 measurements); only the order matters.
EXPECTED_SECONDS = {
    # Session 4 (fresh clone, /tmp/ci2): lab-bookworm 2382 s and lab-trixie 2334 s before the matrix moved
    # test_boot_startup (225 s) to 13 and test_boot_fstab (641 s on 13) to 12 only; role-test 941 s on 12 alone.
    "lab-bookworm": 2160, "lab-trixie": 1950, "fleet": 1010, "role-test": 940, "molecule": 200,
    "fuzz": 80, "sanity": 70, "units": 63, "galaxy-check": 33, "integration": 28, "bench": 23, "lint": 22,
    # docs-test: 81 s and 185 s with its venv and chromium installed first (load 4-5), 33-60 s once installed.
    "docs-test": 185, "ee-check": 14,
}
# Suites that must not overlap: integration and bench both start tgtd processes on 127.0.0.1.
EXCLUSIVE = [{"integration", "bench"}]


class Runner:
    def __init__(self, repo, suites, jobs, make_args):
        self.repo = repo
        self.jobs = max(1, jobs)
        self.make_args = make_args
        if self.jobs > 1:
            suites = sorted(suites, key=lambda s: -EXPECTED_SECONDS.get(s, 60))
        self.queue = list(suites)
        self.running = set()
        self.results = []
        self.cond = threading.Condition()
        self.out_lock = threading.Lock()
        self.t0 = time.monotonic()
        base = os.environ.get("LAB_STATE_DIR") or os.path.join(repo, ".lab")
        self.state_dirs = [base] if self.jobs == 1 else ["%s-w%d" % (base, i + 1) for i in range(self.jobs)]
        self.log_dir = os.path.join(repo, ".build", "logs")
        os.makedirs(self.log_dir, exist_ok=True)

    def say(self, line):
        with self.out_lock:
            sys.stdout.write(line if line.endswith("\n") else line + "\n")
            sys.stdout.flush()

    def _blocked(self, suite):
        return any(suite in group and self.running & (group - {suite}) for group in EXCLUSIVE)

    def _next(self):
        with self.cond:
            while True:
                if not self.queue:
                    return None
                for suite in self.queue:
                    if not self._blocked(suite):
                        self.queue.remove(suite)
                        self.running.add(suite)
                        return suite
                self.cond.wait()

    def _done(self, suite):
        with self.cond:
            self.running.discard(suite)
            self.cond.notify_all()

    def run_one(self, worker, suite):
        env = dict(os.environ, LAB_STATE_DIR=self.state_dirs[worker])
        start = time.monotonic()
        self.say("==== %s (worker %d, at %d s)" % (suite, worker + 1, start - self.t0))
        prefix = "[%s] " % suite
        # The log file gets the output as it comes (pytest's progress dots included); the console gets whole
        # lines, each with its suite's name when suites run side by side.
        with open(os.path.join(self.log_dir, suite + ".log"), "wb", buffering=0) as log:
            proc = subprocess.Popen(["make", "--no-print-directory", suite] + self.make_args, cwd=self.repo, env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            pending = b""
            while True:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                log.write(chunk)
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    text = line.decode("utf-8", "replace")
                    self.say(prefix + text if self.jobs > 1 else text)
            if pending:
                text = pending.decode("utf-8", "replace")
                self.say(prefix + text if self.jobs > 1 else text)
            proc.stdout.close()
            rc = proc.wait()
        seconds = int(time.monotonic() - start)
        result = "passed" if rc == 0 else "FAILED"
        line = "suite %s: %s in %d s (worker %d, started at %d s)" % (suite, result, seconds, worker + 1,
                                                                      start - self.t0)
        with self.cond:
            self.results.append(line)
        self.say("==== " + line)
        return rc == 0

    def worker(self, worker):
        while True:
            suite = self._next()
            if suite is None:
                return
            try:
                self.run_one(worker, suite)
            finally:
                self._done(suite)

    def run(self):
        threads = [threading.Thread(target=self.worker, args=(i,), daemon=True) for i in range(self.jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        labctl = [os.path.join(self.repo, ".venv", "bin", "python"), os.path.join(self.repo, "lab", "labctl"), "down"]
        for state in self.state_dirs:
            if os.path.isdir(state):
                subprocess.run(labctl, cwd=self.repo, env=dict(os.environ, LAB_STATE_DIR=state),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        with open(os.path.join(self.repo, ".build", "test-summary.txt"), "w", encoding="utf-8") as fh:
            fh.write("".join(r + "\n" for r in self.results))
            fh.write("all suites: %d s on %d worker(s)\n" % (time.monotonic() - self.t0, self.jobs))
        return all(": passed in " in r for r in self.results)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--repo", default=os.getcwd())
    ap.add_argument("suites", nargs="+")
    ap.add_argument("--make-arg", action="append", default=[], dest="make_args",
                    help="VAR=value passed to every make call")
    args = ap.parse_args(argv)
    ok = Runner(os.path.abspath(args.repo), args.suites, args.jobs, args.make_args).run()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
