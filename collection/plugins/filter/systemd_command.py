# -*- coding: utf-8 -*-
# Copyright (c) 2026 The gitlab-runner-auth authors
# MIT License (see LICENSE or https://opensource.org/license/mit)
# SPDX-License-Identifier: MIT
"""The systemd_command filter: an argument list to one systemd command line."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

# Words systemd takes as they are (no quoting, no escape, no variable).
_PLAIN = re.compile(r'[A-Za-z0-9_@%+=:,./-]+')
# A control character would end the unit file's line: the rest of the value
# would become directives of its own.
_CONTROL = re.compile(r'[\x00-\x1f\x7f]')


def _word(arg, index):
    if not isinstance(arg, (str, bytes, int, float)) or isinstance(arg, bool):
        raise AnsibleFilterError('systemd_command: argument %d is a %s, not a string' % (index, type(arg).__name__))
    text = to_text(arg)
    if _CONTROL.search(text):
        raise AnsibleFilterError('systemd_command: argument %d contains a control character (newline, tab, ...), '
                                 'which systemd would read as the end of the line' % index)
    if _PLAIN.fullmatch(text):
        return text.replace('%', '%%')
    # systemd.syntax(7): double quotes wrap a whole word, C-style escapes
    # apply inside them; systemd.service(5): "%" starts a specifier and "$"
    # a variable, both doubled to stay literal.
    quoted = text.replace('\\', '\\\\').replace('"', '\\"')
    return '"' + quoted.replace('%', '%%').replace('$', '$$') + '"'


def systemd_command(argv):
    if isinstance(argv, (str, bytes)) or not hasattr(argv, '__iter__'):
        raise AnsibleFilterError('systemd_command: want a list of arguments, got %s' % type(argv).__name__)
    words = [_word(arg, i) for i, arg in enumerate(argv)]
    if not words:
        raise AnsibleFilterError('systemd_command: want at least the program')
    return ' '.join(words)


class FilterModule(object):

    def filters(self):
        return {'systemd_command': systemd_command}
