"""Checks across keys of a loaded config: settings that contradict each other."""

from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath

from isobuild.config.model import (
    AppliancePaths,
    AptFallback,
    AptMode,
    BuildConfig,
    SizingPolicy,
    StorageLayout,
    Updates,
)
from isobuild.config.problems import Problems
from isobuild.config.value_checks import dir_problem


def cross_checks(config: BuildConfig, problems: Problems) -> None:
    """Values each valid alone that contradict each other, reported at the key to change."""
    ai = config.autoinstall
    if ai.apt_mode is AptMode.OFFLINE:
        if ai.apt_fallback is not AptFallback.OFFLINE_INSTALL:
            problems.add(
                "autoinstall.apt_fallback",
                f"{ai.apt_fallback.value!r} applies only with apt_mode: online (an offline "
                "install never asks a mirror); remove it or set apt_mode: online",
            )
        if ai.updates is not Updates.SECURITY:
            problems.add(
                "autoinstall.updates",
                f"{ai.updates.value!r} needs apt_mode: online (an offline install downloads "
                "no updates); remove it or set apt_mode: online",
            )
    if ai.storage.layout is not StorageLayout.LVM and ai.storage.sizing_policy is not (
        SizingPolicy.ALL
    ):
        problems.add(
            "autoinstall.storage.sizing_policy",
            "applies only to layout: lvm (the direct layout always uses the whole disk)",
        )
    identity = config.autoinstall.identity
    if config.autoinstall.ssh.allow_pw and identity.password_hash is None:
        problems.add(
            "autoinstall.ssh.allow_pw",
            "password login over SSH is enabled but autoinstall.identity.password_hash is "
            "not set; set a hash or turn allow_pw off",
        )
    if identity.username == config.name:
        # systemd-sysusers makes the appliance's group (appliance.conf) before the first
        # boot's user creation, which then finds a group of the user's own name taken.
        problems.add(
            "autoinstall.identity.username",
            f"{identity.username!r} is also the appliance's name, which names its group "
            "(the one that may read appliance.paths.etc); choose another user name",
        )
    _distinct_paths(config.appliance.paths, problems)


def _distinct_paths(paths: AppliancePaths, problems: Problems) -> None:
    """opt, etc and state get different owners and modes: none may hold another."""
    named = [(f.name, str(getattr(paths, f.name))) for f in dataclasses.fields(paths)]
    valid = [(name, PurePosixPath(value)) for name, value in named if not dir_problem(value, "")]
    for i, (name, path) in enumerate(valid):
        for other_name, other in valid[:i]:
            if path == other:
                relation = "is also"
            elif other in path.parents:
                relation = "is inside"
            elif path in other.parents:
                relation = "holds"
            else:
                continue
            problems.add(
                f"appliance.paths.{name}",
                f"{str(path)!r} {relation} appliance.paths.{other_name} ({str(other)!r}); "
                "each needs a directory of its own (systemd-tmpfiles gives them different "
                "owners and modes)",
            )
