"""Setup input errors word for word (what the form shows beside each field), the limits at
their edges, and the proxy URL and password as stored and as shown."""

from __future__ import annotations

from typing import Any

import pytest

from host_service.intent import (
    MAX_URL,
    InputErrors,
    SetupIntent,
    parse_setup,
    with_password,
)

URL = "https://a.example.com"
PROXY = "http://proxy.example:3128"


def errors_of(data: dict[str, Any], stored: SetupIntent | None = None) -> dict[str, str]:
    with pytest.raises(InputErrors) as caught:
        parse_setup(data, default_channel="stable", stored=stored)
    assert str(caught.value) == "; ".join(f"{k}: {v}" for k, v in caught.value.errors.items())
    return caught.value.errors


def parsed(**data: Any) -> SetupIntent:
    return parse_setup({"app_url": URL, **data}, default_channel="stable")


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({}, {"app_url": "required: the public URL users open, e.g. https://psa.example.com"}),
        ({"app_url": "   "},
         {"app_url": "required: the public URL users open, e.g. https://psa.example.com"}),
        ({"app_url": 5}, {"app_url": "expected a string, got int"}),
        ({"app_url": "psa.example.com"},
         {"app_url": "expected a URL starting with https:// or http://, such as https://host"}),
        ({"app_url": "https://a .example.com"}, {"app_url": "URL must not contain spaces"}),
        ({"app_url": "https://a.example.com\t"}, {}),
        ({"app_url": "https://"}, {"app_url": "URL has no valid host name"}),
        ({"app_url": "https://-bad.example.com"}, {"app_url": "URL has no valid host name"}),
        ({"app_url": "https://a.example.com:0"}, {"app_url": "URL has an invalid port"}),
        ({"app_url": "https://a.example.com:x"}, {"app_url": "URL has an invalid port"}),
        ({"app_url": "https://a.example.com?x=1"},
         {"app_url": "URL must not have a query or fragment"}),
        ({"app_url": "https://a.example.com#top"},
         {"app_url": "URL must not have a query or fragment"}),
        ({"app_url": "https://a.example.com/app"}, {"app_url": "URL must not have a path"}),
        ({"app_url": "https://u@a.example.com"},
         {"app_url": "must not contain a user name or password"}),
        ({"app_url": URL, "channel": "Stable"},
         {"channel": "expected a channel name such as 'stable' or 'nightly'"}),
        ({"app_url": URL, "channel": 7}, {"channel": "expected a string, got int"}),
        ({"app_url": URL, "release": "latest"},
         {"release": "expected a version such as 1.4.2 or a digest sha256:<64 hex>"}),
        ({"app_url": URL, "release": "1.2.3", "channel": "stable"},
         {"release": "give a channel or a pinned release, not both"}),
        ({"app_url": URL, "release": "latest", "channel": "stable"},
         {"release": "expected a version such as 1.4.2 or a digest sha256:<64 hex>"}),
        ({"app_url": URL, "proxy": "socks5://p:1080"},
         {"proxy": "expected a URL starting with http:// or https://, such as http://host"}),
        ({"app_url": URL, "proxy": "http://p:3128/x"}, {"proxy": "proxy must not have a path"}),
        ({"app_url": URL, "proxy": "http://p :3128"}, {"proxy": "proxy must not contain spaces"}),
        ({"app_url": URL, "no_proxy": ".corp"}, {"no_proxy": "only meaningful with a proxy"}),
        ({"app_url": URL, "proxy": PROXY, "no_proxy": "a b"},
         {"no_proxy": "not a host, domain or CIDR: 'a b'"}),
        ({"app_url": URL, "proxy": PROXY, "no_proxy": ["ok", 3]},
         {"no_proxy": "expected a comma-separated list of hosts, domains or CIDRs"}),
        ({"app_url": URL, "proxy": PROXY, "no_proxy": ",".join(f"h{n}" for n in range(65))},
         {"no_proxy": "at most 64 entries"}),
        ({"app_url": URL, "proxy_password": "x"},
         {"proxy_password": "only meaningful with a proxy"}),
        ({"app_url": URL, "proxy": PROXY, "proxy_password": 5},
         {"proxy_password": "expected a string, got int"}),
        ({"app_url": URL, "proxy": PROXY, "proxy_password_clear": "yes"},
         {"proxy_password_clear": "expected true or false, got 'yes'"}),
        ({"app_url": URL, "proxy": PROXY, "proxy_password": "x"},
         {"proxy_password": "a password needs a user name: http://user@host:port"}),
        ({"app_url": URL, "proxy": "http://u:a@p:1", "proxy_password": "b"},
         {"proxy_password": "the proxy URL has a password already; give it once"}),
        ({"app_url": URL, "proxy": "http://u@p:1", "proxy_password": "b",
          "proxy_password_clear": True},
         {"proxy_password": "give a new password or remove it, not both"}),
        ({"app_url": URL, "chanel": "stable"},
         {"chanel": "unknown field (did you mean 'channel'?)"}),
        ({"app_url": URL, "zzz": 1}, {"zzz": "unknown field"}),
    ],
)  # fmt: skip
def test_each_error_word_for_word(data: dict[str, Any], errors: dict[str, str]) -> None:
    if not errors:
        parse_setup(data, default_channel="stable")
        return
    assert errors_of(data) == errors


def test_a_bad_proxy_reports_the_proxy_not_its_password() -> None:
    errors = errors_of({"app_url": URL, "proxy": "ftp://p", "proxy_password": "x"})
    assert errors == {
        "proxy": "expected a URL starting with http:// or https://, such as http://host"
    }


