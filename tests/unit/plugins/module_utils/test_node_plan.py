# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _node_plan as np
from ansible_collections.openiscsi.initiator.plugins.module_utils import _record_text as rt
from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError
from ansible_collections.openiscsi.initiator.plugins.module_utils._nodedb import parse_node_record

DATA = os.path.join(os.path.dirname(__file__), "data", "open-iscsi-2.1.8")
T1 = "iqn.2001-04.com.example:disk1"
T2 = "iqn.2001-04.com.example:disk2"


def _read(name):
    with open(os.path.join(DATA, name)) as handle:
        return handle.read()


def params(**kw):
    base = dict(target=None, portal=None, tpgt=None, iface="default", nodes=None, state="present", startup=None,
                conn_startup=None, auth=None, settings=None, force=False)
    base.update(kw)
    return base


def record(target=T1, address="192.0.2.10", port=3260, tpgt=-1, iface="default", layout="flat", **settings):
    base = {"node.name": target, "node.startup": "manual", "node.conn[0].startup": "manual",
            "node.session.auth.authmethod": "None"}
    base.update(dict((k.replace("__", "."), v) for k, v in settings.items()))
    return {"target": target, "address": address, "port": port, "tpgt": tpgt, "iface": iface, "layout": layout,
            "path": "/etc/iscsi/nodes/%s/%s,%d" % (target, address, port), "settings": base}


def session(target=T1, address="192.0.2.10", port=3260, iface="default", sid=3):
    return {"sid": sid, "targetname": target, "ifacename": iface, "state": "LOGGED_IN",
            "connections": [{"persistent_address": address, "persistent_port": port}]}


# ----------------------------------------------------------------------------------------------- parse_request
def test_single_record_defaults():
    [d] = np.parse_request(params(target=T1, portal="192.0.2.10"))
    assert (d.target, d.portal.arg(), d.iface, d.tpgt, d.state) == (T1, "192.0.2.10:3260", "default", None, "present")
    assert d.settings == {} and d.secrets == {}


def test_nodes_inherit_task_level_options():
    entries = np.parse_request(params(
        nodes=[{"target": T1, "portal": "192.0.2.10"},
               {"target": T2, "portal": "[2001:db8::1]", "tpgt": 1, "iface": "san-a", "startup": "manual",
                "settings": {"node.session.queue_depth": 64}}],
        startup="automatic", auth={"username": "bob", "password": "Secret-Pass-1"},
        settings={"node.session.timeo.replacement_timeout": 5, "node.session.queue_depth": 32}))
    first, second = entries
    assert first.settings == {"node.startup": "automatic", "node.session.auth.authmethod": "CHAP",
                              "node.session.auth.username": "bob", "node.session.timeo.replacement_timeout": "5",
                              "node.session.queue_depth": "32"}
    assert first.secrets == {"node.session.auth.password": "Secret-Pass-1"}
    assert second.settings["node.startup"] == "manual"
    assert second.settings["node.session.queue_depth"] == "64"
    assert second.settings["node.session.timeo.replacement_timeout"] == "5"
    assert (second.iface, second.tpgt, second.portal.address) == ("san-a", 1, "2001:db8::1")


def test_auth_mutual_and_clearing():
    [d] = np.parse_request(params(target=T1, portal="192.0.2.10", auth={
        "username": "bob", "password": "Secret-Pass-1", "username_in": "tgt", "password_in": "Secret-Pass-2",
        "chap_algs": ["sha256", "MD5"]}))
    assert d.settings["node.session.auth.chap_algs"] == "SHA256,MD5"
    assert d.secrets == {"node.session.auth.password": "Secret-Pass-1", "node.session.auth.password_in": "Secret-Pass-2"}
    [d] = np.parse_request(params(target=T1, portal="192.0.2.10", auth={"username_in": "", "password_in": ""}))
    assert d.settings == {"node.session.auth.username_in": ""}
    assert d.secrets == {"node.session.auth.password_in": ""}
    [d] = np.parse_request(params(target=T1, portal="192.0.2.10", auth={"method": "None"}))
    assert d.settings == {"node.session.auth.authmethod": "None"}


