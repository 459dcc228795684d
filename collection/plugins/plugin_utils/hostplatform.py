# -*- coding: utf-8 -*-
# Copyright (c) 2026 The gitlab-runner-auth authors
# MIT License (see LICENSE or https://opensource.org/license/mit)
# SPDX-License-Identifier: MIT
"""Which build of the sync binary runs on a host.

The one place in the collection that maps a host's platform, as ``uname -s``
and ``uname -m`` (or the facts ``ansible_system`` and ``ansible_architecture``)
report it, to the Go platform the binaries are built for. The action plugin
and the ``goarch`` filter (for the role) both use it. The Go side keeps its own
copy for the ``architecture`` tag (internal/tags/tags.go).
"""

from __future__ import annotations

# uname -m / ansible_architecture -> GOARCH (one binary files/sync_linux_<GOARCH> each)
GOARCH = {
    'x86_64': 'amd64',
    'amd64': 'amd64',
    'aarch64': 'arm64',
    'arm64': 'arm64',
    'ppc64le': 'ppc64le',
}

SYSTEM = 'linux'

SUPPORTED = 'Linux hosts with amd64 (x86_64), arm64 (aarch64) or ppc64le'


def goarch(machine, system=SYSTEM):
    """GOARCH of the build for this machine, or '' when there is none."""
    if not isinstance(machine, str) or not isinstance(system, str):
        return ''
    if system.strip().lower() != SYSTEM:
        return ''
    return GOARCH.get(machine.strip().lower(), '')


def goarches():
    """Every GOARCH a binary is built for, sorted."""
    return sorted(set(GOARCH.values()))


def binary_name(arch):
    """File name of the binary for a GOARCH, under the collection's files/."""
    return 'sync_%s_%s' % (SYSTEM, arch)
