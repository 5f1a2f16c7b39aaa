"""Redaction for the support bundle: one test per rule (known values in each encoding, each
secret shape, each structural rule), and what must survive untouched."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest
import yaml

from host_service.support.inventory import kubeconfig_secrets, proxy_secrets, secret_values
from host_service.support.redact import (
    LAST_APPLIED,
    REDACTED,
    Redactor,
    is_secret_key,
    scrub_document,
    scrub_object,
)

CANARY = "Canary-Zx81-qq"


# -- known values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoded",
    [
        CANARY,
        base64.b64encode(CANARY.encode()).decode(),
        base64.b64encode(CANARY.encode()).decode().rstrip("="),
        base64.urlsafe_b64encode(CANARY.encode()).decode().rstrip("="),
        quote(CANARY + "/&"),
        json.dumps(CANARY + '"\n')[1:-1],
        CANARY.encode().hex(),
    ],
    ids=["plain", "base64", "base64-unpadded", "base64url", "url-quoted", "json", "hex"],
)
def test_a_known_value_is_replaced_in_every_encoding(encoded: str) -> None:
    secret = CANARY + ("/&" if "%" in encoded else "") + ('"\n' if "\\" in encoded else "")
    text = f"before {encoded} after"
    redacted = Redactor([secret]).text(text)
    assert encoded not in redacted
    assert redacted.startswith("before ")
    assert redacted.endswith(" after")


def test_a_binary_secret_is_replaced_as_hex_and_base64() -> None:
    key = bytes(range(256))[:32]
    redactor = Redactor([key])
    for form in (key.hex(), base64.b64encode(key).decode(), base64.urlsafe_b64encode(key).decode()):
        assert form.rstrip("=") not in redactor.text(f"x {form} y")
    # Raw bytes in a binary member too.
    assert key not in redactor.data(b"head" + key + b"tail")


def test_the_longest_secret_wins_and_short_values_are_not_known() -> None:
    redactor = Redactor(["abcd", "abcdefgh", "ab"])
    assert redactor.known == 2
    assert redactor.text("abcdefgh ab") == f"{REDACTED} ab"


def test_undecodable_bytes_survive_and_secrets_around_them_do_not() -> None:
    redacted = Redactor([CANARY]).data(b"\xff\xfe" + CANARY.encode() + b"\x80")
    assert redacted == b"\xff\xfe" + REDACTED.encode() + b"\x80"


# -- shapes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "gone", "kept"),
    [
        ("proxy http://ops:hunter22@proxy:3128 x", "hunter22", "proxy:3128"),
        ("Authorization: Bearer abc.def-ghi", "abc.def-ghi", "Authorization: Bearer"),
        ("proxy-authorization: Basic b3BzOnB3", "b3BzOnB3", "proxy-authorization"),
        ("POSTGRES_PASSWORD=s3cr3tvalue next", "s3cr3tvalue", "next"),
        ('{"client_secret": "zzz-123"}', "zzz-123", "client_secret"),
        ("license_key: LIC-9-9-9", "LIC-9-9-9", "license_key"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAAAA\n-----END RSA PRIVATE KEY-----",
            "MIIEow",
            "PRIVATE KEY",
        ),
        ("jwt eyJhbGciOiJI.eyJzdWIiOiIxMjM0.SflKxwRJSMeKKF2QT4f", "SflKxwRJSMeKKF2QT4f", "jwt"),
        ("token is 7K3M-Q9TD-X2WA-HB5R-NJ84 ok", "7K3M-Q9TD-X2WA-HB5R-NJ84", "ok"),
    ],
    ids=[
        "url-credentials",
        "bearer",
        "proxy-basic",
        "env-password",
        "json-secret",
        "license-key",
        "pem-private-key",
        "jwt",
        "setup-token-shape",
    ],
)
def test_secret_shapes_are_replaced(text: str, gone: str, kept: str) -> None:
    redacted = Redactor().text(text)
    assert gone not in redacted
    assert kept in redacted


def test_references_to_secrets_and_ordinary_text_survive() -> None:
    text = (
        "secretName: alga-appliance-secrets\ntokenFile: /var/run/token\n"
        "appUrl: https://psa.example.com\nimage: ghcr.io/nine-minds/alga-psa:1.4.0\n"
        "digest sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
    )
    assert Redactor().text(text) == text


# -- structure -----------------------------------------------------------------------------


def test_secret_objects_keep_keys_and_sizes_only() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "msp"},
        "data": {"postgres-password": base64.b64encode(b"twelve-bytes").decode()},
        "stringData": {"api": CANARY},
    }
    scrubbed = scrub_object(obj)
    assert scrubbed["data"] == {"postgres-password": f"{REDACTED} (12 bytes)"}
    assert CANARY not in json.dumps(scrubbed)
    assert obj["stringData"]["api"] == CANARY  # the original is not changed


def test_last_applied_configuration_and_managed_fields_go() -> None:
    obj = {
        "kind": "ConfigMap",
        "metadata": {
            "name": "c",
            "annotations": {LAST_APPLIED: json.dumps({"data": {"k": CANARY}}), "keep": "me"},
            "managedFields": [{"manager": "kubectl"}],
        },
    }
    scrubbed = scrub_object(obj)
    assert scrubbed["metadata"]["annotations"] == {LAST_APPLIED: REDACTED, "keep": "me"}
    assert "managedFields" not in scrubbed["metadata"]


def test_helm_release_inline_values_never_appear_but_its_history_does() -> None:
    obj = {
        "kind": "HelmRelease",
        "metadata": {"name": "alga-core"},
        "spec": {"values": {"licenseKey": CANARY}, "valuesFrom": [{"kind": "ConfigMap"}]},
        "status": {"history": [{"chartVersion": "1.2.0", "status": "deployed"}]},
    }
    scrubbed = scrub_object(obj)
    assert CANARY not in json.dumps(scrubbed)
    assert scrubbed["spec"]["valuesFrom"] == [{"kind": "ConfigMap"}]
    assert scrubbed["status"]["history"][0]["chartVersion"] == "1.2.0"


def test_secret_named_env_values_are_blanked_in_pods_and_templates() -> None:
    env = [
        {"name": "DB_PASSWORD", "value": CANARY},
        {"name": "APP_URL", "value": "https://psa.example.com"},
        {"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
    ]
    pod = {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"env": env}]}}
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"initContainers": [{"env": env}]}}},
    }
    for scrubbed, found in (
        (scrub_object(pod), lambda o: o["spec"]["containers"][0]["env"]),
        (
            scrub_object(deployment),
            lambda o: o["spec"]["template"]["spec"]["initContainers"][0]["env"],
        ),
    ):
        values = found(scrubbed)
        assert values[0]["value"] == REDACTED
        assert values[1]["value"] == "https://psa.example.com"
        assert values[2]["valueFrom"]["secretKeyRef"]["name"] == "s"


def test_secret_named_keys_are_blanked_in_documents() -> None:
    document = {"token": CANARY, "nested": [{"db-password": "x1x1"}], "secretName": "s", "n": 1}
    assert scrub_document(document) == {
        "token": REDACTED,
        "nested": [{"db-password": REDACTED}],
        "secretName": "s",
        "n": 1,
    }
    assert is_secret_key("clientKey")
    assert not is_secret_key("tokenSecretRef")


# -- where the known values come from ------------------------------------------------------


def test_proxy_password_as_typed_and_decoded() -> None:
    found = proxy_secrets("http://ops:p%40ss-word@proxy:3128")
    assert "p%40ss-word" in found
    assert "p@ss-word" in found


def test_kubeconfig_credentials_including_the_decoded_client_key() -> None:
    key = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n"
    text = yaml.safe_dump(
        {
            "users": [
                {
                    "name": "default",
                    "user": {
                        "token": "tok-123456",
                        "client-key-data": base64.b64encode(key.encode()).decode(),
                    },
                }
            ]
        }
    )
    found = kubeconfig_secrets(text)
    assert "tok-123456" in found
    assert key in found


def test_secret_values_skip_helm_release_records() -> None:
    objects = [
        {"type": "Opaque", "data": {"a": base64.b64encode(b"value-1").decode()}},
        {"type": "helm.sh/release.v1", "data": {"release": base64.b64encode(b"blob").decode()}},
        {"type": "Opaque", "stringData": {"b": "value-2"}},
    ]
    assert secret_values(objects) == ["value-1", "value-2"]
