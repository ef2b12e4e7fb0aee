# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the collection's modules against the REAL iscsiadm in a private mount namespace (test helper).

iscsiadm's paths are compiled in, so every command runs under ``unshare -m`` with a temporary directory bind-mounted
over /etc/iscsi (and a tmpfs over /run/lock): this machine's own node DB is never touched.  An ``iscsiadm`` wrapper
first on PATH records every command line the modules run.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
PYROOT = os.path.join(REPO, ".build", "pyroot")
ISCSIADM = shutil.which("iscsiadm") or "/usr/sbin/iscsiadm"
DB = "/etc/iscsi"
needs_iscsiadm = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not os.path.exists(ISCSIADM)
    or not os.path.isdir("/etc/iscsi"),
    reason="needs root, unshare and open-iscsi (iscsiadm)")

SETUP = 'mount --bind "$NS_DB" /etc/iscsi && mount -t tmpfs tmpfs /run/lock && exec "$@"'
WRAPPER = """#!/bin/sh
# records every command line (NUL-separated arguments, one line per call), then runs the real iscsiadm
for a in "$@"; do printf '%%s\\0' "$a"; done >> "%(log)s"
printf '\\n' >> "%(log)s"
exec %(real)s "$@"
"""


class Namespace:
    def __init__(self, tmp):
        self.db = tmp / "db"
        self.db.mkdir(parents=True)
        shutil.copy("/etc/iscsi/iscsid.conf", str(self.db / "iscsid.conf"))
        self.bin = tmp / "bin"
        self.bin.mkdir()
        self.log = tmp / "argv.log"
        self.log.write_text("")
        wrapper = self.bin / "iscsiadm"
        wrapper.write_text(WRAPPER % {"log": self.log, "real": ISCSIADM})
        wrapper.chmod(0o755)
        self.tmp = tmp

    def env(self):
        env = dict(os.environ, NS_DB=str(self.db), PYTHONPATH=PYROOT,
                   PATH="%s:%s" % (self.bin, os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")))
        return env

    def sh(self, *argv):
        return subprocess.run(["unshare", "-m", "sh", "-c", SETUP, "sh"] + list(argv), env=self.env(),
                              capture_output=True, text=True, timeout=120, check=False)

    def iscsiadm(self, *args):
        """The real iscsiadm (not recorded) in the namespace."""
        return self.sh(ISCSIADM, *args)

    def module(self, check=False, diff=True, _name="node", **args):
        args["_ansible_check_mode"] = check
        args["_ansible_diff"] = diff
        path = self.tmp / "args.json"
        path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
        proc = self.sh(sys.executable, "-m", "ansible_collections.openiscsi.initiator.plugins.modules." + _name,
                       str(path))
        try:
            result = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError("module output is not JSON: %s %s" % (proc.stdout, proc.stderr))
        result["_raw"] = proc.stdout + proc.stderr
        return result

    def calls(self):
        lines = self.log.read_bytes().split(b"\n")
        return [[a.decode() for a in line.split(b"\0")[:-1]] for line in lines if line]

    def file(self, rel):
        return (self.db / rel).read_text()

    def tree(self):
        out = {}
        for sub in ("nodes", "static"):
            base = self.db / sub
            if not base.exists():
                continue
            for dirpath, dirs, files in os.walk(str(base)):
                for name in dirs + files:
                    path = os.path.join(dirpath, name)
                    st = os.lstat(path)
                    rel = os.path.relpath(path, str(self.db))
                    if stat.S_ISLNK(st.st_mode):
                        out[rel] = ("link", os.readlink(path))
                    elif stat.S_ISDIR(st.st_mode):
                        out[rel] = ("dir", stat.S_IMODE(st.st_mode))
                    else:
                        with open(path) as handle:
                            out[rel] = ("file", stat.S_IMODE(st.st_mode), handle.read())
        return out
