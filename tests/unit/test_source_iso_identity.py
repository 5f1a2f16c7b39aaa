"""Which .disk/info lines name an image isobuild can remaster."""

from __future__ import annotations

import pytest

from isobuild.iso.source import DISK_INFO


@pytest.mark.parametrize(
    "line",
    [
        'Ubuntu-Server 24.04.3 LTS "Noble Numbat" - Release amd64 (20250805)',
        'Ubuntu-Server 24.04.1 LTS "Noble Numbat" - Release amd64 (20240827.1)',
        'Ubuntu-Server 24.04 LTS "Noble Numbat" - Release amd64 (20240423)',
    ],
)
def test_24_04_live_server_amd64_is_accepted(line: str) -> None:
    assert DISK_INFO.search(line)


@pytest.mark.parametrize(
    "line",
    [
        'Ubuntu 24.04.3 LTS "Noble Numbat" - Release amd64 (20250805)',  # desktop
        'Ubuntu-Server 22.04.5 LTS "Jammy Jellyfish" - Release amd64 (20240911)',
        'Ubuntu-Server 24.04.3 LTS "Noble Numbat" - Release arm64 (20250805)',
        'Ubuntu-Server 24.10 "Oracular Oriole" - Release amd64 (20241009)',
        'Debian GNU/Linux 12.8.0 "Bookworm" - Official amd64 NETINST',
    ],
    ids=["desktop", "22.04", "arm64", "24.10", "debian"],
)
def test_anything_else_is_refused(line: str) -> None:
    assert not DISK_INFO.search(line)
