"""The registry fixture is a real token-auth registry, not a pass-through."""

from __future__ import annotations

import time

import requests
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fixtures.registry import (
    ISSUER,
    SERVICE,
    RunningRegistry,
    libtrust_key_id,
    sign_jwt,
)


def test_challenge_names_the_token_realm(registry: RunningRegistry) -> None:
    response = requests.get(f"https://{registry.host}/v2/", verify=registry.ca_path, timeout=10)
    assert response.status_code == 401
    challenge = response.headers["Www-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'realm="{registry.token_url}"' in challenge
    assert f'service="{SERVICE}"' in challenge


def _claims(repository: str) -> dict[str, object]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "sub": "",
        "aud": SERVICE,
        "exp": now + 60,
        "nbf": now - 10,
        "iat": now,
        "jti": "forged",
        "access": [{"type": "repository", "name": repository, "actions": ["pull"]}],
    }


def test_registry_refuses_a_token_signed_by_an_untrusted_key(registry: RunningRegistry) -> None:
    registry.push_artifact("fixture/forged", "v1")
    rogue = ec.generate_private_key(ec.SECP256R1())
    forged = sign_jwt(_claims("fixture/forged"), rogue, libtrust_key_id(rogue.public_key()))
    response = requests.head(
        f"https://{registry.host}/v2/fixture/forged/manifests/v1",
        headers={"Authorization": f"Bearer {forged}"},
        verify=registry.ca_path,
        timeout=10,
    )
    assert response.status_code == 401


def test_token_service_requires_valid_credentials(registry: RunningRegistry) -> None:
    params = {"service": SERVICE, "scope": "repository:fixture/x:pull,push"}
    bad = requests.get(
        registry.token_url,
        params=params,
        auth=(registry.username, "wrong"),
        verify=registry.ca_path,
        timeout=10,
    )
    assert bad.status_code == 401
    anonymous = requests.get(registry.token_url, params=params, verify=registry.ca_path, timeout=10)
    assert anonymous.status_code == 200
    assert registry.policy.requests[-1].granted == (("fixture/x", ("pull",)),)
