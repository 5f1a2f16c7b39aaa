"""Token, session cookies, CSRF tokens and the login lockout."""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import pytest

from host_service import setup_token
from host_service.sessions import Lockout, SessionKeeper, rotate_key, same_secret


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_token_is_typable_and_strong(tmp_path: Path) -> None:
    token = setup_token.generate()
    assert re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{4}-){4}[0-9A-HJKMNP-TV-Z]{4}", token)
    bits = setup_token.GROUPS * setup_token.GROUP_SIZE * math.log2(len(setup_token.ALPHABET))
    assert bits >= 80
    assert len({setup_token.generate() for _ in range(200)}) == 200


def test_token_matching_forgives_case_spaces_and_lookalikes() -> None:
    token = "0K3M-Q9TD-X2WA-HB5R-N1J4"
    assert setup_token.matches("0k3m q9td x2wa hb5r n1j4", token)
    assert setup_token.matches("OK3MQ9TDX2WAHB5RNIJ4", token)  # O->0, I->1
    assert not setup_token.matches("0K3M-Q9TD-X2WA-HB5R-N1J5", token)
    assert not setup_token.matches("", token)


def test_token_file_is_created_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "setup-token"
    token = setup_token.load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert setup_token.load_or_create(path) == token
    path.chmod(0o644)
    setup_token.load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert setup_token.rotate(path) != token


def test_session_cookie_round_trip_and_tampering(tmp_path: Path) -> None:
    clock = Clock()
    keeper = SessionKeeper(tmp_path / "key", lifetime=3600, clock=clock)
    session, cookie = keeper.issue()
    assert (tmp_path / "key").stat().st_mode & 0o777 == 0o600
    assert keeper.verify(cookie) == session
    body, _, signature = cookie.partition(".")
    assert keeper.verify(body + "." + signature[:-2] + "AA") is None
    assert keeper.verify(body[:-2] + "x." + signature) is None
    assert keeper.verify("") is None
    assert keeper.verify(None) is None
    assert keeper.verify("garbage") is None


def test_sessions_expire(tmp_path: Path) -> None:
    clock = Clock()
    keeper = SessionKeeper(tmp_path / "key", lifetime=60, clock=clock)
    _, cookie = keeper.issue()
    clock.now += 59
    assert keeper.verify(cookie) is not None
    clock.now += 2
    assert keeper.verify(cookie) is None


def test_rotating_the_key_ends_every_session(tmp_path: Path) -> None:
    keeper = SessionKeeper(tmp_path / "key")
    _, cookie = keeper.issue()
    rotate_key(tmp_path / "key")  # what reset-token does, from another process
    assert keeper.verify(cookie) is None


def test_logout_revokes_one_session(tmp_path: Path) -> None:
    keeper = SessionKeeper(tmp_path / "key")
    one, cookie_one = keeper.issue()
    _, cookie_two = keeper.issue()
    keeper.revoke(one)
    assert keeper.verify(cookie_one) is None
    assert keeper.verify(cookie_two) is not None


def test_a_logout_outlives_the_keeper(tmp_path: Path) -> None:
    # A new keeper on the same files is what a restarted service has.
    clock = Clock()
    keeper = SessionKeeper(tmp_path / "key", lifetime=100, clock=clock)
    ended, cookie = keeper.issue()
    _, kept = keeper.issue()
    keeper.revoke(ended)
    revoked = tmp_path / "revoked-sessions.json"
    assert revoked.stat().st_mode & 0o777 == 0o600
    assert cookie not in revoked.read_text()  # ids only: nothing a client can present
    restarted = SessionKeeper(tmp_path / "key", lifetime=100, clock=clock)
    assert restarted.verify(cookie) is None
    assert restarted.verify(kept) is not None


def test_ended_sessions_are_forgotten_once_expired(tmp_path: Path) -> None:
    clock = Clock()
    keeper = SessionKeeper(tmp_path / "key", lifetime=100, clock=clock)
    old = [keeper.issue()[0] for _ in range(3)]
    for session in old:
        keeper.revoke(session)
    clock.now += 150
    young, _ = keeper.issue()
    keeper.revoke(young)
    entries = json.loads((tmp_path / "revoked-sessions.json").read_text())["revoked"]
    assert list(entries) == [young.id]


def test_too_many_logouts_end_every_session(tmp_path: Path) -> None:
    keeper = SessionKeeper(tmp_path / "key", max_revoked=3)
    _, bystander = keeper.issue()
    for _ in range(4):
        keeper.revoke(keeper.issue()[0])
    assert keeper.verify(bystander) is None  # a new key
    assert json.loads((tmp_path / "revoked-sessions.json").read_text())["revoked"] == {}


