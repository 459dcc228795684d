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
  - It lists the runners of one GitLab scope (the instance, a group or a project) that carry every tag in I(tags)
    and whose description matches I(description_pattern) - tags and pattern only narrow the listing, they prove
    nothing. It reads each one that is not in I(keep) by id, and deletes it only when its details, read again just
    before the DELETE, carry the mark of I(fleet) (which M(gitlab_runner_auth.runner.sync) writes into each runner it
    creates or keeps), lie in the scope asked for (an instance runner for the instance, a runner of exactly that
    group, not of its ancestors, or of exactly that project, not shared with others), name no host of
    I(hosts_expected) that did not report, and its known age is I(min_idle) or more on GitLab's clock and on the
    controller's.
  - A runner's age is its last contact, its creation, a manager's last contact or creation, or, when GitLab gives
    none of them (a runner nobody has used yet, on GitLab 16.11 and 17.0), the time the controller first saw it,
    kept in I(seen_file). An unknown age is never idle.
  - It never deletes a runner of another fleet, one without a mark (unless I(include_unmarked)), one GitLab could
    not tell about, and none at all when more than I(max_delete) would go or when GitLab's clock (its C(Date)) and
    the controller's differ by more than an hour.
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
  fleet:
    description:
      - The fleet whose runners are cleaned up - the C(fleet) its hosts' M(gitlab_runner_auth.runner.sync) marks
        their runners with. Only a runner whose details carry this fleet's mark is ever deleted.
      - Name the fleet when another team's fleet shares the GitLab; the default C(default) is every unnamed fleet's.
    type: str
    default: default
  include_unmarked:
    description:
      - Also take a runner that carries no fleet mark at all for the fleet's, when its tags and description match
        and every other rule holds - what versions of this collection before marks left. It is for a one-time
        clean-up; once every host has synced with a version that marks (one update per runner), turn it off again.
      - A runner marked for another fleet is never taken.
    type: bool
    default: false
  tags:
    description:
      - List only runners carrying every one of these tags (GitLab filters the list by them). The instance's name,
        which M(gitlab_runner_auth.runner.sync) adds as a tag, is a good choice. A blank tag is refused.
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
      - Only runners whose known age is at least this long, on GitLab's clock and on the controller's, are deleted -
        neither the runner nor any of its managers contacted GitLab, nor was it created (or first seen), within it.
        A duration such as C(7d), C(36h) or C(90m).
      - At least C(2h) - GitLab records a runner's last contact only every hour or so.
      - The default is GitLab's own stale window for runner managers.
    type: str
    default: 7d
  seen_file:
    description:
      - The controller's record of when it first saw each runner GitLab gives no age for (a JSON file, owner-only,
        no secret). A runner nobody has used yet is deleted only once this record is I(min_idle) old.
      - Default C($XDG_STATE_HOME/gitlab-runner-auth/prune-first-seen.json), or
        C(~/.local/state/gitlab-runner-auth/prune-first-seen.json), for the user the module runs as. Check mode
        and I(state=listed) read it and never write it.
    type: path
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
    in the project documentation, docs/operating.md, "Decommissioning and clean-up".
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
unmarked:
  description: How many runners the clean-up kept because they carry no fleet mark (see I(include_unmarked)).
  returned: always
  type: int
warnings:
  description: Runners that could not be read (they are kept), plain http, a fleet left unnamed.
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
    fleet:
      description: The fleet its mark names.
      type: str
      returned: when the runner carries a mark
    host:
      description: The host its mark names.
      type: str
      returned: when the runner carries a mark
    instance:
      description: The instance its mark names.
      type: str
      returned: when the runner carries a mark
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
      choices: [reported, host missing, gone, unreadable, other scope, details disagree, another fleet's, unmarked, age unknown,
                recent, manager seen, clocks disagree, idle]
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
