# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""The text of open-iscsi node and iface records, written the way iscsiadm writes them.

* :func:`apply_keys` sets or removes keys in a record's text, a missing key going where iscsiadm's own writer puts
  it (idbm_recinfo_node / idbm_recinfo_iface order);
* :func:`render_record` makes a new record from a record ``iscsiadm -o new`` wrote for the same iface (the
  template), and :class:`RecordTemplate` does the same for many records at a time;
* :func:`record_relpath` and :func:`static_link`: where iscsiadm (2.1.8+) puts a new record and its ``static/`` link.

The tests compare the results byte for byte with files iscsiadm wrote.  Imported only by code that writes records,
so that runs with nothing to change do not load it.

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations

from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsid_conf import IFACE_ORDER, NODE_KEYS
from ansible_collections.openiscsi.initiator.plugins.module_utils._kvconf import KVFile

# iscsiadm's order of the keys in a node record (idbm_recinfo_node): the iface.* copy sits between
# node.leading_login and node.discovery_address.
_ORDER = (["node.name", "node.tpgt", "node.startup", "node.leading_login"] + list(IFACE_ORDER)
          + ["node.discovery_address", "node.discovery_port", "node.discovery_type"]
          + [k for k in NODE_KEYS if k not in ("node.startup", "node.leading_login")
             and not k.startswith("node.conn[0].")]
          + ["node.conn[0].address", "node.conn[0].port"]
          + [k for k in NODE_KEYS if k.startswith("node.conn[0].")])


def apply_keys(text, values):
    """Set ``{key: value}`` in a record's text in iscsiadm's key order; ``""`` removes the key (iscsiadm writes no
    line for an empty string).  Returns the new text."""
    kv = KVFile.parse(text)
    for key, value in values.items():
        if value in ("", None):
            kv.remove(key)
            continue
        if key in kv:
            kv.set(key, value)
            continue
        kv.set(key, value, before=_next_line(kv, key))
    out = kv.render()
    if out and not out.endswith("\n"):
        out += "\n"
    return out


def _next_line(kv, key):
    """The start of the line a missing *key* goes before: the next key in iscsiadm's order that the record has."""
    try:
        index = _ORDER.index(key)
    except ValueError:
        return "# END RECORD"
    for later in _ORDER[index + 1:]:
        if later in kv:
            return "%s = " % later
    return "# END RECORD"


def render_record(template, target, address, port, tpgt, values):
    """The text of a new record made from *template* (a record iscsiadm wrote for the same iface): identity keys
    replaced, *values* (settings and secrets) applied."""
    kv = KVFile.parse(template)
    for key, value in (("node.name", target), ("node.tpgt", str(tpgt)), ("node.conn[0].address", address),
                       ("node.conn[0].port", str(port))):
        if key not in kv:
            raise ValueError("the template record has no %s line" % key)
        kv.set(key, value)
    return apply_keys(kv.render(), values)


class RecordTemplate:
    """:func:`render_record` for many records from one template, fast: the template is rendered ONCE per set of keys
    with placeholders, then each record is a join of the pieces with its own values (same text, byte for byte)."""

    _IDENTITY = ("node.name", "node.tpgt", "node.conn[0].address", "node.conn[0].port")

    def __init__(self, template):
        self.template = template
        self._shapes = {}

    def render(self, target, address, port, tpgt, values):
        setting = tuple(sorted(k for k, v in values.items() if v not in ("", None)))
        clearing = tuple(sorted(k for k, v in values.items() if v in ("", None)))
        shape = self._shapes.get((setting, clearing))
        if shape is None:
            shape = self._shape(setting, clearing)
            self._shapes[(setting, clearing)] = shape
        pieces, order = shape
        given = {"node.name": target, "node.tpgt": str(tpgt), "node.conn[0].address": address,
                 "node.conn[0].port": str(port)}
        given.update(values)
        out = [pieces[0]]
        for index, key in enumerate(order):
            out.append(given[key])
            out.append(pieces[index + 1])
        return "".join(out)

    def _shape(self, setting, clearing):
        keys = list(self._IDENTITY) + list(setting)
        marks = dict((key, "@@openiscsi-%d@@" % i) for i, key in enumerate(keys))
        placeholder_values = dict((k, marks[k]) for k in setting)
        placeholder_values.update((k, "") for k in clearing)
        text = render_record(self.template, marks["node.name"], marks["node.conn[0].address"], 0, 0,
                             placeholder_values)
        # tpgt and port are numbers in render_record's signature: put their marks in afterwards
        kv = KVFile.parse(text)
        kv.set("node.tpgt", marks["node.tpgt"])
        kv.set("node.conn[0].port", marks["node.conn[0].port"])
        text = kv.render()
        back = dict((mark, key) for key, mark in marks.items())
        pieces, order = [], []
        rest = text
        while True:
            start = rest.find("@@openiscsi-")
            if start < 0:
                pieces.append(rest)
                break
            end = rest.index("@@", start + 2) + 2
            pieces.append(rest[:start])
            order.append(back[rest[start:end]])
            rest = rest[end:]
        if sorted(order) != sorted(keys):
            raise ValueError("template rendering lost a key: %r" % sorted(set(keys) - set(order)))
        return pieces, order


def record_relpath(target, address, port, tpgt, iface):
    """Where iscsiadm (2.1.8+) writes a NEW record, relative to the DB root."""
    if tpgt is None or tpgt < 0:
        return "nodes/%s/%s,%d" % (target, address, port)
    return "nodes/%s/%s,%d,%d/%s" % (target, address, port, tpgt, iface)


def static_link(target, address, port, tpgt, iface):
    """The ``static/`` link iscsiadm makes for a static record with a tag: ``(relative link path, relative target
    dir)``; ``None`` for tpgt -1."""
    if tpgt is None or tpgt < 0:
        return None
    return ("static/%s,%s,%d,%d,%s" % (target, address, port, tpgt, iface),
            "nodes/%s/%s,%d,%d" % (target, address, port, tpgt))