def test_absent_entry_inherits_only_iface():
    entries = np.parse_request(params(nodes=[{"target": T1, "portal": "192.0.2.10", "state": "absent"},
                                             {"target": T2, "portal": "192.0.2.10"}], iface="san-a",
                                      startup="automatic"))
    assert entries[0].state == "absent" and entries[0].settings == {} and entries[0].iface == "san-a"
    assert entries[1].settings == {"node.startup": "automatic"}


BAD = [
    (params(target=T1, portal="192.0.2.10", nodes=[{"target": T2, "portal": "192.0.2.1"}]), "target",
     ["cannot be combined with nodes"]),
    (params(portal="192.0.2.10", nodes=[{"target": T2, "portal": "192.0.2.1"}]), "portal", ["cannot be combined"]),
    (params(), "target", ["is required"]),
    (params(target=T1), "portal", ["is required", "host[:port]"]),
    (params(portal="192.0.2.1"), "target", ["is required"]),
    (params(target="iqn.2001-04.com.example:Disk 1", portal="192.0.2.10"), "target", ["whitespace"]),
    (params(target="iqn.01-04.com.example:d", portal="192.0.2.10"), "target", ["YYYY-MM"]),
    (params(target="disk1", portal="192.0.2.10"), "target", ["iqn."]),
    (params(target=T1, portal="192.0.2.10:0"), "portal", ["port 0", "1..65535"]),
    (params(target=T1, portal="192.0.2.10:65536"), "portal", ["port 65536"]),
    (params(target=T1, portal="2001:db8::1"), "portal", ["brackets"]),
    (params(target=T1, portal="999.0.0.1"), "portal", ["IPv4"]),
    (params(target=T1, portal="bad_host"), "portal", ["not a valid host"]),
    (params(target=T1, portal="192.0.2.10", tpgt=70000), "tpgt", ["0..65535"]),
    (params(target=T1, portal="192.0.2.10", iface="eth 0"), "iface", ["not an iface name"]),
    (params(target=T1, portal="192.0.2.10", auth={"password": "Secret-Pass-1"}), "auth.username", ["required"]),
    (params(target=T1, portal="192.0.2.10", auth={"username": "a", "password": "p", "username_in": "t"}),
     "auth.password_in", ["mutual"]),
    (params(target=T1, portal="192.0.2.10", auth={"username_in": "t", "password_in": "Secret-Pass-2"}),
     "auth.username", ["incoming-only"]),
    (params(target=T1, portal="192.0.2.10", auth={"method": "None", "username": "a"}), "auth.method",
     ["drop them"]),
    (params(target=T1, portal="192.0.2.10", auth={"username": "a", "pasword": "x"}), "auth.pasword",
     ["unknown auth option"]),
    (params(target=T1, portal="192.0.2.10", auth={"chap_algs": ["MD4"]}), "auth.chap_algs", ["not a CHAP"]),
    (params(target=T1, portal="192.0.2.10", startup="automatic", settings={"node.startup": "manual"}),
     "settings.node.startup", ["also given as startup"]),
    (params(target=T1, portal="192.0.2.10", settings={"node.startp": "manual"}), "settings.node.startp",
     ["unknown key", "'node.startup'"]),
    (params(target=T1, portal="192.0.2.10", settings={"node.session.queue_depth": "lots"}),
     "settings.node.session.queue_depth", ["integer"]),
    (params(target=T1, portal="192.0.2.10", settings={"node.session.auth.password": "x"}),
     "settings.node.session.auth.password", ["auth.password"]),
    (params(target=T1, portal="192.0.2.10", settings={"node.conn[0].address": "1.2.3.4"}),
     "settings.node.conn[0].address", ["identifies the record"]),
    (params(target=T1, portal="192.0.2.10", settings={"iface.hwaddress": "aa"}), "settings.iface.hwaddress",
     ["openiscsi.initiator.iface"]),
    (params(target=T1, portal="192.0.2.10", state="absent", startup="manual"), "startup", ["state=absent"]),
    (params(nodes=[]), "nodes", ["empty"]),
    (params(nodes=[{"target": T1, "portal": "192.0.2.10"},
                   {"target": T1.upper().replace("IQN", "iqn"), "portal": "192.0.2.10:3260"}]),
     "nodes[1]", ["same record as nodes[0]"]),
    (params(nodes=[{"target": T1, "portal": "192.0.2.10", "state": "absent", "startup": "manual"}]),
     "nodes[0].startup", ["state=absent"]),
    (params(nodes=[{"target": T1, "portal": "192.0.2.10", "colour": "red"}]), "nodes[0].colour",
     ["unknown option"]),
    (params(nodes=["iqn.2001-04.com.example:x"]), "nodes[0]", ["must be a dictionary"]),
    (params(nodes=[{"target": T1}]), "nodes[0].portal", ["is required"]),
]


