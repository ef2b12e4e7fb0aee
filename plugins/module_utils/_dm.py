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


def _path(root, dev):
    """One path (an sd device) of a map: its name, H:C:T:L and SCSI device state."""
    device_dir = sys_join(root, "sys/block", dev, "device")
    try:
        hctl = os.path.basename(os.readlink(device_dir))
    except OSError:
        hctl = None
    state = read_attr(os.path.join(device_dir, "state"))
    return dict(device=dev, hctl=hctl, state=state, healthy=state == HEALTHY_STATE)


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


def maps_without_healthy_path(maps):
    """The names of the maps that have no healthy path left."""
    return [m["name"] for m in maps if m["healthy_paths"] == 0]
