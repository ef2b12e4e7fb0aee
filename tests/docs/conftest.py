# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the documentation site tests (`make docs-test`): the built site, headless chromium's view of it.

The site is what `make docs` built into .build/docs/build/html from the collection tree of `make tree`; the modules
are imported from that same tree (.build/collections on sys.path), so the pages are compared with the code they
were made from.  Chromium (Debian's package, `make deps-docs`) runs headless with a new empty profile each time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SITE = os.environ.get("DOCS_HTML", os.path.join(REPO, ".build", "docs", "build", "html"))
COLL_TOP = os.path.join(REPO, ".build", "collections")
WINDOW = (1280, 1600)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if COLL_TOP not in sys.path:
    sys.path.insert(0, COLL_TOP)


@pytest.fixture(scope="session")
def site():
    """Path of the built site; fails (does not skip) when `make docs` has not built it."""
    index = os.path.join(SITE, "index.html")
    assert os.path.isfile(index), "no documentation site at %s: run `make docs` first" % SITE
    return SITE


class Chromium:
    """Headless chromium: the rendered DOM of a page, or a screenshot of it."""

    def __init__(self, binary):
        self.binary = binary
        self.window = WINDOW

    def _run(self, page, *args):
        with tempfile.TemporaryDirectory(prefix="docs-chromium-") as profile:
            cmd = [self.binary] + CHROMIUM_FLAGS + ["--user-data-dir=" + profile,
                                                    "--window-size=%d,%d" % WINDOW] + list(args)
            cmd.append("file://" + page)
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120, check=False)
        assert proc.returncode == 0, "chromium failed on %s: %s" % (page, proc.stderr.decode(errors="replace")[-2000:])
        return proc.stdout

    def dump_dom(self, page):
        return self._run(page, "--dump-dom").decode("utf-8")

    def screenshot(self, page, png, anchor=None):
        """A screenshot of the page's top, or of the page scrolled to ``anchor``.

        Headless chromium does not scroll to the fragment of the URL it is given (the picture comes out blank), so
        a page at an anchor is shown in a window-sized iframe of a wrapper page, which does scroll.
        """
        os.makedirs(os.path.dirname(png), exist_ok=True)
        if os.path.exists(png):
            os.unlink(png)
        if anchor is None:
            self._run(page, "--screenshot=" + png)
        else:
            with tempfile.TemporaryDirectory(prefix="docs-wrap-") as tmp:
                wrapper = os.path.join(tmp, "wrap.html")
                with open(wrapper, "w", encoding="utf-8") as fh:
                    fh.write('<html><body style="margin:0"><iframe src="file://%s#%s" style="border:0;width:%dpx;'
                             'height:%dpx"></iframe></body></html>' % ((page, anchor) + WINDOW))
                self._run(wrapper, "--allow-file-access-from-files", "--virtual-time-budget=3000",
                          "--screenshot=" + png)
        assert os.path.isfile(png), "chromium wrote no screenshot of %s" % page
        return png


@pytest.fixture(scope="session")
def chromium():
    binary = shutil.which("chromium")
    assert binary, "Debian's chromium is not installed: `make deps-docs`"
    return Chromium(binary)
