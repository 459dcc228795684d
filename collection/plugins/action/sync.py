# -*- coding: utf-8 -*-
# Copyright (c) 2026 The gitlab-runner-auth authors
# MIT License (see LICENSE or https://opensource.org/license/mit)
# SPDX-License-Identifier: MIT
"""Action plugin for gitlab_runner_auth.runner.sync (info and prune subclass it).

The module is a Go program compiled for each supported platform and shipped
as files/sync_linux_<goarch> in the collection (not as modules, so users
cannot call a build directly). This plugin checks the task's arguments on
the controller, then runs the module through ActionBase._execute_module,
Ansible's stable path for modules: the module it names is plugins/modules/sync,
a short POSIX shell module (Ansible's WANT_JSON convention), which runs the
build for the host's platform from a cache on the host. Ansible sends the
arguments file and that script, runs it as any module (become, environment,
check mode and temporary folder included) and parses what it prints; this
plugin reads the build's result out of it. The one thing Ansible has no
public interface for, sending the build itself when the host lacks it, is
plugin_utils/staging.py.

The cache (see the collection README, "Cost on a fleet"):

* one file per build, named by its SHA-256: /var/cache/gitlab-runner-auth/
  sync-<sha256> when the task runs as root (become included), otherwise
  ${XDG_CACHE_HOME:-~/.cache}/gitlab-runner-auth/, or the folder in the
  variable gitlab_runner_auth_cache_dir;
* a cached file is run only when the folder and the file belong to the user
  the module runs as, are mode 0700, the folder's parent is not writable by
  anyone else, and the file's SHA-256 is the controller's; otherwise the
  build is sent again and replaces it;
* a steady run is one module run: the arguments file and the script go to
  the host, the cached build runs; a miss costs a second run after the build
  is sent;
* when no cache can be kept, the build sent for the task is run from the
  task's temporary folder, with a warning;
* check mode uses a cached build but never writes one: it leaves no trace;
* at -vvv, one line per task and host says which build ran and from where
  (cache hit, miss, kept, sent).

Before anything is sent, the task's arguments are checked on the controller
against the module's documented options (its DOCUMENTATION is the one
source of the argument spec) with Ansible's own ArgumentSpecValidator: an
unknown option, a wrong type or a value outside the choices fails at once,
in Ansible's wording and with the option's path. Values are converted as
Ansible's types convert them (a single string for a list, "yes" for a bool)
except that a path is never expanded here: "~" means the home folder of the
user the module runs as, on the host, so the module expands it there.

Whatever happens after the build has run, the task reports what it did: a
result Ansible could not read, or a failure in this plugin after the run,
fails the task saying so, with changed and the runners the module reported
(or, when its result is lost, that it may have changed GitLab and the
host); a temporary folder that cannot be removed is a warning, as Ansible
warns of its own (see run, _failed_after_run and cleanup). Never a plain
failure.

Redaction: the build redacts everything it prints (internal/redact, the one
redactor); this plugin shows its result as it is. See _scrub for the one
thing the plugin replaces itself.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re

import yaml

from ansible import constants as C
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.json import AnsibleJSONEncoder
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.module_utils.common.validation import check_type_str
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.gitlab_runner_auth.runner.plugins.plugin_utils.hostplatform import (
    GOARCH, SUPPORTED, SYSTEM, binary_name, goarches)
from ansible_collections.gitlab_runner_auth.runner.plugins.plugin_utils.staging import stage

display = Display()

MODULE = 'gitlab_runner_auth.runner.sync'
# plugins/modules/sync: the host side of sync, info and prune. Ansible finds
# this exact name before sync.py, which holds the documentation only.
LAUNCHER = 'gitlab_runner_auth.runner.sync'
SECRET_OPTIONS = ('personal_access_token', 'registration_token')
REDACTED = '<redacted>'
CACHE_DIR_VAR = 'gitlab_runner_auth_cache_dir'

# What the launcher prints first when it ran a build: the result follows.
RAN = ('hit', 'kept', 'sent', 'nocache')
_RAN_PREFIX = re.compile(r'\{"_gra_launch": "(%s) ([a-z0-9]+) ([0-9a-f]{64})", "_gra_result": ' % '|'.join(RAN))


def _scrub(value, secrets):
    """Replaces the exact values of the task's secret options in a text
    this plugin makes itself: an argument error (Ansible's validator may
    quote a value given to the wrong option), its own failures. Those texts
    never pass through the module, whose redactor (internal/redact) makes every
    other redacted text the user sees. This is no second redactor: it
    recognises no format and no key, so it cannot drift from internal/redact; it
    only knows the values the task handed over. The module's result is left
    as the module printed it - replacing values there would only hide a
    defect of internal/redact from the tests that look for one."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return dict((k, _scrub(v, secrets)) for k, v in value.items())
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    return value


