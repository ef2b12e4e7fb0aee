# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""testinfra verifier of the default scenario: what converge.yml must have left on the initiator."""

from __future__ import annotations


def test_initiator_name_file(host):
    f = host.file("/etc/iscsi/initiatorname.iscsi")
    assert f.exists and f.user == "root" and f.mode == 0o600
    lines = [ln for ln in f.content_string.splitlines() if ln and not ln.startswith("#")]
    name = "iqn.2025-01.lab.openiscsi:molecule-" + host.backend.get_hostname()
    assert lines.count("InitiatorName=" + name) == 1
    assert lines.count("InitiatorAlias=molecule-" + host.backend.get_hostname()) == 1
    # Debian's header comment is kept.
    assert f.content_string.startswith("## DO NOT EDIT OR REMOVE THIS FILE!")


def test_open_iscsi_is_installed_and_the_kernel_can_do_iscsi(host):
    assert host.package("open-iscsi").is_installed
    assert host.run("modprobe iscsi_tcp").rc == 0
    assert host.file("/sys/module/iscsi_tcp").is_directory
