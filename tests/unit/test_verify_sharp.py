"""isobuild.iso.verify beyond the happy path: what SHA256SUMS lines count, what the errors say."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from isobuild.errors import ConfigError, VerificationError
from isobuild.iso.gpgv import SignatureCheck
from isobuild.iso.verify import (
    Sums,
    check_digest,
    check_signature,
    expected_from_sums,
    normalize_sha256,
    read_sums,
)

HEX_A = "a" * 64
HEX_B = "b" * 64


def test_only_a_well_formed_line_for_the_exact_name_counts() -> None:
    sums = (
        "\n"
        f"{'g' * 64} *x.iso\n"  # not hex
        f"{'a' * 63} *x.iso\n"  # too short
        f"{'a' * 65} *x.iso\n"  # too long
        f"{HEX_A}\n"  # no name
        f"{HEX_A} *x.iso.zsync\n"  # another file
        f"  {HEX_B} *x.iso  \n"
    )
    assert expected_from_sums(sums, Path("SHA256SUMS"), "x.iso") == HEX_B


def test_a_name_with_spaces_is_one_name() -> None:
    sums = f"{HEX_A}  my image.iso\n{HEX_B}  image.iso\n"
    assert expected_from_sums(sums, Path("S"), "my image.iso") == HEX_A
    assert expected_from_sums(sums, Path("S"), "image.iso") == HEX_B


def test_the_first_entry_for_a_name_wins() -> None:
    sums = f"{HEX_A} *x.iso\n{HEX_B} *x.iso\n"
    assert expected_from_sums(sums, Path("S"), "x.iso") == HEX_A


def test_a_missing_entry_names_the_file_and_says_what_to_pass() -> None:
    sums = "".join(f"{HEX_A} *{n}.iso\n" for n in ("a", "b", "c", "d", "e"))
    with pytest.raises(VerificationError) as caught:
        expected_from_sums(sums + "not a sum line\n", Path("/in/SHA256SUMS"), "x.iso")
    assert str(caught.value) == (
        "/in/SHA256SUMS: no entry for x.iso (it lists a.iso, b.iso, c.iso and 2 more)"
    )
    assert caught.value.hint == (
        "pass the SHA256SUMS of the release the ISO belongs to (names must match)"
    )


def test_a_checksum_file_beside_a_renamed_iso_names_the_name_it_had() -> None:
    with pytest.raises(VerificationError) as caught:
        expected_from_sums(f"{HEX_A}  other.iso\n", Path("x.iso.sha256"), "x.iso")
    assert str(caught.value) == "x.iso.sha256: no entry for x.iso (it lists other.iso)"
    assert caught.value.hint == (
        "it lists only other.iso: if that is this ISO renamed, give it that name again"
    )


def test_an_empty_checksum_file_lists_nothing() -> None:
    with pytest.raises(VerificationError) as caught:
        expected_from_sums("", Path("x.iso.sha256"), "x.iso")
    assert str(caught.value) == "x.iso.sha256: no entry for x.iso"


def test_a_digest_mismatch_says_everything_and_what_to_do() -> None:
    check_digest(HEX_A, HEX_A, Path("x.iso"), "--sha256")  # equal: no error
    with pytest.raises(VerificationError) as caught:
        check_digest(HEX_B, HEX_A, Path("/d/x.iso"), "SHA256SUMS")
    assert str(caught.value) == (
        f"/d/x.iso: sha256 mismatch: expected {HEX_A} (SHA256SUMS), got {HEX_B}"
    )
    assert (
        caught.value.hint == "the file is corrupt or not the release you meant: download it again"
    )


@pytest.mark.parametrize("text", ["a" * 63, "a" * 65, "g" * 64, "a" * 64 + "x", "x" + "a" * 64, ""])
def test_a_pinned_digest_must_be_exactly_64_hex(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        normalize_sha256(text, "--sha256")
    assert str(caught.value) == f"--sha256: expected 64 hex digits, got {text!r}"


def test_a_pinned_digest_is_trimmed_and_lowered() -> None:
    assert normalize_sha256("\t" + "AbC" * 21 + "D \n", "pin") == "abc" * 21 + "d"


@dataclass
class FakeGpgv:
    """A gpgv that answers ``check`` and records what it was asked to verify."""

    check: SignatureCheck
    asked: list[tuple[Path, Path, Path]] = field(default_factory=list)

    def verify(self, signature: Path, data: Path, keyring: Path) -> SignatureCheck:
        self.asked.append((signature, data, keyring))
        return self.check


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    paths = tmp_path / "SHA256SUMS", tmp_path / "SHA256SUMS.gpg", tmp_path / "keyring.gpg"
    for path in paths:
        path.write_bytes(b"\x99\x00")  # a keyring's first packet header, to check_keyring
    return paths


def test_a_good_signature_passes_with_the_signature_over_the_sums(tmp_path: Path) -> None:
    sums, signature, keyring = _files(tmp_path)
    gpgv = FakeGpgv(SignatureCheck(good=True, reason=""))
    check_signature(gpgv, sums, signature, keyring)
    assert gpgv.asked == [(signature, sums, keyring)]


def test_a_bad_signature_is_refused_with_gpgvs_reason(tmp_path: Path) -> None:
    sums, signature, keyring = _files(tmp_path)
    gpgv = FakeGpgv(SignatureCheck(good=False, reason="BAD signature from X"))
    with pytest.raises(VerificationError) as caught:
        check_signature(gpgv, sums, signature, keyring)
    assert str(caught.value) == f"{signature}: bad signature on {sums} (gpgv: BAD signature from X)"
    assert caught.value.hint == (
        "get SHA256SUMS and SHA256SUMS.gpg again and name the keyring that signed them"
    )


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        (0, "{}: SHA256SUMS file not found"),
        (1, "{}: signature file not found"),
        (2, "--keyring {}: is a directory, expected a keyring file"),
    ],
)
def test_each_missing_file_is_named_before_gpgv_runs(
    tmp_path: Path, missing: int, message: str
) -> None:
    paths = _files(tmp_path)
    paths[missing].unlink()
    paths[missing].mkdir()  # a directory is not a file either
    gpgv = FakeGpgv(SignatureCheck(good=True, reason=""))
    with pytest.raises(ConfigError) as caught:
        check_signature(gpgv, *paths)
    assert str(caught.value) == message.format(paths[missing])
    assert gpgv.asked == []


def test_only_the_binary_mode_star_is_taken_off_the_name() -> None:
    sums = f"{HEX_A} *X-edition.iso\n{HEX_B} **x.iso\n"
    assert expected_from_sums(sums, Path("S"), "X-edition.iso") == HEX_A
    assert expected_from_sums(sums, Path("S"), "x.iso") == HEX_B


@pytest.mark.parametrize(
    ("names", "lists"),
    [
        (["a", "b", "c"], "a.iso, b.iso, c.iso"),
        (["a", "b", "c", "d"], "a.iso, b.iso, c.iso and 1 more"),
    ],
)
def test_three_names_are_shown_and_the_rest_counted(names: list[str], lists: str) -> None:
    sums = "".join(f"{HEX_A} *{n}.iso\n" for n in names)
    with pytest.raises(VerificationError) as caught:
        expected_from_sums(sums, Path("SHA256SUMS"), "x.iso")
    assert str(caught.value) == f"SHA256SUMS: no entry for x.iso (it lists {lists})"


def test_only_the_binary_mark_is_taken_off_a_listed_name() -> None:
    with pytest.raises(VerificationError) as caught:
        expected_from_sums(f"{HEX_A} *XubuntuX.iso\n", Path("x.iso.sha256"), "x.iso")
    assert str(caught.value) == "x.iso.sha256: no entry for x.iso (it lists XubuntuX.iso)"


def test_an_upper_case_digest_is_an_entry_read_in_lower_case() -> None:
    # Windows' Get-FileHash writes upper case; PowerShell may add a BOM and CRLFs.
    sums = f"\ufeff{HEX_A.upper()}  x.iso\r\n"
    assert expected_from_sums(sums, Path("S"), "x.iso") == HEX_A
    tagged = f"SHA256 (y.iso) = {HEX_B.upper()}\nSHA256 (my x.iso) = {HEX_A}\n"  # --tag
    assert read_sums(tagged).entries == {"y.iso": HEX_B, "my x.iso": HEX_A}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (f"{'a' * 63}  x.iso", "the digest has 63 hex digits, expected 64"),
        (f"{'a' * 65} *x.iso", "the digest has 65 hex digits, expected 64"),
        (f"{'g' * 64}  x.iso", f"'{'g' * 24}...' is not a hex sha256 digest"),
        ("SHA256 (x.iso) = " + HEX_A[:60], "the digest has 60 hex digits, expected 64"),
        ("\x00\x13\ufffdjunk  x.iso", "binary data, not a checksum line"),
    ],
)
def test_a_malformed_line_for_the_iso_is_named_with_its_number(line: str, problem: str) -> None:
    sums = f"# made by hand\n{HEX_B}  other.iso\n\n{line}\n"
    with pytest.raises(VerificationError) as caught:
        expected_from_sums(sums, Path("/in/SUMS"), "x.iso")
    assert str(caught.value) == f"/in/SUMS: line 4 is malformed: {problem}"
    assert caught.value.hint == (
        "each line must be '<sha256 in hex>  <file name>', as sha256sum writes it; fix the "
        "file or get it again"
    )


def test_a_file_without_any_entry_names_its_first_malformed_line() -> None:
    with pytest.raises(VerificationError) as caught:
        expected_from_sums("\n\x7fELF\x02\x01\n" + HEX_A + "\n", Path("SUMS"), "x.iso")
    assert str(caught.value) == "SUMS: line 2 is malformed: binary data, not a checksum line"
    with pytest.raises(VerificationError) as caught:
        expected_from_sums(HEX_A + "\n", Path("SUMS"), "x.iso")
    assert str(caught.value) == "SUMS: line 1 is malformed: no file name after the digest"


def test_read_sums_keeps_entries_and_malformed_lines_apart() -> None:
    sums = read_sums(f"{HEX_A.upper()} *a.iso\n{HEX_B}  a.iso\nnonsense\n{'b' * 10}  b.iso\n")
    assert sums.entries == {"a.iso": HEX_A}
    assert [(m.number, m.name) for m in sums.malformed] == [(3, None), (4, "b.iso")]
    assert sums.problem_for("b.iso") == sums.malformed[1]
    assert sums.problem_for("c.iso") is None  # it has entries: "no entry" says more


@pytest.mark.parametrize(
    ("digest", "shown"),
    [("g" * 24, f"'{'g' * 24}'"), ("g" * 25, f"'{'g' * 24}...'")],
)
def test_a_long_digest_that_is_not_hex_is_cut_after_24_characters(digest: str, shown: str) -> None:
    assert read_sums(f"{digest}  x.iso\n").malformed[0].problem == (
        f"{shown} is not a hex sha256 digest"
    )


def test_comment_lines_are_neither_entries_nor_malformed() -> None:
    sums = read_sums(f"# SHA256 sums of the release\n#{HEX_A}  x.iso\n{HEX_B}  y.iso\n")
    assert sums == Sums(entries={"y.iso": HEX_B}, malformed=())
    with pytest.raises(VerificationError) as caught:
        expected_from_sums("# nothing here yet\n", Path("SUMS"), "x.iso")
    assert str(caught.value) == "SUMS: no entry for x.iso"
