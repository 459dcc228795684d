# -*- coding: utf-8 -*-
# Copyright (c) 2026 The gitlab-runner-auth authors
# MIT License (see LICENSE)
"""The local connection, counting what a remote connection would send, and
failing after the module has run when a test asks.

For tests and `make bench-fleet` only: every file put on the host and every
command (with its standard input) is what an ssh connection would carry to
the host, so its size is appended, one line per transfer, to the file named
by GRA_COUNT_FILE:

    <host> <TAB> put|exec <TAB> <bytes> <TAB> <remote path or first word>

GRA_FAULT picks a fault, applied to what happens once the collection's
launcher (plugins/modules/sync, sent as AnsiballZ_sync) has run the module:

    garble    a line of junk before the launcher's output, so that Ansible
              cannot parse it
    truncate  the launcher's output cut in half, as by a dropped connection
    cleanup   the removal of the task's temporary folder fails: the
              connection drops (AnsibleConnectionFailure)
"""

from __future__ import annotations

DOCUMENTATION = '''
name: counting_local
short_description: local connection that counts bytes sent to the host and injects faults (tests only)
description:
  - Behaves as ansible.builtin.local and records the size of each put_file and exec_command.
  - Damages what follows the module's run as GRA_FAULT says.
author: gitlab-runner-auth authors
options:
  # ansible.builtin.local's own options (2.19), which it reads through this plugin's definitions.
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

    def _count(self, kind, size, detail):
        path = os.environ.get('GRA_COUNT_FILE')
        if not path:
            return
        line = '%s\t%s\t%d\t%s\n' % (self._play_context.remote_addr, kind, size, detail)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, to_bytes(line))
        finally:
            os.close(fd)

    def exec_command(self, cmd, in_data=None, sudoable=True):
        size = len(to_bytes(cmd)) + len(to_bytes(in_data or b''))
        self._count('exec', size, (cmd.split() or [''])[0])
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

    def put_file(self, in_path, out_path):
        self._count('put', os.path.getsize(in_path), out_path)
        return super(Connection, self).put_file(in_path, out_path)
