# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""The multipath module's request and plan: pure, no I/O.

``parse_request(params)`` checks the module's options (``InputError`` naming the field) and gives a request;
``plan(text, request)`` gives the new multipath.conf text, the list of changes and whether multipathd would read the
configuration differently (``effective_changed``: a change of comments or layout alone needs no reconfigure).

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations

from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._mpconf import (
    BLACKLIST_KINDS, MpConf, MpConfError, check_key, render_value,
)

# Keywords that identify an entry: they are given as the entry's own options, never under settings.
IDENT_KEYS = {"devices": ("vendor", "product"), "multipaths": ("wwid",)}
SUB_NAME = {"devices": "device", "multipaths": "multipath"}


def _text(value, field):
    """The value as multipath-tools reads it back (what the plan compares with)."""
    try:
        rendered = render_value(value, field)
    except MpConfError as exc:
        raise InputError(field, str(exc).split(": ", 1)[-1])
    return rendered, (rendered[1:-1].replace('""', '"') if rendered.startswith('"') else rendered)


def _settings(raw, field, ident=()):
    out = {}
    for key, value in (raw or {}).items():
        try:
            check_key(key, field)
        except MpConfError as exc:
            raise InputError("%s.%s" % (field, key), str(exc).split(": ", 1)[-1])
        if key in ident:
            raise InputError("%s.%s" % (field, key),
                             "%s identifies the entry: give it as the entry's own option, not under settings" % key)
        if key in ("device", "multipath", "protocol"):
            raise InputError("%s.%s" % (field, key), "a sub-section cannot be set as a keyword")
        out[key] = None if value is None else _text(value, "%s.%s" % (field, key))
    return out


def parse_request(params):
    """The module's parameters -> a request dict; ``InputError`` on anything the plan cannot write faithfully."""
    req = {}
    for section in ("defaults", "overrides"):
        req[section] = _settings(params.get(section), section)
    for section in ("devices", "multipaths"):
        entries = []
        seen = set()
        for i, entry in enumerate(params.get(section) or []):
            field = "%s[%d]" % (section, i)
            ident = []
            for key in IDENT_KEYS[section]:
                value = entry.get(key)
                if value in (None, ""):
                    raise InputError("%s.%s" % (field, key), "required: an entry of %s is found by %s"
                                     % (section, " and ".join(IDENT_KEYS[section])))
                ident.append((key, _text(value, "%s.%s" % (field, key))))
            key_of = tuple(v[1] for _key, v in ident)
            if key_of in seen:
                raise InputError(field, "%s appears twice in %s: merge the two entries" % ("/".join(key_of), section))
            seen.add(key_of)
            settings = _settings(entry.get("settings"), "%s.settings" % field, IDENT_KEYS[section])
            if section == "multipaths" and entry.get("alias") is not None:
                settings["alias"] = _text(entry["alias"], "%s.alias" % field)
            entries.append(dict(ident=ident, settings=settings, state=entry.get("state") or "present", field=field))
        req[section] = entries
    for section in ("blacklist", "blacklist_exceptions"):
        entries = []
        for i, entry in enumerate(params.get(section) or []):
            field = "%s[%d]" % (section, i)
            given = [k for k in BLACKLIST_KINDS + ("device",) if entry.get(k) not in (None, "", {})]
            if len(given) != 1:
                raise InputError(field, "give exactly one of %s" % ", ".join(BLACKLIST_KINDS + ("device",)))
            kind = given[0]
            if kind == "device":
                dev = entry["device"]
                ident = []
                for key in ("vendor", "product"):
                    if not dev.get(key):
                        raise InputError("%s.device.%s" % (field, key), "required: a device entry is found by "
                                                                        "vendor and product")
                    ident.append((key, _text(dev[key], "%s.device.%s" % (field, key))))
                entries.append(dict(kind="device", ident=ident, state=entry.get("state") or "present", field=field))
            else:
                entries.append(dict(kind=kind, value=_text(entry[kind], "%s.%s" % (field, kind)),
                                    state=entry.get("state") or "present", field=field))
        req[section] = entries
    return req


def _set_keys(conf, find, settings, label, changes):
    """Apply ``settings`` ({key: None | (rendered, text)}) to the sections ``find()`` returns (the last one gets
    new keys; earlier ones lose keys the last one now sets)."""
    for key, want in settings.items():
        sections = find()
        if not sections:
            continue
        holders = [s for s in sections if any(conf.lines[i].first == key for i in s.entries)]
        before = conf.get(holders[-1], key) if holders else None
        if want is None:
            for section in reversed(holders):
                conf.remove(conf.refresh(section), key)
            if holders:
                changes.append(dict(section=label, key=key, before=before, after=None))
            continue
        rendered, text = want
        target = holders[-1] if holders else sections[-1]
        for section in holders[:-1]:
            conf.remove(conf.refresh(section), key)
        target = conf.refresh(target)
        if conf.set(target, key, rendered) or len(holders) > 1:
            changes.append(dict(section=label, key=key, before=before, after=text))


