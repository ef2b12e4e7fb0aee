# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lab extensions for boot tests: reboots of a lab VM and diskless root-on-iSCSI boots.

Used by tests/lab/test_boot_*.py (and by hand, ``python3 lab/rootiscsi.py ...``).  Standard library only; it reuses
lab/labctl's own helpers (state dir, QMP, QEMU command line, pid records) and changes nothing in labctl's behaviour.

* :func:`reboot` -- a reboot of a guest (``labctl.REBOOT_COMMAND``: ``systemctl reboot`` without the D-Bus noise; also
  ``labctl reboot HOST``) (QEMU resets and boots the same kernel, initrd and disk), wait
  for the new boot (new ``boot_id``) to answer SSH; returns seconds and the console lines of that reboot.
* :func:`add_root_lun` / :func:`remove_root_lun` -- a copy-on-write copy of the lab's guest root file system
  (a qcow2 overlay on the cached image, in the lab state directory) hot-plugged into the TARGET VM over QMP and
  exported by its tgtd as LUN 1 of ``iqn.2025-01.lab.openiscsi:tgt-root``: a bootable Debian root on an iSCSI LUN.
* :func:`boot_diskless` -- stop an initiator VM (its disk overlay is kept), start it again with NO disk, the given
  kernel and initrd and ``root=... ip=...``: the initramfs logs in to the LUN and boots from it.  Same SSH port, same
  lab NIC (MAC, address, link to the target), same pid record, so ``labctl down`` still stops it.
* :func:`rescue` -- a guest stuck in emergency mode is started again from its own disk with ``fstab=no`` (SSH comes
  back, /etc/fstab can be fixed); :func:`restore_vm` then boots it normally.
* :func:`restore_vm` -- stop the diskless VM and start the initiator from its own disk again with the command line
  saved by :func:`vm_cmdline` (exactly as labctl started it, minus a warm-snapshot restore).
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import os
import shlex
import signal
import subprocess
import time

LAB_DIR = os.path.dirname(os.path.realpath(__file__))
ROOT_IQN = "iqn.2025-01.lab.openiscsi:tgt-root"
ROOT_TID = 20
ROOT_SERIAL = "labrootlun"
ROOT_NODE = "labrootlun"


