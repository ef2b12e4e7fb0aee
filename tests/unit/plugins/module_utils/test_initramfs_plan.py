# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The initramfs planner: settings validation, iscsi.initramfs rendering (what the initramfs's sh really reads),
the opt-out file, rebuild reasons, routes, networkd matching and drop-ins, ifupdown stanzas."""

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _initramfs_plan as P
from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import InputError

TGT = "iqn.2025-01.lab.openiscsi:tgt-root"


def sourced(text, tmp_path, keys=P.MANAGED_KEYS):
    """Source the file with /bin/sh the way local-top/iscsi does and read the variables back."""
    conf = tmp_path / "iscsi.initramfs"
    conf.write_text(text)
    script = '. "$1"; ' + "; ".join('printf "%s=%%s\\n" "${%s-<unset>}"' % (k, k) for k in keys)
    out = subprocess.run(["/bin/sh", "-c", script, "sh", str(conf)], capture_output=True, text=True, check=True)
    return dict(line.split("=", 1) for line in out.stdout.splitlines())


def test_explicit_settings_rendered_and_sourced(tmp_path):
    wanted = P.desired_initramfs(target_name=TGT.upper().replace("IQN", "iqn"), target_ips=["10.213.0.1", "fd00::1"],
                                 port=3260, portal_group=1, initiator="iqn.1993-08.org.debian:01:abc",
                                 username="u", password="secret-1234", username_in="t", password_in="tsecret-1234")
    text = P.render_initramfs(None, wanted)
    seen = sourced(text, tmp_path)
    assert seen["ISCSI_TARGET_NAME"] == TGT
    assert seen["ISCSI_TARGET_IP"] == "10.213.0.1 fd00::1"
    assert seen["ISCSI_PASSWORD"] == "secret-1234" and seen["ISCSI_IN_PASSWORD"] == "tsecret-1234"
    assert seen["ISCSI_AUTO"] == "<unset>"
    assert P.configured(text) and P.holds_secret(text)
    assert "secret-1234" not in P.mask_secrets(text) and "ISCSI_PASSWORD=********" in P.mask_secrets(text)


def test_switch_to_auto_removes_explicit_keys_keeps_unknown_lines(tmp_path):
    old = "# mine\nISCSI_TARGET_NAME=%s\nISCSI_TARGET_IP=10.0.0.1\nMY_OWN=1\nISCSI_PASSWORD='x y'\n" % TGT
    text = P.render_initramfs(old, P.desired_initramfs(auto=True))
    assert text == "# mine\nMY_OWN=1\nISCSI_AUTO=true\n"
    assert sourced(text, tmp_path)["ISCSI_AUTO"] == "true"


def test_render_is_idempotent_and_keeps_plain_spelling():
    wanted = P.desired_initramfs(target_name=TGT, target_ips=["10.213.0.1"])
    once = P.render_initramfs(None, wanted)
    assert P.render_initramfs(once, wanted) == once
    quoted = 'ISCSI_TARGET_NAME="%s"\nISCSI_TARGET_IP="10.213.0.1"\n' % TGT
    assert P.render_initramfs(quoted, wanted) == quoted


def test_opaque_and_duplicate_assignments_replaced():
    old = "ISCSI_TARGET_IP=$(ip)\nISCSI_TARGET_NAME=a\nISCSI_TARGET_NAME=%s\n" % TGT
    text = P.render_initramfs(old, P.desired_initramfs(target_name=TGT, target_ips=["10.0.0.1"]))
    assert text == "ISCSI_TARGET_NAME=%s\nISCSI_TARGET_IP=10.0.0.1\n" % TGT


BAD = [
    (dict(target_name=TGT), "target_ip"),
    (dict(target_ips=["10.0.0.1"]), "target_name"),
    (dict(target_name="not an iqn", target_ips=["10.0.0.1"]), "target_name"),
    (dict(target_name=TGT, target_ips=["host.example"]), "target_ip"),
    (dict(target_name=TGT, target_ips=["10.0.0.1 10.0.0.2"]), "target_ip"),
    (dict(target_name=TGT, target_ips=["[fd00::1]"]), "target_ip"),
    (dict(target_name=TGT, target_ips=["10.0.0.1"], port=0), "port"),
    (dict(target_name=TGT, target_ips=["10.0.0.1"], port=70000), "port"),
    (dict(target_name=TGT, target_ips=["10.0.0.1"], portal_group=-1), "portal_group"),
    (dict(target_name=TGT, target_ips=["10.0.0.1"], username="u"), "password"),
    (dict(target_name=TGT, target_ips=["10.0.0.1"], password="p"), "username"),
    (dict(target_name=TGT, target_ips=["10.0.0.1"], username="u", password="a b"), "password"),
    (dict(target_name=TGT, target_ips=["10.0.0.1"], username="u", password="$(reboot)"), "password"),
    (dict(target_name=TGT, target_ips=["10.0.0.1"], username="u;x", password="p"), "username"),
    (dict(target_name=TGT, target_ips=["10.0.0.1"], username="u", password="p", username_in="t"), "password_in"),
    (dict(target_name=TGT, target_ips=["10.0.0.1"], username_in="t", password_in="p"), "username_in"),
    (dict(target_name=TGT, target_ips=["10.0.0.1"], username="u", password="x" * 300), "password"),
    (dict(target_name=TGT, target_ips=["10.0.0.1"], initiator="bad name"), "initiator"),
    (dict(auto=True, target_name=TGT), "target_name"),
    (dict(auto=True, target_ips=["10.0.0.1"]), "target_ip"),
]


@pytest.mark.parametrize("kwargs,field", BAD)
def test_bad_settings_name_the_field(kwargs, field):
    with pytest.raises(InputError) as info:
        P.desired_initramfs(**kwargs)
    assert info.value.field == field


def test_nothing_given_leaves_file_alone():
    assert P.desired_initramfs() is None


def test_opt_out_file():
    text, changed = P.opt_out_text(None, include=False)
    assert changed and P.opt_out_active(text)
    assert P.opt_out_text(text, include=False) == (text, False)
    assert P.opt_out_text(text, include=True) == (None, True)
    mixed = "# admin note\nNO_ISCSI_IN_INITRAMFS=yes\nOTHER=1\n"
    assert P.opt_out_text(mixed, include=True) == ("# admin note\nOTHER=1\n", True)
    assert P.opt_out_text(None, include=True) == (None, False)
    assert not P.opt_out_active('NO_ISCSI_IN_INITRAMFS="no"\n')
    assert P.opt_out_active('NO_ISCSI_IN_INITRAMFS="yes"\n')


def image(**kw):
    base = {"path": "/boot/initrd.img-6.1", "iscsi": True, "iscsi_initramfs": None, "initiator_name": "iqn.a:b"}
    base.update(kw)
    return base


def test_rebuild_reasons():
    conf = "ISCSI_AUTO=true\n"
    assert P.rebuild_reasons(True, conf, "iqn.a:b", image(iscsi_initramfs=conf)) == []
    assert "no iscsi.initramfs" in P.rebuild_reasons(True, conf, "iqn.a:b", image())[0]
    assert "older" in P.rebuild_reasons(True, conf, "iqn.a:b", image(iscsi_initramfs="X=1\n"))[0]
    assert "no longer" in P.rebuild_reasons(True, None, "iqn.a:b", image(iscsi_initramfs=conf))[0]
    assert "initiator name" in P.rebuild_reasons(True, conf, "iqn.a:c", image(iscsi_initramfs=conf))[0]
    assert "holds open-iscsi" in P.rebuild_reasons(False, conf, "iqn.a:b", image(iscsi_initramfs=conf))[0]
    assert P.rebuild_reasons(False, conf, "iqn.a:c", image(iscsi=False)) == []
    assert "lacks" in P.rebuild_reasons(True, None, "iqn.a:b", image(iscsi=False))[0]


ROUTE = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t0202000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
    "eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    "eth1\t0000D50A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    "eth2\t0100D50A\t00000000\t0001\t0\t0\t0\tFFFFFFFF\t0\t0\t0\n"
    "eth3\t0000D50A\t00000000\t0000\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
)
ROUTE6 = (
    "fd000213000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 "
    "00000100 00000001 00000000 00000001     eth1\n"
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 "
    "00000400 00000001 00000000 00000001     eth0\n"
)


@pytest.mark.parametrize("addr,nic", [("10.213.0.1", "eth2"), ("10.213.0.7", "eth1"), ("10.0.2.9", "eth0"),
                                      ("192.0.2.1", "eth0"), ("fd00:213::1", "eth1"), ("2001:db8::1", "eth0"),
                                      ("nonsense", None)])
def test_route_interface(addr, nic):
    assert P.route_interface(addr, ROUTE, ROUTE6) == nic


def put(root, rel, text):
    full = os.path.join(str(root), rel)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as fh:
        fh.write(text)


def reader(path):
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


NIC = {"name": "eth1", "mac": "52:54:00:4c:01:01", "driver": "virtio_net", "type": "ether"}


def test_networkd_dropin_for_the_effective_file(tmp_path):
    put(tmp_path, "run/systemd/network/10-lab-mgmt.network", "[Match]\nMACAddress=52:54:00:4c:01:00\n[Network]\n")
    put(tmp_path, "run/systemd/network/20-lab-nic.network",
        "[Match]\nMACAddress=52:54:00:4C:01:01\n\n[Network]\nAddress=10.213.0.11/24\n")
    put(tmp_path, "etc/systemd/network/30-all.network", "[Match]\nName=*\n[Network]\nDHCP=yes\n")
    plan = P.networkd_plan(str(tmp_path), NIC, reader)
    assert plan["effective"] == "/run/systemd/network/20-lab-nic.network"
    assert plan["writes"] == {"/etc/systemd/network/20-lab-nic.network.d/" + P.DROPIN_NAME: P.DROPIN_TEXT}
    for path, text in plan["writes"].items():
        put(tmp_path, path.lstrip("/"), text)
    again = P.networkd_plan(str(tmp_path), NIC, reader)
    assert again["writes"] == {} and again["effective"] == plan["effective"]


def test_networkd_etc_masks_run_and_existing_keep_counts(tmp_path):
    put(tmp_path, "run/systemd/network/20-x.network", "[Match]\nName=eth1\n")
    put(tmp_path, "etc/systemd/network/20-x.network", "[Match]\nName=eth1\n[Network]\nKeepConfiguration=static\n")
    plan = P.networkd_plan(str(tmp_path), NIC, reader)
    assert plan["effective"] == "/etc/systemd/network/20-x.network" and plan["writes"] == {}


def test_networkd_dropin_that_turns_keep_off_is_overridden(tmp_path):
    put(tmp_path, "etc/systemd/network/20-x.network", "[Match]\nName=eth1\n[Network]\nKeepConfiguration=yes\n")
    put(tmp_path, "etc/systemd/network/20-x.network.d/90-off.conf", "[Network]\nKeepConfiguration=no\n")
    plan = P.networkd_plan(str(tmp_path), NIC, reader)
    assert list(plan["writes"]) == ["/etc/systemd/network/20-x.network.d/" + P.DROPIN_NAME]


def test_networkd_no_matching_file_gets_own_file_sorted_first(tmp_path):
    put(tmp_path, "etc/systemd/network/10-other.network", "[Match]\nName=!eth1 eth*\n")
    plan = P.networkd_plan(str(tmp_path), NIC, reader)
    own = "/etc/systemd/network/05-openiscsi-root-eth1.network"
    assert plan["writes"] == {own: P.OWN_TEXT % "eth1"} and plan["effective"] == own
    put(tmp_path, own.lstrip("/"), P.OWN_TEXT % "eth1")
    put(tmp_path, "run/systemd/network/20-generated.network", "[Match]\nName=eth1\n[Network]\nDHCP=yes\n")
    again = P.networkd_plan(str(tmp_path), NIC, reader)
    assert again["effective"] == own and again["writes"] == {}


def test_networkd_undecidable_match_gets_dropin_until_sure_match(tmp_path):
    put(tmp_path, "etc/systemd/network/10-path.network", "[Match]\nPath=pci-0000:00:05.0\n")
    put(tmp_path, "etc/systemd/network/20-name.network", "[Match]\nName=eth1\n")
    put(tmp_path, "etc/systemd/network/30-late.network", "[Match]\nName=eth1\n")
    plan = P.networkd_plan(str(tmp_path), NIC, reader)
    assert sorted(plan["writes"]) == ["/etc/systemd/network/10-path.network.d/" + P.DROPIN_NAME,
                                      "/etc/systemd/network/20-name.network.d/" + P.DROPIN_NAME]
    assert [f["match"] for f in plan["files"]] == ["maybe", "yes"]


def test_networkd_shipped_wifi_files_do_not_match_an_ethernet_nic_in_an_image(tmp_path):
    """systemd ships /usr/lib/systemd/network/80-wifi-adhoc.network (Type=wlan): found in the lab's image."""
    put(tmp_path, "usr/lib/systemd/network/80-wifi-adhoc.network",
        "[Match]\nType=wlan\nWLANInterfaceType=ad-hoc\n[Network]\nLinkLocalAddressing=yes\n")
    put(tmp_path, "usr/lib/systemd/network/90-undecidable.network", "[Match]\nPath=pci-*\n")
    image_nic = {"name": "eth1", "mac": None, "driver": None, "type": P.guess_type("eth1")}
    plan = P.networkd_plan(str(tmp_path), image_nic, reader)
    own = "/etc/systemd/network/05-openiscsi-root-eth1.network"
    assert plan["writes"] == {own: P.OWN_TEXT % "eth1"} and plan["effective"] == own
    wlan = {"name": "wlan0", "mac": None, "driver": None, "type": P.guess_type("wlan0")}
    assert P.match_result({"Type": ["wlan"], "WLANInterfaceType": ["ad-hoc"]}, wlan) is None


