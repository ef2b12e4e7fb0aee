# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Install hacking/get_pip_standin.py where ansible-test looks for its cached get-pip script.

Run with the interpreter of the venv that holds ansible-test (``.venv/bin/python``).  The pip version, and so
the file name ``~/.ansible/test/cache/get_pip_<version>.py``, is asked from the installed ansible-test, so an
upgrade of ansible-core picks the right name by itself.  Prints the path; rewrites the file only when it differs.
"""

from __future__ import annotations

import os
import shutil
import sys
import types

STANDIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "get_pip_standin.py")


def pip_version(python_version):
    """Return the pip version ansible-test bootstraps into venvs of ``python_version``."""
    # pylint: disable-next=import-outside-toplevel
    from ansible_test._internal.python_requirements import get_venv_packages

    return get_venv_packages(types.SimpleNamespace(version=python_version))["pip"]


def main(argv):
    """Copy the stand-in into ansible-test's cache; the Python version may be given (default 3.11)."""
    python_version = argv[0] if argv else "3.11"
    version = pip_version(python_version)
    cache_path = os.path.expanduser("~/.ansible/test/cache/get_pip_%s.py" % version.replace(".", "_"))
    with open(STANDIN, "rb") as src:
        wanted = src.read()
    current = None
    if os.path.exists(cache_path):
        with open(cache_path, "rb") as dst:
            current = dst.read()
    if current != wanted:
        os.makedirs(os.path.dirname(cache_path), exist_ok=True)
        tmp = cache_path + ".tmp"
        shutil.copyfile(STANDIN, tmp)
        os.replace(tmp, cache_path)
    print(cache_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
