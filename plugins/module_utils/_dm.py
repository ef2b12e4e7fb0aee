# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""dm-multipath maps as sysfs shows them: read only, no command.

A multipath map is a device-mapper device whose ``dm/uuid`` starts with ``mpath-`` (the rest is the WWID); its paths
are the block devices under ``slaves/``.  A path counts as healthy when its SCSI device's ``state`` is ``running``:
device-mapper keeps a path "active" for as long as the iSCSI session's recovery timeout runs after a cut (the SCSI
device is ``blocked`` then), so the SCSI state is what tells whether I/O can go through it now.

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations

import os

from ansible_collections.openiscsi.initiator.plugins.module_utils._sysfs import list_dir, read_attr, sys_join

MPATH_UUID_PREFIX = "mpath-"
HEALTHY_STATE = "running"


def normalize_wwid(value):
    """A SCSI device's sysfs ``wwid`` (``naa.6001405...``, ``eui.``, ``t10.``) spelled as multipath names maps
    (``36001405...``: the designator type digit first, as udev's ID_SERIAL); anything else unchanged."""
    if not value:
        return value
    value = value.strip()
    for prefix, digit in (("naa.", "3"), ("eui.", "2"), ("t10.", "1")):
        if value.startswith(prefix):
            return digit + value[len(prefix):].lower() if digit != "1" else digit + value[len(prefix):]
    return value


def _path(root, dev):
    """One path (an sd device) of a map: its name, ``major:minor``, H:C:T:L, SCSI device state, size and WWID."""
    block = sys_join(root, "sys/block", dev)
    device_dir = os.path.join(block, "device")
    try:
        # the kernel's link reads ../../../H:C:T:L
        hctl = os.path.basename(os.readlink(device_dir))
    except OSError:
        hctl = None
    state = read_attr(os.path.join(device_dir, "state"))
    size = read_attr(os.path.join(block, "size"))
    return dict(device=dev, devt=read_attr(os.path.join(block, "dev")), hctl=hctl, state=state,
                size_sectors=int(size) if size and size.isascii() and size.isdigit() else None,
                wwid=normalize_wwid(read_attr(os.path.join(device_dir, "wwid"))),
                healthy=state == HEALTHY_STATE)


def read_maps(root="/"):
    """Every multipath map: ``[{name, wwid, dm, size_sectors, paths: [...], healthy_paths, total_paths}]`` sorted
    by name.  A map that vanishes while it is read is left out."""
    maps = []
    for dm in list_dir(sys_join(root, "sys/block")):
        if not dm.startswith("dm-"):
            continue
        base = sys_join(root, "sys/block", dm)
        uuid = read_attr(os.path.join(base, "dm", "uuid"))
        if not uuid or not uuid.startswith(MPATH_UUID_PREFIX):
            continue
        size = read_attr(os.path.join(base, "size"))
        paths = [_path(root, dev) for dev in list_dir(os.path.join(base, "slaves"))]
        maps.append(dict(
            name=read_attr(os.path.join(base, "dm", "name")) or dm,
            wwid=uuid[len(MPATH_UUID_PREFIX):],
            dm=dm,
            size_sectors=int(size) if size and size.isdigit() and size.isascii() else None,
            paths=paths,
            healthy_paths=sum(1 for p in paths if p["healthy"]),
            total_paths=len(paths),
        ))
    return sorted(maps, key=lambda m: m["name"])


def parse_dmsetup_status(text):
    """``dmsetup status --target multipath`` -> ``{map name: {"major:minor": "A" | "F"}}``, the path states as
    device-mapper keeps them.  A line is ``NAME: START LEN multipath <features> <hw handler> <groups> <initial>
    (<group state> <nr status> <nr paths> <nr selector args> (DEVT A|F FAILCOUNT <selector args>)...)...``;
    a line that does not parse is skipped (the path state then stays unknown)."""
    out = {}
    for line in (text or "").splitlines():
        name, sep, rest = line.partition(": ")
        words = rest.split()
        if not sep or len(words) < 4 or words[2] != "multipath":
            continue
        try:
            i = 3
            i += 1 + int(words[i])            # features
            i += 1 + int(words[i])            # hardware handler status
            groups = int(words[i])
            i += 2                            # number of groups, initial group
            paths = {}
            for _group in range(groups):
                i += 1                        # group state (A active, E enabled, D disabled)
                i += 1 + int(words[i])        # group status args
                npaths, nsel = int(words[i]), int(words[i + 1])
                i += 2
                for _path_index in range(npaths):
                    paths[words[i]] = words[i + 1]
                    i += 3 + nsel              # devt, A|F, fail count, selector args
            out[name] = paths
        except (IndexError, ValueError):
            continue
    return out


def maps_without_healthy_path(maps):
    """The names of the maps that have no healthy path left."""
    return [m["name"] for m in maps if m["healthy_paths"] == 0]
