# -*- coding: utf-8 -*-
# Copyright (c) 2026 The gitlab-runner-auth authors
# MIT License (see LICENSE or https://opensource.org/license/mit)
# SPDX-License-Identifier: MIT
"""Sending a build of the module to a host: the collection's one use of
Ansible internals.

The action plugins run the module through ActionBase._execute_module,
Ansible's stable path for modules, and read its result as Ansible parsed it.
Only one thing has no public interface: putting a file that is not the
module (the Go build, when the host's cache lacks it) into the task's
temporary folder, readable by the user the module runs as (become
included). That takes ActionBase._make_tmp_path, _transfer_file and
_fixup_perms2 and the shell plugin's tmpdir and join_path, unchanged from
ansible-core 2.14 to 2.19. They are called here and nowhere else; a change
in a later release fails here, with this module's name in the message.

Tested under every ansible-core version CI runs (tests/ansible, make
ansible-tests): TestSecondRunSendsNoBinary (a first run, a tampered and an
unusable cache: the build is sent), TestBecomeKeepsTheBecomeUsersCache (sent
to a host where the module runs as another user).
"""

from __future__ import annotations

from ansible.errors import AnsibleError


def stage(action, local_path, name):
    """Sends local_path into the task's temporary folder on the host as
    name, readable and executable by the user the module runs as; returns
    its path there. action is the running ActionBase."""
    try:
        shell = action._connection._shell
        tmpdir = shell.tmpdir or action._make_tmp_path()
        remote = shell.join_path(tmpdir, name)
        action._transfer_file(local_path, remote)
        action._fixup_perms2([tmpdir, remote])
    except (AttributeError, TypeError) as e:
        raise AnsibleError('gitlab_runner_auth.runner: this ansible-core changed the internals the collection uses to '
                           'send the module binary (plugin_utils/staging.py): %s' % e)
    return remote
