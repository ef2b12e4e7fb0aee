# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""benchmarks/node_bulk.py's iscsid stand-in: the reply it builds for iscsiadm's requests (no socket bound here:
the benchmark binds iscsid's abstract name only inside its own network namespace)."""

import importlib.util
import os
import struct

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def _bench():
    spec = importlib.util.spec_from_file_location("node_bulk_under_test",
                                                  os.path.join(REPO, "benchmarks", "node_bulk.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _request(command, size=4096):
    return struct.pack("=iI", command, 0) + b"\0" * (size - 8)


def test_config_file_request_gets_the_path():
    nb = _bench()
    command, reply = nb.ipc_reply(_request(10), config_file="/etc/iscsi/iscsid.conf")
    assert command == 10 and len(reply) == nb.IPC_REPLY_SIZE
    rsp_command, err = struct.unpack_from("=ii", reply)
    assert (rsp_command, err) == (10, 0)
    assert reply[8:].split(b"\0", 1)[0] == b"/etc/iscsi/iscsid.conf"


def test_other_requests_are_refused_with_their_command_echoed():
    nb = _bench()
    for command in (1, 2, 13, 15, 99):
        got, reply = nb.ipc_reply(_request(command))
        assert got == command and struct.unpack_from("=ii", reply) == (command, 16)


def test_short_request_is_an_error():
    nb = _bench()
    with pytest.raises(ValueError, match="8-byte header"):
        nb.ipc_reply(b"\x0a\0\0")
