# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bulk node records: openiscsi.initiator.node against two anchors, interleaved.  Prints figures, ratios and goals.

For each record count (``--records``, default 64,256,1024,4096), records with CHAP and automatic startup:

P1  ONE ``openiscsi.initiator.node`` task creating them, against two anchors, in rounds whose order rotates (node
    task, iscsiadm loop, incumbent; then iscsiadm loop, incumbent, node task; ...), each run on a fresh node DB,
    medians of ``--rounds``:
    - the incumbent, ``community.general.open_iscsi`` in a loop (PyPI ``ansible`` 12.x bundle).  It cannot create a
      record without discovery, so its records are created beforehand with ``iscsiadm -m node -o new`` (not timed);
      it is given the CHAP options but writes CHAP only right before a login (which needs a kernel transport), so it
      sets node.startup and nothing else: LESS work than the node task.  The output says what it did (records with
      startup set, with CHAP set).  It costs a module run per record (~0.3 s on the build machine), so above
      ``--incumbent-cap`` (default 256) it is run at the cap and its time scaled per record (said in the output).
    - a plain shell loop of iscsiadm doing the full work per record: ``-o new``, then one ``-o update`` with
      node.startup, authmethod, username and password (the secret on iscsiadm's command line: benchmark only).  Every
      iscsiadm call reads the whole node DB, so its cost grows faster than the record count (2.4 s at 256, ~440 s at
      4096 on the build machine); above ``--loop-cap`` (default 1024) it is run at the cap and scaled per record,
      which understates it (said in the output).
    Goals: P1 >= 40x at every count; >= 4x faster than the iscsiadm loop at 256 records and above; creating 4096
    records <= 3 s.
P2  the same node task again with nothing to change, against a one-task ``ansible.builtin.ping`` play (the two plays
    alternate, medians of ``--repeat``).  Goals: <= 1.1x at 256, <= 1.5x at 4096.
A missed goal is printed as MISSED; it does not fail the run.

Runs on this host in one go, no lab: as root, inside private mount and network namespaces (``unshare -m -n``) with a
temporary directory over /etc/iscsi and a tmpfs over /run/lock, so the machine's own node DB is never touched.  Plays
run against localhost (ansible_connection=local) with the bundle's ansible-playbook from ``.build/bench-venv``
(created on first use: ``python3 -m venv`` + ``pip install 'ansible>=12,<13'``).

iscsid stand-in: ``iscsiadm -m node`` asks iscsid (over its abstract UNIX socket) which iscsid.conf it uses; with no
iscsid it tries to start one and waits about a second.  Both our task and the anchors run with a stand-in thread of
this script listening on that socket (``@ISCSIADM_ABSTRACT_NAMESPACE``, in the private network namespace, so a real
iscsid of the host is neither replaced nor reached).  It answers MGMT_IPC_CONFIG_FILE with /etc/iscsi/iscsid.conf
and every other request (login, logout, discovery, session info, ...) with ISCSI_ERR_INVALID_MGMT_REQ; it keeps no
state and does not log in.  The request/reply layout it relies on is described at ipc_reply; the output ends with
the requests it answered.

Timing: task durations come from the ``ansible.posix.json`` callback, the iscsiadm loop is wall-clock; P2 figures
are wall-clock times of whole ``ansible-playbook`` runs.  The load average is printed at the start and the end.

Usage (as root): ``python3 benchmarks/node_bulk.py [--records 64,256,1024,4096] [--rounds 3] [--repeat 5]
[--incumbent-cap 256] [--loop-cap 1024] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
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
    os.execvpe("unshare", ["unshare", "-m", "-n", "--propagation", "private", sys.executable, os.path.abspath(__file__)]
               + argv, env)


# ----------------------------------------------------------------------------- iscsid stand-in
# iscsiadm talks to iscsid over a stream socket in the abstract UNIX namespace.  Facts used (open-iscsi
# usr/mgmt_ipc.h, usr/iscsid_req.c): the request is a fixed-size C struct that starts with two native 32-bit ints,
# the command number and a payload length; the reply is a fixed-size struct that starts with the command number
# (echoed; iscsiadm rejects a reply for another command) and an ISCSI_ERR code (0 = success), followed by a union
# whose ``config`` member is a NUL-terminated path.  iscsiadm reads the reply with recv(MSG_WAITALL) for the
# struct's size, so a longer reply is fine and a shorter one is an error.
IPC_NAME = "ISCSIADM_ABSTRACT_NAMESPACE"
IPC_CONFIG_FILE = 10
IPC_INVALID_MGMT_REQ = 16  # ISCSI_ERR_INVALID_MGMT_REQ: what iscsid answers to a request it does not handle
IPC_HEADER = struct.Struct("=iI")
IPC_REPLY_SIZE = 16384  # >= sizeof(iscsiadm_rsp_t) (a few kB: its largest member is the statistics buffer)
IPC_NAMES = {1: "SESSION_LOGIN", 2: "SESSION_LOGOUT", 4: "SESSION_ACTIVESTAT", 5: "CONN_ADD", 6: "CONN_REMOVE",
             7: "SESSION_STATS", 8: "CONFIG_INAME", 9: "CONFIG_IALIAS", 10: "CONFIG_FILE", 11: "IMMEDIATE_STOP",
             12: "SESSION_SYNC", 13: "SESSION_INFO", 14: "ISNS_DEV_ATTR_QUERY", 15: "SEND_TARGETS",
             16: "NOTIFY_ADD_NODE", 17: "NOTIFY_DEL_NODE", 18: "NOTIFY_ADD_PORTAL", 19: "NOTIFY_DEL_PORTAL"}


def ipc_reply(request, config_file="/etc/iscsi/iscsid.conf"):
    """The stand-in's reply to one request (the bytes iscsiadm sent, at least the 8-byte header).

    Answers MGMT_IPC_CONFIG_FILE (which iscsid.conf iscsid uses) with success and *config_file*; every other
    command gets ISCSI_ERR_INVALID_MGMT_REQ.  Returns (command number, reply bytes); raises ValueError on a request
    shorter than its header."""
    if len(request) < IPC_HEADER.size:
        raise ValueError("an iscsiadm request starts with an %d-byte header, got %d bytes"
                         % (IPC_HEADER.size, len(request)))
    command, _payload_len = IPC_HEADER.unpack_from(request)
    if command == IPC_CONFIG_FILE:
        body = IPC_HEADER.pack(command, 0) + config_file.encode() + b"\0"
    else:
        body = IPC_HEADER.pack(command, IPC_INVALID_MGMT_REQ)
    return command, body.ljust(IPC_REPLY_SIZE, b"\0")


class IscsidStandIn:
    """A thread answering iscsiadm on iscsid's abstract socket (see ipc_reply for what it answers).

    It does not log in, log out, discover, or keep any state: it is there so that ``iscsiadm -m node`` does not
    wait a second for a daemon that is not running.  Binds in the current network namespace (the benchmark runs
    in a private one, so the host's iscsid, if any, is neither replaced nor disturbed)."""

    def __init__(self):
        self.counts = {}
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind("\0" + IPC_NAME)
        self.sock.listen(64)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    data = b""
                    while len(data) < IPC_HEADER.size:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    command, reply = ipc_reply(data)
                    name = IPC_NAMES.get(command, str(command))
                    self.counts[name] = self.counts.get(name, 0) + 1
                    conn.sendall(reply)
                    conn.settimeout(1)
                    while conn.recv(65536):  # the rest of the request, until iscsiadm closes
                        pass
                except (OSError, ValueError):
                    continue

    def close(self):
        self.sock.close()


class Bench:
    def __init__(self, playbook):
        self.playbook = playbook
        self.work = tempfile.mkdtemp(prefix="node-bulk-")
        self.inventory = os.path.join(self.work, "inventory.ini")
        with open(self.inventory, "w") as handle:
            handle.write("localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n")
        self.pristine = os.path.join(self.work, "pristine")
        os.mkdir(self.pristine)
        for name in ("iscsid.conf", "initiatorname.iscsi"):
            if os.path.exists(os.path.join("/etc/iscsi", name)):
                shutil.copy2(os.path.join("/etc/iscsi", name), self.pristine)
        self.mounts = 0
        self.write_plays()

    def use(self, records):
        """Write the play variables (and the iscsiadm loop's input) for *records* records."""
        self.n = records
        self.vars_file = os.path.join(self.work, "vars%d.json" % records)
        self.nodes = [{"target": "iqn.2001-04.com.example:bench.lun%04d" % i,
                       "portal": "10.77.%d.%d:3260" % (i // 250, i % 250 + 1),
                       "user": "initiator%04d" % i, "secret": "%s%04d" % (SECRET_BASE, i)} for i in range(records)]
        entries = [{"target": n["target"], "portal": n["portal"], "startup": "automatic",
                    "auth": {"username": n["user"], "password": n["secret"]}} for n in self.nodes]
        with open(self.vars_file, "w") as handle:
            json.dump({"bench_nodes": self.nodes, "node_entries": entries}, handle)
        self.loop_input = os.path.join(self.work, "loop%d.txt" % records)
        with open(self.loop_input, "w") as handle:
            for n in self.nodes:
                handle.write("%s %s %s %s\n" % (n["target"], n["portal"], n["user"], n["secret"]))

    # ----------------------------------------------------------------- environment
    def fresh_db(self):
        """A new empty node DB over /etc/iscsi (and /var/lib/iscsi when the host has it); the previous one's
        mounts are taken off first, so that mounts do not pile up over hundreds of runs."""
        for _mount in range(self.mounts):
            subprocess.run(["umount", "-l", "/run/lock"], check=False)
            for target in ("/etc/iscsi", "/var/lib/iscsi"):
                if os.path.isdir(target):
                    subprocess.run(["umount", "-l", target], check=False)
        old = getattr(self, "db", None)
        if old:
            shutil.rmtree(old, ignore_errors=True)
        db = tempfile.mkdtemp(prefix="db-", dir=self.work)
        for name in os.listdir(self.pristine):
            shutil.copy2(os.path.join(self.pristine, name), db)
        for target in ("/etc/iscsi", "/var/lib/iscsi"):
            if os.path.isdir(target):
                subprocess.run(["mount", "--bind", db, target], check=True)
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run/lock"], check=True)
        self.mounts = 1
        self.db = db
        return db

    def iscsiadm_loop(self):
        """The second anchor: a plain shell loop doing the full work per record with iscsiadm (create, then one
        update for startup and CHAP); returns its wall-clock seconds."""
        script = ('while read t p u s; do iscsiadm -m node -o new -T "$t" -p "$p" >/dev/null || exit 1; '
                  'iscsiadm -m node -T "$t" -p "$p" -o update -n node.startup -v automatic '
                  '-n node.session.auth.authmethod -v CHAP -n node.session.auth.username -v "$u" '
                  '-n node.session.auth.password -v "$s" || exit 1; done < "$1"')
        start = time.monotonic()
        proc = subprocess.run(["sh", "-c", script, "sh", self.loop_input], capture_output=True, text=True,
                              check=False)
        wall = time.monotonic() - start
        if proc.returncode != 0:
            raise SystemExit("the iscsiadm loop failed: %s" % proc.stderr[-2000:])
        return wall

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
        nodes = self.nodes
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


def median(values):
    return statistics.median(values) if values else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", default="64,256,1024,4096", help="record counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=3,
                        help="P1 rounds per count; each round runs the node task, the iscsiadm loop and the incumbent "
                             "loop once, each on a fresh DB, in an order that rotates (medians taken)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each P2 play, alternating (median taken)")
    parser.add_argument("--incumbent-cap", type=int, default=256,
                        help="largest count the incumbent loop is run at (a module run per record); above it its "
                             "time is extrapolated per record from the run at the cap, and the output says so")
    parser.add_argument("--loop-cap", type=int, default=1024,
                        help="largest count the iscsiadm loop is run at (each of its iscsiadm calls reads the whole "
                             "node DB: 2.4 s at 256 records, ~440 s at 4096 on the build machine); above it its time is "
                             "extrapolated per record from the run at the cap, which understates it (conservative)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    counts = [int(c) for c in args.records.split(",") if c.strip()]
    reexec_in_namespace(sys.argv[1:])
    ensure_pyroot()
    try:
        standin = IscsidStandIn()
    except OSError as exc:
        sys.exit("cannot bind iscsid's socket in the benchmark's network namespace: %s" % exc)
    bench = Bench(ensure_venv())
    load = os.getloadavg()
    print("load average at start: %.2f %.2f %.2f; iscsid stand-in on @%s" % (load + (IPC_NAME,)), flush=True)
    figures = {"load_start": load, "counts": {}}
    incumbent_runs = {}  # measured count -> [(task s, startup set, CHAP set, secret echoed)]
    loop_runs = {}  # measured count -> [wall s]

    def run_node(n):
        bench.use(n)
        bench.fresh_db()
        bench.play("ping")  # warm caches (ansible's, the page cache) before anything is timed
        _wall, task, result = bench.play("node")
        assert result.get("changed") is True and result["summary"]["create"] == n, result.get("summary")
        done = count_records(["node.startup = automatic", "node.session.auth.authmethod = CHAP",
                              "node.session.auth.password = " + SECRET_BASE])
        assert done == n, "only %d of %d records hold CHAP and automatic startup" % (done, n)
        return task, result["commands"]

    def run_loop(n):
        bench.use(n)
        bench.fresh_db()
        wall = bench.iscsiadm_loop()
        done = count_records(["node.startup = automatic", "node.session.auth.authmethod = CHAP",
                              "node.session.auth.password = " + SECRET_BASE])
        assert done == n, "the iscsiadm loop left %d of %d records complete" % (done, n)
        return wall

    def run_incumbent(m):
        bench.use(m)
        bench.fresh_db()
        bench.precreate()
        _wall, task, result = bench.play("incumbent")
        auto = count_records(["node.startup = automatic"])
        chap = count_records(["node.session.auth.authmethod = CHAP"])
        return task, auto, chap, result["_secret_in_output"]

    for n in counts:
        m = min(n, args.incumbent_cap)
        lm = min(n, args.loop_cap)
        print("== %d records with CHAP and automatic startup: %d rounds, order rotating" % (n, args.rounds),
              flush=True)
        node = []
        runners = [("node", lambda: node.append(run_node(n))),
                   ("loop", lambda: loop_runs.setdefault(lm, []).append(run_loop(lm))),
                   ("incumbent", lambda: incumbent_runs.setdefault(m, []).append(run_incumbent(m)))]
        for rnd in range(args.rounds):
            order = runners[rnd % 3:] + runners[:rnd % 3]
            for name, runner in order:
                if name == "incumbent" and len(incumbent_runs.get(m, [])) > rnd:
                    continue  # measured at this count already (capped): reused
                if name == "loop" and len(loop_runs.get(lm, [])) > rnd:
                    continue
                runner()
        node_task = median([t for t, _c in node])
        loop = loop_runs[lm]
        loop_wall = median(loop) * n / lm
        inc = incumbent_runs[m]
        inc_task = median([r[0] for r in inc]) * n / m
        auto, chap = inc[-1][1], inc[-1][2]
        print("   openiscsi.initiator.node, one task:  task %7.2f s  (runs %s; %d iscsiadm commands)"
              % (node_task, " ".join("%.2f" % t for t, _c in node), node[-1][1]))
        print("   iscsiadm shell loop (new + update):  wall %7.2f s  (runs %s at %d records%s)"
              % (loop_wall, " ".join("%.2f" % w for w in loop), lm,
                 "" if lm == n else ", x %d/%d per record: not run at %d, capped by --loop-cap=%d; its real cost "
                 "grows faster than that (every call reads the whole DB), so this favours the loop"
                 % (n, lm, n, args.loop_cap)))
        print("   community.general.open_iscsi loop:   task %7.2f s  (runs %s at %d records%s)"
              % (inc_task, " ".join("%.2f" % r[0] for r in inc), m,
                 "" if m == n else ", x %d/%d per record: not run at %d, capped by --incumbent-cap=%d because it "
                 "runs a module per record" % (n, m, n, args.incumbent_cap)))
        print("      its work: node.startup=automatic on %d of %d pre-created records, CHAP on %d (it writes CHAP "
              "only right before a login, which it was not asked for); records pre-created with iscsiadm -o new, "
              "not timed%s" % (auto, m, chap, "; its loop output echoes the CHAP secrets" if inc[-1][3] else ""))
        p1 = inc_task / node_task
        print("P1 %5d: node task %.2f s vs incumbent loop %.2f s%s: %.1fx (goal >= 40x: %s)"
              % (n, node_task, inc_task, "" if m == n else " (extrapolated)", p1, "met" if p1 >= 40 else "MISSED"))
        entry = {"node_task": node_task, "node_runs": [t for t, _c in node], "node_commands": node[-1][1],
                 "iscsiadm_loop": loop_wall, "iscsiadm_loop_runs": loop, "iscsiadm_loop_measured_at": lm, "incumbent_task": inc_task,
                 "incumbent_measured_at": m, "incumbent_runs": [r[0] for r in inc], "incumbent_startup_set": auto,
                 "incumbent_chap_set": chap, "p1": p1}
        ratio = loop_wall / node_task
        entry["vs_iscsiadm_loop"] = ratio
        if n >= 256:
            print("   vs iscsiadm loop: %.1fx faster (goal >= 4x at 256 and above: %s)"
                  % (ratio, "met" if ratio >= 4 else "MISSED"))
        else:
            print("   vs iscsiadm loop: %.1fx faster (no goal below 256 records)" % ratio)
        if n == 4096:
            print("   creating 4096 records: %.2f s (goal <= 3 s: %s)"
                  % (node_task, "met" if node_task <= 3 else "MISSED"))

        walls, tasks, pings = [], [], []
        run_node(n)  # the records P2 finds in place (the last round may have ended with an anchor's DB)
        for _run in range(args.repeat):
            wall2, task2, result2 = bench.play("node")
            assert result2.get("changed") is False and result2["commands"] == 0, result2.get("summary")
            walls.append(wall2)
            tasks.append(task2)
            pings.append(bench.play("ping")[0])
        p2 = median(walls) / median(pings)
        goal = {256: 1.1, 4096: 1.5}.get(n)
        print("   no change: node play %.2f s (task %.2f s; plays %s), ping play %.2f s (plays %s)"
              % (median(walls), median(tasks), " ".join("%.2f" % w for w in walls), median(pings),
                 " ".join("%.2f" % w for w in pings)))
        print("P2 %5d: no-change node play vs ping play: %.2fx%s" % (
            n, p2, "" if goal is None else " (goal <= %.1fx: %s)" % (goal, "met" if p2 <= goal else "MISSED")),
            flush=True)
        entry.update(node_noop_play=median(walls), node_noop_task=median(tasks), ping_play=median(pings), p2=p2,
                     node_noop_plays=walls, ping_plays=pings)
        figures["counts"][n] = entry

    figures["load_end"] = os.getloadavg()
    figures["iscsid_requests"] = standin.counts
    print("load average at the end: %.2f %.2f %.2f; iscsid stand-in answered: %s"
          % (figures["load_end"] + (", ".join("%s x%d" % kv for kv in sorted(standin.counts.items())) or "nothing",)))
    standin.close()
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)
    shutil.rmtree(bench.work, ignore_errors=True)


if __name__ == "__main__":
    main()
