"""Bad input is refused with one clear line, a distinct exit code and no partial output."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pytest

from isobuild.build import BuildOptions, Tools, build
from isobuild.config import load_config
from isobuild.errors import ExitCode, ToolError
from isobuild.iso.gpgv import RealGpgv
from isobuild.iso.source import SourceIso
from isobuild.iso.xorriso import RealXorriso, Remaster, WriteResult
from tests.conftest import require_root, require_tool
from tests.fixtures.tmpfs import small_tmpfs
from tests.waiting import wait_until

if TYPE_CHECKING:
    from tests.fixtures.standin_artifacts import StandinArtifacts

ISOBUILD = [sys.executable, "-m", "isobuild.cli"]
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def error(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.startswith("error: ")]
        assert lines, f"no error line in: {self.stderr!r}"
        return lines[0]


@pytest.fixture
def outdir(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def isobuild(
    standin_artifacts_dir: StandinArtifacts, isobuild_cache: Path, outdir: Path
) -> Callable[..., Run]:
    """Run `isobuild build` as a user would, with the stand-in payload mirror."""

    def invoke(
        *args: str,
        base: Path | None = None,
        env: dict[str, str] | None = None,
        prefix: tuple[str, ...] = (),
        output: Path | None = None,
        cache: Path | None = None,
    ) -> Run:
        argv = [
            *prefix, *ISOBUILD, "build",
            "--output-dir", str(output or outdir), "--cache-dir", str(cache or isobuild_cache),
            "--lock", str(standin_artifacts_dir.lock_path),
            "--mirror", str(standin_artifacts_dir.directory),
            *(["--base-iso", str(base)] if base is not None else []), *args,
        ]  # fmt: skip
        full_env = {**os.environ, **(env or {})}
        done = subprocess.run(argv, capture_output=True, text=True, env=full_env, check=False)
        return Run(done.returncode, done.stdout, done.stderr)

    return invoke


def _nothing_written(outdir: Path) -> bool:
    """No output and no temporary files: the directory is gone (the build made it) or empty."""
    return not outdir.exists() or not any(outdir.iterdir())


def _refused(run: Run, code: ExitCode, *fragments: str) -> None:
    assert run.returncode == code, run.stderr
    for fragment in fragments:
        assert fragment in run.error, run.error


# --- the base ISO ---------------------------------------------------------------------------


def test_missing_base_iso(isobuild: Callable[..., Run], outdir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "ubuntu-24.04.3-live-server-amd64.iso"
    _refused(isobuild(base=missing), ExitCode.INPUT, str(missing), "base ISO not found")
    assert not outdir.exists()  # the build created it and removed it again


def test_directory_as_base_iso(isobuild: Callable[..., Run], outdir: Path, tmp_path: Path) -> None:
    _refused(isobuild(base=tmp_path), ExitCode.INPUT, "is a directory")
    assert _nothing_written(outdir)


def test_empty_base_iso(isobuild: Callable[..., Run], outdir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.iso"
    empty.write_bytes(b"")
    _refused(isobuild(base=empty), ExitCode.INPUT, "empty.iso", "is empty")
    assert _nothing_written(outdir)


def test_truncated_base_iso(
    isobuild: Callable[..., Run], outdir: Path, tmp_path: Path, standin_base_iso: Path
) -> None:
    cut = tmp_path / "cut.iso"
    cut.write_bytes(standin_base_iso.read_bytes()[: 5 << 20])
    _refused(isobuild(base=cut), ExitCode.INPUT, "cut.iso", "is truncated", "5242880 bytes")
    assert _nothing_written(outdir)


def test_not_an_iso(isobuild: Callable[..., Run], outdir: Path, tmp_path: Path) -> None:
    junk = tmp_path / "photo.iso"
    junk.write_bytes(hashlib.sha256(b"x").digest() * 40000)
    _refused(isobuild(base=junk), ExitCode.INPUT, "photo.iso", "not a readable ISO 9660 image")
    assert _nothing_written(outdir)


def test_unreadable_base_iso(
    isobuild: Callable[..., Run], world_tmp: Path, standin_base_iso: Path
) -> None:
    secret = world_tmp / "private.iso"
    shutil.copyfile(standin_base_iso, secret)
    secret.chmod(0o600)
    for writable in ("out", "cache"):
        (world_tmp / writable).mkdir(mode=0o777)
        (world_tmp / writable).chmod(0o777)
    run = isobuild(
        base=secret, prefix=tuple(NOBODY), output=world_tmp / "out", cache=world_tmp / "cache",
        env={"HOME": str(world_tmp)},
    )  # fmt: skip
    _refused(run, ExitCode.INPUT, "private.iso", "cannot read the base ISO: Permission denied")
    assert _nothing_written(world_tmp / "out")


@dataclass(frozen=True)
class Variants:
    debian: Path
    bios_only: Path
    no_esp: Path


@pytest.fixture(scope="module")
def variants(standin_base_iso: Path, tmp_path_factory: pytest.TempPathFactory) -> Variants:
    """ISOs that are not a 24.04 live-server image, each in one way."""
    require_tool("xorriso")
    work = tmp_path_factory.mktemp("variants")
    tree = work / "tree"
    with SourceIso(standin_base_iso) as iso:
        for path in ("/.disk/info", "/boot/grub/grub.cfg", "/boot/grub/i386-pc/eltorito.img"):
            (tree / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            (tree / path.lstrip("/")).write_bytes(iso.read_bytes(path))
    (tree / "casper").mkdir()
    (tree / "casper/vmlinuz").write_bytes(b"kernel")
    (tree / "casper/initrd").write_bytes(b"initrd")
    (tree / "efi.img").write_bytes(_esp_of(standin_base_iso))
    bios = ["-b", "/boot/grub/i386-pc/eltorito.img", "-no-emul-boot", "-boot-load-size", "4",
            "-boot-info-table"]  # fmt: skip
    out = Variants(work / "debian.iso", work / "bios-only.iso", work / "no-esp.iso")
    debian_tree = work / "debian"
    (debian_tree / ".disk").mkdir(parents=True)
    (debian_tree / ".disk/info").write_text('Debian GNU/Linux 12.8.0 "Bookworm" - Official amd64')
    _mkisofs(debian_tree, out.debian)
    _mkisofs(tree, out.bios_only, *bios)
    _mkisofs(tree, out.no_esp, *bios, "-eltorito-alt-boot", "-e", "/efi.img", "-no-emul-boot")
    return out


def _esp_of(iso: Path) -> bytes:
    from tests.integration.iso_checks import esp_bytes

    return esp_bytes(iso)


def _mkisofs(tree: Path, out: Path, *boot: str) -> None:
    subprocess.run(
        ["xorriso", "-as", "mkisofs", "-r", "-J", "-V", "TEST", *boot, "-o", str(out), str(tree)],
        capture_output=True, check=True,
    )  # fmt: skip


def test_another_distribution_is_refused_saying_what_it_is(
    isobuild: Callable[..., Run], outdir: Path, variants: Variants
) -> None:
    _refused(isobuild(base=variants.debian), ExitCode.INPUT,
             "not an Ubuntu Server 24.04.x amd64 image", "Debian GNU/Linux 12.8.0")  # fmt: skip
    assert _nothing_written(outdir)


def test_an_image_without_uefi_boot_is_refused(
    isobuild: Callable[..., Run], outdir: Path, variants: Variants
) -> None:
    _refused(isobuild(base=variants.bios_only), ExitCode.INPUT,
             "needs El Torito BIOS and UEFI entries, found BIOS")  # fmt: skip
    assert _nothing_written(outdir)


def test_an_image_without_the_esp_partition_is_refused(
    isobuild: Callable[..., Run], outdir: Path, variants: Variants
) -> None:
    _refused(isobuild(base=variants.no_esp), ExitCode.INPUT,
             "no EFI System Partition in the GPT")  # fmt: skip
    assert _nothing_written(outdir)


# --- digests and signatures -----------------------------------------------------------------


def test_sha256_mismatch(
    isobuild: Callable[..., Run], outdir: Path, standin_base_iso: Path
) -> None:
    run = isobuild("--sha256", "0" * 64, base=standin_base_iso)
    _refused(run, ExitCode.INPUT, "sha256 mismatch", "0" * 64)
    assert _nothing_written(outdir)


def test_malformed_sha256_is_a_usage_error(
    isobuild: Callable[..., Run], outdir: Path, standin_base_iso: Path
) -> None:
    _refused(isobuild("--sha256", "abc", base=standin_base_iso), ExitCode.USAGE,
             "--sha256: expected 64 hex digits")  # fmt: skip
    assert _nothing_written(outdir)


@dataclass
class SignedSums:
    sums: Path
    signature: Path
    keyring: Path
    sign: Callable[[], None] = field(repr=False)


@pytest.fixture
def signed_sums(tmp_path: Path, standin_base_iso: Path) -> Iterator[SignedSums]:
    """SHA256SUMS for the base ISO, signed by a throwaway key (real gpg, real gpgv).

    gpg starts a gpg-agent for the throwaway home; it is ended afterwards, not left running.
    """
    require_tool("gpg", "gnupg")
    require_tool("gpgv")
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    gpg = ["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""]
    subprocess.run([*gpg, "--quick-gen-key", "test-cdimage@example.invalid", "ed25519", "sign",
                    "never"], env=env, check=True, capture_output=True)  # fmt: skip
    keyring = tmp_path / "keyring.gpg"
    exported = subprocess.run([*gpg, "--export"], env=env, check=True, capture_output=True)
    keyring.write_bytes(exported.stdout)
    digest = hashlib.sha256(standin_base_iso.read_bytes()).hexdigest()
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(f"{'1' * 64} *other.iso\n{digest} *{standin_base_iso.name}\n")
    signature = tmp_path / "SHA256SUMS.gpg"

    def sign() -> None:
        signature.unlink(missing_ok=True)
        subprocess.run([*gpg, "--detach-sign", "-o", str(signature), str(sums)], env=env,
                       check=True, capture_output=True)  # fmt: skip

    try:
        sign()
        yield SignedSums(sums=sums, signature=signature, keyring=keyring, sign=sign)
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=env, check=False, capture_output=True)


def _sums_args(signed: SignedSums) -> list[str]:
    return [
        "--sha256sums", str(signed.sums), "--sha256sums-signature", str(signed.signature),
        "--keyring", str(signed.keyring),
    ]  # fmt: skip


def test_good_signature_and_listed_digest_build(
    isobuild: Callable[..., Run], outdir: Path, standin_base_iso: Path, signed_sums: SignedSums
) -> None:
    run = isobuild(*_sums_args(signed_sums), base=standin_base_iso)
    assert run.returncode == 0, run.stderr
    assert (outdir / "alga-appliance-0.1.0.iso").is_file()


def test_bad_signature(
    isobuild: Callable[..., Run], outdir: Path, standin_base_iso: Path, signed_sums: SignedSums
) -> None:
    signed_sums.sums.write_text(signed_sums.sums.read_text().replace("1" * 64, "2" * 64))
    run = isobuild(*_sums_args(signed_sums), base=standin_base_iso)
    _refused(run, ExitCode.INPUT, "bad signature", "SHA256SUMS")
    assert _nothing_written(outdir)


def test_signed_sums_that_disagree_with_the_iso(
    isobuild: Callable[..., Run], outdir: Path, standin_base_iso: Path, signed_sums: SignedSums
) -> None:
    text = signed_sums.sums.read_text().splitlines()
    signed_sums.sums.write_text(f"{text[0]}\n{'3' * 64} *{standin_base_iso.name}\n")
    signed_sums.sign()
    run = isobuild(*_sums_args(signed_sums), base=standin_base_iso)
    _refused(run, ExitCode.INPUT, "sha256 mismatch", str(signed_sums.sums))
    assert _nothing_written(outdir)


def test_a_right_sha256_does_not_override_signed_sums_that_disagree(
    isobuild: Callable[..., Run], outdir: Path, standin_base_iso: Path, signed_sums: SignedSums
) -> None:
    text = signed_sums.sums.read_text().splitlines()
    signed_sums.sums.write_text(f"{text[0]}\n{'3' * 64} *{standin_base_iso.name}\n")
    signed_sums.sign()
    actual = hashlib.sha256(standin_base_iso.read_bytes()).hexdigest()
    run = isobuild("--sha256", actual, *_sums_args(signed_sums), base=standin_base_iso)
    _refused(run, ExitCode.INPUT, "sha256 mismatch", str(signed_sums.sums))
    assert _nothing_written(outdir)


def test_sha256sums_in_upper_case_build(
    isobuild: Callable[..., Run], outdir: Path, standin_base_iso: Path, tmp_path: Path
) -> None:
    # As Windows' Get-FileHash writes it, with a BOM and CRLFs.
    digest = hashlib.sha256(standin_base_iso.read_bytes()).hexdigest().upper()
    sums = tmp_path / "SUMS"
    sums.write_text(f"\ufeff{digest}  {standin_base_iso.name}\r\n", encoding="utf-8")
    run = isobuild("--sha256sums", str(sums), base=standin_base_iso)
    assert run.returncode == 0, run.stderr
    assert (outdir / "alga-appliance-0.1.0.iso").is_file()


def test_a_malformed_sha256sums_line_is_named_with_its_number(
    isobuild: Callable[..., Run], outdir: Path, standin_base_iso: Path, tmp_path: Path
) -> None:
    digest = hashlib.sha256(standin_base_iso.read_bytes()).hexdigest()
    sums = tmp_path / "SUMS"
    sums.write_text(f"{'1' * 64} *other.iso\n{digest[1:]} *{standin_base_iso.name}\n")
    run = isobuild("--sha256sums", str(sums), base=standin_base_iso)
    _refused(run, ExitCode.INPUT,
             f"{sums}: line 2 is malformed: the digest has 63 hex digits, expected 64")  # fmt: skip
    assert "no entry" not in run.error
    assert _nothing_written(outdir)


def test_a_sha256sums_file_of_binary_data_is_named_not_a_traceback(
    isobuild: Callable[..., Run], outdir: Path, standin_base_iso: Path, tmp_path: Path
) -> None:
    # Bytes that are not UTF-8 (the ISO itself given by mistake, a UTF-16 file) were a
    # UnicodeDecodeError traceback, exit 1.
    sums = tmp_path / "SUMS"
    sums.write_bytes(b"\xff\xfe\x00\x01garbage\n")
    run = isobuild("--sha256sums", str(sums), base=standin_base_iso)
    _refused(run, ExitCode.INPUT, f"{sums}: line 1 is malformed: binary data, not a checksum line")
    assert _nothing_written(outdir)


@pytest.mark.parametrize("which", ["another key's", "armored"])
def test_a_keyring_without_the_signing_key_is_not_a_bad_signature(
    isobuild: Callable[..., Run], outdir: Path, standin_base_iso: Path, signed_sums: SignedSums,
    tmp_path: Path, which: str,
) -> None:  # fmt: skip
    gpg = ["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""]
    if which == "armored":  # the right key, as `gpg --armor --export` writes it
        env = {**os.environ, "GNUPGHOME": str(tmp_path / "gnupg")}  # signed_sums' home
        armored = subprocess.run([*gpg, "--armor", "--export"], env=env, check=True,
                                 capture_output=True)  # fmt: skip
        signed_sums.keyring.write_bytes(armored.stdout)
    else:
        home = tmp_path / "other-gnupg"
        home.mkdir(mode=0o700)
        env = {**os.environ, "GNUPGHOME": str(home)}
        try:
            subprocess.run([*gpg, "--quick-gen-key", "other@example.invalid", "ed25519", "sign",
                            "never"], env=env, check=True, capture_output=True)  # fmt: skip
            exported = subprocess.run([*gpg, "--export"], env=env, check=True, capture_output=True)
            signed_sums.keyring.write_bytes(exported.stdout)
        finally:
            subprocess.run(["gpgconf", "--kill", "all"], env=env, check=False,
                           capture_output=True)  # fmt: skip
    run = isobuild(*_sums_args(signed_sums), base=standin_base_iso)
    if which == "armored":
        _refused(run, ExitCode.USAGE, f"--keyring {signed_sums.keyring}: an ASCII-armored key "
                 "file; gpgv reads only binary keyrings")  # fmt: skip
        assert "\nhint: convert it: gpg --dearmor < " in run.stderr
    else:
        _refused(run, ExitCode.INPUT, "which is not in the keyring")
        assert "\nhint: if " in run.stderr
    assert "bad signature" not in run.error
    assert _nothing_written(outdir)


# --- the config ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("name: [unclosed\n", ["not valid YAML", "line 2, column 1"]),
        ("name: x\nversion: 1.0\nautoinstal: {}\n", ["autoinstal: unknown key",
                                                       "did you mean 'autoinstall'"]),
        ("name: x\nversion: 1.0\niso: {grub: {timeout: soon}}\n",
         ["iso.grub.timeout: expected an integer, got 'soon'"]),
        ("version: 1.0\n", ["name: required value is missing"]),
        ("name: x\nversion: 1.0\nappliance: {registry: {ca_bundle: site-ca.pem}}\n",
         ["appliance.registry.ca_bundle: ", "/site-ca.pem: no such file; give a PEM file"]),
    ],
    ids=["not-yaml", "unknown-key", "wrong-type", "missing-required", "ca-bundle-missing"],
)  # fmt: skip
def test_bad_config(
    isobuild: Callable[..., Run],
    outdir: Path,
    standin_base_iso: Path,
    tmp_path: Path,
    text: str,
    fragments: list[str],
) -> None:
    config = tmp_path / "appliance.yaml"
    config.write_text(text)
    run = isobuild("--config", str(config), base=standin_base_iso)
    _refused(run, ExitCode.USAGE, "appliance.yaml", fragments[0])
    for fragment in fragments[1:]:
        assert fragment in run.stderr
    assert _nothing_written(outdir)


@pytest.mark.parametrize(
    ("args", "env", "source", "epoch"),
    [
        (("--source-date-epoch=-1",), {}, "--source-date-epoch", "-1"),
        ((), {"SOURCE_DATE_EPOCH": "5869584000"}, "SOURCE_DATE_EPOCH", "5869584000"),
    ],
    ids=["before-1970", "after-2155"],
)
def test_a_date_an_iso_cannot_hold_is_refused_before_anything_is_written(
    isobuild: Callable[..., Run],
    outdir: Path,
    standin_base_iso: Path,
    args: tuple[str, ...],
    env: dict[str, str],
    source: str,
    epoch: str,
) -> None:
    # Before, -1 failed deep in xorriso ("SORRY"), exit 1; ISO 9660 records end in 2155.
    run = isobuild(*args, base=standin_base_iso, env=env)
    _refused(run, ExitCode.USAGE, f"{source}: {epoch} is outside what an ISO 9660 date can "
             "hold (0 to 5869583999, 1970 to 2155)")  # fmt: skip
    assert _nothing_written(outdir)


def test_default_entry_beyond_the_menu(
    isobuild: Callable[..., Run], outdir: Path, standin_base_iso: Path, tmp_path: Path
) -> None:
    config = tmp_path / "appliance.yaml"
    config.write_text("name: x\nversion: 1.0\niso: {grub: {default: 7}}\n")
    run = isobuild("--config", str(config), base=standin_base_iso)
    _refused(run, ExitCode.USAGE, "iso.grub.default", "default entry 7 does not exist")
    assert _nothing_written(outdir)


# --- the machine and the output -----------------------------------------------------------


@pytest.fixture
def world_tmp() -> Iterator[Path]:
    """A directory another user can traverse (pytest's tmp_path is 0700)."""
    require_tool("setpriv", "util-linux")
    require_root("to run the CLI as another user")
    path = Path(tempfile.mkdtemp(prefix="isobuild-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_output_directory_not_writable(
    isobuild: Callable[..., Run], world_tmp: Path, standin_base_iso: Path
) -> None:
    base = world_tmp / "base.iso"
    shutil.copyfile(standin_base_iso, base)
    base.chmod(0o644)
    locked = world_tmp / "out"
    locked.mkdir(mode=0o755)
    cache = world_tmp / "cache"
    cache.mkdir()
    cache.chmod(0o777)
    run = isobuild(base=base, prefix=tuple(NOBODY), output=locked, cache=cache,
                   env={"HOME": str(world_tmp)})  # fmt: skip
    _refused(run, ExitCode.ENVIRONMENT, str(locked), "not writable")
    assert _nothing_written(locked)


def test_output_exists_unless_force(
    isobuild: Callable[..., Run], outdir: Path, standin_base_iso: Path
) -> None:
    outdir.mkdir()
    existing = outdir / "alga-appliance-0.1.0.iso"
    existing.write_bytes(b"keep me")
    _refused(isobuild(base=standin_base_iso), ExitCode.ENVIRONMENT, str(existing),
             "already exists")  # fmt: skip
    assert existing.read_bytes() == b"keep me"
    assert sorted(p.name for p in outdir.iterdir()) == [existing.name]
    forced = isobuild("--force", base=standin_base_iso)
    assert forced.returncode == 0, forced.stderr
    assert existing.stat().st_size > 1 << 20


def test_force_never_replaces_a_directory_named_like_an_output(
    isobuild: Callable[..., Run], outdir: Path, standin_base_iso: Path
) -> None:
    # It did: the directory was moved aside, then deleted with the build's temporary files.
    kept = outdir / "alga-appliance-0.1.0.iso"
    kept.mkdir(parents=True)
    (kept / "notes.txt").write_text("precious")
    run = isobuild("--force", base=standin_base_iso)
    _refused(run, ExitCode.USAGE, f"{kept}: is a directory, where the output file goes")
    assert (kept / "notes.txt").read_text() == "precious"
    assert sorted(p.name for p in outdir.iterdir()) == [kept.name]


def test_not_enough_space_is_found_before_writing(
    isobuild: Callable[..., Run], tmp_path: Path, standin_base_iso: Path
) -> None:
    with small_tmpfs(tmp_path / "small", 8 << 20) as small:
        run = isobuild(base=standin_base_iso, output=small)
        _refused(run, ExitCode.ENVIRONMENT, str(small), "free, the ISO needs about")
        assert list(small.iterdir()) == []


def test_a_write_that_fails_after_the_space_check_is_one_line_and_leaves_nothing(
    isobuild: Callable[..., Run], outdir: Path, standin_base_iso: Path
) -> None:
    # The space check passes; the kernel then stops the ISO at half its size (RLIMIT_FSIZE),
    # as a disk that others fill meanwhile, a quota or FAT32's 4 GiB would.
    prlimit = require_tool("prlimit", "util-linux")
    limit = standin_base_iso.stat().st_size // 2
    run = isobuild(base=standin_base_iso, prefix=(prlimit, f"--fsize={limit}"))
    iso = outdir / "alga-appliance-0.1.0.iso"
    _refused(run, ExitCode.ENVIRONMENT, f"{iso}: writing the ISO failed: File too large")
    assert "Traceback" not in run.stderr
    assert "`ulimit -f` limits file sizes: choose another --output-dir" in run.stderr
    assert not outdir.exists()  # the build made it, and removed it again


def test_xorriso_missing_says_how_to_install_it(
    isobuild: Callable[..., Run], outdir: Path, standin_base_iso: Path, tmp_path: Path
) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    run = isobuild(base=standin_base_iso, env={"PATH": str(bare)})
    _refused(run, ExitCode.ENVIRONMENT, "xorriso: program not found")
    assert "apt-get install xorriso" in run.stderr
    assert _nothing_written(outdir)


# --- failures and interrupts while writing ---------------------------------------------------


class InterruptedXorriso:
    """Writes part of the image, then fails the way the test asks (a Ctrl-C or a tool error)."""

    def __init__(self, failure: BaseException) -> None:
        self.failure = failure
        self.real = RealXorriso()
        self.bytes_written = 0

    def version(self) -> str:
        return self.real.version()

    def report(self, iso: Path) -> str:
        return self.real.report(iso)

    def write(
        self, spec: Remaster, out: IO[bytes], progress: Callable[[float], None]
    ) -> WriteResult:
        out.write(b"\0" * (1 << 20))
        self.bytes_written = 1 << 20
        progress(3.0)
        raise self.failure


@pytest.mark.parametrize(
    "failure", [KeyboardInterrupt(), ToolError("xorriso exited with 5")], ids=["ctrl-c", "tool"]
)
def test_nothing_partial_remains_when_writing_stops(
    standin_base_iso: Path,
    standin_artifacts_dir: StandinArtifacts,
    isobuild_cache: Path,
    outdir: Path,
    failure: BaseException,
) -> None:
    xorriso = InterruptedXorriso(failure)
    options = BuildOptions(
        base_iso=standin_base_iso, output_dir=outdir, cache_dir=isobuild_cache, quiet=True,
        lock=standin_artifacts_dir.lock_path, mirror=str(standin_artifacts_dir.directory),
    )  # fmt: skip
    with pytest.raises(type(failure)):
        build(load_config(None), Tools(xorriso=xorriso, gpgv=RealGpgv()), options)
    assert xorriso.bytes_written > 0
    assert not outdir.exists()  # the build made it, and removed it again


@pytest.fixture(scope="module")
def bigger_base_iso(tmp_path_factory: pytest.TempPathFactory, fixture_cache: Path) -> Path:
    """A stand-in with 400 MB of filler: writing it takes long enough to interrupt."""
    from isobuild.standin.iso import StandinOptions, build_standin

    out = tmp_path_factory.mktemp("bigger") / "standin-400M.iso"
    build_standin(StandinOptions(out=out, cache=fixture_cache / "standin", filler_size=400 << 20))
    return out


def _writing_build(
    base: Path, artifacts: StandinArtifacts, outdir: Path, cache: Path
) -> subprocess.Popen[str]:
    """A build from ``base`` into ``outdir``, returned once it is writing the ISO."""
    argv = [
        *ISOBUILD, "build", "--base-iso", str(base), "--output-dir", str(outdir),
        "--cache-dir", str(cache), "--lock", str(artifacts.lock_path),
        "--mirror", str(artifacts.directory),
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip

    def writing() -> bool:
        assert proc.poll() is None, "the build ended before it wrote the ISO"
        return any(p.stat().st_size > 16 << 20 for p in outdir.glob(".isobuild-*/*.iso"))

    try:
        wait_until(writing, 120, "the build to be writing the ISO")
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc


@pytest.mark.parametrize(
    ("signum", "whole_group", "exit_code"),
    [
        # A terminal's Ctrl-C signals the whole foreground process group: isobuild and xorriso.
        (signal.SIGINT, True, ExitCode.INTERRUPTED),
        # A supervisor's SIGTERM reaches isobuild alone; xorriso must not outlive it.
        (signal.SIGTERM, False, 128 + signal.SIGTERM),
    ],
    ids=["ctrl-c", "sigterm"],
)
def test_a_stop_while_writing_leaves_nothing_and_exits_128_plus_signal(
    bigger_base_iso: Path,
    standin_artifacts_dir: StandinArtifacts,
    tmp_path: Path,
    signum: signal.Signals,
    whole_group: bool,
    exit_code: int,
) -> None:
    outdir = tmp_path / "out"
    proc = _writing_build(bigger_base_iso, standin_artifacts_dir, outdir, tmp_path / "cache")
    if whole_group:
        os.killpg(proc.pid, signum)
    else:
        proc.send_signal(signum)
    try:
        _, stderr = proc.communicate(timeout=60)
        # Looked at before the clean-up below, which would kill a survivor and hide it.
        survivors = _group_alive(proc.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == exit_code, stderr
    assert f"interrupted ({signum.name})" in stderr
    assert _nothing_written(outdir)
    assert not survivors, "xorriso outlived the build"


def test_the_next_build_removes_what_a_killed_build_left(
    bigger_base_iso: Path, standin_artifacts_dir: StandinArtifacts, tmp_path: Path
) -> None:
    # SIGKILL (the OOM killer, a power cut) leaves no way to clean up: the partial ISO stayed
    # in a hidden .isobuild-* directory for good, and every later space check counted it.
    outdir, cache = tmp_path / "out", tmp_path / "cache"
    killed = _writing_build(bigger_base_iso, standin_artifacts_dir, outdir, cache)
    os.killpg(killed.pid, signal.SIGKILL)  # isobuild and xorriso
    killed.communicate(timeout=60)
    left = list(outdir.glob(".isobuild-*"))
    assert len(left) == 1
    next_build = subprocess.run(
        [*ISOBUILD, "build", "--base-iso", str(bigger_base_iso), "--output-dir", str(outdir),
         "--cache-dir", str(cache), "--lock", str(standin_artifacts_dir.lock_path),
         "--mirror", str(standin_artifacts_dir.directory)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert next_build.returncode == 0, next_build.stderr
    assert f"removed {left[0]} (" in next_build.stderr
    assert "left by a build that was stopped before it could clean up" in next_build.stderr
    assert not list(outdir.glob(".isobuild-*"))
    assert (outdir / "alga-appliance-0.1.0.iso").is_file()


def test_a_second_build_into_the_same_directory_is_refused_while_one_runs(
    bigger_base_iso: Path, standin_artifacts_dir: StandinArtifacts, tmp_path: Path
) -> None:
    outdir, cache = tmp_path / "out", tmp_path / "cache"
    first = _writing_build(bigger_base_iso, standin_artifacts_dir, outdir, cache)
    os.killpg(first.pid, signal.SIGSTOP)  # mid-write, holding its lock, for as long as needed
    try:
        second = subprocess.run(
            [*ISOBUILD, "build", "--base-iso", str(bigger_base_iso), "--output-dir",
             str(outdir), "--cache-dir", str(cache), "--force",
             "--lock", str(standin_artifacts_dir.lock_path),
             "--mirror", str(standin_artifacts_dir.directory)],
            capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip
    finally:
        os.killpg(first.pid, signal.SIGCONT)
        _, stderr = first.communicate(timeout=600)
    _refused(Run(second.returncode, second.stdout, second.stderr), ExitCode.ENVIRONMENT,
             f"{outdir}: another build is writing into it")  # fmt: skip
    assert first.returncode == 0, stderr  # neither its files nor its work were touched
    assert len(list(outdir.glob(".isobuild-*"))) == 0
    assert (outdir / "alga-appliance-0.1.0.iso").is_file()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


# --- boot-test ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("MISSING.iso", "ISO not found"),
        (
            "a-directory",
            "is not a file or a block device, expected an ISO image or a flashed stick",
        ),
        # A stick whose flash stopped (its head zeroed) would boot to every cell's timeout.
        (
            "blank.img",
            "not an ISO 9660 image (no CD001 volume descriptor at byte 32769): nothing to boot",
        ),
    ],
)
def test_boot_test_refuses_a_path_that_is_not_an_iso_in_one_line(
    tmp_path: Path, name: str, message: str
) -> None:
    target = tmp_path / name
    if name == "a-directory":
        target.mkdir()
    elif name == "blank.img":
        target.write_bytes(bytes(64 << 10))
    argv = [*ISOBUILD, "boot-test", str(target), "--logs", str(tmp_path / "logs")]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == ExitCode.INPUT, done.stderr
    assert done.stdout == ""  # refused before any guest, probe or banner
    error, hint = done.stderr.splitlines()
    assert error == f"error: {target}: {message}"
    assert hint.startswith("hint: ")
    assert not (tmp_path / "logs").exists()


ANY_ISO_HINT = "pass an ISO 9660 image: an Ubuntu Server 24.04 ISO or one `isobuild build` wrote"


@pytest.mark.parametrize(
    ("command", "name", "code", "message", "hint"),
    [
        ("inspect", "missing.iso", ExitCode.INPUT, "ISO not found", "check the path"),
        # A directory where the ISO goes is a wrong argument (2), the same for both.
        ("inspect", "a-directory", ExitCode.USAGE, "is a directory, expected an ISO file",
         ANY_ISO_HINT),
        ("inspect", "tiny.iso", ExitCode.INPUT, "is 100 bytes, too small to be an ISO 9660 image",
         ANY_ISO_HINT),
        ("verify", "missing.iso", ExitCode.INPUT, "ISO not found",
         "pass the .iso file `build` wrote"),
        ("verify", "a-directory", ExitCode.USAGE, "is a directory, expected an ISO file",
         "pass the .iso file `build` wrote"),
        ("verify", "/dev/null", ExitCode.INPUT, "is not a regular file, expected an ISO image",
         "pass the .iso file `build` wrote"),
        ("verify", "tiny.iso", ExitCode.INPUT, "is 100 bytes, too small to be an ISO 9660 image",
         "pass the .iso file `build` wrote"),
    ],
)  # fmt: skip
def test_inspect_and_verify_refuse_what_is_not_an_iso_without_speaking_of_a_base_iso(
    tmp_path: Path, command: str, name: str, code: ExitCode, message: str, hint: str
) -> None:
    # Both read any ISO (verify: one `build` wrote), not a base ISO passed as --base-iso.
    target = tmp_path / name
    if name == "a-directory":
        target.mkdir()
    elif name == "tiny.iso":
        target.write_bytes(bytes(100))
    done = subprocess.run([*ISOBUILD, command, str(target)], capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert done.returncode == code, done.stderr
    assert done.stderr.splitlines() == [f"error: {target}: {message}", f"hint: {hint}"]


@pytest.mark.parametrize("command", ["inspect", "verify"])
def test_a_directory_holding_one_iso_points_at_it(tmp_path: Path, command: str) -> None:
    (tmp_path / "alga-appliance-0.1.0.iso").write_bytes(bytes(100))
    done = subprocess.run([*ISOBUILD, command, str(tmp_path)], capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert done.stderr.splitlines() == [
        f"error: {tmp_path}: is a directory, expected an ISO file",
        f"hint: pass the ISO in it: {tmp_path / 'alga-appliance-0.1.0.iso'}",
    ]
