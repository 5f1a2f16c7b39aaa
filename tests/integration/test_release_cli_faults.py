"""`isobuild release push`/`show` and the Publisher against a misbehaving registry: a refusal
is one line at once (no oras-py retries, sleeps or log lines), and a registry that stops
answering is a timeout, never a hang."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from host_service.oci import Credentials
from isobuild.cli import main
from isobuild.errors import PayloadError
from isobuild.release.bundle import Artifact, build_bundle, write_layout
from isobuild.release.publish import Publisher
from isobuild.resources import FLUX_DIR
from tests.fixtures.registry import RegistryPki
from tests.integration.test_oci_faults import (
    MANIFEST,
    NO_ANSWER,
    Answer,
    MisbehavingRegistry,
    Start,
    misbehaving_registries,
    truncated,
)
from tests.unit.test_release import sample

DISK_ON_FIRE = json.dumps({"errors": [{"code": "UNKNOWN", "message": "disk on fire"}]}).encode()


@pytest.fixture
def misbehaving(registry_pki: RegistryPki) -> Iterator[Start]:
    yield from misbehaving_registries(registry_pki)


def isobuild(args: Sequence[str]) -> Result:
    env = {"ISOBUILD_REGISTRY_USERNAME": "publisher", "ISOBUILD_REGISTRY_PASSWORD": "pw"}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def push_to(fake: MisbehavingRegistry, bundle: Artifact, tmp_path: Path) -> Result:
    """`isobuild release push` of a sample release with ``bundle`` as its config, to
    ``fake`` (the bundle's layout and the manifest written under ``tmp_path``)."""
    write_layout(bundle, tmp_path / "bundle.tar", force=False)
    document = sample()
    document["config"] = {"repository": f"{fake.host}/it/cfg", "digest": bundle.digest}
    (tmp_path / "release.json").write_text(json.dumps(document))
    return isobuild(
        ["release", "push", str(tmp_path / "release.json"),
         "--bundle", str(tmp_path / "bundle.tar"), "--to", f"{fake.host}/it/x-release",
         "--ca-file", str(fake.ca_path)]
    )  # fmt: skip


def in_thread(work: Callable[[], None]) -> BaseException | None:
    """Run ``work``; a hang fails the test instead of stopping the suite."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "hung: no timeout on the request"
    return raised[0] if raised else None


def test_an_upload_answered_500_fails_at_once_in_one_line(
    misbehaving: Start, tmp_path: Path
) -> None:
    def route(method: str, path: str) -> Answer:
        if method == "POST":
            return Answer(500, {"Content-Type": "application/json"}, DISK_ON_FIRE)
        return Answer(404)

    fake = misbehaving(route)
    bundle = build_bundle(FLUX_DIR)
    result = push_to(fake, bundle, tmp_path)
    assert result.exit_code == 1, result.output
    first_blob = bundle.blobs[0].digest
    assert result.stderr.splitlines() == [
        f"error: {fake.host}/it/cfg: upload of blob {first_blob} refused with HTTP 500: "
        "UNKNOWN disk on fire"
    ], "one line: no oras-py log lines"
    assert fake.count("POST", "/v2/it/cfg/blobs/uploads/") == 1, "oras-py's retries are off"


def test_an_upload_whose_token_is_refused_says_so_once_with_the_hint(
    misbehaving: Start, tmp_path: Path
) -> None:
    """oras-py logs its own ERROR line when it gets no token; ours says it, once."""
    host: list[str] = []

    def route(method: str, path: str) -> Answer:
        if path == "/token":
            return Answer(401)
        if method == "POST":
            challenge = f'Bearer realm="https://{host[0]}/token",service="fake",scope="x"'
            return Answer(401, {"Www-Authenticate": challenge})
        return Answer(404)

    fake = misbehaving(route)
    host.append(fake.host)
    bundle = build_bundle(FLUX_DIR)
    result = push_to(fake, bundle, tmp_path)
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [
        f"error: {fake.host}/it/cfg: blob {bundle.blobs[0].digest}: Cannot respond to request "
        "for authentication.",
        "hint: set ISOBUILD_REGISTRY_USERNAME and ISOBUILD_REGISTRY_PASSWORD (or --password-stdin)",
    ]
    assert fake.count("GET", "/token") == 1


def test_an_upload_never_answered_times_out(misbehaving: Start) -> None:
    fake = misbehaving(lambda method, path: NO_ANSWER if method == "POST" else Answer(404))

    def push() -> None:
        with Publisher(fake.host, credentials=None, ca_bundle=fake.ca_path, timeout=(5, 1)) as p:
            p.push_blob("it/cfg", b"data", "application/x-test")

    raised = in_thread(push)
    assert isinstance(raised, PayloadError)
    assert str(raised).startswith(f"{fake.host}/it/cfg: blob sha256:")
    assert "Read timed out" in str(raised)
    assert fake.count("POST", "/v2/it/cfg/blobs/uploads/") == 1, "an unanswered POST is not resent"


def test_a_token_service_that_never_answers_times_out(misbehaving: Start) -> None:
    """oras-py's own token request (its auth backend shares the session) has the timeout too."""
    host: list[str] = []

    def route(method: str, path: str) -> Answer:
        if path == "/token":
            return NO_ANSWER
        if method == "POST":
            challenge = f'Bearer realm="https://{host[0]}/token",service="fake",scope="x"'
            return Answer(401, {"Www-Authenticate": challenge})
        return Answer(404)

    fake = misbehaving(route)
    host.append(fake.host)

    def push() -> None:
        with Publisher(
            fake.host, credentials=Credentials("u", "p"), ca_bundle=fake.ca_path, timeout=(5, 1)
        ) as publisher:
            publisher.push_blob("it/cfg", b"data", "application/x-test")

    raised = in_thread(push)
    assert isinstance(raised, PayloadError)
    assert "Read timed out" in str(raised)
    assert fake.count("GET", "/token") == 1


def test_show_of_a_truncated_release_manifest_is_one_line(misbehaving: Start) -> None:
    fake = misbehaving(lambda method, path: truncated(MANIFEST))
    result = isobuild(
        ["release", "show", f"{fake.host}/it/x-release:stable", "--ca-file", str(fake.ca_path)]
    )
    assert result.exit_code == 1, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith(
        f"error: {fake.host}/it/x-release:stable: the answer from {fake.host} broke off: "
        "IncompleteRead("
    )


@pytest.mark.parametrize(("status", "said"), [(500, "the registry answered HTTP 500"),
                                               (403, "access refused: HTTP 403")])  # fmt: skip
def test_show_says_what_the_registry_answered(misbehaving: Start, status: int, said: str) -> None:
    fake = misbehaving(lambda method, path: Answer(status))
    result = isobuild(
        ["release", "show", f"{fake.host}/it/x-release:stable", "--ca-file", str(fake.ca_path)]
    )
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[0].startswith(
        f"error: {fake.host}/it/x-release:stable: manifest: {said}"
    )
