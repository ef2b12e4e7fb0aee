# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""The one way to reach the managed host's files under a ``root`` option: as a chroot would.

``host_path(root, "/etc/fstab")`` is the path on this machine of the file a program chrooted into *root* opens as
``/etc/fstab``.  The path is resolved component by component INSIDE root: a symbolic link with an absolute target
starts again at root (``/img/etc/fstab -> /elsewhere/fstab`` is ``/img/elsewhere/fstab``), a relative one continues
from its directory, ``..`` stops at root.  Missing components are kept as they are (a file may be created there).
Nothing outside root is ever named, so nothing outside root is ever read or written.  With ``root="/"`` the result
is the ordinary resolved path.

``resolve(root, path)`` gives the same path as seen from inside root (``/elsewhere/fstab``).

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations

import errno
import os

MAX_LINKS = 40  # as the kernel's path walk


def _split(path):
    return [part for part in path.split("/") if part and part != "."]


def resolve(root, path, strict=False):
    """*path* (absolute, as seen inside *root*) with every symbolic link resolved inside root: ``"/..."``.

    Missing components are kept (``strict=True``: ``None`` instead).  Raises ``OSError(ELOOP)`` after
    :data:`MAX_LINKS` links."""
    root = root or "/"
    parts = _split(path)
    resolved = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        full = os.path.join(root, *(resolved + [part]))
        try:
            target = os.readlink(full)
        except OSError as exc:
            if exc.errno == errno.EINVAL:       # exists, not a link
                resolved.append(part)
                continue
            if strict:
                return None
            for rest in [part] + parts:         # missing (or unreadable): the rest is taken as written
                if rest != "..":
                    resolved.append(rest)
                elif resolved:
                    resolved.pop()
            break
        hops += 1
        if hops > MAX_LINKS:
            raise OSError(errno.ELOOP, "too many levels of symbolic links under root %s" % root, path)
        if target.startswith("/"):
            resolved = []
        parts = _split(target) + parts
    return "/" + "/".join(resolved)


def host_path(root, path, follow=True):
    """The path on this machine of *path* inside *root*, resolved as in a chroot (see the module docstring).

    ``follow=False`` resolves the directories only and keeps the last component as it is (``lstat``/``O_NOFOLLOW``
    semantics): for a symbolic link to be created, replaced or removed itself."""
    root = root or "/"
    if follow:
        inside = resolve(root, path)
    else:
        head, _sep, name = path.rstrip("/").rpartition("/")
        inside = resolve(root, head or "/").rstrip("/") + "/" + name if name not in ("", ".", "..") else \
            resolve(root, path)
    if root == "/":
        return inside
    return os.path.join(root, inside.lstrip("/")) if inside != "/" else root
