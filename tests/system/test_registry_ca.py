"""The site registry CA (``appliance.registry.ca_bundle``): installed, not trusted system-wide."""

from __future__ import annotations

import hashlib
import json
import shlex
from typing import Any

import pytest
import testinfra.host

from tests.system.target import BootedTarget

# Runs on the guest: dials the registry with the system trust store (requests, as the host
# service does without a bundle, and the ssl module's defaults) and with the bundle.
_PROBE = """
import json, socket, ssl, sys
import requests
host, port, bundle = sys.argv[1], int(sys.argv[2]), sys.argv[3]
url = f"https://{host}:{port}/v2/"
seen = {}
try:
    seen["requests_system"] = requests.get(url, timeout=30).status_code
except requests.exceptions.SSLError as exc:
    seen["requests_system"] = f"refused: {exc}"
seen["requests_bundle"] = requests.get(url, timeout=30, verify=bundle).status_code
try:
    with socket.create_connection((host, port), timeout=30) as raw:
        with ssl.create_default_context().wrap_socket(raw, server_hostname=host):
            seen["ssl_system"] = "trusted"
except ssl.SSLCertVerificationError as exc:
    seen["ssl_system"] = f"refused: {exc.verify_message}"
print(json.dumps(seen))
"""


def _configured(appliance_target: BootedTarget) -> str:
    if appliance_target.config.appliance.registry.ca_bundle is None:
        pytest.skip("the build config sets no appliance.registry.ca_bundle")
    return f"{appliance_target.paths['etc']}/registry-ca.pem"


def test_the_ca_bundle_is_installed_from_the_iso(
    host: testinfra.host.Host, appliance_target: BootedTarget, build_info: dict[str, Any]
) -> None:
    installed = _configured(appliance_target)
    local = appliance_target.config.appliance.registry.ca_bundle
    assert local is not None
    f = host.file(installed)
    assert (f.is_file, f"{f.mode:04o}", f.user, f.group) == (True, "0644", "root", "root")
    assert f.sha256sum == hashlib.sha256(local.read_bytes()).hexdigest()
    assert build_info["appliance"]["registry"]["ca_bundle"] == installed


def test_only_the_appliance_trusts_the_suite_ca(
    host: testinfra.host.Host, appliance_target: BootedTarget
) -> None:
    """The guest's trust store refuses the registry; the installed bundle gets it.

    So a passing preflight (test_bootstrap.py) is the ca_bundle feature's doing.
    """
    if appliance_target.suite_ca is None:
        pytest.skip("the registry is the site config's, not the one the suite serves")
    installed = _configured(appliance_target)
    registry_host, port = appliance_target.registry_host.rsplit(":", 1)
    # The suite's CA is in no file of the guest's trust store.
    marker = appliance_target.suite_ca.read_text().splitlines()[1]
    found = host.run(f"grep -rlF {shlex.quote(marker)} /etc/ssl/certs/ /usr/local/share/")
    assert found.stdout == "", found.stdout

    out = host.check_output(
        "python3 -c " + " ".join(shlex.quote(a) for a in (_PROBE, registry_host, port, installed))
    )
    seen = json.loads(out)
    assert str(seen["requests_system"]).startswith("refused: "), seen
    assert "CERTIFICATE_VERIFY_FAILED" in seen["requests_system"], seen
    assert seen["ssl_system"].startswith("refused: "), seen
    assert seen["requests_bundle"] == 200, seen
