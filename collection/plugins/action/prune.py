# -*- coding: utf-8 -*-
# Copyright (c) 2026 The gitlab-runner-auth authors
# MIT License (see LICENSE or https://opensource.org/license/mit)
# SPDX-License-Identifier: MIT
"""Action plugin for gitlab_runner_auth.runner.prune.

The clean-up is a mode of the same Go binary as sync: this plugin runs it
with the sync plugin's machinery (arguments checked on the controller, the
cached binary) where the task runs -
normally the controller, with delegate_to: localhost - and adds the hidden
argument that selects the clean-up.
"""

from __future__ import annotations

from ansible_collections.gitlab_runner_auth.runner.plugins.action.sync import ActionModule as SyncAction


class ActionModule(SyncAction):

    MODULE = 'gitlab_runner_auth.runner.prune'
    EXTRA_ARGS = {'_gra_module': 'prune'}
