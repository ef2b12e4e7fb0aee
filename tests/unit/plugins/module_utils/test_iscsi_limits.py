# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Issue 12 (pure-Python initiator): long numbers raise the library's error, SendTargets parsing is linear, a
complete SendTargets answer survives an unanswered Logout, discovery de-duplicates in sets."""

from __future__ import annotations

import time

import pytest

from ansible_collections.openiscsi.initiator.plugins.module_utils import _iscsi_pdu as P
from ansible_collections.openiscsi.initiator.plugins.module_utils import _iscsi_probe
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_errors import ISCSIError, ISCSITextError
from ansible_collections.openiscsi.initiator.plugins.module_utils._iscsi_text import (
    decode_number,
    encode_text,
    parse_send_targets,
    parse_target_address,
)

from test_iscsi_session import INIT, FakeSocket, MiniTarget


@pytest.mark.parametrize("text", ["9" * 4300, "1" * 5000, "0x" + "f" * 5000, "0" * 5000 + "1" + "0" * 20])
def test_long_numbers_raise_the_library_error(text):
    with pytest.raises(ISCSITextError):
        decode_number(text, 0, 65535)
    with pytest.raises(ISCSITextError):
        parse_target_address("192.0.2.10:%s,1" % text)


def test_leading_zeros_still_decode():
    assert decode_number("0" * 5000 + "3260", 0, 65535) == 3260
    assert decode_number("0x" + "0" * 5000 + "ff", 0, 255) == 255


def _factory(target):
    def factory(address, timeout):
        target.connections.append(address)
        return FakeSocket(target, address)
    return factory


def _answer(n_targets, n_portals):
    pairs = []
    for t in range(n_targets):
        pairs.append(("TargetName", "iqn.2024-01.test:t%d" % t))
        for p in range(n_portals):
            pairs.append(("TargetAddress", "10.%d.%d.%d:3260,1" % (p // 65536, p // 256 % 256, p % 256)))
    return encode_text(pairs)


def test_long_number_in_send_targets_answer_is_a_library_error():
    target = MiniTarget()
    target.send_targets_data = encode_text([("TargetName", "iqn.2024-01.test:a"),
                                            ("TargetAddress", "192.0.2.10:3260," + "7" * 4400)])
    with pytest.raises(ISCSIError):
        _iscsi_probe.discover("192.0.2.10", 3260, initiator_name=INIT, timeout=1.0, sock_factory=_factory(target))


def test_send_targets_answer_kept_when_logout_unanswered():
    target = MiniTarget()
    target.send_targets_data = _answer(3, 2)
    answer = target.respond

    def silent_on_logout(pdu):
        if pdu.opcode == P.OP_LOGOUT_REQ:
            target.sent.append(pdu)
            return []
        return answer(pdu)
    target.respond = silent_on_logout
    targets = _iscsi_probe.discover("192.0.2.10", 3260, initiator_name=INIT, timeout=0.3,
                                    sock_factory=_factory(target))
    assert [t["name"] for t in targets] == ["iqn.2024-01.test:t%d" % i for i in range(3)]
    assert all(len(t["portals"]) == 2 for t in targets)
    assert target.requests(P.OP_LOGOUT_REQ)                   # the Logout was sent, just not answered


def _best_time(func, rounds=3):
    best = None
    for _round in range(rounds):
        start = time.perf_counter()
        func()
        took = time.perf_counter() - start
        best = took if best is None else min(best, took)
    return best


def _pairs(n_portals):
    return [("TargetName", "iqn.2024-01.test:a")] + [
        ("TargetAddress", "10.%d.%d.%d:3260,1" % (p // 65536, p // 256 % 256, p % 256)) for p in range(n_portals)]


def test_send_targets_parsing_is_linear_in_portals():
    # 8x the portals must cost about 8x the time; the old list search made it ~64x.  Loose bound: 24x.
    small, large = _pairs(1500), _pairs(12000)
    assert len(parse_send_targets(large)[0]["portals"]) == 12000
    ratio = _best_time(lambda: parse_send_targets(large)) / _best_time(lambda: parse_send_targets(small))
    assert ratio < 24, ratio


def test_discover_triples_dedupe_is_linear(monkeypatch):
    def fake_discover(n):
        return [{"name": "iqn.2024-01.test:t%d" % t, "alias": None,
                 "portals": [{"address": "192.0.2.10", "port": 3260, "tpgt": 1}] * 2} for t in range(n)]
    sizes = {}
    for n in (1500, 12000):
        monkeypatch.setattr(_iscsi_probe, "discover", lambda *a, **k: fake_discover(n))
        triples = _iscsi_probe.discover_triples("192.0.2.10", 3260, INIT)
        assert len(triples) == n                               # repeats dropped, one triple per target
        sizes[n] = _best_time(lambda: _iscsi_probe.discover_triples("192.0.2.10", 3260, INIT))
    assert sizes[12000] / sizes[1500] < 24, sizes


def test_discovery_module_merges_portals_linearly(monkeypatch):
    from ansible_collections.openiscsi.initiator.plugins.modules import discovery

    def timed(n):
        answer = [("iqn.2024-01.test:t%d" % t, "192.0.2.10:3260", 1) for t in range(n)]
        monkeypatch.setattr(discovery, "discover_triples", lambda *a, **k: list(answer))
        portals = [("192.0.2.10", 3260), ("192.0.2.11", 3260)]      # the same answer at two portals: repeats
        assert len(discovery.discover_python(portals, None, INIT)) == n
        return _best_time(lambda: discovery.discover_python(portals, None, INIT))
    small, large = timed(1500), timed(12000)
    assert large / small < 24, (small, large)