def test_the_url_length_limit_is_inclusive() -> None:
    # A URL of exactly MAX_URL characters is measured further (its host is too long).
    labels = ".".join(["a" * 60] * 40)[: MAX_URL - len("https://") - 4] + ".com"
    exact = "https://" + labels
    assert len(exact) == MAX_URL
    assert errors_of({"app_url": exact}) == {"app_url": "URL has no valid host name"}
    assert errors_of({"app_url": exact + "m"}) == {"app_url": "longer than 2048 characters"}


def test_host_names_and_addresses() -> None:
    assert parsed(proxy="http://[2001:db8::1]:3128").proxy == "http://[2001:db8::1]:3128"
    assert parsed(proxy="http://192.0.2.1:3128").proxy == "http://192.0.2.1:3128"
    assert parsed(app_url="https://psa.example.com.").app_url == "https://psa.example.com."
    assert parse_setup({"app_url": "http://" + "a" * 63}, default_channel="s").app_url
    name = ".".join(["a" * 63] * 4)[:253]
    assert parse_setup({"app_url": f"https://{name}"}, default_channel="s").app_url
    assert errors_of({"app_url": f"https://{name}x"}) == {"app_url": "URL has no valid host name"}
    assert errors_of({"app_url": "https://" + "a" * 64}) == {
        "app_url": "URL has no valid host name"
    }


def test_values_are_trimmed_and_a_trailing_slash_dropped() -> None:
    intent = parse_setup(
        {"app_url": " https://a.example.com/ ", "channel": " nightly ", "proxy": PROXY + "/"},
        default_channel="stable",
    )
    assert intent == SetupIntent(app_url=URL, channel="nightly", proxy=PROXY)


def test_a_pinned_release_has_no_channel() -> None:
    assert parsed(release="v1.4.2-rc.1").channel is None
    assert parsed(release="1.4.2").release == "1.4.2"
    assert parsed(release="sha256:" + "0" * 64).release_ref == "sha256:" + "0" * 64


def test_no_proxy_lists_in_either_form_keep_order_and_drop_duplicates() -> None:
    as_text = parsed(proxy=PROXY, no_proxy="b.corp,\n a.corp , ,b.corp")
    as_list = parsed(proxy=PROXY, no_proxy=[" b.corp", "a.corp", "", "b.corp"])
    assert as_text.no_proxy == as_list.no_proxy == ("b.corp", "a.corp")
    assert parsed(proxy=PROXY, no_proxy=[f"h{n}" for n in range(64)]).no_proxy[-1] == "h63"
    assert parsed(proxy=PROXY, no_proxy=None).no_proxy == ()


def test_with_password_replaces_keeps_or_drops_only_the_password() -> None:
    assert with_password("http://u:old@p:3128/x", "new") == "http://u:new@p:3128/x"
    assert with_password("http://u:old@p:3128", None) == "http://u@p:3128"
    assert with_password("http://p:3128", "new") == "http://p:3128"
    assert with_password("https://u@p", None) == "https://u@p"


def test_the_public_view_and_the_stored_record() -> None:
    intent = SetupIntent(app_url=URL, release="1.4.2", proxy="http://u:s3cret@p:1",
                         no_proxy=(".corp", "10.0.0.0/8"))  # fmt: skip
    assert intent.public() == {
        "app_url": URL,
        "channel": None,
        "release": "1.4.2",
        "proxy": "http://u@p:1",
        "proxy_password_set": True,
        "no_proxy": [".corp", "10.0.0.0/8"],
    }
    assert intent.to_json() == {
        "app_url": URL,
        "channel": None,
        "release": "1.4.2",
        "proxy": "http://u:s3cret@p:1",
        "no_proxy": [".corp", "10.0.0.0/8"],
    }
    assert SetupIntent(app_url=URL).public()["proxy"] is None
    assert SetupIntent(app_url=URL).public()["proxy_password_set"] is False
    assert SetupIntent(app_url=URL).release_ref == ""


def test_a_stored_password_never_goes_to_another_host() -> None:
    stored = SetupIntent(app_url=URL, proxy="http://u:pw@p:1")
    assert errors_of({"app_url": URL, "proxy": "http://u@q:1"}, stored) == {
        "proxy_password": (
            "the proxy host changed: type the password again, or tick 'remove the password'"
        )
    }
    kept = parse_setup({"app_url": URL, "proxy": "http://u@p:2"}, default_channel="s",
                       stored=stored)  # fmt: skip
    assert kept.proxy == "http://u:pw@p:2"
    no_password = SetupIntent(app_url=URL, proxy="http://u@p:1")
    again = parse_setup({"app_url": URL, "proxy": "http://u@q:1"}, default_channel="s",
                        stored=no_password)  # fmt: skip
    assert again.proxy == "http://u@q:1"


def test_several_errors_read_as_one_line_each_named() -> None:
    with pytest.raises(InputErrors) as caught:
        parse_setup({"app_url": "x", "channel": "UP"}, default_channel="stable")
    assert str(caught.value) == (
        "app_url: expected a URL starting with https:// or http://, such as https://host; "
        "channel: expected a channel name such as 'stable' or 'nightly'"
    )


def test_a_url_is_kept_as_typed_but_for_a_trailing_slash() -> None:
    assert parsed(app_url="https://PSA.Example.X/").app_url == "https://PSA.Example.X"


def test_a_clear_flag_that_is_not_a_boolean_is_not_taken_as_true() -> None:
    data = {"app_url": URL, "proxy": "http://u@p:1", "proxy_password": "x",
            "proxy_password_clear": "yes"}  # fmt: skip
    assert errors_of(data) == {"proxy_password_clear": "expected true or false, got 'yes'"}
