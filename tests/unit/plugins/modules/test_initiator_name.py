# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The initiator_name module run in-process (its real main()) against files and sysfs trees under tmp_path."""

from __future__ import annotations

import os
import re
import stat

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils._initiatorname import HEADER
from ansible_collections.openiscsi.initiator.plugins.modules import initiator_name
from harness import run_module

DEBIAN = (
    "## DO NOT EDIT OR REMOVE THIS FILE!\n"
    "## If you remove this file, the iSCSI daemon will not start.\n"
    "## If you change the InitiatorName, existing access control lists\n"
    "## may reject this initiator.  The InitiatorName must be unique\n"
    "## for each iSCSI initiator.  Do NOT duplicate iSCSI InitiatorNames.\n"
    "InitiatorName=iqn.1993-08.org.debian:01:c3cd462f4145\n"
)
OLD = "iqn.1993-08.org.debian:01:c3cd462f4145"
NEW = "iqn.2004-10.com.example:db01"
GENERATED_RE = re.compile(r"iqn\.1993-08\.org\.debian:01:[0-9a-f]{12}\Z")
REL = "/etc/iscsi/initiatorname.iscsi"


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A system root with /etc/iscsi; PATH without any lsinitramfs unless a test adds its own."""
    (tmp_path / "etc" / "iscsi").mkdir(parents=True)
    old = os.umask(0o022)
    yield tmp_path
    os.umask(old)


def fpath(root):
    return root / REL.lstrip("/")


def write(root, data, mode=0o600):
    p = fpath(root)
    p.write_bytes(data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data)
    os.chmod(str(p), mode)
    return p


def run(capsys, root, check=False, diff=True, **args):
    args.setdefault("root", str(root))
    return run_module(capsys, initiator_name, args, check=check, diff=diff)


def snapshot(path):
    st = os.stat(str(path))
    return path.read_bytes(), st.st_ino, st.st_mtime_ns, stat.S_IMODE(st.st_mode)


def mode_of(path):
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def add_session(root, sid, target="iqn.2026-11.lab.target:open", state="LOGGED_IN", host=2):
    """A session laid out like the kernel's: class symlink -> device directory holding the attributes."""
    dev = root / "sys" / "devices" / "platform" / ("host%d" % host) / ("session%d" % sid)
    cls_dir = dev / "iscsi_session" / ("session%d" % sid)
    cls_dir.mkdir(parents=True)
    (cls_dir / "state").write_text(state + "\n")
    (cls_dir / "targetname").write_text(target + "\n")
    (cls_dir / "tpgt").write_text("1\n")
    link_dir = root / "sys" / "class" / "iscsi_session"
    link_dir.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(str(cls_dir), str(link_dir)), str(link_dir / ("session%d" % sid)))


# ------------------------------------------------------------------------------------------------------ setting
def test_set_name_check_mode_then_real_then_idempotent(capsys, root):
    p = write(root, DEBIAN)
    before = snapshot(p)
    predicted = run(capsys, root, check=True, name=NEW)
    assert snapshot(p) == before  # check mode touched nothing
    real = run(capsys, root, name=NEW)
    assert predicted == real
    assert real["changed"] is True
    assert real["name"] == NEW and real["previous_name"] == OLD
    assert real["restart_needed"] is True and real["generated"] is False
    assert real["initramfs_rebuild_needed"] is False
    assert p.read_text() == DEBIAN.replace(OLD, NEW)
    assert real["diff"] == {"before": DEBIAN, "after": DEBIAN.replace(OLD, NEW),
                            "before_header": str(p), "after_header": str(p)}
    assert mode_of(p) == 0o600
    again = run(capsys, root, name=NEW)
    assert again["changed"] is False and again["restart_needed"] is False
    assert "previous_name" not in again
    assert again["diff"]["before"] == again["diff"]["after"]


def test_uppercase_name_is_normalized(capsys, root):
    p = write(root, DEBIAN)
    res = run(capsys, root, name="IQN.2004-10.COM.Example:DB01")
    assert res["name"] == NEW
    assert "InitiatorName=%s\n" % NEW in p.read_text()


