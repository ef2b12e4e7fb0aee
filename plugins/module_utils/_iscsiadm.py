# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""Running iscsiadm, and turning its exit codes into clear messages.

Two halves:

* pure: :data:`EXIT_CODES` (open-iscsi's ``include/iscsi_err.h``) and :func:`describe` which makes one readable
  sentence from an exit code, iscsiadm's stderr and what we were doing (``context``), with a hint for the codes users
  hit (6 node DB error, 15 session exists, 21 no records, 24 CHAP authentication failed - naming the record's CHAP
  fields -, 32 not connected ...);
* Ansible glue: :class:`Iscsiadm` runs the binary through ``module.run_command`` with ``LANG=C``/``LC_ALL=C`` and
  REFUSES to run a command line that contains a registered secret (CHAP passwords must never reach argv: ``ps`` and
  the audit log show it to every user).

Shared by the ``node``, ``iface``, ``discovery`` and ``session`` modules.  No ansible import: the glue receives the
AnsibleModule object.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time

from ansible_collections.openiscsi.initiator.plugins.module_utils._rootfs import host_path


# code: (name, what iscsiadm means, hint for the user or None)
EXIT_CODES = {
    0: ("SUCCESS", "success", None),
    1: ("GENERIC", "unknown error", None),
    2: ("SESS_NOT_FOUND", "session not found", "the session is not (or no longer) logged in"),
    3: ("NOMEM", "out of memory", None),
    4: ("TRANS", "connection failure", "check that the portal address and port are reachable from this host"),
    5: ("LOGIN", "iSCSI login failure", "check the target name, portal and the target's access list (ACL) for this "
                                        "initiator name"),
    6: ("IDBM", "node database error", "the record files under the node DB are missing, unreadable or locked; check "
                                       "the path and that no other iscsiadm holds the lock (/run/lock/iscsi)"),
    7: ("INVAL", "invalid parameter", "a key or value was refused by iscsiadm; see its message"),
    8: ("TRANS_TIMEOUT", "connection timed out", "the portal did not answer in time: check the address, port, routing "
                                                 "and firewall"),
    9: ("INTERNAL", "internal error", None),
    10: ("LOGOUT", "logout failure", None),
    11: ("PDU_TIMEOUT", "iSCSI PDU timed out", "the target stopped answering"),
    12: ("TRANS_NOT_FOUND", "iSCSI transport driver not found",
         "load the transport's kernel module (iscsi_tcp for tcp, ib_iser for iser, bnx2i ...) and retry"),
    13: ("ACCESS", "daemon access denied", "run as root"),
    14: ("TRANS_CAPS", "the transport driver does not support the requested capability", None),
    15: ("SESS_EXISTS", "session exists", "a session for this record is logged in; log it out first (or it is "
                                          "already logged in, which counts as success for a login)"),
    16: ("INVALID_MGMT_REQ", "unknown request to iscsid", "iscsiadm and iscsid versions differ: restart iscsid"),
    17: ("ISNS_UNAVAILABLE", "iSNS service not supported", None),
    18: ("ISCSID_COMM_ERR", "could not communicate with iscsid", "restart iscsid (systemctl restart iscsid)"),
    19: ("FATAL_LOGIN", "non-retryable iSCSI login failure",
         "the target refused the login for good: check the target name, the target's ACL for this initiator and the "
         "CHAP settings (some targets accept only node.session.auth.chap_algs = MD5)"),
    20: ("ISCSID_NOTCONN", "could not connect to iscsid", "start iscsid (systemctl start iscsid.socket iscsid)"),
    21: ("NO_OBJS_FOUND", "no records or sessions found", "no node record matches target/portal/iface: create it with "
                                                          "openiscsi.initiator.node or discover it first"),
    22: ("SYSFS_LOOKUP", "sysfs lookup failure", None),
    23: ("HOST_NOT_FOUND", "host not found", None),
    24: ("LOGIN_AUTH_FAILED", "login failed: CHAP authentication/authorization failure", None),  # see _auth_hint
    25: ("ISNS_QUERY", "iSNS query failed", None),
    26: ("ISNS_REG_FAILED", "iSNS registration failed", None),
    27: ("OP_NOT_SUPP", "operation not supported", None),
    28: ("BUSY", "device or resource in use", None),
    29: ("AGAIN", "operation failed but a retry may succeed", None),
    30: ("UNKNOWN_DISCOVERY_TYPE", "unknown discovery type", None),
    31: ("CHILD_TERMINATED", "child process terminated", None),
    32: ("SESSION_NOT_CONNECTED", "target likely not connected",
         "the session exists but its connection is down; check the network path to the portal"),
    33: ("REQ_TIMEDOUT", "iscsid request timed out", "iscsid did not answer in time; check that it is running"),
}

NODE_CHAP_FIELDS = ("node.session.auth.authmethod", "node.session.auth.username", "node.session.auth.password",
                    "node.session.auth.chap_algs")
NODE_MUTUAL_FIELDS = ("node.session.auth.username_in", "node.session.auth.password_in")
DISCOVERY_CHAP_FIELDS = ("discovery.sendtargets.auth.authmethod", "discovery.sendtargets.auth.username",
                         "discovery.sendtargets.auth.password")


def code_name(rc):
    entry = EXIT_CODES.get(rc)
    return entry[0] if entry else "UNKNOWN"


def _auth_hint(record, discovery=False):
    if discovery:
        return ("the target refused the discovery CHAP credentials: check %s (and the _in fields for mutual CHAP) "
                "against the target's discovery account" % ", ".join(DISCOVERY_CHAP_FIELDS))
    fields = list(NODE_CHAP_FIELDS)
    if record and (record.get("username_in") or record.get("has_password_in")):
        fields += list(NODE_MUTUAL_FIELDS)
        tail = ("; with mutual CHAP also check %s against the target's outgoing (mutual) account"
                % " and ".join(NODE_MUTUAL_FIELDS))
    else:
        tail = ""
    who = ""
    if record and record.get("username"):
        who = " (username %r)" % record["username"]
    return ("the target refused the CHAP credentials of the node record%s: check %s against the target's account "
            "for this initiator%s" % (who, ", ".join(NODE_CHAP_FIELDS), tail))


def _stderr_lines(stderr, secrets=()):
    lines = []
    for line in (stderr or "").splitlines():
        line = line.strip()
        if not line:
            continue
        for secret in secrets:
            if secret:
                line = line.replace(secret, "********")
        if line not in lines:
            lines.append(line)
    return lines


def describe(rc, stderr="", context=None, record=None, discovery=False, secrets=()):
    """One clear sentence for a failed iscsiadm call.

    *context* says what was being done (``"login to iqn... at 10.0.0.1:3260"``); *record* may carry the node's
    ``username``/``username_in``/``has_password_in`` (never a password) so that exit code 24 names the right CHAP
    fields.  iscsiadm's own stderr lines follow, with any of *secrets* masked.
    """
    name, meaning, hint = EXIT_CODES.get(rc, ("UNKNOWN", "unexpected exit code", None))
    if rc == 24:
        hint = _auth_hint(record, discovery)
    parts = []
    head = "iscsiadm failed with exit code %d (%s: %s)" % (rc, name, meaning)
    if context:
        head = "%s: %s" % (context, head)
    parts.append(head)
    if hint:
        parts.append("hint: " + hint)
    lines = _stderr_lines(stderr, secrets)
    if lines:
        parts.append("iscsiadm said: " + " | ".join(lines[-6:]))
    return ". ".join(parts)


class IscsiadmError(Exception):
    def __init__(self, rc, message, cmd=None, stdout="", stderr=""):
        self.rc = rc
        self.message = message
        self.cmd = cmd
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(message)


class SecretOnCommandLine(AssertionError):
    """Raised (never caught by the modules) when a command line would carry a registered secret."""


class Iscsiadm:
    """``iscsiadm`` through ``module.run_command``: LANG=C, secrets refused on argv, every call counted.

    ``binary`` defaults to ``module.get_bin_path('iscsiadm', required=True)`` (PATH first, then the sbin dirs).
    """

    def __init__(self, module, binary=None, root="/"):
        self.module = module
        self._binary = binary
        self.root = root or "/"
        self._secrets = []
        self.calls = []

    @property
    def binary(self):
        """The command prefix, a list: ``[iscsiadm]`` or, for a root other than /, ``[chroot, root, iscsiadm]``."""
        if self._binary is None:
            if os.path.realpath(self.root) == "/":
                self._binary = [self.module.get_bin_path("iscsiadm", required=True)]
            else:
                # iscsiadm's paths are compiled in: run the root's own iscsiadm inside it
                inside = None
                for cand in ("/usr/sbin/iscsiadm", "/sbin/iscsiadm"):
                    if os.path.exists(host_path(self.root, cand)):
                        inside = cand
                        break
                if inside is None:
                    self.module.fail_json(msg="root: no iscsiadm in %s (usr/sbin or sbin); install open-iscsi in that "
                                              "root first" % self.root)
                self._binary = [self.module.get_bin_path("chroot", required=True), self.root, inside]
        elif isinstance(self._binary, str):
            self._binary = [self._binary]
        return self._binary

    def add_secret(self, value):
        """Register a value that must never appear in any argument."""
        if value and value not in self._secrets:
            self._secrets.append(value)

    def _guard(self, args):
        for arg in args:
            for secret in self._secrets:
                if secret in arg:
                    raise SecretOnCommandLine("refusing to run iscsiadm: a CHAP secret would appear on its command "
                                              "line")

    def run(self, args, ok=(0,), context=None, record=None, discovery=False, large_output=False):
        """Run ``iscsiadm ARGS``; return ``(rc, stdout, stderr)`` when rc is in *ok*, else raise IscsiadmError.

        *large_output*: for output of megabytes (``-o show`` of thousands of records, 3.5 kB each): read with
        ``subprocess`` (chunks joined once) rather than ``run_command``, which appends every 32 kB chunk to the
        whole output so far (2.5 s instead of 0.45 s for the 14 MB of 4096 records)."""
        cmd = list(self.binary) + [str(a) for a in args]
        self._guard(cmd)
        self.calls.append(cmd)
        if large_output:
            rc, out, err = self._run_large(cmd)
        else:
            rc, out, err = self.module.run_command(cmd, environ_update={"LANG": "C", "LC_ALL": "C"})
        if rc not in ok:
            raise IscsiadmError(rc, describe(rc, err, context, record, discovery, self._secrets), cmd, out, err)
        return rc, out, err

    def _run_large(self, cmd):
        env = dict(os.environ, LANG="C", LC_ALL="C")
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=env, check=False)
        except OSError as exc:
            self.module.fail_json(msg="cannot run %s: %s" % (cmd[0], exc), cmd=cmd[0])
        return (proc.returncode, proc.stdout.decode("utf-8", "surrogateescape"),
                proc.stderr.decode("utf-8", "surrogateescape"))

    # ------------------------------------------------------------------ node records
    @staticmethod
    def node_selector(target, portal_arg, iface=None, tpgt=None):
        """``-m node -T .. -p addr:port[,tpgt] [-I iface]`` arguments for exactly one record.

        *portal_arg* is ``addr:port`` / ``[v6]:port`` (see _portal.Portal.arg); tpgt -1/None is left out (a
        static record without a portal group tag).
        """
        portal = portal_arg
        if tpgt is not None and int(tpgt) >= 0:
            portal = "%s,%d" % (portal_arg, int(tpgt))
        args = ["-m", "node", "-T", target, "-p", portal]
        if iface:
            args += ["-I", iface]
        return args

    def node_new(self, target, portal_arg, iface=None, tpgt=None, context=None):
        return self.run(self.node_selector(target, portal_arg, iface, tpgt) + ["-o", "new"],
                        context=context or "creating node record %s %s" % (target, portal_arg))

    def node_update(self, target, portal_arg, iface, tpgt, pairs, context=None):
        """ONE ``-o update`` call with every ``-n KEY -v VALUE`` pair of *pairs* (a list of (key, value))."""
        args = self.node_selector(target, portal_arg, iface, tpgt) + ["-o", "update"]
        for key, value in pairs:
            args += ["-n", key, "-v", value]
        return self.run(args, context=context or "updating node record %s %s" % (target, portal_arg))

    def node_delete(self, target, portal_arg, iface, tpgt, context=None):
        return self.run(self.node_selector(target, portal_arg, iface, tpgt) + ["-o", "delete"],
                        context=context or "deleting node record %s %s" % (target, portal_arg))

    def node_show_all(self, with_secrets=False, context=None):
        """Every node record as iscsiadm's own reader prints it (``-o show``; ``-S`` shows secrets: internal use)."""
        args = ["-m", "node", "-o", "show"]
        if with_secrets:
            args.append("-S")
        return self.run(args, ok=(0, 21), context=context or "reading the node records back with iscsiadm",
                        large_output=True)

    # ------------------------------------------------------------------ iface records
    def iface_new(self, name, context=None):
        return self.run(["-m", "iface", "-I", name, "-o", "new"], context=context or "creating iface %s" % name)

    def iface_delete(self, name, context=None):
        return self.run(["-m", "iface", "-I", name, "-o", "delete"], context=context or "deleting iface %s" % name)

    def iface_show(self, name, context=None):
        return self.run(["-m", "iface", "-I", name], context=context or "reading iface %s back with iscsiadm" % name)


