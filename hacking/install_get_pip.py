# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Install hacking/get_pip_standin.py where ansible-test looks for its cached get-pip script.

Run with the interpreter of the venv that holds ansible-test (``.venv/bin/python``).  Prints the path; rewrites the
file only when it differs.

Why this imports a private module of ansible-test (``ansible_test._internal.python_requirements``): the cache
file's name carries the pip version ansible-test bootstraps into its venvs
(``~/.ansible/test/cache/get_pip_<version>.py``, built in ``ansible_test/_util/target/setup/requirements.py``),
and that version is defined in one place only, ``get_venv_packages()`` of that private module (pip 24.2 in
ansible-core 2.19.14).  No public API gives it and no command prints it (``ansible-test env --show --json`` does
not).  The alternatives are worse: a copy of the version here goes stale silently when requirements-dev.txt moves
ansible-core (the stand-in lands under a name ansible-test never looks for, and sanity tries to download get-pip
from a host that cannot be reached); reading ansible-test's source text is the same dependency, less checked.  The
import is pinned by the ansible-core pin of requirements-dev.txt, sits in ``pip_version()`` alone, and fails loudly
with what to look at when ansible-test changes it.
"""

from __future__ import annotations

import os
import shutil
import sys
import types

STANDIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "get_pip_standin.py")


def pip_version(python_version):
    """Return the pip version ansible-test bootstraps into venvs of ``python_version``."""
    try:
        # pylint: disable-next=import-outside-toplevel
        from ansible_test._internal.python_requirements import get_venv_packages

        return get_venv_packages(types.SimpleNamespace(version=python_version))["pip"]
    except (ImportError, AttributeError, TypeError, KeyError) as exc:
        raise SystemExit("install_get_pip: this ansible-test no longer gives its pip version through "
                         "ansible_test._internal.python_requirements.get_venv_packages (%s: %s); find where it "
                         "defines the version it bootstraps and update pip_version()" % (type(exc).__name__, exc))


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
