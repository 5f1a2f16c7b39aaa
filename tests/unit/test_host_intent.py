"""Setup inputs: validated into a record; every bad field named; secrets never echoed."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from host_service.errors import EXIT_USAGE
from host_service.intent import (
    InputErrors,
    IntentStore,
    IntentUnreadable,
    SetupIntent,
    parse_setup,
)


def errors_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InputErrors) as caught:
        parse_setup(data, default_channel="stable")
    return caught.value.errors


def test_minimal_input_gets_the_default_channel() -> None:
    intent = parse_setup({"app_url": "https://psa.example.com/"}, default_channel="stable")
    assert intent == SetupIntent(app_url="https://psa.example.com", channel="stable")
    assert intent.release_ref == "stable"


def test_full_input() -> None:
    intent = parse_setup(
        {
            "app_url": " https://psa.example.com:8443 ",
            "release": "sha256:" + "b" * 64,
            "proxy": "http://user:p%40ss@proxy.example.com:3128",
            "no_proxy": ".corp.example, 10.0.0.0/8\nlocalhost, .corp.example",
        },
        default_channel="stable",
    )
    assert intent.channel is None
    assert intent.release_ref == "sha256:" + "b" * 64
    assert intent.no_proxy == (".corp.example", "10.0.0.0/8", "localhost")
    assert intent.proxy == "http://user:p%40ss@proxy.example.com:3128"


@pytest.mark.parametrize(
    ("data", "field", "fragment"),
    [
        ({}, "app_url", "required"),
        ({"app_url": "psa.example.com"}, "app_url", "https"),
        ({"app_url": "ftp://psa.example.com"}, "app_url", "https"),
        ({"app_url": "https://"}, "app_url", "no valid host"),
        ({"app_url": "https://bad_host!"}, "app_url", "no valid host"),
        ({"app_url": "https://a.example.com/x?y=1"}, "app_url", "query"),
        ({"app_url": "https://a.example.com/app"}, "app_url", "path"),
        ({"app_url": "https://u:p@a.example.com"}, "app_url", "user name"),
        ({"app_url": "https://a.example.com:99999"}, "app_url", "port"),
        ({"app_url": 5}, "app_url", "expected a string"),
        ({"app_url": "https://a.example.com", "channel": "Stable!"}, "channel", "channel"),
        ({"app_url": "https://a.example.com", "release": "latest"}, "release", "version"),
        (
            {"app_url": "https://a.example.com", "release": "1.2.3", "channel": "stable"},
            "release",
            "not both",
        ),
        ({"app_url": "https://a.example.com", "proxy": "socks5://p:1080"}, "proxy", "http"),
        ({"app_url": "https://a.example.com", "proxy": "http://p/path"}, "proxy", "path"),
        ({"app_url": "https://a.example.com", "no_proxy": "x"}, "no_proxy", "with a proxy"),
        (
            {"app_url": "https://a.example.com", "proxy": "http://p:3128", "no_proxy": "a b"},
            "no_proxy",
            "not a host",
        ),
        ({"app_url": "https://a.example.com", "no_proxy": 3}, "no_proxy", "comma-separated"),
        ({"app_url": "https://a.example.com", "chanel": "stable"}, "chanel", "'channel'"),
    ],
)
def test_each_bad_field_is_named(data: dict[str, Any], field: str, fragment: str) -> None:
    errors = errors_of(data)
    assert field in errors, errors
    assert fragment in errors[field]


def test_every_problem_is_reported_at_once() -> None:
    errors = errors_of({"app_url": "nope", "channel": "UP", "proxy": "ftp://x", "extra": 1})
    assert set(errors) == {"app_url", "channel", "proxy", "extra"}


def test_public_view_shows_the_proxy_user_not_the_password() -> None:
    intent = SetupIntent(
        app_url="https://a.example.com",
        channel="stable",
        proxy="http://ops:hunter2@proxy.example.com:3128",
    )
    public = intent.public()
    assert public["proxy"] == "http://ops@proxy.example.com:3128"
    assert public["proxy_password_set"] is True
    assert "hunter2" not in repr(public)
    assert (
        SetupIntent(app_url="https://a.example.com", proxy="http://p:3128").public()[
            "proxy_password_set"
        ]
        is False
    )


STORED = SetupIntent(
    app_url="https://a.example.com", channel="stable", proxy="http://ops:pw%2F1@proxy.example:3128"
)


def proxy_of(stored: SetupIntent | None = STORED, **fields: Any) -> str | None:
    data = {"app_url": "https://a.example.com", **fields}
    return parse_setup(data, default_channel="stable", stored=stored).proxy


def proxy_errors(**fields: Any) -> dict[str, str]:
    with pytest.raises(InputErrors) as caught:
        proxy_of(**fields)
    return caught.value.errors


def test_the_stored_proxy_password_is_kept_for_the_same_user_and_host() -> None:
    # What the form shows, sent back with a new port: the password stays.
    assert proxy_of(proxy="http://ops@proxy.example:3129") == "http://ops:pw%2F1@proxy.example:3129"
    assert proxy_of(proxy="https://ops@proxy.example") == "https://ops:pw%2F1@proxy.example"
    assert proxy_of(proxy="http://ops@proxy.example:3128", proxy_password="") == (
        "http://ops:pw%2F1@proxy.example:3128"
    )


def test_the_proxy_password_is_replaced_or_removed_only_when_asked() -> None:
    assert proxy_of(proxy="http://ops@proxy.example:3128", proxy_password="n3w:p@ss/") == (
        "http://ops:n3w%3Ap%40ss%2F@proxy.example:3128"
    )
    assert proxy_of(proxy="http://ops:typed@proxy.example:3128") == (
        "http://ops:typed@proxy.example:3128"
    )
    assert proxy_of(proxy="http://ops@proxy.example:3128", proxy_password_clear=True) == (
        "http://ops@proxy.example:3128"
    )
    assert proxy_of(proxy="http://other@proxy.example:3128") == "http://other@proxy.example:3128"
    assert proxy_of(proxy="http://proxy.example:3128") == "http://proxy.example:3128"
    assert proxy_of() is None
    assert proxy_of(None, proxy="http://ops@proxy.example:3128") == "http://ops@proxy.example:3128"


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"proxy": "http://ops@elsewhere.example:3128"}, "proxy host changed"),
        ({"proxy": "http://proxy.example:3128", "proxy_password": "x"}, "needs a user name"),
        ({"proxy": "http://ops:a@proxy.example", "proxy_password": "b"}, "has a password already"),
        (
            {
                "proxy": "http://ops@proxy.example",
                "proxy_password": "b",
                "proxy_password_clear": True,
            },
            "not both",
        ),
        ({"proxy_password": "b"}, "only meaningful with a proxy"),
        ({"proxy": "http://ops@proxy.example", "proxy_password": 5}, "expected a string"),
    ],
)
def test_proxy_password_mistakes_are_named(fields: dict[str, Any], fragment: str) -> None:
    errors = proxy_errors(**fields)
    assert fragment in errors["proxy_password"]


def test_clearing_must_be_a_boolean() -> None:
    errors = proxy_errors(proxy="http://ops@proxy.example", proxy_password_clear="yes")
    assert "true or false" in errors["proxy_password_clear"]


def test_store_round_trip_is_private(tmp_path: Path) -> None:
    store = IntentStore(tmp_path / "state" / "setup-inputs.json")
    assert store.load() is None
    intent = SetupIntent(
        app_url="https://a.example.com", release="1.4.2", proxy="http://p:3128", no_proxy=(".corp",)
    )
    store.save(intent)
    assert store.load() == intent
    assert store.path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "intent",
    [
        SetupIntent(app_url="https://a.example.com", channel="stable"),
        SetupIntent(app_url="http://10.0.0.5:8443", release="sha256:" + "ab" * 32),
        SetupIntent(
            app_url="https://psa.example.com",
            release="v1.4.2-rc.1",
            proxy="http://ops:p%40ss%3Aw0rd@[fd00::1]:3128",
            no_proxy=(".corp", "10.0.0.0/8"),
        ),
    ],
    ids=["channel", "digest", "proxy-with-password"],
)
def test_what_setup_stores_loads_back_unchanged(tmp_path: Path, intent: SetupIntent) -> None:
    # load checks the file by setup's own rules: what setup wrote must pass them as it is.
    assert parse_setup(intent.to_json(), default_channel="other") == intent
    store = IntentStore(tmp_path / "setup-inputs.json")
    store.save(intent)
    assert store.load() == intent


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b'{"app_url": "https://a.exa', "not JSON (Unterminated string"),
        (b"", "not JSON (Expecting value"),
        (b"\xff\xfe{}", "not UTF-8 text"),
        (b"null", "expected a JSON object, got null"),
        (b"[]", "expected a JSON object, got a list"),
        (b'"x"', "expected a JSON object, got a string"),
        (b"1.5", "expected a JSON object, got a number"),
        (b"true", "expected a JSON object, got true or false"),
        (b'{"app_url": "https://a.example.com"}', "names neither a channel nor a release"),
        # blank: a release step would resolve "" at the registry
        (b'{"app_url": "https://a.example.com", "channel": ""}',
         "names neither a channel nor a release"),
        (b'{"app_url": "https://a.example.com", "channel": "  "}',
         "names neither a channel nor a release"),
        (b'{"app_url": "https://a.example.com", "release": ""}',
         "names neither a channel nor a release"),
        (b'{"channel": "stable"}', "app_url: required"),
        (b'{"app_url": 5, "channel": "stable"}', "app_url: expected a string, got int"),
        (
            b'{"app_url": "https://a.example.com", "channel": "x", "proxy": "http://p:1",'
            b' "no_proxy": 5}',
            "no_proxy: expected a comma-separated list",
        ),
        (
            b'{"app_url": "https://a.example.com", "channel": "Not A Channel/../x"}',
            "channel: expected a channel name",
        ),
        (
            b'{"app_url": "https://a.example.com", "channel": "stable", "proxi": null}',
            "proxi: unknown field (did you mean 'proxy'?)",
        ),
    ],
    ids=[
        "truncated", "empty", "not-utf8", "null", "list", "string", "number", "bool", "no-ref",
        "empty-channel", "blank-channel", "empty-release", "no-url",
        "url-type", "no-proxy-type", "bad-channel", "typo",
    ],
)  # fmt: skip
def test_a_damaged_inputs_file_is_one_error_naming_it(
    tmp_path: Path, content: bytes, why: str
) -> None:
    store = IntentStore(tmp_path / "setup-inputs.json")
    store.path.write_bytes(content)
    with pytest.raises(IntentUnreadable) as raised:
        store.load()
    assert raised.value.message.startswith(f"{store.path}: {why}"), raised.value.message
    assert raised.value.exit_code == EXIT_USAGE
    assert raised.value.hint == (
        "enter the setup inputs again on the setup page (the service moves this file aside "
        "when it starts), or restore the file from a copy"
    )
    assert store.path.read_bytes() == content  # load only reads


def test_an_error_in_stored_inputs_shows_no_proxy_password(tmp_path: Path) -> None:
    store = IntentStore(tmp_path / "setup-inputs.json")
    data = {"app_url": "ftp://a.example.com", "channel": "stable",
            "proxy": "http://ops:Hunter2Canary@proxy.example:3128/path"}  # fmt: skip
    store.path.write_text(json.dumps(data))
    with pytest.raises(IntentUnreadable) as raised:
        store.load()
    assert raised.value.message == (
        f"{store.path}: app_url: expected a URL starting with https:// or http://, such as "
        "https://host; proxy: proxy must not have a path"
    )
    assert "Hunter2Canary" not in raised.value.message


def test_the_service_s_store_moves_damaged_inputs_aside_and_keeps_them_private(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = IntentStore(tmp_path / "setup-inputs.json", sets_aside=True)
    store.path.write_text('{"app_url": "https://a.exa')
    store.path.chmod(0o600)
    assert store.load() is None
    assert not store.path.exists()
    [aside] = tmp_path.iterdir()
    assert aside.name.startswith("setup-inputs.json.corrupt-")
    assert aside.read_text() == '{"app_url": "https://a.exa'
    assert aside.stat().st_mode & 0o777 == 0o600
    try:
        json.loads('{"app_url": "https://a.exa')
    except ValueError as exc:
        why = str(exc)
    assert caplog.messages == [
        f"{store.path}: not JSON ({why}); moved to {aside.name}: enter the setup inputs again"
    ]
    # Valid inputs, and none at all, are left as they are.
    intent = SetupIntent(app_url="https://a.example.com", channel="stable")
    store.save(intent)
    assert store.load() == intent
    store.path.unlink()
    assert store.load() is None


def test_readers_at_once_move_damaged_inputs_aside_once(tmp_path: Path) -> None:
    store = IntentStore(tmp_path / "setup-inputs.json", sets_aside=True)
    store.path.write_text("[]")
    start = threading.Barrier(8)
    seen: list[SetupIntent | None] = []

    def read() -> None:
        start.wait()
        seen.append(store.load())

    readers = [threading.Thread(target=read) for _ in range(8)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    assert seen == [None] * 8
    assert len(list(tmp_path.glob("setup-inputs.json.corrupt-*"))) == 1


@pytest.mark.usefixtures("ascii_locale")
def test_inputs_edited_by_hand_are_read_as_utf8_whatever_the_locale(tmp_path: Path) -> None:
    # The service writes ASCII (JSON escapes); an editor writes the password as typed.
    store = IntentStore(tmp_path / "setup-inputs.json", sets_aside=True)
    proxy = "http://ops:Grüße@proxy.example:3128"
    data = {"app_url": "https://a.example.com", "channel": "stable", "proxy": proxy}
    store.path.write_bytes(json.dumps(data, ensure_ascii=False).encode("utf-8"))
    assert store.load() == SetupIntent(
        app_url="https://a.example.com", channel="stable", proxy=proxy
    )
