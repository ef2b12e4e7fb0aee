# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""The keys open-iscsi knows, with their value types: validation for iscsid.conf, node and iface records.

Where the list comes from (real data, not guesses):

* key names: the ``iscsid.conf`` Debian ships with open-iscsi 2.1.8 (active and commented-out keys), the record
  ``iscsiadm -m node -o new`` writes and ``iscsiadm -m node -o show`` / ``-m discoverydb -o show`` / ``-m iface``
  print (captured on Debian 12 in ``tests/unit/plugins/module_utils/data/open-iscsi-2.1.8/``; a unit test checks that
  every key there is known here);
* value types and enumerations: open-iscsi's ``idbm_recinfo_node``/``_discovery``/``_iface`` tables (usr/idbm.c,
  2.1.8), which is also what iscsiadm parses with.  Enumerations are CASE-SENSITIVE in open-iscsi (``strcmp``): a
  ``yes`` in a record is silently ignored.  :func:`normalize_value` therefore accepts any case (and YAML booleans
  for No/Yes keys) and returns the spelling open-iscsi expects;
* ranges: the ones iscsid.conf's comments state (cmds_max a power of two 2..2048, queue_depth 1..1024, the data
  segment and burst lengths 512..2^24-1, xmit_thread_priority -20..20) and RFC 7143's for the iSCSI login keys.

``open-iscsi`` reads a value up to the end of the line and strips surrounding white space; a line without a value is
ignored, and string fields are cut at 255 bytes.  Values here are refused rather than cut.

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations

import difflib
import re

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._kvconf import KVFile
from ansible_collections.openiscsi.initiator.plugins.module_utils._textrules import (
    ascii_int,
    check_one_line,
    is_ascii_digits,
    split_lf,
)

MAX_STR_BYTES = 255
BOOL_CHOICES = ("No", "Yes")
STARTUP_CHOICES = ("manual", "automatic", "onboot")
DIGEST_CHOICES = ("None", "CRC32C", "CRC32C,None", "None,CRC32C")
CHAP_ALGS = ("MD5", "SHA1", "SHA256", "SHA3-256")
AUTH_METHODS = ("None", "CHAP")
INT32 = (-2147483648, 2147483647)
SEG = (512, 16777215)


class Spec:
    """One key: ``kind`` is ``int``, ``enum``, ``list`` (chap_algs) or ``str``."""

    __slots__ = ("kind", "choices", "low", "high", "secret", "extra", "since")

    def __init__(self, kind, choices=None, low=None, high=None, secret=False, extra=None, since=None):
        self.kind = kind
        self.choices = choices
        self.low = low
        self.high = high
        self.secret = secret
        self.extra = extra
        self.since = since  # first open-iscsi version that knows the key (None: 2.1.8 or older)

    def describe(self):
        if self.kind == "int":
            return "an integer %d..%d" % (self.low, self.high) + (" (%s)" % self.extra if self.extra else "")
        if self.kind == "enum":
            return "one of %s" % ", ".join(self.choices)
        if self.kind == "list":
            return "a comma-separated list of %s (most preferred first)" % ", ".join(self.choices)
        return "a string of at most %d bytes" % MAX_STR_BYTES


def _int(low=INT32[0], high=INT32[1], extra=None):
    return Spec("int", low=low, high=high, extra=extra)


def _enum(choices):
    return Spec("enum", choices=choices)


_STR = Spec("str")
_SECRET = Spec("str", secret=True)
_BOOL = _enum(BOOL_CHOICES)
_SECONDS = _int(0, INT32[1])
_SIGNED_SECONDS = _int()

