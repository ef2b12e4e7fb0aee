# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""Planning for the ``initramfs`` module: boot-time iSCSI settings, the initramfs opt-out, and keeping the network
stack off the NIC that carries the root file system's session.

* :func:`desired_initramfs` validates the user's settings and returns the ``KEY -> value`` set for
  /etc/iscsi/iscsi.initramfs (every value a plain word: the initramfs scripts test them unquoted);
* :func:`render_initramfs` applies it to the current file with the sh-file parser (unknown lines kept);
* :func:`opt_out_text` does the same for /etc/initramfs-tools/conf.d/open-iscsi;
* :func:`rebuild_reasons` compares what the next initramfs must contain with what an existing image holds;
* the network part: :func:`route_interface` (kernel routing table under /proc), :func:`networkd_plan` (which
  systemd-networkd ``.network`` file manages a NIC, and the drop-in or file that makes it keep the configuration the
  initramfs made), :func:`ifupdown_plan` (``iface NIC inet METHOD`` -> ``manual``).

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import re

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._names import normalize_name
from ansible_collections.openiscsi.initiator.plugins.module_utils._shfile import SAFE_CHARS, ShFile
from ansible_collections.openiscsi.initiator.plugins.module_utils._textrules import split_lf
from ansible_collections.openiscsi.initiator.plugins.module_utils._rootfs import host_path

INITRAMFS_FILE = "/etc/iscsi/iscsi.initramfs"
OPT_OUT_FILE = "/etc/initramfs-tools/conf.d/open-iscsi"
OPT_OUT_KEY = "NO_ISCSI_IN_INITRAMFS"
SECRET_KEYS = ("ISCSI_PASSWORD", "ISCSI_IN_PASSWORD")
MANAGED_KEYS = ("ISCSI_AUTO", "ISCSI_INITIATOR", "ISCSI_TARGET_NAME", "ISCSI_TARGET_IP", "ISCSI_TARGET_PORT",
                "ISCSI_TARGET_GROUP", "ISCSI_USERNAME", "ISCSI_PASSWORD", "ISCSI_IN_USERNAME", "ISCSI_IN_PASSWORD")
MASK = "********"
HEADER = ("# Managed by openiscsi.initiator.initramfs: iSCSI login of the initramfs (root on iSCSI).\n"
          "# Copied into the initramfs by update-initramfs; sourced by its local-top/iscsi script.\n")
MAX_VALUE = 255


# --------------------------------------------------------------------------------------------------- settings
def _plain(field, value):
    """A value the initramfs scripts can test unquoted: no blanks, no shell metacharacters, not empty."""
    if not isinstance(value, str) or not value:
        raise InputError(field, "must be a non-empty string")
    bad = sorted(set(ch for ch in value if ch not in SAFE_CHARS))
    if bad:
        raise InputError(field, "contains %s; the initramfs scripts use these values unquoted, so only letters, "
                                "digits and . , : / @ %% + = _ - are allowed"
                         % ", ".join(repr(c) for c in bad))
    if len(value.encode("utf-8")) > MAX_VALUE:
        raise InputError(field, "is longer than %d bytes" % MAX_VALUE)
    return value


def _address(field, value):
    value = _plain(field, value.strip() if isinstance(value, str) else value)
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise InputError(field, "%r is not an IPv4 or IPv6 address (iscsistart takes addresses, not host names; "
                                "IPv6 without brackets)" % value)
    return value


