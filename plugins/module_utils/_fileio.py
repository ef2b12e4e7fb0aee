# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""File reading and atomic writing for every module of the collection that writes a file.

This is Ansible glue (it receives the ``AnsibleModule`` object) but imports nothing from ansible itself.

Reading::

    data = read_bytes(path)            # bytes, or None when the file does not exist
    text = read_text(path)             # str (UTF-8, undecodable bytes kept as surrogates), or None
    raw = to_bytes_preserving(text)    # back to the exact original bytes

Writing::

    backup_file = write_atomic(module, path, text_or_bytes, mode=0o600, force_mode=True, backup=module.params['backup'])

Read-modify-write (the one writer: every module that edits a file does this)::

    lock_for_update(module, path)          # before the read; held until exit_json/fail_json
    old = read_text(path)                  # re-read under the lock: what another run wrote is seen
    new = plan(old)                        # pure
    write_atomic(module, path, new)

``lock_for_update`` takes an exclusive ``flock`` on the file's DIRECTORY (no lock file is left behind and the lock
survives the rename that replaces the file), waiting up to ``timeout`` seconds; two runs on one host then serialize
and neither loses the other's change.  Node records use iscsiadm's own lock instead (``_iscsiadm.DbLock``) and
``write_atomic(..., tmp_dir=DB root)`` so that iscsiadm, scanning the record directories, never sees a temporary
file.

``write_atomic`` contract:

* Nothing is written when the file already holds exactly ``data`` (returns ``None``), and nothing in check mode
  (returns ``None``): decide ``changed`` yourself by comparing before calling it.
* The new content goes to a temporary file in the SAME directory (so the final rename is atomic; ``tmp_dir`` names
  another directory of the same file system), is flushed and fsync'ed, then ``module.atomic_move`` renames it over
  the target; the directory is fsync'ed afterwards.
* An existing file keeps its owner, group and permission bits (and SELinux context) unless ``force_mode`` is set, in
  which case it gets ``mode``; a new file is created with ``mode`` (default 0o644 minus nothing - pass 0o600 for
  files holding secrets).  The mode is applied to the temporary file BEFORE the rename: secret-bearing content is
  never visible with looser permissions, not even for a moment.
* ``backup=True`` copies the existing file first with ``module.backup_local`` and returns the backup's path (``None``
  when there was nothing to back up).
* A symlink at ``path`` is followed: the file it points to is replaced and the link stays.
* Errors (missing directory, permissions, ...) end the module with ``module.fail_json`` and a message naming the path.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time

from ansible_collections.openiscsi.initiator.plugins.module_utils._atomicfile import fsync_dir as _fsync_dir
from ansible_collections.openiscsi.initiator.plugins.module_utils._atomicfile import write_temp

LOCK_TIMEOUT = 60.0


def to_bytes_preserving(text):
    """Encode text read by :func:`read_text` back to its exact original bytes."""
    if isinstance(text, bytes):
        return text
    return text.encode("utf-8", "surrogateescape")