# Node record keys that `iscsiadm -m node -o update` may change (idbm_recinfo_node entries with can_modify=1, minus
# iface.*), in the order iscsiadm writes them.
NODE_KEYS = {
    "node.startup": _enum(STARTUP_CHOICES),
    "node.leading_login": _BOOL,
    "node.session.initial_cmdsn": _int(0, 4294967295),
    "node.session.initial_login_retry_max": _int(0, INT32[1]),
    "node.session.xmit_thread_priority": _int(-20, 20),
    "node.session.cmds_max": _int(2, 2048, "a power of two"),
    "node.session.queue_depth": _int(1, 1024),
    "node.session.nr_sessions": _int(1, 1024),
    "node.session.auth.authmethod": _enum(AUTH_METHODS),
    "node.session.auth.username": _STR,
    "node.session.auth.password": _SECRET,
    "node.session.auth.username_in": _STR,
    "node.session.auth.password_in": _SECRET,
    "node.session.auth.chap_algs": Spec("list", choices=CHAP_ALGS),
    "node.session.timeo.replacement_timeout": _SIGNED_SECONDS,
    "node.session.err_timeo.abort_timeout": _SECONDS,
    "node.session.err_timeo.lu_reset_timeout": _SECONDS,
    "node.session.err_timeo.tgt_reset_timeout": _SECONDS,
    "node.session.err_timeo.host_reset_timeout": _SECONDS,
    "node.session.iscsi.FastAbort": _BOOL,
    "node.session.iscsi.InitialR2T": _BOOL,
    "node.session.iscsi.ImmediateData": _BOOL,
    "node.session.iscsi.FirstBurstLength": _int(*SEG),
    "node.session.iscsi.MaxBurstLength": _int(*SEG),
    "node.session.iscsi.DefaultTime2Retain": _int(0, 3600),
    "node.session.iscsi.DefaultTime2Wait": _int(0, 3600),
    "node.session.iscsi.MaxConnections": _int(1, 65535),
    "node.session.iscsi.MaxOutstandingR2T": _int(1, 65535),
    "node.session.iscsi.ERL": _int(0, 2),
    "node.session.scan": _enum(("manual", "auto")),
    "node.session.reopen_max": _int(0, INT32[1]),
    "node.session.conn_reopen_log_freq": Spec("int", low=0, high=INT32[1], since="2.1.11"),
    "node.conn[0].startup": _enum(STARTUP_CHOICES),
    "node.conn[0].tcp.window_size": _int(0, INT32[1]),
    "node.conn[0].tcp.type_of_service": _int(0, 255),
    "node.conn[0].timeo.logout_timeout": _SECONDS,
    "node.conn[0].timeo.login_timeout": _SECONDS,
    "node.conn[0].timeo.auth_timeout": _SECONDS,
    "node.conn[0].timeo.noop_out_interval": _SECONDS,
    "node.conn[0].timeo.noop_out_timeout": _SECONDS,
    "node.conn[0].iscsi.MaxXmitDataSegmentLength": _int(
        0, SEG[1], "0 = use the target's MaxRecvDataSegmentLength, else 512..16777215"),
    "node.conn[0].iscsi.MaxRecvDataSegmentLength": _int(*SEG),
    "node.conn[0].iscsi.HeaderDigest": _enum(DIGEST_CHOICES),
    "node.conn[0].iscsi.DataDigest": _enum(DIGEST_CHOICES),
    "node.conn[0].iscsi.IFMarker": _BOOL,
    "node.conn[0].iscsi.OFMarker": _BOOL,
}

# Keys of a node record that identify it (iscsiadm refuses to change them: "used to look up the record").
NODE_IDENTITY_KEYS = ("node.name", "node.tpgt", "node.conn[0].address", "node.conn[0].port",
                      "node.discovery_address", "node.discovery_port", "node.discovery_type")

# Read-only bookkeeping keys iscsiadm derives itself.
HIDDEN_KEYS = ("node.session.auth.password_length", "node.session.auth.password_in_length",
               "discovery.sendtargets.auth.password_length", "discovery.sendtargets.auth.password_in_length")

