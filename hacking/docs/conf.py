# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sphinx configuration of the documentation site (`make docs`).

`antsibull-docs sphinx-init` scaffolds the build directory (.build/docs) and `make docs` puts this file in place of
the conf.py it writes.  The difference: no intersphinx.  The build runs offline and fails on every warning (-W), and
intersphinx would warn that it cannot fetch the Ansible inventories.  The few references antsibull-docs writes to
pages of the Ansible documentation (the common return values, the configuration settings, ansible.builtin plugins)
are resolved to their docs.ansible.com addresses by `_ansible_docs_reference` below; any other unresolved reference
still fails the build.
"""

from docutils import nodes

project = 'openiscsi.initiator'
copyright = 'openiscsi.initiator contributors'  # pylint: disable=redefined-builtin
title = 'openiscsi.initiator'
html_short_title = 'openiscsi.initiator'

extensions = ['sphinx_antsibull_ext']

pygments_style = 'ansible'
highlight_language = 'YAML+Jinja'

html_theme = 'sphinx_ansible_theme'
html_show_sphinx = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False
display_version = False

default_role = 'any'
nitpicky = True

ANSIBLE_DOCS = 'https://docs.ansible.com/projects/ansible/devel/'
# Labels of the Ansible documentation that antsibull-docs refers to, and their pages there.
ANSIBLE_LABELS = {
    'common_return_values': 'reference_appendices/common_return_values.html',
    'ansible_configuration_settings': 'reference_appendices/config.html',
}
BUILTIN_PREFIX = 'ansible_collections.ansible.builtin.'


def _ansible_docs_reference(app, env, node, contnode):  # pylint: disable=unused-argument
    """Resolve a :ref: to the Ansible documentation (what intersphinx would do with its inventory)."""
    if node.get('reftype') != 'ref':
        return None
    target = node.get('reftarget', '')
    page = ANSIBLE_LABELS.get(target)
    if page is None and target.startswith(BUILTIN_PREFIX):
        # ansible_collections.ansible.builtin.lineinfile_module -> collections/ansible/builtin/lineinfile_module.html
        page = 'collections/ansible/builtin/%s.html' % target[len(BUILTIN_PREFIX):]
    if page is None:
        return None
    ref = nodes.reference('', '', internal=False, refuri=ANSIBLE_DOCS + page)
    ref += contnode
    return ref


def setup(app):
    app.connect('missing-reference', _ansible_docs_reference)
