# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""The pure planner of the ``iface`` module: one iface record against the one on disk.

``iscsiadm -m iface`` semantics (open-iscsi 2.1.8 usr/iscsiadm.c, usr/iface.c):

* ``default`` and ``iser`` are built in (no file) and cannot be changed or deleted;
* node records bound to an iface carry a COPY of its ``iface.*`` keys: an update of the iface updates those copies
  too, and deleting the iface deletes the node records bound to it (iscsiadm refuses while one has a session);
* the transport of an iface cannot change while a session uses it.

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsid_conf import validate_iface_settings
from ansible_collections.openiscsi.initiator.plugins.module_utils._names import normalize_name
from ansible_collections.openiscsi.initiator.plugins.module_utils._node_plan import check_iface_name, unempty

BUILTIN = ("default", "iser")
# open-iscsi 2.1.8 usr/transport.c
TRANSPORTS = ("tcp", "iser", "cxgb3i", "cxgb4i", "bnx2i", "be2iscsi", "qla4xxx", "ocs", "qedi")
# transports whose host IP is set by the iscsiuio daemon (set_host_ip = SET_HOST_IP_REQ)
UIO_TRANSPORTS = ("bnx2i", "qedi")
OPTION_KEYS = (
    ("transport", "iface.transport_name"),
    ("net_ifacename", "iface.net_ifacename"),
    ("hwaddress", "iface.hwaddress"),
    ("ipaddress", "iface.ipaddress"),
    ("initiatorname", "iface.initiatorname"),
)
_MAC_RE = re.compile(r"([0-9a-f]{2})([:-]?)([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\Z")
_NETDEV_RE = re.compile(r"[^/\s:]{1,15}\Z")


def _check_transport(value, field):
    text = str(value).strip().lower()
    if text not in TRANSPORTS:
        raise InputError(field, "%r is not an open-iscsi transport; use one of %s" % (value, ", ".join(TRANSPORTS)))
    return text


def _check_mac(value, field):
    m = _MAC_RE.match(str(value).strip().lower())
    if not m:
        raise InputError(field, "%r is not a MAC address; write six hexadecimal pairs, e.g. 00:1b:21:aa:bb:cc"
                         % (value,))
    return ":".join(m.group(i) for i in (1, 3, 4, 5, 6, 7))


def _check_ip(value, field):
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise InputError(field, "%r is not an IPv4 or IPv6 address (no brackets, no prefix length; 0.0.0.0 asks an "
                                "offload adapter to use DHCP)" % (value,))


def _check_netdev(value, field):
    text = str(value)
    if not _NETDEV_RE.match(text) or text in (".", ".."):
        raise InputError(field, "%r is not a network interface name (1-15 characters, no '/', ':' or white space)"
                         % (value,))
    return text


_CHECKS = {
    "transport": _check_transport,
    "net_ifacename": _check_netdev,
    "hwaddress": _check_mac,
    "ipaddress": _check_ip,
    "initiatorname": normalize_name,
}


def parse_iface_request(params):
    """``(name, state, values)``: *values* maps iface.* keys to text ("" = unset the key)."""
    name = params.get("name")
    if name in (None, ""):
        raise InputError("name", "is required: the iface record's name, e.g. san-a")
    name = check_iface_name(name, "name")
    if name in BUILTIN:
        raise InputError("name", "%r is a built-in iface of open-iscsi (no record file); it cannot be created, changed "
                                 "or deleted. Create your own iface, e.g. name: san-a with transport: %s"
                         % (name, "iser" if name == "iser" else "tcp"))
    state = params.get("state") or "present"
    values = {}
    given = [opt for opt, _key in OPTION_KEYS if params.get(opt) is not None]
    if state == "absent":
        extra = given + (["settings"] if params.get("settings") else [])
        if extra:
            raise InputError(extra[0], "cannot be combined with state=absent, which deletes the iface; drop %s"
                             % ", ".join(extra))
        return name, state, values
    settings = validate_iface_settings(params.get("settings"), "settings") if params.get("settings") else {}
    for opt, key in OPTION_KEYS:
        value = params.get(opt)
        if value is None:
            continue
        if key in settings:
            raise InputError("settings." + key, "is also given as %s; give it once" % opt)
        if value == "":
            if opt == "transport":
                raise InputError("transport", "cannot be empty; use one of %s" % ", ".join(TRANSPORTS))
            values[key] = ""
            continue
        values[key] = _CHECKS[opt](value, opt)
    for key, value in settings.items():
        values[key] = value
    return name, state, values


