# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The documentation site as a reader gets it: the node module's page shows every option of the module's argument
spec in its parameters table and the module's examples; each role's page every option of its argument spec; the
index lists every module, both roles and the guides.

Checked twice: in the HTML Sphinx wrote, and in the DOM headless chromium rendered from it (--dump-dom).  The
screenshots of the index, of the node page and of its examples (.build/docs/screenshots) must be real pictures of the
window size (a blank page is one colour; a rendered one has hundreds).
The expected names come from the code (node.argument_spec(), node.EXAMPLES, plugins/modules, roles/,
docs/docsite/extra-docs.yml), never from a list in this file.
"""

from __future__ import annotations

import os
import struct
import zlib
from html.parser import HTMLParser

import pytest
import yaml

from ansible_collections.openiscsi.initiator.plugins.modules import node

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHOTS = os.path.join(REPO, ".build", "docs", "screenshots")

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Element:
    def __init__(self, tag, attrs, parent=None):
        self.tag = tag
        self.attrs = dict(attrs)
        self.parent = parent
        self.children = []

    def iter(self):
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def text(self):
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def find(self, **attrs):
        return [e for e in self.iter() if all(e.attrs.get(k) == v for k, v in attrs.items())]

    def by_tag(self, tag):
        return [e for e in self.iter() if e.tag == tag]


class _TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", [])
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        el = Element(tag, attrs, self.cur)
        self.cur.children.append(el)
        if tag not in VOID:
            self.cur = el

    def handle_endtag(self, tag):
        node_ = self.cur
        while node_ is not self.root and node_.tag != tag:
            node_ = node_.parent
        if node_ is not self.root:
            self.cur = node_.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def parse(html):
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def spec_paths(spec, prefix=""):
    """Every option of an argument spec as antsibull-docs names it: ``auth``, ``nodes/auth/username``..."""
    paths = set()
    for name, opt in spec.items():
        path = prefix + name
        paths.add(path)
        if opt.get("options"):
            paths |= spec_paths(opt["options"], path + "/")
    return paths


def section(doc, sid):
    found = [e for e in doc.find(id=sid) if e.tag == "section"]
    assert len(found) == 1, "no single <section id=%r> on the page" % sid
    return found[0]


def normalized_lines(text):
    return [line.rstrip() for line in text.strip().splitlines() if line.strip()]


def check_node_page(doc):
    """The parameters table holds exactly the argument spec's options; the examples are the module's EXAMPLES."""
    params = section(doc, "parameters")
    tables = params.by_tag("table")
    assert tables, "the Parameters section has no table"
    shown = {e.attrs["id"][len("parameter-"):] for t in tables for e in t.iter()
             if e.attrs.get("id", "").startswith("parameter-")}
    expected = spec_paths(node.argument_spec())
    assert len(expected) > 10
    assert shown == expected, "options missing from the table: %s; in the table but not in the spec: %s" % (
        sorted(expected - shown), sorted(shown - expected))
    # Each option's row shows its name in bold and its type.
    for path in ("target", "nodes/auth/password"):
        cell = doc.find(id="parameter-" + path)[0].parent
        assert path.rsplit("/", 1)[-1] in cell.text()
        assert "string" in cell.text()

    blocks = section(doc, "examples").by_tag("pre")
    assert len(blocks) == 1, "expected one examples code block"
    assert normalized_lines(blocks[0].text()) == normalized_lines(node.EXAMPLES)
    # Highlighted as YAML: task keys are marked up as names, not dumped as plain text.
    assert any(e.attrs.get("class") == "nt" and e.text() == "openiscsi.initiator.node" for e in blocks[0].iter())


def check_index(doc):
    """Every module, both roles and every guide page are linked from the index."""
    hrefs = {a.attrs.get("href", "").split("#")[0] for a in doc.by_tag("a")}
    modules = sorted(f[:-3] for f in os.listdir(os.path.join(REPO, "plugins", "modules"))
                     if f.endswith(".py") and not f.startswith("_"))
    roles = sorted(os.listdir(os.path.join(REPO, "roles")))
    with open(os.path.join(REPO, "docs", "docsite", "extra-docs.yml"), encoding="utf-8") as fh:
        guides = [g for s in yaml.safe_load(fh)["sections"] for g in s["toctree"]]
    wanted = ["%s_module.html" % m for m in modules] + ["%s_role.html" % r for r in roles]
    wanted += ["docsite/%s.html" % g for g in guides]
    assert len(modules) >= 13 and len(roles) == 2 and len(guides) == 4
    missing = [w for w in wanted if w not in hrefs]
    assert not missing, "not linked from the index: %s" % missing


def read_file(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def test_node_page_html(site):
    check_node_page(parse(read_file(os.path.join(site, "node_module.html"))))


def test_index_html(site):
    check_index(parse(read_file(os.path.join(site, "index.html"))))


def option_names(spec):
    """The names of an argument spec's options at every depth (what the role page's option titles show)."""
    names = set()
    for name, opt in spec.items():
        names.add(name)
        names |= option_names(opt.get("options") or {})
    return names


@pytest.mark.parametrize("role", sorted(os.listdir(os.path.join(REPO, "roles"))))
def test_role_page_shows_argument_spec(site, role):
    """Each entry point of the role's meta/argument_specs.yml has its section, with exactly its options as titles."""
    with open(os.path.join(REPO, "roles", role, "meta", "argument_specs.yml"), encoding="utf-8") as fh:
        specs = yaml.safe_load(fh)["argument_specs"]
    doc = parse(read_file(os.path.join(site, "%s_role.html" % role)))
    titles = {e.by_tag("strong")[0].text().strip() for e in doc.iter()
              if e.attrs.get("class") == "ansible-option-title" and e.by_tag("strong")}
    expected = set()
    for entry, spec in specs.items():
        anchor = "ansible-collections-openiscsi-initiator-%s-role-entrypoint-%s" % (role.replace("_", "-"), entry)
        assert doc.find(id=anchor), "no section for entry point %s" % entry
        expected |= option_names(spec.get("options") or {})
    assert len(expected) > 10
    assert titles == expected, "missing: %s; extra: %s" % (sorted(expected - titles), sorted(titles - expected))