def desired_initramfs(auto=None, initiator=None, target_name=None, target_ips=None, port=None, portal_group=None,
                      username=None, password=None, username_in=None, password_in=None):
    """``{KEY: value}`` for iscsi.initramfs, or ``None`` when no login setting was given (file left alone)."""
    explicit = dict(initiator=initiator, target_name=target_name, target_ip=target_ips, port=port,
                    portal_group=portal_group, username=username, password=password, username_in=username_in,
                    password_in=password_in)
    given = [k for k, v in explicit.items() if v not in (None, [])]
    if auto:
        login_only = [k for k in given if k not in ("initiator",)]
        if login_only:
            raise InputError(login_only[0], "cannot be combined with auto: true (the firmware (iBFT) provides the "
                                            "target); drop one of them")
        out = {"ISCSI_AUTO": "true"}
        if initiator is not None:
            out["ISCSI_INITIATOR"] = _plain("initiator", normalize_name(initiator, "initiator"))
        return out
    if not given:
        return None
    if not target_name:
        raise InputError("target_name", "is required for an explicit initramfs login (or set auto: true)")
    if not target_ips:
        raise InputError("target_ip", "give at least one target address for an explicit initramfs login")
    out = {"ISCSI_TARGET_NAME": _plain("target_name", normalize_name(target_name, "target_name"))}
    ips = []
    for ip in target_ips:
        ip = _address("target_ip", ip)
        if ip not in ips:
            ips.append(ip)
    # Several addresses: one login per address (local-top/iscsi loops over the unquoted list).
    out["ISCSI_TARGET_IP"] = " ".join(ips)
    if initiator is not None:
        out["ISCSI_INITIATOR"] = _plain("initiator", normalize_name(initiator, "initiator"))
    if port is not None:
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise InputError("port", "must be a TCP port number 1-65535, got %r" % (port,))
        out["ISCSI_TARGET_PORT"] = str(port)
    if portal_group is not None:
        if not isinstance(portal_group, int) or isinstance(portal_group, bool) or not 0 <= portal_group <= 65535:
            raise InputError("portal_group", "must be a target portal group tag 0-65535, got %r" % (portal_group,))
        out["ISCSI_TARGET_GROUP"] = str(portal_group)
    if (username is None) != (password is None):
        raise InputError("password" if password is None else "username",
                         "CHAP needs both username and password")
    if (username_in is None) != (password_in is None):
        raise InputError("password_in" if password_in is None else "username_in",
                         "mutual CHAP needs both username_in and password_in")
    if username_in is not None and username is None:
        raise InputError("username_in", "mutual CHAP (the target's credentials) needs CHAP (username, password) "
                                        "too")
    if username is not None:
        out["ISCSI_USERNAME"] = _plain("username", username)
        out["ISCSI_PASSWORD"] = _plain("password", password)
    if username_in is not None:
        out["ISCSI_IN_USERNAME"] = _plain("username_in", username_in)
        out["ISCSI_IN_PASSWORD"] = _plain("password_in", password_in)
    return out


def render_initramfs(text, wanted):
    """The new iscsi.initramfs text: every managed key set to *wanted* or removed; other lines kept."""
    shfile = ShFile.parse(text or "")
    if not shfile.lines:
        shfile = ShFile.parse(HEADER)
    for key in MANAGED_KEYS:
        if key in wanted:
            # An opaque assignment of the key would override or confuse: drop it, then set.
            shfile.lines = [line for line in shfile.lines if line.opaque_key != key]
            # Only one assignment per key: the scripts source the file, the last one wins anyway.
            plain = [line for line in shfile.lines if line.key == key]
            for line in plain[:-1]:
                shfile.lines.remove(line)
            shfile.set(key, wanted[key], field=key)
        else:
            shfile.remove(key)
    return shfile.render()


def mask_secrets(text):
    """*text* with the values of the secret keys replaced by ``********`` (for diffs)."""
    if not text:
        return text
    out = []
    # the shell's logical lines: a quoted secret spanning two lines is masked whole
    for line in ShFile.parse(text).lines:
        m = re.match(r"^([ \t]*(?:export[ \t]+)?(%s)=)" % "|".join(SECRET_KEYS), line.raw)
        if m:
            out.append(m.group(1) + MASK + line.eol)
        else:
            out.append(line.text())
    return "".join(out)


def holds_secret(text):
    shfile = ShFile.parse(text or "")
    return any(shfile.get(k) or shfile.opaque_assignments([k]) for k in SECRET_KEYS)


def configured(text):
    """Whether an iscsi.initramfs text makes the initramfs log in (ISCSI_AUTO, or target name and address)."""
    if text is None:
        return False
    shfile = ShFile.parse(text)
    if shfile.get("ISCSI_AUTO"):
        return True
    if shfile.opaque_assignments(["ISCSI_AUTO", "ISCSI_TARGET_NAME", "ISCSI_TARGET_IP"]):
        return True
    return bool(shfile.get("ISCSI_TARGET_NAME") and shfile.get("ISCSI_TARGET_IP"))