class IfacePlan:
    __slots__ = ("name", "action", "current", "changes", "bound", "record_changes", "live", "warnings")

    def __init__(self, name, action, current):
        self.name = name
        self.action = action
        self.current = current
        self.changes = []  # [(key, before, after)] for the iface record
        self.bound = []  # node records bound to the iface
        self.record_changes = []  # [(record, {key: value})] copies to update
        self.live = []  # sessions using the iface
        self.warnings = []

    @property
    def changed(self):
        return self.action in ("create", "delete") or bool(self.changes or self.record_changes)

    def view(self):
        out = {"name": self.name, "action": self.action if self.changed else "none"}
        if self.changes:
            out["changes"] = dict((k, {"before": unempty(b), "after": unempty(a)}) for k, b, a in self.changes)
        if self.action == "delete":
            out["records_deleted"] = [_rec_label(r) for r in self.bound]
        elif self.record_changes:
            out["records_updated"] = [_rec_label(r) for r, _v in self.record_changes]
        if self.live:
            out["sessions"] = [s.get("sid") for s in self.live]
        return out


def _rec_label(rec):
    address = rec.get("address") or ""
    portal = "[%s]:%s" % (address, rec.get("port")) if ":" in address else "%s:%s" % (address, rec.get("port"))
    return {"target": rec.get("target"), "portal": portal, "tpgt": rec.get("tpgt")}


def plan_iface(name, state, values, current, records, sessions, force=False, uio_installed=True):
    """The plan for iface *name*; *current* is its record dict (``settings`` = its keys) or None; *records* the node
    records (from _nodedb.read_nodes), *sessions* the sysfs sessions.  Raises InputError for refused changes."""
    bound = [r for r in records if (r.get("iface") or "default") == name]
    live = [s for s in sessions or () if (s.get("ifacename") or "default") == name]
    if state == "absent":
        if current is None:
            return IfacePlan(name, "none", None)
        plan = IfacePlan(name, "delete", current)
        plan.bound = bound
        plan.live = live
        if live and not force:
            raise InputError("state", "refusing to delete iface %s: %d session(s) use it (sid %s), and deleting an "
                                      "iface also deletes the node records bound to it. Log them out first, or set "
                                      "force: true to log them out" % (name, len(live), ", ".join(
                                          str(s.get("sid")) for s in live)))
        return plan
    settings = (current or {}).get("settings") or {}
    plan = IfacePlan(name, "create" if current is None else "update", current)
    plan.bound = bound
    plan.live = live
    effective = {}
    for key, value in values.items():
        before = unempty(settings.get(key)) if current is not None else None
        effective[key] = value
        if before != unempty(value):
            plan.changes.append((key, before, value))
    transport_change = [c for c in plan.changes if c[0] == "iface.transport_name" and c[1] is not None]
    if transport_change and live and not force:
        raise InputError("transport", "refusing to change the transport of iface %s from %s to %s while %d session(s) "
                                      "use it; log them out first or set force: true (the change applies at the next "
                                      "login)" % (name, transport_change[0][1], transport_change[0][2], len(live)))
    for rec in bound:
        rec_settings = rec.get("settings") or {}
        diff = dict((k, v) for k, v in effective.items() if unempty(rec_settings.get(k)) != unempty(v))
        if diff:
            plan.record_changes.append((rec, diff))
    transport = effective.get("iface.transport_name") or unempty(settings.get("iface.transport_name")) or "tcp"
    if transport in UIO_TRANSPORTS:
        if not uio_installed:
            plan.warnings.append("iface %s uses the %s offload transport, which needs the iscsiuio daemon (Debian "
                                 "package iscsiuio) to configure the adapter's IP; it is not installed, so logins "
                                 "through this iface will fail until it is" % (name, transport))
        ip = effective.get("iface.ipaddress") if "iface.ipaddress" in effective else unempty(
            settings.get("iface.ipaddress"))
        if not ip:
            plan.warnings.append("iface %s uses %s, which needs iface.ipaddress (an address of its own, or 0.0.0.0 "
                                 "for DHCP)" % (name, transport))
    if (plan.changes or plan.record_changes) and live:
        plan.warnings.append("iface %s is used by %d live session(s): the change applies when they log in again"
                             % (name, len(live)))
    return plan