def plan(text, req):
    """-> dict(text=new text, changes=[...], effective_changed=bool, config=as_dict of the new file)."""
    try:
        conf = MpConf.parse(text)
    except MpConfError as exc:
        raise InputError("path", str(exc))
    before = conf.effective()
    changes = []

    for section in ("defaults", "overrides"):
        if not req.get(section):
            continue
        if not conf.sections(section) and any(v is not None for v in req[section].values()):
            conf.find_section(section, create=True)
            changes.append(dict(section=section, key=None, before="absent", after="present"))
        _set_keys(conf, lambda section=section: conf.sections(section), req[section], section, changes)

    for section in ("devices", "multipaths"):
        sub = SUB_NAME[section]
        for entry in req.get(section) or []:
            match = [(k, v[1]) for k, v in entry["ident"]]
            label = "%s/%s[%s]" % (section, sub, " ".join("%s=%s" % kv for kv in match))
            found = conf.find_sub(section, sub, match)
            if entry["state"] == "absent":
                for s in reversed(found):
                    conf.delete_section(conf.refresh(s))
                if found:
                    changes.append(dict(section=label, key=None, before="present", after="absent"))
                continue
            if not found:
                conf.find_sub(section, sub, match, create=True, ident=[(k, v[0]) for k, v in entry["ident"]])
                changes.append(dict(section=label, key=None, before="absent", after="present"))

            _set_keys(conf, lambda section=section, sub=sub, match=match: conf.find_sub(section, sub, match),
                      entry["settings"], label, changes)

    for section in ("blacklist", "blacklist_exceptions"):
        for entry in req.get(section) or []:
            if entry["kind"] == "device":
                match = [(k, v[1]) for k, v in entry["ident"]]
                label = "%s/device[%s]" % (section, " ".join("%s=%s" % kv for kv in match))
                found = conf.find_sub(section, "device", match)
                if entry["state"] == "absent":
                    for s in reversed(found):
                        conf.delete_section(conf.refresh(s))
                    if found:
                        changes.append(dict(section=label, key=None, before="present", after="absent"))
                elif not found:
                    conf.find_sub(section, "device", match, create=True, ident=[(k, v[0]) for k, v in entry["ident"]])
                    changes.append(dict(section=label, key=None, before="absent", after="present"))
                continue
            kind, (rendered, value) = entry["kind"], entry["value"]
            holders = [s for s in conf.sections(section)
                       if any(conf.lines[i].first == kind and conf.line_value(i) == value for i in s.entries)]
            if entry["state"] == "absent":
                for s in reversed(holders):
                    conf.remove(conf.refresh(s), kind, value)
                if holders:
                    changes.append(dict(section=section, key=kind, before=value, after=None))
            elif not holders:
                conf.add_entry(conf.find_section(section, create=True), kind, rendered)
                changes.append(dict(section=section, key=kind, before=None, after=value))

    new_text = conf.render()
    return dict(text=new_text, changes=changes if new_text != (text or "") else [],
                effective_changed=conf.effective() != before, config=conf.as_dict())


# Seconds of iSCSI replacement_timeout above which a failed path holds I/O too long for multipath to fail it over
# (open-iscsi's README: with dm-multipath, lower node.session.timeo.replacement_timeout so that I/O fails over
# quickly; vendors' guides name 5 to 30 s).  multipathd itself writes fast_io_fail_tmo (default 5) into every iSCSI
# path's recovery_tmo, which replaces replacement_timeout -- unless fast_io_fail_tmo is "off".
MAX_REPLACEMENT_TIMEOUT = 30


def coherence(effective, replacement_timeouts=()):
    """Timeout combinations that defeat multipath, from the configuration multipath-tools reads (``effective``:
    ``{"defaults": {...}, "overrides": {...}}`` of ``multipath -t``'s dump) and the node records' replacement
    timeouts.  Returns ``[{code, message}]``; the rules are stated in the module's notes."""
    def value(key):
        for section in ("overrides", "defaults"):
            if key in (effective.get(section) or {}):
                return effective[section][key]
        return None
    out = []
    fast = value("fast_io_fail_tmo")
    if fast in ("off", "0"):
        slow = sorted(set(t for t in replacement_timeouts if t is not None and t > MAX_REPLACEMENT_TIMEOUT))
        if slow:
            out.append(dict(code="slow_failover", message=(
                "fast_io_fail_tmo is off, so each iSCSI path keeps its node records' replacement_timeout (%s s): I/O "
                "on a dead path waits that long before multipath fails it over; set fast_io_fail_tmo (e.g. 5) or "
                "lower node.session.timeo.replacement_timeout to %d s or less"
                % (", ".join(str(t) for t in slow), MAX_REPLACEMENT_TIMEOUT))))
    if value("no_path_retry") == "queue" or "queue_if_no_path" in (value("features") or ""):
        out.append(dict(code="queue_forever", message=(
            "no_path_retry queue (or features queue_if_no_path) queues I/O for ever when every path is gone: "
            "processes hang in D state and shutdown can stall on _netdev file systems; give no_path_retry a "
            "number of checker intervals (e.g. 12) so I/O fails after a bounded time")))
    return out
