# -*- coding: utf-8 -*-
# Copyright (c) 2026 The gitlab-runner-auth authors
# MIT License (see LICENSE)
"""Action plugin for gitlab_runner_auth.runner.sync.

The module is a Go program compiled for each supported platform and shipped
as plugins/modules/sync_<os>_<arch>. This plugin finds out the target host's
platform, runs the matching binary, and scrubs the secrets given in the task
arguments from whatever comes back.
"""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

# uname -m / ansible_architecture -> GOARCH
ARCHITECTURES = {
    'x86_64': 'amd64',
    'amd64': 'amd64',
    'aarch64': 'arm64',
    'arm64': 'arm64',
    'ppc64le': 'ppc64le',
}

SECRET_OPTIONS = ('personal_access_token', 'registration_token')
REDACTED = '<redacted>'


def _scrub(value, secrets):
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return dict((k, _scrub(v, secrets)) for k, v in value.items())
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    return value


class ActionModule(ActionBase):

    _supports_check_mode = True
    _supports_async = False

    def _secrets(self):
        found = []
        clients = self._task.args.get('clients') or []
        if isinstance(clients, list):
            for client in clients:
                if isinstance(client, dict):
                    for key in SECRET_OPTIONS:
                        value = client.get(key)
                        if isinstance(value, str) and len(value) >= 6:
                            found.append(value)
        return sorted(set(found), key=len, reverse=True)

    def _platform(self, task_vars):
        system = machine = None
        if not self._task.delegate_to:
            facts = task_vars.get('ansible_facts') or {}
            system = facts.get('system')
            machine = facts.get('architecture')
        if not (system and machine):
            res = self._low_level_execute_command('uname -s -m')
            if res.get('rc') != 0:
                raise AnsibleError('gitlab_runner_auth.runner.sync: cannot determine the platform of the host '
                                   '(uname -s -m failed: %s)' % (res.get('stderr') or '').strip())
            parts = (res.get('stdout') or '').split()
            if len(parts) != 2:
                raise AnsibleError('gitlab_runner_auth.runner.sync: unexpected uname output %r' % res.get('stdout'))
            system, machine = parts
        return system.lower(), machine.lower()

    def run(self, tmp=None, task_vars=None):
        if task_vars is None:
            task_vars = {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        secrets = self._secrets()

        system, machine = self._platform(task_vars)
        goarch = ARCHITECTURES.get(machine)
        if system != 'linux' or goarch is None:
            result.update(failed=True, msg=(
                'gitlab_runner_auth.runner.sync runs on Linux hosts with amd64 (x86_64), arm64 (aarch64) '
                'or ppc64le; this host is %s %s' % (system, machine)))
            return result

        module = 'gitlab_runner_auth.runner.sync_linux_%s' % goarch
        try:
            module_result = self._execute_module(module_name=module, module_args=self._task.args,
                                                 task_vars=task_vars)
        except AnsibleError as e:
            if module in str(e):
                result.update(failed=True, msg=(
                    'the collection has no sync binary for linux/%s (%s); rebuild it with make collection'
                    % (goarch, module)))
                return result
            raise
        # The module never returns a secret; this is the second line of defence.
        module_result = _scrub(module_result, secrets)
        result.update(module_result)
        return result
