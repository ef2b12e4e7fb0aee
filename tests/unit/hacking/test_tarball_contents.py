# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The built collection tarball ships what users run and none of the development tree (galaxy.yml build_ignore).

The tarball is really built here (``ansible-galaxy collection build`` of this checkout into a temporary
directory, a few seconds) and listed with tarfile, as ``make galaxy-check`` does with hacking/tarball_contents.py.
"""

import importlib.util
import os
import subprocess
import sys
import tarfile

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def _checker():
    spec = importlib.util.spec_from_file_location("tarball_contents",
                                                  os.path.join(REPO, "hacking", "tarball_contents.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_development_paths_are_named():
    check = _checker()
    names = ["MANIFEST.json", "plugins/modules/node.py", "roles/initiator/tasks/main.yml", "lab/labctl",
             "molecule/fleet/converge.yml", "Makefile", "requirements-dev.txt", ".ansible-lint", "README.md"]
    assert check.development_paths(names) == [".ansible-lint", "Makefile", "lab/labctl",
                                              "molecule/fleet/converge.yml", "requirements-dev.txt"]


def test_built_tarball_holds_only_what_users_run(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path), ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "collections"))
    subprocess.run([sys.executable, "-m", "ansible.cli.galaxy", "collection", "build", "--output-path",
                    str(tmp_path), REPO], check=True, env=env, capture_output=True)
    (tarball,) = [p for p in tmp_path.iterdir() if p.name.endswith(".tar.gz")]
    with tarfile.open(str(tarball)) as tar:
        names = tar.getnames()
    assert _checker().development_paths(names) == []
    tops = set(n.split("/", 1)[0] for n in names)
    # what users run is there
    assert {"MANIFEST.json", "FILES.json", "README.md", "plugins", "roles", "playbooks", "meta",
            "changelogs"} <= tops
    assert "roles/initiator/meta/argument_specs.yml" in names
    assert "plugins/modules/node.py" in names
    assert _checker().main(["x", str(tarball)]) == 0
