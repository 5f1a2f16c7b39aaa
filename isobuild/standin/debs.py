"""Debian packages the stand-in is made from, pinned by the sha256 of each .deb.

The pins live in ``standin/debian-pins.yaml``. A package is fetched with ``apt-get download
PACKAGE=VERSION`` (never installed: installing shim/GRUB would run grub-install on the
host), refused unless its bytes hash to the pin, and unpacked with ``dpkg-deb -x``.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from isobuild.digest import sha256_file
from isobuild.errors import ConfigError, EnvironmentProblem, ToolError, VerificationError
from isobuild.run import run

log = logging.getLogger(__name__)

PINS_FILE = Path(__file__).resolve().parent / "files" / "debian-pins.yaml"
ROLES = ("kernel", "shim", "shim-helpers", "grub")
KERNEL_METAPACKAGE = "linux-image-amd64"
UPDATE_HINT = "update the pins: `sudo apt-get update && isobuild standin-iso --update-pins`"
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, kw_only=True)
class DebPin:
    role: str
    package: str
    version: str
    sha256: str

    @property
    def filename(self) -> str:
        # apt-get download names the file with the epoch's colon as %3a.
        return f"{self.package}_{self.version.replace(':', '%3a')}_amd64.deb"


def parse_pins(text: str, source: str) -> dict[str, DebPin]:
    """The pins document (pure); every problem at once, naming the key."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a mapping of {', '.join(ROLES)}")
    problems = [f"{source}: {key}: unknown role" for key in document if key not in ROLES]
    pins: dict[str, DebPin] = {}
    for role in ROLES:
        entry = document.get(role)
        if not isinstance(entry, dict):
            problems.append(f"{source}: {role}: missing (package, version, sha256)")
            continue
        fields = {k: entry.get(k) for k in ("package", "version", "sha256")}
        bad = [
            f"{source}: {role}.{k}: missing" for k, v in fields.items() if not isinstance(v, str)
        ]
        if bad:
            problems += bad
            continue
        if not _SHA256.fullmatch(str(fields["sha256"])):
            problems.append(f"{source}: {role}.sha256: expected 64 lowercase hex digits")
            continue
        pins[role] = DebPin(role=role, **{k: str(v) for k, v in fields.items()})
    if problems:
        raise ConfigError(problems)
    return pins


def load_pins(path: Path = PINS_FILE) -> dict[str, DebPin]:
    return parse_pins(path.read_text(), str(path))


def fetch_deb(cache: Path, pin: DebPin) -> Path:
    """The pinned .deb under ``cache/debs``, downloaded if absent, always checked."""
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    deb = debs / pin.filename
    if not deb.is_file():
        partial = debs / f".{pin.role}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        try:
            run(["apt-get", "download", f"{pin.package}={pin.version}"], cwd=partial, capture=True)
        except ToolError as exc:
            raise EnvironmentProblem(
                f"could not download {pin.package} {pin.version} from the Debian archive: "
                f"{exc.message}",
                hint=f"run `sudo apt-get update`; if the version left the archive, {UPDATE_HINT}",
            ) from exc
        finally:
            found = sorted(partial.glob("*.deb"))
            if found:
                found[0].replace(deb)
            shutil.rmtree(partial, ignore_errors=True)
    actual = sha256_file(deb)
    if actual != pin.sha256:
        deb.unlink()
        raise VerificationError(
            f"{pin.package} {pin.version}: sha256 {actual}, pinned {pin.sha256} "
            f"({PINS_FILE.name}); the download was removed",
            hint=f"a pin that no longer matches the archive is a pin to review: {UPDATE_HINT}",
        )
    return deb


def unpack(cache: Path, pin: DebPin) -> Path:
    """The pinned package's files (``dpkg-deb -x``), unpacked once per digest."""
    root = cache / "unpacked" / f"{pin.package}-{pin.sha256[:16]}"
    if root.is_dir():
        return root
    deb = fetch_deb(cache, pin)
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    run(["dpkg-deb", "-x", deb, partial])
    partial.rename(root)
    return root


def pin_from_apt_show(role: str, package: str, show: str) -> DebPin:
    """The pin for the first (candidate) stanza of ``apt-cache show PACKAGE`` (pure)."""
    stanza = show.strip().split("\n\n")[0]
    fields = {
        key.strip(): value.strip()
        for key, _, value in (line.partition(":") for line in stanza.splitlines())
        if not key.startswith(" ")
    }
    if fields.get("Package") != package or "Version" not in fields or "SHA256" not in fields:
        raise EnvironmentProblem(
            f"apt-cache show {package}: no Version/SHA256 for it",
            hint="run `sudo apt-get update` so apt knows Debian's packages",
        )
    return DebPin(role=role, package=package, version=fields["Version"], sha256=fields["SHA256"])


def render_pins(pins: Mapping[str, DebPin], header: str) -> str:
    """The pins file: ``header`` (the comment block) then one mapping per role (pure)."""
    body = {
        role: {"package": p.package, "version": p.version, "sha256": p.sha256}
        for role, p in ((r, pins[r]) for r in ROLES)
    }
    return header + yaml.safe_dump(body, sort_keys=False)


def update_pins(path: Path = PINS_FILE) -> dict[str, DebPin]:
    """Rewrite ``path`` with apt's candidate of each package (the kernel via its metapackage)."""
    current = load_pins(path)
    depends = run(["apt-cache", "depends", KERNEL_METAPACKAGE], capture=True).stdout
    match = re.search(r"Depends: (linux-image-[0-9][^\s]*)", depends)
    if match is None:
        raise EnvironmentProblem(
            f"apt does not know {KERNEL_METAPACKAGE}", hint="run `sudo apt-get update`"
        )
    packages = {role: pin.package for role, pin in current.items()}
    packages["kernel"] = match.group(1)
    pins = {}
    for role in ROLES:
        show = run(["apt-cache", "show", packages[role]], capture=True).stdout
        pins[role] = pin_from_apt_show(role, packages[role], show)
    text = path.read_text()
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    path.write_text(render_pins(pins, header))
    return pins
