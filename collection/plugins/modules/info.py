#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 The gitlab-runner-auth authors
# MIT License (see LICENSE or https://opensource.org/license/mit)
# SPDX-License-Identifier: MIT

# The module is a mode of the Go program files/sync_linux_<goarch> that the
# action plugin plugins/action/info.py runs on the host; this file carries
# its documentation only.

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: info
short_description: Report a gitlab-runner service instance's runners as GitLab sees them
version_added: 1.0.0
author:
  - The gitlab-runner-auth authors (@gitlab-runner-auth)
description:
  - Reports this host's runners for one service instance as GitLab sees them - id, description, tags,
    paused, online and status, last contact, token expiry and the hosts (system ids) GitLab has seen use
    each runner - together with what M(gitlab_runner_auth.runner.sync) would do (its check-mode plan).
  - Read-only. It makes no mutating request to GitLab (besides the C(POST /runners/verify) that a sync in
    check mode also makes), writes no file and always returns C(changed=false).
  - Reads the template and executor files already on the host; GitLab's view of each runner needs the
    template's personal access token (C(read_api), C(manage_runner) or C(api)).
  - Runs the same binary as M(gitlab_runner_auth.runner.sync), from the same cache on the host.
options:
  prefix:
    description:
      - Folder holding the template, the executor folders and the generated configs (absolute, or C(~/...), the
        home folder of the user the module runs as on the host).
    type: path
    default: /etc/gitlab-runner
  instance:
    description: Service instance name.
    type: str
    default: main
  hostname:
    description: Host name used in tags and descriptions. Defaults to the host's name, short form.
    type: str
  fleet:
    description: The fleet this host's runners belong to, as for M(gitlab_runner_auth.runner.sync).
    type: str
  tag_schema:
    description:
      - JSON Schema file on the host the tags are checked against, as for M(gitlab_runner_auth.runner.sync).
      - C(~/...) is the home folder of the user the module runs as, on the host.
    type: path
  capture_tags:
    description:
      - Tag capture program on the host, as for M(gitlab_runner_auth.runner.sync).
      - C(~/...) is the home folder of the user the module runs as, on the host.
    type: path
  omit_auto_tags:
    description: Automatic tag families not to add, as for M(gitlab_runner_auth.runner.sync).
    type: list
    elements: str
    choices: [hostname, digitless_hostname, instance, executor_type, architecture, scheduler]
    default: []
  concurrency:
    description: GitLab requests in parallel.
    type: int
    default: 16
  timeout:
    description: Bound on the whole run, as a duration (C(90s), C(5m)) or a number of seconds.
    type: str
    default: 5m
  lock_timeout:
    description: Accepted for symmetry with M(gitlab_runner_auth.runner.sync); the report takes no lock.
    type: str
    default: 120s
  request_timeout:
    description: Timeout of one HTTP request to GitLab.
    type: str
    default: 20s
  capture_timeout:
    description: How long C(capture_tags) may run per executor.
    type: str
    default: 10s
attributes:
  async:
    support: none
    description: The action plugin runs the module's binary from its cache on the host itself; C(async) is refused.
  check_mode:
    support: full
    description: The module never changes anything; check mode changes nothing either.
  diff_mode:
    support: none
    description: Returns no diff; C(plan) and each runner's C(planned_action) say what a sync would change.
  platform:
    platforms: posix
    support: full
    description: Linux on amd64, arm64 and ppc64le.
seealso:
  - module: gitlab_runner_auth.runner.sync
'''

EXAMPLES = r'''
- name: What GitLab knows of this host's runners
  gitlab_runner_auth.runner.info:
    instance: main
  register: runners

- name: Fail when a runner has not contacted GitLab
  ansible.builtin.assert:
    that: runners.runners | rejectattr('online') | list | length == 0

- name: Would a sync change anything?
  ansible.builtin.debug:
    var: runners.would_change
