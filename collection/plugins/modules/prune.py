#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 The gitlab-runner-auth authors
# MIT License (see LICENSE or https://opensource.org/license/mit)
# SPDX-License-Identifier: MIT

# The module is a mode of the Go program files/sync_linux_<goarch> that the
# action plugin plugins/action/prune.py runs (on the controller, with
# delegate_to: localhost); this file carries its documentation only.

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: prune
short_description: Delete the fleet's GitLab runners that no host owns any more
version_added: 1.1.0
author:
  - The gitlab-runner-auth authors (@gitlab-runner-auth)
description:
  - "The fleet clean-up. A host can only prove what is its own; the play sees the whole fleet. Run once per play,
    on the controller (C(run_once: true), C(delegate_to: localhost)), after M(gitlab_runner_auth.runner.sync) ran
    on every host, it deletes the runners of decommissioned, re-imaged or renamed hosts and those the hosts left
    behind."
  - It lists the runners of one GitLab scope (the instance, a group or a project) that carry every tag in I(tags),
    reads each one whose description matches I(description_pattern) and that is not in I(keep), and deletes it by
    id unless a host of I(hosts_expected) that did not report carries its name, or the runner or one of its
    managers was used within I(min_idle).
  - It never touches a runner whose description does not match the pattern, that is in I(keep), that was
    contacted within I(min_idle), that has a manager seen within I(min_idle), or that GitLab could not tell about.
    It deletes none at all when more than I(max_delete) would go.
  - 429 and 5xx answers are retried as M(gitlab_runner_auth.runner.sync) retries them, within I(timeout).
  - Same as C(register-runner prune) for scripts and cron.
options:
  url:
    description: GitLab's base URL.
    type: str
    required: true
  personal_access_token:
    description:
      - Personal access token. Listing needs C(read_api), deleting C(manage_runner) (or C(api) for both); instance
        runners need an administrator's token.
      - Never printed, logged or returned.
    type: str
  personal_access_token_file:
    description:
      - File holding the token, on the host the module runs on (the controller with C(delegate_to), readable by
        its owner only). C(~/...) is the home folder of the user the module runs as.
    type: path
  tls_ca_file:
    description: Extra CA bundle for GitLab, on the host the module runs on.
    type: path
  group:
    description: Look at the runners of this group (full path, C(ops/ci)). Default is the instance's runners.
    type: str
  group_id:
    description: The same, by id.
    type: int
  project:
    description: Look at the runners of this project (full path).
    type: str
  project_id:
    description: The same, by id.
    type: int
  tags:
    description:
      - Only runners carrying every one of these tags are the fleet's (GitLab filters the list by them). The
        instance's name, which M(gitlab_runner_auth.runner.sync) adds as a tag, is a good choice.
    type: list
    elements: str
  description_pattern:
    description:
      - Regular expression (Go's syntax) a fleet runner's description matches. The default matches what
        M(gitlab_runner_auth.runner.sync) writes, C(<host> <instance> <executor> Runner).
    type: str
    default: '^\S+ \S+ \S+ Runner$'
  keep:
    description:
      - Runner ids the fleet's hosts reported in this play - every C(runners[].id) of their
        M(gitlab_runner_auth.runner.sync) results. Never deleted.
    type: list
    elements: int
  hosts_expected:
    description:
      - Names of the hosts that should have reported (the inventory group, for example). The runners carrying the
        name of one that did not report (unreachable, failed, or outside C(--limit)) are kept - by the first
        word of their description or a tag.
    type: list
    elements: str
  hosts_reported:
    description: Names of the hosts whose sync succeeded in this play.
    type: list
    elements: str
  min_idle:
    description:
      - Only runners nobody used for at least this long are deleted - neither the runner nor any of its
        managers contacted GitLab, nor was it created, within it. A duration such as C(7d), C(36h) or C(90m).
      - The default is GitLab's own stale window for runner managers.
    type: str
    default: 7d
  max_delete:
    description:
      - Delete none at all when more than this many would be deleted; the result lists them (C(max_delete=0)
        deletes nothing).
    type: int
    default: 20
  state:
    description:
      - C(absent) - the runners no host owns are absent from GitLab; they are deleted.
      - C(listed) - list and decide only; nothing is deleted and the task never reports a change
        (C(would_delete) says what C(absent) would delete). Check mode also deletes nothing, but reports the
        change it would make.
    type: str
    choices: [absent, listed]
    default: absent
  concurrency:
    description: GitLab requests in parallel.
    type: int
    default: 16
  timeout:
    description: Bound on the whole run, as a duration (C(90s), C(5m)) or a number of seconds.
    type: str
    default: 5m
  request_timeout:
    description: Timeout of one HTTP request to GitLab.
    type: str
    default: 20s
attributes:
  async:
    support: none
    description: The action plugin runs the module's binary itself; C(async) is refused.
  check_mode:
    support: full
    description: Lists and decides; deletes nothing.
  diff_mode:
    support: full
    description: The fleet's runners (id and description, one per line) before and after.
  platform:
    platforms: posix
    support: full
    description: Runs where the task runs - the controller with C(delegate_to), Linux on amd64, arm64 and ppc64le.
notes:
  - The ownership rules that make a runner a host's, and what the clean-up does about those no host claims, are
    in the project README, "Decommissioning and clean-up".
seealso:
  - module: gitlab_runner_auth.runner.sync
'''

EXAMPLES = r'''
- name: Keep every runner host registered
  hosts: gitlab_runners
  tasks:
    - name: Sync the runners
      gitlab_runner_auth.runner.sync:
        hostname: "{{ inventory_hostname_short }}"
      register: sync

    - name: Delete the fleet's runners no host owns any more
      gitlab_runner_auth.runner.prune:
        url: https://gitlab.example.com
        personal_access_token: "{{ vault_gitlab_admin_pat }}"
        tags: [main]
        keep: "{{ ansible_play_hosts | map('extract', hostvars, 'sync') | selectattr('runners', 'defined')
                  | map(attribute='runners') | flatten | map(attribute='id') | list }}"
        hosts_expected: "{{ groups['gitlab_runners'] | map('extract', hostvars, 'inventory_hostname_short') | list }}"
        hosts_reported: "{{ ansible_play_hosts | map('extract', hostvars) | selectattr('sync', 'succeeded')
                            | map(attribute='inventory_hostname_short') | list }}"
      run_once: true
      delegate_to: localhost