@pytest.mark.parametrize("p, field, words", BAD)
def test_bad_input(p, field, words):
    with pytest.raises(InputError) as err:
        np.parse_request(p)
    assert err.value.field == field, str(err.value)
    for word in words:
        assert word in str(err.value)


def test_secret_never_in_error_text():
    with pytest.raises(InputError) as err:
        np.parse_request(params(target=T1, portal="192.0.2.10", auth={"username": "a", "password": " Secret-x"}))
    assert "Secret-x" not in str(err.value)


# ----------------------------------------------------------------------------------------------- plan
def test_create_when_missing_with_all_values():
    desired = np.parse_request(params(target=T1, portal="192.0.2.10", startup="automatic",
                                      auth={"username": "bob", "password": "Secret-Pass-1"}))
    [step] = np.plan(desired, [])
    assert step.action == "create" and step.tpgt == -1 and step.layout == "flat"
    assert dict((k, a) for k, _b, a in step.changes) == {
        "node.startup": "automatic", "node.session.auth.authmethod": "CHAP", "node.session.auth.username": "bob"}
    assert step.secret_changes == [("node.session.auth.password", False, "Secret-Pass-1")]
    view = step.view()
    assert sorted(view["keys"]) == ["node.session.auth.authmethod", "node.session.auth.password",
                                    "node.session.auth.username", "node.startup"]
    assert "Secret-Pass-1" not in repr(view) and "Secret-Pass-1" not in "".join(step.diff_lines("after"))


def test_update_only_changed_keys_and_secret_compare():
    rec = record(**{"node__startup": "automatic", "node__session__auth__authmethod": "CHAP",
                    "node__session__auth__username": "bob", "node__session__auth__password": "Secret-Pass-1"})
    desired = np.parse_request(params(target=T1, portal="192.0.2.10", startup="automatic",
                                      auth={"username": "bob", "password": "Secret-Pass-1"}))
    [step] = np.plan(desired, [rec])
    assert step.action == "update" and not step.changed and step.view()["action"] == "none"
    desired = np.parse_request(params(target=T1, portal="192.0.2.10", startup="manual",
                                      auth={"username": "bob", "password": "Secret-Pass-2"}))
    [step] = np.plan(desired, [rec])
    assert step.changes == [("node.startup", "automatic", "manual")]
    assert step.secret_changes == [("node.session.auth.password", True, "Secret-Pass-2")]
    assert step.view()["keys"] == ["node.startup", "node.session.auth.password"]
    assert "Secret-Pass" not in repr(step.view())


def test_empty_clears_only_when_set():
    rec = record(**{"node__session__auth__username_in": "tgt", "node__session__auth__password_in": "x" * 12})
    desired = np.parse_request(params(target=T1, portal="192.0.2.10", auth={"username_in": "", "password_in": ""}))
    [step] = np.plan(desired, [rec])
    assert step.changes == [("node.session.auth.username_in", "tgt", "")]
    assert step.secret_changes == [("node.session.auth.password_in", True, "")]
    [step] = np.plan(desired, [record()])
    assert not step.changed


