# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""``root`` is never escaped through a symbolic link: paths resolve inside root as in a chroot (issue 12)."""

from __future__ import annotations

import errno
import os

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils._rootfs import host_path, resolve
from ansible_collections.openiscsi.initiator.plugins.modules import (
    fstab_netdev,
    initiator_name,
    iscsid_config,
    service_defaults,
)

from harness import run_module

IQN = "iqn.2024-01.com.example:host1"
CASES = {
    # module, the file's path inside root, its text, args, what the changed file holds
    "fstab_netdev": (fstab_netdev, "/etc/fstab", "/dev/sdb1 /srv ext4 defaults 0 2\n", {"path": ["/srv"]},
                     "defaults,_netdev"),
    "iscsid_config": (iscsid_config, "/etc/iscsi/iscsid.conf", "node.startup = manual\n",
                      {"settings": {"node.startup": "automatic"}}, "node.startup = automatic"),
    "service_defaults": (service_defaults, "/etc/default/open-iscsi", "HANDLE_NETDEV=0\n", {"handle_netdev": True},
                         "HANDLE_NETDEV=1"),
    "initiator_name": (initiator_name, "/etc/iscsi/initiatorname.iscsi", "InitiatorName=%s\n" % IQN,
                       {"name": "iqn.2024-02.com.example:other"}, "InitiatorName=iqn.2024-02.com.example:other"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("link", ["absolute", "dotdot"])
def test_symlink_under_root_resolves_inside_root(tmp_path, capsys, case, link):
    module, rel, text, args, expected = CASES[case]
    root = tmp_path / "img"
    outside = tmp_path / "elsewhere" / os.path.basename(rel)      # on the host, outside root: must not change
    outside.parent.mkdir(parents=True)
    outside.write_text(text)
    inside = root / str(outside).lstrip("/")                       # the same absolute path seen in the chroot
    inside.parent.mkdir(parents=True)
    inside.write_text(text)
    entry = root / rel.lstrip("/")
    entry.parent.mkdir(parents=True, exist_ok=True)
    if link == "absolute":
        os.symlink(str(outside), str(entry))                       # /img/etc/x -> /<tmp>/elsewhere/x
    else:
        # ../../../.. climbs above root on the host; in a chroot it stops at root
        os.symlink("../" * (len(entry.relative_to(root).parts) + 3) + str(outside).lstrip("/"), str(entry))
    res = run_module(capsys, module, dict(args, root=str(root)))
    assert res["changed"] and not res.get("failed"), res
    assert outside.read_text() == text                             # the host's file is untouched
    assert expected in inside.read_text()                          # the chroot's file got the change
    assert os.path.islink(str(entry))                              # the link stays a link


def test_resolve_rules(tmp_path):
    root = tmp_path / "r"
    (root / "etc" / "real").mkdir(parents=True)
    os.symlink("/etc/real", str(root / "etc" / "abs"))
    os.symlink("real/../real", str(root / "etc" / "rel"))
    os.symlink("../../../../..", str(root / "up"))
    os.symlink("loop", str(root / "loop"))
    assert resolve(str(root), "/etc/abs/x") == "/etc/real/x"
    assert resolve(str(root), "/etc/rel/x") == "/etc/real/x"
    assert resolve(str(root), "/up/etc") == "/etc"
    assert resolve(str(root), "/../../etc/abs") == "/etc/real"
    assert resolve(str(root), "/missing/../etc/abs") == "/etc/abs"    # missing: the rest taken as written
    assert resolve(str(root), "/missing/x", strict=True) is None
    assert host_path(str(root), "/etc/abs/f") == str(root / "etc" / "real" / "f")
    assert host_path(str(root), "/etc/abs", follow=False) == str(root / "etc" / "abs")
    with pytest.raises(OSError) as err:
        host_path(str(root), "/loop/x")
    assert err.value.errno == errno.ELOOP
