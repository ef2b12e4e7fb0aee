# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write the iSCSI session health of this host as Prometheus metrics for node_exporter's textfile collector.

Installed by the role openiscsi.initiator.initiator (initiator_metrics_enabled) with a systemd timer that runs it
every initiator_metrics_interval seconds.  It runs with the host's python3 and no Ansible: the check is the
collection's own code (module_utils _sysfs, _health, _metrics, _atomicfile), which the role copies to --lib.  The
same check and the same metrics as openiscsi.initiator.session_check with metrics_path; like the module it reads
sysfs only, runs no command and never touches iscsid.

Exit status 0 whether the host is healthy or not (the verdict is in the file); 1 when the file cannot be written
or the check fails; 2 for bad arguments.
"""

import argparse
import sys

LIB = "/usr/local/lib/openiscsi-initiator"


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write iSCSI session health metrics (Prometheus textfile format).")
    parser.add_argument("--output", required=True, help="the .prom file to replace atomically")
    parser.add_argument("--lib", default=LIB, help="directory holding ansible_collections/openiscsi/initiator/... "
                                                   "(default %(default)s)")
    parser.add_argument("--root", default="/", help="file system root to read sysfs under (tests)")
    parser.add_argument("--min-paths", type=int, default=None,
                        help="healthy sessions every target must have (as session_check's min_paths)")
    args = parser.parse_args(argv)
    if not args.output.endswith(".prom"):
        parser.error("--output must end in .prom (node_exporter's textfile collector reads only *.prom files)")

    sys.path.insert(0, args.lib)
    try:
        from ansible_collections.openiscsi.initiator.plugins.module_utils import (  # pylint: disable=import-outside-toplevel
            _atomicfile, _dm, _health, _metrics, _sysfs)
        from ansible_collections.openiscsi.initiator.plugins.module_utils._errors import (  # pylint: disable=import-outside-toplevel
            InputError)
    except ImportError as exc:
        sys.stderr.write("openiscsi-metrics: cannot load the collection's code from %s: %s\n" % (args.lib, exc))
        return 1
    try:
        paths, targets = _health.validate_expectations(args.min_paths, None, None)
    except InputError as exc:
        parser.error(str(exc).replace("min_paths", "--min-paths", 1))

    def check():
        report = _health.evaluate(_sysfs.read_sessions(args.root, brief=True), min_paths=args.min_paths,
                                  target_min_paths=paths, targets=targets)
        # multipath maps from sysfs only (no dmsetup: the timer runs no command); a map without a healthy path
        # makes the host unhealthy, as in session_check
        report["maps"], problems = _health.evaluate_maps(report["sessions"], _dm.read_maps(args.root))
        if problems:
            report["problems"] += problems
            report["healthy"] = False
        return report

    try:
        report = _health.wait_for_health(check, 0)
        _atomicfile.replace_file(args.output, _metrics.render(report), mode=0o644)
    except OSError as exc:
        sys.stderr.write("openiscsi-metrics: cannot write %s: %s\n" % (args.output, exc.strerror or exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