def test_mode_tightened_to_0600_and_owner_kept(capsys, root):
    p = write(root, DEBIAN, mode=0o644)
    os.chown(str(p), 1234, 4321)
    run(capsys, root, name=NEW)
    st = os.stat(str(p))
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert (st.st_uid, st.st_gid) == (1234, 4321)


def test_unchanged_file_mode_left_alone(capsys, root):
    p = write(root, DEBIAN, mode=0o644)
    assert run(capsys, root, name=OLD)["changed"] is False
    assert mode_of(p) == 0o644


def test_backup(capsys, root):
    p = write(root, DEBIAN)
    res = run(capsys, root, name=NEW, backup=True)
    backup = res["backup_file"]
    assert os.path.dirname(backup) == str(p.parent)
    with open(backup) as handle:
        assert handle.read() == DEBIAN
    assert "backup_file" not in run(capsys, root, name=NEW, backup=True)


def test_undecodable_bytes_elsewhere_survive(capsys, root):
    data = b"## caf\xe9 \xff\r\n" + b"InitiatorName=" + OLD.encode() + b"\r\n# end"
    p = write(root, data)
    res = run(capsys, root, name=NEW)
    assert res["changed"] is True
    assert p.read_bytes() == data.replace(OLD.encode(), NEW.encode())


# ------------------------------------------------------------------------------------------------------ alias
def test_alias_set_and_removed(capsys, root):
    p = write(root, DEBIAN)
    res = run(capsys, root, alias="db01")
    assert res["changed"] and res["alias"] == "db01" and res["restart_needed"] is True
    assert "previous_name" not in res and res["initramfs_rebuild_needed"] is False
    assert p.read_text() == DEBIAN + "InitiatorAlias=db01\n"
    assert run(capsys, root, alias="db01")["changed"] is False
    res = run(capsys, root, state="absent")
    assert res["changed"] and res["alias"] is None
    assert p.read_text() == DEBIAN
    assert run(capsys, root, state="absent")["changed"] is False


def test_alias_with_state_absent_refused(capsys, root):
    p = write(root, DEBIAN)
    before = snapshot(p)
    res = run(capsys, root, alias="x", state="absent")
    assert res["failed"] and res["msg"].startswith("alias: cannot be combined with state: absent")
    assert snapshot(p) == before


# ------------------------------------------------------------------------------------------------------ generate
def test_generate_when_file_absent(capsys, root):
    p = fpath(root)
    predicted = run(capsys, root, check=True, generate=True)
    assert not p.exists()
    assert predicted["changed"] and predicted["generated"] and GENERATED_RE.match(predicted["name"])
    assert predicted["diff"]["before_header"] == "%s (absent)" % p
    res = run(capsys, root, generate=True)
    assert res["changed"] is True and res["generated"] is True
    assert GENERATED_RE.match(res["name"])
    assert res["previous_name"] is None
    assert p.read_text() == HEADER + "InitiatorName=%s\n" % res["name"]
    assert mode_of(p) == 0o600
    # only the random part differs from the check-mode prediction
    assert {k: v for k, v in predicted.items() if k not in ("name", "diff", "_raw")} == \
        {k: v for k, v in res.items() if k not in ("name", "diff", "_raw")}
    again = run(capsys, root, generate=True)
    assert again["changed"] is False and again["generated"] is False and again["name"] == res["name"]


def test_generate_keeps_valid_name(capsys, root):
    p = write(root, DEBIAN)
    before = snapshot(p)
    res = run(capsys, root, generate=True, prefix="iqn.2004-10.com.example:nodes")
    assert res["changed"] is False and res["name"] == OLD and res["generated"] is False
    assert snapshot(p) == before


def test_generate_with_prefix_replaces_generatename_yes(capsys, root):
    p = write(root, "# cloud image\nGenerateName=yes\n")
    res = run(capsys, root, generate=True, prefix="IQN.2004-10.com.example:nodes")
    assert re.match(r"iqn\.2004-10\.com\.example:nodes:[0-9a-f]{12}\Z", res["name"])
    assert p.read_text() == "# cloud image\nInitiatorName=%s\n" % res["name"]
    assert any(w.startswith("repaired: no InitiatorName= line") for w in res["warnings"])


