# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lab/labctl picks the same SSH ports on every `up` of a state directory (an inventory written by hand stays
valid): the previous run's ports when they are free, else a block derived from the state directory, else free
ones.  Real sockets on 127.0.0.1; no VM."""

import importlib.machinery
import importlib.util
import json
import os
import socket

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def _labctl():
    loader = importlib.machinery.SourceFileLoader("labctl_under_test", os.path.join(REPO, "lab", "labctl"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def _listen(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", port))
    s.listen(1)
    return s


def test_same_ports_on_every_up_of_a_state_dir(tmp_path):
    labctl = _labctl()
    state = tmp_path / ".lab-alice"
    state.mkdir()
    first, how = labctl.stable_ports(str(state), 3)
    assert how == "derived from the state directory" and first == labctl.derived_ports(str(state), 3)
    assert json.loads((state / "ports.json").read_text()) == first
    again, how = labctl.stable_ports(str(state), 3)
    assert again == first and how == "the previous run's"
    # another state directory gets another block (they do not collide by design)
    other = tmp_path / ".lab-bob"
    other.mkdir()
    assert labctl.derived_ports(str(other), 3) != first or labctl.PORT_BLOCKS == 1


def test_taken_port_falls_back_then_the_fallback_is_kept(tmp_path):
    labctl = _labctl()
    state = tmp_path / ".lab"
    state.mkdir()
    derived = labctl.derived_ports(str(state), 3)
    held = _listen(derived[1])
    try:
        ports, how = labctl.stable_ports(str(state), 3)
        assert how.startswith("free ones") and derived[1] not in ports and len(set(ports)) == 3
    finally:
        held.close()
    # the next up reuses what the previous one recorded (the hand-written inventory of that run stays valid)
    again, how = labctl.stable_ports(str(state), 3)
    assert again == ports and how == "the previous run's"
    # a recorded port taken since: back to the derived block
    held = _listen(ports[0])
    try:
        third, how = labctl.stable_ports(str(state), 3)
        assert third == derived and how == "derived from the state directory"
    finally:
        held.close()
