#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: initramfs
short_description: Configure the iSCSI login of the initramfs (root on iSCSI) and keep the network off its NIC
version_added: 0.1.0
description:
  - Manages /etc/iscsi/iscsi.initramfs, which Debian's open-iscsi initramfs hook copies into the initramfs and whose
    settings the initramfs uses to log in to the target holding the root file system; either O(auto=true)
    (C(ISCSI_AUTO), the target comes from the firmware's iBFT) or explicit settings (O(target_name), O(target_ip),
    O(port), O(portal_group), O(initiator), CHAP and mutual CHAP).
  - Values are checked before anything is written; values with blanks or shell metacharacters are rejected because
    the initramfs scripts use them unquoted. Lines of the file that the module does not manage are kept. The file
    gets mode C(0600) while it holds a CHAP secret; secrets never appear in diffs or return values.
  - Manages the hook's opt-out, /etc/initramfs-tools/conf.d/open-iscsi (C(NO_ISCSI_IN_INITRAMFS=yes) with
    O(include_in_initramfs=false)), and REFUSES the opt-out while the root file system (or /usr) is on iSCSI or
    iscsi.initramfs configures a login, unless O(force=true) (such a machine would not boot).
  - With O(network_keep=true) makes the host's network stack leave alone the NIC that carries the root session, so
    that the session the initramfs made survives the boot and restarts of the network service -- see the notes.
  - Returns RV(initramfs_rebuild_needed) when the current initramfs image does not contain what it must (this file,
    the opt-out, the host's initiator name), found by unpacking the image with C(unmkinitramfs); with
    O(rebuild=true) runs C(update-initramfs -u -k VERSION) for the stale images only, then checks them again.
author:
  - openiscsi.initiator contributors (@openiscsi)
options:
  auto:
    description:
      - V(true) writes C(ISCSI_AUTO=true) (iBFT firmware configuration); no explicit target setting may be given.
      - Neither O(auto) nor any target setting given leaves iscsi.initramfs as it is.
    type: bool
  initiator:
    description: C(ISCSI_INITIATOR); default in the initramfs is its copy of /etc/iscsi/initiatorname.iscsi.
    type: str
  target_name:
    description: C(ISCSI_TARGET_NAME), the IQN (or EUI/NAA name) of the target with the root LUN.
    type: str
  target_ip:
    description:
      - C(ISCSI_TARGET_IP), one or more portal addresses (IPv4 or IPv6, no host names); the initramfs logs in once
        per address.
    type: list
    elements: str
    aliases: [target_ips]
  port:
    description: C(ISCSI_TARGET_PORT) (the initramfs uses 3260 when it is not set).
    type: int
  portal_group:
    description: C(ISCSI_TARGET_GROUP), the target portal group tag (the initramfs uses 1 when it is not set).
    type: int
  username:
    description: C(ISCSI_USERNAME), CHAP user name the initiator presents.
    type: str
  password:
    description: C(ISCSI_PASSWORD), the CHAP secret. Never shown in diffs or results.
    type: str
  username_in:
    description: C(ISCSI_IN_USERNAME), mutual CHAP user name of the target (needs O(username)).
    type: str
  password_in:
    description: C(ISCSI_IN_PASSWORD), the target's mutual CHAP secret.
    type: str
  state:
    description:
      - V(present) manages the login settings given; V(absent) removes /etc/iscsi/iscsi.initramfs (refused while
        the root file system is on iSCSI, unless O(force=true)).
    type: str
    choices: [present, absent]
    default: present
  include_in_initramfs:
    description:
      - V(false) writes C(NO_ISCSI_IN_INITRAMFS=yes) to /etc/initramfs-tools/conf.d/open-iscsi (smaller initramfs,
        no iSCSI at boot); V(true) removes that setting (and the file when nothing else is in it).
      - Not given leaves the file as it is.
    type: bool
  force:
    description:
      - Allow the opt-out, or O(state=absent), although the root file system is on iSCSI or a login is configured.
    type: bool
    default: false
  network_keep:
    description:
      - Make the network stack leave the root session's NIC alone.
      - systemd-networkd -- the C(.network) file that manages the NIC gets a drop-in
        (C(/etc/systemd/network/<file>.d/50-openiscsi-keep-configuration.conf)) with C(KeepConfiguration=yes); when
        no file matches, C(/etc/systemd/network/05-openiscsi-root-<nic>.network) matches the NIC by name and only
        keeps its configuration. Files whose C([Match]) cannot be evaluated here (C(Path=) ...) get the drop-in too.
      - ifupdown -- C(iface <nic> inet|inet6 <method>) stanzas in /etc/network/interfaces (and files it sources) are
        set to C(manual).
    type: bool
    default: false
  network_interfaces:
    description:
      - The NIC(s) that carry the root session. Default on a host booted from iSCSI -- the NIC the initramfs
        recorded (C(/run/initramfs/open-iscsi.interface)) and the NICs the kernel routes the root sessions' target
        addresses through. Required with O(network_keep=true) when preparing an image (O(root) not V(/)) or a host
        not yet booted from iSCSI.
    type: list
    elements: str
    default: []
  rebuild:
    description:
      - Run C(update-initramfs -u -k VERSION) for every kernel whose initramfs is stale (see RV(rebuild_reasons)),
        and only then. Only with O(root=/). Fails when /etc/initramfs-tools/update-initramfs.conf says
        C(update_initramfs=no) (update-initramfs would silently do nothing) or when the image is still stale after.
    type: bool
    default: false
  backup:
    description: Back up files before changing them.
    type: bool
    default: false
  root:
    description: Root directory of the system to manage (an image or chroot being prepared; tests).
    type: path
    default: /
extends_documentation_fragment:
  - openiscsi.initiator.attributes
  - openiscsi.initiator.attributes.FILES
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - Secret values are shown as C(********).
  idempotent:
    support: full
  safe_file_operations:
    support: full
notes:
  - Root on iSCSI and the network stack (measured in this collection's lab) -- the initramfs configures the NIC and
    logs in; when systemd-networkd then reconfigures that NIC during boot (or on a restart of networkd), the
    connection breaks (kernel C(conn error 1021)), I/O to C(/) fails and the machine hangs. With
    C(KeepConfiguration=yes) on the NIC's C(.network) file the machine boots and survives restarts of
    C(systemd-networkd). Debian's README for open-iscsi says the same for ifupdown -- set the NIC to C(manual).
  - iscsid must take over the session the initramfs made (it re-establishes a dropped connection; without it the
    session stays broken). Debian's C(iscsid.socket)/C(open-iscsi.service) do that when enabled;
    RV(iscsid_enabled) reports it and a warning is given when they are not.
  - NetworkManager is not handled (a warning says so when it is installed).
  - An initramfs built with C(MODULES=dep) or C(MODULES=list) on a machine that still boots from a local disk has no
    SCSI disk driver (C(sd_mod)) -- the LUN logs in but never becomes a disk (seen in the lab). The module warns when
    an inspected image lacks it; add C(sd_mod) (and the NIC's driver) to /etc/initramfs-tools/modules.
seealso:
  - module: openiscsi.initiator.initiator_name
  - module: openiscsi.initiator.fstab_netdev
"""

EXAMPLES = r"""
- name: Root on iSCSI, explicit target with CHAP, network kept, initramfs rebuilt when stale
  openiscsi.initiator.initramfs:
    target_name: iqn.2004-10.com.example:storage.root
    target_ip: [192.0.2.10, 198.51.100.10]
    username: node01
    password: "{{ vault_root_chap_secret }}"
    network_keep: true
    rebuild: true

- name: iBFT firmware boot
  openiscsi.initiator.initramfs:
    auto: true
    rebuild: true

- name: Keep open-iscsi out of the initramfs of a host that does not boot from iSCSI
  openiscsi.initiator.initramfs:
    include_in_initramfs: false
    rebuild: true

- name: Prepare an image in a chroot (the NIC name is known in advance)
  openiscsi.initiator.initramfs:
    root: /srv/images/node01
    target_name: iqn.2004-10.com.example:storage.node01
    target_ip: [192.0.2.10]
    network_keep: true
    network_interfaces: [eth1]
  register: ramfs
"""

RETURN = r"""
configured:
  description: Whether iscsi.initramfs makes the initramfs log in after the task (ISCSI_AUTO or target and address).
  returned: success
  type: bool
  sample: true
settings:
  description: The login settings in iscsi.initramfs after the task; secrets shown as C(********).
  returned: success
  type: dict
  sample: {"ISCSI_TARGET_NAME": "iqn.2004-10.com.example:storage.root", "ISCSI_TARGET_IP": "192.0.2.10",
           "ISCSI_USERNAME": "node01", "ISCSI_PASSWORD": "********"}
include_in_initramfs:
  description: Whether open-iscsi goes into the initramfs after the task (no C(NO_ISCSI_IN_INITRAMFS=yes)).
  returned: success
  type: bool
  sample: true
root_on_iscsi:
  description: Whether C(/) or C(/usr) is on an iSCSI LUN on this host now.
  returned: success
  type: bool
  sample: true
changed_files:
  description: Files written (or to be written in check mode).
  returned: success
  type: list
  elements: str
  sample: [/etc/iscsi/iscsi.initramfs, /etc/systemd/network/20-lan.network.d/50-openiscsi-keep-configuration.conf]
initramfs_rebuild_needed:
  description:
    - V(true) when an initramfs image does not hold what it must (before a rebuild this task made). When no image
      can be inspected, V(true) when this task changed an input of the initramfs.
  returned: success
  type: bool
  sample: true
rebuild_reasons:
  description: Why each stale image is stale.
  returned: success
  type: list
  elements: str
  sample: ["/boot/initrd.img-6.1.0-28-amd64 has no iscsi.initramfs, the host has one"]
rebuilt:
  description: Kernel versions whose initramfs this task rebuilt.
  returned: success
  type: list
  elements: str
  sample: [6.1.0-28-amd64]
network:
  description:
    - With O(network_keep=true) -- C(interfaces) (the NICs), C(networkd) (per NIC the matching files and the
      effective one), C(ifupdown) (stanzas set to manual).
  returned: success
  type: dict
  sample: {"interfaces": ["eth1"], "networkd": [{"nic": "eth1", "effective": "/run/systemd/network/20-lab.network"}]}
iscsid_enabled:
  description: Whether iscsid (socket or service) and open-iscsi.service are enabled to start at boot.
  returned: success
  type: bool
  sample: true
"""

import glob
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openiscsi.initiator.plugins.module_utils import _initramfs_plan as P
from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._fileio import file_diff, read_text, write_atomic
from ansible_collections.openiscsi.initiator.plugins.module_utils._hostinfo import root_usr_on_iscsi
from ansible_collections.openiscsi.initiator.plugins.module_utils._initiatorname import InitiatorNameFile
from ansible_collections.openiscsi.initiator.plugins.module_utils._shfile import ShFile
from ansible_collections.openiscsi.initiator.plugins.module_utils._sysfs import read_sessions
from ansible_collections.openiscsi.initiator.plugins.module_utils._rootfs import host_path

LANG_C = {"LANG": "C", "LC_ALL": "C"}
SECRET_MODE = 0o600
INTERFACE_NOTE = "run/initramfs/open-iscsi.interface"


def under(root, path):
    return host_path(root, path)


def read(module, path):
    try:
        return read_text(path)
    except OSError as exc:
        module.fail_json(msg="cannot read %s: %s" % (path, exc.strerror or exc))


def nic_facts(root, name):
    base = under(root, "sys/class/net/" + name)
    facts = {"name": name, "mac": None, "driver": None, "type": P.guess_type(name)}
    if os.path.isdir(base):
        try:
            with open(os.path.join(base, "address")) as fh:
                facts["mac"] = fh.read().strip() or None
        except OSError:
            pass
        drv = os.path.join(base, "device", "driver")
        if os.path.exists(drv):
            facts["driver"] = os.path.basename(os.path.realpath(drv))
        try:
            with open(os.path.join(base, "type")) as fh:
                kind = fh.read().strip()
            facts["type"] = {"1": "ether", "772": "loopback", "32": "infiniband"}.get(kind, facts["type"])
            if kind == "1" and os.path.isdir(os.path.join(base, "wireless")):
                facts["type"] = "wlan"
        except OSError:
            pass
    return facts


def root_nics(root, root_info):
    """NICs that carry the root session on a live host: the initramfs's note, and the routes to the targets."""
    nics = []
    note = read_text(under(root, INTERFACE_NOTE)) if os.path.exists(under(root, INTERFACE_NOTE)) else None
    if note and note.strip():
        nics.append(note.strip().split()[0])
    if root_info["on_iscsi"]:
        route = read_text(under(root, "proc/net/route"))
        route6 = read_text(under(root, "proc/net/ipv6_route"))
        for session in read_sessions(root):
            if session["sid"] not in root_info["sessions"]:
                continue
            for conn in session.get("connections", []):
                addr = conn.get("address") or conn.get("persistent_address")
                nic = P.route_interface(addr, route, route6) if addr else None
                if nic and nic not in nics:
                    nics.append(nic)
    return nics


def kernel_images(root):
    """``[(version, image path)]`` of the initramfs images to check."""
    if os.path.realpath(root) == "/":
        release = os.uname().release
        candidates = [release]
        for vmlinuz in sorted(glob.glob("/boot/vmlinuz-*")):
            version = os.path.basename(vmlinuz)[len("vmlinuz-"):]
            if version not in candidates:
                candidates.append(version)
    else:
        candidates = [os.path.basename(v)[len("vmlinuz-"):] for v in sorted(glob.glob(under(root, "boot/vmlinuz-*")))]
    return [(v, under(root, "boot/initrd.img-" + v)) for v in candidates
            if os.path.isfile(under(root, "boot/initrd.img-" + v))]


def inspect_image(module, unmkinitramfs, image):
    """What *image* holds: ``{'path', 'iscsi', 'iscsi_initramfs', 'initiator_name'}``, or None when unreadable."""
    tmp = tempfile.mkdtemp(prefix=".openiscsi-initramfs-")
    try:
        rc, dummy, err = module.run_command([unmkinitramfs, image, tmp], environ_update=LANG_C)
        if rc != 0:
            module.warn("cannot unpack %s with unmkinitramfs (rc %d): %s" % (image, rc, err.strip()))
            return None
        tops = [os.path.join(tmp, "main")] if os.path.isdir(os.path.join(tmp, "main")) else [tmp]
        top = tops[0]

        def first(*rels):
            for rel in rels:
                path = os.path.join(top, rel)
                if os.path.lexists(path):
                    return path
            return None

        has_iscsi = first("sbin/iscsistart", "usr/sbin/iscsistart") is not None
        conf = first("etc/iscsi.initramfs")
        name_file = first("etc/initiatorname.iscsi")
        name = None
        if name_file:
            name = InitiatorNameFile.parse(read_text(name_file) or "").name
        return {"path": image, "iscsi": has_iscsi, "iscsi_initramfs": read_text(conf) if conf else None,
                "initiator_name": name, "scsi_disk": has_scsi_disk(top)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def has_scsi_disk(top):
    """Whether an unpacked initramfs can make SCSI disks (sd_mod as a module or built into its kernel)."""
    for modules in glob.glob(os.path.join(top, "lib/modules/*")) + glob.glob(os.path.join(top, "usr/lib/modules/*")):
        if glob.glob(os.path.join(modules, "kernel/drivers/scsi/sd_mod.ko*")):
            return True
        builtin = read_text(os.path.join(modules, "modules.builtin")) or ""
        if "/sd_mod.ko" in builtin:
            return True
    return False


def unit_enabled(root, unit, targets):
    return any(os.path.lexists(under(root, "etc/systemd/system/%s.wants/%s" % (t, unit))) for t in targets)


def run_module():
    argument_spec = dict(
        auto=dict(type="bool"),
        initiator=dict(type="str"),
        target_name=dict(type="str"),
        target_ip=dict(type="list", elements="str", aliases=["target_ips"]),
        port=dict(type="int"),
        portal_group=dict(type="int"),
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
        username_in=dict(type="str"),
        password_in=dict(type="str", no_log=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        include_in_initramfs=dict(type="bool"),
        force=dict(type="bool", default=False),
        network_keep=dict(type="bool", default=False),
        network_interfaces=dict(type="list", elements="str", default=[]),
        rebuild=dict(type="bool", default=False),
        backup=dict(type="bool", default=False),
        root=dict(type="path", default="/"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    root = p["root"]

    # ---- validate everything first
    try:
        if not os.path.isabs(root):
            raise InputError("root", "must be an absolute path, got %r" % root)
        login_keys = ("auto", "initiator", "target_name", "target_ip", "port", "portal_group", "username",
                      "password", "username_in", "password_in")
        if p["state"] == "absent":
            given = [k for k in login_keys if p[k] not in (None, [])]
            if given:
                raise InputError(given[0], "cannot be combined with state: absent, which removes the file")
            wanted = None
        else:
            wanted = P.desired_initramfs(
                auto=p["auto"], initiator=p["initiator"], target_name=p["target_name"], target_ips=p["target_ip"],
                port=p["port"], portal_group=p["portal_group"], username=p["username"], password=p["password"],
                username_in=p["username_in"], password_in=p["password_in"])
        for nic in p["network_interfaces"]:
            if not nic or len(nic) > 15 or any(c in nic for c in "/ \t\n:\0") or nic in (".", ".."):
                raise InputError("network_interfaces", "%r is not a network interface name" % nic)
        if p["rebuild"] and os.path.realpath(root) != "/":
            raise InputError("rebuild", "works only with root: / (run update-initramfs inside the image); use the "
                                        "returned initramfs_rebuild_needed instead")
    except InputError as exc:
        module.fail_json(msg=str(exc))

    conf_path = under(root, P.INITRAMFS_FILE)
    optout_path = under(root, P.OPT_OUT_FILE)
    old_conf = read(module, conf_path)
    old_optout = read(module, optout_path)

    # ---- iscsi.initramfs
    if p["state"] == "absent":
        new_conf = None
    elif wanted is None:
        new_conf = old_conf
    else:
        new_conf = P.render_initramfs(old_conf, wanted)
    conf_changed = new_conf != old_conf

    # ---- opt-out
    if p["include_in_initramfs"] is None:
        new_optout, optout_changed = old_optout, False
    else:
        new_optout, optout_changed = P.opt_out_text(old_optout, p["include_in_initramfs"])
        if new_optout == old_optout:
            optout_changed = False
    include_after = not P.opt_out_active(new_optout)

    root_info, usr_info = root_usr_on_iscsi(root)
    root_on_iscsi = bool(root_info["on_iscsi"] or usr_info["on_iscsi"])
    configured_after = P.configured(new_conf)
    if not p["force"]:
        if not include_after and optout_changed:
            why = []
            if root_on_iscsi:
                why.append("the root file system%s is on iSCSI (session(s) %s)" % (
                    "" if root_info["on_iscsi"] else " (/usr)",
                    ", ".join(str(s) for s in (root_info["sessions"] or usr_info["sessions"]))))
            if new_conf is not None:
                why.append("%s exists (%s)" % (P.INITRAMFS_FILE, "it configures a login at boot" if configured_after
                                               else "boot-time login settings may come from the kernel command line"))
            if why:
                module.fail_json(msg="include_in_initramfs: refusing NO_ISCSI_IN_INITRAMFS=yes because %s: the "
                                     "machine would not boot after the next initramfs rebuild. Set force: true if "
                                     "you really mean it. Nothing was changed." % " and ".join(why),
                                 root_on_iscsi=root_on_iscsi, configured=configured_after)
        if p["state"] == "absent" and old_conf is not None and root_on_iscsi:
            module.fail_json(msg="state: refusing to remove %s while the root file system is on iSCSI: the machine "
                                 "would not boot after the next initramfs rebuild. Set force: true if you really "
                                 "mean it. Nothing was changed." % P.INITRAMFS_FILE, root_on_iscsi=True)

    # ---- network
    writes = {}  # path inside root -> text
    network = {}
    if p["network_keep"]:
        nics = list(p["network_interfaces"]) or (root_nics(root, root_info) if os.path.realpath(root) == "/" else [])
        if not nics:
            module.fail_json(msg="network_interfaces: cannot tell which NIC carries the root session (this host is "
                                 "not booted from iSCSI, or root is not /); give network_interfaces")
        network["interfaces"] = nics
        network["networkd"] = []
        network["ifupdown"] = []
        wants = ("multi-user.target", "network-online.target", "sysinit.target")
        networkd_used = (unit_enabled(root, "systemd-networkd.service", wants)
                         or any(os.path.isdir(under(root, d)) and glob.glob(under(root, d + "/*.network"))
                                for d in P.NETWORK_DIRS))
        if networkd_used:
            for nic in nics:
                plan = P.networkd_plan(root, nic_facts(root, nic), read_text)
                writes.update(plan["writes"])
                network["networkd"].append({"nic": nic, "files": plan["files"], "effective": plan["effective"],
                                            "writes": sorted(plan["writes"]), "reason": plan["reason"]})
        for rel in P.ifupdown_files(root, lambda path: read_text(path) if os.path.isfile(path) else None):
            text = read(module, under(root, rel))
            new = text
            for nic in nics:
                new, changes = P.ifupdown_plan(new, nic)
                for lineno, family, method in changes:
                    network["ifupdown"].append({"file": rel, "line": lineno, "nic": nic, "family": family,
                                                "method_before": method})
            if new != text:
                writes[rel] = new
        if os.path.isdir(under(root, "etc/NetworkManager")) and os.path.exists(under(root, "usr/sbin/NetworkManager")):
            module.warn("NetworkManager is installed; network_keep does not configure it: make %s unmanaged there"
                        % ", ".join(nics))

    iscsid_enabled = (unit_enabled(root, "iscsid.socket", ("sockets.target",))
                      or unit_enabled(root, "iscsid.service", ("sysinit.target", "multi-user.target"))) and \
        unit_enabled(root, "open-iscsi.service", ("sysinit.target", "multi-user.target"))
    if not include_after and not optout_changed and (root_on_iscsi or new_conf is not None):
        module.warn("NO_ISCSI_IN_INITRAMFS=yes is set although the root file system is on iSCSI or %s exists: the "
                    "next initramfs rebuild makes the machine unbootable" % P.INITRAMFS_FILE)
    if (configured_after or root_on_iscsi) and not iscsid_enabled and os.path.isdir(under(root, "etc/systemd/system")):
        module.warn("iscsid.socket/iscsid.service or open-iscsi.service is not enabled: nothing takes over the "
                    "session the initramfs makes, and a dropped connection is never re-established (systemctl "
                    "enable iscsid.socket open-iscsi.service)")

    # ---- write
    changed_files = []
    backups = {}
    current_writes = {}
    for rel, text in sorted(writes.items()):
        old = read(module, under(root, rel))
        if old != text:
            current_writes[rel] = (old, text)
    if conf_changed:
        changed_files.append(P.INITRAMFS_FILE)
    if optout_changed:
        changed_files.append(P.OPT_OUT_FILE)
    changed_files.extend(sorted(current_writes))
    changed = bool(changed_files)

    if changed and not module.check_mode:
        if conf_changed:
            if new_conf is None:
                if p["backup"]:
                    backups[P.INITRAMFS_FILE] = module.backup_local(conf_path)
                os.unlink(conf_path)
            else:
                secret = P.holds_secret(new_conf)
                if not os.path.isdir(os.path.dirname(conf_path)):
                    module.fail_json(msg="cannot write %s: directory missing (is open-iscsi installed?)" % conf_path)
                b = write_atomic(module, conf_path, new_conf, mode=SECRET_MODE if secret else 0o644,
                                 force_mode=secret, backup=p["backup"])
                if b:
                    backups[P.INITRAMFS_FILE] = b
        if optout_changed:
            if new_optout is None:
                if p["backup"]:
                    backups[P.OPT_OUT_FILE] = module.backup_local(optout_path)
                os.unlink(optout_path)
            else:
                os.makedirs(os.path.dirname(optout_path), exist_ok=True)
                b = write_atomic(module, optout_path, new_optout, backup=p["backup"])
                if b:
                    backups[P.OPT_OUT_FILE] = b
        for rel, (old, text) in sorted(current_writes.items()):
            full = under(root, rel)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            b = write_atomic(module, full, text, backup=p["backup"])
            if b:
                backups[rel] = b

    # ---- does the initramfs hold what it must?
    name_text = read(module, under(root, "etc/iscsi/initiatorname.iscsi"))
    host_name = InitiatorNameFile.parse(name_text).name if name_text else None
    unmk = module.get_bin_path("unmkinitramfs")
    images = kernel_images(root)
    reasons = []
    stale_versions = []
    inspected = bool(unmk and images)
    if inspected:
        for version, image in images:
            info = inspect_image(module, unmk, image)
            if info is None:
                inspected = False
                break
            r = P.rebuild_reasons(include_after, new_conf, host_name, info)
            if include_after and configured_after and not info["scsi_disk"]:
                module.warn("%s has no SCSI disk driver (sd_mod): the iSCSI LUN will not show up as a disk at boot; "
                            "add sd_mod to /etc/initramfs-tools/modules (MODULES=dep or list leaves it out) and "
                            "rebuild" % image)
            if r:
                reasons.extend(r)
                stale_versions.append(version)
    if not inspected:
        reasons = ["%s changed (no initramfs image could be inspected)" % f for f in changed_files
                   if f in (P.INITRAMFS_FILE, P.OPT_OUT_FILE)]
    rebuild_needed = bool(reasons)

    rebuilt = []
    if p["rebuild"] and rebuild_needed:
        conf = read_text(under(root, "etc/initramfs-tools/update-initramfs.conf")) or ""
        if ShFile.parse(conf).get("update_initramfs") == "no":
            module.fail_json(msg="rebuild: /etc/initramfs-tools/update-initramfs.conf sets update_initramfs=no, so "
                                 "update-initramfs -u would do nothing; set it to yes (or rebuild with "
                                 "mkinitramfs yourself)", changed=changed, changed_files=changed_files,
                             initramfs_rebuild_needed=True, rebuild_reasons=reasons)
        if not module.check_mode:
            tool = module.get_bin_path("update-initramfs", required=True)
            versions = stale_versions or [os.uname().release]
            for version in versions:
                rc, out, err = module.run_command([tool, "-u", "-k", version], environ_update=LANG_C)
                if rc != 0:
                    module.fail_json(msg="update-initramfs -u -k %s failed (rc %d): %s"
                                         % (version, rc, (err or out).strip()),
                                     changed=True, changed_files=changed_files)
                rebuilt.append(version)
            if unmk:
                for version, image in kernel_images(root):
                    if version not in rebuilt:
                        continue
                    info = inspect_image(module, unmk, image)
                    left = P.rebuild_reasons(include_after, new_conf, host_name, info) if info else []
                    if info and include_after and configured_after and not info["scsi_disk"]:
                        module.warn("%s has no SCSI disk driver (sd_mod): add sd_mod to "
                                    "/etc/initramfs-tools/modules and rebuild" % image)
                    if left:
                        module.fail_json(msg="rebuild: %s is still stale after update-initramfs: %s"
                                             % (image, "; ".join(left)), changed=True, rebuilt=rebuilt)
        else:
            rebuilt = list(stale_versions)
        changed = True

    shfile = ShFile.parse(new_conf or "")
    settings = {}
    for key in P.MANAGED_KEYS:
        value = shfile.get(key)
        if value is not None:
            settings[key] = P.MASK if key in P.SECRET_KEYS else value
    result = dict(
        changed=changed,
        configured=configured_after,
        settings=settings,
        include_in_initramfs=include_after,
        root_on_iscsi=root_on_iscsi,
        changed_files=changed_files,
        initramfs_rebuild_needed=rebuild_needed,
        rebuild_reasons=reasons,
        rebuilt=rebuilt,
        network=network,
        iscsid_enabled=bool(iscsid_enabled),
    )
    if backups:
        result["backup_files"] = backups
    if module._diff:
        diffs = []
        if conf_changed:
            diffs.append(file_diff(conf_path, old_conf, new_conf, mask=P.mask_secrets))
        if optout_changed:
            diffs.append(file_diff(optout_path, old_optout, new_optout))
        for rel, (old, text) in sorted(current_writes.items()):
            diffs.append(file_diff(under(root, rel), old, text))
        result["diff"] = diffs
    module.exit_json(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