def opt_out_active(text):
    """Whether the hook's configuration disables open-iscsi in the initramfs (``NO_ISCSI_IN_INITRAMFS=yes``)."""
    return ShFile.parse(text or "").get(OPT_OUT_KEY) == "yes"


def opt_out_text(text, include):
    """``(new text or None to delete the file, changed)`` for the conf.d file."""
    shfile = ShFile.parse(text or "")
    if include:
        if not shfile.has(OPT_OUT_KEY):
            return text, False
        shfile.remove(OPT_OUT_KEY)
        if _only_ours(text):
            return None, True
        return shfile.render(), True
    if text is None:
        shfile = ShFile.parse("# Managed by openiscsi.initiator.initramfs: keep open-iscsi out of the initramfs.\n")
    changed = shfile.set(OPT_OUT_KEY, "yes")
    return shfile.render(), changed or text is None


def _only_ours(text):
    for line in (text or "").splitlines():
        s = line.strip()
        if not s or s.startswith("# Managed by openiscsi.initiator") or s.startswith(OPT_OUT_KEY + "="):
            continue
        return False
    return True


# --------------------------------------------------------------------------------------------------- rebuild
def rebuild_reasons(include, initramfs_text, initiator_name, image):
    """Why the image *image* (``{'path', 'iscsi': bool, 'iscsi_initramfs': text or None,
    'initiator_name': str or None}`` as read from the image) does not match what the next build would contain.

    *include*: whether open-iscsi will be in it (no opt-out); *initramfs_text*: /etc/iscsi/iscsi.initramfs (None
    when absent); *initiator_name*: the host's InitiatorName.
    """
    reasons = []
    name = image.get("path")
    if include != image.get("iscsi"):
        reasons.append("%s %s open-iscsi, the configuration says it should %s" % (
            name, "holds" if image.get("iscsi") else "lacks", "be in it" if include else "not"))
        return reasons
    if not include:
        return reasons
    if (initramfs_text or None) != (image.get("iscsi_initramfs") or None):
        if image.get("iscsi_initramfs") is None:
            reasons.append("%s has no iscsi.initramfs, the host has one" % name)
        elif initramfs_text is None:
            reasons.append("%s holds an iscsi.initramfs the host no longer has" % name)
        else:
            reasons.append("%s holds an older iscsi.initramfs" % name)
    if initiator_name and image.get("initiator_name") != initiator_name:
        reasons.append("%s carries initiator name %s, the host's is %s" % (
            name, image.get("initiator_name") or "(none)", initiator_name))
    return reasons


# --------------------------------------------------------------------------------------------------- network
def _hex_ipv4(value):
    return ipaddress.IPv4Address(int(value, 16).to_bytes(4, "little"))


def route_interface(address, route_text=None, route6_text=None):
    """The interface the kernel's main routing table uses for *address* (longest prefix, then lowest metric)."""
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        return None
    best = None
    if addr.version == 4:
        for line in (route_text or "").splitlines()[1:]:
            f = line.split()
            if len(f) < 8:
                continue
            try:
                dest, mask = _hex_ipv4(f[1]), _hex_ipv4(f[7])
                flags, metric = int(f[3], 16), int(f[6])
            except ValueError:
                continue
            if not flags & 0x1:  # RTF_UP
                continue
            net = ipaddress.IPv4Network("%s/%s" % (dest, mask), strict=False)
            if addr in net:
                key = (net.prefixlen, -metric)
                if best is None or key > best[0]:
                    best = (key, f[0])
    else:
        for line in (route6_text or "").splitlines():
            f = line.split()
            if len(f) < 10:
                continue
            try:
                net = ipaddress.IPv6Network((int(f[0], 16), int(f[1], 16)))
                metric = int(f[5], 16)
            except ValueError:
                continue
            if f[9] == "lo" or addr not in net:
                continue
            key = (net.prefixlen, -metric)
            if best is None or key > best[0]:
                best = (key, f[9])
    return best[1] if best else None


NETWORK_DIRS = ("etc/systemd/network", "run/systemd/network", "usr/local/lib/systemd/network",
                "usr/lib/systemd/network", "lib/systemd/network")
