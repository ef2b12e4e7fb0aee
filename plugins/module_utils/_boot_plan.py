# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""Planning for ``fstab_netdev``: which fstab entries sit on iSCSI, and what their option field must become.

Device resolution works on files under a root path (``/`` on a host, a captured tree in tests):

* ``UUID=``, ``LABEL=``, ``PARTUUID=``, ``PARTLABEL=``, ``ID=`` (quotes allowed, as libmount allows them) through
  udev's ``/dev/disk/by-*`` links (labels encoded the way udev encodes them, ``\\x20`` for a space), else through an
  optional ``lookup(tag, value) -> device path`` callable (the module passes one that runs ``blkid``);
* ``/dev/...`` paths (``/dev/sdb1``, ``/dev/disk/by-path/...``, ``/dev/mapper/vg-lv``, ``/dev/vg/lv``) by following
  their symbolic links inside the root;
* the block device found is walked down to whole disks (partition -> disk, device-mapper/md -> slaves, recursively:
  LVM, LUKS, multipath) and each disk is looked up in the device map of the iSCSI sessions (``_sysfs``).

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations

import os

from ansible_collections.openiscsi.initiator.plugins.module_utils import _fstab, _hostinfo, _rootfs, _sysfs
from ansible_collections.openiscsi.initiator.plugins.module_utils._rootfs import host_path

TAGS = {"UUID": "by-uuid", "LABEL": "by-label", "PARTUUID": "by-partuuid", "PARTLABEL": "by-partlabel",
        "ID": "by-id"}
NETDEV = "_netdev"
NOFAIL = "nofail"
# File system types that never live on a block device.
VIRTUAL_FSTYPES = frozenset((
    "proc", "sysfs", "tmpfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "securityfs", "debugfs", "tracefs",
    "mqueue", "hugetlbfs", "pstore", "configfs", "fusectl", "binfmt_misc", "efivarfs", "bpf", "autofs", "ramfs",
    "overlay", "squashfs-fuse", "none",
))
NETWORK_FSTYPES = frozenset(("nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "9p", "sshfs",
                             "fuse.sshfs", "davfs", "ncpfs", "afs", "lustre"))


def udev_encode(value):
    """udev's encoding of a tag value in /dev/disk/by-* names (blkid_encode_string / udev_util_encode_string)."""
    allowed = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#+-.:=@_")
    out = []
    for ch in value:
        if ch in allowed or ord(ch) >= 0x80:
            out.append(ch)
        else:
            out.append("\\x%02x" % ord(ch))
    return "".join(out)


def parse_tag(source):
    """``(TAG, value)`` for ``UUID=...`` style sources (surrounding quotes removed), else ``None``."""
    tag, sep, value = source.partition("=")
    if not sep or tag not in TAGS:
        return None
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return tag, value


def _join(root, path):
    return host_path(root, path)


def resolve_in_root(root, path):
    """Follow symbolic links of the absolute *path* inside *root* (absolute link targets stay inside root).

    Returns the resolved absolute path (as seen from inside root), or ``None`` when a link loops or a component
    is missing.
    """
    try:
        return _rootfs.resolve(root or "/", path, strict=True)
    except OSError:
        return None


def block_name(root, dev_path):
    """The kernel name (``sdb1``, ``dm-0``) of the block device at *dev_path* inside root, or ``None``."""
    real = resolve_in_root(root, dev_path)
    if real is None or not real.startswith("/dev/"):
        return None
    name = os.path.basename(real)
    if os.path.isdir(_join(root, "sys/class/block/" + name)):
        return name
    return None


def resolve_source(root, source, lookup=None):
    """``(block name or None, how)`` for an fstab source; *how* says how it was found, or why not."""
    tag = parse_tag(source)
    if tag is not None:
        kind, value = tag
        links = [udev_encode(value)]
        if kind in ("UUID", "PARTUUID") and value.lower() != value:
            links.append(udev_encode(value.lower()))
        for link in links:
            path = "/dev/disk/%s/%s" % (TAGS[kind], link)
            name = block_name(root, path)
            if name:
                return name, "%s -> %s" % (path, name)
        if lookup is not None:
            try:
                dev = lookup(kind, value)
            except Exception as exc:  # the callable runs a command; any failure means "not found"
                return None, "%s=%s not found (lookup failed: %s)" % (kind, value, exc)
            if dev:
                name = block_name(root, dev)
                if name:
                    return name, "%s=%s -> %s (blkid)" % (kind, value, dev)
        return None, "no block device has %s=%s" % (kind, value)
    if source.startswith("/dev/"):
        name = block_name(root, source)
        if name:
            return name, "%s -> %s" % (source, name) if os.path.basename(source) != name else source
        return None, "%s does not exist" % source
    return None, "not a block device source"


def iscsi_backing(root, name, devmap):
    """``(disks, sids)``: the whole disks under block device *name* and the iSCSI sessions among them."""
    block_dir = os.path.realpath(_join(root, "sys/class/block/" + name))
    disks = _hostinfo.underlying_disks(block_dir)
    sids = sorted(set(devmap[d][0] for d in disks if d in devmap))
    return disks, sids