def path(value):
    """Ansible's path type without its expansion of ~ and $VAR, which would
    happen on the controller; the module expands ~ on the host. (Named path
    so that type errors read as Ansible's do.)"""
    return check_type_str(value)


_SPECS = {}


def _spec_from_options(options):
    spec = {}
    for name, doc in options.items():
        entry = dict((k, doc[k]) for k in ('type', 'elements', 'choices', 'required', 'aliases') if k in doc)
        if entry.get('type') == 'path':
            entry['type'] = path
        if entry.get('elements') == 'path':
            entry['elements'] = path
        if name in SECRET_OPTIONS:
            entry['no_log'] = True
        if 'suboptions' in doc:
            entry['options'] = _spec_from_options(doc['suboptions'])
        spec[name] = entry
    return spec


def argument_spec(module):
    """The argument spec of a module of this collection (sync, info), read
    from its DOCUMENTATION. Defaults are left to the module, which applies
    them on the host, so that only what the task sets is sent."""
    if module not in _SPECS:
        short = module.rsplit('.', 1)[-1]
        docs = importlib.import_module('ansible_collections.gitlab_runner_auth.runner.plugins.modules.' + short)
        _SPECS[module] = _spec_from_options(yaml.safe_load(docs.DOCUMENTATION)['options'])
    return _SPECS[module]


# Options whose list elements are dicts that also take keys of their own
# besides the documented ones (an executor's keys go verbatim into its
# [[runners]] section): only the documented keys are checked.
OPEN_SUBOPTIONS = ('executors',)


def check_args(module, args):
    """Validates a task's arguments against the module's spec. Returns
    (error message or None, the arguments to send): each value the task set,
    converted by its type (paths as given), and nothing else."""
    spec = dict(argument_spec(module))
    for name in OPEN_SUBOPTIONS:
        entries = args.get(name)
        if name in spec and isinstance(entries, list):
            sub = dict(spec[name]['options'])
            for entry in entries:
                if isinstance(entry, dict):
                    for key in entry:
                        sub.setdefault(key, {'type': 'raw'})
            spec[name] = dict(spec[name], options=sub)
    result = ArgumentSpecValidator(spec).validate(args)
    if result.error_messages:
        msg = result.errors.msg
        if isinstance(result.errors[0], UnsupportedError):
            msg = 'Unsupported parameters for (%s) module: %s' % (module, msg)
        return msg, None
    return None, _as_given(spec, args, result.validated_parameters)


def _as_given(spec, given, validated):
    out = {}
    for key, value in given.items():
        entry = spec.get(key, {})
        if entry.get('type') is path or entry.get('type') == 'raw' or key not in validated:
            out[key] = value
        elif 'options' in entry and isinstance(value, list) and isinstance(validated[key], list):
            out[key] = [_as_given(entry['options'], g, v) if isinstance(g, dict) and isinstance(v, dict) else v
                        for g, v in zip(value, validated[key])]
        elif 'options' in entry and isinstance(value, dict) and isinstance(validated[key], dict):
            out[key] = _as_given(entry['options'], value, validated[key])
        else:
            out[key] = validated[key]
    return out


def _builds_dir():
    # plugins/action/sync.py -> <collection>/files
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'files')


_SUMS = {}


def _sha256(path):
    """SHA-256 of a local build, remembered for the whole ansible-playbook
    run (the worker processes share the run's local temporary folder)."""
    st = os.stat(path)
    key = '%s\0%d\0%d' % (path, st.st_size, st.st_mtime_ns)
    if key in _SUMS:
        return _SUMS[key]
    memo = os.path.join(C.DEFAULT_LOCAL_TMP, 'gitlab-runner-auth-%s.sha256'
                        % hashlib.sha256(to_bytes(key)).hexdigest()[:24])
    try:
        with open(memo) as f:
            value = f.read().strip()
        if len(value) == 64:
            _SUMS[key] = value
            return value
    except (OSError, IOError):
        pass
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    value = h.hexdigest()
    _SUMS[key] = value
    try:
        tmp = '%s.%d' % (memo, os.getpid())
        with open(tmp, 'w') as f:
            f.write(value)
        os.rename(tmp, memo)
    except (OSError, IOError):
        pass
    return value


def _launch_words(builds, keep, staged):
    """The launcher's _gra_launch value: keep or nokeep, staged when the
    build was sent, and SYSTEM/MACHINE=ARCH:SHA256 for every machine name
    uname -m may print (hostplatform.GOARCH, the one platform table)."""
    words = ['keep' if keep else 'nokeep']
    if staged:
        words.append('staged')
    for machine, arch in sorted(GOARCH.items()):
        words.append('%s/%s=%s:%s' % (SYSTEM, machine, arch, builds[arch][1] if arch in builds else ''))
    return ' '.join(words)