def test_matching_is_case_and_ipv6_spelling_insensitive():
    rec = record(target="iqn.2001-04.com.example:DISK1", address="2001:DB8:0::1", tpgt=1, layout="dir")
    desired = np.parse_request(params(target="iqn.2001-04.com.example:disk1", portal="[2001:db8::1]",
                                      startup="manual"))
    [step] = np.plan(desired, [rec])
    assert step.action == "update" and not step.changed
    assert (step.target, step.address, step.tpgt) == ("iqn.2001-04.com.example:DISK1", "2001:DB8:0::1", 1)
    # a new record of the same target reuses the stored spelling (same target directory)
    desired = np.parse_request(params(target="iqn.2001-04.com.example:disk1", portal="192.0.2.99"))
    [step] = np.plan(desired, [rec])
    assert step.action == "create" and step.target == "iqn.2001-04.com.example:DISK1"


def test_tpgt_given_selects_only_that_record():
    recs = [record(tpgt=1, layout="dir"), record(tpgt=2, layout="dir")]
    desired = np.parse_request(params(target=T1, portal="192.0.2.10", tpgt=2, startup="automatic"))
    [step] = np.plan(desired, recs)
    assert step.tpgt == 2 and step.changes == [("node.startup", "manual", "automatic")]
    desired = np.parse_request(params(target=T1, portal="192.0.2.10", startup="automatic"))
    assert [s.tpgt for s in np.plan(desired, recs)] == [1, 2]


def test_flat_record_conflicts_are_refused():
    flat = record(iface="default")
    desired = np.parse_request(params(target=T1, portal="192.0.2.10", iface="san-a"))
    with pytest.raises(InputError) as err:
        np.plan(desired, [flat])
    assert "would replace it" in str(err.value) and "Give tpgt" in str(err.value)
    desired = np.parse_request(params(target=T1, portal="192.0.2.10", iface="san-a", tpgt=1))
    with pytest.raises(InputError) as err:
        np.plan(desired, [flat])
    assert "deletes that file" in str(err.value)
    # another portal of the same target is fine
    desired = np.parse_request(params(target=T1, portal="192.0.2.11", iface="san-a"))
    assert np.plan(desired, [flat])[0].action == "create"


def test_delete_refused_while_live_unless_forced():
    desired = np.parse_request(params(target=T1, portal="192.0.2.10", state="absent"))
    with pytest.raises(InputError) as err:
        np.plan(desired, [record()], [session()])
    assert "session of it is live (sid 3)" in str(err.value) and "force" in str(err.value)
    [step] = np.plan(desired, [record()], [session()], force=True)
    assert step.action == "delete" and step.live
    [step] = np.plan(desired, [record()], [session(address="192.0.2.99")])
    assert step.action == "delete" and not step.live
    [step] = np.plan(desired, [])
    assert step.action == "none" and not step.changed


def test_two_entries_selecting_one_record_refused():
    recs = [record(tpgt=1, layout="dir")]
    desired = np.parse_request(params(nodes=[{"target": T1, "portal": "192.0.2.10"},
                                             {"target": T1, "portal": "192.0.2.10", "tpgt": 1}]))
    with pytest.raises(InputError) as err:
        np.plan(desired, recs)
    assert "both select the record" in str(err.value)


def test_version_gate():
    desired = np.parse_request(params(target=T1, portal="192.0.2.10",
                                      settings={"node.session.conn_reopen_log_freq": 4}))
    with pytest.raises(InputError) as err:
        np.plan(desired, [], version="2.1.8-1+deb12u1")
    assert "needs open-iscsi 2.1.11" in str(err.value)
    assert np.plan(desired, [], version="2.1.11-1")[0].action == "create"


def test_session_key():
    expected = ("iqn.x", ("2001:db8::1", 3260), "default")
    assert np.session_key(session(target="IQN.X", address="2001:DB8::1")) == expected


def test_summarize_and_diff():
    desired = np.parse_request(params(nodes=[{"target": T1, "portal": "192.0.2.10", "startup": "automatic"},
                                             {"target": T2, "portal": "192.0.2.10", "state": "absent"},
                                             {"target": T1, "portal": "192.0.2.11"}]))
    steps = np.plan(desired, [record(), record(target=T2)])
    assert np.summarize(steps) == {"create": 1, "update": 1, "delete": 1, "unchanged": 0}
    assert steps[0].diff_lines("before") == ["node.startup = manual"]
    assert steps[0].diff_lines("after") == ["node.startup = automatic"]
    assert steps[1].diff_lines("after") == [] and "node.startup = manual" in steps[1].diff_lines("before")


