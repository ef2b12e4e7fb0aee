# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The iscsid_config module run in-process (its real main()) against a copy of Debian's iscsid.conf under tmp_path."""

from __future__ import annotations

import os
import shutil
import stat

import pytest

from ansible_collections.openiscsi.initiator.plugins.modules import iscsid_config
from harness import run_module

DATA = os.path.join(os.path.dirname(__file__), "..", "module_utils", "data", "open-iscsi-2.1.8")
REL = "etc/iscsi/iscsid.conf"
SECRET = "Very-Secret-CHAP-12345"


@pytest.fixture
def root(tmp_path):
    (tmp_path / "etc" / "iscsi").mkdir(parents=True)
    shutil.copy(os.path.join(DATA, "iscsid.conf"), str(tmp_path / REL))
    os.chmod(str(tmp_path / REL), 0o644)
    return tmp_path


def run(capsys, root, check=False, diff=True, **args):
    args.setdefault("root", str(root))
    return run_module(capsys, iscsid_config, args, check=check, diff=diff)


def text(root):
    return (root / REL).read_text()


def state(root):
    st = os.stat(str(root / REL))
    return (root / REL).read_bytes(), st.st_ino, st.st_mtime_ns, stat.S_IMODE(st.st_mode)


def changed_lines(before, after):
    b, a = before.splitlines(), after.splitlines()
    assert len(b) == len(a), "line count changed"
    return [(x, y) for x, y in zip(b, a) if x != y]


def test_edit_active_line_in_place_and_keep_everything_else(capsys, root):
    before = text(root)
    res = run(capsys, root, settings={"node.startup": "automatic", "node.session.timeo.replacement_timeout": 15})
    assert res["changed"] is True
    assert res["changes"] == [
        {"key": "node.startup", "before": "manual", "after": "automatic"},
        {"key": "node.session.timeo.replacement_timeout", "before": "120", "after": "15"},
    ]
    assert changed_lines(before, text(root)) == [
        ("node.startup = manual", "node.startup = automatic"),
        ("node.session.timeo.replacement_timeout = 120", "node.session.timeo.replacement_timeout = 15"),
    ]
    assert res["restart_needed"] is False
    # a host with no record at all: nothing keeps old values, no warning
    assert not any("records created from now on" in w for w in res.get("warnings", [])), res.get("warnings")
    assert stat.S_IMODE(os.stat(str(root / REL)).st_mode) == 0o644


def test_existing_records_warning_only_when_records_exist(capsys, root):
    settings = {"node.session.timeo.replacement_timeout": 20}
    for check in (True, False):
        res = run(capsys, root, check=check, settings={"node.session.timeo.replacement_timeout": 30 + check})
        assert res["changed"] and not any("keep their values" in w for w in res.get("warnings", [])), res
    rec = root / "etc/iscsi/nodes/iqn.2001-04.com.example:a/192.0.2.10,3260,1/default"
    rec.parent.mkdir(parents=True)
    rec.write_text("node.name = iqn.2001-04.com.example:a\nnode.conn[0].address = 192.0.2.10\n")
    for check in (True, False):
        res = run(capsys, root, check=check, settings=settings)
        assert any("keep their values (this host has 1 node record;" in w for w in res["warnings"]), res
    # discovery.* keys concern discovery records only: there are none
    res = run(capsys, root, settings={"discovery.sendtargets.timeo.login_timeout": 17})
    assert res["changed"] and not any("keep their values" in w for w in res.get("warnings", [])), res


def test_commented_default_is_replaced_in_place(capsys, root):
    before = text(root)
    res = run(capsys, root, settings={"node.session.auth.authmethod": "chap",
                                      "node.session.auth.chap_algs": ["SHA256", "md5"]})
    assert res["changed"]
    assert changed_lines(before, text(root)) == [
        ("#node.session.auth.authmethod = CHAP", "node.session.auth.authmethod = CHAP"),
        ("#node.session.auth.chap_algs = SHA3-256,SHA256,SHA1,MD5", "node.session.auth.chap_algs = SHA256,MD5"),
    ]


def test_key_without_any_line_is_appended(capsys, root):
    before = text(root)
    res = run(capsys, root, settings={"node.conn[0].timeo.auth_timeout": 60})
    assert res["changed"]
    after = text(root)
    assert after == before + "node.conn[0].timeo.auth_timeout = 60\n"


def test_idempotent_second_run_touches_nothing(capsys, root):
    args = dict(settings={"node.startup": "automatic", "node.session.auth.authmethod": "CHAP"})
    assert run(capsys, root, **args)["changed"]
    snap = state(root)
    res = run(capsys, root, **args)
    assert res["changed"] is False and res["changes"] == []
    assert state(root) == snap


def test_check_mode_predicts_and_writes_nothing(capsys, root):
    snap = state(root)
    args = dict(settings={"node.startup": "automatic", "iscsid.safe_logout": "yes"}, secrets={
        "node.session.auth.password": SECRET})
    predicted = run(capsys, root, check=True, **args)
    assert state(root) == snap
    real = run(capsys, root, **args)
    for key in ("changed", "changes", "restart_needed", "diff"):
        assert predicted[key] == real[key], key
    assert real["restart_needed"] is True


