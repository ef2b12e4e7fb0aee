# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The metrics session_check writes (metrics_path), and the timer's entry point writes, judged by Prometheus's own
`promtool check metrics` (Debian package prometheus, in the Makefile's APT_PACKAGES): any complaint, lint included,
fails.  Real session data: the sysfs trees captured on lab VMs, healthy and unhealthy, and synthetic ones."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.openiscsi.initiator.plugins.modules import session_check

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "fixtures"))
import fixturetree  # noqa: E402  pylint: disable=wrong-import-position

ENTRY = os.path.join(REPO, "roles", "initiator", "files", "openiscsi_metrics.py")
PROMTOOL = shutil.which("promtool")


def promtool(text):
    """``(rc, complaints)`` of ``promtool check metrics`` over *text*."""
    if PROMTOOL is None:
        pytest.fail("promtool not found: install the Debian package prometheus (make deps)")
    proc = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True, timeout=60,
                          check=False)
    complaints = (proc.stdout + proc.stderr).decode().strip()
    # promtool (2.42) lets a repeated series pass; the textfile collector would not.
    series = [line.rsplit(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")]
    repeated = sorted(set(s for s in series if series.count(s) > 1))
    if repeated:
        complaints = (complaints + "\nrepeated series: %s" % ", ".join(repeated)).strip()
    return proc.returncode, complaints


def module_metrics(capsys, monkeypatch, root, out, **args):
    monkeypatch.setattr(session_check, "ROOT", str(root))
    with patch_module_args(dict(args, metrics_path=str(out), fail_on_unhealthy=False)):
        with pytest.raises(SystemExit):
            session_check.main()
    result = json.loads(capsys.readouterr().out)
    assert result["metrics"] == {"path": str(out), "written": True} and result["changed"] is False
    return result, out.read_text()


def test_promtool_judges_at_all(tmp_path):
    """The check can fail: a metric without HELP, a broken label, a repeated series are complaints."""
    assert promtool("iscsi_x 1\n")[0] != 0
    assert promtool('# HELP a x\n# TYPE a gauge\na{b="x} 1\n')[0] != 0
    assert promtool("# HELP a x\n# TYPE a gauge\na 1\na 2\n")[1] == "repeated series: a"
    assert promtool("# HELP a x\n# TYPE a gauge\na 1\n") == (0, "")


@pytest.mark.parametrize("name", fixturetree.names())
def test_captured_trees(capsys, monkeypatch, tmp_path, name):
    root = fixturetree.materialize(name, tmp_path / "root")
    result, text = module_metrics(capsys, monkeypatch, root, tmp_path / "iscsi.prom", min_paths=1,
                                  expect_automatic_nodes=True, check_config=True)
    assert promtool(text) == (0, "")
    assert ("iscsi_healthy %d\n" % int(result["healthy"])) in text
    for entry in result["sessions"]:
        assert 'iscsi_session_state{sid="%s",target="%s",portal="%s",iface="%s",state="%s"} 1\n' % (
            entry["sid"], entry["target"], entry["portal"], entry["iface"], entry["state"]) in text


def test_unhealthy_synthetic_tree(capsys, monkeypatch, tmp_path):
    root = str(tmp_path / "root")
    fixturetree.add_session(root, 1, luns=[(1, "sda", "running")], iface='odd "iface"\\', recovery_tmo="off")
    fixturetree.add_session(root, 2, state="FREE", conns=[{"cid": 0, "state": "down"}],
                            luns=[(0, None, "running"), (1, "sdb", "transport-offline"), (2, "sdc", "new-state")])
    result, text = module_metrics(capsys, monkeypatch, root, tmp_path / "iscsi.prom", min_paths=2,
                                  targets=["iqn.2025-01.lab.openiscsi:absent"])
    assert result["healthy"] is False
    assert promtool(text) == (0, "")
    assert "iscsi_healthy 0\n" in text and 'state="new-state"} 1\n' in text and "+Inf" in text
    assert 'iscsi_problems{kind="paths"} 2\n' in text


def test_multipath_maps(capsys, monkeypatch, tmp_path):
    root = str(tmp_path / "root")
    fixturetree.add_session(root, 1, luns=[(1, "sda", "running")])
    fixturetree.add_session(root, 2, state="FAILED", luns=[(1, "sdb", "blocked")],
                            conns=[{"cid": 0, "persistent_address": "10.214.0.1", "address": "10.214.0.1"}])
    fixturetree.add_multipath_map(root, "dm-0", "data", "36001405aaaa01", ["sda", "sdb"])
    result, text = module_metrics(capsys, monkeypatch, root, tmp_path / "iscsi.prom", min_map_paths=2)
    assert promtool(text) == (0, "")
    assert [(m["name"], m["healthy_paths"]) for m in result["maps"]] == [("data", 1)]
    assert 'iscsi_multipath_paths{map="data",wwid="36001405aaaa01"} 2\n' in text
    assert 'iscsi_multipath_paths_healthy{map="data",wwid="36001405aaaa01"} 1\n' in text
    assert 'iscsi_multipath_paths_required{map="data",wwid="36001405aaaa01"} 2\n' in text
    assert 'iscsi_problems{kind="map"} 1\n' in text


def test_timer_entry_point(tmp_path):
    """The role's entry point, run as the timer runs it (plain python3, no Ansible importable), over a captured
    tree: the same metrics, accepted by promtool."""
    lib = tmp_path / "lib" / "ansible_collections" / "openiscsi" / "initiator" / "plugins"
    shutil.copytree(os.path.join(REPO, "plugins", "module_utils"), str(lib / "module_utils"))
    root = fixturetree.materialize("trixie-failed", tmp_path / "root")
    out = tmp_path / "iscsi.prom"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    proc = subprocess.run(["/usr/bin/python3", "-I", ENTRY, "--lib", str(tmp_path / "lib"), "--root", str(root),
                           "--output", str(out)], capture_output=True, env=env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    text = out.read_text()
    assert promtool(text) == (0, "")
    assert "iscsi_healthy 0\n" in text and 'state="FAILED"} 1\n' in text
    assert sorted(os.listdir(tmp_path)) == ["iscsi.prom", "lib", "root"]  # no temporary file left