def _cache_dir(task_vars, templar):
    """The cache folder the inventory names ('' for the default), or an
    error naming the variable."""
    value = task_vars.get(CACHE_DIR_VAR) or ''
    if value:
        value = to_text(templar.template(value))
    # The launcher reads it out of the arguments file as a plain JSON string.
    if value and (not value.startswith('/') or not re.match(r'^[\x20-\x7e]+$', value) or '"' in value or '\\' in value):
        return None, ('%s is %r: give an absolute path of printable ASCII characters without quotes or backslashes, '
                      'or leave it unset for the default cache folder' % (CACHE_DIR_VAR, value))
    return value, None


def _read(launched):
    """What the launcher printed, as Ansible parsed it: (its state words,
    the build's result or None, a note). When Ansible could not parse the
    output, the launcher's own start is looked for in it and the build's
    result decoded from there (the note says so): a build that ran is never
    taken for one that did not."""
    state = launched.get('_gra_launch')
    if isinstance(state, str):
        result = launched.get('_gra_result')
        return state.split(), result if isinstance(result, dict) else None, None
    stdout = to_text(launched.get('module_stdout') or '')
    m = _RAN_PREFIX.search(stdout)
    if not m:
        return [], None, None
    try:
        result = json.JSONDecoder().raw_decode(stdout, m.end())[0]
    except ValueError:
        result = None
    note = ('%s: Ansible could not read the output of the module as a whole (%s); the module\'s own result was read '
            'out of it' % (MODULE, launched.get('msg') or 'no message'))
    return list(m.groups()), result if isinstance(result, dict) else None, note


