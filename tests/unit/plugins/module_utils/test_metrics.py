# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_metrics.render over health reports of captured and synthetic sysfs trees, and _atomicfile.replace_file.
promtool's own verdict on the same output is in tests/integration/test_metrics_promtool.py."""

from __future__ import annotations

import math
import os
import re
import stat
import sys

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _atomicfile, _health, _metrics, _sysfs

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures"))
import fixturetree  # noqa: E402  pylint: disable=wrong-import-position

OPEN = "iqn.2025-01.lab.openiscsi:tgt-open"
CHAP = "iqn.2025-01.lab.openiscsi:tgt-chap"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def unescape(text):
    return re.sub(r'\\(.)', lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), text)


def parse(text):
    """The samples of an exposition text as ``{(name, ((label, value), ...sorted)): float}``; asserts the format
    rules render promises (HELP and TYPE gauge before the samples of each family, families not interleaved, each
    series once, no timestamps)."""
    assert text.endswith("\n")
    samples, helps, types, done, current = {}, {}, {}, set(), None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert name not in helps and name not in done
            helps[name] = line
            continue
        if line.startswith("# TYPE "):
            name, kind = line.split(" ")[2:]
            assert kind == "gauge" and name in helps
            types[name] = kind
            if current:
                done.add(current)
            current = name
            continue
        match = SAMPLE.match(line)
        assert match, line
        name, labels, value = match.groups()
        assert name == current, "sample of %s outside its family" % name
        pairs = LABEL.findall(labels or "")
        assert "".join('%s="%s",' % p for p in pairs).rstrip(",") == (labels or "")
        key = (name, tuple(sorted((k, unescape(v)) for k, v in pairs)))
        assert key not in samples, "duplicate series %r" % (key,)
        samples[key] = float(value)
    return samples


def series(samples, name, **labels):
    """Samples of metric *name* whose labels include *labels*."""
    want = set((k, str(v)) for k, v in labels.items())
    return dict((k, v) for k, v in samples.items() if k[0] == name and want <= set(k[1]))


def value(samples, name, **labels):
    found = series(samples, name, **labels)
    assert len(found) == 1, (name, labels, found)
    return list(found.values())[0]


def report_of(root, checked_at=1765000000.5, **expect):
    report = _health.evaluate(_sysfs.read_sessions(str(root), brief=True), **expect)
    report["wait"] = {"checked_at": checked_at}
    return report


def test_captured_healthy_host(tmp_path):
    report = report_of(fixturetree.materialize("bookworm-logged-in", tmp_path))
    samples = parse(_metrics.render(report))
    assert value(samples, "iscsi_healthy") == 1 and value(samples, "iscsi_sessions") == 2
    assert value(samples, "iscsi_check_timestamp_seconds") == 1765000000.5
    assert value(samples, "iscsi_session_state", sid=1, target=OPEN, portal="10.213.0.1:3260", iface="default",
                 state="LOGGED_IN") == 1
    assert sorted(v for k, v in series(samples, "iscsi_session_state", sid=2).items()) == [0, 0, 1]
    assert value(samples, "iscsi_session_recovery_timeout_seconds", sid=2, target=CHAP) == 120
    assert value(samples, "iscsi_connection_state", sid=1, cid=0, state="up") == 1
    assert value(samples, "iscsi_device_state", sid=1, device="sda", hctl="2:0:0:1", lun=1, state="running") == 1
    assert value(samples, "iscsi_device_state", sid=1, device="", lun=0, state="running") == 1
    assert value(samples, "iscsi_target_paths_healthy", target=CHAP) == 1
    assert not series(samples, "iscsi_target_paths_required")
    assert sum(series(samples, "iscsi_problems").values()) == 0
    assert set(k[1][0][1] for k in series(samples, "iscsi_problems")) == set(_metrics.PROBLEM_KINDS)
    # nine device states per device, three session states per session: bounded by what the host has
    assert len(series(samples, "iscsi_device_state")) == 9 * 5 and len(series(samples, "iscsi_session_state")) == 6