# iface record keys in the order iscsiadm writes them (idbm_recinfo_iface, 2.1.8); the bootproto..ttl block is
# written for IPv4 ifaces, the ipv6_autocfg..traffic_class block for IPv6 ones.
IFACE_ORDER = (
    "iface.iscsi_ifacename", "iface.net_ifacename", "iface.ipaddress", "iface.prefix_len", "iface.hwaddress",
    "iface.transport_name", "iface.initiatorname", "iface.state", "iface.vlan_id", "iface.vlan_priority",
    "iface.vlan_state", "iface.iface_num", "iface.mtu", "iface.port", "iface.bootproto", "iface.subnet_mask",
    "iface.gateway", "iface.dhcp_alt_client_id_state", "iface.dhcp_alt_client_id", "iface.dhcp_dns",
    "iface.dhcp_learn_iqn", "iface.dhcp_req_vendor_id_state", "iface.dhcp_vendor_id_state", "iface.dhcp_vendor_id",
    "iface.dhcp_slp_da", "iface.fragmentation", "iface.gratuitous_arp", "iface.incoming_forwarding",
    "iface.tos_state", "iface.tos", "iface.ttl", "iface.ipv6_autocfg", "iface.linklocal_autocfg",
    "iface.router_autocfg", "iface.ipv6_linklocal", "iface.ipv6_router", "iface.dup_addr_detect_cnt",
    "iface.flow_label", "iface.gratuitous_neighbor_adv", "iface.hop_limit", "iface.mld", "iface.nd_reachable_tmo",
    "iface.nd_rexmit_time", "iface.nd_stale_tmo", "iface.router_adv_link_mtu", "iface.traffic_class",
    "iface.delayed_ack", "iface.tcp_nagle", "iface.tcp_wsf_state", "iface.tcp_wsf", "iface.tcp_timer_scale",
    "iface.tcp_timestamp", "iface.redirect", "iface.def_task_mgmt_timeout", "iface.header_digest",
    "iface.data_digest", "iface.immediate_data", "iface.initial_r2t", "iface.data_seq_inorder",
    "iface.data_pdu_inorder", "iface.erl", "iface.max_receive_data_len", "iface.first_burst_len",
    "iface.max_outstanding_r2t", "iface.max_burst_len", "iface.chap_auth", "iface.bidi_chap",
    "iface.strict_login_compliance", "iface.discovery_auth", "iface.discovery_logout",
)
_IFACE_INT = frozenset(("iface.prefix_len", "iface.vlan_id", "iface.vlan_priority", "iface.iface_num", "iface.mtu",
                        "iface.port", "iface.tos", "iface.ttl", "iface.tcp_wsf", "iface.tcp_timer_scale",
                        "iface.def_task_mgmt_timeout", "iface.erl", "iface.max_receive_data_len",
                        "iface.first_burst_len", "iface.max_outstanding_r2t", "iface.max_burst_len",
                        "iface.dup_addr_detect_cnt", "iface.flow_label", "iface.hop_limit", "iface.nd_reachable_tmo",
                        "iface.nd_rexmit_time", "iface.nd_stale_tmo", "iface.router_adv_link_mtu",
                        "iface.traffic_class"))
IFACE_KEYS = dict((k, _int(0, 4294967295) if k in _IFACE_INT else _STR) for k in IFACE_ORDER)

# SendTargets defaults/records (idbm_recinfo_discovery); chap_algs reuses the node key name.
DISCOVERY_KEYS = {
    "discovery.startup": _enum(("manual", "automatic")),
    "discovery.sendtargets.auth.authmethod": _enum(AUTH_METHODS),
    "discovery.sendtargets.auth.username": _STR,
    "discovery.sendtargets.auth.password": _SECRET,
    "discovery.sendtargets.auth.username_in": _STR,
    "discovery.sendtargets.auth.password_in": _SECRET,
    "discovery.sendtargets.timeo.login_timeout": _SECONDS,
    "discovery.sendtargets.use_discoveryd": _BOOL,
    "discovery.sendtargets.discoveryd_poll_inval": _SIGNED_SECONDS,
    "discovery.sendtargets.reopen_max": _int(0, INT32[1]),
    "discovery.sendtargets.timeo.auth_timeout": _SECONDS,
    "discovery.sendtargets.timeo.active_timeout": _SECONDS,
    "discovery.sendtargets.iscsi.MaxRecvDataSegmentLength": _int(*SEG),
    "discovery.isns.use_discoveryd": _BOOL,
    "discovery.isns.discoveryd_poll_inval": _SIGNED_SECONDS,
}

# Keys only the daemon (and iscsiadm's iscsid start-up helper) read from iscsid.conf.
DAEMON_KEYS = {
    "iscsid.startup": _STR,
    "iscsid.safe_logout": _BOOL,
    "iscsid.ipc_auth_uid": _BOOL,
}

# Everything iscsid.conf may hold: daemon keys, SendTargets defaults and the defaults for new node records.
CONF_KEYS = {}
CONF_KEYS.update(DAEMON_KEYS)
CONF_KEYS.update(NODE_KEYS)
CONF_KEYS.update(DISCOVERY_KEYS)

SECRET_KEYS = frozenset(k for k, s in CONF_KEYS.items() if s.secret)

# iscsid reads these once when it starts: changing them needs an iscsid restart.  (iscsid.startup is read by iscsiadm
# on every call; node.* and discovery.* defaults are read by iscsiadm when it creates a record.)
RESTART_KEYS = frozenset(("iscsid.safe_logout", "iscsid.ipc_auth_uid", "discovery.sendtargets.use_discoveryd",
                          "discovery.sendtargets.discoveryd_poll_inval", "discovery.isns.use_discoveryd",
                          "discovery.isns.discoveryd_poll_inval"))

