# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Differential tests: node records edited by the collection's key = value parser (KVFile) are read back by the
real iscsiadm (``iscsiadm -m node -o show`` in a private mount namespace, no iscsid needed) with the same values,
and KVFile reads hand-made lines with control characters the way iscsiadm does (lines end at newline only)."""

from __future__ import annotations

import glob
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.openiscsi.initiator.plugins.module_utils._kvconf import KVFile, check_value

from iscsi_ns import PYROOT, Namespace, needs_iscsiadm

T = "iqn.2024-01.com.example:diff"
P = "192.0.2.10:3260"
KEY = "node.session.auth.username"
QUICK = settings(max_examples=15, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def ns(tmp_path_factory):
    if not os.path.isdir(PYROOT):
        pytest.skip("run through pytest from the repository")
    space = Namespace(tmp_path_factory.mktemp("ns"))
    proc = space.iscsiadm("-m", "node", "-o", "new", "-T", T, "-p", P)
    assert proc.returncode == 0, proc.stderr
    return space


def record_path(ns):
    paths = [p for p in glob.glob(str(ns.db / "nodes" / T / "*" / "*")) if os.path.isfile(p)]
    paths += [p for p in glob.glob(str(ns.db / "nodes" / T / "*")) if os.path.isfile(p)]
    assert len(paths) == 1, paths
    return paths[0]


def shown(ns, key):
    proc = ns.iscsiadm("-m", "node", "-T", T, "-p", P, "-o", "show")
    assert proc.returncode == 0, proc.stderr
    for line in proc.stdout.split("\n"):
        if line.startswith(key + " = "):
            return line[len(key) + 3:]
    raise AssertionError("%s not shown: %s" % (key, proc.stdout))


VALUES = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=20).filter(
    lambda v: v == v.strip(" \t") and v.strip() == v)


@needs_iscsiadm
@QUICK
@given(VALUES)
def test_set_value_is_what_iscsiadm_reads(ns, value):
    check_value(value)
    path = record_path(ns)
    with open(path, encoding="utf-8") as handle:
        kv = KVFile.parse(handle.read())
    kv.set(KEY, value)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(kv.render())
    assert shown(ns, KEY) == value == KVFile.parse(kv.render()).get(KEY)


@needs_iscsiadm
@pytest.mark.parametrize("ch", ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"])
def test_kvfile_reads_control_characters_as_iscsiadm_does(ns, ch):
    path = record_path(ns)
    with open(path, encoding="utf-8") as handle:
        kv = KVFile.parse(handle.read())
    kv.set(KEY, "placeholder")
    text = kv.render().replace("%s = placeholder\n" % KEY, "%s = a%sb\n" % (KEY, ch))
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    # one line for iscsiadm (fgets) and for KVFile: the same value, and the rest of the record still read
    assert shown(ns, KEY) == KVFile.parse(text).get(KEY) == "a%sb" % ch
    assert shown(ns, "node.name") == T
