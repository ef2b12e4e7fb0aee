# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.openiscsi.initiator.plugins.module_utils._fileio import (
    file_diff,
    read_bytes,
    read_text,
    to_bytes_preserving,
    write_atomic,
)


@pytest.fixture(autouse=True)
def module_args():
    """Keep the module arguments patched for the whole test: exit_json/fail_json need them too."""
    with patch_module_args({}):
        yield


def make_module(check_mode=False):
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    module.check_mode = check_mode
    return module


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def leftovers(directory, keep):
    return sorted(set(os.listdir(directory)) - set(keep))


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_read_missing_is_none(tmp_path):
    assert read_bytes(str(tmp_path / "nope")) is None
    assert read_text(str(tmp_path / "nope")) is None


def test_read_text_keeps_undecodable_bytes(tmp_path):
    data = b"# \xff\xfe caf\xc3\xa9\r\nx"
    (tmp_path / "f").write_bytes(data)
    text = read_text(str(tmp_path / "f"))
    assert "caf\u00e9" in text
    assert to_bytes_preserving(text) == data


def test_new_file_gets_given_mode_despite_umask(tmp_path, umask022):
    path = str(tmp_path / "secret")
    module = make_module()
    assert write_atomic(module, path, "pw=1\n", mode=0o600) is None
    assert read_bytes(path) == b"pw=1\n"
    assert mode_of(path) == 0o600
    assert leftovers(str(tmp_path), ["secret"]) == []


def test_new_file_wider_mode(tmp_path, umask022):
    path = str(tmp_path / "f")
    write_atomic(make_module(), path, b"x", mode=0o755)
    assert mode_of(path) == 0o755


def test_existing_file_keeps_mode_unless_forced(tmp_path):
    path = str(tmp_path / "f")
    with open(path, "w") as handle:
        handle.write("old\n")
    os.chmod(path, 0o640)
    write_atomic(make_module(), path, "new\n", mode=0o600)
    assert read_bytes(path) == b"new\n" and mode_of(path) == 0o640
    write_atomic(make_module(), path, "newer\n", mode=0o600, force_mode=True)
    assert read_bytes(path) == b"newer\n" and mode_of(path) == 0o600


def test_file_is_replaced_not_rewritten_in_place(tmp_path):
    path = str(tmp_path / "f")
    with open(path, "w") as handle:
        handle.write("old\n")
    inode = os.stat(path).st_ino
    write_atomic(make_module(), path, "new\n")
    assert os.stat(path).st_ino != inode  # a rename, never a truncate-and-write


def test_identical_content_is_not_written(tmp_path):
    path = str(tmp_path / "f")
    with open(path, "wb") as handle:
        handle.write(b"same\n")
    os.chmod(path, 0o644)
    before = os.stat(path)
    assert write_atomic(make_module(), path, "same\n", mode=0o600, force_mode=True, backup=True) is None
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns, mode_of(path)) == (before.st_ino, before.st_mtime_ns, 0o644)
    assert leftovers(str(tmp_path), ["f"]) == []


def test_backup_made_and_returned(tmp_path):
    path = str(tmp_path / "f")
    with open(path, "wb") as handle:
        handle.write(b"old\n")
    backup = write_atomic(make_module(), path, "new\n", backup=True)
    assert backup and os.path.dirname(backup) == str(tmp_path)
    assert read_bytes(backup) == b"old\n"
    assert read_bytes(path) == b"new\n"


def test_no_backup_for_new_file(tmp_path):
    assert write_atomic(make_module(), str(tmp_path / "f"), "x", backup=True) is None
    assert os.listdir(str(tmp_path)) == ["f"]


def test_check_mode_writes_nothing(tmp_path):
    path = str(tmp_path / "f")
    assert write_atomic(make_module(check_mode=True), path, "x", backup=True) is None
    assert not os.path.exists(path)


def test_symlink_is_followed(tmp_path):
    real = tmp_path / "real"
    real.write_bytes(b"old")
    link = tmp_path / "link"
    link.symlink_to("real")
    write_atomic(make_module(), str(link), "new")
    assert os.path.islink(str(link))
    assert real.read_bytes() == b"new"


def test_missing_directory_fails_cleanly(tmp_path, capsys):
    path = str(tmp_path / "missing" / "f")
    with pytest.raises(SystemExit) as info:
        write_atomic(make_module(), path, "x")
    assert info.value.code == 1
    result = json.loads(capsys.readouterr().out)
    assert result["failed"] is True
    assert "directory %s does not exist" % (tmp_path / "missing") in result["msg"]


def _mask(text):
    return text.replace("s3cret", "********")


def test_file_diff_names_an_absent_side_and_masks_both():
    mask = _mask
    created = file_diff("/etc/x", None, "a=s3cret\n", mask=mask)
    assert created == {"before": "", "after": "a=********\n", "before_header": "/etc/x (absent)", "after_header": "/etc/x"}
    removed = file_diff("/etc/x", "b=s3cret\n", None, mask=mask)
    assert removed["before"] == "b=********\n" and removed["after"] == ""
    assert removed["before_header"] == "/etc/x" and removed["after_header"] == "/etc/x (absent)"
    plain = file_diff("/etc/y", "1\n", "2\n")
    assert (plain["before"], plain["after"], plain["before_header"]) == ("1\n", "2\n", "/etc/y")
