"""Timestamps, durations and the reading of poll failures, held to exact answers (mutation
testing found their edges unprotected; docs/testing.md, "Operator views")."""

from __future__ import annotations

import time

import pytest

from host_service.operate.snapshot import NOT_READ, Reading, why
from host_service.operate.times import duration, parse_time, utc_text

NOW = 1_796_454_000.0  # 2026-12-05T07:00:00Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-05T07:00:00Z", NOW),
        ("2026-12-05T07:00:00.250000Z", NOW + 0.25),
        ("2026-12-05T08:00:00+01:00", NOW),
        ("2026-12-05T07:00:00", NOW),  # no zone: the API's times are UTC
        ("", None),
        ("yesterday", None),
        (None, None),
        (1_796_454_000, None),
    ],
)
def test_parse_time(text: object, expected: float | None) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (-5, "0s"),
        (0, "0s"),
        (59.9, "59s"),
        (119, "119s"),
        (120, "2m"),
        (3599, "59m"),
        (3600, "1h"),
        (3660, "1h1m"),
        (47 * 3600 + 59 * 60, "47h59m"),
        (48 * 3600, "2d"),
        (49 * 3600, "2d1h"),
        (30 * 86400 + 5 * 3600 + 59, "30d5h"),
    ],
)
def test_duration_in_kubectl_words(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_utc_text() -> None:
    assert utc_text(NOW + 5.9) == "2026-12-05 07:00:05 UTC"
    assert utc_text(0.0) == "1970-01-01 00:00:00 UTC"
    assert utc_text(None) == "—"


def test_a_readings_age_is_from_its_last_good_read() -> None:
    assert Reading(None, None, None, None, 0, None) == NOT_READ
    assert NOT_READ.age(NOW) is None
    reading = Reading(value=[1], read_at=NOW - 12.5, tried_at=NOW)
    assert reading.age(NOW) == 12.5
    assert reading.age(NOW - 20) == 0.0  # a clock step back never makes it negative


@pytest.mark.parametrize(
    ("error", "meaning"),
    [
        (
            "Unable to connect to the server: net/http: TLS handshake timeout",
            "did not answer in time",
        ),
        ("kubectl timed out after 10 s", "did not answer in time"),
        ("context deadline exceeded", "did not answer in time"),
        ("dial tcp 127.0.0.1:6443: connect: connection refused", "k3s is not running"),
        ("dial tcp: lookup kube.local: no such host", "k3s is not running"),
        ("The connection to the server 127.0.0.1:6443 was refused", "k3s is not running"),
        ('error: the server doesn\'t have a resource type "helmreleases"', "not installed yet"),
        ('no matches for kind "HelmRelease" in version "v2"', "not installed yet"),
        ("kubectl: not found", "kubectl is missing"),
        ("/usr/local/bin/k3s: not found", "kubectl is missing"),
        ("exec: no such file or directory: not found", "kubectl is missing"),
        ("Error from server (Forbidden): pods is forbidden", "credentials were refused"),
        ("error: You must be logged in to the server (Unauthorized)", "credentials were refused"),
    ],
)
def test_why_reads_each_failure(error: str, meaning: str) -> None:
    found = why(error)
    assert meaning in found
    assert found.endswith(f"({error})")


def test_why_words_exactly_and_leaves_others_alone() -> None:
    assert why("TIMEOUT") == "the Kubernetes API did not answer in time (TIMEOUT)"
    assert why("Connection Refused") == (
        "k3s is not running: its API refuses connections (Connection Refused)"
    )
    assert why("No matches for kind X") == (
        "not installed yet: the cluster does not know this kind (No matches for kind X)"
    )
    assert why("KUBECTL NOT FOUND") == "kubectl is missing on this host (KUBECTL NOT FOUND)"
    assert why("Forbidden") == "the service's credentials were refused (Forbidden)"
    # "not found" alone is an object that is not there, not a missing program.
    assert why('helmreleases "db" not found') == 'helmreleases "db" not found'
    assert why("something else") == "something else"


def test_utc_text_is_utc_whatever_the_hosts_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert utc_text(NOW) == "2026-12-05 07:00:00 UTC"
        assert parse_time("2026-12-05T07:00:00") == NOW  # a stamp without a zone is UTC
    finally:
        monkeypatch.undo()
        time.tzset()
