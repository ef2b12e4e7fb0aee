# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""Atomic file replacement with the standard library alone, for code that runs without Ansible (the metrics timer
the role ``initiator`` installs) and as the temporary-file part of :func:`_fileio.write_atomic`.

* :func:`write_temp` writes the bytes to a new temporary file in the target's directory (name ``.<name>.XXXX.tmp``,
  so globs like ``*.prom`` never match it), flushes and fsyncs it, and removes it again if anything fails.
* :func:`fsync_dir` makes a rename in a directory durable.
* :func:`replace_file` = both around :func:`os.replace`: a reader sees the old file or the new one, never a part.

Standard library only, no ansible import.
"""

from __future__ import annotations

import os
import stat
import tempfile


def write_temp(directory, name, raw, mode=None):
    """A new temporary file in *directory* holding *raw* (bytes), fsync'ed; *mode* applied when given.  Returns
    its path.  Raises ``OSError``; nothing is left behind then."""
    fd, tmp_path = tempfile.mkstemp(prefix=".%s." % name, suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp_path, stat.S_IMODE(mode))
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise
    return tmp_path


def fsync_dir(directory):
    """fsync *directory* (best effort: some file systems refuse it)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace_file(path, data, mode=0o644):
    """Atomically replace (or create) *path* with *data* (str as UTF-8, or bytes) with permission bits *mode*.
    A symlink at *path* is followed.  Raises ``OSError`` naming nothing more than the OS does; the old file stays
    untouched then."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    target = os.path.realpath(path)
    directory = os.path.dirname(target) or "."
    tmp_path = write_temp(directory, os.path.basename(target), raw, mode)
    try:
        os.replace(tmp_path, target)
    except BaseException:
        os.unlink(tmp_path)
        raise
    fsync_dir(directory)
