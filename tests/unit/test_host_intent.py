"""Setup inputs: validated into a record; every bad field named; secrets never echoed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from host_service.intent import InputErrors, IntentStore, SetupIntent, parse_setup


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


def test_public_view_hides_proxy_credentials() -> None:
    intent = SetupIntent(
        app_url="https://a.example.com",
        channel="stable",
        proxy="http://ops:hunter2@proxy.example.com:3128",
    )
    public = intent.public()
    assert public["proxy"] == "http://***@proxy.example.com:3128"
    assert public["proxy_has_credentials"] is True
    assert "hunter2" not in repr(public)


def test_store_round_trip_is_private(tmp_path: Path) -> None:
    store = IntentStore(tmp_path / "state" / "setup-inputs.json")
    assert store.load() is None
    intent = SetupIntent(
        app_url="https://a.example.com", release="1.4.2", proxy="http://p:3128", no_proxy=(".corp",)
    )
    store.save(intent)
    assert store.load() == intent
    assert store.path.stat().st_mode & 0o777 == 0o600
