"""Where the autoinstall files sit on the ISO (grub.AUTOINSTALL_ARGS points the kernel there)."""

from __future__ import annotations

ROOT_FILE = "/autoinstall.yaml"
USER_DATA = "/nocloud/user-data"
META_DATA = "/nocloud/meta-data"