def test_generate_on_invalid_name_replaces_it(capsys, root):
    p = write(root, "InitiatorName=not-a-name\n")
    res = run(capsys, root, generate=True)
    assert res["generated"] is True and res["previous_name"] == "not-a-name"
    assert p.read_text() == "InitiatorName=%s\n" % res["name"]


@pytest.mark.parametrize("prefix,reason", [
    ("eui.02004567A425678D", "prefix: must be an 'iqn.' name"),
    ("iqn.2001-13.com.example", "prefix: month 13"),
])
def test_generate_bad_prefix(capsys, root, prefix, reason):
    p = write(root, DEBIAN)
    before = snapshot(p)
    res = run(capsys, root, generate=True, prefix=prefix)
    assert res["failed"] and reason in res["msg"]
    assert snapshot(p) == before


def test_name_and_generate_exclusive(capsys, root):
    res = run(capsys, root, generate=True, name=NEW)
    assert res["failed"] and "mutually exclusive" in res["msg"]
    assert not fpath(root).exists()


# ------------------------------------------------------------------------------------------------------ bad input
BAD_NAMES = [
    ("iqn.2001-13.com.example:x", "name: month 13"),
    ("iqn.2001-04", "name: the date 2001-04 must be followed by '.'"),
    ("iqn.2001-04.com.example:my disk", "name: contains inner whitespace"),
    ("eui.0123", "name: has 4 hexadecimal digits after 'eui.'"),
    ("naa." + "1" * 17, "name: has 17 hexadecimal digits after 'naa.'"),
    ("iqn.2001-04.com.example:" + "a" * 200, "name: is 224 bytes long"),
    ("", "name: must not be empty"),
    ("iqn.2001-04.com.exa_mple", "name: character '_' at position 20"),
]


@pytest.mark.parametrize("value,reason", BAD_NAMES)
def test_bad_name_fails_before_touching_the_file(capsys, root, value, reason):
    p = write(root, DEBIAN)
    before = snapshot(p)
    res = run(capsys, root, name=value)
    assert res["failed"] and reason in res["msg"]
    assert snapshot(p) == before


@pytest.mark.parametrize("value,reason", [("", "alias: must not be empty"), ("a\nb", "alias: control character")])
def test_bad_alias_fails(capsys, root, value, reason):
    p = write(root, DEBIAN)
    before = snapshot(p)
    res = run(capsys, root, alias=value)
    assert res["failed"] and reason in res["msg"]
    assert snapshot(p) == before


def test_relative_path_refused(capsys, root):
    res = run(capsys, root, name=NEW, path="etc/x")
    assert res["failed"] and res["msg"].startswith("path: must be an absolute path")


# (file content, substring of the failure message)
BAD_FILES = [
    ("", "no InitiatorName= line with a value"),
    ("## header only\n", "no InitiatorName= line with a value"),
    ("InitiatorName=\n", "'InitiatorName=' has no value"),
    ("GenerateName=yes\n", "GenerateName=yes is present"),
    (DEBIAN + "GenerateName=yes\n", "line 7: GenerateName=yes makes Debian's start-up check replace this file"),
    (DEBIAN + "InitiatorName=iqn.2004-10.com.example:b\n", "2 InitiatorName= lines (lines 6, 7)"),
    ("InitiatorName=iqn.2001-13.com.example:x\n", "line 1: invalid name 'iqn.2001-13.com.example:x': month 13"),
    ("InitiatorName=bad name\n", "invalid name 'bad name'"),
    (b"InitiatorName=iqn.2001-04.com.example:\xff\n", "byte 0xff"),
    ("  InitiatorName=%s\n" % OLD, "line 1: InitiatorName= does not start the line"),
    (DEBIAN + "garbage here\n", "line 7: unrecognized line 'garbage here'"),
    ("InitiatorName = %s\n" % OLD, "no spaces around '=' allowed"),
    ("initiatorname=%s\n" % OLD, "the key is case-sensitive"),
    (b"\x00\x01binary\xfe\n", "unrecognized line"),
]


