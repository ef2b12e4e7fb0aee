# -*- coding: utf-8 -*-
# Copyright: openiscsi.initiator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to the openiscsi.initiator collection: no compatibility promise outside it.
"""Errors shared by the collection's pure module_utils.

Pure Python, standard library only, no ansible import.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input, found before anything is touched.

    ``field`` names the option (or the file/line) at fault and ``message`` says what is wrong and how to fix it.
    ``str(error)`` gives ``"<field>: <message>"``, ready for ``module.fail_json(msg=str(error))``.
    """

    def __init__(self, field, message):
        self.field = field
        self.message = message
        super().__init__(field, message)

    def __str__(self):
        return "%s: %s" % (self.field, self.message)