# ----------------------------------------------------------------------------------------------- record text
def test_apply_keys_writes_what_iscsiadm_writes():
    """Keys set on iscsiadm's own fresh record give byte for byte the record iscsiadm's -o update writes."""
    template = _read("node-chap-template.record")
    expected = _read("node-chap-updated.record")
    values = {"node.startup": "automatic", "node.session.auth.authmethod": "CHAP",
              "node.session.auth.username": "alice", "node.session.auth.password": "alice-secret-1",
              "node.session.auth.username_in": "target1", "node.session.auth.password_in": "target-secret-2",
              "node.session.auth.chap_algs": "SHA256,MD5", "node.session.timeo.replacement_timeout": "15"}
    # in any order of the dictionary
    assert rt.apply_keys(template, values) == expected
    assert rt.apply_keys(template, dict(reversed(list(values.items())))) == expected
    # and removing them again gives the template back (empty strings are not written by iscsiadm)
    back = rt.apply_keys(expected, {"node.session.auth.username": "", "node.session.auth.password": "",
                                    "node.session.auth.username_in": "", "node.session.auth.password_in": "",
                                    "node.startup": "manual", "node.session.auth.authmethod": "None",
                                    "node.session.auth.chap_algs": "MD5",
                                    "node.session.timeo.replacement_timeout": "120"})
    assert back == template


def test_render_record_from_another_records_template():
    """A record rendered from disk1's fresh record equals the one iscsiadm -o new wrote for disk3."""
    template = _read("node-new-static.record")  # disk1 at 192.0.2.10:3260
    disk3 = _read("node-chap-template.record")  # disk3 at 192.0.2.30:3260, same iface, same iscsiadm
    rendered = rt.render_record(template, "iqn.2001-04.com.example:disk3", "192.0.2.30", 3260, -1, {})
    assert rendered == disk3
    ipv6 = _read("node-new-tpgt.record")  # disk2 at [2001:db8::10]:3260,1
    rendered = rt.render_record(template, "iqn.2001-04.com.example:disk2", "2001:db8::10", 3260, 1, {})
    assert rendered == ipv6
    parsed = parse_node_record(rt.render_record(template, T2, "192.0.2.77", 3262, 4, {"node.startup": "onboot"}))
    assert (parsed["name"], parsed["address"], parsed["port"], parsed["tpgt"], parsed["startup"]) == (
        T2, "192.0.2.77", 3262, 4, "onboot")


def test_paths():
    assert rt.record_relpath(T1, "192.0.2.10", 3260, -1, "default") == "nodes/%s/192.0.2.10,3260" % T1
    assert rt.record_relpath(T1, "2001:db8::1", 3260, 1, "san-a") == "nodes/%s/2001:db8::1,3260,1/san-a" % T1
    assert rt.static_link(T1, "192.0.2.10", 3260, -1, "default") is None
    assert rt.static_link(T1, "192.0.2.10", 3260, 1, "default") == (
        "static/%s,192.0.2.10,3260,1,default" % T1, "nodes/%s/192.0.2.10,3260,1" % T1)


def test_record_template_renders_exactly_like_render_record():
    template = _read("node-new-static.record")
    fast = rt.RecordTemplate(template)
    cases = [
        (T1, "192.0.2.10", 3260, -1, {}),
        (T2, "2001:db8::10", 3261, 1, {"node.startup": "automatic", "node.session.auth.username": "u1",
                                       "node.session.auth.password": "p@@x==1"}),
        ("iqn.2001-04.com.example:x", "10.0.0.9", 3262, 7, {"node.startup": "automatic",
                                                            "node.session.auth.username": "u2",
                                                            "node.session.auth.password": "second-secret"}),
        (T1, "192.0.2.11", 3260, -1, {"node.session.auth.username_in": "", "node.conn[0].startup": "onboot"}),
    ]
    for target, address, port, tpgt, values in cases:
        assert fast.render(target, address, port, tpgt, values) == rt.render_record(template, target, address, port,
                                                                                    tpgt, values)
    assert len(fast._shapes) == 3  # cases 2 and 3 share one shape