class ActionModule(ActionBase):

    # The module this plugin runs; the info and prune plugins subclass this one.
    MODULE = MODULE
    # Extra arguments for the binary (the info and prune plugins name their mode).
    EXTRA_ARGS = {}

    _supports_check_mode = True
    _supports_async = False
    _inventory_hostname = ''

    @staticmethod
    def _secrets(args):
        """The values given to the task's secret options (args, vaulted
        values decrypted): in clients (sync) or at the top level (prune),
        every string of them, whatever its shape."""
        found = []

        def strings(value):
            if isinstance(value, str):
                if len(value) >= 6:
                    found.append(value)
            elif isinstance(value, dict):
                for v in value.values():
                    strings(v)
            elif isinstance(value, list):
                for v in value:
                    strings(v)

        holders = [args]
        clients = args.get('clients') or []
        if isinstance(clients, list):
            holders.extend(client for client in clients if isinstance(client, dict))
        for holder in holders:
            for key in SECRET_OPTIONS:
                strings(holder.get(key))
        return sorted(set(found), key=len, reverse=True)

    def _builds(self):
        builds = {}
        for arch in goarches():
            path = os.path.join(_builds_dir(), binary_name(arch))
            if os.path.isfile(path):
                builds[arch] = (path, _sha256(path))
        return builds

    def run(self, tmp=None, task_vars=None):
        if task_vars is None:
            task_vars = {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        self._inventory_hostname = task_vars.get('inventory_hostname', '')
        # The arguments as the module receives them (plain JSON values,
        # vaulted ones decrypted), so that messages name Python's types.
        args = json.loads(json.dumps(self._task.args, cls=AnsibleJSONEncoder, vault_to_text=True))
        secrets = self._secrets(args)
        error, args = check_args(self.MODULE, args)
        if not error:
            cache_dir, error = _cache_dir(task_vars, self._templar)
        if error:
            result.update(failed=True, msg=_scrub(error, secrets))
            return result

        launched = self._launch(task_vars, args, cache_dir)
        words, module_result, note = _read(launched)
        if not words:
            # Ansible's own failure: the launcher did not run, or printed
            # nothing of its own. No build ran.
            result.update(launched)
            return result
        if words[0] not in RAN:
            result.update(self._not_run(words))
            return result
        if module_result is None:
            result.update(self._unreadable(launched, secrets))
            return result
        try:
            result.update(self._after_run(module_result, words, cache_dir))
            if note:
                # Ansible could not read the output: the task fails, saying
                # so, with the module's own result read out of it.
                result.update(failed=True, msg=_scrub('%s. The module reported: %s' % (note, module_result.get('msg') or 'no message'), secrets))
        except Exception as e:  # pylint: disable=broad-except
            # The build has run: whatever failed here, say what it did.
            result.update(self._failed_after_run(module_result, e, secrets))
        return result

    def _launch(self, task_vars, args, cache_dir):
        """Runs the launcher, and again with the build sent when the host's
        cache lacks it. Returns what the launcher printed, as Ansible parsed
        it."""
        builds = self._builds()
        keep = not self._task.check_mode
        launched = self._execute(task_vars, args, _launch_words(builds, keep, False), cache_dir)
        words = str(launched.get('_gra_launch', '')).split()
        if words[:1] == ['miss'] and len(words) == 2 and words[1] in builds:
            stage(self, builds[words[1]][0], binary_name(words[1]))
            launched = self._execute(task_vars, args, _launch_words(builds, keep, True), cache_dir)
        return launched

    def _execute(self, task_vars, args, words, cache_dir):
        # The launcher finds these two keys at the start of the arguments
        # file: they come first, and Ansible appends its own.
        module_args = {'_gra_launch': words, '_gra_cache_dir': cache_dir}
        module_args.update(args)
        module_args.update(self.EXTRA_ARGS)
        return self._execute_module(module_name=LAUNCHER, module_args=module_args, task_vars=task_vars)

    def _host_name(self):
        return self._task.delegate_to or self._inventory_hostname

    def _after_run(self, module_result, words, cache_dir):
        """The task's result from the build's: its own keys only, a warning
        when the build could not be cached, and the -vvv line."""
        how, arch, digest = words[:3]
        # The one line per task and host at -vvv about the build.
        display.vvv('%s: module binary cache %s: %s/%s build, sha256 %s'
                    % (self.MODULE, {'hit': 'hit', 'kept': 'miss, sent and cached',
                                     'sent': 'miss, sent (check mode caches nothing)',
                                     'nocache': 'miss, sent (no private cache folder)'}[how], SYSTEM, arch, digest),
                    host=self._host_name())
        # As ActionBase._execute_module does for a module's own keys.
        out = dict((k, v) for k, v in module_result.items() if not k.startswith('_ansible_'))
        warnings = []
        if how == 'nocache':
            warnings.append(
                '%s: cannot keep the module binary in a private cache on this host (%s); it is sent on every run. '
                'Run as root or set %s to a folder only this user can write.'
                % (self.MODULE, cache_dir or 'the default folder of the user the module runs as', CACHE_DIR_VAR))
        if warnings:
            out['warnings'] = list(out.get('warnings') or []) + warnings
        return out

    def _failed_after_run(self, module_result, error, secrets):
        """The build ran and reported module_result, then this plugin failed:
        the task fails, saying so, and still reports what the build did."""
        out = dict((k, v) for k, v in module_result.items() if not k.startswith('_ansible_'))
        out['changed'] = bool(module_result.get('changed'))
        out['failed'] = True
        out['msg'] = _scrub('%s ran on the host and reported: %s. Then the action plugin failed (%s: %s); the rest of '
                            'this result is what the module did.'
                            % (self.MODULE, module_result.get('msg') or 'no message', type(error).__name__, error), secrets)
        return out

    def _unreadable(self, launched, secrets):
        """The launcher started the build but its result cannot be read."""
        msg = ('%s ran on the host but its result could not be read, so it may have changed GitLab and the host; '
               'gitlab_runner_auth.runner.info shows the instance as it is now' % self.MODULE)
        if launched.get('msg'):
            msg += '. Ansible said: %s' % launched['msg']
        out = dict(failed=True, changed=True, msg=_scrub(msg, secrets))
        for key in ('module_stdout', 'module_stderr', 'rc'):
            if key in launched:
                out[key] = launched[key]
        return out

    def _not_run(self, words):
        """What the launcher said when it ran no build."""
        what, rest = words[0], words[1:]
        if what == 'unsupported':
            return dict(failed=True, changed=False,
                        msg='%s runs on %s; this host is %s' % (self.MODULE, SUPPORTED, ' '.join(rest).replace('/', ' ')))
        if what in ('nobinary', 'miss') and rest:
            return dict(failed=True, changed=False,
                        msg=('the collection has no sync binary for %s/%s (files/%s); rebuild it with make collection'
                             % (SYSTEM, rest[0], binary_name(rest[0]))))
        return dict(failed=True, changed=False, msg='%s: unexpected answer from the host: %s' % (self.MODULE, ' '.join(words)))

    def cleanup(self, force=False):
        """Removes the task's temporary folder as ActionBase does, after the
        result is made. A failure here (the connection dropped) must not
        replace a result that says what the module changed: it becomes a
        warning."""
        try:
            super(ActionModule, self).cleanup(force)
        except Exception as e:  # pylint: disable=broad-except
            display.warning('%s: could not remove the task\'s temporary folder on %s (it holds the task\'s arguments): %s'
                            % (self.MODULE, self._host_name(), e))
