# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stand-in for iscsiadm used by the discovery/session unit tests: it records every argv and emulates the few
operations those modules use, on a fixture tree (node DB + sysfs), following open-iscsi's semantics:

* ``-m discoverydb -t st -p P -o new``: create the discovery record (st_config) from defaults;
* ``-m discoverydb -t st -p P``: show the record, passwords masked, empty values ``<empty>``;
* ``-m discoverydb -t st -p P [-I i]... --discover -o new|nonpersistent -P 1``: check discovery CHAP against the
  stored record, print the tree; ``new`` adds missing node records (and a missing discovery record) and never touches
  existing ones, ``nonpersistent`` writes nothing;
* ``-m node -T T -p P -I I --login``: 21 without a record, a scripted exit code, or a new sysfs session with LUNs;
* ``-m session -r SID --logout`` / ``--rescan``.

Scenario: JSON file named by $FAKE_ISCSIADM_SCENARIO (root, db, log, portals, ifaces, login, luns, rescan_luns).
"""

from __future__ import annotations

import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "fixtures"))

from fixturetree import add_session  # noqa: E402  pylint: disable=wrong-import-position

AUTH = "discovery.sendtargets.auth."
SHOW_KEYS = ["discovery.startup", "discovery.type", "discovery.sendtargets.address", "discovery.sendtargets.port",
             AUTH + "authmethod", AUTH + "username", AUTH + "password", AUTH + "username_in", AUTH + "password_in",
             "discovery.sendtargets.timeo.login_timeout"]


def load():
    with open(os.environ["FAKE_ISCSIADM_SCENARIO"]) as handle:
        return json.load(handle)


def parse_args(argv):
    opts = {"I": [], "flags": set()}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--discover", "--login", "--logout", "--rescan", "-S"):
            opts["flags"].add(arg)
        elif arg.startswith("-") and len(arg) == 2:
            key = arg[1]
            value = argv[i + 1]
            i += 1
            if key == "I":
                opts["I"].append(value)
            else:
                opts[key] = value
        i += 1
    return opts


def split_portal(text):
    text = text.split(",")[0]
    if text.startswith("["):
        addr, _sep, port = text[1:].partition("]:")
        return addr, int(port or 3260)
    addr, _sep, port = text.rpartition(":")
    if not _sep:
        return text, 3260
    return addr, int(port)


def portal_text(addr, port):
    return "[%s]:%d" % (addr, port) if ":" in addr else "%s:%d" % (addr, port)


def kv_read(path):
    values = {}
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, _sep, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def under(sc, path):
    return os.path.join(sc["root"], path.lstrip("/"))


def st_path(sc, addr, port):
    return under(sc, os.path.join(sc["db"], "send_targets", "%s,%d" % (addr, port), "st_config"))


def write_st(sc, addr, port):
    path = st_path(sc, addr, port)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    lines = ["# BEGIN RECORD 2.1.8", "discovery.startup = manual", "discovery.type = sendtargets",
             "discovery.sendtargets.address = %s" % addr, "discovery.sendtargets.port = %d" % port]
    for key, value in sorted(sc.get("st_defaults", {AUTH + "authmethod": "None"}).items()):
        lines.append("%s = %s" % (key, value))
    lines += ["discovery.sendtargets.timeo.login_timeout = 15", "# END RECORD"]
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)


def record_path(sc, target, addr, port, tpgt, iface):
    return under(sc, os.path.join(sc["db"], "nodes", target, "%s,%d,%d" % (addr, port, tpgt), iface))


def write_record(sc, target, addr, port, tpgt, iface):
    path = record_path(sc, target, addr, port, tpgt, iface)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write("# BEGIN RECORD 2.1.8\nnode.name = %s\nnode.tpgt = %d\nnode.startup = manual\n"
                     "iface.iscsi_ifacename = %s\nnode.discovery_address = x\nnode.conn[0].address = %s\n"
                     "node.conn[0].port = %d\n# END RECORD\n" % (target, tpgt, iface, addr, port))


def find_records(sc, target, addr, port, iface):
    base = under(sc, os.path.join(sc["db"], "nodes", target))
    found = []
    if not os.path.isdir(base):
        return found
    for portal in sorted(os.listdir(base)):
        a, p, _t = portal.rsplit(",", 2)
        if a != addr or int(p) != port:
            continue
        for name in sorted(os.listdir(os.path.join(base, portal))):
            if iface in (None, name):
                found.append(os.path.join(base, portal, name))
    return found


def discoverydb(sc, opts):
    addr, port = split_portal(opts["p"])
    key = portal_text(addr, port)
    path = st_path(sc, addr, port)
    op = opts.get("o")
    if "--discover" not in opts["flags"]:
        if op == "new":
            write_st(sc, addr, port)
            print("New discovery record for [%s,%d] added." % (addr, port))
            return 0
        if op is None:
            if not os.path.exists(path):
                sys.stderr.write("iscsiadm: Discovery record [%s,%d] not found.\n" % (addr, port))
                return 6
            values = kv_read(path)
            print("# BEGIN RECORD 2.1.8")
            for k in SHOW_KEYS:
                v = values.get(k, "")
                if k.endswith("password") or k.endswith("password_in"):
                    v = "********" if v else v
                print("%s = %s" % (k, v if v else "<empty>"))
            print("# END RECORD")
            return 0
        return 7
    portal = sc["portals"].get(key)
    if portal is None:
        sys.stderr.write("iscsiadm: cannot make connection to %s: Connection refused\n" % addr)
        return 4
    if os.path.exists(path):
        values = kv_read(path)
    else:
        values = dict(sc.get("st_defaults", {AUTH + "authmethod": "None"}))
        if op != "nonpersistent":
            write_st(sc, addr, port)
    chap = portal.get("chap")
    if chap:
        if (values.get(AUTH + "authmethod") != "CHAP" or values.get(AUTH + "username") != chap["username"]
                or values.get(AUTH + "password") != chap["password"]):
            sys.stderr.write("iscsiadm: Login failed to authenticate with target\n"
                             "iscsiadm: discovery login to %s rejected: initiator failed authorization\n" % addr)
            return 24
    ifaces = opts["I"] or sc.get("ifaces", ["default"])
    if not portal["targets"]:
        sys.stderr.write("iscsiadm: No portals found\n")
        return 21
    for target, ptext, tpgt in portal["targets"]:
        a, p = split_portal(ptext)
        print("Target: %s" % target)
        print("\tPortal: %s,%d" % (portal_text(a, p), tpgt))
        for iface in ifaces:
            print("\t\tIface Name: %s" % iface)
            if op == "new" and not os.path.exists(record_path(sc, target, a, p, tpgt, iface)):
                write_record(sc, target, a, p, tpgt, iface)
    return 0


def sysfs_sessions(sc):
    base = under(sc, "sys/class/iscsi_session")
    return sorted(int(n[len("session"):]) for n in os.listdir(base)) if os.path.isdir(base) else []


def node_new(sc, target, addr, port, tpgt, iface):
    """``-m node -o new``: a static record (discovery_type static) and its link in static/, as iscsiadm 2.1.8."""
    path = record_path(sc, target, addr, port, tpgt, iface)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write("# BEGIN RECORD 2.1.8\nnode.name = %s\nnode.tpgt = %d\nnode.startup = manual\n"
                     "iface.iscsi_ifacename = %s\nnode.discovery_port = 0\nnode.discovery_type = static\n"
                     "node.conn[0].address = %s\nnode.conn[0].port = %d\n# END RECORD\n"
                     % (target, tpgt, iface, addr, port))
    if tpgt != -1:
        static = under(sc, os.path.join(sc["db"], "static"))
        os.makedirs(static, exist_ok=True)
        os.symlink(os.path.dirname(os.path.join(sc["db"], "nodes", target, "%s,%d,%d" % (addr, port, tpgt), iface)),
                   os.path.join(static, "%s,%s,%d,%d,%s" % (target, addr, port, tpgt, iface)))
    print("New iSCSI node [tcp:[hw=,ip=,net_if=,iscsi_if=%s] %s,%d,%d %s] added" % (iface, addr, port, tpgt, target))
    return 0


def node(sc, opts):
    target = opts["T"]
    addr, port = split_portal(opts["p"])
    tpgt = int(opts["p"].rsplit(",", 1)[1]) if "," in opts["p"].rsplit("]", 1)[-1] else -1
    if opts.get("o") == "new":
        return node_new(sc, target, addr, port, tpgt, opts["I"][0] if opts["I"] else "default")
    if "--login" in opts["flags"]:
        recs = find_records(sc, target, addr, port, opts["I"][0] if opts["I"] else None)
        if not recs:
            sys.stderr.write("iscsiadm: No records found\n")
            return 21
        scripted = sc.get("login", {}).get(target)
        if scripted:
            sys.stderr.write(scripted.get("stderr", "") + "\n")
            return scripted["rc"]
        sid = max(sysfs_sessions(sc) + [0]) + 1
        luns = [tuple(x) for x in sc.get("luns", {}).get(target, [])]
        add_session(sc["root"], sid, target=target, conns=[{"cid": 0, "persistent_address": addr,
                                                            "persistent_port": str(port), "address": addr,
                                                            "port": str(port)}],
                    luns=luns, iface=opts["I"][0] if opts["I"] else "default")
        print("Login to [iface: default, target: %s, portal: %s,%d] successful." % (target, addr, port))
        return 0
    return 7


def session(sc, opts):
    sid = int(opts["r"])
    link = under(sc, "sys/class/iscsi_session/session%d" % sid)
    if not os.path.lexists(link):
        sys.stderr.write("iscsiadm: Could not get session info for sid %d\n" % sid)
        return 21
    real = os.path.realpath(link)
    sdev = os.path.dirname(os.path.dirname(real))
    if "--logout" in opts["flags"]:
        os.unlink(link)
        shutil.rmtree(sdev)
        print("Logout of [sid: %d] successful." % sid)
        return 0
    if "--rescan" in opts["flags"]:
        target = open(os.path.join(real, "targetname")).read().strip()
        host = int(os.path.basename(os.path.dirname(sdev))[4:])
        for lun, block, state in sc.get("rescan_luns", {}).get(target, []):
            ddir = os.path.join(sdev, "target%d:0:0" % host, "%d:0:0:%d" % (host, lun))
            if os.path.isdir(ddir):
                continue
            os.makedirs(os.path.join(ddir, "block", block))
            for name, value in (("state", state), ("type", "0"), ("vendor", "IET"), ("model", "VIRTUAL-DISK")):
                with open(os.path.join(ddir, name), "w") as handle:
                    handle.write(value + "\n")
            with open(os.path.join(ddir, "block", block, "dev"), "w") as handle:
                handle.write("8:%d\n" % (16 * lun))
            bp = under(sc, "dev/disk/by-path")
            os.makedirs(bp, exist_ok=True)
            os.symlink("../../" + block, os.path.join(bp, "ip-x-iscsi-%s-lun-%d" % (target, lun)))
        print("Rescanning session [sid: %d]" % sid)
        return 0
    return 7


def main(argv):
    sc = load()
    with open(sc["log"], "a") as handle:
        handle.write(json.dumps(argv) + "\n")
    opts = parse_args(argv)
    mode = opts.get("m")
    if mode == "discoverydb":
        return discoverydb(sc, opts)
    if mode == "node":
        return node(sc, opts)
    if mode == "session":
        return session(sc, opts)
    sys.stderr.write("fake iscsiadm: unsupported %r\n" % (argv,))
    return 7


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
