# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The discovery module's record half against this machine's REAL iscsiadm, in a private mount namespace
(iscsi_ns.Namespace: /etc/iscsi is a temporary directory there, an argv-recording wrapper is first on PATH).

This machine's kernel has no iSCSI transport, so SendTargets itself fails here (exit code 12, explained); everything
before it is real: the discovery record made by ``iscsiadm -m discoverydb -o new``, the CHAP secrets written into it
as a file, and iscsiadm reading them back - byte for byte the secrets given, never on a command line.
The full discovery runs in the lab (tests/lab/test_discovery.py).
"""

from __future__ import annotations

import os
import stat

import pytest

from iscsi_ns import Namespace, PYROOT, needs_iscsiadm  # tests/unit/plugins/modules/iscsi_ns.py

pytestmark = needs_iscsiadm

SECRET = "Disc-Secret-7f3a9c"
SECRET_IN = "Disc-Mutual-51e0bd"
PORTAL = "192.0.2.77:3260"


@pytest.fixture
def ns(tmp_path):
    if not os.path.isdir(PYROOT):
        pytest.skip("run through pytest from the repository (tests/unit/conftest.py makes .build/pyroot)")
    return Namespace(tmp_path)


def st_config(ns):
    return ns.db / "send_targets" / "192.0.2.77,3260" / "st_config"


def test_discovery_chap_lands_in_the_record_iscsiadm_reads_it_back(ns):
    auth = {"username": "disc-user", "password": SECRET, "username_in": "array", "password_in": SECRET_IN}
    res = ns.module(_name="discovery", portals=["192.0.2.77"], auth=auth)
    # no transport on this machine: the SendTargets step fails, with the reason spelled out
    assert res.get("failed") and "exit code 12" in res["msg"] and "discovery at %s" % PORTAL in res["msg"]
    assert res["changed"] is True  # the discovery record was made and holds the credentials
    assert SECRET not in res["_raw"] and SECRET_IN not in res["_raw"]

    path = st_config(ns)
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600
    text = path.read_text()
    assert text.startswith("# BEGIN RECORD") and text.endswith("# END RECORD\n")

    # iscsiadm's own reader: masked without -S, the exact secrets with -S
    shown = ns.iscsiadm("-m", "discoverydb", "-t", "st", "-p", PORTAL).stdout
    assert "discovery.sendtargets.auth.authmethod = CHAP" in shown
    assert "discovery.sendtargets.auth.username = disc-user" in shown
    assert "discovery.sendtargets.auth.password = ********" in shown
    assert "discovery.sendtargets.auth.username_in = array" in shown
    secret_view = ns.iscsiadm("-m", "discoverydb", "-t", "st", "-p", PORTAL, "-S").stdout
    assert "discovery.sendtargets.auth.password = %s\n" % SECRET in secret_view
    assert "discovery.sendtargets.auth.password_in = %s\n" % SECRET_IN in secret_view

    calls = ns.calls()
    assert ["-m", "discoverydb", "-t", "st", "-p", PORTAL, "-o", "new"] in calls
    assert ["-m", "discoverydb", "-t", "st", "-p", PORTAL] in calls
    assert ["-m", "discoverydb", "-t", "st", "-p", PORTAL, "--discover", "-o", "new", "-P", "1"] in calls
    flat = "\n".join("\0".join(c) for c in calls)
    assert SECRET not in flat and SECRET_IN not in flat
    assert not any(c[:2] == ["-m", "discovery"] for c in calls)

    # the same credentials again: nothing to store (only discovery is retried)
    before = path.read_bytes()
    again = ns.module(_name="discovery", portals=["192.0.2.77"], auth=auth)
    assert again.get("failed") and path.read_bytes() == before
    assert not any(c[-1] == "new" and "--discover" not in c for c in ns.calls()[len(calls):])


def test_check_mode_writes_nothing_and_method_none_removes_the_secrets(ns):
    res = ns.module(_name="discovery", check=True, portals=["192.0.2.77"], auth={"username": "u", "password": SECRET})
    assert not res.get("failed") and res["changed"] is True and res["portals"][0]["targets_known"] is False
    assert not st_config(ns).exists() and ns.calls() == []

    ns.module(_name="discovery", portals=["192.0.2.77"], auth={"username": "u", "password": SECRET})
    assert SECRET in st_config(ns).read_text()
    off = ns.module(_name="discovery", portals=["192.0.2.77"], auth={"method": "None"})
    assert off["changed"] is True
    text = st_config(ns).read_text()
    assert "discovery.sendtargets.auth.authmethod = None" in text and "password" not in text
    shown = ns.iscsiadm("-m", "discoverydb", "-t", "st", "-p", PORTAL, "-S").stdout
    assert "discovery.sendtargets.auth.password = <empty>" in shown
