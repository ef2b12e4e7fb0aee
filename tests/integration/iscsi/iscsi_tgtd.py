# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""tgtd on 127.0.0.1 for the pure-Python iSCSI initiator's tests and benchmark (started and stopped by them).

Each tgtd gets a free iSCSI port and its own control port (``tgtd -C N``: control socket /var/run/tgtd/socket.N),
so several daemons coexist with each other and with a system tgtd.  tgtd ignores SIGTERM while targets exist:
teardown deletes the targets, asks the daemon to exit (``tgtadm --op delete --mode system``) and SIGKILLs the pid
it started if it is still alive.  Test accounts use throw-away passwords; tgtadm only takes them on its command
line, which is acceptable for these dummy secrets only.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))


def _ensure_importable():
    """Same approach as tests/unit/conftest.py: a symlinked ansible_collections tree under .build/pyroot."""
    import importlib.util
    try:
        if importlib.util.find_spec('ansible_collections.openiscsi.initiator') is not None:
            return
    except ModuleNotFoundError:
        pass
    pyroot = os.path.join(REPO, '.build', 'pyroot')
    ns_dir = os.path.join(pyroot, 'ansible_collections', 'openiscsi')
    link = os.path.join(ns_dir, 'initiator')
    os.makedirs(ns_dir, exist_ok=True)
    if not os.path.islink(link):
        try:
            os.symlink(REPO, link)
        except FileExistsError:
            pass
    sys.path.insert(0, pyroot)
    for name in list(sys.modules):
        if name == 'ansible_collections' or name.startswith('ansible_collections.'):
            del sys.modules[name]


_ensure_importable()

INITIATOR = 'iqn.2024-01.org.example:pytest-initiator'
IQN = 'iqn.2024-01.org.example.tgt:'
MiB = 1024 * 1024


# ---- a host's files for the modules that read them (probe, session_check): node records as iscsiadm writes them
def put_file(root, path, text):
    """Write ``text`` at ``path`` under ``root`` (directories created)."""
    full = os.path.join(root, path.lstrip('/'))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, 'w') as handle:
        handle.write(text)


def node_record(target, port, auth=''):
    """A node record of ``target`` at 127.0.0.1:``port``, startup automatic, with ``auth`` lines (see chap_lines)."""
    return ('# BEGIN RECORD 2.1.8\nnode.name = %s\nnode.tpgt = 1\nnode.startup = automatic\n'
            'iface.iscsi_ifacename = default\nnode.conn[0].address = 127.0.0.1\nnode.conn[0].port = %d\n'
            '%s# END RECORD\n' % (target, port, auth))


def chap_lines(user, secret, user_in=None, secret_in=None):
    """A record's CHAP settings (mutual when user_in is given)."""
    text = ('node.session.auth.authmethod = CHAP\nnode.session.auth.username = %s\n'
            'node.session.auth.password = %s\n' % (user, secret))
    if user_in:
        text += 'node.session.auth.username_in = %s\nnode.session.auth.password_in = %s\n' % (user_in, secret_in)
    return text


def free_port(host='127.0.0.1'):
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def portal(host, port):
    return '[%s]:%d' % (host, port) if ':' in host else '%s:%d' % (host, port)


def have_tgtd():
    return bool(shutil.which('tgtd') and shutil.which('tgtadm'))