def read_bytes(path):
    """The file's bytes, or ``None`` when it does not exist.  Other errors (a directory, EACCES) propagate."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def read_text(path):
    """The file as text (UTF-8; undecodable bytes become lone surrogates and survive a round trip), or ``None``."""
    data = read_bytes(path)
    if data is None:
        return None
    return data.decode("utf-8", "surrogateescape")


class UpdateLock:
    """An exclusive ``flock`` on a directory, held until :meth:`release` or until the object is freed."""

    def __init__(self, directory, fd):
        self.directory = directory
        self.fd = fd

    def release(self):
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False

    def __del__(self):
        self.release()


def acquire_update_lock(path, timeout=LOCK_TIMEOUT, poll=0.01):
    """Lock *path*'s directory for a read-modify-write of *path*; an :class:`UpdateLock`, or ``None`` when the
    directory does not exist (there is nothing to race on).  Raises ``OSError(ETIMEDOUT)`` after *timeout*."""
    directory = os.path.dirname(os.path.realpath(path)) or "."
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return UpdateLock(directory, fd)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                os.close(fd)
                raise
        if time.monotonic() >= deadline:
            os.close(fd)
            raise OSError(errno.ETIMEDOUT, "another run holds the lock of %s for more than %ds" % (directory, timeout))
        time.sleep(poll)
        poll = min(poll * 2, 0.2)


def lock_for_update(module, path, timeout=LOCK_TIMEOUT):
    """:func:`acquire_update_lock` for a module: fails the module (naming the path) when the lock cannot be had.
    The lock is held until the module calls ``exit_json`` or ``fail_json``."""
    try:
        lock = acquire_update_lock(path, timeout)
    except OSError as exc:
        module.fail_json(msg="cannot lock %s for an update: %s" % (path, exc.strerror or exc))
    if lock is not None:
        # exit_json and fail_json both clean up first: the lock goes there, also when main() runs in-process
        cleanup = module.do_cleanup_files

        def release_and_clean_up():
            lock.release()
            cleanup()
        module.do_cleanup_files = release_and_clean_up
    return lock


def write_atomic(module, path, data, mode=0o644, force_mode=False, backup=False, tmp_dir=None):
    """Atomically replace (or create) ``path`` with ``data`` (str or bytes); see the module docstring.

    Returns the backup file's path when a backup was made, else ``None``.
    """
    raw = to_bytes_preserving(data)
    if module.check_mode:
        return None
    target = os.path.realpath(path)
    try:
        current = read_bytes(target)
    except OSError as exc:
        module.fail_json(msg="cannot read %s: %s" % (path, exc.strerror or exc))
    if current == raw:
        return None

    directory = os.path.dirname(target) or "."
    if not os.path.isdir(directory):
        module.fail_json(msg="cannot write %s: directory %s does not exist" % (path, directory))

    backup_file = None
    if backup and current is not None:
        try:
            backup_file = module.backup_local(target) or None
        except Exception as exc:  # backup_local raises a bare Exception
            module.fail_json(msg="cannot back up %s: %s" % (path, exc))

    tmp_path = None
    try:
        tmp_path = write_temp(tmp_dir or directory, os.path.basename(target), raw)
        if current is not None and not force_mode:
            # atomic_move copies owner, group, mode and SELinux context of the existing file.
            module.atomic_move(tmp_path, target, unsafe_writes=False, keep_dest_attrs=True)
        else:
            if current is not None:
                st = os.stat(target)
                try:
                    os.chown(tmp_path, st.st_uid, st.st_gid)
                except PermissionError:
                    pass
            os.chmod(tmp_path, stat.S_IMODE(mode))
            # atomic_move chmods NEW files to 0666 & ~umask after the rename: a umask derived from ``mode`` keeps that
            # from ever loosening the permissions; the chmod below then sets the exact mode.
            old_umask = os.umask(~mode & 0o777)
            try:
                module.atomic_move(tmp_path, target, unsafe_writes=False, keep_dest_attrs=False)
            finally:
                os.umask(old_umask)
            os.chmod(target, stat.S_IMODE(mode))
        tmp_path = None
        _fsync_dir(directory)
    except Exception as exc:  # OSError, or the bare Exception atomic_move raises on failure
        module.fail_json(msg="cannot write %s: %s" % (path, getattr(exc, "strerror", None) or exc))
    finally:
        if tmp_path is not None and os.path.exists(tmp_path):
            os.unlink(tmp_path)
    return backup_file


def file_diff(path, before, after, mask=None):
    """The ``diff`` entry of one file: ``before``/``after`` texts (``None`` = the file does not exist) with headers
    naming the path, ``(absent)`` on the side where it does not exist.  ``mask(text)`` hides secrets on both sides."""
    show = mask or (lambda text: text)
    return dict(
        before=show(before or ""),
        after=show(after or ""),
        before_header=path if before is not None else "%s (absent)" % path,
        after_header=path if after is not None else "%s (absent)" % path,
    )