@pytest.mark.parametrize("name, states", [("trixie-failed", ["FAILED", "FAILED"]),
                                          ("bookworm-recovery-timeout", ["FAILED", "FREE"])])
def test_captured_unhealthy_hosts(tmp_path, name, states):
    report = report_of(fixturetree.materialize(name, tmp_path))
    samples = parse(_metrics.render(report))
    assert value(samples, "iscsi_healthy") == 0
    for sid, state in enumerate(states, 1):
        assert value(samples, "iscsi_session_state", sid=sid, state=state) == 1
        assert value(samples, "iscsi_session_state", sid=sid, state="LOGGED_IN") == 0
        assert value(samples, "iscsi_session_healthy", sid=sid) == 0
    assert value(samples, "iscsi_problems", kind="session") == len(states)
    assert value(samples, "iscsi_target_paths_healthy", target=OPEN) == 0


def test_synthetic_states_paths_and_escaping(tmp_path):
    root = str(tmp_path)
    odd_iface = 'lab "if"\\0\nx'
    fixturetree.add_session(root, 1, luns=[(1, "sda", "running")], iface=odd_iface, recovery_tmo="off")
    fixturetree.add_session(root, 2, state="FAILED", conns=[{"cid": 0, "state": "failed"}],
                            luns=[(1, "sdb", "blocked"), (2, "sdc", "weird-state")])
    report = report_of(root, min_paths=2)
    text = _metrics.render(report)
    samples = parse(text)
    assert '\\"if\\"\\\\0\\nx' in text  # escaped as the format wants; the parser gets the original back
    assert value(samples, "iscsi_session_state", sid=1, iface=odd_iface, state="LOGGED_IN") == 1
    assert value(samples, "iscsi_session_recovery_timeout_seconds", sid=1) == math.inf
    assert "+Inf" in text
    assert value(samples, "iscsi_connection_state", sid=2, state="failed") == 1
    assert value(samples, "iscsi_device_state", sid=2, device="sdb", state="blocked") == 1
    # a state outside the documented set gets its own series, and only for that device
    assert value(samples, "iscsi_device_state", sid=2, device="sdc", state="weird-state") == 1
    assert len(series(samples, "iscsi_device_state", device="sdc")) == 10
    assert len(series(samples, "iscsi_device_state", device="sdb")) == 9
    assert value(samples, "iscsi_target_paths", target=OPEN) == 2
    assert value(samples, "iscsi_target_paths_healthy", target=OPEN) == 1
    assert value(samples, "iscsi_target_paths_required", target=OPEN) == 2
    assert value(samples, "iscsi_problems", kind="paths") == 1
    assert value(samples, "iscsi_healthy") == 0


def test_no_sessions_and_no_time():
    samples = parse(_metrics.render({"healthy": True, "sessions": [], "problems": [], "paths": {}}))
    assert value(samples, "iscsi_healthy") == 1 and value(samples, "iscsi_sessions") == 0
    assert not series(samples, "iscsi_check_timestamp_seconds")
    assert not series(samples, "iscsi_session_state")


def test_duplicate_series_are_written_once_and_unreadable_values():
    entry = {"sid": 1, "target": OPEN, "portal": "p", "iface": "default", "state": None, "healthy": False,
             "recovery_tmo": None, "connections": [{"cid": 0, "state": "up"}, {"cid": 0, "state": "down"}],
             "devices": [{"hctl": "2:0:0:1", "lun": 1, "block": "sda", "state": None}]}
    samples = parse(_metrics.render({"healthy": False, "sessions": [entry], "problems": [], "paths": {}}))
    assert value(samples, "iscsi_connection_state", cid=0, state="up") == 1
    assert value(samples, "iscsi_session_state", sid=1, state="unknown") == 1
    assert value(samples, "iscsi_device_state", device="sda", state="unknown") == 1
    assert not series(samples, "iscsi_session_recovery_timeout_seconds")


