"""SHA256SUMS text and the refusal of keys that must not sign (gpg's colon listing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from isobuild.errors import ConfigError
from isobuild.release.signing import (
    KeyState,
    check_key,
    key_problem,
    needs_passphrase,
    parse_key_listing,
    render_sums,
)
from isobuild.release.verify_iso import parse_sums

FPR = "0123456789ABCDEF0123456789ABCDEF01234567"
LISTING = f"""tru::1:1754438047:0:3:1:5
pub:u:255:22:89ABCDEF01234567:1754438047:::u:::scSC:::::ed25519:::0:
fpr:::::::::{FPR}:
grp:::::::::AAAA:
uid:u::::1754438047::HASH::release@example.invalid::::::::::0:
pub:e:255:22:1111111111111111:1500000000:1600000000::u:::sc:::::ed25519:::0:
fpr:::::::::1111111111111111111111111111111111111111:
uid:e::::1500000000::HASH::old@example.invalid::::::::::0:
pub:r:255:22:2222222222222222:1500000000:::u:::sc:::::ed25519:::0:
fpr:::::::::2222222222222222222222222222222222222222:
uid:r::::1500000000::HASH::revoked@example.invalid::::::::::0:
"""


def test_sums_are_sha256sum_format_sorted_and_read_back() -> None:
    text = render_sums({"b.iso": "b" * 64, "a.json": "a" * 64})
    assert text == f"{'a' * 64}  a.json\n{'b' * 64}  b.iso\n"
    assert parse_sums(text) == {"a.json": "a" * 64, "b.iso": "b" * 64}
    assert parse_sums(f"{'C' * 64} *x.iso\nnot a line\n") == {"x.iso": "c" * 64}


def test_the_listing_gives_each_primary_key_its_fingerprint_uid_and_state() -> None:
    good, expired, revoked = parse_key_listing(LISTING)
    assert good == KeyState(fingerprint=FPR, user_id="release@example.invalid", validity="u",
                            expires=None, can_sign=True)  # fmt: skip
    assert expired.validity == "e"
    assert expired.expires == 1600000000
    assert not expired.can_sign
    assert revoked.user_id == "revoked@example.invalid"


def test_expired_revoked_and_unusable_keys_are_refused_clearly() -> None:
    good, expired, revoked = parse_key_listing(LISTING)
    assert key_problem(good, now=1754438047) is None
    assert key_problem(expired, now=1754438047) == (
        "signing key 1111111111111111111111111111111111111111 (old@example.invalid) expired on "
        "2020-09-13"
    )
    assert "is revoked" in (key_problem(revoked, now=0) or "")
    # Expiry passed but gpg's trust cache not updated yet: the date decides.
    stale = KeyState(fingerprint=FPR, user_id="", validity="u", expires=100, can_sign=True)
    assert "expired on 1970-01-01" in (key_problem(stale, now=200) or "")
    no_sign = KeyState(fingerprint=FPR, user_id="", validity="u", expires=None, can_sign=False)
    assert "no usable signing" in (key_problem(no_sign, now=0) or "")


# gpg 2.2.40 signing with a passphrase-protected key in a home whose agent has no passphrase:
# with the default pinentry (no terminal), then with --pinentry-mode error.
PINENTRY_FAILED = """[GNUPG:] KEY_CONSIDERED F52929DA17DC155EE6320F4BB491B16F7D6BBBA7 0
[GNUPG:] BEGIN_SIGNING H8
[GNUPG:] PINENTRY_LAUNCHED 18153 curses 1.2.1 - xterm - - 0/0 -
[GNUPG:] FAILURE sign 83918950
"""
NO_PINENTRY = """[GNUPG:] KEY_CONSIDERED F52929DA17DC155EE6320F4BB491B16F7D6BBBA7 0
[GNUPG:] BEGIN_SIGNING H8
[GNUPG:] FAILURE sign 67108949
"""


def test_a_sign_failure_for_want_of_a_passphrase_is_recognised() -> None:
    assert needs_passphrase(NO_PINENTRY)
    assert needs_passphrase("[GNUPG:] NEED_PASSPHRASE 1 2 22 0\n")
    assert needs_passphrase("[GNUPG:] FAILURE sign 67108875\n")  # bad passphrase (11)
    assert not needs_passphrase("[GNUPG:] FAILURE sign 67108881\n")  # 17: no secret key
    assert not needs_passphrase(PINENTRY_FAILED)  # pinentry's own error: not reached with
    assert not needs_passphrase("")  # --pinentry-mode error, which key files sign with


def test_a_key_that_is_neither_fingerprint_nor_file_names_both_ways_to_give_one(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "release-key.asc"
    with pytest.raises(ConfigError) as caught:
        check_key(str(missing))  # no gpg run: refused before
    assert caught.value.message == (
        f"signing key {missing}: neither a key fingerprint nor a readable key file"
    )
    assert caught.value.hint == (
        "give --sign-key or the build config's signing.key the fingerprint of a key in "
        "gpg-agent or the path of a secret key file (in the config, relative to the config "
        "file)"
    )
