# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""Facts about the managed host that the iSCSI modules need, read from files under a root path.

* the installed open-iscsi version (dpkg's status file; ``iscsiadm --version`` through a callable as a fallback),
  and Debian version comparison;
* the init system (``/run/systemd/system``, ``/proc/1/comm``);
* whether ``/`` or ``/usr`` sits on an iSCSI LUN (``/proc/self/mountinfo`` -> ``/sys/dev/block/M:m`` -> slaves to
  the disks -> the sysfs reader's device map);
* known traps worth a warning: a 64-bit kernel with a 32-bit userland (logins hang), bnx2/bnx2x NICs without
  iscsiuio (offload cannot work).

Nothing here runs a command itself: the only command (``iscsiadm --version``) goes through a ``run`` callable the
caller passes in (``run(argv) -> (rc, stdout, stderr)``), so the module decides how commands run and tests stub it.

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations

import os
import platform
import re

from ansible_collections.openiscsi.initiator.plugins.module_utils import _sysfs
from ansible_collections.openiscsi.initiator.plugins.module_utils._rootfs import host_path

DPKG_STATUS = "var/lib/dpkg/status"
PACKAGE = "open-iscsi"
ISCSIADM_PATHS = ("usr/sbin/iscsiadm", "sbin/iscsiadm")
ISCSIUIO_PATHS = ("usr/sbin/iscsiuio", "sbin/iscsiuio")
OFFLOAD_UIO_DRIVERS = ("bnx2", "bnx2x")

# Debian architectures and their word size (dpkg-architecture -L, the ones Debian ships open-iscsi for).
DEB_ARCH_BITS = {
    "amd64": 64, "arm64": 64, "ppc64el": 64, "ppc64": 64, "s390x": 64, "riscv64": 64, "mips64el": 64,
    "loong64": 64, "sparc64": 64, "alpha": 64, "ia64": 64,
    "i386": 32, "armhf": 32, "armel": 32, "mipsel": 32, "powerpc": 32, "x32": 32, "hppa": 32, "m68k": 32, "sh4": 32,
}
KERNEL_64 = ("x86_64", "aarch64", "arm64", "ppc64", "ppc64le", "s390x", "riscv64", "mips64", "sparc64",
             "loongarch64", "alpha", "ia64")


def _path(root, rel):
    return host_path(root, rel)


def _read(path, limit=None):
    try:
        with open(path, "rb") as handle:
            data = handle.read() if limit is None else handle.read(limit)
    except OSError:
        return None
    return data.decode("utf-8", "replace")


# --------------------------------------------------------------------------------------------------- dpkg
def parse_dpkg_status(text):
    """``{package: {'version', 'architecture', 'status'}}`` for the packages dpkg reports installed.

    When one name is installed for several architectures (multi-arch), the first paragraph wins and the others are
    listed under ``'other_architectures'``.
    """
    packages = {}
    for para in re.split(r"\n[ \t]*\n", text or ""):
        fields = {}
        last = None
        for line in para.splitlines():
            if line[:1] in (" ", "\t") and last:
                continue  # continuation line (descriptions, conffiles)
            key, sep, value = line.partition(":")
            if not sep:
                continue
            last = key.strip().lower()
            fields[last] = value.strip()
        name = fields.get("package")
        status = fields.get("status", "")
        if not name or not status.endswith(" installed"):
            continue
        entry = {"version": fields.get("version"), "architecture": fields.get("architecture"), "status": status}
        if name in packages:
            packages[name].setdefault("other_architectures", []).append(entry["architecture"])
        else:
            packages[name] = entry
    return packages


def installed_packages(root="/"):
    return parse_dpkg_status(_read(_path(root, DPKG_STATUS)))


_ISCSIADM_VERSION_RE = re.compile(r"iscsiadm\s+version\s+(\S+)")


def open_iscsi_version(root="/", run=None, packages=None):
    """``{'version': '2.1.8-1', 'source': 'dpkg', 'architecture': 'amd64'}``; version ``None`` when not found.

    dpkg's status file is read first (no process).  Only when open-iscsi is not a dpkg package and *run* is given,
    ``iscsiadm --version`` is asked (``run(argv) -> (rc, out, err)``); its version has no Debian revision.
    """
    if packages is None:
        packages = installed_packages(root)
    pkg = packages.get(PACKAGE)
    if pkg and pkg.get("version"):
        return {"version": pkg["version"], "source": "dpkg", "architecture": pkg.get("architecture")}
    if run is not None:
        try:
            rc, out, _err = run(["iscsiadm", "--version"])
        except Exception:  # the callable may raise when the binary is absent: no version then
            rc, out = 1, ""
        if rc == 0:
            m = _ISCSIADM_VERSION_RE.search(out or "")
            if m:
                return {"version": m.group(1), "source": "iscsiadm", "architecture": None}
    return {"version": None, "source": None, "architecture": None}


def _order(char):
    if char == "~":
        return -1
    if char.isdigit():
        return 0
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_part(a, b):
    """dpkg's verrevcmp: alternating non-digit runs (with ~ < end < letters < others) and numeric runs."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return -1 if ac < bc else 1
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = (a[i] > b[j]) - (a[i] < b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def _split_version(version):
    epoch, sep, rest = version.partition(":")
    if not sep:
        epoch, rest = "0", version
    upstream, sep, revision = rest.rpartition("-")
    if not sep:
        upstream, revision = rest, ""
    return int(epoch or 0), upstream, revision


def compare_versions(a, b):
    """Debian version comparison: -1, 0 or 1 (as ``dpkg --compare-versions``)."""
    ea, ua, ra = _split_version(a)
    eb, ub, rb = _split_version(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)


# --------------------------------------------------------------------------------------------------- init system
def init_system(root="/"):
    """``systemd``, ``sysvinit``, ``openrc``, another /proc/1/comm value, or ``unknown``."""
    if os.path.isdir(_path(root, "run/systemd/system")):
        return "systemd"
    comm = (_read(_path(root, "proc/1/comm")) or "").strip()
    if not comm:
        return "unknown"
    return {"systemd": "systemd", "init": "sysvinit", "openrc-init": "openrc"}.get(comm, comm)


# --------------------------------------------------------------------------------------------------- mounts
def _unescape(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text):
    """``[{'mountpoint', 'majmin', 'fstype', 'source'}]`` from /proc/self/mountinfo text, in file order."""
    mounts = []
    for line in (text or "").splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        lf = left.split()
        rf = right.split()
        if len(lf) < 5 or len(rf) < 2:
            continue
        mounts.append({"mountpoint": _unescape(lf[4]), "majmin": lf[2], "fstype": rf[0], "source": _unescape(rf[1])})
    return mounts


def parse_proc_mounts(text):
    """The same shape from /proc/mounts (no major:minor there: ``majmin`` is ``None``)."""
    mounts = []
    for line in (text or "").splitlines():
        f = line.split()
        if len(f) < 3:
            continue
        mounts.append({"mountpoint": _unescape(f[1]), "majmin": None, "fstype": f[2], "source": _unescape(f[0])})
    return mounts


def read_mounts(root="/"):
    text = _read(_path(root, "proc/self/mountinfo"))
    if text is not None:
        return parse_mountinfo(text)
    return parse_proc_mounts(_read(_path(root, "proc/mounts")))


def mount_of(mounts, mountpoint):
    """The mount entry that is visible at *mountpoint* (the last one mounted there), or ``None``."""
    found = None
    for entry in mounts:
        if entry["mountpoint"] == mountpoint:
            found = entry
    return found


def block_sysfs_dir(root, entry):
    """The real /sys directory of a mount's block device: by major:minor, else by the source device's name."""
    majmin = entry.get("majmin")
    if majmin and not majmin.startswith("0:"):
        real = os.path.realpath(_path(root, "sys/dev/block/" + majmin))
        if os.path.isdir(real):
            return real
    source = entry.get("source") or ""
    if source.startswith("/dev/"):
        # /dev/mapper/vg-root -> ../dm-0 (a link inside root), /dev/sdb1 -> sdb1
        name = os.path.basename(os.path.realpath(_path(root, source)))
        real = os.path.realpath(_path(root, "sys/class/block/" + name))
        if os.path.isdir(real):
            return real
    return None


def underlying_disks(block_dir, _depth=0):
    """Whole-disk names below a block device: partition -> its disk; dm/md -> slaves, recursively."""
    if block_dir is None or _depth > 16:
        return []
    name = os.path.basename(block_dir)
    if os.path.exists(os.path.join(block_dir, "partition")):
        return [os.path.basename(os.path.dirname(block_dir))]
    slaves_dir = os.path.join(block_dir, "slaves")
    slaves = _sysfs.list_dir(slaves_dir)
    if not slaves:
        return [name]
    disks = []
    for slave in slaves:
        for disk in underlying_disks(os.path.realpath(os.path.join(slaves_dir, slave)), _depth + 1):
            if disk not in disks:
                disks.append(disk)
    return disks


def mount_on_iscsi(root, mountpoint, mounts=None, sessions=None):
    """Where *mountpoint* lives and which iSCSI sessions carry it.

    ``{'mountpoint', 'mounted', 'source', 'fstype', 'disks', 'sessions': [sid...], 'on_iscsi'}``; ``mounted`` is
    False when nothing is mounted exactly there (e.g. /usr on the root file system).
    """
    if mounts is None:
        mounts = read_mounts(root)
    if sessions is None:
        sessions = _sysfs.read_sessions(root)
    entry = mount_of(mounts, mountpoint)
    result = {"mountpoint": mountpoint, "mounted": entry is not None, "source": None, "fstype": None,
              "disks": [], "sessions": [], "on_iscsi": False}
    if entry is None:
        return result
    result["source"] = entry["source"]
    result["fstype"] = entry["fstype"]
    disks = underlying_disks(block_sysfs_dir(root, entry))
    devmap = _sysfs.device_map(sessions)
    sids = sorted(set(devmap[d][0] for d in disks if d in devmap))
    result["disks"] = disks
    result["sessions"] = sids
    result["on_iscsi"] = bool(sids)
    return result


def root_usr_on_iscsi(root="/", mounts=None, sessions=None):
    """``(root_info, usr_info)``; /usr counts as on iSCSI also when it is no mount of its own and / is."""
    if mounts is None:
        mounts = read_mounts(root)
    if sessions is None:
        sessions = _sysfs.read_sessions(root)
    root_info = mount_on_iscsi(root, "/", mounts, sessions)
    usr_info = mount_on_iscsi(root, "/usr", mounts, sessions)
    if not usr_info["mounted"]:
        usr_info = dict(root_info, mountpoint="/usr", mounted=False)
    return root_info, usr_info


# --------------------------------------------------------------------------------------------------- traps
def elf_bits(path):
    """32 or 64 from an ELF header's class byte, or ``None``."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(5)
    except OSError:
        return None
    if len(head) < 5 or head[:4] != b"\x7fELF":
        return None
    return {1: 32, 2: 64}.get(head[4])


def kernel_bits(machine):
    if not machine:
        return None
    machine = machine.lower()
    if machine in KERNEL_64 or machine.endswith("64"):
        return 64
    return 32


def userland_bits(root="/", packages=None):
    """The word size of the userland open-iscsi runs in: its dpkg architecture, else iscsiadm's ELF class."""
    if packages is None:
        packages = installed_packages(root)
    arch = (packages.get(PACKAGE) or {}).get("architecture")
    if arch in DEB_ARCH_BITS:
        return DEB_ARCH_BITS[arch], "dpkg architecture %s" % arch
    for rel in ISCSIADM_PATHS:
        bits = elf_bits(_path(root, rel))
        if bits:
            return bits, "ELF class of /%s" % rel
    return None, None


def iscsiuio_installed(root="/", packages=None):
    if packages is None:
        packages = installed_packages(root)
    if "iscsiuio" in packages:
        return True
    return any(os.path.exists(_path(root, rel)) for rel in ISCSIUIO_PATHS)


def uio_nics(root="/"):
    """``[(netdev, driver)]`` for NICs driven by bnx2/bnx2x (their iSCSI offload needs iscsiuio)."""
    found = []
    net_dir = _path(root, "sys/class/net")
    for name in _sysfs.list_dir(net_dir):
        driver_link = os.path.join(net_dir, name, "device", "driver")
        if not os.path.islink(driver_link) and not os.path.isdir(driver_link):
            continue
        driver = os.path.basename(os.path.realpath(driver_link))
        if driver in OFFLOAD_UIO_DRIVERS:
            found.append((name, driver))
    return found


def trap_warnings(root="/", machine=None, packages=None):
    """``[{'id', 'message'}]`` for the known traps found on the host."""
    if packages is None:
        packages = installed_packages(root)
    if machine is None:
        machine = platform.machine()
    traps = []
    kbits = kernel_bits(machine)
    ubits, how = userland_bits(root, packages)
    if kbits == 64 and ubits == 32:
        traps.append({
            "id": "kernel64_userland32",
            "message": "64-bit kernel (%s) with a 32-bit userland (%s): iSCSI logins hang in this combination; "
                       "run open-iscsi from a 64-bit userland" % (machine, how),
        })
    nics = uio_nics(root)
    if nics and not iscsiuio_installed(root, packages):
        traps.append({
            "id": "bnx2_without_iscsiuio",
            "message": "NIC(s) %s use the %s driver, whose iSCSI offload (bnx2i) needs iscsiuio, which is not "
                       "installed: install the iscsiuio package or use the software (tcp) transport"
                       % (", ".join(n for n, _d in nics), "/".join(sorted(set(d for _n, d in nics)))),
        })
    return traps
