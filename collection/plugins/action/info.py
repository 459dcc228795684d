# -*- coding: utf-8 -*-
# Copyright (c) 2026 The gitlab-runner-auth authors
# MIT License (see LICENSE or https://opensource.org/license/mit)
# SPDX-License-Identifier: MIT
"""Action plugin for gitlab_runner_auth.runner.info.

The info module is a mode of the same Go binary as sync: this plugin runs it
with the sync plugin's machinery (arguments checked on the controller, the
cached binary) and adds the hidden argument that selects the read-only
report. It never reports a change.
"""

from __future__ import annotations

from ansible_collections.gitlab_runner_auth.runner.plugins.action.sync import ActionModule as SyncAction


class ActionModule(SyncAction):

    MODULE = 'gitlab_runner_auth.runner.info'
    EXTRA_ARGS = {'_gra_module': 'info'}

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        result['changed'] = False
        return result
