"""build-info.json, overlays and the install script: pure parts and the host service contract."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import pytest

from host_service.schema import Schema
from host_service.settings import settings_from_document
from isobuild.artifacts.lockfile import load_lock
from isobuild.config import load_config, parse_config
from isobuild.errors import ConfigError
from isobuild.installer import install_payload
from isobuild.installer.build_info import (
    SCHEMA_FILE,
    ImageArchive,
    build_id,
    build_info_document,
    render_build_info,
    site_ca,
)
from isobuild.installer.overlay import (
    add_appliance_target,
    appliance_target_text,
    has_install_section,
    render_overlay,
    units_to_enable,
)
from isobuild.resources import DEFAULT_LOCK, OVERLAYS_DIR
from tests.fixtures.registry import RegistryPki

ARCHIVES = [
    ImageArchive(file="k3s-airgap-images-amd64.tar.zst", sha256="a" * 64, images=()),
    ImageArchive(file="flux-controller-images-amd64.tar", sha256="b" * 64, images=["x:1"]),
]


def document(config_text: str = "name: box\nversion: 1.0.0\n") -> dict:  # type: ignore[type-arg]
    config = parse_config(config_text, source=Path("box.yaml"))
    lock = load_lock(DEFAULT_LOCK)
    return build_info_document(config, lock, build="0123456789abcdef", archives=ARCHIVES)


def test_build_info_is_valid_and_what_the_host_service_reads() -> None:
    doc = document(
        "name: box\nversion: 1.0.0\nappliance:\n"
        "  paths: {opt: /srv/box, etc: /etc/box, state: /var/lib/box}\n"
        "  host_service: {port: 9090}\n  namespaces: {workloads: msp}\n"
        "  k3s: {disable: [traefik], write_kubeconfig_mode: '0600'}\n"
    )
    assert Schema.load(SCHEMA_FILE).problems(doc) == []
    text = render_build_info(doc)
    assert json.loads(text) == doc

    root = Path("/target-root")
    settings = settings_from_document(json.loads(text), root=root, source="build-info.json")

    assert settings.port == 9090
    assert settings.paths.opt == root / "srv/box"
    assert settings.paths.etc == root / "etc/box"
    assert settings.paths.state == root / "var/lib/box"
    assert settings.namespaces.workloads == "msp"
    assert settings.k3s.disable == ("traefik",)
    assert settings.k3s.version == "v1.36.3+k3s1"
    # k3s is installed in place by the late-commands: the host service finds it there.
    assert settings.paths.k3s_binary == root / "usr/local/bin/k3s"
    assert settings.paths.k3s_images == root / "var/lib/rancher/k3s/agent/images"
    assert settings.paths.flux_install == root / "srv/box/flux-install/install.yaml"
    assert settings.build == {"name": "box", "version": "1.0.0", "build_id": "0123456789abcdef"}
    assert settings.standin is False


def test_build_id_is_reproducible_and_input_sensitive() -> None:
    config = load_config(None)
    lock = load_lock(DEFAULT_LOCK)
    base = {"volume_id": "Ubuntu-Server 24.04.3 LTS amd64", "size": 1}
    first = build_id(config, lock, base, 1700000000)
    assert first == build_id(config, lock, base, 1700000000)
    assert first != build_id(config, lock, {**base, "size": 2}, 1700000000)
    assert first != build_id(config, lock, base, 1700000001)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[Service]\nExecStart=/x\n[Install]\nWantedBy=multi-user.target\n", True),
        ("[Service]\nExecStart=/x\n", False),
        ("[Service]\nExecStart=/x\n[Install]\n", False),
        ("# comment\n[Path]\nPathChanged=/etc/issue\n[Install]\nWantedBy=paths.target\n", True),
        ("[Unit]\nDescription=a % sign and = sign\n[Install]\nAlias=y.service\n", True),
    ],
)
def test_install_sections(text: str, expected: bool) -> None:
    assert has_install_section(text) is expected


def test_overlay_renders_templates_copies_files_and_enables_units(tmp_path: Path) -> None:
    overlays = tmp_path / "overlays"
    units = overlays / "etc/systemd/system"
    units.mkdir(parents=True)
    (units / "a.service.j2").write_text(
        "[Service]\nExecStart=/x --port {{ appliance.host_service.port }}\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    (units / "b.service").write_text("[Service]\nExecStart=/y\n")
    (units / "c@.service").write_text("[Service]\nExecStart=/z %i\n[Install]\nWantedBy=x\n")
    (overlays / "usr/bin").mkdir(parents=True)
    (overlays / "usr/bin/tool").write_text("#!/bin/sh\n")
    (overlays / "usr/bin/tool").chmod(0o755)
    (overlays / "usr/bin/__pycache__").mkdir()
    (overlays / "usr/bin/__pycache__/x.pyc").write_bytes(b"\0")

    files = render_overlay(overlays, document(), tmp_path / "out")
    add_appliance_target(files, tmp_path / "out", "box")

    installs = {str(f.install): f for f in files}
    assert set(installs) == {
        "/etc/systemd/system/a.service",
        "/etc/systemd/system/b.service",
        "/etc/systemd/system/c@.service",
        "/usr/bin/tool",
        "/usr/lib/systemd/system/appliance.target",
    }
    assert "--port 8080" in installs["/etc/systemd/system/a.service"].local.read_text()
    assert installs["/usr/bin/tool"].mode == 0o755
    assert units_to_enable(files) == ["a.service", "appliance.target"]
    target = installs["/usr/lib/systemd/system/appliance.target"].local.read_text()
    assert "\nAlso=a.service\n" in target
    assert "\nWantedBy=multi-user.target\n" in target


def test_appliance_target_without_units_has_no_also() -> None:
    text = appliance_target_text("box", [])
    assert "\nAlso=" not in text
    assert has_install_section(text)


def test_overlay_template_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/x.conf.j2").write_text("port={{ appliance.nope }}\n")

    with pytest.raises(ConfigError, match=r"etc/x\.conf\.j2.*template error"):
        render_overlay(tmp_path, document(), tmp_path / "out")


def test_the_repository_overlays_render(tmp_path: Path) -> None:
    # Rendered under the test's own directory: it wrote (and left) /tmp/x before.
    rendered = {str(f.install) for f in render_overlay(OVERLAYS_DIR, document(), tmp_path / "x")}
    assert "/usr/lib/sysusers.d/appliance.conf" in rendered
    assert "/usr/lib/tmpfiles.d/appliance.conf" in rendered
    assert "/etc/default/appliance" in rendered


def _manifest(tmp_path: Path, files: list[dict], **extra: object) -> Path:  # type: ignore[type-arg]
    medium = tmp_path / "medium"
    medium.mkdir()
    doc = {
        "schema": install_payload.SCHEMA,
        "name": "box",
        "version": "1",
        "build_id": "0123456789abcdef",
        "manifest_install": "/opt/box/payload-manifest.json",
        "directories": [],
        "files": files,
        **extra,
    }
    (medium / install_payload.MANIFEST).write_text(json.dumps(doc))
    return medium


def test_install_script_verify_names_every_problem(tmp_path: Path) -> None:
    import hashlib

    medium = _manifest(
        tmp_path,
        [
            {"path": "a", "sha256": hashlib.sha256(b"A").hexdigest(), "size": 1, "mode": "0644",
             "install": "/opt/box/a"},
            {"path": "b", "sha256": "0" * 64, "size": 1, "mode": "0644", "install": None},
            {"path": "c", "sha256": "0" * 64, "size": 1, "mode": "0644", "install": None},
        ],
    )  # fmt: skip
    (medium / "a").write_bytes(b"A")
    (medium / "b").write_bytes(b"B")
    (medium / "extra").write_bytes(b"?")

    problems = install_payload.verify(install_payload.load_manifest(medium), medium)

    assert len(problems) == 3
    assert any(p.endswith("/b: sha256 " + hashlib.sha256(b"B").hexdigest() + ", the manifest "
                          "says " + "0" * 64) for p in problems)  # fmt: skip
    assert any(p.endswith("/c: missing") for p in problems)
    assert any(p.endswith("/extra: not listed in payload-manifest.json") for p in problems)


def test_install_script_refuses_paths_that_escape(tmp_path: Path) -> None:
    medium = _manifest(
        tmp_path,
        [{"path": "../x", "sha256": "0" * 64, "size": 1, "mode": "0644", "install": None}],
    )
    with pytest.raises(SystemExit) as caught:
        install_payload.load_manifest(medium)
    assert caught.value.code == 2


def test_under_keeps_paths_inside_the_target() -> None:
    assert install_payload.under(Path("/t"), "/usr/local/bin/k3s") == Path("/t/usr/local/bin/k3s")
    assert str(PurePosixPath("/")) == "/"


# -- the site registry CA (appliance.registry.ca_bundle) -----------------------------------


def _ca_config(ca: Path, paths: str = "") -> str:
    return f"name: box\nversion: 1.0.0\nappliance:\n{paths}  registry: {{ca_bundle: {ca}}}\n"


def test_build_info_names_the_installed_ca_bundle(registry_pki: RegistryPki) -> None:
    doc = document(_ca_config(registry_pki.ca_path, "  paths: {etc: /etc/box}\n"))
    assert doc["appliance"]["registry"]["ca_bundle"] == "/etc/box/registry-ca.pem"
    assert Schema.load(SCHEMA_FILE).problems(doc) == []
    text = render_build_info(doc)
    # The builder's own path never reaches the appliance.
    assert str(registry_pki.ca_path) not in text

    root = Path("/target-root")
    settings = settings_from_document(json.loads(text), root=root, source="build-info.json")
    assert settings.registry.ca_bundle == root / "etc/box/registry-ca.pem"


def test_build_info_has_no_ca_bundle_unless_configured() -> None:
    doc = document()
    assert "ca_bundle" not in doc["appliance"]["registry"]
    settings = settings_from_document(doc, root=Path("/r"), source="build-info.json")
    assert settings.registry.ca_bundle is None


def test_build_info_schema_wants_an_absolute_ca_bundle_path() -> None:
    doc = document()
    doc["appliance"]["registry"]["ca_bundle"] = "registry-ca.pem"
    problems = Schema.load(SCHEMA_FILE).problems(doc)
    assert [p.path for p in problems] == ["appliance.registry.ca_bundle"]


def test_build_id_follows_the_ca_bundle_bytes(tmp_path: Path, registry_pki: RegistryPki) -> None:
    lock = load_lock(DEFAULT_LOCK)
    base = {"volume_id": "Ubuntu-Server 24.04.3 LTS amd64", "size": 1}
    ids = []
    for site, pem in (("a", registry_pki.ca_path), ("b", registry_pki.ca_path),
                      ("c", registry_pki.signing_cert)):  # fmt: skip
        (tmp_path / site).mkdir()
        (tmp_path / site / "ca.pem").write_bytes(pem.read_bytes())
        config = parse_config(
            _ca_config(Path("ca.pem")), source=Path("box.yaml"), base_dir=tmp_path / site
        )
        ids.append(build_id(config, lock, base, 1700000000))
    # Same config text and CA bytes in another directory: same id; other CA bytes: another.
    assert ids[0] == ids[1]
    assert ids[0] != ids[2]
    plain = parse_config("name: box\nversion: 1.0.0\n", source=Path("box.yaml"))
    assert build_id(plain, lock, base, 1700000000) not in ids


def test_a_ca_bundle_changed_after_loading_stops_the_build(
    tmp_path: Path, registry_pki: RegistryPki
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(registry_pki.ca_path.read_bytes())
    config = parse_config(_ca_config(ca), source=Path("box.yaml"))
    ca.write_text("gone\n")
    with pytest.raises(ConfigError) as caught:
        site_ca(config)
    assert str(caught.value).startswith(
        f"box.yaml: appliance.registry.ca_bundle: {ca}: no PEM certificate"
    )


def test_tmpfiles_keeps_the_ca_bundle_mode_only_when_configured(
    tmp_path: Path, registry_pki: RegistryPki
) -> None:
    def tmpfiles(doc: dict) -> list[list[str]]:  # type: ignore[type-arg]
        out = tmp_path / str(len(list(tmp_path.iterdir())))
        files = render_overlay(OVERLAYS_DIR, doc, out)
        conf = next(f for f in files if str(f.install) == "/usr/lib/tmpfiles.d/appliance.conf")
        return [line.split() for line in conf.local.read_text().splitlines()]

    with_ca = tmpfiles(document(_ca_config(registry_pki.ca_path)))
    assert ["z", "/etc/alga-appliance/registry-ca.pem", "0644", "root", "root", "-"] in with_ca
    without = tmpfiles(document())
    assert not any("registry-ca.pem" in " ".join(line) for line in without)
    assert [] not in without, "no blank lines left by the template"
    assert len(with_ca) == len(without) + 1


def test_environment_file_has_no_listen_address(tmp_path: Path) -> None:
    # The setup unit's --listen is the one listen setting; nothing reads one from here.
    files = render_overlay(OVERLAYS_DIR, document(), tmp_path)
    env = next(f for f in files if str(f.install) == "/etc/default/appliance")
    names = [
        line.split("=", 1)[0]
        for line in env.local.read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert names == ["APPLIANCE_NAME", "APPLIANCE_SETTINGS", "PYTHONPATH"]