class Tgtd(object):
    """One tgtd process listening on ``host:port``."""

    def __init__(self, workdir, host='127.0.0.1', port=None):
        self.workdir = str(workdir)
        self.host = host
        self.port = port or free_port(host)
        self.proc = None
        self.ctl = None
        self.tids = []
        self.log_path = os.path.join(self.workdir, 'tgtd-%d.log' % self.port)

    # -- lifecycle
    def start(self):
        last = None
        for _ignored in range(5):
            self.ctl = random.randint(10000, 32767)       # tgtd accepts at most 32767
            log = open(self.log_path, 'ab')
            self.proc = subprocess.Popen(['tgtd', '-f', '-C', str(self.ctl), '--iscsi',
                                          'portal=%s' % portal(self.host, self.port)],
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            log.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if self._ready():
                    return self
                time.sleep(0.05)
            last = self._tail()
            self._kill()
            self.proc = None
        raise RuntimeError('tgtd did not start: %s' % last)

    def _ready(self):
        res = subprocess.run(['tgtadm', '-C', str(self.ctl), '--lld', 'iscsi', '--op', 'show', '--mode', 'target'],
                             capture_output=True, check=False)
        if res.returncode != 0:
            return False
        try:
            with socket.create_connection((self.host, self.port), timeout=1):
                return True
        except OSError:
            return False

    def _tail(self):
        try:
            with open(self.log_path, 'rb') as f:
                return f.read()[-2000:].decode('utf-8', 'replace')
        except OSError:
            return ''

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            for tid in list(self.tids):
                self.adm('--op', 'delete', '--mode', 'target', '--tid', str(tid), '--force', check=False)
            self.adm('--op', 'delete', '--mode', 'system', check=False, lld=False)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._kill()
        self.proc = None
        for suffix in ('', '.lock'):                      # the control socket files of our own daemon
            try:
                os.unlink('/var/run/tgtd/socket.%d%s' % (self.ctl, suffix))
            except OSError:
                pass

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # -- administration
    def adm(self, *args, check=True, lld=True):
        cmd = ['tgtadm', '-C', str(self.ctl)] + (['--lld', 'iscsi'] if lld else []) + list(args)
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if check and res.returncode != 0:
            shown = [a if i == 0 or cmd[i - 1] != '--password' else '********' for i, a in enumerate(cmd)]
            raise RuntimeError('%s failed: %s' % (' '.join(shown), res.stderr.strip()))
        return res

    def add_target(self, tid, name, luns=(), acl='ALL'):
        """Create target ``tid`` named IQN+name with LUNs 1..n backed by sparse files of the given sizes."""
        iqn = name if name.startswith('iqn.') else IQN + name
        self.adm('--op', 'new', '--mode', 'target', '--tid', str(tid), '-T', iqn)
        self.tids.append(tid)
        files = []
        for index, size in enumerate(luns, start=1):
            path = os.path.join(self.workdir, 'lun-%d-%d-%d.img' % (self.port, tid, index))
            with open(path, 'wb') as f:
                f.truncate(size)
            self.adm('--op', 'new', '--mode', 'logicalunit', '--tid', str(tid), '--lun', str(index), '-b', path)
            files.append(path)
        if acl:
            self.adm('--op', 'bind', '--mode', 'target', '--tid', str(tid), '-I', acl)
        return iqn, files

    def add_account(self, user, password, tid=None, outgoing=False):
        """Create an account and bind it to ``tid`` (None: to discovery sessions)."""
        self.adm('--op', 'new', '--mode', 'account', '--user', user, '--password', password)
        args = ['--op', 'bind', '--mode', 'account', '--user', user]
        if tid is not None:
            args += ['--tid', str(tid)]
        if outgoing:
            args.append('--outgoing')
        self.adm(*args)

    def update(self, tid, name, value):
        self.adm('--op', 'update', '--mode', 'target', '--tid', str(tid), '--name', name, '--value', str(value))

    def add_portal(self, host, port=None):
        self.adm('--op', 'new', '--mode', 'portal', '--param', 'portal=%s' % portal(host, port or self.port))

    def sessions(self, tid):
        """Initiator names of the sessions tgtd has for ``tid`` (from --op show)."""
        out = self.adm('--op', 'show', '--mode', 'target').stdout
        block = out.split('Target %d:' % tid, 1)[1].split('\nTarget ', 1)[0]
        # I_T nexus lines look like "Initiator: iqn.... alias: none"
        return [line.split(':', 1)[1].split()[0] for line in block.splitlines()
                if line.strip().startswith('Initiator:')]
