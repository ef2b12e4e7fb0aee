"""Make ``ansible_collections.openiscsi.initiator`` importable when pytest runs from a plain checkout.

Under ``ansible-test units`` the checkout already sits in a real ``ansible_collections/openiscsi/initiator``
tree and nothing is done.  Elsewhere a symlinked tree is made under ``.build/pyroot`` (Python follows
symlinks; only ansible-test refuses them) and put first on ``sys.path``.
"""

import importlib.util
import os
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _ensure_importable():
    try:
        if importlib.util.find_spec("ansible_collections.openiscsi.initiator") is not None:
            return
    except ModuleNotFoundError:
        pass
    pyroot = os.path.join(REPO, ".build", "pyroot")
    ns_dir = os.path.join(pyroot, "ansible_collections", "openiscsi")
    link = os.path.join(ns_dir, "initiator")
    os.makedirs(ns_dir, exist_ok=True)
    if not os.path.islink(link):
        os.symlink(REPO, link)
    sys.path.insert(0, pyroot)
    for name in list(sys.modules):
        if name == "ansible_collections" or name.startswith("ansible_collections."):
            del sys.modules[name]


_ensure_importable()