@pytest.mark.parametrize("raw, seconds", [("120", 120.0), ("off", math.inf), ("-1", math.inf), (None, None),
                                          ("x", None)])
def test_recovery_timeout(raw, seconds):
    assert _metrics.recovery_timeout(raw) == seconds


@pytest.mark.parametrize("number, text", [(True, "1"), (3, "3"), (2.0, "2"), (0.25, "0.25"), (math.inf, "+Inf"),
                                          (-math.inf, "-Inf"), (float("nan"), "NaN"), (1765000000.5, "1765000000.5")])
def test_format_value(number, text):
    assert _metrics.format_value(number) == text


# --------------------------------------------------------------------------------------------------- _atomicfile
def test_replace_file_creates_and_replaces(tmp_path):
    path = tmp_path / "iscsi.prom"
    _atomicfile.replace_file(str(path), "a 1\n")
    assert path.read_text() == "a 1\n" and stat.S_IMODE(path.stat().st_mode) == 0o644
    before = path.stat().st_ino
    _atomicfile.replace_file(str(path), b"a 2\n", mode=0o640)
    assert path.read_bytes() == b"a 2\n" and stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.stat().st_ino != before  # a new file renamed over the old one, not an in-place rewrite
    assert sorted(os.listdir(tmp_path)) == ["iscsi.prom"]


def test_replace_file_follows_a_symlink(tmp_path):
    real = tmp_path / "real.prom"
    real.write_text("old\n")
    (tmp_path / "link.prom").symlink_to("real.prom")
    _atomicfile.replace_file(str(tmp_path / "link.prom"), "new\n")
    assert real.read_text() == "new\n" and os.path.islink(tmp_path / "link.prom")


def test_replace_file_failure_leaves_old_file_and_no_temp(tmp_path):
    path = tmp_path / "iscsi.prom"
    path.write_text("old\n")
    (tmp_path / "dir.prom").mkdir()
    with pytest.raises(OSError):
        _atomicfile.replace_file(str(tmp_path / "dir.prom"), "new\n")  # rename over a directory fails
    with pytest.raises(OSError):
        _atomicfile.replace_file(str(tmp_path / "missing" / "x.prom"), "new\n")
    assert path.read_text() == "old\n" and sorted(os.listdir(tmp_path)) == ["dir.prom", "iscsi.prom"]


# --------------------------------------------------------------------------------------------------- the timer's code
def _module_utils_imports(path):
    """module_utils names *path* imports (``from ...module_utils import _a, _b`` and ``from ...module_utils._a
    import x``)."""
    import ast  # pylint: disable=import-outside-toplevel
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and ".module_utils" in "." + node.module:
            last = node.module.rsplit(".", 1)[-1]
            found.update(a.name for a in node.names) if last == "module_utils" else found.add(last)
    return found


def test_role_copies_every_module_utils_file_the_entry_point_needs():
    """roles/initiator/vars/main.yml lists the files the role copies to the host: exactly what the entry point
    imports, transitively (a new import in _health or _sysfs must be added there, or the timer would fail)."""
    import yaml  # pylint: disable=import-outside-toplevel
    repo = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..")
    utils = os.path.join(repo, "plugins", "module_utils")
    need, todo = set(), list(_module_utils_imports(os.path.join(repo, "roles", "initiator", "files",
                                                                "openiscsi_metrics.py")))
    while todo:
        name = todo.pop()
        if name not in need:
            need.add(name)
            todo.extend(_module_utils_imports(os.path.join(utils, name + ".py")))
    with open(os.path.join(repo, "roles", "initiator", "vars", "main.yml"), encoding="utf-8") as handle:
        listed = yaml.safe_load(handle)["initiator__metrics_code"]
    assert {"_sysfs", "_health", "_metrics", "_atomicfile"} <= need
    assert sorted(listed) == sorted(need)