@pytest.mark.parametrize("text", ["{", '{"revoked": [1]}', "[]", '{"revoked": {"a": "x"}}'])
def test_a_damaged_list_of_ended_sessions_ends_every_session(tmp_path: Path, text: str) -> None:
    keeper = SessionKeeper(tmp_path / "key")
    _, cookie = keeper.issue()
    (tmp_path / "revoked-sessions.json").write_text(text)
    restarted = SessionKeeper(tmp_path / "key")
    assert restarted.verify(cookie) is None  # unknown which ended: none is revived
    _, fresh = restarted.issue()
    assert restarted.verify(fresh) is not None
    assert json.loads((tmp_path / "revoked-sessions.json").read_text()) == {"revoked": {}}


def test_a_reset_token_empties_the_list(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    keeper = SessionKeeper(tmp_path / "key")
    ended, _ = keeper.issue()
    keeper.revoke(ended)
    rotate_key(tmp_path / "key")  # what reset-token does, from another process
    _, cookie = keeper.issue()
    assert keeper.verify(cookie) is not None
    assert json.loads((tmp_path / "revoked-sessions.json").read_text()) == {"revoked": {}}
    assert caplog.messages == [
        "the session key was replaced (reset-token): every session has ended"
    ]


def test_non_ascii_secrets_compare_as_different() -> None:
    assert same_secret("abc", "abc")
    assert not same_secret("abc", "\xe9t\xe9")
    assert not same_secret("abc", "\ud800")


def test_csrf_token_is_per_session(tmp_path: Path) -> None:
    keeper = SessionKeeper(tmp_path / "key")
    one, _ = keeper.issue()
    two, _ = keeper.issue()
    assert one.csrf != two.csrf
    assert keeper.csrf_ok(one, one.csrf)
    assert not keeper.csrf_ok(one, two.csrf)
    assert not keeper.csrf_ok(one, None)
    assert not keeper.csrf_ok(one, "")


def test_lockout_backs_off_per_client() -> None:
    clock = Clock()
    lockout = Lockout(free=3, base=10, ceiling=40, clock=clock)
    assert lockout.failed("a") == 0
    assert lockout.failed("a") == 0
    assert lockout.failed("a") == 10  # third failure: locked
    assert lockout.wait_seconds("a") == pytest.approx(10)
    assert lockout.wait_seconds("b") == 0  # other clients are not affected
    clock.now += 10
    assert lockout.wait_seconds("a") == 0
    assert lockout.failed("a") == 20  # doubles
    clock.now += 20
    assert lockout.failed("a") == 40
    clock.now += 40
    assert lockout.failed("a") == 40  # capped
    lockout.succeeded("a")
    assert lockout.wait_seconds("a") == 0
    assert lockout.failed("a") == 0


def test_lockout_memory_is_bounded() -> None:
    clock = Clock()
    lockout = Lockout(free=1, base=1, clock=clock, max_clients=10)
    for i in range(10):
        lockout.failed(f"c{i}")
    clock.now += 5
    lockout.failed("new")
    assert len(lockout._clients) <= 2


def test_a_damaged_token_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "setup-token"
    path.write_text("half")
    token = setup_token.load_or_create(path)
    assert len(setup_token.normalize(token)) == 20
    assert path.read_text().strip() == token
    assert not list(tmp_path.glob(".setup-token.*"))


def test_two_first_starts_agree_on_one_token(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "state" / "setup-token"
    seen: list[str] = []
    threads = [
        threading.Thread(target=lambda: seen.append(setup_token.load_or_create(path)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1
    assert path.read_text().strip() == seen[0]


def test_a_full_lockout_forgets_exactly_the_clients_whose_wait_is_over() -> None:
    clock = Clock()
    lockout = Lockout(free=1, base=1, clock=clock, max_clients=2)
    lockout.failed("ended")  # locked until now + 1
    clock.now += 0.5
    lockout.failed("waiting")  # locked until now + 1.5
    clock.now += 0.5
    lockout.failed("new")  # full: "ended" ends exactly now and is forgotten
    assert (lockout.failures("ended"), lockout.failures("waiting"), lockout.failures("new")) == (
        0, 1, 1)  # fmt: skip


def test_an_unwritable_list_of_ended_sessions_keeps_them_ended_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keeper = SessionKeeper(tmp_path / "session.key", clock=Clock())
    ended, ended_cookie = keeper.issue()
    _, other_cookie = keeper.issue()
    assert keeper.verify(other_cookie) is not None  # the (empty) list is read now
    keeper.revoked_file.mkdir()  # a directory where the list goes: every write fails
    keeper.revoke(ended)
    assert keeper.verify(ended_cookie) is None
    assert keeper.verify(other_cookie) is not None  # no new key: the others live on
    assert caplog.messages == [
        f"cannot write {keeper.revoked_file} (Is a directory): ended sessions stay ended "
        "only until the service restarts"
    ]


def test_an_ended_session_expiring_right_now_no_longer_counts(tmp_path: Path) -> None:
    clock = Clock()
    keeper = SessionKeeper(tmp_path / "session.key", clock=clock, lifetime=10, max_revoked=1)
    first, _ = keeper.issue()
    clock.now += 10  # first's cookie expires exactly now
    second, _ = keeper.issue()
    _, kept_cookie = keeper.issue()
    keeper.revoke(first)
    keeper.revoke(second)  # first is dropped from the list: still one entry, no new key
    assert keeper.verify(kept_cookie) is not None


def test_too_many_logouts_start_a_new_list_under_a_new_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keeper = SessionKeeper(tmp_path / "session.key", clock=Clock(), max_revoked=1)
    a, _ = keeper.issue()
    b, _ = keeper.issue()
    keeper.revoke(a)
    keeper.revoke(b)
    assert caplog.messages == ["2 sessions ended by logout: a new key ends them all"]
    assert json.loads(keeper.revoked_file.read_text()) == {"revoked": {}}
    _, cookie = keeper.issue()
    assert keeper.verify(cookie) is not None


@pytest.mark.parametrize("start", [1_000_000.0, 10_000_000.0, 100_000_000.0])
def test_cookies_of_every_padding_verify(tmp_path: Path, start: float) -> None:
    """The expiry's digits change the cookie body's length, so its base64 padding."""
    clock = Clock()
    clock.now = start
    keeper = SessionKeeper(tmp_path / "key", clock=clock)
    session, cookie = keeper.issue()
    assert keeper.verify(cookie) == session


def test_a_cookie_expires_at_its_expiry_second(tmp_path: Path) -> None:
    clock = Clock()
    keeper = SessionKeeper(tmp_path / "key", lifetime=60, clock=clock)
    session, cookie = keeper.issue()
    clock.now = session.expires - 0.5
    assert keeper.verify(cookie) is not None
    clock.now = session.expires
    assert keeper.verify(cookie) is None


def test_a_cookie_with_an_extra_dot_is_refused(tmp_path: Path) -> None:
    keeper = SessionKeeper(tmp_path / "key", clock=Clock())
    _, cookie = keeper.issue()
    body, _, signature = cookie.partition(".")
    assert keeper.verify(f"{body}..{signature}") is None
    assert keeper.verify(f"{body}.{signature}.") is None


def test_a_damaged_list_says_so_naming_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keeper = SessionKeeper(tmp_path / "key")
    (tmp_path / "revoked-sessions.json").write_text("[]")
    keeper.verify(keeper.issue()[1])
    assert caplog.messages == [
        f"{tmp_path / 'revoked-sessions.json'} is unreadable (list indices must be integers or "
        "slices, not str): a new session key ends every session"
    ]


def test_an_unknown_client_has_no_failures_and_no_wait() -> None:
    lockout = Lockout(clock=lambda: 0.0)
    assert (lockout.failures("new"), lockout.wait_seconds("new")) == (0, 0.0)


def test_the_cookie_is_compact_json_and_its_parts_unpadded(tmp_path: Path) -> None:
    keeper = SessionKeeper(tmp_path / "key", clock=Clock())
    session, cookie = keeper.issue()
    body = cookie.partition(".")[0]
    assert "=" not in cookie
    assert len(session.id) == 24  # 18 random bytes
    assert len(session.csrf) == 32
    padded = body + "=" * (-len(body) % 4)
    assert base64.urlsafe_b64decode(padded) == (
        f'{{"sid":"{session.id}","exp":{int(session.expires)}}}'.encode()
    )


def test_a_short_key_file_is_replaced_by_a_full_one_without_ending_sessions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "key").write_bytes(b"short")
    keeper = SessionKeeper(tmp_path / "key", clock=Clock())
    _, cookie = keeper.issue()
    assert len((tmp_path / "key").read_bytes()) == 32
    assert keeper.verify(cookie) is not None
    assert caplog.messages == []


def test_the_default_lockout_allows_four_tries_then_waits_30_s_doubling_to_15_min() -> None:
    clock = Clock()
    lockout = Lockout(clock=clock)
    assert [lockout.failed("a") for _ in range(4)] == [0, 0, 0, 0]
    delays = []
    for _ in range(7):
        delays.append(lockout.failed("a"))
        clock.now += delays[-1]
    assert delays == [30, 60, 120, 240, 480, 900, 900]


def test_the_default_lockout_forgets_finished_clients_once_it_holds_10000() -> None:
    clock = Clock()
    lockout = Lockout(free=1, base=1, clock=clock)
    for n in range(10_000):
        lockout.failed(f"c{n}")
    clock.now += 5
    lockout.failed("new")
    assert (lockout.failures("c0"), lockout.failures("new")) == (0, 1)
