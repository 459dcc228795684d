# -*- coding: utf-8 -*-
# Copyright (c) 2026 The gitlab-runner-auth authors
# MIT License (see LICENSE)
"""gitlab_runner_auth.runner.sync, whose action plugin fails once the
module has run (tests only): its handling of the module's result raises."""

from __future__ import annotations

from ansible_collections.gitlab_runner_auth.runner.plugins.action.sync import ActionModule as SyncAction


class ActionModule(SyncAction):

    def _after_run(self, *args, **kwargs):
        super(ActionModule, self)._after_run(*args, **kwargs)
        raise RuntimeError('injected: the action plugin failed after the module ran')
