"""The release bundle's values profiles, and the check that the config names one of them."""

from __future__ import annotations

from pathlib import Path

from isobuild.config.model import BuildConfig
from isobuild.config.problems import Problems
from isobuild.config.value_checks import K8S_NAME
from isobuild.resources import FLUX_DIR

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def values_profiles(flux_dir: Path = FLUX_DIR) -> list[str]:
    """The profiles of the release bundle: ``flux/profiles/<name>/`` with a kustomization."""
    profiles = flux_dir / "profiles"
    if not profiles.is_dir():
        return []
    return sorted(
        child.name
        for child in profiles.iterdir()
        if child.is_dir() and any((child / name).is_file() for name in KUSTOMIZATION_FILES)
    )


def bundle_checks(config: BuildConfig, flux_dir: Path, problems: Problems) -> None:
    """The appliance's Flux Kustomization points at ./profiles/<values_profile> of flux/."""
    profile = config.appliance.values_profile
    if K8S_NAME(profile) is not None:
        return  # already reported
    known = values_profiles(flux_dir)
    if profile not in known:
        problems.add(
            "appliance.values_profile",
            f"{profile!r} is not a profile of the release bundle ({flux_dir / 'profiles'} "
            f"has {', '.join(known) or 'none'}); set one of those or add "
            f"profiles/{profile}/ with a kustomization",
        )
