"""Per-session SSH keys: root's login key and the guest's host key, both ed25519."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519


def _generate(comment: str) -> tuple[bytes, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, f"{public.decode()} {comment}"


@dataclass(frozen=True, kw_only=True)
class KeyPair:
    """The runner's login key: the private half in a 0600 file, the public half as text."""

    private_file: Path
    public: str

    @classmethod
    def generate(cls, private_file: Path, comment: str) -> KeyPair:
        private, public = _generate(comment)
        private_file.parent.mkdir(parents=True, exist_ok=True)
        private_file.touch(mode=0o600)
        private_file.write_bytes(private)
        return cls(private_file=private_file, public=public)

    def pkey(self) -> paramiko.PKey:
        return paramiko.Ed25519Key.from_private_key_file(str(self.private_file))


@dataclass(frozen=True, kw_only=True)
class HostKey:
    """A host key made for one disk; the tests pin its public half."""

    private_openssh: bytes
    public: str

    @classmethod
    def generate(cls) -> HostKey:
        private, public = _generate("root@alga-appliance")
        return cls(private_openssh=private, public=public)


class PinnedHostKey(paramiko.MissingHostKeyPolicy):
    """Accept only the expected host key: a reused port must not fool the tests.

    ``None`` accepts any key: a disk the real installer made has keys nobody knew beforehand.
    """

    def __init__(self, expected: str | None) -> None:
        self.expected = None if expected is None else " ".join(expected.split()[:2])

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        if self.expected is None:
            return
        seen = f"{key.get_name()} {key.get_base64()}"
        if seen != self.expected:
            raise paramiko.SSHException(f"{hostname}: unexpected SSH host key {seen[:48]}...")
