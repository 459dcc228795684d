#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 The gitlab-runner-auth authors
# MIT License (see LICENSE or https://opensource.org/license/mit)
# SPDX-License-Identifier: MIT

# The module is a Go program (files/sync_linux_<goarch>) that the action plugin
# plugins/action/sync.py runs on the host; this file carries its
# documentation only.

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: sync
short_description: Keep a gitlab-runner service instance registered with GitLab
version_added: 1.0.0
author:
  - The gitlab-runner-auth authors (@gitlab-runner-auth)
description:
  - Registers exactly the executors declared for one gitlab-runner service instance, keeps the runner
    tokens that still work, heals rejected tokens (adopting the existing runner, or replacing it when it
    is gone), updates server-side settings that drifted, deletes runners of this host and instance that
    are no longer declared, and writes C(config.<instance>.toml) for gitlab-runner.
  - Runs the same engine as the C(register-runner) command that systemd runs before C(gitlab-runner)
    starts, so a later C(systemctl restart) reproduces the same result without any GitLab change.
  - When C(global), C(clients) and C(executors) are given, the module writes the template
    C(config.template.<instance>.toml) and exactly those executor files (removing undeclared ones).
    When they are omitted it syncs from the files already on the host.
  - A steady-state run costs GitLab one request per executor (C(POST /runners/verify)) and nothing else.
  - Secrets (personal access tokens, registration tokens, runner tokens) never appear in the result,
    in diffs (shown as C(<redacted>)) or in error messages.
  - The module is a Go program; an action plugin runs the binary built for the host's platform
    (Linux on amd64, arm64 or ppc64le) from a cache on the host (see the notes).
  - The host needs C(sh), C(uname), C(id), C(stat), C(sha256sum) and C(cp) (coreutils or busybox); no Python.
  - A task is all or nothing on the host. Every option and the content of every file it would write are
    validated by the engine before the disk is touched; when the run fails afterwards the template and
    executor files it wrote are put back byte for byte, so the next C(register-runner) (systemd's
    C(ExecStartPre)) still sees what worked before.
