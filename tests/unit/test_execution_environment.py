# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""meta/execution-environment.yml has the shape ansible-builder reads, and its claim holds.

ansible-builder (3.x) reads a collection's meta/execution-environment.yml in its introspection step: a mapping
with ``version: 1`` and ``dependencies``, whose ``python`` and ``system`` entries (if any) name requirement files by
paths relative to the collection root (an absolute path is an error there).  The file says the collection needs
nothing inside an execution environment; that is true as long as the collection has no controller-side plugins
and its module code imports only the standard library and ansible-core's module_utils -- checked here on the code.
"""

from __future__ import annotations

import ast
import os
import sys

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EE_FILE = os.path.join(REPO, "meta", "execution-environment.yml")
# Plugin directories whose code runs on the managed host, or is documentation only.
HOST_SIDE = {"modules", "module_utils", "doc_fragments"}


def load_ee():
    with open(EE_FILE, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def test_shape_is_what_ansible_builder_reads():
    data = load_ee()
    assert isinstance(data, dict)
    assert set(data) <= {"version", "dependencies"}, "unknown top-level keys: %s" % sorted(set(data))
    assert data["version"] == 1
    deps = data["dependencies"]
    assert isinstance(deps, dict)
    assert set(deps) <= {"python", "system"}, "ansible-builder reads only python and system: %s" % sorted(deps)
    for entry, path in deps.items():
        assert isinstance(path, str) and not os.path.isabs(path), "%s: a path relative to the collection root" % entry
        assert os.path.isfile(os.path.join(REPO, path)), "%s: %s does not exist" % (entry, path)


def test_no_controller_side_plugins():
    """The EE file declares no dependencies because nothing of the collection runs Python on the controller."""
    kinds = set(os.listdir(os.path.join(REPO, "plugins")))
    assert kinds <= HOST_SIDE, ("controller-side plugins %s: list their Python/system packages in "
                                "meta/execution-environment.yml" % sorted(kinds - HOST_SIDE))


def _imports(path):
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module


def test_host_code_imports_stdlib_and_ansible_module_utils_only():
    allowed_prefixes = ("ansible.module_utils", "ansible_collections.openiscsi.initiator.plugins.module_utils")
    seen = 0
    outside = []
    for kind in ("modules", "module_utils"):
        folder = os.path.join(REPO, "plugins", kind)
        for name in sorted(os.listdir(folder)):
            if not name.endswith(".py"):
                continue
            for module in _imports(os.path.join(folder, name)):
                seen += 1
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top == "__future__" or module.startswith(allowed_prefixes):
                    continue
                outside.append("%s/%s: %s" % (kind, name, module))
    assert seen > 50
    assert not outside, "imports outside the standard library and ansible-core module_utils: %s" % outside