def parse_show_records(text):
    """Split ``iscsiadm -o show`` output into a list of ``{key: value}`` dicts (``<empty>`` becomes ``""``)."""
    records = []
    current = None
    for line in (text or "").splitlines():
        stripped = line.strip()
        if stripped.startswith("# BEGIN RECORD"):
            current = {}
            continue
        if stripped.startswith("# END RECORD"):
            if current is not None:
                records.append(current)
            current = None
            continue
        if current is None or not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition(" = ")
        if not sep:
            key, sep, value = stripped.partition("=")
            if not sep:
                continue
        value = value.strip()
        current[key.strip()] = "" if value == "<empty>" else value
    return records


# ----------------------------------------------------------------------------------------------- the node DB lock
LOCK_DIR = "/run/lock/iscsi"


class DbLock:
    """iscsiadm's own node DB write lock (usr/idbm.c ``idbm_lock``): ``link(lock, lock.write)`` succeeds for one
    holder at a time.  Hold it while writing record files directly so that a concurrent iscsiadm cannot interleave;
    never run iscsiadm while holding it (it would wait for us).

    iscsiadm gives up waiting after 30 s and proceeds anyway; we fail instead, naming the stale file.
    """

    def __init__(self, root="/", timeout=30.0, lock_dir=LOCK_DIR):
        base = host_path(root, lock_dir)
        self.lock_file = os.path.join(base, "lock")
        self.write_file = os.path.join(base, "lock.write")
        self.base = base
        self.timeout = timeout
        self.held = False

    def acquire(self):
        if not os.path.isdir(self.base):
            os.makedirs(self.base, 0o770)
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o666)
        os.close(fd)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                os.link(self.lock_file, self.write_file)
                self.held = True
                return
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise
            if time.monotonic() > deadline:
                raise OSError(errno.EBUSY, "the node DB lock %s has been held for %d s (a stuck iscsiadm? remove the "
                                           "file if no iscsiadm is running)" % (self.write_file, self.timeout))
            time.sleep(0.01)

    def release(self):
        if self.held:
            self.held = False
            try:
                os.unlink(self.write_file)
            except FileNotFoundError:
                pass

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
        return False
