# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The multipath module run in-process (its real main()).

Against a tree under tmp_path (root=): the file edits, check mode, diff, the maps read from a synthetic sysfs and the
health gate.  With root=/ and path= a temporary file: the validation by the host's real multipath-tools (skipped
where it is missing, required under CI like the differential tests of _mpconf)."""

from __future__ import annotations

import os

import pytest

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openiscsi.initiator.plugins.module_utils._dm import read_maps
from ansible_collections.openiscsi.initiator.plugins.module_utils._mpconf import MpConf
from ansible_collections.openiscsi.initiator.plugins.modules import multipath
from harness import file_states, run_module

REL = "etc/multipath.conf"
SITE = """# multipath for the SAN -- hand-written
defaults {
\tuser_friendly_names yes
\tfind_multipaths strict   # the Debian default, spelled out
}
"""


def _reader_available():
    import shutil
    import subprocess
    if not shutil.which("multipath") or not shutil.which("unshare") or os.geteuid() != 0:
        return False
    return subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True,
                          check=False).returncode == 0


HAVE_READER = _reader_available()
needs_reader = pytest.mark.skipif(not HAVE_READER and not os.environ.get("CI"),
                                  reason="needs multipath-tools, unshare and root")


@pytest.fixture
def root(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / REL).write_text(SITE)
    (tmp_path / "sys" / "block").mkdir(parents=True)
    return tmp_path


def add_map(root, dm, name, wwid, paths):
    """A multipath map in the synthetic sysfs: dm-N with dm/name, dm/uuid, size and slaves -> sd devices whose
    device/state is given."""
    base = root / "sys" / "block" / dm
    (base / "dm").mkdir(parents=True)
    (base / "dm" / "name").write_text(name + "\n")
    (base / "dm" / "uuid").write_text("mpath-%s\n" % wwid)
    (base / "size").write_text("131072\n")
    (base / "slaves").mkdir()
    for i, (sd, state) in enumerate(paths):
        dev = root / "sys" / "devices" / "platform" / ("host%d" % i) / ("%d:0:0:1" % i)
        dev.mkdir(parents=True)
        (dev / "state").write_text(state + "\n")
        blk = root / "sys" / "block" / sd
        blk.mkdir(parents=True)
        os.symlink(str(dev), str(blk / "device"))
        (base / "slaves" / sd).mkdir()


def run(capsys, tree, check=False, diff=True, **args):
    args.setdefault("root", str(tree))
    return run_module(capsys, multipath, args, check=check, diff=diff)


def test_check_mode_predicts_apply_then_no_change(capsys, root):
    args = dict(defaults={"find_multipaths": "no", "fast_io_fail_tmo": 5},
                devices=[{"vendor": "LIO-ORG", "product": ".*", "settings": {"no_path_retry": 12}}])
    before = file_states(root)
    predicted = run(capsys, root, check=True, **args)
    assert predicted["changed"] is True and file_states(root) == before
    applied = run(capsys, root, **args)
    assert applied["changed"] is True
    assert applied["diff"]["after"] == predicted["diff"]["after"] == (root / REL).read_text()
    assert applied["changes"] == predicted["changes"]
    text = (root / REL).read_text()
    assert text.startswith(SITE.replace('find_multipaths strict   #', 'find_multipaths "no"   #').rstrip("}\n"))
    conf = MpConf.parse(text)
    assert conf.get(conf.sections("defaults")[0], "fast_io_fail_tmo") == "5"
    assert conf.as_dict()["devices"][0]["device"] == [{"vendor": "LIO-ORG", "product": ".*", "no_path_retry": "12"}]
    # root is not /: no daemon to tell, and it says so
    assert applied["reconfigured"] is False and "root is not /" in applied["reconfigure_skipped"]
    again = run(capsys, root, **args)
    assert again["changed"] is False and again["changes"] == [] and again["effective_changed"] is False


def test_bad_input_names_the_field_and_writes_nothing(capsys, root):
    before = file_states(root)
    res = run(capsys, root, defaults={"alias_prefix": "a\nb"})
    assert res["failed"] and res["msg"].startswith("defaults.alias_prefix:")
    res = run(capsys, root, multipaths=[{"wwid": "3600", "alias": 'say "x"'}])
    assert res["failed"] and "multipaths[0].alias" in res["msg"]
    assert file_states(root) == before


def test_maps_are_reported_with_their_paths(capsys, root):
    add_map(root, "dm-0", "data", "36001405aa", [("sda", "running"), ("sdb", "blocked")])
    res = run(capsys, root)
    assert res["changed"] is False
    assert [(m["name"], m["wwid"], m["healthy_paths"], m["total_paths"]) for m in res["maps"]] == [
        ("data", "36001405aa", 1, 2)]
    assert [(p["device"], p["hctl"], p["state"]) for p in res["maps"][0]["paths"]] == [
        ("sda", "0:0:0:1", "running"), ("sdb", "1:0:0:1", "blocked")]


class _Daemon:
    """multipathd answering ``show daemon``; every other command is recorded."""

    def __init__(self, monkeypatch):
        self.calls = []
        monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None:
                            "/usr/sbin/" + name)
        monkeypatch.setattr(AnsibleModule, "run_command", lambda module, args, **kw: self.run(args))

    def run(self, args):
        self.calls.append(list(args))
        if args[1:] == ["show", "daemon"]:
            return 0, "pid 1234 idle\n", ""
        if args[1:] == ["reconfigure"]:
            return 0, "ok\n", ""
        raise AssertionError("unexpected command %r" % (args,))


def test_reconfigure_refused_while_a_map_has_no_healthy_path(capsys, root, monkeypatch, tmp_path):
    daemon = _Daemon(monkeypatch)
    add_map(root, "dm-0", "data", "36001405aa", [("sda", "blocked"), ("sdb", "transport-offline")])
    # the gate works on the real host: root=/ reads this tree only through sysfs, so point read_maps at it
    monkeypatch.setattr(multipath, "read_maps", lambda _root: read_maps(str(root)))
    path = str(root / REL)
    before = file_states(root)
    res = run(capsys, root, root="/", path=path, validate=False, defaults={"no_path_retry": 12})
    assert res["failed"] and "data" in res["msg"] and "force: true" in res["msg"]
    assert file_states(root) == before and ["/usr/sbin/multipathd", "reconfigure"] not in daemon.calls
    res = run(capsys, root, root="/", path=path, validate=False, force=True, defaults={"no_path_retry": 12})
    assert res["changed"] and res["reconfigured"] is True
    assert daemon.calls[-1] == ["/usr/sbin/multipathd", "reconfigure"]


def test_comment_only_change_never_reconfigures(capsys, root, monkeypatch):
    daemon = _Daemon(monkeypatch)
    (root / REL).write_text(SITE.replace("find_multipaths strict", "find_multipaths no"))
    res = run(capsys, root, root="/", path=str(root / REL), validate=False, defaults={"find_multipaths": "no"})
    # "no" unquoted -> "no" quoted is the same value to multipath-tools: nothing to change at all
    assert res["changed"] is False and daemon.calls == []


def test_healthy_maps_reconfigure_once(capsys, root, monkeypatch):
    daemon = _Daemon(monkeypatch)
    res = run(capsys, root, root="/", path=str(root / REL), validate=False, defaults={"polling_interval": 10})
    assert res["changed"] and res["reconfigured"] is True
    assert daemon.calls.count(["/usr/sbin/multipathd", "reconfigure"]) == 1
    res = run(capsys, root, root="/", path=str(root / REL), validate=False, check=True,
              defaults={"polling_interval": 11})
    assert res["changed"] and res["reconfigured"] is False and res["reconfigure_skipped"] == "check mode"
    assert daemon.calls.count(["/usr/sbin/multipathd", "reconfigure"]) == 1


@needs_reader
def test_the_hosts_multipath_tools_refuse_an_invalid_value_and_nothing_is_written(capsys, tmp_path):
    path = tmp_path / "multipath.conf"
    path.write_text(SITE)
    before = file_states(tmp_path)
    # '/' passes this module's checks (printable ASCII), but multipath-tools refuses it in an alias
    res = run(capsys, tmp_path, root="/", path=str(path), reconfigure=False,
              multipaths=[{"wwid": "36001405aa", "alias": "data/1"}])
    assert res["failed"] and "cannot contain a slash" in res["msg"], res
    assert file_states(tmp_path) == before
    res = run(capsys, tmp_path, root="/", path=str(path), reconfigure=False, defaults={"no_such_keyword": 1})
    assert res["failed"] and "no_such_keyword" in res["msg"]
    assert file_states(tmp_path) == before
    good = run(capsys, tmp_path, root="/", path=str(path), reconfigure=False,
               multipaths=[{"wwid": "36001405aa", "alias": "data1"}])
    assert good["changed"] and good["validated"] is True
    assert 'alias "data1"' in path.read_text()


@needs_reader
def test_coherence_of_the_validated_configuration(capsys, tmp_path):
    path = tmp_path / "multipath.conf"
    path.write_text(SITE)
    res = run(capsys, tmp_path, root="/", path=str(path), reconfigure=False, defaults={"no_path_retry": "queue"})
    assert res["validated"] is True
    assert [c["code"] for c in res["coherence"]] == ["queue_forever"]
    assert any("queues I/O for ever" in w for w in res["warnings"])
    res = run(capsys, tmp_path, root="/", path=str(path), reconfigure=False, defaults={"no_path_retry": 12})
    assert res["coherence"] == [] and not res["warnings"]


def test_coherence_rules():
    from ansible_collections.openiscsi.initiator.plugins.module_utils._multipath_plan import coherence
    assert coherence({"defaults": {"fast_io_fail_tmo": "5", "no_path_retry": "12"}, "overrides": {}}, [120]) == []
    slow = coherence({"defaults": {"fast_io_fail_tmo": "off"}, "overrides": {}}, [120, 15, 120])
    assert [c["code"] for c in slow] == ["slow_failover"] and "(120 s)" in slow[0]["message"]
    assert coherence({"defaults": {"fast_io_fail_tmo": "off"}, "overrides": {}}, [15]) == []
    # overrides win over defaults
    assert coherence({"defaults": {"fast_io_fail_tmo": "off"}, "overrides": {"fast_io_fail_tmo": "5"}}, [120]) == []
    assert [c["code"] for c in coherence({"defaults": {"features": "1 queue_if_no_path"}, "overrides": {}})] == [
        "queue_forever"]


def test_root_is_never_escaped_through_a_symlink(capsys, tmp_path):
    """/img/etc/multipath.conf -> /elsewhere/multipath.conf is /img/elsewhere/multipath.conf, as in a chroot."""
    img, outside = tmp_path / "img", tmp_path / "elsewhere"
    (img / "etc").mkdir(parents=True)
    (img / "elsewhere").mkdir()
    outside.mkdir()
    (outside / "multipath.conf").write_text(SITE)
    os.symlink("/elsewhere/multipath.conf", str(img / REL))
    before = file_states(outside)
    res = run(capsys, img, defaults={"polling_interval": 9})
    assert res["_rc"] == 0 and res["changed"], res
    assert file_states(outside) == before
    assert "polling_interval 9" in (img / "elsewhere" / "multipath.conf").read_text()