options:
  prefix:
    description:
      - Folder holding the template, the executor folders and the generated configs. Must be owner-only
        (mode 0700); the module creates it with that mode when it writes files.
      - An absolute path on the host; C(~) or C(~/...) is expanded on the host to the home folder of the user
        the module runs as (the become user, if any). Anything else (a relative path, C(~user/)) is refused.
    type: path
    default: /etc/gitlab-runner
  instance:
    description:
      - Service instance name (C(gitlab-runner@<instance>)). Selects C(config.template.<instance>.toml),
        the executor folder C(<instance>/) and the output C(config.<instance>.toml).
      - Must differ from the host name and from the host name without digits.
      - Letters, digits, C(.), C(_) and C(-) only; a name that could leave the prefix (C(x/../y)) is refused
        before anything is read or written.
    type: str
    default: main
  state:
    description:
      - C(present) registers and syncs the declared executors.
      - C(absent) deletes this instance's runners in GitLab (those in its config and, with a personal
        access token, those GitLab lists with this host's identity), then removes everything the instance
        has under the prefix - template (it holds the personal access token), executor files and folder,
        generated config, state file and marker - so no secret remains and nothing is registered again.
        A later C(register-runner) for this instance (a restart of C(gitlab-runner@<instance>)) fails with
        exit code 2, "template does not exist", and registers nothing; disable the service too.
      - When a runner cannot be deleted the task fails and the template stays, so that it can be run again.
      - Give C(clients) with C(absent) when the template is already gone but runners remain in GitLab.
    type: str
    choices: [present, absent]
    default: present
  global:
    description:
      - gitlab-runner global settings (C(concurrent), C(check_interval), C(log_level), C(session_server), ...),
        written into the template and copied verbatim into the generated config.
      - Must not contain C(runners) or C(client_configs).
    type: dict
  clients:
    description:
      - GitLab instances, written as C(client_configs) into the template. Executors select theirs by URL.
      - Required together with C(executors).
    type: list
    elements: dict
    suboptions:
      url:
        description: GitLab base URL, for example C(https://gitlab.example.com).
        type: str
        required: true
      personal_access_token:
        description:
          - Personal access token sent as C(PRIVATE-TOKEN). Give it the scopes C(create_runner), C(manage_runner)
            and C(read_api), or just C(api). C(create_runner) creates runners; C(manage_runner) updates, resets
            and deletes them by id; C(read_api) lists them (C(manage_runner) alone cannot list, and without
            listing a lost config is not recovered). Instance runners need an administrator's token (with Admin
            Mode on, also the C(admin_mode) scope).
          - Never shown in results or diffs. Use Ansible Vault, and C(no_log) on tasks that template it.
        type: str
      personal_access_token_file:
        description:
          - Path on the managed host of a file holding the personal access token (owner-only, mode 0600 or
            stricter; relative paths are relative to C(prefix), C(~/...) is the home folder of the user the
            module runs as). The token then never leaves the host and never passes through Ansible. Instead of
            C(clients[].personal_access_token).
        type: path
      registration_token:
        description:
          - Legacy runner registration token, used when no personal access token is given or it lacks
            C(create_runner). GitLab 17 and later disable registration tokens by default (HTTP 410).
          - Never shown in results or diffs.
        type: str
      registration_token_file:
        description:
          - Path on the managed host of a file holding the registration token (owner-only; relative to C(prefix)
            unless absolute or C(~/...)). Instead of C(clients[].registration_token).
        type: path
      runner_type:
        description: Scope of new runners.
        type: str
        choices: [instance_type, group_type, project_type]
        default: instance_type
      group_id:
        description: Group of new runners; required with C(clients[].runner_type=group_type) unless C(clients[].group) is given.
        type: int
      group:
        description:
          - Full path of the group of new runners (for example C(ops/ci)), looked up with the personal access
            token (C(GET /groups/:id)) and written as C(group_id). Mutually exclusive with C(clients[].group_id).
        type: str
      project_id:
        description: Project of new runners; required with C(clients[].runner_type=project_type) unless C(clients[].project) is given.
        type: int
      project:
        description:
          - Full path of the project of new runners (for example C(ops/ci/app)), looked up with the personal
            access token (C(GET /projects/:id)) and written as C(project_id). Mutually exclusive with C(clients[].project_id).
        type: str
      tls_ca_file:
        description:
          - PEM CA bundle on the host trusted for this GitLab in addition to the system roots (relative to C(prefix) unless
            absolute or C(~/...)). TLS verification is never switched off.
        type: path
      fleet:
        description:
          - The fleet of this host's runners on this GitLab, when it differs from the task's C(fleet) (see there).
        type: str
  executors:
    description:
      - Executors of this instance, one file C(<instance>/<name>.toml) each. Required together with C(clients).
      - Besides the keys below, every key (C(shell), C(builds_dir), C(environment), C(docker), C(custom),
        C(cache), ...) goes verbatim into the executor's C([[runners]]) section.
    type: list
    elements: dict
    suboptions:
      name:
        description: The executor's name and identity (the file name); letters, digits, C(.), C(_), C(+), C(-), no C(/).
        type: str
        required: true
      url:
        description: GitLab URL selecting one of C(clients).
        type: str
        required: true
      executor:
        description: gitlab-runner executor type. Defaults to C(executors[].name) when that is an executor type.
        type: str
      tags:
        description:
          - Extra static tags. Every runner is also tagged with the host name, the host name without digits, the
            instance, the executor type, the architecture and, for C(batch) and C(custom) executors, the batch
            scheduler, unless I(omit_auto_tags) switches a family off.
          - "As for any list option, a single string is a list of one (C(tags: bash)) or, with commas, of several."
        type: list
        elements: str
      env_tags:
        description: Names of environment variables (of the module's process) whose values become tags.
        type: list
        elements: str
      description:
        description: Runner description.
        type: str
        default: "<hostname> <instance> <name> Runner"
      run_untagged:
        description: Whether the runner picks up untagged jobs.
        type: bool
        default: false
      locked:
        description: Lock the runner to its current projects.
        type: bool
        default: false
      paused:
        description: Pause the runner.
        type: bool
        default: false
      access_level:
        description: Whether the runner takes jobs of any ref or only of protected branches and tags.
        type: str
        choices: [not_protected, ref_protected]
        default: not_protected
      maximum_timeout:
        description: Maximum job timeout in seconds (at least 600).
        type: int
      maintenance_note:
        description: Free-form maintenance note (at most 1024 characters).
        type: str
      runner_type:
        description: Overrides the client's C(clients[].runner_type).
        type: str
        choices: [instance_type, group_type, project_type]
      group_id:
        description: Overrides the client's C(clients[].group_id).
        type: int
      project_id:
        description: Overrides the client's C(clients[].project_id).
        type: int
  tag_schema:
    description:
      - JSON Schema file on the host. Each executor's tag properties (C(hostname), C(instance),
        C(executor_type), C(env), C(architecture), C(scheduler) and the capture program's properties) must
        satisfy it before anything is sent to GitLab.
      - C(~/...) is the home folder of the user the module runs as, on the host.
    type: path
  capture_tags:
    description:
      - Program on the host run with the executor name and type; it prints a JSON object whose values
        (strings or lists of strings) become tags.
      - C(~/...) is the home folder of the user the module runs as, on the host.
    type: path
  omit_auto_tags:
    description:
      - Automatic tag families not to add to the runners. By default every family is added.
      - C(hostname) (C(node12)), C(digitless_hostname) (C(node), the host name without its digits, which
        C(node1), C(node2), ... share), C(instance) (C(main)), C(executor_type) (C(shell)), C(architecture)
        (C(x86_64), as C(uname -m) prints it), C(scheduler) (C(slurm), C(lsf) or C(flux), for C(batch) and C(custom)
        executors).
      - Omitted families leave the runners' tags in GitLab at the next run; static tags, C(env_tags) and
        I(capture_tags) are never omitted, and the tag schema's properties stay as they are.
      - GitLab lists this host's runners by its C(hostname) and C(instance) tags when the module looks for one to
        adopt or remove; without either, it lists every runner of the client's scope and matches descriptions.
      - Give the service role the same families (C(gitlab_runner_auth_omit_auto_tags)), or its
        C(register-runner) puts them back at the next restart.
    type: list
    elements: str
    choices: [hostname, digitless_hostname, instance, executor_type, architecture, scheduler]
    default: []
  refresh:
    description: Read every runner from GitLab (C(GET /runners/:id)) to catch settings changed by hand in the UI. Needs a personal access token.
    type: bool
    default: false
  ignore_cleanup_errors:
    description:
      - A runner to remove (its executor is no longer declared, or a new runner replaced it) leaves the config in any
        case, so gitlab-runner stops using it; when GitLab does not confirm its removal (no answer, 5xx, a wait longer
        than I(timeout)), the removal is recorded in the state file and retried by every later run.
      - By default such a removal fails the task (C(runners[].pending) names it); C(true) makes it a warning.
    type: bool
    default: false
  hostname:
    description: Host name used in tags and descriptions. Defaults to the host's name, short form.
    type: str
  fleet:
    description:
      - The fleet this host's runners belong to. Every runner the module creates or keeps carries, in GitLab, a mark
        naming this fleet, the host and the instance (the last line of its C(maintenance_note)); the fleet's
        M(gitlab_runner_auth.runner.prune) deletes only runners that carry its own fleet's mark.
      - When C(clients) is given, it is written into each client entry of the template that names no fleet of its
        own, so that the service's own starts mark runners for the same fleet.
      - Defaults to the template's C(client_configs[].fleet), else C(default). Name the fleet when another team's
        fleet shares the GitLab.
      - Letters, digits, C(.), C(_) and C(-), at most 63 characters.
    type: str
  concurrency:
    description: GitLab requests in parallel.
    type: int
    default: 16
  timeout:
    description: Bound on the whole run, as a duration (C(90s), C(5m)) or a number of seconds.
    type: str
    default: 5m
  lock_timeout:
    description: How long to wait for another run on the same instance (a C(register-runner) started by systemd).
    type: str
    default: 120s
  request_timeout:
    description: Timeout of one HTTP request to GitLab (retries are bounded by C(timeout)).
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
    description: Builds the plan with read-only requests only; no mutating request to GitLab and no file is written. C(changed) is the plan's verdict.
  diff_mode:
    support: full
    description:
      - Before and after of C(config.<instance>.toml) and of the template and executor files it manages.
        The value of every key holding a token is shown as C(<redacted>), whatever its value - a token
        rotated out and no longer in the task's options included.
      - GitLab-side settings an update changes, as their own entry (C(GitLab runner <name> (id <id>))).
  platform:
    platforms: posix
    support: full
    description: Linux on amd64, arm64 and ppc64le.
notes:
  - The task's options are checked on the controller against this documentation before anything is sent to the
    host - unknown options, wrong types and values outside the choices fail at once, in Ansible's wording. The
    keys of C(executors) entries other than those documented here go verbatim into the runner's section and are
    checked by the module on the host.
  - The module is idempotent - a second run with the same options reports C(changed=false) and makes one
    C(POST /runners/verify) request per executor.
  - Runs are serialised per prefix and instance with an advisory lock shared with C(register-runner).
  - An executor no longer declared leaves C(config.<instance>.toml) first, so it stops taking jobs at once; its runner
    is deleted in GitLab in the same task, by the run's second pass (C(passes)), but only after every
    C(gitlab-runner run) process running that config (found by its command line's C(--config), or C(CONFIG_FILE), on
    the host) has been sent C(SIGHUP) and given 2 seconds to take the new config. gitlab-runner therefore never asks
    for jobs with a token GitLab no longer knows (no 403, no C(Checking for jobs... forbidden) in its log). When no
    gitlab-runner runs the config, the second pass follows at once.
    Only a process whose executable is gitlab-runner (C(gitlab-runner), C(gitlab-ci-multi-runner), or those names
    followed by C(-), C(_) or C(.) and a version or platform, C(gitlab-runner-helper) excepted) is ever signalled.
  - The first run on a host sends the binary (8-9 MB) and keeps it in a cache on the host,
    C(/var/cache/gitlab-runner-auth/sync-<sha256>) when the module runs as root, otherwise
    C(~/.cache/gitlab-runner-auth/), or the folder in the variable C(gitlab_runner_auth_cache_dir).
    Later runs send only the arguments (a few kilobytes). A cached binary is run only when the folder
    and the file belong to the user the module runs as, are mode 0700, and the file's SHA-256 matches
    the controller's build; otherwise it is sent again. Where no such cache can be kept, the binary is
    sent for every run and the task warns. Check mode uses the cache but never writes to it.
seealso:
  - name: GitLab runners API
    description: The endpoints the module uses.
    link: https://docs.gitlab.com/api/runners/
  - name: Runner creation workflow
    description: Why a personal access token with C(create_runner) replaces registration tokens.
    link: https://docs.gitlab.com/ci/runners/new_creation_workflow/
'''

EXAMPLES = r'''
- name: Register this host's executors
  gitlab_runner_auth.runner.sync:
    instance: main
    global:
      concurrent: 4
      check_interval: 0
    clients:
      - url: https://gitlab.example.com
        personal_access_token: "{{ vault_gitlab_runner_pat }}"
    executors:
      - name: shell
        url: https://gitlab.example.com
        tags: [bash]
        builds_dir: /var/lib/gitlab-runner/builds
      - name: docker
        url: https://gitlab.example.com
        executor: docker
        docker:
          image: alpine:3.20
          privileged: false
  no_log: false  # the module never returns secrets

- name: Sync from the files already on the host (what systemd does on restart)
  gitlab_runner_auth.runner.sync:
    instance: gpu

- name: Group runners on an internal GitLab with its own CA
  gitlab_runner_auth.runner.sync:
    instance: batch
    clients:
      - url: https://gitlab.internal
        personal_access_token: "{{ vault_group_owner_pat }}"
        runner_type: group_type
        group_id: 42
        tls_ca_file: /etc/pki/tls/certs/internal-ca.pem
    executors:
      - name: slurm
        url: https://gitlab.internal
        executor: custom
        custom:
          run_exec: /opt/jacamar/bin/jacamar

- name: Tokens kept in files on the host, group given by its path
  gitlab_runner_auth.runner.sync:
    instance: ci
    timeout: 10m
    clients:
      - url: https://gitlab.example.com
        personal_access_token_file: /etc/gitlab-runner/secrets/pat
        runner_type: group_type
        group: ops/ci
    executors:
      - name: shell
        url: https://gitlab.example.com

- name: Token from Ansible Vault, task output hidden from logs
  gitlab_runner_auth.runner.sync:
    clients:
      - url: https://gitlab.example.com
        personal_access_token: "{{ vault_gitlab_runner_pat }}"
    executors:
      - name: shell
        url: https://gitlab.example.com
  no_log: true

- name: Show what would change
  gitlab_runner_auth.runner.sync:
    instance: main
  check_mode: true
  diff: true

- name: Remove this instance - its runners in GitLab and its files on the host
  gitlab_runner_auth.runner.sync:
    instance: old
    state: absent
'''

RETURN = r'''
changed:
  description: Whether GitLab or the host's files changed (check mode - would change).
  returned: always
  type: bool
msg:
  description: Summary of the run, for example C(2 created, 1 kept).
  returned: always
  type: str
  sample: 1 created, 2 kept
config_path:
  description: Path of the generated gitlab-runner config.
  returned: always
  type: str
  sample: /etc/gitlab-runner/config.main.toml
check:
  description:
    - Whether this was a check-mode run (C(changed), C(config_changed) and C(runners) are then the plan of the run's
      first pass; C(next_pass) says what a second pass would do).
  returned: when the sync ran (not when an option or a file was refused first)
  type: bool
  sample: false
config_changed:
  description: Whether C(config.<instance>.toml) changed (check mode - would change).
  returned: when the sync ran (not when an option or a file was refused first)
  type: bool
  sample: true
config_removed:
  description: C(state=absent) removed the generated config.
  returned: when true
  type: bool
  sample: true
degraded:
  description:
    - GitLab could not be reached, but every declared executor had a token on disk and nothing needed GitLab
      (nothing to create, adopt or delete), so the run kept those tokens unverified and succeeded with a warning.
      gitlab-runner retries GitLab by itself.
  returned: when true
  type: bool
  sample: true
passes:
  description:
    - How many passes the run made. Each pass reads GitLab afresh, decides and carries out exactly what it decided. A
      steady state is one pass. A runner whose token works and that leaves the config (an executor no longer
      declared, a runner replaced) is deleted by a second pass, once gitlab-runner has taken the config without it; a
      run after an interrupted one that obtained tokens makes a second pass too. At most 3.
  returned: when the sync ran, except in check mode
  type: int
  sample: 2
next_pass:
  description:
    - In check mode, what the run's second pass would do - the removals the first pass would leave to it.
  returned: in check mode, when the first pass would leave removals to a second
  type: str
  sample: a second pass deletes runners 12, 14 once gitlab-runner has taken the config without them
runners:
  description:
    - One entry per runner the run dealt with, as the first pass planned it, with what finally became of it (a removal
      left to the second pass has that pass's outcome).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Executor name.
      type: str
      sample: shell
    id:
      description: GitLab runner id (0 when not known yet, for example a create in check mode).
      type: int
      sample: 12
    url:
      description: GitLab URL.
      type: str
      sample: https://gitlab.example.com
    executor:
      description: Executor type (for a delete, the one the runner had in the config).
      type: str
      sample: shell
    action:
      description: What was (or in check mode would be) done.
      type: str
      choices: [keep, create, adopt, replace, update, delete, detach, forget]
      sample: keep
    reason:
      description: Why.
      type: str
      returned: when the action is not keep
    error:
      description: The error, when this runner's action failed.
      type: str
      returned: on failure
    pending:
      description:
        - A removal GitLab did not confirm. The entry has left the config; the state file records the removal and
          later runs retry it.
      type: bool
      returned: when true
    deferred:
      description:
        - A removal the first pass left to a second pass (the entry has left the config), which did not run - the run
          ended first. The state file records the removal and the next run makes it. When the second pass ran, the
          entry has that pass's outcome instead (C(error) and C(pending) when it failed).
      type: bool
      returned: when true
    last_good:
      description:
        - The entry is the last good one of an executor whose file on the host is invalid (see C(skipped)) - kept as
          it was (C(keep)), its token verified, or taken out of the config (C(forget)) because GitLab rejected its token.
      type: bool
      returned: when true
    description:
      description: The runner's description in GitLab (computed from the declaration).
      type: str
      returned: except for deletes
      sample: node12 main shell Runner
    tags:
      description: The runner's tags in GitLab, computed (static, host, instance, executor, environment, capture).
      type: list
      elements: str
      returned: except for deletes
      sample: [bash, linux, main, node, node12, shell, x86_64]
    settings_before:
      description: GitLab-side settings before an update, when known.
      type: dict
      returned: for updates
    settings_after:
      description: GitLab-side settings an update sets.
      type: dict
      returned: for updates
left_behind:
  description:
    - Runners with this host's identity (or in its files) the run left alone - nothing proves they are this host's, or
      another host uses them - for an administrator or M(gitlab_runner_auth.runner.prune).
  returned: when any
  type: list
  elements: dict
  contains:
    id:
      description: GitLab runner id.
      type: int
    url:
      description: GitLab URL.
      type: str
    description:
      description: Its description in GitLab.
      type: str
    last_contact:
      description: Its last contact with GitLab (RFC 3339), when known.
      type: str
    why:
      description: Why it was left alone.
      type: str
reload:
  description:
    - How the running gitlab-runner was made to take the new config before runners that left it were deleted.
  returned: when a gitlab-runner runs this config and runners left it
  type: dict
  contains:
    pids:
      description: The gitlab-runner processes sent C(SIGHUP).
      type: list
      elements: int
      sample: [2395]
    waited:
      description: How long the removals then waited for gitlab-runner to take the config (a Go duration).
      type: str
      sample: 2s
skipped:
  description:
    - Declared executors the run did not serve and why. The task fails for them (an invalid file, GitLab unreachable
      while a new executor needs it); the C(register-runner) service start skips them and starts the others.
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
      description: Why.
      type: str
      choices: [invalid, needs GitLab, registration failed, no space on disk]
    cause:
      description: The error.
      type: str
    fix:
      description: What to do, when known.
      type: str
    kept:
      description:
        - Whether its last good entry stays in the config (false when it had none, or when GitLab rejected its token).
      type: bool
    since:
      description: When runs started skipping it (RFC 3339).
      type: str
diff:
  description: Before and after of the generated config and the managed files, secrets redacted.
  returned: in diff mode
  type: list
  elements: dict
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
warnings:
  description: Problems that did not stop the run (for example a token that may not list runners).
  returned: when there are any
  type: list
  elements: str
'''
