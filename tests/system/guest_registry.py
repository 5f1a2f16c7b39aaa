"""A real OCI registry (Debian `docker-registry`) the guest reaches at 10.0.2.2 over TLS.

QEMU's user networking maps the guest's 10.0.2.2 to the host's 127.0.0.1, so the registry
binds loopback only, and its certificate names 10.0.2.2 (the address the guest dials) and
127.0.0.1 (the runner's own checks). The guest trusts the test CA like a site CA.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from isobuild.run import spawn
from tests.ports import free_port
from tests.waiting import wait_until

GUEST_HOST_ADDRESS = "10.0.2.2"  # the host's loopback, as the guest sees it
START_TIMEOUT = 30.0


@dataclass(frozen=True, kw_only=True)
class GuestRegistry:
    """Where the guest finds the registry, and the CA that signed its certificate."""

    port: int
    ca_pem: Path
    storage: Path

    @property
    def guest_host(self) -> str:
        return f"{GUEST_HOST_ADDRESS}:{self.port}"

    @property
    def local_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def write_pki(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 10.0.2.2 and 127.0.0.1; returns (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    valid = (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("isobuild system-suite CA"))
        .issuer_name(_name("isobuild system-suite CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    addresses = [ipaddress.ip_address(GUEST_HOST_ADDRESS), ipaddress.ip_address("127.0.0.1")]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(GUEST_HOST_ADDRESS))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(a) for a in addresses]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path = directory / "server.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = directory / "server.key"
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path


class RegistryProcess:
    """`docker-registry serve` with TLS on 127.0.0.1 (anonymous: /v2/ answers 200)."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.proc: subprocess.Popen[bytes] | None = None
        self._running = contextlib.ExitStack()  # every registry started, reaped by stop()
        self.log = work / "registry.log"

    def start(self) -> GuestRegistry:
        ca, cert, key = write_pki(self.work / "pki")
        storage = self.work / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        # The port is free when chosen and bound a moment later by the registry; if another
        # program took it in between, the registry exits and a new port is tried.
        for attempt in range(3):
            port = free_port()
            config = {
                "version": 0.1,
                "log": {"level": "warn", "accesslog": {"disabled": True}},
                "storage": {"filesystem": {"rootdirectory": str(storage)}},
                "http": {
                    "addr": f"127.0.0.1:{port}",
                    "secret": secrets.token_hex(16),
                    "tls": {"certificate": str(cert), "key": str(key)},
                },
            }
            config_path = self.work / "config.yml"
            config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
            with self.log.open("ab") as log:
                self.proc = self._running.enter_context(
                    spawn(
                        ["docker-registry", "serve", config_path],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            registry = GuestRegistry(port=port, ca_pem=ca, storage=storage)
            try:
                self._wait_ready(registry)
            except RuntimeError:
                if attempt == 2 or "address already in use" not in self.log.read_text():
                    raise
                continue
            return registry
        raise AssertionError("unreachable")

    def _wait_ready(self, registry: GuestRegistry) -> None:
        proc = self.proc
        assert proc is not None

        def answers() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log.read_text()[-2000:]}")
            try:
                answer = requests.get(
                    f"{registry.local_url}/v2/", verify=str(registry.ca_pem), timeout=2
                )
            except requests.RequestException:
                return False
            return answer.status_code == 200

        wait_until(
            answers,
            START_TIMEOUT,
            lambda: f"docker-registry: {self.log.read_text()[-2000:]}",
            interval=0.2,
        )

    def stop(self) -> None:
        self._running.close()
