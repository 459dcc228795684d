# -*- coding: utf-8 -*-
# Copyright (c) 2026 The gitlab-runner-auth authors
# MIT License (see LICENSE)
"""The local connection, failing after the module has run (tests only).

GRA_FAULT picks the fault, applied to what happens once the collection's
launcher (plugins/modules/sync, sent as AnsiballZ_sync) has run the module:

    garble    a line of junk before the launcher's output, so that Ansible
              cannot parse it
    truncate  the launcher's output cut in half, as by a dropped connection
    cleanup   the removal of the task's temporary folder fails: the
              connection drops (AnsibleConnectionFailure)
"""

from __future__ import annotations

DOCUMENTATION = '''
name: faulty_local
short_description: local connection that fails after the module ran (tests only)
description:
  - Behaves as ansible.builtin.local, then damages what follows the module's run as GRA_FAULT says.
author: gitlab-runner-auth authors
options:
  become_success_timeout:
    type: int
    default: 10
    description: Seconds to wait for become to succeed.
    vars:
      - name: ansible_local_become_success_timeout
  become_strip_preamble:
    type: bool
    default: true
    description: Strip internal become output preceding command execution.
    vars:
      - name: ansible_local_become_strip_preamble
extends_documentation_fragment:
  - connection_pipelining
'''

import os

from ansible.errors import AnsibleConnectionFailure
from ansible.module_utils.common.text.converters import to_bytes
from ansible.plugins.connection.local import Connection as LocalConnection


class Connection(LocalConnection):

    def exec_command(self, cmd, in_data=None, sudoable=True):
        fault = os.environ.get('GRA_FAULT', '')
        if fault == 'cleanup' and cmd.split()[-1:] and 'rm -f -r ' in cmd:
            raise AnsibleConnectionFailure('injected: the connection dropped while removing the temporary folder')
        rc, stdout, stderr = super(Connection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        launcher = 'AnsiballZ_sync ' in cmd and not any(w in cmd for w in ('chmod ', 'setfacl ', 'chown '))
        if launcher and to_bytes('"_gra_result"') in stdout:
            if fault == 'garble':
                stdout = b'{ injected junk\n' + stdout
            elif fault == 'truncate':
                stdout = stdout[:len(stdout) // 2]
        return rc, stdout, stderr