DROPIN_NAME = "50-openiscsi-keep-configuration.conf"
OWN_FILE = "05-openiscsi-root-%s.network"
DROPIN_TEXT = ("# Managed by openiscsi.initiator.initramfs (network_keep): the root file system's iSCSI session runs\n"
               "# over this link; networkd must keep the configuration the initramfs made, also when it restarts.\n"
               "[Network]\nKeepConfiguration=yes\n")
OWN_TEXT = ("# Managed by openiscsi.initiator.initramfs (network_keep): the root file system's iSCSI session runs\n"
            "# over this link; networkd keeps the configuration the initramfs made and changes nothing on it.\n"
            "[Match]\nName=%s\n\n[Network]\nKeepConfiguration=yes\n")


def parse_ini(text):
    """``{section: {key: [values...]}}`` of a systemd unit-style file (later values appended)."""
    out = {}
    section = None
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            out.setdefault(section, {})
            continue
        if section is None or "=" not in line:
            continue
        key, value = line.split("=", 1)
        out[section].setdefault(key.strip(), []).append(value.strip())
    return out


def _words(values):
    words = []
    for value in values:
        if value == "":
            words = []  # an empty assignment resets the list
        else:
            words.extend(value.split())
    return words


def guess_type(name):
    """The link type networkd would see, guessed from a kernel name when sysfs cannot be read (images)."""
    if re.match(r"(eth|en|em|p\d)", name or ""):
        return "ether"
    if re.match(r"(wl|wlan|ath|ra)\d*", name or ""):
        return "wlan"
    return None


def match_result(match, nic):
    """``True`` (matches), ``False`` (does not) or ``None`` (depends on facts not known here) for a [Match]
    section and ``nic`` = ``{'name', 'mac', 'driver', 'type'}`` (unknown facts ``None``)."""
    undecided = False
    for key, values in match.items():
        words = _words(values)
        if not words:
            continue
        invert = words[0].startswith("!")
        if invert:
            words = [words[0][1:]] + words[1:]
        if key in ("Name", "OriginalName"):
            fact = nic.get("name")
            hit = None if fact is None else any(fnmatch.fnmatchcase(fact, w) for w in words)
        elif key in ("MACAddress", "PermanentMACAddress"):
            fact = nic.get("mac")
            hit = None if fact is None else fact.lower() in [w.lower() for w in words]
        elif key == "Driver":
            fact = nic.get("driver")
            hit = None if fact is None else any(fnmatch.fnmatchcase(fact, w) for w in words)
        elif key == "Type":
            fact = nic.get("type")
            hit = None if fact is None else any(fnmatch.fnmatchcase(fact, w) for w in words)
        elif key in ("WLANInterfaceType", "SSID", "BSSID"):
            hit = False if nic.get("type") not in (None, "wlan") else None
        else:
            hit = None  # Path=, Host=, Virtualization=, KernelCommandLine=, ...: not evaluated
        if hit is None:
            undecided = True
            continue
        if invert:
            hit = not hit
        if not hit:
            return False
    return None if undecided else True


def network_files(root, reader):
    """``[(basename, path inside root)]`` of the effective .network files, in networkd's order (by name; a name in
    an earlier directory masks the same name in later ones).  *reader(path) -> text or None*."""
    seen = {}
    for directory in NETWORK_DIRS:
        full = host_path(root, directory)
        try:
            names = os.listdir(full)
        except OSError:
            continue
        for name in names:
            if name.endswith(".network") and name not in seen:
                seen[name] = "/" + directory + "/" + name
    return [(name, seen[name]) for name in sorted(seen)]


def dropins(root, basename):
    """Paths (inside root) of the drop-ins of *basename*, in the order networkd applies them."""
    found = {}
    for directory in NETWORK_DIRS:
        d = host_path(root, "/%s/%s.d" % (directory.strip("/"), basename))
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for name in names:
            if name.endswith(".conf") and name not in found:
                found[name] = "/" + directory + "/" + basename + ".d/" + name
    return [found[n] for n in sorted(found)]


def keeps_configuration(texts):
    """Whether the file plus its drop-ins (texts, in order) end with a KeepConfiguration= that keeps addresses."""
    value = None
    for text in texts:
        values = parse_ini(text).get("Network", {}).get("KeepConfiguration")
        if values:
            value = values[-1].lower()
    return value in ("yes", "true", "1", "on", "static", "dhcp")