'''

RETURN = r'''
changed:
  description: Whether a runner was deleted (in check mode, whether one would be). Always false with C(state=listed).
  returned: always
  type: bool
msg:
  description: A summary, for example C(3 runners deleted, 14 kept).
  returned: always
  type: str
deleted:
  description: How many runners were deleted.
  returned: always
  type: int
would_delete:
  description: The ids the clean-up deletes (in check mode or with C(state=listed), would delete).
  returned: always
  type: list
  elements: int
refused:
  description: The ids it would have deleted when it refused because they were more than I(max_delete).
  returned: when it refused
  type: list
  elements: int
warnings:
  description: Runners that could not be read (they are kept).
  returned: when any
  type: list
  elements: str
runners:
  description: Every runner of the fleet the clean-up looked at, and what it did.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: GitLab runner id.
      type: int
    description:
      description: Description in GitLab.
      type: str
    tags:
      description: Tags in GitLab (sorted; empty when the runner was not read).
      type: list
      elements: str
    last_contact:
      description: The last contact of the runner or a manager of it (its creation when none), RFC 3339.
      type: str
      returned: when known
    managers:
      description: Each runner manager, as C(<system id> <last seen>).
      type: list
      elements: str
    action:
      description: What the clean-up does to it.
      type: str
      choices: [delete, keep]
    rule:
      description: The row of the clean-up's table that decided.
      type: str
      choices: [reported, host missing, unreadable, contacted, manager seen, idle]
    reason:
      description: Why, in words.
      type: str
    error:
      description: Why the delete failed.
      type: str
      returned: on a failed delete
input_errors:
  description: When the task failed on invalid input, one entry per error, its parts as fields.
  returned: on failure caused by invalid input
  type: list
  elements: dict
  contains:
    option:
      description: The option at fault.
      type: str
      returned: when an option is at fault
      sample: keep[2]
    file:
      description: The file at fault.
      type: str
      returned: when a file is at fault
    line:
      description: The line of the file.
      type: int
      returned: when known
    message:
      description: What is wrong.
      type: str
      returned: always
    fix:
      description: What to do.
      type: str
      returned: when known
'''
