# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The initiator role's own check of its variables (roles/initiator/tasks/validate.yml), run by the real
ansible-playbook on the controller (no host is touched: the play stops at the check, or runs only the check).

A mistake inside a list item is reported as ``field[index].key``, the value and the allowed values, one line each,
by the provision playbook before Ansible's own argument spec check (which names no index and prints the whole
spec, 8 KB)."""

import os
import subprocess
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
INVENTORY = """all:
  hosts:
    h1:
      ansible_connection: local
      ansible_python_interpreter: %s
  children:
    iscsi_initiators:
      hosts:
        h1:
""" % sys.executable

TYPOS = """initiator_iscsiuio: sometimes
initiator_nodes:
  - target: iqn.2001-04.com.example:a
    portal: 192.0.2.10
    startup: automatic
  - target: iqn.2001-04.com.example:b
    portal: 192.0.2.10
    startup: automatc
    auth: {username: u, pasword: not-shown-Secret-1}
initiator_discovery:
  - portals: [192.0.2.10]
    only_target: [iqn.2001-04.com.example:a]
"""

# the README's example host, a valid configuration
VALID = """initiator_iscsid_conf:
  node.session.timeo.replacement_timeout: 15
  iscsid.safe_logout: true
initiator_discovery:
  - portals: [192.0.2.10, 192.0.2.11]
    only_targets: ["iqn.2001-04.com.example:db01-*"]
    auth: {username: discovery, password: s3cret-discovery}
initiator_service_defaults:
  exclude_mounts_at_shutdown: []
initiator_name: iqn.2004-10.com.example:db01
initiator_nodes:
  - target: iqn.2001-04.com.example:db01-data
    portal: 192.0.2.10:3260
    startup: automatic
    conn_startup: automatic
    auth: {username: db01, password: s3cret-chap}
initiator_sessions:
  - target: iqn.2001-04.com.example:db01-data
initiator_filesystems:
  - path: /srv/pgdata
    src: LABEL=pgdata
    device: /dev/disk/by-path/ip-192.0.2.10:3260-iscsi-iqn.2001-04.com.example:db01-data-lun-1
    fstype: ext4
    mkfs: true
    label: pgdata
    opts: [defaults, noatime]
"""

ONLY_CHECK = """- name: Only the role's check of its variables
  hosts: h1
  gather_facts: false
  tasks:
    - name: Check
      ansible.builtin.include_role:
        name: openiscsi.initiator.initiator
        tasks_from: validate
"""


@pytest.fixture
def env(tmp_path):
    coll = tmp_path / "collections" / "ansible_collections" / "openiscsi"
    coll.mkdir(parents=True)
    os.symlink(REPO, str(coll / "initiator"))
    (tmp_path / "inventory.yml").write_text(INVENTORY)
    return dict(os.environ, HOME=str(tmp_path), ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "collections"),
                ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_DEPRECATION_WARNINGS="False",
                ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))


def playbook(tmp_path, env, play, variables, check=True):
    (tmp_path / "vars.yml").write_text(variables)
    return subprocess.run([sys.executable, "-m", "ansible.cli.playbook", "-i", str(tmp_path / "inventory.yml"),
                           "-e", "@" + str(tmp_path / "vars.yml")] + (["--check"] if check else []) + [play],
                          env=env, capture_output=True, text=True, timeout=300, cwd=str(tmp_path), check=False)


def test_provision_reports_field_index_and_choices_first(tmp_path, env):
    res = playbook(tmp_path, env, "openiscsi.initiator.provision", TYPOS)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    for line in ('initiator_iscsiuio: "sometimes" is not one of: auto, always, never',
                 'initiator_nodes[1].startup: "automatc" is not one of: manual, automatic, onboot',
                 "initiator_nodes[1].auth.pasword: unknown field; the fields are: method, username, password,",
                 "initiator_discovery[0].only_target: unknown field; the fields are: portals, auth, ifaces, create_nodes,"):
        assert line in out, out
    # the play stopped at the role's own check: Ansible's spec check (and its 8 KB dump) never ran
    assert "argument_spec_data" not in out and "Validating arguments against arg spec" not in out, out
    assert "not-shown-Secret-1" not in out
    assert len(out) < 6000, len(out)


def test_valid_readme_example_passes_the_check(tmp_path, env):
    play = tmp_path / "check.yml"
    play.write_text(ONLY_CHECK)
    res = playbook(tmp_path, env, str(play), VALID, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ok=" in res.stdout and "failed=0" in res.stdout
