# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline stand-in for the get-pip.py bootstrap script of ansible-test.

``ansible-test ... --venv --requirements`` bootstraps pip in every virtual environment it creates by running
``get-pip-<version>.py``, downloaded from a host that cannot be reached here.  It uses
``~/.ansible/test/cache/get_pip_<version>.py`` instead when that file exists; ``hacking/install_get_pip.py``
puts this script there.

It is run with the running venv's interpreter and get-pip's arguments (``pip==X.Y`` plus
``--no-setuptools``/``--no-wheel``).  It bootstraps the pip bundled with Python (``ensurepip``), then lets that
pip install the requested packages from the index configured on the machine.
"""

from __future__ import annotations

import ensurepip
import os
import subprocess
import sys

# Options understood by get-pip.py only; `pip install` rejects them.
GET_PIP_ONLY_OPTIONS = frozenset(("--no-setuptools", "--no-wheel"))


def main(argv):
    """Bootstrap pip, then ``pip install`` what get-pip.py was asked to install."""
    ensurepip.bootstrap(upgrade=True)
    # ensurepip points PIP_CONFIG_FILE at /dev/null and leaves it set: the machine's pip configuration
    # (index, CA bundle) would be ignored by the install below and HTTPS would fail.
    os.environ.pop("PIP_CONFIG_FILE", None)
    args = [arg for arg in argv if arg not in GET_PIP_ONLY_OPTIONS]
    return subprocess.call([sys.executable, "-m", "pip", "install"] + args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
