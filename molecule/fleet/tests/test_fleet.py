# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""testinfra verifier of molecule/fleet: the rollout converge.yml did, then the fault run and wait's reaction time.

Tests run in file order: first the per-host checks of the rollout (new version, sessions, kernel log, records),
then the fault run (host 2's path cut before its batch: the rollout must stop there), then the reaction time of
session_check's wait on the recovering host, then the final record check with the writers stopped.  Figures are
printed (run with -s) and collected in $MOLECULE_EPHEMERAL_DIRECTORY/fleet-figures.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

EPHEMERAL = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.path.join(os.path.dirname(__file__), "..", "..", ".."))
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
LABCTL = os.environ.get("LABCTL") or os.path.join(PROJECT, "lab", "labctl")
HOSTS = ["init1", "init2", "init3"]
RECORDS = "/mnt/fleet/records.log"
IO_ERROR_RE = re.compile(r"I/O error|EXT4-fs error|Buffer I/O|rejecting I/O|blk_update_request|critical medium",
                         re.I)
FIGURES = os.environ.get("FLEET_FIGURES") or os.path.join(EPHEMERAL, "fleet-figures.json")


def figure(key, value):
    """Record a measured figure (printed now, kept in fleet-figures.json)."""
    data = {}
    if os.path.exists(FIGURES):
        with open(FIGURES) as handle:
            data = json.load(handle)
    data[key] = value
    with open(FIGURES, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
    print("FIGURE %s = %s" % (key, json.dumps(value, sort_keys=True)))


def ssh(host, cmd, check=True, timeout=120):
    res = subprocess.run([sys.executable, LABCTL, "ssh", host, cmd], capture_output=True, text=True,
                         timeout=timeout, check=False)
    if check and res.returncode != 0:
        raise AssertionError("%s: %r exited %d: %s" % (host, cmd, res.returncode, res.stderr))
    return res.stdout


def labctl(*args):
    subprocess.run([sys.executable, LABCTL] + list(args), check=True, capture_output=True, text=True, timeout=60)


def rollout():
    with open(os.path.join(EPHEMERAL, "rollout.json")) as handle:
        return json.load(handle)


def check_records(text):
    """Validate the writer's records: every complete line's checksum, contiguous sequence numbers."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        lines.pop()  # an incomplete last line (being written while read)
    bad, prev_seq, prev_t, max_gap, gaps = [], None, None, 0.0, 0
    for n, line in enumerate(lines):
        parts = line.split(" ")
        if len(parts) != 4 or hashlib.sha256(" ".join(parts[:3]).encode()).hexdigest() != parts[3]:
            bad.append(n)
            continue
        seq, t = int(parts[0]), float(parts[1])
        if prev_seq is not None and seq != prev_seq + 1:
            gaps += 1
        if prev_t is not None:
            max_gap = max(max_gap, t - prev_t)
        prev_seq, prev_t = seq, t
    return {"records": len(lines), "bad": len(bad), "sequence_gaps": gaps, "longest_pause_s": round(max_gap, 2)}


def fleet_session(host):
    """(state, recovery_tmo) of the host's session to its own fleet target, read from sysfs."""
    out = ssh(host, "for s in /sys/class/iscsi_session/session*; do echo $(cat $s/targetname) $(cat $s/state) "
                    "$(cat $s/recovery_tmo); done")
    for line in out.splitlines():
        name, state, tmo = line.split()
        if name.endswith(":fleet-" + host):
            return state, tmo
    return None, None


# --------------------------------------------------------------------------------------------------- the rollout
def test_every_host_runs_the_new_version(host):
    name = host.backend.get_hostname()
    version = host.package("open-iscsi").version
    assert version.endswith("+lab1"), version
    report = rollout()[name]
    assert report["version_after"] == version and report["upgraded"] is True
    assert report["version_before"] + "+lab1" == version
    # Debian's real maintainer scripts ran: dpkg's log shows the upgrade and the configure step.
    log = host.file("/var/log/dpkg.log").content_string
    assert "upgrade open-iscsi:amd64 %s %s" % (report["version_before"], version) in log
    assert "status installed open-iscsi:amd64 %s" % version in log


def test_pre_gate_probed_the_target_without_touching_the_session(host):
    """rolling_upgrade_probe: true (converge.yml): session_check's probe logged in to the host's target in a
    session of its own (pure Python, its own ISID) and read its LUN; the kernel's session stayed the only one."""
    name = host.backend.get_hostname()
    probes = rollout()[name]["probes"]
    assert probes and len(probes) == 1, probes
    probe = probes[0]
    assert probe["target"] == "iqn.2025-01.lab.openiscsi:fleet-%s" % name and probe["portal"] == "10.213.0.1:3260"
    assert probe["reachable"] is True and probe["authenticated"] is True and probe["error"] is None, probe
    assert [lun for lun in probe["luns"] if lun.get("size_bytes")], probe["luns"]
    assert rollout()[name]["sessions"] == 1


def test_iscsid_was_restarted_and_recovery_tmo_restored(host):
    name = host.backend.get_hostname()
    report = rollout()[name]
    assert report["iscsid"]["restarted_by"] in ("package", "role")
    assert report["iscsid"]["pid_after"] != report["iscsid"]["pid_before"]
    assert host.run("systemctl show -p MainPID --value iscsid.service").stdout.strip() == report["iscsid"]["pid_after"]
    # The record says 30 s: raised to 120 for the restart, 30 again now.
    assert [c["after"] for c in report["recovery_tmo_raised"]] == ["120"]
    state, tmo = fleet_session(name)
    assert (state, tmo) == ("LOGGED_IN", "30")


def test_sessions_logged_in(host):
    states = host.run("cat /sys/class/iscsi_session/session*/state").stdout.split()
    assert states and set(states) == {"LOGGED_IN"}
    assert host.mount_point("/mnt/fleet").exists


def test_no_io_errors_in_the_kernel_log(host):
    log = host.run("dmesg").stdout
    errors = [ln for ln in log.splitlines() if IO_ERROR_RE.search(ln)]
    assert errors == []
    figure("conn_errors_during_rollout." + host.backend.get_hostname(), log.count("detected conn error"))


def test_every_record_is_valid(host):
    result = check_records(host.file(RECORDS).content_string)
    assert result["records"] > 100 and result["bad"] == 0 and result["sequence_gaps"] == 0
    figure("records_after_rollout." + host.backend.get_hostname(), result)
    assert "write error" not in host.run("journalctl -u lab-fleet-writer --no-pager").stdout


def test_rollout_figures():
    reports = rollout()
    assert sorted(reports) == HOSTS
    for name in HOSTS:
        sec = reports[name]["seconds"]
        figure("rollout_seconds." + name, {"total": sec["total"], "package": sec["package"],
                                           "gate_overhead": sec["overhead"], "pre_gate": sec["pre_gate"],
                                           "restart_and_health": sec["restart_and_health"],
                                           "post_gate": sec["post_gate"],
                                           "health_wait": reports[name]["health_wait"]})


# --------------------------------------------------------------------------------------------------- check mode
def run_playbook(*extra):
    cmd = [shutil.which("ansible-playbook") or "ansible-playbook", "-i", INVENTORY,
           os.path.join(PROJECT, "playbooks", "rolling_upgrade.yml"), "-e", "rolling_upgrade_hosts=initiators"]
    t0 = time.monotonic()
    res = subprocess.run(cmd + list(extra), capture_output=True, text=True, timeout=1800, check=False,
                         env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"))
    return res, round(time.monotonic() - t0, 1)


def host_state(name):
    """What a rollout would change: package version, iscsid's pid, the fleet session's recovery_tmo, dpkg's log."""
    return {"version": ssh(name, "dpkg-query -W -f='${Version}' open-iscsi"),
            "iscsid": ssh(name, "systemctl show -p MainPID --value iscsid.service").strip(),
            "session": fleet_session(name),
            "dpkg_log": ssh(name, "sha256sum /var/log/dpkg.log").split()[0]}


def test_check_mode_touches_nothing():
    """Serve +lab2 too (test set-up: the source and apt-get update on every guest), then run the rollout with
    --check: it must predict the upgrade on every host and change nothing."""
    for name in HOSTS:
        ssh(name, "echo 'deb [trusted=yes] file:/srv/lab-apt/lab2 ./' >> /etc/apt/sources.list.d/lab-fleet.list; "
                  "apt-get -qq update")
    before = dict((n, host_state(n)) for n in HOSTS)
    version = rollout()["init1"]["version_before"] + "+lab2"
    res, seconds = run_playbook("--check", "-e", "rolling_upgrade_version=%s" % version)
    figure("check_mode_playbook_s", seconds)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    for name in HOSTS:
        assert re.search(r"TASK \[[^\]]*Upgrade \| install the new package\][^\n]*\n\s*changed: \[%s\]" % name,
                         out), "no predicted upgrade for %s" % name
    assert dict((n, host_state(n)) for n in HOSTS) == before


# --------------------------------------------------------------------------------------------------- fault run
def test_fault_run_stops_at_host2():
    version = rollout()["init1"]["version_before"] + "+lab2"
    labctl("cut", "init2")
    t_cut = time.monotonic()
    deadline = t_cut + 90
    while fleet_session("init2")[0] == "LOGGED_IN":
        assert time.monotonic() < deadline, "init2's session did not notice the cut"
        time.sleep(1)
    figure("fault.session_failed_after_cut_s", round(time.monotonic() - t_cut, 1))
    res, seconds = run_playbook("-e", "rolling_upgrade_version=%s" % version)
    figure("fault.playbook_s", seconds)
    out = res.stdout + res.stderr
    print(out[-6000:])
    assert res.returncode != 0
    msg = re.search(r"rolling upgrade stopped at init2 \(pre-gate[^\n]*", out)
    assert msg, out[-3000:]
    figure("fault.message", msg.group(0)[:600])
    assert "iqn.2025-01.lab.openiscsi:fleet-init2 via 10.213.0.1:3260" in msg.group(0)
    assert re.search(r"session \d+ \(iqn.2025-01.lab.openiscsi:fleet-init2 .*: state (FAILED|FREE)", msg.group(0))
    versions = dict((n, ssh(n, "dpkg-query -W -f='${Version}' open-iscsi")) for n in HOSTS)
    figure("fault.versions", versions)
    assert versions["init1"] == version
    assert versions["init2"].endswith("+lab1") and versions["init3"].endswith("+lab1")
    # Host 3 was not reached at all: no package operation.
    assert "+lab2" not in ssh("init3", "cat /var/log/dpkg.log")
    assert "ok: [init3]" not in out and "changed: [init3]" not in out
    # Host 1 stayed healthy.
    assert fleet_session("init1")[0] == "LOGGED_IN"
    assert [ln for ln in ssh("init1", "dmesg").splitlines() if IO_ERROR_RE.search(ln)] == []
    # The real kernel refuses recovery_tmo writes while the session is down (EBUSY): recovery_tmo's restore says
    # so, naming the session, and the value stays.
    sid = ssh("init2", "grep -l fleet-init2 /sys/class/iscsi_session/session*/targetname").split("/")[4][7:]
    cmd = [shutil.which("ansible") or "ansible", "-i", INVENTORY, "init2", "-o", "-m", "openiscsi.initiator.recovery_tmo",
           "-a", json.dumps({"restore": [{"sid": int(sid), "targetname": "iqn.2025-01.lab.openiscsi:fleet-init2",
                                          "recovery_tmo": "31"}]})]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode != 0
    assert "session %s: cannot set recovery_tmo 30 -> 31: the kernel refused the write (EBUSY" % sid in res.stdout
    assert fleet_session("init2")[1] == "30"


def wait_until(fn, timeout, what, step=0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(step)


def test_wait_reacts_within_one_interval():
    """init2's path is cut (still, after the fault run).  A guest-side poller (10 ms) notes when its sessions are
    healthy again; session_check with wait (interval 0.2 s) polls meanwhile; then the path is restored.
    Reaction = the module's first healthy poll minus the poller's first healthy sample (both on the guest clock).
    The poller only knows the recovery happened between the start of its last unhealthy sample and the end of its
    first healthy one (under TCG that window is tens of ms), so the module may see it a little "before" the
    poller: what must not happen is a healthy poll that started before the poller's last unhealthy sample."""
    poller = (
        "import glob,time\n"
        "def ok():\n"
        "    try:\n"
        "        s=[open(p).read().strip() for p in glob.glob('/sys/class/iscsi_session/session*/state')]\n"
        "        c=[open(p).read().strip() for p in glob.glob('/sys/class/iscsi_connection/connection*/state')]\n"
        "        d=[open(p).read().strip() for p in "
        "glob.glob('/sys/class/iscsi_session/session*/device/target*/*:*/state')]\n"
        "        return bool(s) and set(s)=={'LOGGED_IN'} and set(c)<={'up'} and set(d)<={'running'}\n"
        "    except OSError:\n"
        "        return False\n"
        "end=time.time()+300\n"
        "last_bad=0.0\n"
        "while time.time()<end:\n"
        "    t0=time.time()\n"
        "    if ok():\n"
        "        open('/run/fleet-healthy-at','w').write('%.4f %.4f' % (time.time(), last_bad)); break\n"
        "    last_bad=t0\n"
        "    time.sleep(0.01)\n"
    )
    for attempt, settle in enumerate((10, 25)):
        if fleet_session("init2")[0] == "LOGGED_IN":
            labctl("cut", "init2")
            wait_until(lambda: fleet_session("init2")[0] != "LOGGED_IN", 90, "init2 to notice the cut", 1)
        ssh("init2", "rm -f /run/fleet-healthy-at; cat > /run/fleet-poller.py <<'EOF'\n%sEOF\n"
                     "systemd-run --unit=fleet-poller-%d --collect /usr/bin/python3 /run/fleet-poller.py"
            % (poller, attempt))
        cmd = [shutil.which("ansible") or "ansible", "-i", INVENTORY, "init2", "-o", "-m",
               "openiscsi.initiator.session_check", "-a", json.dumps({"wait": {"timeout": 300, "interval": 0.2}})]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
        # Restore only once the module runs (its AnsiballZ payload directory exists) and has had time to import
        # and poll (module start-up under TCG takes seconds).  If it still polled first after the recovery (its
        # report says so), try once more with a longer delay.
        wait_until(lambda: ssh("init2", "ls -d /tmp/ansible_*session_check_payload_* 2>/dev/null || true").strip(),
                   240, "session_check to start on init2")
        time.sleep(settle)
        t_restore = float(ssh("init2", "date +%s.%N"))
        labctl("restore", "init2")
        out, err = proc.communicate(timeout=400)
        assert proc.returncode == 0, out + err
        result = json.loads(out.split("=>", 1)[1])
        healthy_at, last_bad = [float(v) for v in wait_until(
            lambda: ssh("init2", "cat /run/fleet-healthy-at 2>/dev/null || true").strip(), 30, "the poller").split()]
        if result["wait"]["unhealthy_for"] is not None:
            break
    reaction = result["wait"]["checked_at"] - healthy_at
    figure("wait_reaction", {"interval_s": 0.2, "reaction_s": round(reaction, 3), "attempt": attempt + 1,
                             "polls": result["wait"]["polls"], "unhealthy_for_s": result["wait"]["unhealthy_for"],
                             "poller_window_s": round(healthy_at - last_bad, 3),
                             "recovery_after_restore_s": round(healthy_at - t_restore, 2)})
    assert result["healthy"] is True and result["wait"]["unhealthy_for"] is not None
    assert last_bad > 0  # the poller saw the session unhealthy at least once
    # Not healthy before it was (the module's poll itself takes a few ms to read: 0.05 s of slack) ...
    assert result["wait"]["checked_at"] >= last_bad - 0.05
    # ... and seen within one interval (plus the poller's 10 ms sampling and scheduling slack under TCG).
    assert reaction <= 0.2 + 0.15


def test_final_records_with_writers_stopped():
    for name in HOSTS:
        ssh(name, "systemctl stop lab-fleet-writer")
    for name in ("init1", "init3"):
        result = check_records(ssh(name, "cat %s" % RECORDS))
        figure("records_final." + name, result)
        assert result["bad"] == 0 and result["sequence_gaps"] == 0
        assert [ln for ln in ssh(name, "dmesg").splitlines() if IO_ERROR_RE.search(ln)] == []
    # init2 was cut for the fault run: its records are still all valid (no torn or corrupt record), though the
    # writer may have paused or logged errors while the path was down.
    result = check_records(ssh("init2", "cat %s" % RECORDS))
    figure("records_final.init2", result)
    assert result["bad"] == 0


@pytest.fixture(autouse=True)
def _need_molecule():
    if not EPHEMERAL or not INVENTORY:
        pytest.skip("run by molecule (make fleet)")
