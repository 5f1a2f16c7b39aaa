"""The build config: frozen dataclasses loaded and validated once from YAML.

Every other module imports from here. Inside: ``model`` (the dataclasses, enums and
defaults, each field's checks; ``to_mapping``), ``value_checks`` (checks of single values),
``ssh_keys`` (authorized_keys lines), ``yaml_source`` (YAML with duplicate keys found and
numbers kept as written), ``conversion`` (YAML into the dataclasses), ``problems`` (every
problem at once), ``cross_checks`` (keys that contradict each other), ``values_profiles``
(the release bundle's profiles), ``local_files`` (files the config names) and ``loading``
(``parse_config``, ``load_config``); ``message_values`` words values in messages.
"""

from __future__ import annotations

from isobuild.config.loading import load_config, parse_config
from isobuild.config.local_files import LOCK_FILE, SIGNING_KEY
from isobuild.config.model import (
    ApplianceConfig,
    AppliancePaths,
    AptFallback,
    AptMode,
    AutoinstallConfig,
    BuildConfig,
    DiskMatch,
    DiskSize,
    GrubConfig,
    HostServiceConfig,
    IdentityConfig,
    InteractiveSection,
    IsoConfig,
    K3sComponent,
    K3sConfig,
    Namespaces,
    PayloadConfig,
    RegistryConfig,
    Shutdown,
    SigningConfig,
    SizingPolicy,
    SshConfig,
    StorageConfig,
    StorageLayout,
    Updates,
    to_mapping,
    volume_id_for,
)
from isobuild.config.ssh_keys import SSH_KEY_TYPES
from isobuild.config.value_checks import (
    FILE_MODE,
    HOSTNAME,
    K8S_NAME,
    LOCALE,
    NAME,
    REALNAME_MAX,
    REPOSITORY,
    USERNAME,
    VERSION,
    VOLUME_ID,
    Check,
)
from isobuild.config.values_profiles import KUSTOMIZATION_FILES, values_profiles
from isobuild.config.yaml_source import DuplicateKey, load_yaml, yaml_error

__all__ = [
    "FILE_MODE",
    "HOSTNAME",
    "K8S_NAME",
    "KUSTOMIZATION_FILES",
    "LOCALE",
    "LOCK_FILE",
    "NAME",
    "REALNAME_MAX",
    "REPOSITORY",
    "SIGNING_KEY",
    "SSH_KEY_TYPES",
    "USERNAME",
    "VERSION",
    "VOLUME_ID",
    "ApplianceConfig",
    "AppliancePaths",
    "AptFallback",
    "AptMode",
    "AutoinstallConfig",
    "BuildConfig",
    "Check",
    "DiskMatch",
    "DiskSize",
    "DuplicateKey",
    "GrubConfig",
    "HostServiceConfig",
    "IdentityConfig",
    "InteractiveSection",
    "IsoConfig",
    "K3sComponent",
    "K3sConfig",
    "Namespaces",
    "PayloadConfig",
    "RegistryConfig",
    "Shutdown",
    "SigningConfig",
    "SizingPolicy",
    "SshConfig",
    "StorageConfig",
    "StorageLayout",
    "Updates",
    "load_config",
    "load_yaml",
    "parse_config",
    "to_mapping",
    "values_profiles",
    "volume_id_for",
    "yaml_error",
]
