# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_nolog.Scrubber against ansible-core's own remove_values: same output, linear cost."""

from __future__ import annotations

import random
import time

from ansible.module_utils.common.parameters import remove_values

from ansible_collections.openiscsi.initiator.plugins.module_utils._nolog import MASK, PLACEHOLDER, Scrubber

SECRETS = ["s3cret-one", "one", "iqn.2001-04.com.example:disk1", "3260", "automatic", "ab"]


def test_cases_like_ansible_core():
    data = {
        "equal": "s3cret-one",
        "inside": "user s3cret-one here",
        "overlapping": "xx-s3cret-one-one",  # the longer secret first, then the shorter in what is left
        "target": "iqn.2001-04.com.example:disk1",
        "portal": "192.0.2.10:3260",
        "port": 3260,
        "tag": 13260,
        "flag": True,
        "none": None,
        "nested": [{"startup": "automatic", "k": ["ab", "cab", "x"]}, ("one", 1)],
        "clean": "nothing here",
    }
    mine = Scrubber(SECRETS).scrub(data)
    core = remove_values(data, set(SECRETS))
    assert mine == core
    assert mine["equal"] == PLACEHOLDER and mine["inside"] == "user %s here" % MASK
    assert mine["portal"] == "192.0.2.10:" + MASK and mine["port"] == PLACEHOLDER and mine["tag"] == PLACEHOLDER
    assert mine["clean"] == "nothing here" and mine["flag"] is True and mine["none"] is None


def test_random_strings_like_ansible_core():
    """Overlapping, nested and repeated secrets in short strings of a small alphabet."""
    rng = random.Random(15)
    alphabet = "ab:-.1"
    for _case in range(300):
        # one secret per length: ansible-core's order among secrets of one length is its set's order
        secrets = set("".join(rng.choice(alphabet) for _s in range(length)) for length in rng.sample(range(1, 6), 3))
        values = ["".join(rng.choice(alphabet) for _c in range(rng.randint(0, 12))) for _v in range(6)]
        assert Scrubber(secrets).scrub(values) == remove_values(values, secrets), (secrets, values)


def test_no_secrets_returns_value_unchanged():
    data = {"a": ["b", 1]}
    assert Scrubber([]).scrub(data) is data
    assert Scrubber([None, ""]).scrub(data) is data


def test_cost_is_linear_in_records_not_records_times_secrets():
    """4096 records' strings against 4096 secrets: ansible-core does 16 million replaces per 1000 strings; the
    scrubber looks substrings up in a set.  Doubling the records must not quadruple the time."""
    def run(n):
        secrets = ["bench-chap-secret-%05d" % i for i in range(n)]
        result = [{"target": "iqn.2001-04.com.example:bench.lun%05d" % i, "portal": "10.77.0.%d:3260" % (i % 250),
                   "iface": "default", "keys": ["node.startup", "node.session.auth.password"]} for i in range(n)]
        start = time.process_time()
        out = Scrubber(secrets).scrub(result)
        return time.process_time() - start, out
    small, _out = run(1024)
    large, out = run(4096)
    assert large < max(small, 0.01) * 8, (small, large)  # x4 the records: linear is ~x4, quadratic ~x16
    assert out[5]["target"] == "iqn.2001-04.com.example:bench.lun00005"