@pytest.mark.parametrize("match,result", [
    ({}, True), ({"Name": ["eth*"]}, True), ({"Name": ["!eth1"]}, False), ({"Name": ["en* eth1"]}, True),
    ({"MACAddress": ["52:54:00:4C:01:01"]}, True), ({"MACAddress": ["aa:bb:cc:dd:ee:ff"]}, False),
    ({"Driver": ["virtio*"]}, True), ({"Type": ["wlan"]}, False), ({"Path": ["x"]}, None),
    ({"Name": ["eth0", ""]}, True),
])
def test_match_result(match, result):
    assert P.match_result(match, NIC) is result


def test_ifupdown_manual():
    text = ("auto lo\niface lo inet loopback\n\nallow-hotplug eth1\niface eth1 inet dhcp\n"
            "iface eth1 inet6 static\n\taddress fd00::11/64\niface eth10 inet dhcp\niface eth1 inet manual\n")
    new, changes = P.ifupdown_plan(text, "eth1")
    assert changes == [(5, "inet", "dhcp"), (6, "inet6", "static")]
    assert new == text.replace("iface eth1 inet dhcp", "iface eth1 inet manual").replace(
        "iface eth1 inet6 static", "iface eth1 inet6 manual")
    assert P.ifupdown_plan(new, "eth1") == (new, [])


def test_ifupdown_files_follow_source(tmp_path):
    put(tmp_path, "etc/network/interfaces", "source interfaces.d/*\nsource-directory /etc/network/more\n")
    put(tmp_path, "etc/network/interfaces.d/eth1", "iface eth1 inet dhcp\n")
    put(tmp_path, "etc/network/more/a", "x\n")
    put(tmp_path, "etc/network/more/b.bak", "x\n")
    files = P.ifupdown_files(str(tmp_path), reader)
    assert files == ["/etc/network/interfaces", "/etc/network/interfaces.d/eth1", "/etc/network/more/a"]