MASK = "********"


def mask(key, value):
    """*value*, or ``********`` when *key* holds a secret."""
    return MASK if key in SECRET_KEYS and value not in (None, "") else value


def close_matches(key, known):
    """Up to three known keys that look like *key* (typos, wrong case, missing ``[0]``)."""
    known = list(known)
    lowered = dict((k.lower(), k) for k in known)
    hits = []
    if key.lower() in lowered:
        hits.append(lowered[key.lower()])
    for cand in difflib.get_close_matches(key.lower(), list(lowered), n=3, cutoff=0.75):
        if lowered[cand] not in hits:
            hits.append(lowered[cand])
    tail = key.rsplit(".", 1)[-1].lower()
    for k in known:
        if len(hits) >= 3:
            break
        if k.rsplit(".", 1)[-1].lower() == tail and k not in hits:
            hits.append(k)
    return hits[:3]


def unknown_key_error(field, key, known, what):
    hits = close_matches(key, known)
    hint = (" Did you mean %s?" % " or ".join(repr(h) for h in hits)) if hits else ""
    return InputError(field, "unknown key %r: open-iscsi does not know it as %s.%s" % (key, what, hint))


def _truthy(value):
    if isinstance(value, bool):
        return value
    return None


def normalize_value(key, value, spec, field):
    """Return *value* as the exact text open-iscsi expects for *key*, or raise :class:`InputError`.

    Never puts a secret into an error message.
    """
    shown = "(hidden)" if spec.secret else repr(value)
    if value is None:
        raise InputError(field, "%s has no value; give %s (to remove a key use state=absent)" % (key, spec.describe()))
    if isinstance(value, (dict, list, tuple)) and not (spec.kind == "list" and isinstance(value, (list, tuple))):
        raise InputError(field, "%s must be %s, got a %s" % (key, spec.describe(), type(value).__name__))
    if spec.kind == "int":
        if isinstance(value, bool):
            raise InputError(field, "%s must be %s, got the boolean %r" % (key, spec.describe(), value))
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str):
            number = ascii_int(value.strip(), signed=True)
            if number is None:
                raise InputError(field, "%s must be %s in ASCII digits, got %s" % (key, spec.describe(), shown))
            value = number
        if not isinstance(value, int):
            raise InputError(field, "%s must be %s, got %s" % (key, spec.describe(), shown))
        if not spec.low <= value <= spec.high:
            raise InputError(field, "%s=%d is out of range; it must be %s" % (key, value, spec.describe()))
        if key == "node.session.cmds_max" and value & (value - 1):
            raise InputError(field, "%s=%d is not a power of two; it must be %s" % (key, value, spec.describe()))
        return str(value)
    if spec.kind == "enum":
        flag = _truthy(value)
        if flag is not None and spec.choices == BOOL_CHOICES:
            return "Yes" if flag else "No"
        if isinstance(value, bool):
            raise InputError(field, "%s must be %s, got the boolean %r (quote the value)"
                             % (key, spec.describe(), value))
        text = str(value).strip()
        for choice in spec.choices:
            if text.lower() == choice.lower():
                return choice
        if spec.choices == BOOL_CHOICES and text.lower() in ("true", "on", "1", "false", "off", "0"):
            return "Yes" if text.lower() in ("true", "on", "1") else "No"
        raise InputError(field, "%s must be %s, got %s" % (key, spec.describe(), shown))
    if spec.kind == "list":
        items = value if isinstance(value, (list, tuple)) else str(value).replace(" ", ",").split(",")
        out = []
        for item in items:
            item = str(item).strip()
            if not item:
                continue
            match = [c for c in spec.choices if c.lower() == item.lower()]
            if not match:
                raise InputError(field, "%s: %r is not a CHAP algorithm; it must be %s"
                                 % (key, item, spec.describe()))
            if match[0] in out:
                raise InputError(field, "%s lists %s twice; give each algorithm once" % (key, match[0]))
            out.append(match[0])
        if not out:
            raise InputError(field, "%s must not be empty; it must be %s" % (key, spec.describe()))
        return ",".join(out)
    # str
    if isinstance(value, bool):
        raise InputError(field, "%s must be a string, got the boolean %r (quote the value)" % (key, value))
    if not isinstance(value, (str, int)):
        raise InputError(field, "%s must be %s, got a %s" % (key, spec.describe(), type(value).__name__))
    text = str(value)
    if text == "":
        raise InputError(field, "%s must not be empty (open-iscsi ignores a key without a value); to remove it use "
                                "state=absent" % key)
    check_one_line(text, field, key)
    if text != text.strip():
        raise InputError(field, "%s must not start or end with white space (open-iscsi strips it, so the stored "
                                "value would differ)" % key)
    if len(text.encode("utf-8", "surrogateescape")) > MAX_STR_BYTES:
        raise InputError(field, "%s is %d bytes long; open-iscsi keeps at most %d bytes"
                         % (key, len(text.encode("utf-8", "surrogateescape")), MAX_STR_BYTES))
    if text == "<empty>":
        raise InputError(field, "%s: '<empty>' is how iscsiadm PRINTS an unset value; to unset the key use "
                                "state=absent" % key)
    return text


