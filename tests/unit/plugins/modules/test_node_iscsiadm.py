# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node module against the REAL iscsiadm of this machine, in a private mount namespace.

iscsiadm's paths are compiled in, so each run happens under ``unshare -m`` with a temporary directory bind-mounted
over /etc/iscsi (and a tmpfs over /run/lock): this machine's own node DB is never touched.  iscsiadm's node DB
operations need neither iscsid nor the kernel transport.  An ``iscsiadm`` wrapper first on PATH records every
command line the module runs, to prove that no CHAP secret is ever on one.

Needs root, unshare and open-iscsi; skipped otherwise.  ``iscsiadm -o new`` waits ~1 s for an iscsid that is not
running here, so the tests create records in as few runs as they can.
"""

from __future__ import annotations

import os
import stat

import pytest

from iscsi_ns import PYROOT, Namespace, needs_iscsiadm  # tests/unit/plugins/modules/iscsi_ns.py

pytestmark = needs_iscsiadm
T1 = "iqn.2001-04.com.example:disk1"
T2 = "iqn.2001-04.com.example:disk2"
T3 = "iqn.2001-04.com.example:disk3"
SECRETS = ("Out-Secret-4711", "In-Secret-0815", "Rotated-Secret-1234")


@pytest.fixture
def ns(tmp_path):
    if not os.path.isdir(PYROOT):
        pytest.skip("run through pytest from the repository (tests/unit/conftest.py makes .build/pyroot)")
    return Namespace(tmp_path)


CHAP = {"username": "alice", "password": SECRETS[0], "username_in": "storage", "password_in": SECRETS[1],
        "chap_algs": ["SHA256", "MD5"]}


def nodes_spec():
    return [
        {"target": T1, "portal": "192.0.2.10"},
        {"target": T2, "portal": "[2001:db8::10]:3261", "tpgt": 1},
        {"target": T3, "portal": "192.0.2.30", "tpgt": 3, "startup": "manual", "conn_startup": "automatic",
         "settings": {"node.session.timeo.replacement_timeout": 15}},
    ]


def test_bulk_create_matches_iscsiadm_byte_for_byte_and_no_secret_on_argv(ns, tmp_path):
    res = ns.module(nodes=nodes_spec(), startup="automatic", auth=CHAP)
    assert res.get("failed") is not True, res
    assert res["changed"] is True and res["summary"]["create"] == 3
    for secret in SECRETS:
        assert secret not in res["_raw"]
    calls = ns.calls()
    # one -o new (the template), one read-back; nothing per record
    assert [c[c.index("-o") + 1] for c in calls] == ["new", "show"], calls
    for call in calls:
        for arg in call:
            for secret in SECRETS:
                assert secret not in arg

    # the same records made by iscsiadm alone (secrets on ITS command line: test only) in a second namespace
    ref = Namespace(tmp_path / "ref")
    for spec in nodes_spec():
        portal = spec["portal"] + (",%d" % spec["tpgt"] if "tpgt" in spec else "")
        assert ref.iscsiadm("-m", "node", "-o", "new", "-T", spec["target"], "-p", portal).returncode == 0
        pairs = [("node.startup", spec.get("startup", "automatic")),
                 ("node.session.auth.authmethod", "CHAP"), ("node.session.auth.username", "alice"),
                 ("node.session.auth.password", SECRETS[0]), ("node.session.auth.username_in", "storage"),
                 ("node.session.auth.password_in", SECRETS[1]), ("node.session.auth.chap_algs", "SHA256,MD5")]
        if "conn_startup" in spec:
            pairs.append(("node.conn[0].startup", spec["conn_startup"]))
        for key, value in (spec.get("settings") or {}).items():
            pairs.append((key, str(value)))
        args = ["-m", "node", "-T", spec["target"], "-p", portal, "-o", "update"]
        for key, value in pairs:
            args += ["-n", key, "-v", value]
        proc = ref.iscsiadm(*args)
        assert proc.returncode == 0, proc.stderr
    assert ns.tree() == ref.tree()

    # iscsiadm's own reader sees the secrets (shown with -S)
    show = ns.iscsiadm("-m", "node", "-T", T2, "-p", "[2001:db8::10]:3261", "-o", "show", "-S").stdout
    assert "node.session.auth.password = %s\n" % SECRETS[0] in show
    assert "node.session.auth.password_in = %s\n" % SECRETS[1] in show

    # second run: nothing to change, no iscsiadm at all
    again = ns.module(nodes=nodes_spec(), startup="automatic", auth=CHAP)
    assert again["changed"] is False and again["commands"] == 0
    assert len(ns.calls()) == len(calls)


def test_update_changes_only_the_asked_keys_secret_via_file(ns):
    spec = [{"target": T1, "portal": "192.0.2.10"}]
    assert ns.module(nodes=spec, auth={"username": "alice", "password": SECRETS[0]})["changed"]
    rel = "nodes/%s/192.0.2.10,3260" % T1
    # a setting changed behind the module's back must survive
    assert ns.iscsiadm("-m", "node", "-T", T1, "-p", "192.0.2.10", "-o", "update", "-n",
                       "node.session.queue_depth", "-v", "64").returncode == 0
    before = ns.file(rel)
    ncalls = len(ns.calls())
    args = dict(target=T1, portal="192.0.2.10:3260", startup="automatic",
                auth={"username": "alice", "password": SECRETS[2]})
    predicted = ns.module(check=True, **args)
    assert ns.file(rel) == before
    real = ns.module(**args)
    for key in ("changed", "records", "summary", "diff"):
        assert predicted[key] == real[key], key
    assert real["records"][0]["keys"] == ["node.startup", "node.session.auth.password"]
    after = ns.file(rel)
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
    assert changed == [("node.startup = manual", "node.startup = automatic"),
                       ("node.session.auth.password = %s" % SECRETS[0],
                        "node.session.auth.password = %s" % SECRETS[2])]
    assert "node.session.queue_depth = 64" in after
    assert stat.S_IMODE(os.stat(str(ns.db / rel)).st_mode) == 0o600
    new_calls = ns.calls()[ncalls:]
    assert [c[c.index("-o") + 1] for c in new_calls] == ["update", "show"]
    update = new_calls[0]
    assert update[update.index("-n") + 1] == "node.startup" and update.count("-n") == 1
    for call in new_calls:
        assert not any(secret in arg for secret in SECRETS for arg in call)
    for secret in SECRETS:
        assert secret not in real["_raw"] and secret not in predicted["_raw"]
    assert ns.module(**args)["changed"] is False


def test_mutual_chap_off_and_clear(ns):
    spec = dict(target=T1, portal="192.0.2.10", auth=CHAP)
    assert ns.module(**spec)["changed"]
    rel = "nodes/%s/192.0.2.10,3260" % T1
    res = ns.module(target=T1, portal="192.0.2.10", auth={"username_in": "", "password_in": ""})
    assert res["changed"] and set(res["records"][0]["keys"]) == {"node.session.auth.username_in",
                                                                 "node.session.auth.password_in"}
    text = ns.file(rel)
    assert "username_in" not in text and "password_in" not in text
    assert "node.session.auth.password = %s" % SECRETS[0] in text


def test_delete_removes_record_and_static_link(ns):
    res = ns.module(nodes=[{"target": T2, "portal": "[2001:db8::10]:3261", "tpgt": 1},
                           {"target": T3, "portal": "192.0.2.30"}])
    assert res["changed"]
    assert (ns.db / "static" / ("%s,2001:db8::10,3261,1,default" % T2)).is_symlink()
    res = ns.module(nodes=[{"target": T2, "portal": "[2001:db8::10]:3261", "state": "absent"},
                           {"target": T3, "portal": "192.0.2.30", "state": "absent"}])
    assert res["changed"] and res["summary"]["delete"] == 2, res
    assert not (ns.db / "nodes" / T2).exists() and not (ns.db / "nodes" / T3).exists()
    assert not (ns.db / "static" / ("%s,2001:db8::10,3261,1,default" % T2)).exists()
    assert ns.module(target=T3, portal="192.0.2.30", state="absent")["changed"] is False


def test_two_ifaces_for_one_portal(ns):
    for name in ("san-a", "san-b"):
        assert ns.iscsiadm("-m", "iface", "-I", name, "-o", "new").returncode == 0
    res = ns.module(nodes=[{"target": T1, "portal": "192.0.2.10", "tpgt": 1, "iface": "san-a"},
                           {"target": T1, "portal": "192.0.2.10", "tpgt": 1, "iface": "san-b"}], startup="automatic")
    assert res["changed"] and res["summary"]["create"] == 2, res
    # one -o new per iface (each iface has its own template)
    assert [c[c.index("-o") + 1] for c in ns.calls()] == ["new", "new", "show"]
    for name in ("san-a", "san-b"):
        text = ns.file("nodes/%s/192.0.2.10,3260,1/%s" % (T1, name))
        assert "iface.iscsi_ifacename = %s\n" % name in text and "node.startup = automatic\n" in text
    listing = ns.iscsiadm("-m", "node", "-P", "1").stdout
    assert "san-a" in listing and "san-b" in listing
    again = ns.module(nodes=[{"target": T1, "portal": "192.0.2.10", "tpgt": 1, "iface": "san-a"},
                             {"target": T1, "portal": "192.0.2.10", "tpgt": 1, "iface": "san-b"}],
                      startup="automatic")
    assert again["changed"] is False and again["commands"] == 0


def test_iscsiadm_failure_is_explained(ns):
    res = ns.module(target=T1, portal="192.0.2.10", iface="nosuch")
    assert res["failed"] is True
    assert "creating the record of %s 192.0.2.10:3260 iface nosuch" % T1 in res["msg"]
    assert "iscsiadm failed with exit code" in res["msg"]
    assert not (ns.db / "nodes" / T1).exists() or not os.listdir(str(ns.db / "nodes" / T1))


def test_secret_updates_never_put_a_temporary_file_where_iscsiadm_reads_records(ns):
    """iscsiadm reads every file of a record directory as an iface record: a temporary file there, even for a
    moment, trips a concurrent iscsiadm (issue 12).  A watcher lists the directory while the secret is rotated."""
    import threading

    spec = [{"target": T1, "portal": "192.0.2.10", "tpgt": 1}]
    assert ns.module(nodes=spec, auth={"username": "alice", "password": SECRETS[0]})["changed"]
    record_dir = ns.db / "nodes" / T1 / "192.0.2.10,3260,1"
    assert sorted(os.listdir(str(record_dir))) == ["default"]
    seen, stop = set(), threading.Event()

    def watch():
        while not stop.is_set():
            seen.update(os.listdir(str(record_dir)))
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for i in range(6):
            res = ns.module(nodes=spec, auth={"username": "alice", "password": "%s-%d" % (SECRETS[2], i)})
            assert res["changed"], res
    finally:
        stop.set()
        watcher.join()
    assert seen == {"default"}, seen
