# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Two module runs at once on one host must not lose an update (issue 12, the one writer).

Each round forks two processes that wait on a barrier and then run a module's ``main()`` at the same moment, each
asking for a DIFFERENT change of the same file; afterwards the file must hold both changes (a lost update is a round
where one run reported ``changed`` and its change is gone).  ``initiator_name generate`` runs twice on a host
without a name: both must return the name that is on disk.  20 rounds per module here, 200 under ``-m fuzz``."""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import os

import pytest

from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.openiscsi.initiator.plugins.module_utils._initiatorname import InitiatorNameFile
from ansible_collections.openiscsi.initiator.plugins.module_utils._kvconf import KVFile
from ansible_collections.openiscsi.initiator.plugins.module_utils._shfile import ShFile
from ansible_collections.openiscsi.initiator.plugins.modules import (
    fstab_netdev,
    initiator_name,
    iscsid_config,
    service_defaults,
)

MODULES = {"fstab_netdev": fstab_netdev, "iscsid_config": iscsid_config, "service_defaults": service_defaults,
           "initiator_name": initiator_name}
CTX = multiprocessing.get_context("fork")


def _child(name, args, barrier, queue):
    out = io.StringIO()
    ansible_warnings._global_warnings.clear()  # pylint: disable=protected-access
    barrier.wait()
    try:
        with contextlib.redirect_stdout(out), patch_module_args(dict(args, _ansible_diff=False)):
            MODULES[name].main()
    except SystemExit:
        pass
    queue.put(out.getvalue())


def run_pair(name, args_a, args_b):
    """Run module *name* twice at once; the two results."""
    barrier = CTX.Barrier(2)
    queue = CTX.Queue()
    procs = [CTX.Process(target=_child, args=(name, args, barrier, queue)) for args in (args_a, args_b)]
    for proc in procs:
        proc.start()
    results = [json.loads(queue.get(timeout=60)) for _proc in procs]
    for proc in procs:
        proc.join(60)
    return results


FSTAB = "/dev/sdb1 /srv/a ext4 defaults 0 2\n/dev/sdc1 /srv/b ext4 defaults 0 2\n"


def lost_fstab(root):
    path = root / "etc" / "fstab"
    path.write_text(FSTAB)
    results = run_pair("fstab_netdev", dict(root=str(root), path=["/srv/a"]), dict(root=str(root), path=["/srv/b"]))
    assert all(r.get("changed") for r in results), results
    return path.read_text().count("_netdev") != 2


def lost_iscsid(root):
    path = root / "etc" / "iscsi" / "iscsid.conf"
    path.write_text("node.startup = manual\n")
    results = run_pair("iscsid_config", dict(root=str(root), settings={"node.session.timeo.replacement_timeout": 15}),
                       dict(root=str(root), settings={"node.conn[0].timeo.noop_out_interval": 3}))
    assert all(r.get("changed") for r in results), results
    values = KVFile.parse(path.read_text()).as_dict()
    return not (values.get("node.session.timeo.replacement_timeout") == "15"
                and values.get("node.conn[0].timeo.noop_out_interval") == "3")


def lost_defaults(root):
    path = root / "etc" / "default" / "open-iscsi"
    path.write_text("HANDLE_NETDEV=0\n")
    results = run_pair("service_defaults", dict(root=str(root), handle_netdev=True),
                       dict(root=str(root), lvm_groups=["vg0"]))
    assert all(r.get("changed") for r in results), results
    sh = ShFile.parse(path.read_text())
    return not (sh.get("HANDLE_NETDEV") == "1" and sh.get("LVMGROUPS") == "vg0")


def lost_generate(root):
    path = root / "etc" / "iscsi" / "initiatorname.iscsi"
    if path.exists():
        path.unlink()
    results = run_pair("initiator_name", dict(root=str(root), generate=True), dict(root=str(root), generate=True))
    on_disk = InitiatorNameFile.parse(path.read_text()).valid_name
    return any(r.get("name") != on_disk for r in results)


CASES = {"fstab_netdev": lost_fstab, "iscsid_config": lost_iscsid, "service_defaults": lost_defaults,
         "initiator_name_generate": lost_generate}


def _rounds(tmp_path, case, rounds):
    root = tmp_path / "root"
    for sub in ("etc/iscsi", "etc/default"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    lost = sum(1 for _round in range(rounds) if CASES[case](root))
    assert lost == 0, "%s: %d of %d rounds lost an update" % (case, lost, rounds)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("case", sorted(CASES))
def test_two_runs_at_once_lose_nothing(tmp_path, case):
    _rounds(tmp_path, case, 20)


@pytest.mark.fuzz
@pytest.mark.parametrize("case", sorted(CASES))
def test_two_runs_at_once_lose_nothing_many_rounds(tmp_path, case):
    _rounds(tmp_path, case, 200)