@pytest.mark.parametrize("content,reason", BAD_FILES)
@pytest.mark.parametrize("extra", [{}, {"alias": "db01"}, {"state": "absent"}], ids=["plain", "alias", "absent"])
def test_bad_file_fails_and_stays_byte_identical(capsys, root, content, reason, extra):
    p = write(root, content, mode=0o640)
    before = snapshot(p)
    for check in (True, False):
        res = run(capsys, root, check=check, **extra)
        assert res["failed"] is True
        assert "is malformed, nothing was changed" in res["msg"]
        assert reason in res["msg"], res["msg"]
        assert res["findings"] and all(f["severity"] in ("error", "warning") for f in res["findings"])
        assert snapshot(p) == before
    assert sorted(os.listdir(str(p.parent))) == [p.name]


@pytest.mark.parametrize("content,reason", BAD_FILES)
def test_bad_file_repaired_when_name_given(capsys, root, content, reason):
    p = write(root, content)
    predicted = run(capsys, root, check=True, name=NEW)
    res = run(capsys, root, name=NEW)
    assert predicted == res
    assert res["changed"] is True and res["name"] == NEW
    assert any(w.startswith("repaired: ") for w in res["warnings"])
    text = p.read_text(errors="surrogateescape")
    assert text.count("InitiatorName=") == 1 and "InitiatorName=%s\n" % NEW in text
    assert "GenerateName" not in text and "garbage" not in text
    assert run(capsys, root, name=NEW)["changed"] is False


def test_missing_file_without_name_fails_and_creates_nothing(capsys, root):
    for extra in ({}, {"alias": "x"}):
        res = run(capsys, root, **extra)
        assert res["failed"] and "does not exist and neither name nor generate: true was given" in res["msg"]
        assert not fpath(root).exists()


def test_warnings_for_non_fatal_findings(capsys, root):
    write(root, "InitiatorName=IQN.2001-04.com.example:A\nInitiatorAlias=\n")
    res = run(capsys, root)
    assert res["changed"] is False and res["name"] == "IQN.2001-04.com.example:A"
    assert any("not in normalized (lower-case) form" in w for w in res["warnings"])
    assert any("'InitiatorAlias=' has no value" in w for w in res["warnings"])


# ------------------------------------------------------------------------------------------------------ sessions
def test_change_refused_while_sessions_live(capsys, root):
    p = write(root, DEBIAN)
    add_session(root, 1)
    add_session(root, 3, target="iqn.2026-11.lab.target:chap", state="FAILED")
    before = snapshot(p)
    for check in (True, False):
        res = run(capsys, root, check=check, name=NEW)
        assert res["failed"] is True
        msg = res["msg"]
        assert "refusing to change the initiator name from %s to %s" % (OLD, NEW) in msg
        assert "2 live iSCSI session(s) (sid 1, 3; targets iqn.2026-11.lab.target:chap, " \
               "iqn.2026-11.lab.target:open)" in msg
        assert "access control lists" in msg and "force: true" in msg
        assert snapshot(p) == before


def test_generate_on_missing_name_refused_while_sessions_live(capsys, root):
    add_session(root, 1)
    res = run(capsys, root, generate=True)
    assert res["failed"] and "refusing to change the initiator name from (none)" in res["msg"]
    assert not fpath(root).exists()


def test_force_changes_name_with_sessions_live(capsys, root):
    p = write(root, DEBIAN)
    add_session(root, 1)
    res = run(capsys, root, name=NEW, force=True)
    assert res["changed"] is True and res["previous_name"] == OLD and res["restart_needed"] is True
    assert any("force: true" in w and NEW in w for w in res["warnings"])
    assert p.read_text() == DEBIAN.replace(OLD, NEW)


def test_sessions_do_not_block_alias_or_unchanged_name(capsys, root):
    p = write(root, DEBIAN)
    add_session(root, 1)
    assert run(capsys, root, name=OLD)["changed"] is False
    assert run(capsys, root, generate=True)["changed"] is False
    res = run(capsys, root, alias="db01")
    assert res["changed"] is True and res["restart_needed"] is True
    assert p.read_text().endswith("InitiatorAlias=db01\n")


