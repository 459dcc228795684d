# -*- coding: utf-8 -*-
# Copyright (c) 2026 The gitlab-runner-auth authors
# MIT License (see LICENSE or https://opensource.org/license/mit)
# SPDX-License-Identifier: MIT
"""Action plugin for gitlab_runner_auth.runner.sync.

The module is a Go program compiled for each supported platform and shipped
as files/sync_linux_<goarch> in the collection (not as modules, so users cannot
call a build directly). This plugin runs the build for the host, keeping it
in a cache on the host so that later runs send only the arguments, and scrubs
the secrets given in the task arguments from whatever comes back.

The cache (see the collection README, "Cost on a fleet"):

* one file per build, named by its SHA-256: /var/cache/gitlab-runner-auth/
  sync-<sha256> when the task runs as root (become included), otherwise
  ${XDG_CACHE_HOME:-~/.cache}/gitlab-runner-auth/, or the folder in the
  variable gitlab_runner_auth_cache_dir;
* a cached file is run only when the folder and the file belong to the user
  the module runs as, are mode 0700, the folder's parent is not writable by
  anyone else, and the file's SHA-256 is the controller's; otherwise the
  build is sent again and replaces it;
* one remote command checks the cache and runs the binary with the
  arguments file (the binary's module mode: one positional argument, one
  JSON object printed); a miss costs a second command after the transfer;
* when no cache can be kept, the build sent for the task is run from the
  task's temporary folder, as Ansible runs binary modules, with a warning;
* check mode uses a cached build but never writes one: it leaves no trace.

Before anything is sent, the task's arguments are checked on the controller
against the module's documented options (its DOCUMENTATION is the one
source of the argument spec) with Ansible's own ArgumentSpecValidator: an
unknown option, a wrong type or a value outside the choices fails at once,
in Ansible's wording and with the option's path. Values are converted as
Ansible's types convert them (a single string for a list, "yes" for a bool)
except that a path is never expanded here: "~" means the home folder of the
user the module runs as, on the host, so the module expands it there.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shlex

import yaml

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.json import AnsibleJSONEncoder
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.module_utils.common.validation import check_type_str
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase
from ansible.utils.unsafe_proxy import wrap_var
from ansible.vars.clean import remove_internal_keys

from ansible_collections.gitlab_runner_auth.runner.plugins.plugin_utils.hostplatform import (
    GOARCH, SUPPORTED, SYSTEM, binary_name, goarches)
from ansible_collections.gitlab_runner_auth.runner.plugins.plugin_utils.redact import scrub_diff

MODULE = 'gitlab_runner_auth.runner.sync'
SECRET_OPTIONS = ('personal_access_token', 'registration_token')
REDACTED = '<redacted>'
CACHE_DIR_VAR = 'gitlab_runner_auth_cache_dir'

# The first word of every line the remote script prints instead of the
# module's JSON; the module itself prints nothing but one JSON object.
MARKER = '__gitlab_runner_auth_sync__'

# The script has no single quote, so that nested quoting (become) stays
# short. Positional parameters: $1 cache folder ('' for the default), $2 arguments
# file, $3 the build sent with this task ('' when none was sent), $4 'keep'
# to keep that build in the cache ('' in check mode, which leaves no trace). The
# platform table is generated from hostplatform.GOARCH (see _script).
SCRIPT = r'''set -u
M=%(marker)s
p=$(uname -s -m 2>/dev/null | tr A-Z a-z)
case "$p" in
%(cases)s
*) echo "$M unsupported $p"; exit 0;;
esac
[ -n "$sum" ] || { echo "$M nobinary $arch"; exit 0; }
uid=$(id -u)
dir=${1%%/}
if [ -z "$dir" ]; then
  if [ "$uid" = 0 ]; then dir=/var/cache/gitlab-runner-auth
  elif [ -n "${HOME:-}" ]; then dir=${XDG_CACHE_HOME:-$HOME/.cache}/gitlab-runner-auth
  fi
fi
case "$dir" in /?*) ;; *) dir= ;; esac
bin=$dir/sync-$sum
# Owned by the user the module runs as, exactly this mode, not a link.
mine() { [ ! -L "$1" ] && [ "$(stat -c "%%u %%a" -- "$1" 2>/dev/null)" = "$uid $2" ]; }
# Nobody else may rename or replace entries of the parent of the cache.
sealed() {
  set -- $(stat -L -c "%%u %%a" -- "$1" 2>/dev/null)
  [ $# = 2 ] && { [ "$1" = 0 ] || [ "$1" = "$uid" ]; } && [ $(( 0$2 & 022 )) = 0 ]
}
trusted() {
  mine "$dir" 700 && sealed "${dir%%/*}/" && [ -f "$bin" ] && mine "$bin" 700 &&
  [ "$(sha256sum < "$bin" | cut -d" " -f1)" = "$sum" ]
}
if [ -n "$dir" ] && trusted; then exec "$bin" "$2"; fi
[ -n "$3" ] || { echo "$M miss $arch"; exit 0; }
[ "$4" = keep ] || exec "$3" "$2"
if [ -n "$dir" ]; then
  (umask 077; mkdir -p -- "$dir") 2>/dev/null
  if mine "$dir" 700 && sealed "${dir%%/*}/"; then
    t=$dir/.sync-$sum.$$
    if cp -- "$3" "$t" 2>/dev/null && chmod 0700 -- "$t" && mv -f -- "$t" "$bin" && trusted; then
      for f in "$dir"/sync-*; do [ "$f" = "$bin" ] || rm -f -- "$f"; done
      exec "$bin" "$2"
    fi
    rm -f -- "$t"
  fi
fi
echo "$M nocache ${dir:-no-folder}" >&2
exec "$3" "$2"
'''


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


def _script(sums):
    by_arch = {}
    for machine, arch in sorted(GOARCH.items()):
        by_arch.setdefault(arch, []).append('"%s %s"' % (SYSTEM, machine))
    cases = []
    for arch in goarches():
        cases.append('%s) arch=%s sum=%s;;' % ('|'.join(by_arch[arch]), arch, sums.get(arch, '')))
    script = SCRIPT % dict(marker=MARKER, cases='\n'.join(cases))
    # Comments and indentation are for readers of this file, not for the wire.
    return '\n'.join(line.strip() for line in script.splitlines() if not line.lstrip().startswith('#'))


class ActionModule(ActionBase):

    # The module this plugin runs; the info plugin subclasses this one.
    MODULE = MODULE
    # Extra arguments for the binary (the info plugin names its mode).
    EXTRA_ARGS = {}

    _supports_check_mode = True
    _supports_async = False

    def _secrets(self):
        """The tokens given in the task: in clients (sync) or at the top
        level (prune)."""
        found = []
        holders = [self._task.args]
        clients = self._task.args.get('clients') or []
        if isinstance(clients, list):
            holders.extend(client for client in clients if isinstance(client, dict))
        for holder in holders:
            for key in SECRET_OPTIONS:
                value = holder.get(key)
                if isinstance(value, str) and len(value) >= 6:
                    found.append(value)
        return sorted(set(found), key=len, reverse=True)

    def _builds(self):
        builds = {}
        for arch in goarches():
            path = os.path.join(_builds_dir(), binary_name(arch))
            if os.path.isfile(path):
                builds[arch] = (path, _sha256(path))
        return builds

    def _run_script(self, script, cache_dir, args_path, staged, keep=''):
        cmd = ' '.join(shlex.quote(x) for x in ['/bin/sh', '-c', script, 'sh', cache_dir, args_path, staged, keep])
        env = self._compute_environment_string().strip()
        if env:
            cmd = env + ' ' + cmd
        return self._low_level_execute_command(cmd, sudoable=True)

    @staticmethod
    def _marker(res):
        for line in to_text(res.get('stdout', '')).splitlines():
            words = line.split()
            if words and words[0] == MARKER:
                return words[1:]
        return None

    def run(self, tmp=None, task_vars=None):
        if task_vars is None:
            task_vars = {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        secrets = self._secrets()
        # The arguments as the module receives them (plain JSON values,
        # vaulted ones decrypted), so that messages name Python's types.
        args = json.loads(json.dumps(self._task.args, cls=AnsibleJSONEncoder, vault_to_text=True))
        error, args = check_args(self.MODULE, args)
        if error:
            result.update(failed=True, msg=_scrub(error, secrets))
            return result
        try:
            module_result = self._run_module(task_vars, args)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        # The module never returns a secret; this is the second line of defence.
        # As with any module's result, nothing in it is ever templated.
        if 'diff' in module_result:
            module_result['diff'] = scrub_diff(module_result['diff'])
        result.update(wrap_var(_scrub(module_result, secrets)))
        return result

    def _run_module(self, task_vars, args):
        builds = self._builds()
        script = _script(dict((arch, b[1]) for arch, b in builds.items()))
        cache_dir = task_vars.get(CACHE_DIR_VAR) or ''
        if cache_dir:
            cache_dir = to_text(self._templar.template(cache_dir))

        module_args = dict(args)
        module_args.update(self.EXTRA_ARGS)
        self._update_module_args(self.MODULE, module_args, task_vars)
        tmpdir = self._connection._shell.tmpdir or self._make_tmp_path()
        args_path = self._connection._shell.join_path(tmpdir, 'args')
        self._transfer_data(args_path, json.dumps(module_args))
        self._fixup_perms2([tmpdir, args_path], execute=False)

        res = self._run_script(script, cache_dir, args_path, '')
        marker = self._marker(res)
        warning = None
        if marker and marker[0] == 'miss' and len(marker) == 2 and marker[1] in builds:
            staged = self._connection._shell.join_path(tmpdir, binary_name(marker[1]))
            self._transfer_file(builds[marker[1]][0], staged)
            self._fixup_perms2([tmpdir, staged])
            # Check mode changes nothing on the host, the cache included.
            res = self._run_script(script, cache_dir, args_path, staged, '' if self._task.check_mode else 'keep')
            marker = self._marker(res)
            for line in to_text(res.get('stderr', '')).splitlines():
                words = line.split()
                if words and words[0] == MARKER and words[1:2] == ['nocache']:
                    warning = ('%s: cannot keep the module binary in a private cache on this host (%s); it is '
                               'sent on every run. Run as root or set %s to a folder only this user can write.'
                               % (MODULE, ' '.join(words[2:]), CACHE_DIR_VAR))
        if marker:
            return self._marker_result(marker)

        data = self._parse_returned_data(res)
        # As ActionBase._execute_module: no internal keys from the module.
        remove_internal_keys(data)
        if warning:
            data.setdefault('warnings', []).append(warning)
        return data

    @staticmethod
    def _marker_result(marker):
        what, rest = marker[0], ' '.join(marker[1:])
        if what == 'unsupported':
            return dict(failed=True, msg='%s runs on %s; this host is %s' % (MODULE, SUPPORTED, rest))
        if what in ('nobinary', 'miss'):
            return dict(failed=True, msg=('the collection has no sync binary for %s/%s (files/%s); rebuild it with '
                                          'make collection' % (SYSTEM, rest, binary_name(rest))))
        raise AnsibleError('%s: unexpected answer from the host: %s' % (MODULE, ' '.join(marker)))
