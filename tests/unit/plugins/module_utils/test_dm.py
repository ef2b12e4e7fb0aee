# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dm-multipath maps from sysfs (_dm), their path health joined with the sessions (_health.evaluate_maps) and
"can this portal go down?" (_health.can_go_down), on synthetic sysfs trees laid out as the kernel does."""

from __future__ import annotations

import os
import sys

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _dm, _health, _sysfs
from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures"))
import fixturetree  # noqa: E402  pylint: disable=wrong-import-position

TGT = "iqn.2025-01.lab.openiscsi:tgt-open"
WWID = "36001405aaaa000000000000000000001"


def two_paths(root, state_a="running", state_b="running", session_b="LOGGED_IN", **map_kw):
    """Sessions 1 (portal A, 10.213.0.1) and 2 (portal B, 10.214.0.1), one LUN each (sda, sdb), one map."""
    fixturetree.add_session(root, 1, luns=[(1, "sda", state_a)])
    fixturetree.add_session(root, 2, state=session_b, luns=[(1, "sdb", state_b)],
                            conns=[{"cid": 0, "persistent_address": "10.214.0.1", "address": "10.214.0.1"}])
    fixturetree.add_multipath_map(root, "dm-0", "data", WWID, ["sda", "sdb"], **map_kw)
    return str(root)


def report(root, dm_status=None, **kw):
    sessions = _health.evaluate(_sysfs.read_sessions(root, brief=True))["sessions"]
    return _health.evaluate_maps(sessions, _dm.read_maps(root), dm_status, **kw)


def test_read_maps_gives_paths_with_states_sizes_and_wwids(tmp_path):
    root = two_paths(tmp_path, state_b="blocked")
    maps = _dm.read_maps(root)
    assert [(m["name"], m["wwid"], m["dm"], m["healthy_paths"], m["total_paths"]) for m in maps] == [
        ("data", WWID, "dm-0", 1, 2)]
    assert [(p["device"], p["hctl"], p["state"], p["wwid"], p["devt"]) for p in maps[0]["paths"]] == [
        ("sda", "2:0:0:1", "running", WWID, "8:0"), ("sdb", "3:0:0:1", "blocked", WWID, "8:16")]


def test_non_multipath_dm_devices_are_not_maps(tmp_path):
    fixturetree._write(str(tmp_path / "sys/block/dm-3/dm/uuid"), "LVM-abc\n")
    assert _dm.read_maps(str(tmp_path)) == []


def test_parse_dmsetup_status_two_groups():
    text = ("mpatha: 0 131072 multipath 2 0 0 0 2 1 A 0 1 2 8:0 A 0 0 1 E 0 1 2 8:32 F 3 0 1\n"
            "vg-root: 0 100 linear 8:1 0\n"
            "broken: 0 1 multipath 9\n")
    assert _dm.parse_dmsetup_status(text) == {"mpatha": {"8:0": "A", "8:32": "F"}}


def test_healthy_map_then_degraded_then_last_path(tmp_path):
    root = two_paths(tmp_path)
    maps, problems = report(root, min_map_paths=2)
    assert problems == [] and maps[0]["healthy_paths"] == 2
    assert [(p["device"], p["portal"], p["sid"], p["session_state"]) for p in maps[0]["paths"]] == [
        ("sda", "10.213.0.1:3260", 1, "LOGGED_IN"), ("sdb", "10.214.0.1:3260", 2, "LOGGED_IN")]

    root2 = two_paths(tmp_path / "b", state_b="blocked", session_b="FAILED")
    maps, problems = report(root2, min_map_paths=2)
    assert maps[0]["healthy_paths"] == 1 and not maps[0]["healthy"]
    assert [p["message"] for p in problems] == ["multipath map data: 1 healthy path of 2; 2 required"]
    assert maps[0]["paths"][1]["problems"] == ["device blocked", "session 2 FAILED"]
    # healthy for min 1, but on its last path with no_last_path
    assert report(root2, min_map_paths=1)[1] == []
    assert [p["message"] for p in report(root2, no_last_path=True)[1]] == [
        "multipath map data: on its last healthy path (sda)"]
    # per-map minimum by alias beats the default
    assert report(root2, min_map_paths=2, map_min_paths={"data": 1})[1] == []


def test_a_map_without_a_healthy_path_is_always_a_problem(tmp_path):
    root = two_paths(tmp_path, state_a="transport-offline", state_b="transport-offline")
    _maps, problems = report(root)
    assert [p["message"] for p in problems] == ["multipath map data: no healthy path (2 paths)"]


def test_device_mapper_failed_path_is_not_healthy(tmp_path):
    root = two_paths(tmp_path)
    maps, problems = report(root, {"data": {"8:0": "A", "8:16": "F"}}, min_map_paths=2)
    assert [p["dm_state"] for p in maps[0]["paths"]] == ["A", "F"]
    assert maps[0]["healthy_paths"] == 1 and problems


def test_lun_mix_up_and_size_mismatch_are_findings(tmp_path):
    root = two_paths(tmp_path, path_wwids=["naa." + WWID[1:], "naa.6001405bbbb"], path_sizes=[131072, 65536])
    _maps, problems = report(root)
    messages = [p["message"] for p in problems]
    assert any("a LUN mix-up" in m and "36001405bbbb" in m for m in messages)
    assert any("differ in size" in m for m in messages)


def test_expect_multipath_names_bare_iscsi_disks(tmp_path):
    root = two_paths(tmp_path)
    fixturetree.add_session(tmp_path, 3, luns=[(2, "sdc", "running")])
    _maps, problems = report(str(tmp_path), expect_multipath=True)
    assert [(p["kind"], p["sid"]) for p in problems] == [("not_multipathed", 3)]
    assert "sdc (LUN 2" in problems[0]["message"]


def test_can_go_down(tmp_path):
    root = two_paths(tmp_path)
    maps, _problems = report(root)
    assert _health.can_go_down(maps, portal="10.213.0.1:3260") == [
        {"map": "data", "wwid": WWID, "survives": True, "remaining": ["sdb"], "through": ["sda"]}]
    assert _health.can_go_down(maps, portal="10.213.0.1")[0]["survives"] is True   # every port of the address
    assert _health.can_go_down(maps, iface="default")[0]["survives"] is False     # both sessions use it
    # with B already degraded, A is the last path: it cannot go down
    root2 = two_paths(tmp_path / "b", state_b="blocked", session_b="FAILED")
    maps2, _problems2 = report(root2)
    assert _health.can_go_down(maps2, portal="10.213.0.1:3260")[0]["survives"] is False
    assert _health.can_go_down(maps2, portal="10.214.0.1:3260")[0]["survives"] is True


@pytest.mark.parametrize("kw, field", [({"min_map_paths": 0}, "min_map_paths"),
                                       ({"map_min_paths": {"data": "x"}}, "map_min_paths.data"),
                                       ({"map_min_paths": {"data": True}}, "map_min_paths.data")])
def test_bad_map_expectations_name_the_field(kw, field):
    with pytest.raises(InputError) as info:
        _health.validate_map_expectations(**kw)
    assert info.value.field == field