def validate_conf_settings(settings, field="settings", allow_unknown=False, secrets_field=None):
    """Validate a ``{key: value}`` dict for iscsid.conf.  Returns ``{key: text}``.

    Secret keys are refused here unless *secrets_field* is None and the dict IS the secrets dict (see
    :func:`validate_conf_secrets`).
    """
    out = {}
    for key, value in (settings or {}).items():
        key = _check_key_text(key, field)
        sub = "%s.%s" % (field, key)
        spec = CONF_KEYS.get(key)
        if spec is None:
            if key in NODE_IDENTITY_KEYS or key in HIDDEN_KEYS:
                raise InputError(sub, "%r is not a default iscsid.conf can set: it is part of each record's identity "
                                      "or computed by iscsiadm" % key)
            if not allow_unknown:
                raise unknown_key_error(sub, key, CONF_KEYS, "an iscsid.conf setting (set allow_unknown=true to "
                                        "write it anyway)")
            spec = _STR
        if spec.secret and secrets_field is not None:
            raise InputError(sub, "%s is a secret: give it under %s (which is no_log) instead of %s, so it never "
                                  "shows in logs" % (key, secrets_field, field))
        out[key] = normalize_value(key, value, spec, sub)
    return out


def validate_conf_key(key, field, allow_unknown=False, secrets_only=False):
    """Check only the NAME of an iscsid.conf key (for removals); returns it."""
    key = _check_key_text(key, field)
    if secrets_only:
        if key not in SECRET_KEYS:
            raise InputError(field, "%r is not a secret key; secrets takes only %s" % (key, ", ".join(sorted(SECRET_KEYS))))
        return key
    if key not in CONF_KEYS and not allow_unknown:
        raise unknown_key_error(field, key, CONF_KEYS, "an iscsid.conf setting (set allow_unknown=true to remove it "
                                "anyway)")
    return key


def validate_conf_secrets(secrets, field="secrets"):
    out = {}
    for key, value in (secrets or {}).items():
        key = _check_key_text(key, field)
        sub = "%s.%s" % (field, key)
        if key not in SECRET_KEYS:
            raise InputError(sub, "%r is not a secret key; %s takes only %s (other keys go under settings)"
                             % (key, field, ", ".join(sorted(SECRET_KEYS))))
        out[key] = normalize_value(key, value, CONF_KEYS[key], sub)
    return out


def validate_node_settings(settings, field="settings"):
    """Validate a ``{key: value}`` dict of node record settings (no identity, iface or secret keys)."""
    out = {}
    for key, value in (settings or {}).items():
        key = _check_key_text(key, field)
        sub = "%s.%s" % (field, key)
        if key in NODE_IDENTITY_KEYS:
            raise InputError(sub, "%s identifies the record and cannot be changed; give target/portal/tpgt/iface "
                                  "instead (a different value means a different record)" % key)
        if key.startswith("iface."):
            raise InputError(sub, "%s belongs to the iface record; manage it with openiscsi.initiator.iface and bind "
                                  "the node to that iface with the iface option" % key)
        if key in HIDDEN_KEYS:
            raise InputError(sub, "%s is computed by open-iscsi and cannot be set" % key)
        spec = NODE_KEYS.get(key)
        if spec is None:
            if key.startswith("discovery.") or key.startswith("iscsid."):
                raise InputError(sub, "%s is not a node record setting; set it with openiscsi.initiator.iscsid_config"
                                      % key)
            raise unknown_key_error(sub, key, NODE_KEYS, "a node record setting")
        if spec.secret:
            raise InputError(sub, "%s is a secret: give it as auth.%s (which is no_log), never in settings"
                             % (key, key.rsplit(".", 1)[-1]))
        out[key] = normalize_value(key, value, spec, sub)
    return out


