# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The role's metrics timer on a lab initiator: installed by the role's own tasks (tasks_from: metrics), it rewrites
the Prometheus file every few seconds with the host's python3 and no Ansible; the file turns unhealthy when the path
to the target is cut and healthy again when it is restored; promtool accepts what the VM wrote; the role removes the
timer, its code and the file again.  The phases' durations are printed (pytest -s) and kept in .build/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

pytestmark = pytest.mark.lab

HOST = "init1"
PROM_DIR = "/var/lib/prometheus/node-exporter"
PROM = PROM_DIR + "/iscsi.prom"
LIB = "/usr/local/lib/openiscsi-initiator"
INTERVAL = 2
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def metrics_play(lab, enabled):
    """Run only the role's metrics tasks on HOST, as a user's play would include them."""
    play = [{"name": "metrics timer", "hosts": HOST, "gather_facts": False, "tasks": [{
        "name": "the role's metrics tasks",
        "ansible.builtin.include_role": {"name": "openiscsi.initiator.initiator", "tasks_from": "metrics"},
        "vars": {"initiator_metrics_enabled": enabled, "initiator_metrics_path": PROM,
                 "initiator_metrics_interval": INTERVAL}}]}]
    fd, path = tempfile.mkstemp(prefix="lab-metrics-", suffix=".yml")
    with os.fdopen(fd, "w") as fh:
        json.dump(play, fh)
    try:
        res = lab.playbook(path)
    finally:
        os.unlink(path)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def read_metrics(lab):
    """``{series text: value}`` of the VM's file (``{}`` when it does not exist yet), and the raw text."""
    text = lab.ssh(HOST, "cat %s 2>/dev/null; true" % PROM).stdout
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            samples[series] = float(value)
    return samples, text


def session_series(samples, sid, state):
    matches = [v for k, v in samples.items() if k.startswith('iscsi_session_state{sid="%d",' % sid)
               and k.endswith(',state="%s"}' % state)]
    assert len(matches) <= 1, matches
    return matches[0] if matches else None


def promtool(text):
    binary = shutil.which("promtool")
    assert binary, "promtool not found: install the Debian package prometheus (make deps)"
    proc = subprocess.run([binary, "check", "metrics"], input=text.encode(), capture_output=True, timeout=60,
                          check=False)
    return proc.returncode, (proc.stdout + proc.stderr).decode().strip()


def test_timer_file_follows_a_cut_path(lab):
    started = time.monotonic()
    figures = {}
    t = lab.target("open")
    portal = lab.portal(0)
    lab.forget_targets(HOST)
    cut = False
    try:
        res = lab.module(HOST, "node", {"nodes": [{"target": t["iqn"], "portal": portal}]})
        assert not res.get("failed"), res
        res = lab.module(HOST, "session", {"target": t["iqn"], "portal": portal, "timeout": 180})
        assert not res.get("failed") and len(res["sessions"]) == 1, res
        sid = res["sessions"][0]["sid"]

        t0 = time.monotonic()
        metrics_play(lab, True)
        figures["install_s"] = round(time.monotonic() - t0, 1)
        assert lab.ssh(HOST, "systemctl is-active openiscsi-metrics.timer").stdout.strip() == "active"

        def healthy():
            samples, text = read_metrics(lab)
            if samples.get("iscsi_healthy") == 1 and session_series(samples, sid, "LOGGED_IN") == 1:
                return samples, text
            return None

        samples, text = lab.wait_for(healthy, timeout=60, interval=1, what="a healthy metrics file")
        assert promtool(text) == (0, "")
        assert samples['iscsi_connection_state{sid="%d",target="%s",portal="%s",iface="default",cid="0",'
                       'state="up"}' % (sid, t["iqn"], portal)] == 1
        assert any(k.startswith("iscsi_device_state{") and 'state="running"' in k and v == 1
                   for k, v in samples.items())
        # rewritten by the timer, not once: the time of the check moves on
        first = samples["iscsi_check_timestamp_seconds"]
        lab.wait_for(lambda: read_metrics(lab)[0].get("iscsi_check_timestamp_seconds", first) > first,
                     timeout=6 * INTERVAL + 10, interval=1, what="a later check")
        mode = lab.ssh(HOST, "stat -c %a " + PROM).stdout.strip()
        assert mode == "644"
        # no temporary file left beside it
        assert lab.ssh(HOST, "ls -A " + PROM_DIR).stdout.split() == ["iscsi.prom"]

        def unhealthy():
            samples, text = read_metrics(lab)
            if samples.get("iscsi_healthy") == 0 and session_series(samples, sid, "LOGGED_IN") == 0:
                return samples, text
            return None

        lab.cut_path(HOST)
        cut = True
        t0 = time.monotonic()
        samples, text = lab.wait_for(unhealthy, timeout=120, interval=1, what="an unhealthy metrics file")
        figures["cut_to_unhealthy_s"] = round(time.monotonic() - t0, 1)
        assert promtool(text) == (0, "")
        assert session_series(samples, sid, "FAILED") == 1 or session_series(samples, sid, "FREE") == 1, text
        assert samples["iscsi_session_healthy{sid=\"%d\",target=\"%s\",portal=\"%s\",iface=\"default\"}"
                       % (sid, t["iqn"], portal)] == 0
        assert samples['iscsi_problems{kind="session"}'] == 1

        lab.restore_path(HOST)
        cut = False
        t0 = time.monotonic()
        samples, text = lab.wait_for(healthy, timeout=180, interval=1, what="a healthy metrics file again")
        figures["restore_to_healthy_s"] = round(time.monotonic() - t0, 1)
        assert promtool(text) == (0, "")

        t0 = time.monotonic()
        metrics_play(lab, False)
        figures["remove_s"] = round(time.monotonic() - t0, 1)
        left = lab.ssh(HOST, "ls -d /etc/systemd/system/openiscsi-metrics.* %s %s 2>/dev/null; "
                             "systemctl is-active openiscsi-metrics.timer; true" % (LIB, PROM)).stdout.split()
        assert left == ["inactive"], left
    finally:
        if cut:
            lab.restore_path(HOST)
        lab.ssh(HOST, "systemctl disable --now openiscsi-metrics.timer >/dev/null 2>&1; "
                      "rm -rf /etc/systemd/system/openiscsi-metrics.* %s %s; systemctl daemon-reload; true"
                      % (LIB, PROM))
        lab.forget_targets(HOST)
        figures["total_s"] = round(time.monotonic() - started, 1)
        print("metrics lab figures:", json.dumps(figures))
        os.makedirs(os.path.join(REPO, ".build"), exist_ok=True)
        with open(os.path.join(REPO, ".build", "lab-metrics-figures.json"), "w") as fh:
            json.dump(figures, fh)
