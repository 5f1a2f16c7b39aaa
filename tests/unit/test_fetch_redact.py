"""Mirror credentials in a URL never reach a log line, an error or the attempt record."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3

from isobuild.artifacts.fetch import (
    HttpDownloader,
    MirrorUrlSource,
    UpstreamSource,
    make_source,
    redact_url,
)
from isobuild.artifacts.lockfile import PinnedFile
from isobuild.errors import ConfigError, PayloadError

SECRET = "S3cretPW"
MIRROR = f"http://user:{SECRET}@127.0.0.1:9/m"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (MIRROR, "http://***@127.0.0.1:9/m"),
        ("https://TOKEN@mirror.example/x", "https://***@mirror.example/x"),
        ("http://u:p@ss@host:80/a@b", "http://***@host:80/a@b"),  # "@" in the password
        ("https://mirror.example/a@b?c=d@e", "https://mirror.example/a@b?c=d@e"),
        ("GET http://a:b@h/x failed via http://c:d@proxy:3128", "GET http://***@h/x failed via "
         "http://***@proxy:3128"),
        ("/media/usb/mirror", "/media/usb/mirror"),
    ],
)  # fmt: skip
def test_redact_url_hides_the_userinfo_of_every_url(text: str, shown: str) -> None:
    assert redact_url(text) == shown


class _Refusing(requests.Session):
    """A session whose every GET times out connecting, as requests reports it."""

    def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        pool = urllib3.HTTPConnectionPool("127.0.0.1", 9)
        reason = urllib3.exceptions.ConnectTimeoutError(pool, f"timed out ({url!s})")
        raise requests.exceptions.ConnectTimeout(
            urllib3.exceptions.MaxRetryError(pool, "/m/x", reason=reason)
        )


def _answer(status: int) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.raw = io.BytesIO(b"")
    return response


class _Unavailable(requests.Session):
    def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        return _answer(503)


class _Missing(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.asked.append(str(url))
        return _answer(404)


@pytest.mark.parametrize("session", [_Refusing, _Unavailable])
def test_retries_and_the_final_error_name_the_mirror_without_its_password(
    session: type[requests.Session], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    http = HttpDownloader(session(), retries=2, sleep=lambda _: None)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PayloadError) as caught:
        http.download(f"{MIRROR}/k3s/v1/k3s", tmp_path / "k3s", label="k3s")
    assert caught.value.message.startswith(
        "http://***@127.0.0.1:9/m/k3s/v1/k3s: download failed after 3 attempts: "
    )
    if session is _Refusing:
        assert caught.value.message.endswith("connecting to 127.0.0.1:9 timed out")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    for text in (caught.value.message, *warnings, *http.attempts, caplog.text):
        assert SECRET not in text
        assert "user" not in text


def _pin(base_url: str) -> PinnedFile:
    return PinnedFile(component="k3s", role="binary", name="k3s", sha256="0" * 64,
                      version="v1.36.3+k3s1", base_url=base_url,
                      checksum_file="sha256sum-amd64.txt")  # fmt: skip


def test_an_http_error_and_the_mirror_paths_hide_the_password(tmp_path: Path) -> None:
    pin = _pin("https://github.com/k3s-io/k3s/releases/download/v1.36.3+k3s1")
    session = _Missing()
    source = MirrorUrlSource(MIRROR, HttpDownloader(session, retries=0))
    assert source.describe(pin) == "http://***@127.0.0.1:9/m/k3s/v1.36.3%2Bk3s1/k3s"
    with pytest.raises(PayloadError) as caught:
        source.download(pin, tmp_path / "k3s")
    assert session.asked == [f"{MIRROR}/k3s/v1.36.3%2Bk3s1/k3s"]  # requests still gets them
    assert caught.value.message == "http://***@127.0.0.1:9/m/k3s/v1.36.3%2Bk3s1/k3s: HTTP 404"
    with pytest.raises(PayloadError) as caught:
        source.checksum_text(pin)
    assert caught.value.message == (
        "http://***@127.0.0.1:9/m/k3s/v1.36.3%2Bk3s1/sha256sum-amd64.txt: HTTP 404"
    )


def test_a_lock_file_url_with_credentials_is_hidden_too() -> None:
    upstream = UpstreamSource(HttpDownloader(_Missing(), retries=0))
    pin = _pin(f"https://ci:{SECRET}@releases.example/k3s")
    assert upstream.describe(pin) == "https://***@releases.example/k3s/k3s"
    with pytest.raises(PayloadError) as caught:
        upstream.checksum_text(pin)
    assert SECRET not in caught.value.message


def test_an_unsupported_mirror_scheme_is_named_without_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        make_source(f"ftp://user:{SECRET}@mirror.example/m", progress=False)
    assert caught.value.message == "--mirror ftp://***@mirror.example/m: unsupported scheme"