def test_guide_pages_rendered(site):
    """The guides made from docs/docsite/rst carry their tables and code (the interlocks table names the option)."""
    doc = parse(read_file(os.path.join(site, "docsite", "interlocks.html")))
    rows = [tr.text() for tr in doc.by_tag("tr")]
    assert any("initiator_name" in r and "initiator_name_force" in r for r in rows)
    quick = parse(read_file(os.path.join(site, "docsite", "quick_start.html")))
    assert any("initiator_nodes:" in pre.text() for pre in quick.by_tag("pre"))


def test_node_page_dom_in_chromium(site, chromium):
    dom = chromium.dump_dom(os.path.join(site, "node_module.html"))
    check_node_page(parse(dom))


def test_index_dom_in_chromium(site, chromium):
    check_index(parse(chromium.dump_dom(os.path.join(site, "index.html"))))


def png_pixels(path):
    """(width, height, set of distinct pixels) of an 8-bit RGB/RGBA PNG (what chromium writes)."""
    with open(path, "rb") as fh:
        data = fh.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "%s is not a PNG" % path
    pos, idat, width = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6), "unexpected PNG format"
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    pixels = set()
    for y in range(height):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        if y % 8 == 0:  # a sample of the rows is enough to tell a page from a blank
            pixels.update(bytes(line[i:i + bpp]) for i in range(0, stride, bpp * 2))
        prev = line
    return width, height, pixels


@pytest.mark.parametrize("page,anchor", [("index", None), ("node_module", None), ("node_module", "examples")])
def test_screenshot(site, chromium, page, anchor):
    name = page if anchor is None else "%s-%s" % (page, anchor)
    png = chromium.screenshot(os.path.join(site, page + ".html"), os.path.join(SHOTS, name + ".png"), anchor)
    width, height, pixels = png_pixels(png)
    assert (width, height) == chromium.window
    # A rendered page (text antialiasing, the theme's colours) has hundreds of distinct colours; a blank or
    # unstyled page a handful.
    assert len(pixels) > 100, "%s looks blank: %d distinct colours" % (png, len(pixels))
