# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""molecule/fleet: append one checksummed, fsync'ed record every INTERVAL seconds to a file on the iSCSI LUN.

    python3 writer.py /mnt/fleet/records.log 0.1

A record is ``<seq> <epoch> <48 hex random> <sha256 of the first three fields>\\n``.  Write errors are logged to
stderr (the journal of the transient unit) with their time and the writer keeps going, so the verifier sees every
lost or late record.  Standard library only (runs in the lab guest).
"""

from __future__ import annotations

import hashlib
import os
import sys
import time


def main():
    path, interval = sys.argv[1], float(sys.argv[2])
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    seq = 0
    while True:
        body = "%d %.3f %s" % (seq, time.time(), os.urandom(24).hex())
        line = "%s %s\n" % (body, hashlib.sha256(body.encode()).hexdigest())
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
            seq += 1
        except OSError as exc:
            print("%.3f write error: %s" % (time.time(), exc), file=sys.stderr, flush=True)
        time.sleep(interval)


if __name__ == "__main__":
    main()
