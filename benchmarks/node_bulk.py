# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bulk node records: openiscsi.initiator.node against community.general.open_iscsi.  Prints figures and ratios.

P1  256 records with CHAP and automatic startup, created by ONE ``openiscsi.initiator.node`` task, against the same
    records configured by ``community.general.open_iscsi`` in a loop (from the PyPI ``ansible`` 12.x bundle).  That
    module cannot create a record without discovery, so its records are created beforehand with
    ``iscsiadm -m node -o new`` (not timed); it also cannot set CHAP without logging in (it writes the credentials
    only right before a login, which needs a kernel transport), so it is given the CHAP options but sets only the
    startup - it does LESS work than the node task.  Goal: >= 40x.
P2  the same node task again with nothing to change, against a one-task ``ansible.builtin.ping`` play (the two
    plays alternate, so that load changes on a shared machine hit both alike).  Goal <= 1.3x.

Runs on this host in one go, no lab: as root, inside a private mount namespace (``unshare -m``) with a temporary
directory over /etc/iscsi and a tmpfs over /run/lock, so the machine's own node DB is never touched.  Plays run
against localhost (ansible_connection=local) with the bundle's ansible-playbook from ``.build/bench-venv`` (created
on first use: ``python3 -m venv`` + ``pip install 'ansible>=12,<13'``).

Timing: task durations come from the ``ansible.posix.json`` callback; play figures are wall-clock times of whole
``ansible-playbook`` runs.  The node creation and P2 take medians of several runs; the incumbent loop runs once.
On a host where iscsid is not running (like a build machine), ``iscsiadm -o new`` waits about 1 s for it; the node
task pays that once (it creates one record per iface with iscsiadm and the rest from that record).

Usage (as root): ``python3 benchmarks/node_bulk.py [--records 256] [--creates 3] [--repeat 7] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
VENV = os.path.join(REPO, ".build", "bench-venv")
PYROOT = os.path.join(REPO, ".build", "pyroot")
MARK = "NODE_BULK_IN_NAMESPACE"
SECRET_BASE = "bench-chap-secret-"


def ensure_venv():
    playbook = os.path.join(VENV, "bin", "ansible-playbook")
    if os.path.exists(playbook):
        return playbook
    print("creating %s with the PyPI ansible 12.x bundle ..." % VENV, flush=True)
    subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "-q", "ansible>=12,<13"], check=True)
    return playbook


def ensure_pyroot():
    """``.build/pyroot/ansible_collections/openiscsi/initiator`` -> the checkout (as tests/unit/conftest.py does)."""
    link = os.path.join(PYROOT, "ansible_collections", "openiscsi", "initiator")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if not os.path.islink(link):
        os.symlink(REPO, link)


def reexec_in_namespace(argv):
    if os.environ.get(MARK):
        return
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark needs a private mount namespace (unshare -m) for its node DB")
    if not shutil.which("unshare") or not shutil.which("iscsiadm"):
        sys.exit("needs unshare and open-iscsi's iscsiadm")
    env = dict(os.environ, **{MARK: "1"})
    os.execvpe("unshare", ["unshare", "-m", "--propagation", "private", sys.executable, os.path.abspath(__file__)]
               + argv, env)