def networkd_plan(root, nic, reader):
    """What makes systemd-networkd keep *nic*'s configuration.

    networkd applies the first .network file (by name) whose [Match] selects the link.  The effective file is the
    first one that surely matches; it gets a drop-in with ``KeepConfiguration=yes`` (the user's configuration stays).
    When no file surely matches, our own ``05-openiscsi-root-<nic>.network`` (matching the name, only keeping the
    configuration) takes the link.  Files before that whose [Match] cannot be decided here (``Path=`` ...) get the
    drop-in too, so that whichever of them matches keeps the configuration.

    Returns ``{'nic', 'files': [{'path', 'match'}], 'effective': path or None, 'writes': {path: text}, 'reason'}``.
    """
    plan = {"nic": nic["name"], "files": [], "effective": None, "writes": {}, "reason": None}
    own_name = OWN_FILE % nic["name"]
    own = "/etc/systemd/network/" + own_name
    candidates = []
    for basename, path in network_files(root, reader):
        text = reader(host_path(root, path))
        result = match_result(parse_ini(text).get("Match", {}), nic)
        if result is False:
            continue
        candidates.append((basename, path, text, result))
    sure = [c for c in candidates if c[3]]
    if sure:
        effective_name = sure[0][0]
        plan["effective"] = sure[0][1]
        plan["reason"] = "%s manages %s" % (plan["effective"], nic["name"])
    else:
        effective_name = own_name
        plan["reason"] = "no .network file surely matches %s: %s takes it and keeps its configuration" % (
            nic["name"], own)
    for basename, path, text, result in candidates:
        if basename > effective_name:
            break
        plan["files"].append({"path": path, "match": "yes" if result else "maybe"})
        texts = [text] + [reader(host_path(root, d)) or "" for d in dropins(root, basename)]
        if keeps_configuration(texts):
            continue
        if path == own:
            plan["writes"][path] = OWN_TEXT % nic["name"]
        else:
            plan["writes"]["/etc/systemd/network/%s.d/%s" % (basename, DROPIN_NAME)] = DROPIN_TEXT
    if not sure:
        if not any(f["path"] == own for f in plan["files"]):
            plan["files"].append({"path": own, "match": "yes"})
            plan["writes"][own] = OWN_TEXT % nic["name"]
        plan["effective"] = own
    return plan


_IFACE_RE = re.compile(r"^([ \t]*iface[ \t]+)(\S+)([ \t]+)(inet6?|ipx|can)([ \t]+)(\S+)(.*)$")


def ifupdown_plan(text, nic):
    """``(new text, [(lineno, family, old method)])``: ``iface NIC inet|inet6 METHOD`` stanzas set to ``manual``
    (ifupdown then never configures or deconfigures the link: Debian's README for root on iSCSI)."""
    out = []
    changes = []
    for lineno, line in enumerate(split_lf(text or ""), 1):  # ifupdown reads lines up to \n only
        body = line.rstrip("\r\n")
        eol = line[len(body):]
        m = _IFACE_RE.match(body)
        if m and m.group(2) == nic and m.group(4) in ("inet", "inet6") and m.group(6) != "manual":
            changes.append((lineno, m.group(4), m.group(6)))
            body = "".join((m.group(1), m.group(2), m.group(3), m.group(4), m.group(5), "manual", m.group(7)))
        out.append(body + eol)
    return "".join(out), changes


def ifupdown_files(root, text_of, main="/etc/network/interfaces"):
    """The interfaces file and the files it pulls in with ``source``/``source-directory`` (one level)."""
    import glob as _glob
    files = [main]
    text = text_of(host_path(root, main))
    if text is None:
        return []
    for line in text.split("\n"):
        words = line.split()
        if len(words) < 2 or words[0] not in ("source", "source-directory"):
            continue
        pattern = words[1]
        if not pattern.startswith("/"):
            pattern = "/etc/network/" + pattern
        if words[0] == "source-directory":
            pattern = pattern.rstrip("/") + "/*"
        for found in sorted(_glob.glob(host_path(root, pattern))):
            rel = "/" + os.path.relpath(found, root)
            base = os.path.basename(rel)
            if words[0] == "source-directory" and not re.match(r"^[a-zA-Z0-9_-]+$", base):
                continue
            if os.path.isfile(found) and rel not in files:
                files.append(rel)
    return files
