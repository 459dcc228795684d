# -*- coding: utf-8 -*-
# Copyright (c) 2026 The gitlab-runner-auth authors
# MIT License (see LICENSE or https://opensource.org/license/mit)
# SPDX-License-Identifier: MIT
"""The goarch filter: a host's machine name to the GOARCH of its build."""

from __future__ import annotations

from ansible_collections.gitlab_runner_auth.runner.plugins.plugin_utils.hostplatform import goarch


def _goarch(machine, system='Linux'):
    return goarch(machine, system)


class FilterModule(object):

    def filters(self):
        return {'goarch': _goarch}