class Bench:
    def __init__(self, records, playbook):
        self.n = records
        self.playbook = playbook
        self.work = tempfile.mkdtemp(prefix="node-bulk-")
        self.inventory = os.path.join(self.work, "inventory.ini")
        with open(self.inventory, "w") as handle:
            handle.write("localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n")
        self.vars_file = os.path.join(self.work, "vars.json")
        nodes = [{"target": "iqn.2001-04.com.example:bench.lun%03d" % i,
                  "portal": "10.77.%d.%d:3260" % (i // 250, i % 250 + 1),
                  "user": "initiator%03d" % i, "secret": "%s%03d" % (SECRET_BASE, i)} for i in range(records)]
        entries = [{"target": n["target"], "portal": n["portal"], "startup": "automatic",
                    "auth": {"username": n["user"], "password": n["secret"]}} for n in nodes]
        with open(self.vars_file, "w") as handle:
            json.dump({"bench_nodes": nodes, "node_entries": entries}, handle)
        self.pristine = os.path.join(self.work, "pristine")
        os.mkdir(self.pristine)
        for name in ("iscsid.conf", "initiatorname.iscsi"):
            if os.path.exists(os.path.join("/etc/iscsi", name)):
                shutil.copy2(os.path.join("/etc/iscsi", name), self.pristine)
        self.write_plays()

    # ----------------------------------------------------------------- environment
    def fresh_db(self):
        """A new empty node DB over /etc/iscsi (and /var/lib/iscsi when the host has it)."""
        db = tempfile.mkdtemp(prefix="db-", dir=self.work)
        for name in os.listdir(self.pristine):
            shutil.copy2(os.path.join(self.pristine, name), db)
        for target in ("/etc/iscsi", "/var/lib/iscsi"):
            if os.path.isdir(target):
                subprocess.run(["mount", "--bind", db, target], check=True)
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run/lock"], check=True)
        return db

    def env(self):
        env = dict(os.environ)
        env.update({
            "ANSIBLE_COLLECTIONS_PATH": PYROOT,
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_LOCALHOST_WARNING": "false",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
            "ANSIBLE_HOST_KEY_CHECKING": "false",
            "ANSIBLE_RETRY_FILES_ENABLED": "false",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_DEPRECATION_WARNINGS": "false",
        })
        env.pop(MARK, None)
        return env

    def write_plays(self):
        self.plays = {}
        self.plays["node"] = self._play("""
    - name: records with CHAP and automatic startup, one task
      openiscsi.initiator.node:
        nodes: "{{ node_entries }}"
""")
        self.plays["incumbent"] = self._play("""
    - name: the same records with community.general.open_iscsi, in a loop
      community.general.open_iscsi:
        target: "{{ item.target }}"
        portal: "{{ item.portal.split(':')[0] }}"
        port: "{{ item.portal.split(':')[1] }}"
        auto_node_startup: true
        node_auth: CHAP
        node_user: "{{ item.user }}"
        node_pass: "{{ item.secret }}"
      loop: "{{ bench_nodes }}"
""")
        self.plays["ping"] = self._play("""
    - name: ping
      ansible.builtin.ping:
""")

    def _play(self, tasks):
        path = os.path.join(self.work, "play%d.yml" % len(os.listdir(self.work)))
        with open(path, "w") as handle:
            handle.write("- hosts: localhost\n  gather_facts: false\n  tasks:" + tasks)
        return path

    # ----------------------------------------------------------------- running
    def play(self, name):
        """Run a play; return (wall seconds, task seconds, task result)."""
        cmd = [self.playbook, "-i", self.inventory, "-e", "@" + self.vars_file, self.plays[name]]
        start = time.monotonic()
        proc = subprocess.run(cmd, env=self.env(), capture_output=True, text=True, check=False)
        wall = time.monotonic() - start
        if proc.returncode != 0:
            raise SystemExit("%s play failed (rc %d):\n%s\n%s"
                             % (name, proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
        data = json.loads(proc.stdout)
        task = data["plays"][0]["tasks"][-1]
        dur = task["task"]["duration"]
        seconds = _seconds(dur["end"]) - _seconds(dur["start"])
        result = task["hosts"]["localhost"]
        result["_secret_in_output"] = SECRET_BASE in proc.stdout or SECRET_BASE in proc.stderr
        if name == "node" and result["_secret_in_output"]:
            raise SystemExit("a CHAP secret appeared in the node play's output")
        return wall, seconds, result

    def precreate(self):
        """The incumbent cannot create records: make them with iscsiadm -o new (parallel; not timed)."""
        script = "iscsiadm -m node -o new -T \"$1\" -p \"$2\" >/dev/null 2>&1"
        procs = []
        with open(self.vars_file) as handle:
            nodes = json.load(handle)["bench_nodes"]
        for i in range(0, len(nodes), 32):
            batch = [subprocess.Popen(["sh", "-c", script, "sh", n["target"], n["portal"]]) for n in nodes[i:i + 32]]
            procs.extend(batch)
            for proc in batch:
                proc.wait()
        failed = [p for p in procs if p.returncode != 0]
        if failed:
            raise SystemExit("iscsiadm -o new failed for %d records" % len(failed))


def _seconds(stamp):
    # 2026-11-24T17:01:02.123456Z
    from datetime import datetime
    return datetime.strptime(stamp.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def count_records(pattern):
    total = 0
    for base, _dirs, files in os.walk("/etc/iscsi/nodes"):
        for name in files:
            with open(os.path.join(base, name)) as handle:
                text = handle.read()
            if all(p in text for p in pattern):
                total += 1
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=7, help="runs of each P2 play, alternating (median taken)")
    parser.add_argument("--creates", type=int, default=3, help="P1 node task runs, each on a fresh DB (median)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--no-incumbent", action="store_true", help="skip the (minutes long) incumbent loop")
    args = parser.parse_args()
    reexec_in_namespace(sys.argv[1:])
    ensure_pyroot()
    bench = Bench(args.records, ensure_venv())
    n = args.records
    figures = {"records": n}

    print("== P1: %d records with CHAP and automatic startup (median of %d fresh node DBs)" % (n, args.creates),
          flush=True)
    creates = []
    for _run in range(args.creates):
        bench.fresh_db()
        bench.play("ping")  # warm caches (ansible's, the page cache) before anything is timed
        wall, task, result = bench.play("node")
        assert result.get("changed") is True and result["summary"]["create"] == n, result.get("summary")
        done = count_records(["node.startup = automatic", "node.session.auth.authmethod = CHAP",
                              "node.session.auth.password = " + SECRET_BASE])
        assert done == n, "only %d of %d records hold CHAP and automatic startup" % (done, n)
        creates.append((task, wall, result["commands"]))
        print("   openiscsi.initiator.node, one task:       task %7.2f s   play %7.2f s   (%d iscsiadm commands)"
              % (task, wall, result["commands"]), flush=True)
    task = statistics.median(c[0] for c in creates)
    wall = statistics.median(c[1] for c in creates)
    figures.update(node_create_task=task, node_create_play=wall, node_create_runs=creates)

    print("== P2: the same task with nothing to change, against a ping play (alternating, median of %d each)"
          % args.repeat, flush=True)
    walls, tasks, pings = [], [], []
    for _run in range(args.repeat):
        wall2, task2, result2 = bench.play("node")
        assert result2.get("changed") is False and result2["commands"] == 0, result2.get("summary")
        walls.append(wall2)
        tasks.append(task2)
        pings.append(bench.play("ping")[0])
    figures.update(node_noop_play=statistics.median(walls), node_noop_task=statistics.median(tasks),
                   ping_play=statistics.median(pings), node_noop_plays=walls, ping_plays=pings)
    print("   node, nothing to change:                  task %7.2f s   play %7.2f s   (plays: %s)" % (
        figures["node_noop_task"], figures["node_noop_play"], " ".join("%.2f" % w for w in walls)))
    print("   ansible.builtin.ping:                                     play %7.2f s   (plays: %s)"
          % (figures["ping_play"], " ".join("%.2f" % w for w in pings)), flush=True)

    figures["p2_ratio_play"] = figures["node_noop_play"] / figures["ping_play"]
    if args.no_incumbent:
        print("P2  no-change node play %.2f s vs ping play %.2f s: %.2fx (goal <= 1.3x)"
              % (figures["node_noop_play"], figures["ping_play"], figures["p2_ratio_play"]))
        shutil.rmtree(bench.work, ignore_errors=True)
        return
    print("== P1: community.general.open_iscsi in a loop (records pre-created with iscsiadm -o new)", flush=True)
    bench.fresh_db()
    bench.precreate()
    wall3, task3, result3 = bench.play("incumbent")
    auto = count_records(["node.startup = automatic"])
    chap = count_records(["node.session.auth.authmethod = CHAP"])
    figures.update(incumbent_task=task3, incumbent_play=wall3, incumbent_startup_set=auto, incumbent_chap_set=chap,
                   incumbent_secret_in_output=result3["_secret_in_output"])
    print("   community.general.open_iscsi, loop:       task %7.2f s   play %7.2f s   (startup set on %d, CHAP on %d)"
          % (task3, wall3, auto, chap), flush=True)

    figures["p1_ratio_task"] = task3 / task
    figures["p1_ratio_play"] = wall3 / wall
    figures["p2_ratio_play"] = figures["node_noop_play"] / figures["ping_play"]
    print()
    print("P1  node task %.2f s vs incumbent loop %.2f s: %.1fx faster (goal >= 40x); whole plays %.2f s vs %.2f s: "
          "%.1fx" % (task, task3, figures["p1_ratio_task"], wall, wall3, figures["p1_ratio_play"]))
    print("P2  no-change node play %.2f s vs ping play %.2f s: %.2fx (goal <= 1.3x)"
          % (figures["node_noop_play"], figures["ping_play"], figures["p2_ratio_play"]))
    if figures["incumbent_secret_in_output"]:
        print("    (the incumbent's loop results echo each item, CHAP secret included, in the play output)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)
    shutil.rmtree(bench.work, ignore_errors=True)


if __name__ == "__main__":
    main()