def validate_iface_settings(settings, field="settings"):
    out = {}
    for key, value in (settings or {}).items():
        key = _check_key_text(key, field)
        sub = "%s.%s" % (field, key)
        spec = IFACE_KEYS.get(key)
        if spec is None:
            raise unknown_key_error(sub, key, IFACE_KEYS, "an iface record setting")
        if key == "iface.iscsi_ifacename":
            raise InputError(sub, "the iface name is the record's identity; use the name option")
        out[key] = normalize_value(key, value, spec, sub)
    return out


def _version_tuple(text):
    out = []
    for part in str(text).split("-", 1)[0].split("."):
        if not is_ascii_digits(part):
            break
        out.append(int(part))
    return tuple(out)


def too_new(key, version, catalogue=None):
    """The version that introduced *key* when the installed open-iscsi *version* (e.g. '2.1.8') predates it."""
    spec = (catalogue or CONF_KEYS).get(key)
    if spec is None or spec.since is None or not version:
        return None
    if _version_tuple(version) < _version_tuple(spec.since):
        return spec.since
    return None


def _check_key_text(key, field):
    if not isinstance(key, str) or not key or any(c.isspace() or c == "=" for c in key):
        raise InputError(field, "%r is not a valid key name (no spaces or '='); keys look like node.startup" % (key,))
    return key


# ----------------------------------------------------------------------------------------------- iscsid.conf edits
_LINE_KEY_RE = re.compile(r"^(?P<head>[ \t]*#?[ \t]*)(?P<key>[A-Za-z0-9_][A-Za-z0-9_.\[\]-]*)(?P<sep>[ \t]*=[ \t]*)"
                          r"(?P<value>[^\r\n]*?)(?P<tail>[ \t]*\r?\n?)\Z")


def mask_text(text):
    """*text* with the value of every secret key masked, active or commented out (for diffs)."""
    out = []
    for line in split_lf(text or ""):
        m = _LINE_KEY_RE.match(line)
        if m and m.group("key") in SECRET_KEYS and m.group("value"):
            line = "%s%s%s%s%s" % (m.group("head"), m.group("key"), m.group("sep"), MASK, m.group("tail"))
        out.append(line)
    return "".join(out)


def holds_secret(kv):
    """True when an active line of *kv* (a KVFile) sets a CHAP secret."""
    return any(key in SECRET_KEYS and value for key, value in kv.items())


def plan_conf(text, values, state="present"):
    """Apply *values* (``{key: text}``, validated) to iscsid.conf *text*; pure.

    ``state=present`` sets each key: an existing active line is edited in place; a key with only a commented-out
    default gets its value in place of that comment line; otherwise the line is appended.  A key with several active
    lines is reduced to one first (open-iscsi's node keys take the LAST line, but iscsid.* keys the FIRST, so
    duplicates are a trap).  ``state=absent`` removes every active line of each key.

    Returns ``(new_text, changes, notes)``; ``changes`` is a list of ``{key, before, after}`` (secrets masked,
    ``None`` for absent), ``notes`` a list of warnings.
    """
    kv = KVFile.parse(text or "")
    changes = []
    notes = []
    for key in values:
        before = kv.get(key)
        if state == "absent":
            if kv.remove(key):
                changes.append({"key": key, "before": mask(key, before), "after": None})
            continue
        value = values[key]
        count = sum(1 for k, _v in kv.items() if k == key)
        if count > 1:
            notes.append("%s had %d active lines; they were merged into one (iscsid reads the first, iscsiadm the "
                         "last)" % (key, count))
            kv.remove(key)
            kv.set(key, value, replace_commented=True)
            changes.append({"key": key, "before": mask(key, before), "after": mask(key, value)})
            continue
        if kv.set(key, value, replace_commented=True):
            changes.append({"key": key, "before": mask(key, before), "after": mask(key, value)})
    new_text = kv.render()
    if changes and new_text and not new_text.endswith("\n"):
        # open-iscsi skips a last line without a newline ("Config file line N too long")
        new_text += "\n"
    return new_text, changes, notes