def test_secrets_masked_everywhere_and_file_becomes_0600(capsys, root):
    res = run(capsys, root, settings={"node.session.auth.authmethod": "CHAP", "node.session.auth.username": "alice"},
              secrets={"node.session.auth.password": SECRET, "discovery.sendtargets.auth.password_in": SECRET + "x"})
    assert res["changed"]
    assert SECRET not in res["_raw"]
    assert {"key": "node.session.auth.password", "before": None, "after": "********"} in res["changes"]
    assert "node.session.auth.password = ********" in res["diff"]["after"]
    assert "#node.session.auth.password = password" not in res["diff"]["before"]  # shipped placeholder masked too
    content = text(root)
    assert "node.session.auth.password = %s\n" % SECRET in content
    assert "#node.session.auth.password = password\n" not in content  # the comment line took the value
    assert stat.S_IMODE(os.stat(str(root / REL)).st_mode) == 0o600


def test_file_with_secret_but_loose_mode_is_tightened(capsys, root):
    with open(str(root / REL), "a") as handle:
        handle.write("node.session.auth.password = %s\n" % SECRET)
    os.chmod(str(root / REL), 0o644)
    res = run(capsys, root, secrets={"node.session.auth.password": SECRET})
    assert res["changed"] is True and res["changes"] == [] and res["mode_changed"] == "0600"
    assert stat.S_IMODE(os.stat(str(root / REL)).st_mode) == 0o600
    assert run(capsys, root, secrets={"node.session.auth.password": SECRET})["changed"] is False


def test_absent_removes_active_lines_only(capsys, root):
    before = text(root)
    res = run(capsys, root, state="absent", settings=["node.startup", "node.session.iscsi.FastAbort"])
    assert res["changes"] == [{"key": "node.startup", "before": "manual", "after": None},
                              {"key": "node.session.iscsi.FastAbort", "before": "Yes", "after": None}]
    after = text(root)
    assert "\nnode.startup = manual\n" not in after and "# node.startup = automatic\n" in after
    assert "# node.session.iscsi.FastAbort = No\n" in after
    assert len(before.splitlines()) - len(after.splitlines()) == 2
    again = run(capsys, root, state="absent", settings={"node.startup": None})
    assert again["changed"] is False


def test_duplicate_active_lines_are_merged(capsys, root):
    with open(str(root / REL), "a") as handle:
        handle.write("iscsid.safe_logout = No\niscsid.safe_logout = Yes\n")
    res = run(capsys, root, settings={"iscsid.safe_logout": "Yes"})
    assert res["changed"] and any("2 active lines" in w for w in res["warnings"])
    assert text(root).count("iscsid.safe_logout = ") == 1


def test_missing_final_newline_is_added(capsys, root):
    (root / REL).write_text("node.startup = manual")
    res = run(capsys, root, settings={"node.startup": "automatic"})
    assert res["changed"]
    assert text(root) == "node.startup = automatic\n"


def test_missing_file_is_created(capsys, tmp_path):
    (tmp_path / "etc" / "iscsi").mkdir(parents=True)
    res = run(capsys, tmp_path, settings={"node.startup": "automatic"})
    assert res["changed"] and text(tmp_path) == "node.startup = automatic\n"
    assert stat.S_IMODE(os.stat(str(tmp_path / REL)).st_mode) == 0o644


def test_backup(capsys, root):
    before = text(root)
    res = run(capsys, root, settings={"node.startup": "automatic"}, backup=True)
    assert os.path.exists(res["backup_file"])
    with open(res["backup_file"]) as handle:
        assert handle.read() == before


def test_allow_unknown(capsys, root):
    res = run(capsys, root, settings={"vendor.extension": "on"}, allow_unknown=True)
    assert res["changed"] and text(root).endswith("vendor.extension = on\n")


@pytest.mark.parametrize("args, words", [
    (dict(settings={"node.startp": "automatic"}), ["settings.node.startp", "unknown key", "'node.startup'",
                                                   "allow_unknown"]),
    (dict(settings={"node.startup": "sometimes"}), ["settings.node.startup", "one of manual, automatic, onboot"]),
    (dict(settings={"node.session.queue_depth": "deep"}), ["settings.node.session.queue_depth", "integer"]),
    (dict(settings={"node.session.cmds_max": 100}), ["power of two"]),
    (dict(settings={"node.session.auth.password": SECRET}), ["settings.node.session.auth.password", "secrets"]),
    (dict(secrets={"node.startup": "manual"}), ["secrets.node.startup", "not a secret key"]),
    (dict(settings={"node.name": "iqn.2001-04.com.example:x"}), ["identity"]),
    (dict(settings=["node.startup"]), ["dictionary"]),
    (dict(settings={}), ["at least one key"]),
    (dict(state="absent", settings=["node.startp"]), ["unknown key", "'node.startup'"]),
    (dict(settings={"node.startup": "automatic"}, path="etc/iscsi/iscsid.conf"), ["path", "absolute"]),
    (dict(settings={"node.session.auth.username": "a\nb"}), ["one line"]),
])
def test_bad_input_changes_nothing(capsys, root, args, words):
    snap = state(root)
    res = run(capsys, root, **args)
    assert res["failed"] is True
    for word in words:
        assert word in res["msg"], res["msg"]
    assert SECRET not in res["_raw"]
    assert state(root) == snap