def _skip_reason(line):
    fstype = line.fstype or ""
    opts = line.options
    names = set(_fstab.option_name(o) for o in opts)
    if names & {"bind", "rbind"}:
        return "bind mount (systemd orders it after the mount holding its source)"
    if fstype in VIRTUAL_FSTYPES:
        return "virtual file system (%s)" % fstype
    if fstype in NETWORK_FSTYPES or fstype.startswith("fuse"):
        return "network or FUSE file system (%s): not on a block device" % fstype
    return None


def _select_same_mount_point(lines, report):
    """Choose every entry of a mount point one of whose entries is chosen.

    With two entries for one mount point, which one is used depends on the reader: mount(8) looks fstab up from the
    end (the last entry wins), systemd-fstab-generator makes its unit from the first and refuses the second.  An
    entry left without ``_netdev`` is a boot hang under either, so each of them gets the options."""
    chosen = {}
    for line, info in zip(lines, report):
        if info["selected"] and line.target not in ("none", "swap") and line.fstype != "swap":
            chosen.setdefault(line.target, line.lineno)
    for line, info in zip(lines, report):
        first = chosen.get(line.target)
        if first is not None and not info["selected"] and line.fstype != "swap":
            info["selected"] = True
            info["reason"] = ("same mount point as the chosen line %d (mount uses the last entry of a mount point, "
                              "systemd the first: each gets the options); %s" % (first, info["reason"]))


def plan_fstab(fstab, root="/", sessions=None, detect=False, paths=(), sources=(), add=(), set_values=None,
               lookup=None, skip_root=True):
    """Decide every entry of *fstab* (an :class:`_fstab.Fstab`, changed in place).

    ``paths``/``sources``: entries chosen explicitly (mount point / source spec as written, unescaped).
    ``detect``: also choose every entry found on an iSCSI device.  ``add``: options to add (by name),
    ``set_values``: ``{name: value}`` options to set.

    Returns ``{'entries': [...], 'changed_lines': [lineno...], 'duplicates': {...}, 'missing': {...}}`` where
    each entry dict says ``selected``, ``on_iscsi``, ``action`` (``changed``/``unchanged``/``skipped``) and
    ``reason``.
    """
    if sessions is None:
        sessions = _sysfs.read_sessions(root)
    devmap = _sysfs.device_map(sessions)
    paths = list(paths)
    sources = list(sources)
    found_paths = set()
    found_sources = set()
    report = []
    entries = []
    changed_lines = []
    for line in list(fstab.entries()):
        info = line.as_dict()
        info.update({"device": None, "disks": [], "sessions": [], "on_iscsi": False, "selected": False,
                     "action": "skipped", "reason": None})
        explicit = []
        if line.target in paths:
            explicit.append("mount point %s listed in path" % line.target)
            found_paths.add(line.target)
        if line.source in sources:
            explicit.append("source %s listed in src" % line.source)
            found_sources.add(line.source)
        skip = _skip_reason(line)
        if skip is None:
            name, how = resolve_source(root, line.source, lookup)
            info["device"] = name
            if name:
                disks, sids = iscsi_backing(root, name, devmap)
                info["disks"] = disks
                info["sessions"] = sids
                info["on_iscsi"] = bool(sids)
                found = ("on iSCSI session(s) %s via %s" % (", ".join(str(s) for s in sids), how) if sids
                         else "not on iSCSI (%s; disks %s)" % (how, ", ".join(disks) or "none"))
            else:
                found = how
        else:
            found = skip
        if explicit:
            info["selected"] = True
            info["reason"] = "; ".join(explicit) + "; " + found
        elif detect and info["on_iscsi"]:
            if skip_root and line.target == "/":
                info["reason"] = ("root file system %s; it is mounted by the initramfs, _netdev has no effect "
                                  "there (list it in path to change it anyway)" % found)
            else:
                info["selected"] = True
                info["reason"] = "detected: " + found
        else:
            info["reason"] = found
        report.append(info)
        entries.append(line)
    _select_same_mount_point(entries, report)
    for line, info in zip(entries, report):
        if info["selected"] and line.options_problem:
            info["action"] = "skipped"
            info["reason"] += "; NOT changed: %s (fix the line by hand)" % line.options_problem
            info["problem"] = line.options_problem
        elif info["selected"]:
            index = fstab.lines.index(line)
            if fstab.set_options(line, add, set_values):
                info["action"] = "changed"
                changed_lines.append(line.lineno)
                new_line = fstab.lines[index]
                info["options_after"] = ",".join(new_line.options)
            else:
                info["action"] = "unchanged"
                info["options_after"] = info["options"]
    missing = {
        "path": [p for p in paths if p not in found_paths],
        "src": [s for s in sources if s not in found_sources],
    }
    return {"entries": report, "changed_lines": changed_lines, "duplicates": fstab.duplicates(),
            "missing": missing}