# ------------------------------------------------------------------------------------------------------ initramfs
def test_initramfs_config_means_rebuild(capsys, root):
    write(root, DEBIAN)
    (root / "etc" / "iscsi" / "iscsi.initramfs").write_text("ISCSI_AUTO=true\n")
    assert run(capsys, root, check=True, alias="db01")["initramfs_rebuild_needed"] is False
    assert run(capsys, root, check=True, name=NEW)["initramfs_rebuild_needed"] is True
    assert run(capsys, root, check=True, name=OLD)["initramfs_rebuild_needed"] is False


@pytest.fixture
def no_lsinitramfs(monkeypatch, tmp_path_factory):
    empty = tmp_path_factory.mktemp("emptybin")
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(initiator_name.AnsibleModule, "get_bin_path",
                        lambda self, arg, required=False, opt_dirs=None: None)


def add_initrd(root, name="initrd.img-6.1.0-28-amd64"):
    boot = root / "boot"
    boot.mkdir(exist_ok=True)
    (boot / name).write_bytes(b"not really an initramfs")
    (boot / name.replace("initrd.img-", "vmlinuz-")).write_bytes(b"kernel")
    (boot / (name + ".old-dkms")).write_bytes(b"stale copy, never inspected")
    return boot / name


def test_initramfs_hook_heuristic_without_lsinitramfs(capsys, root, no_lsinitramfs):
    write(root, DEBIAN)
    assert run(capsys, root, check=True, name=NEW)["initramfs_rebuild_needed"] is False  # no initrd at all
    add_initrd(root)
    assert run(capsys, root, check=True, name=NEW)["initramfs_rebuild_needed"] is False  # no hook
    hook = root / "usr" / "share" / "initramfs-tools" / "hooks" / "iscsi"
    hook.parent.mkdir(parents=True)
    hook.write_text("#!/bin/sh\n")
    assert run(capsys, root, check=True, name=NEW)["initramfs_rebuild_needed"] is True
    conf = root / "etc" / "initramfs-tools" / "conf.d" / "open-iscsi"
    conf.parent.mkdir(parents=True)
    conf.write_text("# opt out\nNO_ISCSI_IN_INITRAMFS=yes\n")
    assert run(capsys, root, check=True, name=NEW)["initramfs_rebuild_needed"] is False


@pytest.fixture
def fake_lsinitramfs(monkeypatch, tmp_path_factory):
    """An lsinitramfs that prints <image>.list and fails when <image>.fail exists; records its calls."""
    bindir = tmp_path_factory.mktemp("bin")
    log = bindir / "calls"
    script = bindir / "lsinitramfs"
    script.write_text('#!/bin/sh\necho "$1" >> %s\n[ -e "$1.fail" ] && exit 1\ncat "$1.list"\n' % log)
    script.chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ.get("PATH", "")))
    return log


def test_initramfs_inspected_with_lsinitramfs(capsys, root, fake_lsinitramfs):
    write(root, DEBIAN)
    image = add_initrd(root)
    listing = image.parent / (image.name + ".list")
    listing.write_text("usr/lib/modules\netc\netc/iscsi.initramfs.d\nsbin/iscsistart\n")
    assert run(capsys, root, check=True, name=NEW)["initramfs_rebuild_needed"] is False
    listing.write_text("etc\netc/initiatorname.iscsi\nsbin/iscsistart\n")
    assert run(capsys, root, check=True, name=NEW)["initramfs_rebuild_needed"] is True
    assert fake_lsinitramfs.read_text().splitlines() == [str(image)] * 2
    # not inspected at all when the name does not change
    run(capsys, root, check=True, alias="x")
    run(capsys, root, check=True, name=OLD)
    assert len(fake_lsinitramfs.read_text().splitlines()) == 2


def test_initramfs_lsinitramfs_failure_falls_back_to_hook(capsys, root, fake_lsinitramfs):
    write(root, DEBIAN)
    image = add_initrd(root)
    (image.parent / (image.name + ".fail")).write_text("")
    assert run(capsys, root, check=True, name=NEW)["initramfs_rebuild_needed"] is False
    hook = root / "usr" / "share" / "initramfs-tools" / "hooks" / "iscsi"
    hook.parent.mkdir(parents=True)
    hook.write_text("#!/bin/sh\n")
    assert run(capsys, root, check=True, name=NEW)["initramfs_rebuild_needed"] is True