def _load_labctl():
    loader = importlib.machinery.SourceFileLoader("openiscsi_labctl_for_rootiscsi", os.path.join(LAB_DIR, "labctl"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


labctl = _load_labctl()


class BootError(Exception):
    pass


class EmergencyMode(BootError):
    """The guest's boot stopped in systemd's emergency mode (root locked: no shell, no SSH)."""


def _ssh(ctl, host, cmd, timeout=120, check=True, port=None, input=None):
    return ctl.ssh(host, cmd, timeout=timeout, check=check, port=port, input=input)


def boot_id(ctl, host, timeout=20):
    """The guest's boot id, or None when it does not answer."""
    try:
        res = _ssh(ctl, host, "cat /proc/sys/kernel/random/boot_id", timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None
    return res.stdout.strip() if res.returncode == 0 and res.stdout.strip() else None


def _console_size(ctl, host):
    try:
        return os.path.getsize(os.path.join(ctl.dir, host + ".console"))
    except OSError:
        return 0


def console_since(ctl, host, offset):
    try:
        with open(os.path.join(ctl.dir, host + ".console"), "rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _drop_control_master(ctl, host):
    """Close our ssh control master for *host* (a rebooted guest leaves it dangling)."""
    port = ctl.host_port(host)
    subprocess.run(ctl.ssh_cmd(port)[:-1] + ["-O", "exit", "root@127.0.0.1"], capture_output=True, timeout=20,
                   check=False)


# What systemd prints on the console when a boot ends in emergency mode: SSH will never answer, stop waiting.
EMERGENCY_MARKS = ("You are in emergency mode", "Cannot open access to console, the root account is locked")


def wait_boot(ctl, host, old_id, timeout, console_offset=None):
    """Wait until *host* answers SSH with a boot id other than *old_id*; seconds waited.

    With *console_offset*, a boot that ends in emergency mode (systemd says so on the console written since that
    offset) raises :class:`EmergencyMode` at once instead of waiting out *timeout*."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        new = boot_id(ctl, host)
        if new and new != old_id:
            return time.monotonic() - t0
        if new is None:
            _drop_control_master(ctl, host)
        if console_offset is not None:
            text = console_since(ctl, host, console_offset)
            if any(mark in text for mark in EMERGENCY_MARKS):
                raise EmergencyMode("%s: the boot ended in emergency mode after %.0f s (no SSH)"
                                    % (host, time.monotonic() - t0))
        time.sleep(2)
    raise BootError("%s: no SSH from a new boot within %d s" % (host, timeout))


def reboot(ctl, host, timeout=400):
    """Reboot *host* from inside; returns ``{'seconds', 'console'}`` (console text written during the reboot)."""
    old = boot_id(ctl, host)
    if not old:
        raise BootError("%s does not answer before the reboot" % host)
    offset = _console_size(ctl, host)
    t0 = time.monotonic()
    _ssh(ctl, host, labctl.REBOOT_COMMAND, check=False, timeout=30)
    _drop_control_master(ctl, host)
    wait_boot(ctl, host, old, timeout, console_offset=offset)
    return {"seconds": round(time.monotonic() - t0, 1), "console": console_since(ctl, host, offset)}


def qmp(ctl, host, execute, arguments=None):
    return labctl.qmp(os.path.join(ctl.dir, host + ".qmp"), execute, arguments)


# ------------------------------------------------------------------------------------------- the root LUN
def root_lun_overlay(ctl):
    return os.path.join(ctl.dir, "rootlun.qcow2")


def add_root_lun(ctl):
    """Export a copy of the guest image's root file system as LUN 1 of ROOT_IQN; returns the target's by-id path."""
    data = ctl.data()
    image = data["image"]
    overlay = root_lun_overlay(ctl)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(overlay)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                    os.path.join(image, "rootfs.img"), overlay], check=True)
    blockdev = {"driver": "qcow2", "node-name": ROOT_NODE, "file": {"driver": "file", "filename": overlay}}
    qmp(ctl, "target", "blockdev-add", blockdev)
    device = {"driver": "virtio-blk-pci", "drive": ROOT_NODE, "id": ROOT_NODE + "-dev", "serial": ROOT_SERIAL}
    qmp(ctl, "target", "device_add", device)
    dev = "/dev/disk/by-id/virtio-" + ROOT_SERIAL
    cmd = ("for i in $(seq 60); do [ -e {dev} ] && break; sleep 0.5; done; [ -e {dev} ] || exit 3; "
           "T='tgtadm --lld iscsi'; "
           "$T --mode target --op new --tid {tid} --targetname {iqn} && "
           "$T --mode logicalunit --op new --tid {tid} --lun 1 --backing-store $(readlink -f {dev}) && "
           "$T --mode target --op bind --tid {tid} --initiator-address ALL").format(
        dev=dev, tid=ROOT_TID, iqn=shlex.quote(ROOT_IQN))
    _ssh(ctl, "target", cmd, timeout=120)
    return dev


def set_root_chap(ctl, incoming=None, outgoing=None):
    """Bind (or, with None, unbind) lab accounts to ROOT_IQN: ``incoming``/``outgoing`` are account dicts."""
    data = ctl.data()
    cmds = ["T='tgtadm --lld iscsi'"]
    for acc, flag in ((incoming, ""), (outgoing, " --outgoing")):
        if acc:
            user = shlex.quote(acc["username"])
            cmds.append("$T --mode account --op bind --tid %d --user %s%s" % (ROOT_TID, user, flag))
    if not incoming and not outgoing:
        for t in data["targets"].values():
            for acc, flag in ((t["auth"]["incoming"], ""), (t["auth"]["outgoing"], " --outgoing")):
                if acc:
                    cmds.append("$T --mode account --op unbind --tid %d --user %s%s 2>/dev/null || true"
                                % (ROOT_TID, shlex.quote(acc["username"]), flag))
    _ssh(ctl, "target", "; ".join(cmds), timeout=60)


def remove_root_lun(ctl):
    """Delete the root target (forcing its sessions off), unplug the disk, delete the overlay.  Never raises."""
    with contextlib.suppress(Exception):
        _ssh(ctl, "target", "tgtadm --lld iscsi --mode target --op delete --force --tid %d" % ROOT_TID,
             check=False, timeout=60)
    with contextlib.suppress(Exception):
        qmp(ctl, "target", "device_del", {"id": ROOT_NODE + "-dev"})
        time.sleep(3)
    with contextlib.suppress(Exception):
        qmp(ctl, "target", "blockdev-del", {"node-name": ROOT_NODE})
    with contextlib.suppress(FileNotFoundError):
        os.unlink(root_lun_overlay(ctl))


# ------------------------------------------------------------------------------------------- VMs
def vm_cmdline(ctl, name):
    """The exact QEMU command line the running VM *name* was started with (from /proc), as a list.

    Saved before a VM is replaced, it lets :func:`restore_vm` start the VM again exactly as labctl did, whatever
    labctl's version (its command-building code is not used here)."""
    rec = ctl.pids().get(name)
    if not rec or not labctl.proc_is(rec["pid"], rec.get("start")):
        raise BootError("%s is not running" % name)
    with open("/proc/%d/cmdline" % rec["pid"], "rb") as fh:
        cmd = [a.decode() for a in fh.read().split(b"\0") if a]
    # The disk the VM writes to NOW: labctl may have switched it to a new top overlay while it ran (a live
    # blockdev-snapshot for its warm snapshot), which the command line does not show.
    active = {}
    for dev in qmp(ctl, name, "query-block"):
        inserted = dev.get("inserted") or {}
        if dev.get("device") and inserted.get("file"):
            active[dev["device"]] = inserted["file"]
    for i, arg in enumerate(cmd[:-1]):
        if arg != "-drive":
            continue
        opts = cmd[i + 1].split(",")
        ident = [o[3:] for o in opts if o.startswith("id=")]
        current = active.get(ident[0] if ident else "") or (list(active.values())[0] if len(active) == 1 else None)
        if current:
            cmd[i + 1] = ",".join("file=" + current if o.startswith("file=") else o for o in opts)
    return cmd


def _without(cmd, options):
    """*cmd* without the given options and their values."""
    out = []
    skip = False
    for arg in cmd:
        if skip:
            skip = False
            continue
        if arg in options:
            skip = True
            continue
        out.append(arg)
    return out


def _stop(ctl, name, timeout=180):
    """Power the VM off from inside (clean shutdown), then make sure its QEMU is gone."""
    rec = ctl.pids().get(name)
    answered = False
    with contextlib.suppress(Exception):
        answered = boot_id(ctl, name) is not None
        if answered:
            _ssh(ctl, name, "systemctl poweroff", check=False, timeout=30)
    _drop_control_master(ctl, name)
    if not answered:
        # A guest that does not answer (hung boot, initramfs shell) cannot shut down cleanly: end its QEMU.
        with contextlib.suppress(Exception):
            qmp(ctl, name, "quit")
    deadline = time.monotonic() + timeout
    while rec and labctl.proc_is(rec["pid"], rec.get("start")) and time.monotonic() < deadline:
        time.sleep(1)
    if rec and labctl.proc_is(rec["pid"], rec.get("start")):
        with contextlib.suppress(ProcessLookupError):
            os.kill(rec["pid"], signal.SIGKILL)
        time.sleep(1)


def _launch(ctl, name, cmd):
    """Start *cmd* as VM *name*: pid recorded (labctl down stops it); the previous console log is kept aside."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(ctl.dir, name + ".qmp"))
    console = os.path.join(ctl.dir, name + ".console")
    if os.path.exists(console):
        n = 1
        while os.path.exists("%s.%d" % (console, n)):
            n += 1
        os.rename(console, "%s.%d" % (console, n))
    logf = open(os.path.join(ctl.dir, "%s.qemu.log" % name), "a")
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                         start_new_session=True, close_fds=True)
    ctl.record_pid(name, p.pid)
    data = ctl.data()
    data["hosts"][name]["pid"] = p.pid
    labctl.write_json(ctl.json_file, data)
    return p.pid


def diskless_cmd(saved, kernel, initrd, extra_append):
    """The saved QEMU command of a VM without its disk (and without a warm-snapshot restore), with another
    kernel/initrd and extra kernel options (``root=`` replaced)."""
    cmd = _without(saved, ("-drive", "-incoming"))
    out = []
    i = 0
    while i < len(cmd):
        arg = cmd[i]
        if arg in ("-kernel", "-initrd", "-append") and i + 1 < len(cmd):
            if arg == "-kernel":
                value = kernel
            elif arg == "-initrd":
                value = initrd
            else:
                words = [w for w in cmd[i + 1].split() if not w.startswith("root=")]
                value = " ".join(words + list(extra_append))
            out += [arg, value]
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def boot_diskless(ctl, name, saved, kernel, initrd, extra_append, timeout=400):
    """Restart *name* diskless (see module docstring) from its *saved* command; returns ``{'seconds', 'console'}``."""
    _stop(ctl, name)
    t0 = time.monotonic()
    _launch(ctl, name, diskless_cmd(saved, kernel, initrd, extra_append))
    try:
        wait_boot(ctl, name, None, timeout)
    except BootError as exc:
        raise BootError("%s; console: %s" % (exc, console_since(ctl, name, 0)[-3000:]))
    return {"seconds": round(time.monotonic() - t0, 1), "console": console_since(ctl, name, 0)}


def with_append(cmd, extra_append):
    """*cmd* (a saved QEMU command) with extra kernel options, and without a warm-snapshot restore."""
    out = _without(cmd, ("-incoming",))
    i = out.index("-append")
    out[i + 1] = " ".join(out[i + 1].split() + list(extra_append))
    return out


def rescue(ctl, name, extra_append=("fstab=no",), timeout=400):
    """Bring back a guest that does not answer (emergency mode...): power it off, start it from its own disk with
    *extra_append* (default ``fstab=no``: systemd ignores /etc/fstab, so a bad line cannot stop the boot) and wait for
    SSH.  Returns the saved normal command line: fix the guest, then :func:`restore_vm` it (a reboot from inside
    would keep the extra options, QEMU reuses its -append)."""
    saved = vm_cmdline(ctl, name)
    _stop(ctl, name)
    _launch(ctl, name, with_append(saved, extra_append))
    wait_boot(ctl, name, None, timeout, console_offset=0)
    return saved


def restore_vm(ctl, name, saved, timeout=400):
    """Start *name* again from its own disk with its *saved* command (cold boot; the overlay is NOT recreated)."""
    _stop(ctl, name)
    _launch(ctl, name, _without(saved, ("-incoming",)))
    wait_boot(ctl, name, None, timeout, console_offset=0)


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description="boot-test helpers for the openiscsi.initiator lab")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("reboot")
    r.add_argument("host")
    sub.add_parser("add-root-lun")
    sub.add_parser("remove-root-lun")
    args = ap.parse_args(argv)
    ctl = labctl.Lab()
    if args.cmd == "reboot":
        print(reboot(ctl, args.host)["seconds"])
    elif args.cmd == "add-root-lun":
        print(add_root_lun(ctl))
    elif args.cmd == "remove-root-lun":
        remove_root_lun(ctl)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
