# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""initiator_name on a real lab VM: set (check mode predicts, idempotent), generate when absent, refusal while a
session is live, force, and the consequence the refusal guards against (the ACL target turns the renamed host away).

Every test restores the VM's original file byte for byte (and iscsid's view of it), logs out and deletes the node
records it made, in a ``finally``.
"""

from __future__ import annotations

import base64
import re
import shlex

import pytest

pytestmark = pytest.mark.lab

HOST = "init1"
FILE = "/etc/iscsi/initiatorname.iscsi"
NEW = "iqn.2004-10.com.example:lab-initiator-name"
GENERATED_RE = re.compile(r"iqn\.1993-08\.org\.debian:01:[0-9a-f]{12}\Z")
RESULT_KEYS = ("changed", "name", "alias", "previous_name", "generated", "restart_needed",
               "initramfs_rebuild_needed", "failed")


def sh(lab, cmd, check=True):
    return lab.ssh(HOST, cmd, check=check)


def remote_file(lab):
    """(bytes, 'mode uid gid') of the name file, or (None, None) when it does not exist."""
    out = sh(lab, "if [ -e %s ]; then stat -c '%%a %%u %%g' %s; base64 -w0 %s; fi" % (FILE, FILE, FILE)).stdout
    if not out:
        return None, None
    meta, data = out.split("\n", 1)
    return base64.b64decode(data.strip()), meta.strip()


def put_file(lab, data, meta):
    mode, uid, gid = meta.split()
    lab.ssh(HOST, "base64 -d > {f}.labtmp && chown {u}:{g} {f}.labtmp && chmod {m} {f}.labtmp && mv {f}.labtmp {f}"
            .format(f=FILE, u=uid, g=gid, m=mode), input=base64.b64encode(data).decode() + "\n")


def name_in(data):
    return [ln[len("InitiatorName="):] for ln in data.decode().splitlines() if ln.startswith("InitiatorName=")]


def subset(result):
    return {k: result.get(k) for k in RESULT_KEYS}


def iscsiadm(lab, args, check=True):
    return sh(lab, "iscsiadm " + " ".join(shlex.quote(a) for a in args), check=check)


def logout_and_delete(lab):
    for t in lab.data["targets"].values():
        q = shlex.quote(t["iqn"])
        sh(lab, "iscsiadm -m node -T %s -u >/dev/null 2>&1; iscsiadm -m node -T %s -o delete >/dev/null 2>&1; true"
           % (q, q), check=False)


def login(lab, key, check=True):
    t = lab.target(key)
    base = ["-m", "node", "-T", t["iqn"], "-p", lab.portal(0)]
    iscsiadm(lab, base + ["-o", "new"])
    return iscsiadm(lab, base + ["--login"], check=check)


def live(lab, key):
    iqn = lab.target(key)["iqn"]
    return [s for s in lab.sessions(HOST) if s["targetname"] == iqn and s["state"] == "LOGGED_IN"]


def expected_initramfs_rebuild(lab):
    """What the module should find, computed independently in the guest."""
    res = sh(lab, "test -e /etc/iscsi/iscsi.initramfs && echo yes && exit 0; "
                  "i=/boot/initrd.img-$(uname -r); "
                  "if [ -f $i ] && command -v lsinitramfs >/dev/null; then "
                  "  lsinitramfs $i | grep -qx 'etc/initiatorname.iscsi' && echo yes || echo no; "
                  "elif [ -f $i ] && [ -e /usr/share/initramfs-tools/hooks/iscsi ]; then echo yes; "
                  "else echo no; fi")
    return res.stdout.strip() == "yes"


@pytest.fixture
def original(lab):
    """The VM's name file, restored byte for byte afterwards; no sessions or records left; iscsid re-read it."""
    logout_and_delete(lab)
    assert lab.sessions(HOST) == [], "init1 has sessions before the test"
    data, meta = remote_file(lab)
    assert data is not None and name_in(data) == [lab.hosts[HOST]["iqn"]]
    backups_before = set(sh(lab, "ls -1 %s.*~ 2>/dev/null; true" % FILE).stdout.split())
    try:
        yield data, meta
    finally:
        logout_and_delete(lab)
        put_file(lab, data, meta)
        for extra in set(sh(lab, "ls -1 %s.*~ 2>/dev/null; true" % FILE).stdout.split()) - backups_before:
            sh(lab, "rm -f %s" % shlex.quote(extra))
        sh(lab, "systemctl try-restart iscsid.service; true", check=False)
        assert remote_file(lab) == (data, meta)