'''

RETURN = r'''
changed:
  description: Always false.
  returned: always
  type: bool
msg:
  description: What a sync would do, for example C(check mode - 2 to keep).
  returned: always
  type: str
would_change:
  description: Whether a sync would change GitLab or the host's files.
  returned: success
  type: bool
skipped:
  description:
    - The executors a service start skips (its file is invalid, say) and why; a start serves the others.
      M(gitlab_runner_auth.runner.sync) fails on them instead.
  returned: when any
  type: list
  elements: dict
  contains:
    name:
      description: Executor name.
      type: str
    file:
      description: Its file, relative to the prefix.
      type: str
    reason:
      description: Why it is skipped.
      type: str
    cause:
      description: The error.
      type: str
    fix:
      description: What to do, when known.
      type: str
    kept:
      description: Whether its last good entry stays in the config.
      type: bool
degraded:
  description:
    - What the last run recorded in the state file for each executor it did not serve - C(since), C(reason),
      C(cause), C(fix), C(kept) - keyed by executor name.
  returned: when any
  type: dict
runners:
  description: This host's runners for the instance, as GitLab sees them.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Executor name.
      type: str
    id:
      description: GitLab runner id (0 when not registered yet).
      type: int
    url:
      description: GitLab URL.
      type: str
    executor:
      description: Executor type.
      type: str
    description:
      description: Description in GitLab.
      type: str
    tags:
      description: Tags in GitLab (sorted).
      type: list
      elements: str
    paused:
      description: Whether the runner is paused in GitLab.
      type: bool
    online:
      description: Whether GitLab considers the runner online.
      type: bool
      returned: when GitLab says
    status:
      description: GitLab's status (C(online), C(offline), C(stale), C(never_contacted)).
      type: str
      returned: when GitLab says
    contacted_at:
      description: When the runner last contacted GitLab.
      type: str
      returned: when GitLab says
    token_expires_at:
      description: When the runner's token expires (RFC 3339).
      type: str
      returned: when the token expires
    managers:
      description: System ids of the hosts GitLab has seen use the runner's token.
      type: list
      elements: str
    planned_action:
      description: What a sync would do to this runner.
      type: str
      choices: [keep, create, adopt, replace, update, delete]
    reason:
      description: Why.
      type: str
    error:
      description: Why GitLab's view could not be read (not registered, no personal access token, 403, ...).
      type: str
      returned: on a problem
input_errors:
  description:
    - When the task failed on invalid input (an option, or a file on the host), one entry per error, its parts
      as fields, so that playbooks need not parse C(msg).
  returned: on failure caused by invalid input
  type: list
  elements: dict
  contains:
    option:
      description: The option at fault, as a path (C(executors[2].url), C(clients[0].group), C(instance)).
      type: str
      returned: when an option is at fault
      sample: executors[2].url
    file:
      description: The file on the host at fault, relative to the prefix when inside it.
      type: str
      returned: when a file is at fault
      sample: main/shell.toml
    line:
      description: The line of the file, where a parser found the problem.
      type: int
      returned: when known
    column:
      description: The column of that line.
      type: int
      returned: when known
    key:
      description: The key within the file.
      type: str
      returned: when a key is at fault
      sample: client_configs[0].url
    message:
      description:
        - What is wrong. For an option that cannot be read at all (wrong type, unknown, missing), the whole
          sentence, which names the option.
      type: str
      returned: always
      sample: missing
    fix:
      description: What to do.
      type: str
      returned: when known
      sample: add url = "<GitLab URL from client_configs>" to select the GitLab this executor registers with
    fix_option:
      description: The option the fix asks for.
      type: str
      returned: when the fix asks for one
      sample: capture_timeout
plan:
  description:
    - The full check-mode result of a sync (as M(gitlab_runner_auth.runner.sync) returns it) - its first pass, and in
      C(next_pass) what a second pass would do.
  returned: success
  type: dict
'''
