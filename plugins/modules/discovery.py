#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: discovery
short_description: SendTargets discovery that creates only missing node records
version_added: 0.1.0
description:
  - Asks one or more iSCSI portals which targets they offer (SendTargets) and creates a node record for every
    discovered target, portal, portal group and iface that has none yet. Existing records are never changed, so
    settings such as C(node.startup) or CHAP made by M(openiscsi.initiator.node) survive every run.
  - This is C(iscsiadm -m discoverydb -t st -p PORTAL --discover -o new). The module never runs plain
    C(iscsiadm -m discovery -t st), which rewrites existing records and resets their settings.
  - With O(create_nodes=false) the module only reports what the portals offer.
  - With O(only_targets) only the targets named there are kept (reported and created); the others a portal offers
    are left out (RV(filtered_out) names them) and no record is made for them.
  - Discovery CHAP (O(auth)) is kept in the portal's discovery record (C(send_targets/ADDR,PORT/st_config) in the
    node DB, mode C(0600)). The secrets are written into that file directly, then checked with iscsiadm's own
    reader; they never appear on a command line.
  - Returns RV(targets), a list that can be given as is to the O(openiscsi.initiator.node#module:nodes) option of
    M(openiscsi.initiator.node).
author:
  - openiscsi.initiator contributors (@openiscsi)
options:
  portals:
    description:
      - The portals to ask, each C(host[:port]); IPv6 addresses in brackets (V([2001:db8::10]:3260)). The port
        defaults to V(3260).
    type: list
    elements: str
    required: true
    aliases: [portal]
  auth:
    description:
      - Discovery CHAP for these portals, stored in each portal's discovery record.
      - When omitted, the discovery records keep whatever authentication they have (a new record starts with the
        C(discovery.sendtargets.auth.*) defaults of C(/etc/iscsi/iscsid.conf)).
    type: dict
    suboptions:
      method:
        description:
          - V(CHAP) or V(None) (switch discovery CHAP off and remove the stored credentials).
          - Defaults to V(CHAP) when O(auth.username) is given.
        type: str
        choices: [CHAP, None]
      username:
        description: The initiator's CHAP user name at the portal.
        type: str
      password:
        description: The initiator's CHAP secret. At most 255 bytes, no line breaks, no leading or trailing spaces.
        type: str
      username_in:
        description: For mutual CHAP, the user name the portal answers with.
        type: str
      password_in:
        description: For mutual CHAP, the portal's secret.
        type: str
  iface:
    description:
      - Bind the discovered records to these iface records (C(iscsiadm -I)), e.g. one per NIC for multipath.
      - When omitted, iscsiadm binds them to every iface record of the software transport (tcp) that exists, or to
        V(default) when there is none.
    type: list
    elements: str
    aliases: [ifaces]
  create_nodes:
    description:
      - Create node records for what is discovered. With V(false) nothing is created and the module only reports
        (the discovery record and its O(auth) are still managed, since discovery CHAP needs them).
    type: bool
    default: true
  only_targets:
    description:
      - Keep only the discovered targets whose name matches one of these entries, each an exact target name
        (V(iqn.2001-04.com.example:db01-data)) or a shell-style pattern (V(iqn.2001-04.com.example:db01-*),
        with C(*), C(?) and C([...])). The whole name is compared, case-insensitively (iSCSI names are); a
        name never matches as a substring.
      - Records are made only for the kept targets, with C(iscsiadm -m node -o new) after a discovery that writes
        nothing (C(-o nonpersistent)), then given what discovery writes into a record (as the V(python) backend
        does), so existing records are never reset and C(iscsiadm -m discoverydb -p PORTAL -o delete) still
        removes them. Records made before for targets left out are not touched (use M(openiscsi.initiator.node)
        with O(openiscsi.initiator.node#module:state=absent) to delete them).
      - When omitted, every offered target is kept.
    type: list
    elements: str
  backend:
    description:
      - How the portals are asked (the SendTargets exchange itself). RV(backend) says which one was used.
      - V(iscsiadm) runs open-iscsi's C(iscsiadm -m discoverydb ... --discover -o new); it needs the kernel's
        C(iscsi_tcp) module. This is the default, open-iscsi's own behaviour.
      - V(python) asks the portals with the collection's pure-Python iSCSI initiator (Python standard library, no
        kernel transport, no iscsid), for hosts where iscsiadm cannot discover (no C(iscsi_tcp) in the kernel,
        containers, CI). It logs in to each portal with discovery CHAP (also mutual) from O(auth), or when O(auth)
        is omitted from the portal's discovery record, sends C(SendTargets=All) and logs out. The missing records
        are then created with C(iscsiadm -m node -o new) and given what SendTargets discovery writes into a record
        (C(node.discovery_address), C(node.discovery_port), C(node.discovery_type = send_targets) and the link in
        the portal's C(send_targets) directory), so they are the records the V(iscsiadm) backend creates and
        C(iscsiadm -m discoverydb -p PORTAL -o delete) removes them alike. The host's initiator name is read
        from C(/etc/iscsi/initiatorname.iscsi). In check mode it asks the portals with the new O(auth) without
        storing it, so the targets are known there too.
      - V(auto) uses V(iscsiadm) when the kernel's C(iscsi_tcp) module is loaded or can be loaded (listed in
        C(/lib/modules/RELEASE/modules.dep) or C(modules.builtin)) and iscsiadm is installed, else V(python).
    type: str
    choices: [iscsiadm, python, auto]
    default: iscsiadm
  timeout:
    description:
      - With the V(python) backend, seconds each network operation may take (connect, each answer); a portal may
        take at most four times as long in all.
    type: float
    default: 10
extends_documentation_fragment:
  - openiscsi.initiator.attributes
  - openiscsi.initiator.attributes.FILES
attributes:
  check_mode:
    support: full
    details:
      - Discovery runs with C(-o nonpersistent), which writes neither node nor discovery records, and RV(created)
        lists exactly the records the real run creates.
      - When O(auth) would change a portal's stored credentials, iscsiadm cannot log in to that portal with the new
        credentials without writing them; with the V(iscsiadm) backend its targets are then reported as unknown (a
        warning says so) while V(changed) is still predicted. The V(python) backend uses the new credentials
        directly and knows the targets.
  diff_mode:
    support: full
  idempotent:
    support: full
  safe_file_operations:
    support: full
notes:
  - Discovery with the V(iscsiadm) backend needs the kernel's C(iscsi_tcp) module (C(modprobe iscsi_tcp)); node
    records and the V(python) backend do not. Both backends still use C(iscsiadm) to write the node DB, so
    open-iscsi must be installed.
  - A static record made without discovery has portal group V(-1); C(-o new) adds the discovered portal group next
    to it (a warning names such pairs).
seealso:
  - module: openiscsi.initiator.node
  - module: openiscsi.initiator.session
"""

EXAMPLES = r"""
- name: Discover the targets of both portals of the array and create their records
  openiscsi.initiator.discovery:
    portals:
      - 192.0.2.10
      - "[2001:db8::10]:3260"
  register: found

- name: Configure every discovered record in one task
  openiscsi.initiator.node:
    nodes: "{{ found.targets }}"
    startup: automatic

- name: Discovery with CHAP, records bound to two NICs
  openiscsi.initiator.discovery:
    portals: [192.0.2.10]
    iface: [san-a, san-b]
    auth:
      username: discovery-user
      password: "{{ vault_discovery_secret }}"

- name: Only the database LUNs of this host, out of everything the array offers
  openiscsi.initiator.discovery:
    portals: [192.0.2.10, 192.0.2.11]
    only_targets:
      - iqn.2001-04.com.example:db01-*
      - iqn.2001-04.com.example:shared-backup

- name: Only look
  openiscsi.initiator.discovery:
    portals: [192.0.2.10]
    create_nodes: false
  register: offered

- name: Discovery where the kernel has no iSCSI transport (container, CI), mutual CHAP, pure-Python initiator
  openiscsi.initiator.discovery:
    portals: [192.0.2.10]
    backend: python
    auth:
      username: discovery-user
      password: "{{ vault_discovery_secret }}"
      username_in: array-user
      password_in: "{{ vault_array_secret }}"

- name: Let the module pick (iscsiadm when iscsi_tcp can be loaded, else the pure-Python initiator)
  openiscsi.initiator.discovery:
    portals: [192.0.2.10]
    backend: auto
  register: found

- name: Say which backend was used
  ansible.builtin.debug:
    msg: "{{ found.backend }} ({{ found.backend_reason }})"
"""

RETURN = r"""
targets:
  description:
    - Every record the portals offer (one per target, portal, portal group and iface), sorted; the form taken by
      the O(openiscsi.initiator.node#module:nodes) option of M(openiscsi.initiator.node).
    - V([]) for a portal whose targets are unknown in check mode (see the check mode attribute).
  returned: success
  type: list
  elements: dict
  contains:
    target:
      description: Target name.
      type: str
    portal:
      description: C(addr:port), IPv6 in brackets.
      type: str
    tpgt:
      description: Target portal group tag.
      type: int
    iface:
      description: The iface record the record is bound to.
      type: str
  sample:
    - {target: "iqn.2004-10.com.example:disk1", portal: "192.0.2.10:3260", tpgt: 1, iface: default}
filtered_out:
  description: The names of the offered targets that O(only_targets) left out, sorted (V([]) without a filter).
  returned: success
  type: list
  elements: str
  sample: ["iqn.2001-04.com.example:web01-data"]
created:
  description: The records created by this run (predicted in check mode), same form as RV(targets).
  returned: success
  type: list
  elements: dict
  sample: []
backend:
  description: The backend that asked the portals, V(iscsiadm) or V(python) (what V(auto) chose).
  returned: success
  type: str
  sample: python
backend_reason:
  description: >-
    Why that backend, e.g. V(requested) or V(auto: kernel module iscsi_tcp is not available to this kernel).
  returned: success
  type: str
  sample: "auto: kernel module iscsi_tcp is loaded"
portals:
  description:
    - Per portal asked, C(portal), whether its discovery record was (or would be) C(record_created), whether its
      stored credentials changed (C(auth_changed)), the stored C(auth) (secrets masked) and C(targets_known).
  returned: success
  type: list
  elements: dict
  sample:
    - {portal: "192.0.2.10:3260", record_created: false, auth_changed: false, auth: {method: CHAP,
       username: discovery-user, password: "********"}, targets_known: true}
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openiscsi.initiator.plugins.module_utils import _discovery as disc
from ansible_collections.openiscsi.initiator.plugins.module_utils import _nodedb
from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._fileio import read_text, write_atomic
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_errors import ISCSIError
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_probe import (
    INITIATORNAME_PATH,
    discover_triples,
    host_initiator_name,
)
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsiadm import DbLock, Iscsiadm, IscsiadmError
from ansible_collections.openiscsi.initiator.plugins.module_utils._kvconf import KVFile
from ansible_collections.openiscsi.initiator.plugins.module_utils._portal import parse_portal

ST_MODE = 0o600
ROOT = "/"  # the managed system; unit tests point it at a fixture tree
ISCSID_CONF = "/etc/iscsi/iscsid.conf"
BUILTIN_IFACES = ("default", "iser")
# Other backends register here: name -> function(portals, auth, **context) -> [(target, portal_text, tpgt)] (see
# _discovery.DiscoverFunction; context: initiator_name, timeout).  Their records are created with
# `iscsiadm -m node -o new`, one per iface, then made what SendTargets discovery writes (as_discovered_records).


def discover_python(portals, auth, initiator_name=None, timeout=10.0):
    """The python backend: SendTargets with the pure-Python initiator at each (address, port)."""
    triples = []
    seen = set()  # a set: a list search made 58,839 targets take a minute
    for address, port in portals:
        text = disc.portal_text(address, port)
        try:
            found = discover_triples(address, port, initiator_name, auth, timeout=timeout, total_timeout=4 * timeout)
        except ValueError as exc:
            raise DiscoveryFailed("discovery at %s: %s" % (text, exc))
        except ISCSIError as exc:
            msg = "discovery at %s (python backend): %s" % (text, exc.message)
            if exc.kind == "authentication" or getattr(exc, "status", None) in ("0201", "0202"):
                msg += (". Check the discovery CHAP credentials: auth.username/auth.password (and auth.username_in/"
                        "auth.password_in for mutual CHAP)")
                if not auth or auth.get("method") != "CHAP":
                    msg += "; no discovery CHAP was used: the portal probably requires it"
            raise DiscoveryFailed(msg)
        for triple in found:
            if triple not in seen:
                seen.add(triple)
                triples.append(triple)
    return triples


DISCOVER_FUNCTIONS = {"python": discover_python}


def under(path):
    """A host path seen under ROOT."""
    return os.path.join(ROOT, path.lstrip("/"))


def _fail(module, msg, **extra):
    module.fail_json(msg=msg, **extra)


def validate(params, known_ifaces):
    """Checked, normalized options; raises InputError naming the field."""
    portals = []
    seen = set()
    raw = params["portals"] or []
    if not raw:
        raise InputError("portals", "give at least one portal, e.g. 192.0.2.10 or [2001:db8::10]:3260")
    for idx, text in enumerate(raw):
        portal = parse_portal(text, field="portals[%d]" % idx)
        if portal.key() not in seen:
            seen.add(portal.key())
            portals.append(portal)
    auth = disc.validate_auth(params.get("auth"), "auth")
    disc.validate_target_filter(params.get("only_targets"), "only_targets")
    ifaces = None
    if params.get("iface") is not None:
        ifaces = []
        for idx, name in enumerate(params["iface"]):
            field = "iface[%d]" % idx
            if not isinstance(name, str) or not name or "/" in name or name.strip() != name or name in (".", ".."):
                raise InputError(field, "%r is not an iface record name" % (name,))
            if name not in known_ifaces and name not in BUILTIN_IFACES:
                raise InputError(field, "iface %r does not exist; create it with openiscsi.initiator.iface (known: %s)"
                                 % (name, ", ".join(sorted(set(known_ifaces) | set(BUILTIN_IFACES)))))
            if name not in ifaces:
                ifaces.append(name)
    if params.get("backend") not in disc.BACKENDS and params.get("backend") not in DISCOVER_FUNCTIONS:
        raise InputError("backend", "unknown backend %r" % (params.get("backend"),))
    if params.get("timeout") is not None and not params["timeout"] > 0:
        raise InputError("timeout", "must be a positive number of seconds, got %r" % (params["timeout"],))
    return portals, auth, ifaces


class PortalPlan:
    """What the module knows and plans about one discovery portal."""

    def __init__(self, portal, db):
        self.portal = portal
        self.text = portal.arg()
        self.path = os.path.join(_nodedb.send_targets_dir(db, portal.address, portal.port), "st_config")
        self.current = read_text(under(self.path))
        self.before = self.current
        self.record_created = self.current is None
        self.changes = []
        self.targets_known = True
        self.records = []

    def values(self, defaults):
        if self.current is None:
            return defaults
        return KVFile.parse(self.current).as_dict()


def iscsid_discovery_defaults():
    """The discovery.sendtargets.* values a new discovery record inherits from iscsid.conf."""
    text = read_text(under(ISCSID_CONF)) or ""
    return dict((k, v) for k, v in KVFile.parse(text).as_dict().items() if k.startswith("discovery.sendtargets."))


def discover_iscsiadm(adm, item, ifaces, persist, auth_given):
    """Run discovery at one portal; ``persist`` creates missing node records (``-o new``)."""
    args = ["-m", "discoverydb", "-t", "st", "-p", item.text]
    for name in ifaces or []:
        args += ["-I", name]
    args += ["--discover", "-o", "new" if persist else "nonpersistent", "-P", "1"]
    try:
        rc, out, err = adm.run(args, ok=(0, 21), context="discovery at %s" % item.text, discovery=True)
    except IscsiadmError as exc:
        raise DiscoveryFailed(disc.error_message(exc.rc, item.text, exc.stderr, auth_given))
    if rc == 21:
        return [], "discovery at %s: the portal offered no target to this initiator" % item.text
    try:
        return disc.parse_tree(out), None
    except ValueError as exc:
        raise DiscoveryFailed("discovery at %s: could not read iscsiadm's answer (%s)" % (item.text, exc))


class DiscoveryFailed(Exception):
    pass


def pick_backend(module, requested):
    """``(backend, reason)``: ``auto`` resolved by the kernel transport and iscsiadm's presence."""
    if requested != "auto":
        return requested, "requested"
    return disc.choose_backend("auto", disc.kernel_transport(ROOT, os.uname().release),
                               module.get_bin_path("iscsiadm"))


def as_discovered_records(module, db, records, found_at):
    """Give records made with ``-m node -o new`` what SendTargets discovery writes: the discovery keys and the link
    from the discovery portal's directory (instead of static/).  *found_at* maps a record to the portal that found
    it first (as iscsiadm, which adds a record only at the first portal that offers it)."""
    with DbLock(ROOT):
        for rec in records:
            portal = found_at[rec]
            path = under(_nodedb.record_path(db, rec.target, rec.address, rec.port, rec.tpgt, rec.iface))
            text = read_text(path)
            if text is None:
                _fail(module, "the node record %s is not there after iscsiadm created it" % path, changed=True)
            try:
                write_atomic(module, path, disc.as_discovered_record(text, portal.address, portal.port))
            except ValueError as exc:
                _fail(module, "%s: %s" % (path, exc), changed=True)
            if rec.tpgt == -1:
                continue  # iscsiadm links no record without a portal group tag
            name = disc.link_name(rec.target, rec.address.strip("[]"), rec.port, rec.tpgt, rec.iface)
            static = under(os.path.join(db, "static", name))
            if os.path.islink(static):
                os.unlink(static)
            node_dir = os.path.join(db, "nodes", rec.target, _nodedb.portal_dirname(rec.address, rec.port, rec.tpgt))
            link = under(os.path.join(_nodedb.send_targets_dir(db, portal.address, portal.port), name))
            if not os.path.lexists(link):
                os.symlink(node_dir, link)


def run_module():
    module = AnsibleModule(
        argument_spec=dict(
            portals=dict(type="list", elements="str", required=True, aliases=["portal"]),
            auth=dict(type="dict", options=dict(
                method=dict(type="str", choices=["CHAP", "None"]),
                username=dict(type="str"),
                password=dict(type="str", no_log=True),
                username_in=dict(type="str"),
                password_in=dict(type="str", no_log=True),
            )),
            iface=dict(type="list", elements="str", aliases=["ifaces"]),
            create_nodes=dict(type="bool", default=True),
            only_targets=dict(type="list", elements="str"),
            backend=dict(type="str", default="iscsiadm", choices=["iscsiadm", "python", "auto"]),
            timeout=dict(type="float", default=10.0),
        ),
        supports_check_mode=True,
    )
    params = module.params
    db = _nodedb.find_db_root(ROOT)
    try:
        known_ifaces = [i["name"] for i in _nodedb.read_ifaces(ROOT, db=db)]
        portals, auth, ifaces = validate(params, known_ifaces)
    except InputError as exc:
        _fail(module, str(exc))
    backend, backend_reason = pick_backend(module, params["backend"])
    only = disc.validate_target_filter(params["only_targets"])
    # with a filter, discovery writes nothing and the kept records are made one by one (as with the python backend)
    create_one_by_one = backend in DISCOVER_FUNCTIONS or only is not None
    context = {}
    if backend == "python":
        context = {"initiator_name": host_initiator_name(ROOT), "timeout": params["timeout"]}
        if not context["initiator_name"]:
            _fail(module, "backend: python needs the host's initiator name and %s holds no valid InitiatorName; "
                          "configure it first (openiscsi.initiator.initiator_name)" % INITIATORNAME_PATH)
        if ifaces is None:
            ifaces = disc.default_ifaces(_nodedb.read_ifaces(ROOT, db=db))

    adm = Iscsiadm(module)
    for field in disc.SECRET_FIELDS:
        if auth and auth.get(field):
            adm.add_secret(auth[field])

    before_nodes = _nodedb.read_nodes(ROOT, db=db)
    defaults = None
    items = [PortalPlan(p, db) for p in portals]
    warnings = []
    for item in items:
        if item.record_created and defaults is None:
            defaults = iscsid_discovery_defaults()
        item.changes = disc.auth_changes(item.values(defaults or {}), auth)

    # ---- apply the discovery records (create, store CHAP), unless check mode
    if not module.check_mode:
        for item in items:
            try:
                if item.record_created:
                    adm.run(["-m", "discoverydb", "-t", "st", "-p", item.text, "-o", "new"],
                            context="creating the discovery record of %s" % item.text, discovery=True)
                    item.current = read_text(under(item.path))
                    if item.current is None:
                        _fail(module, "iscsiadm created the discovery record of %s but %s is not there: the node DB "
                                      "is not where this module looks (%s)" % (item.text, item.path, db))
                    item.changes = disc.auth_changes(KVFile.parse(item.current).as_dict(), auth)
                if item.changes:
                    write_atomic(module, under(item.path), disc.apply_auth_changes(item.current, item.changes),
                                 mode=ST_MODE, force_mode=True)
                    _rc, out, _err = adm.run(["-m", "discoverydb", "-t", "st", "-p", item.text],
                                             context="reading back the discovery record of %s" % item.text,
                                             discovery=True)
                    problems = disc.verify_auth_show(out, auth)
                    if problems:
                        _fail(module, "discovery record of %s: iscsiadm does not read back the stored "
                                      "credentials: %s" % (item.text, "; ".join(problems)), changed=True)
            except IscsiadmError as exc:
                _fail(module, exc.message, changed=any(i.record_created or i.changes for i in items))

    # ---- discover
    discovered = []
    found_at = {}
    filtered_out = set()
    for item in items:
        if module.check_mode and item.changes and backend not in DISCOVER_FUNCTIONS:
            item.targets_known = False
            warnings.append("check mode: the targets of %s are unknown until its new discovery credentials are "
                            "stored (iscsiadm reads them only from the discovery record)" % item.text)
            continue
        persist = params["create_nodes"] and not module.check_mode and not create_one_by_one
        try:
            if backend in DISCOVER_FUNCTIONS:
                # the credentials asked for, else those of the portal's discovery record (as iscsiadm uses them)
                use = auth if auth is not None else disc.auth_from_values(item.values(defaults or {}))
                triples = DISCOVER_FUNCTIONS[backend]([(item.portal.address, item.portal.port)], use, **context)
                item.records = disc.records_from_triples(triples, ifaces)
                note = None
            else:
                item.records, note = discover_iscsiadm(adm, item, ifaces, persist, auth is not None)
        except DiscoveryFailed as exc:
            _fail(module, str(exc), changed=not module.check_mode and any(i.record_created or i.changes
                                                                          for i in items))
        if note:
            warnings.append(note)
        item.records, dropped = disc.filter_targets(item.records, only)
        filtered_out.update(dropped)
        for rec in item.records:
            found_at.setdefault(rec, item.portal)
        discovered.extend(item.records)
    discovered = disc.unique(discovered)

    new, existing = disc.plan_new_records(discovered, before_nodes)
    for twin in disc.static_twins(new, before_nodes):
        warnings.append("%s at %s (iface %s) already has a static record (tpgt -1); discovery adds the record of "
                        "portal group %d next to it" % (twin.target, disc.portal_text(twin.address, twin.port),
                                                        twin.iface, twin.tpgt))

    created = []
    if params["create_nodes"]:
        if not module.check_mode:
            if create_one_by_one:
                for rec in new:
                    try:
                        adm.node_new(rec.target, disc.portal_text(rec.address, rec.port), rec.iface, rec.tpgt)
                    except IscsiadmError as exc:
                        _fail(module, exc.message, changed=True)
                try:
                    as_discovered_records(module, db, new, found_at)
                except OSError as exc:
                    _fail(module, "making the new records discovered records: %s" % exc, changed=True)
            # what really appeared, from the DB itself
            after_keys, _flat = disc.existing_keys(_nodedb.read_nodes(ROOT, db=db))
            before_keys, _flat = disc.existing_keys(before_nodes)
            created = [r for r in discovered if tuple(r) in after_keys and tuple(r) not in before_keys]
            missing = [r for r in new if tuple(r) not in after_keys]
            if missing:
                _fail(module, "discovery reported records that are not in the node DB afterwards: %s"
                      % ", ".join("%s %s" % (r.target, disc.portal_text(r.address, r.port)) for r in missing),
                      changed=True)
        else:
            created = new

    changed = bool(created) or any(i.record_created or i.changes for i in items)

    def lines(records):
        return sorted("%s %s,%d %s" % (r.target, disc.portal_text(r.address, r.port), r.tpgt, r.iface)
                      for r in records)

    portals_out = []
    before_auth, after_auth = {}, {}
    for item in items:
        before_values = KVFile.parse(item.before).as_dict() if item.before is not None else None
        shown_after = dict(item.values(defaults or {}))
        for key, value in item.changes:
            if value is None:
                shown_after.pop(key, None)
            else:
                shown_after[key] = value
        portals_out.append({
            "portal": item.text,
            "record_created": item.record_created,
            "auth_changed": bool(item.changes),
            "auth": disc.masked_auth(shown_after),
            "targets_known": item.targets_known,
        })
        before_auth[item.text] = disc.masked_auth(before_values) if before_values is not None else None
        after_auth[item.text] = disc.masked_auth(shown_after)

    result = dict(
        changed=changed,
        backend=backend,
        backend_reason=backend_reason,
        targets=disc.node_entries(discovered),
        filtered_out=sorted(filtered_out),
        created=disc.node_entries(created),
        portals=portals_out,
    )
    if module._diff:
        result["diff"] = {
            "before": {"records": lines(existing), "discovery_auth": before_auth},
            "after": {"records": lines(existing + list(created)), "discovery_auth": after_auth},
            "before_header": "node records and discovery records (before)",
            "after_header": "node records and discovery records (after)",
        }
    for warning in warnings:
        module.warn(warning)
    module.exit_json(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