def test_set_name_check_mode_predicts_then_idempotent(lab, original):
    data, meta = original
    old_name = name_in(data)[0]
    predicted = lab.module(HOST, "initiator_name", {"name": NEW}, check=True, diff=True)
    assert remote_file(lab) == (data, meta), "check mode changed the file"
    assert predicted["changed"] is True and not predicted["failed"], predicted["_raw"]
    expected = data.decode().replace("InitiatorName=" + old_name, "InitiatorName=" + NEW)
    assert predicted["diff"]["before"] == data.decode()
    assert predicted["diff"]["after"] == expected
    assert predicted["diff"]["before_header"] == FILE

    real = lab.module(HOST, "initiator_name", {"name": NEW}, diff=True)
    assert subset(real) == subset(predicted)
    assert real["diff"] == predicted["diff"]
    assert real["name"] == NEW and real["previous_name"] == old_name and real["restart_needed"] is True
    assert real["initramfs_rebuild_needed"] is expected_initramfs_rebuild(lab)
    now, now_meta = remote_file(lab)
    assert now.decode() == expected
    assert now_meta == "600 0 0"

    again = lab.module(HOST, "initiator_name", {"name": NEW}, diff=True)
    assert again["changed"] is False and again["restart_needed"] is False and "previous_name" not in again
    assert remote_file(lab) == (now, now_meta)

    # alias with a backup: the backup holds the previous content
    res = lab.module(HOST, "initiator_name", {"alias": "lab-init1", "backup": True})
    assert res["changed"] is True and res["alias"] == "lab-init1" and res["initramfs_rebuild_needed"] is False
    assert base64.b64decode(sh(lab, "base64 -w0 %s" % shlex.quote(res["backup_file"])).stdout) == now
    assert remote_file(lab)[0] == now + b"InitiatorAlias=lab-init1\n"


def test_generate_when_absent_and_iscsid_logs_in_with_it(lab, original):
    sh(lab, "rm -f %s" % FILE)
    predicted = lab.module(HOST, "initiator_name", {"generate": True}, check=True)
    assert remote_file(lab) == (None, None), "check mode created the file"
    assert predicted["changed"] is True and predicted["generated"] is True

    res = lab.module(HOST, "initiator_name", {"generate": True})
    assert res["changed"] is True and res["generated"] is True, res["_raw"]
    name = res["name"]
    assert GENERATED_RE.match(name)
    assert {k: v for k, v in subset(res).items() if k != "name"} == \
        {k: v for k, v in subset(predicted).items() if k != "name"}
    data, meta = remote_file(lab)
    assert meta == "600 0 0"
    text = data.decode()
    assert text.startswith("## ") and text.endswith("InitiatorName=%s\n" % name)
    assert name_in(data) == [name]

    again = lab.module(HOST, "initiator_name", {"generate": True})
    assert again["changed"] is False and again["generated"] is False and again["name"] == name

    # The real consumer accepts it: Debian's start-up check passes, iscsid starts and logs in with that name.
    sh(lab, "systemctl restart iscsid.service")
    login(lab, "open")
    lab.wait_for(lambda: live(lab, "open"), timeout=30, what="session to the open target")
    sid = live(lab, "open")[0]["sid"]
    used = sh(lab, "cat /sys/class/iscsi_session/session%d/initiatorname" % sid).stdout.strip()
    assert used == name


def test_change_refused_while_session_live_force_works_and_acl_rejects(lab, original):
    data, meta = original
    old_name = name_in(data)[0]
    login(lab, "open")
    lab.wait_for(lambda: live(lab, "open"), timeout=30, what="session to the open target")

    for check in (True, False):
        res = lab.module(HOST, "initiator_name", {"name": NEW}, check=check)
        assert res["failed"] is True and res["changed"] is False
        assert "refusing to change the initiator name from %s to %s" % (old_name, NEW) in res["msg"]
        assert lab.target("open")["iqn"] in res["msg"] and "access control lists" in res["msg"]
        assert remote_file(lab) == (data, meta), "the refused change touched the file"
    assert live(lab, "open"), "the session went away"

    res = lab.module(HOST, "initiator_name", {"name": NEW, "force": True})
    assert res["changed"] is True and not res["failed"], res["_raw"]
    assert res["previous_name"] == old_name and res["name"] == NEW and res["restart_needed"] is True
    assert any("force: true" in w for w in res.get("warnings", [])), res.get("warnings")
    assert name_in(remote_file(lab)[0]) == [NEW]
    assert live(lab, "open"), "the module must not disturb the live session"

    # What the refusal protects against: once iscsid uses the new name, the ACL target (which lists the old
    # name) turns this host away.
    logout_and_delete(lab)
    sh(lab, "systemctl restart iscsid.service")
    refused = login(lab, "acl", check=False)
    assert refused.returncode != 0, refused.stdout + refused.stderr
    assert not live(lab, "acl")
    logout_and_delete(lab)

    # Back to the original name with the module (no session now, so no force), and the ACL target admits us again.
    back = lab.module(HOST, "initiator_name", {"name": old_name})
    assert back["changed"] is True and back["previous_name"] == NEW and back["name"] == old_name
    assert remote_file(lab) == (data, meta)
    sh(lab, "systemctl restart iscsid.service")
    login(lab, "acl")
    lab.wait_for(lambda: live(lab, "acl"), timeout=30, what="session to the ACL target")
