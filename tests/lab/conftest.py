# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``lab`` fixture: a real-kernel iSCSI lab (lab/labctl) for tests marked ``lab``.

``lab`` (session scope) starts the lab unless one is up (``lab/labctl up``), and stops it at the end of the
session when it started it -- also when tests fail or the run is interrupted -- unless ``LAB_REUSE=1``.

API: ``lab.hosts`` (name -> host data), ``lab.data`` (lab.json), ``lab.initiators``, ``lab.target(key)``,
``lab.ssh(host, cmd, check=True)``, ``lab.module(host, name, args, check=False, diff=False)``,
``lab.playbook(path, extra_vars=None, check=False, diff=False)``, ``lab.cut_path(host)``,
``lab.restore_path(host)``, ``lab.tgtd(action)``, ``lab.sessions(host)``, ``lab.wait_for(fn, timeout)``.
"""

from __future__ import annotations

import atexit
import importlib.machinery
import importlib.util
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LABCTL = os.path.join(REPO, "lab", "labctl")
RUNTIME = os.path.join(REPO, ".build", "runtime")
COLLECTION = "openiscsi.initiator"


def _load_labctl():
    loader = importlib.machinery.SourceFileLoader("openiscsi_labctl", LABCTL)
    spec = importlib.util.spec_from_loader("openiscsi_labctl", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


labctl = _load_labctl()

# The callback plugin that collects every task result of a run into LAB_RESULTS_FILE.
CALLBACK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "callback_plugins")


def _runtime_tree() -> str:
    """A symlinked ansible_collections tree onto the live checkout (edits are seen at once)."""
    ns = os.path.join(RUNTIME, "ansible_collections", "openiscsi")
    link = os.path.join(ns, "initiator")
    os.makedirs(ns, exist_ok=True)
    if os.path.realpath(link) != REPO:
        if os.path.islink(link) or os.path.exists(link):
            os.unlink(link)
        os.symlink(REPO, link)
    return RUNTIME


def _ansible_bin(name: str) -> str:
    cand = os.path.join(os.path.dirname(sys.executable), name)
    if os.access(cand, os.X_OK):
        return cand
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found (make venv)")
    return found


class Lab:
    """Handle on a running lab (see module docstring)."""

    def __init__(self):
        self._ctl = labctl.Lab()
        self.state_dir = self._ctl.dir
        self.reload()
        _runtime_tree()

    # ---- data
    def reload(self) -> None:
        self.data = self._ctl.data()
        self.hosts = self.data["hosts"]
        self.inventory = self.data["inventory"]

    @property
    def initiators(self) -> list[str]:
        return list(self.data["initiators"])

    def target(self, key: str) -> dict:
        """One target of the lab by key ('open', 'chap', 'mutual', 'acl') or id ('A'..'D')."""
        for k, t in self.data["targets"].items():
            if key in (k, t["id"]):
                return t
        raise KeyError(key)

    def portal(self, index: int = 0) -> str:
        p = self.data["portals"][index]
        return f"{p['address']}:{p['port']}"

    def portals(self) -> list[str]:
        """Every lab portal as ``address:port``."""
        return [self.portal(i) for i in range(len(self.data["portals"]))]

    def target_iqns(self) -> list[str]:
        return sorted(t["iqn"] for t in self.data["targets"].values())

    # ---- target and initiator state shared by several test files
    def discovery_chap(self, on: bool) -> None:
        """Require (on) or drop (off) CHAP for SendTargets discovery (``labctl discovery-chap``)."""
        self._ctl.set_discovery_chap(on)
        self.reload()

    def db_root(self, host: str) -> str:
        """The node DB in use on *host*: /var/lib/iscsi (open-iscsi >= 2.1.10-3, Debian 13) or /etc/iscsi."""
        return self.ssh(host, "if [ -d /var/lib/iscsi/nodes ] || [ ! -d /etc/iscsi/nodes ] && dpkg --compare-versions "
                              "\"$(dpkg-query -W -f='${Version}' open-iscsi)\" ge 2.1.10-3; then echo /var/lib/iscsi; "
                              "else echo /etc/iscsi; fi").stdout.strip()

    def forget_targets(self, host: str, extra: str = "") -> None:
        """Log *host* out of every lab target and delete their node records, static links and the lab portals'
        discovery records (by iscsiadm, then from both node DB roots); *extra* is one more shell command to run."""
        cmds = []
        for iqn in self.target_iqns():
            cmds.append("iscsiadm -m node -T %s -u >/dev/null 2>&1" % shlex.quote(iqn))
            cmds.append("iscsiadm -m node -T %s -o delete >/dev/null 2>&1" % shlex.quote(iqn))
        for portal in self.portals():
            cmds.append("iscsiadm -m discoverydb -t st -p %s -o delete >/dev/null 2>&1" % portal)
        for root in ("/etc/iscsi", "/var/lib/iscsi"):
            for iqn in self.target_iqns():
                cmds.append("rm -rf %s/nodes/%s" % (root, shlex.quote(iqn)))
                cmds.append("rm -f %s/static/%s,*" % (root, shlex.quote(iqn)))
            for p in self.data["portals"]:
                cmds.append("rm -rf %s/send_targets/%s,%d" % (root, p["address"], p["port"]))
        if extra:
            cmds.append(extra)
        self.ssh(host, "; ".join(cmds) + "; true")

    # ---- shell
    def ssh(self, host: str, cmd, check: bool = True, timeout: float = 300, input: str | None = None):
        """Run a shell command on a lab host as root; CompletedProcess with text stdout/stderr."""
        if not isinstance(cmd, str):
            cmd = shlex.join(cmd)
        port = self.hosts[host]["ssh_port"]
        res = subprocess.run(self._ctl.ssh_cmd(port) + [cmd], check=False, capture_output=True, text=True, timeout=timeout,
                             input=input, stdin=None if input is not None else subprocess.DEVNULL)
        if check and res.returncode != 0:
            raise AssertionError(f"{host}: `{cmd}` exited {res.returncode}\nstdout: {res.stdout}\n"
                                 f"stderr: {res.stderr}")
        return res

    def labctl(self, *args: str, check: bool = True):
        res = subprocess.run([sys.executable, LABCTL, *args], check=False, capture_output=True, text=True, timeout=300)
        if check and res.returncode != 0:
            raise AssertionError(f"labctl {' '.join(args)} exited {res.returncode}: {res.stderr}")
        return res

    # ---- ansible
    def _env(self, results_file: str) -> dict:
        env = dict(os.environ)
        env.update({
            "ANSIBLE_COLLECTIONS_PATH": _runtime_tree(),
            "ANSIBLE_CALLBACK_PLUGINS": CALLBACK_DIR,
            "ANSIBLE_CALLBACKS_ENABLED": "lab_results",
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_DEPRECATION_WARNINGS": "False",
            "LAB_RESULTS_FILE": results_file,
        })
        return env

    def _run_playbook(self, playbook: str, extra_vars=None, check=False, diff=False, limit=None):
        fd, results_file = tempfile.mkstemp(prefix="lab-results-", suffix=".json")
        os.close(fd)
        try:
            cmd = [_ansible_bin("ansible-playbook"), "-i", self.inventory, playbook]
            vars_file = None
            if extra_vars:
                fd, vars_file = tempfile.mkstemp(prefix="lab-vars-", suffix=".json")
                with os.fdopen(fd, "w") as fh:
                    json.dump(extra_vars, fh)
                cmd += ["-e", "@" + vars_file]
            if check:
                cmd.append("--check")
            if diff:
                cmd.append("--diff")
            if limit:
                cmd += ["--limit", limit]
            try:
                res = subprocess.run(cmd, check=False, capture_output=True, text=True, env=self._env(results_file),
                                     timeout=900, cwd=REPO)
            finally:
                if vars_file:
                    os.unlink(vars_file)
            try:
                with open(results_file) as fh:
                    res.results = json.load(fh) if os.path.getsize(results_file) else []
            except (OSError, ValueError):
                res.results = []
            return res
        finally:
            os.unlink(results_file)

    def playbook(self, path: str, extra_vars=None, check: bool = False, diff: bool = False, limit=None):
        """Run a playbook against the lab inventory. CompletedProcess (text) plus ``.results``: one dict
        per task and host (host, task, action, status, result). Does not raise on failure."""
        return self._run_playbook(os.path.abspath(path), extra_vars, check, diff, limit)

    def module(self, host: str, name: str, args: dict | None = None, check: bool = False,
               diff: bool = False) -> dict:
        """Run one module on one host; returns its result dict (with ``failed`` on failure, ``diff`` when
        diff=True and the module returns one, and ``_raw``: that result as JSON plus ansible's whole output).
        ``name`` without a dot means openiscsi.initiator.<name>."""
        fqcn = name if "." in name else f"{COLLECTION}.{name}"
        play = [{"name": "lab.module", "hosts": host, "gather_facts": False,
                 "tasks": [{"name": f"lab {fqcn}", fqcn: dict(args or {})}]}]
        fd, path = tempfile.mkstemp(prefix="lab-module-", suffix=".yml")
        with os.fdopen(fd, "w") as fh:
            json.dump(play, fh)
        try:
            res = self._run_playbook(path, check=check, diff=diff)
        finally:
            os.unlink(path)
        mine = [r for r in res.results if r["host"] == host]
        if not mine:
            raise AssertionError(f"no result for {fqcn} on {host} (rc {res.returncode})\n{res.stdout}\n{res.stderr}")
        r = mine[-1]
        if r["status"] == "unreachable":
            raise AssertionError(f"{host} unreachable: {r['result'].get('msg')}")
        out = {k: v for k, v in r["result"].items() if not k.startswith("_ansible")}
        out.setdefault("failed", r["status"] == "failed")
        out.setdefault("changed", False)
        # Everything the run showed, for "no secret anywhere" checks: the result as JSON plus ansible's output.
        out["_raw"] = json.dumps(out, default=str, sort_keys=True) + "\n" + res.stdout + res.stderr
        return out

    # ---- faults
    def cut_path(self, host: str) -> None:
        """Drop host's link to the target (target side, like a pulled cable)."""
        self.labctl("cut", host)

    def restore_path(self, host: str) -> None:
        self.labctl("restore", host)

    def tgtd(self, action: str) -> str:
        """start|stop|restart|kill|status the target VM's tgtd."""
        return self.labctl("tgtd", action, check=action != "status").stdout.strip()

    # ---- helpers
    def sessions(self, host: str) -> list[dict]:
        """iSCSI sessions of a host straight from its sysfs: sid, targetname, state, conn_state, address,
        disks (block device names)."""
        script = r'''
for s in /sys/class/iscsi_session/session*; do
  [ -d "$s" ] || continue
  sid=${s##*session}
  printf 'S %s %s %s\n' "$sid" "$(cat $s/targetname 2>/dev/null)" "$(cat $s/state 2>/dev/null)"
  for c in /sys/class/iscsi_connection/connection$sid:*; do
    [ -d "$c" ] || continue
    printf 'C %s %s %s\n' "$(cat $c/state 2>/dev/null || echo unknown)" \
      "$(cat $c/persistent_address 2>/dev/null)" "$(cat $c/persistent_port 2>/dev/null)"
  done
  for b in $s/device/target*/*/block/*; do [ -e "$b" ] || continue; printf 'B %s\n' "${b##*/}"; done
done
exit 0
'''
        out = self.ssh(host, script).stdout
        sessions = []
        for line in out.splitlines():
            f = line.split()
            if not f:
                continue
            if f[0] == "S":
                sessions.append({"sid": int(f[1]), "targetname": f[2] if len(f) > 2 else "",
                                 "state": f[3] if len(f) > 3 else "", "conn_state": None,
                                 "address": None, "port": None, "disks": []})
            elif f[0] == "C" and sessions:
                sessions[-1].update(conn_state=f[1], address=f[2] if len(f) > 2 else None,
                                    port=int(f[3]) if len(f) > 3 and f[3].isdigit() else None)
            elif f[0] == "B" and sessions:
                sessions[-1]["disks"].append(f[1])
        return sessions

    @staticmethod
    def wait_for(fn, timeout: float = 30, interval: float = 1.0, what: str = "condition"):
        """Poll fn() until it returns a truthy value; return it, or fail after timeout seconds."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            last = fn()
            if last:
                return last
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
            time.sleep(interval)


def pytest_collection_modifyitems(session, config, items):  # pylint: disable=unused-argument
    """Reboot tests (test_boot_*.py) run last, so that a boot that goes wrong cannot take the others down with it."""
    items.sort(key=lambda item: os.path.basename(str(item.fspath)).startswith("test_boot_"))


def _answers(lab_obj, host) -> bool:
    try:
        res = lab_obj.ssh(host, "true", check=False, timeout=30)
    except subprocess.TimeoutExpired:
        return False
    return res.returncode == 0


@pytest.fixture(autouse=True)
def _hosts_still_answer(request):
    """After each lab test every initiator must still answer SSH.  One that does not is reset over QMP (and waited
    for) so that the next tests find a working VM, and the test that left it so gets an error naming the host."""
    yield
    if "lab" not in request.fixturenames:
        return
    lab_obj = request.getfixturevalue("lab")
    dead = []
    for host in lab_obj.initiators:
        if _answers(lab_obj, host):
            continue
        sys.path.insert(0, os.path.join(REPO, "lab"))
        import rootiscsi  # pylint: disable=import-outside-toplevel
        rootiscsi._drop_control_master(lab_obj._ctl, host)  # pylint: disable=protected-access
        if _answers(lab_obj, host):
            continue
        offset = rootiscsi._console_size(lab_obj._ctl, host)  # pylint: disable=protected-access
        rootiscsi.qmp(lab_obj._ctl, host, "system_reset")
        try:
            rootiscsi.wait_boot(lab_obj._ctl, host, None, 400, console_offset=offset)
            dead.append("%s (reset over QMP so that the next tests can run)" % host)
        except rootiscsi.BootError as exc:
            dead.append("%s (a reset did not bring it back: %s)" % (host, exc))
    if dead:
        pytest.fail("stopped answering SSH after this test: %s" % "; ".join(dead))


_started_by_us = {"flag": False, "done": False}


def _teardown() -> None:
    if _started_by_us["flag"] and not _started_by_us["done"]:
        _started_by_us["done"] = True
        if os.environ.get("LAB_REUSE") == "1":
            return
        subprocess.run([sys.executable, LABCTL, "down"], timeout=120, check=False)


def _on_sigterm(signum, frame):
    _teardown()
    raise SystemExit(128 + signum)


@pytest.fixture(scope="session")
def lab():
    status = subprocess.run([sys.executable, LABCTL, "status", "--json"], check=False, capture_output=True, text=True)
    if status.returncode != 0:
        _started_by_us["flag"] = True
        atexit.register(_teardown)
        with_sigterm = signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None)
        if with_sigterm:
            signal.signal(signal.SIGTERM, _on_sigterm)
        n = os.environ.get("LAB_INITIATORS", "1")
        t0 = time.monotonic()
        up = subprocess.run([sys.executable, LABCTL, "up", "--initiators", n], text=True, check=False)
        if up.returncode != 0:
            _teardown()
            pytest.fail(f"lab/labctl up failed (rc {up.returncode})")
        sys.stderr.write(f"\nlab up in {time.monotonic() - t0:.0f} s\n")
    try:
        yield Lab()
    finally:
        _teardown()
