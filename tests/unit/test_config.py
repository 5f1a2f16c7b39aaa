"""Build config loading: defaults, every problem at once, hints, types."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from isobuild.config import (
    InteractiveSection,
    Shutdown,
    load_config,
    parse_config,
    to_mapping,
    volume_id_for,
    yaml_error,
)
from isobuild.errors import ConfigError, ExitCode
from tests.fixtures.registry import RegistryPki

# An ssh-ed25519 public key line: the key type as an RFC 4251 string, then 32 key bytes.
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f k@x"


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source=Path("appliance.yaml"))
    assert info.value.exit_code == ExitCode.USAGE
    return info.value.problems


def test_embedded_default_matches_the_appliance_reference() -> None:
    config = load_config(None)
    assert config.name == "alga-appliance"
    assert config.appliance.paths.opt == "/opt/alga-appliance"
    assert config.appliance.paths.etc == "/etc/alga-appliance"
    assert config.appliance.paths.state == "/var/lib/alga-appliance"
    assert config.appliance.host_service.port == 8080
    assert [c.value for c in config.appliance.k3s.disable] == ["traefik", "servicelb"]
    assert config.appliance.k3s.write_kubeconfig_mode == "0600"
    assert config.autoinstall.shutdown is Shutdown.POWEROFF
    assert len(config.sha256) == 64


def test_minimal_config_gets_defaults() -> None:
    config = parse_config("name: demo\nversion: 1.2.3\n", source=Path("a.yaml"))
    assert config.volume_id == "demo 1.2.3"
    assert config.iso_filename == "demo-1.2.3.iso"
    assert config.iso.grub.timeout == 5


def test_unknown_key_suggests_the_close_one() -> None:
    problems = _problems("name: demo\nversion: '1'\nautoinstall:\n  identity:\n    hostnme: x\n")
    assert problems == [
        "appliance.yaml: autoinstall.identity.hostnme: unknown key (did you mean "
        "'hostname'?); allowed here: hostname, password_hash, realname, username"
    ]


def test_every_problem_is_reported_at_once() -> None:
    problems = _problems(
        "name: Bad_Name\n"
        "iso: {grub: {timeout: soon}}\n"
        "autoinstall: {shutdown: halt, interactive_sections: [network, disks]}\n"
        "appliance: {paths: {opt: relative/path}, host_service: {port: 70000}}\n"
    )
    text = "\n".join(problems)
    assert "appliance.yaml: name: expected lowercase letters" in text
    assert "appliance.yaml: version: required value is missing" in text
    assert "appliance.yaml: iso.grub.timeout: expected an integer, got 'soon'" in text
    assert "appliance.yaml: autoinstall.shutdown: expected one of 'poweroff', 'reboot'" in text
    assert "appliance.yaml: autoinstall.interactive_sections[1]: expected one of" in text
    assert "appliance.yaml: appliance.paths.opt: expected an absolute path" in text
    assert "appliance.yaml: appliance.host_service.port: expected 1..65535, got 70000" in text
    assert len(problems) == 7


def test_wrong_container_types_name_the_key() -> None:
    problems = _problems(
        "name: a\nversion: '1'\niso: [1, 2]\nautoinstall: {ssh: {authorized_keys: k}}\n"
    )
    assert problems == [
        "appliance.yaml: iso: expected a mapping, got list",
        "appliance.yaml: autoinstall.ssh.authorized_keys: expected a list of a string, got str",
    ]


def test_not_yaml_names_line_and_column() -> None:
    with pytest.raises(ConfigError, match=r"appliance.yaml: not valid YAML \(line 2, column"):
        parse_config("name: a\n  version: [\n", source=Path("appliance.yaml"))


def test_top_level_must_be_a_mapping() -> None:
    assert _problems("- a\n- b\n") == ["appliance.yaml: expected a mapping, got list"]


def test_password_ssh_login_needs_a_hash() -> None:
    problems = _problems("name: a\nversion: '1'\nautoinstall: {ssh: {allow_pw: true}}\n")
    assert problems[0].startswith("appliance.yaml: autoinstall.ssh.allow_pw: password login")


def test_plaintext_password_is_refused_without_showing_it() -> None:
    problems = _problems(
        "name: a\nversion: '1'\nautoinstall: {identity: {password_hash: hunter2-Secret}}\n"
    )
    assert problems == [
        "appliance.yaml: autoinstall.identity.password_hash: not a crypt(3) hash such as "
        "$6$... (value not shown: it may be a password); put the hash here, never the "
        "password: `mkpasswd -m sha-512` makes one"
    ]
    assert "hunter2" not in "\n".join(problems)


def test_lock_path_is_relative_to_the_config(tmp_path: Path) -> None:
    cfg = tmp_path / "sub" / "appliance.yaml"
    cfg.parent.mkdir()
    cfg.write_text("name: a\nversion: '1'\npayload: {lock: ../my.lock.yaml}\n")
    (tmp_path / "my.lock.yaml").write_text("# checked for existence only here\n")
    assert load_config(cfg).payload.lock == tmp_path / "my.lock.yaml"


def test_missing_and_directory_configs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_mapping_is_plain_data() -> None:
    config = parse_config(
        "name: a\nversion: '1'\nautoinstall: {interactive_sections: [storage]}\n",
        source=Path("a.yaml"),
    )
    assert config.autoinstall.interactive_sections == (InteractiveSection.STORAGE,)
    data = to_mapping(config)
    assert data["autoinstall"]["interactive_sections"] == ["storage"]
    assert "source" not in data


def test_volume_id_is_clamped_and_sanitised() -> None:
    assert volume_id_for("x" * 40, "1") == "x" * 32
    assert volume_id_for("a", "1+b") == "a 1_b"
    assert volume_id_for("Demo", "1.0-RC1_x.y") == "Demo 1.0-RC1_x.y"  # kept as typed


# -- appliance.registry.ca_bundle ----------------------------------------------------------

CA_KEY = "appliance.registry.ca_bundle"


def _with_ca(tmp_path: Path, ca: str, extra: str = "") -> Path:
    cfg = tmp_path / "site" / "appliance.yaml"
    cfg.parent.mkdir(exist_ok=True)
    cfg.write_text(f"name: a\nversion: '1'\n{extra}appliance:\n  registry:\n    ca_bundle: {ca}\n")
    return cfg


def _ca_problems(tmp_path: Path, ca: str, extra: str = "") -> list[str]:
    cfg = _with_ca(tmp_path, ca, extra)
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert info.value.exit_code == ExitCode.USAGE
    return info.value.problems


def _one_ca_problem(tmp_path: Path, ca: str) -> str:
    (problem,) = _ca_problems(tmp_path, ca)
    assert problem.startswith(f"{tmp_path}/site/appliance.yaml: {CA_KEY}: ")
    return problem


def test_ca_bundle_is_unset_by_default() -> None:
    assert load_config(None).appliance.registry.ca_bundle is None


def test_ca_bundle_is_relative_to_the_config(tmp_path: Path, registry_pki: RegistryPki) -> None:
    (tmp_path / "pki").mkdir()
    shutil.copy(registry_pki.ca_path, tmp_path / "pki" / "site-ca.pem")
    config = load_config(_with_ca(tmp_path, "../pki/site-ca.pem"))
    assert config.appliance.registry.ca_bundle == tmp_path / "pki" / "site-ca.pem"
    assert to_mapping(config)["appliance"]["registry"]["ca_bundle"] == str(
        tmp_path / "pki" / "site-ca.pem"
    )


def test_ca_bundle_with_comments_and_several_certificates(
    tmp_path: Path, registry_pki: RegistryPki
) -> None:
    ca = registry_pki.ca_path.read_text()
    signer = registry_pki.signing_cert.read_text()
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(f"# site CA\n{ca}\n# the token signer, as a second root\n{signer}")
    config = load_config(_with_ca(tmp_path, str(bundle)))
    assert config.appliance.registry.ca_bundle == bundle


def test_ca_bundle_missing(tmp_path: Path) -> None:
    problem = _one_ca_problem(tmp_path, "ca.pem")
    assert f"{tmp_path}/site/ca.pem: no such file; give a PEM file" in problem
    assert "relative to the config file's directory" in problem


def test_ca_bundle_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    problem = _one_ca_problem(tmp_path, str(tmp_path / "certs"))
    assert problem.endswith("certs: is a directory; give a PEM file with the CA certificate(s) "
                            "that signed the registry's (or the TLS-inspecting proxy's) "
                            "certificate")  # fmt: skip


def test_ca_bundle_unreadable(tmp_path: Path) -> None:
    # A regular file that even root cannot read (offset 0 of this process is unmapped):
    # chmod 000 would not stop root, who runs this suite in CI.
    problem = _one_ca_problem(tmp_path, "/proc/self/mem")
    assert "/proc/self/mem: cannot be read (Input/output error); make it readable" in problem


def test_ca_bundle_in_der_form(tmp_path: Path, registry_pki: RegistryPki) -> None:
    der = x509.load_pem_x509_certificate(registry_pki.ca_path.read_bytes()).public_bytes(
        serialization.Encoding.DER
    )
    (tmp_path / "ca.der").write_bytes(der)
    problem = _one_ca_problem(tmp_path, str(tmp_path / "ca.der"))
    assert "ca.der: not PEM text (binary data, a DER certificate?); convert it with " in problem
    assert "openssl x509 -inform der" in problem


def test_ca_bundle_with_non_ascii_text(tmp_path: Path, registry_pki: RegistryPki) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("# Főtanúsítvány\n" + registry_pki.ca_path.read_text(), encoding="utf-8")
    problem = _one_ca_problem(tmp_path, str(bundle))
    assert "ca.pem: line 1 has a non-ASCII character; keep only the certificate blocks" in problem


def test_ca_bundle_with_a_private_key_is_refused(tmp_path: Path, registry_pki: RegistryPki) -> None:
    bundle = tmp_path / "ca.pem"
    ca = registry_pki.ca_path.read_text()
    bundle.write_text(ca + registry_pki.server_key.read_text())
    problem = _one_ca_problem(tmp_path, str(bundle))
    line = ca.count("\n") + 1
    assert f"ca.pem: line {line} starts a private key; a CA bundle holds certificates only" in (
        problem
    )


def test_ca_bundle_without_a_certificate(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("just some text\n")
    problem = _one_ca_problem(tmp_path, str(tmp_path / "ca.pem"))
    assert "ca.pem: no PEM certificate ('-----BEGIN CERTIFICATE-----') in it; give a PEM" in problem


def test_ca_bundle_with_a_certificate_that_does_not_parse(
    tmp_path: Path, registry_pki: RegistryPki
) -> None:
    good = registry_pki.ca_path.read_text()
    lines = good.splitlines(keepends=True)
    lines[3] = "A" * (len(lines[3]) - 1) + "\n"  # base64 that decodes to no certificate
    bundle = tmp_path / "ca.pem"
    bundle.write_text("# two roots\n" + good + "".join(lines))
    problem = _one_ca_problem(tmp_path, str(bundle))
    second = good.count("\n") + 2
    assert f"ca.pem: certificate 2 of 2 (line {second}) does not parse as X.509 (" in problem
    assert "_ssl.c" not in problem


def test_ca_bundle_problem_is_reported_with_the_others(tmp_path: Path) -> None:
    problems = _ca_problems(tmp_path, "nope.pem", extra="iso: {grub: {timeout: soon}}\n")
    assert len(problems) == 2
    assert problems[0].endswith("iso.grub.timeout: expected an integer, got 'soon'")
    assert f"{CA_KEY}: {tmp_path}/site/nope.pem: no such file" in problems[1]


def test_ca_bundle_named_in_a_config_given_by_relative_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _with_ca(tmp_path, "ca.pem")
    with pytest.raises(ConfigError) as info:
        load_config(Path("site/appliance.yaml"))
    assert info.value.problems[0].startswith(f"site/appliance.yaml: {CA_KEY}: {tmp_path}/site/")


def test_non_default_namespaces_are_refused_naming_the_key() -> None:
    """flux/ hard-codes the namespaces: another name would split the appliance (issue 12)."""
    problems = _problems(
        "name: a\nversion: '1'\nappliance:\n  namespaces: {flux: flux, system: apps, "
        "workloads: msp}\n"
    )
    assert [p.split(": ")[1] for p in problems] == [
        "appliance.namespaces.flux",
        "appliance.namespaces.system",
    ]
    assert problems[1].startswith(
        "appliance.yaml: appliance.namespaces.system: 'apps' is not supported: the release "
        "bundle (flux/)"
    )
    assert "set 'alga-system'" in problems[1]


@pytest.mark.parametrize(
    ("yaml_text", "problem"),
    [
        ("iso: {volume_id: [a]}", "iso.volume_id: expected a string, got list"),
        ("iso: {volume_id: true}", "iso.volume_id: expected a string, got true (YAML reads "
         'it as the boolean true); quote it: volume_id: "true"'),
        ("iso: {grub: {timeout: true}}", "iso.grub.timeout: expected an integer, got True"),
        ("iso: {grub: {timeout: 1.5}}", "iso.grub.timeout: expected an integer, got 1.5"),
        ("autoinstall: {ssh: {allow_pw: 'yes'}}",
         "autoinstall.ssh.allow_pw: expected true or false, got 'yes'"),
        ("autoinstall: {storage: {match: {ssd: 1}}}",
         "autoinstall.storage.match.ssd: expected true or false, got 1"),
        ("autoinstall: {storage: {match: {size: huge}}}",
         "autoinstall.storage.match.size: expected one of 'largest', 'smallest', got 'huge'"),
        (f"autoinstall: {{ssh: {{authorized_keys: ['{KEY}', [x]]}}}}",
         "autoinstall.ssh.authorized_keys[1]: expected a string, got list"),
        ("appliance: {k3s: {disable: traefik}}",
         "appliance.k3s.disable: expected a list of one of 'traefik', 'servicelb', 'metrics-server'"
         ", 'coredns', 'local-storage', got str"),
        ("appliance: {registry: {ca_bundle: ''}}",
         "appliance.registry.ca_bundle: expected a path, got ''"),
        ("appliance: {registry: {ca_bundle: 5}}",
         "appliance.registry.ca_bundle: expected a path, got 5"),
        ("payload: {lock: [a]}", "payload.lock: expected a path, got list"),
        ("autoinstall: {identity: 5}", "autoinstall.identity: expected a mapping, got int"),
    ],
)  # fmt: skip
def test_each_type_error_word_for_word(yaml_text: str, problem: str) -> None:
    assert _problems(f"name: a\nversion: '1'\n{yaml_text}\n") == [f"appliance.yaml: {problem}"]


def test_numbers_where_text_is_expected_are_taken_as_text() -> None:
    config = parse_config("name: a\nversion: 2\niso: {disk_info: 1.5}\n", source=Path("a.yaml"))
    assert (config.version, config.iso.disk_info) == ("2", "1.5")


def test_optional_values_may_be_null() -> None:
    config = parse_config(
        "name: a\nversion: '1'\niso: {volume_id: null}\n"
        "autoinstall: {storage: {match: {size: null}}}\n",
        source=Path("a.yaml"),
    )
    assert config.iso.volume_id is None
    assert config.autoinstall.storage.match.size is None


def test_an_empty_file_reports_the_required_keys() -> None:
    assert _problems("") == [
        "appliance.yaml: name: required value is missing",
        "appliance.yaml: version: required value is missing",
    ]


@pytest.mark.parametrize(
    ("key", "fingerprint"),
    [
        ("0123456789ABCDEF", True),
        ("0x0123456789abcdef", True),
        ("0123456789ABCDEF0123456789ABCDEF01234567", True),
        ("0123456789ABCDE", False),
        ("0123456789ABCDEF0", False),
        ("keys/signing.asc", False),
    ],
)
def test_a_signing_key_is_a_fingerprint_or_a_path_beside_the_config(
    tmp_path: Path, key: str, fingerprint: bool
) -> None:
    text = f"name: a\nversion: '1'\nsigning: {{key: '{key}'}}\n"
    if not fingerprint:
        (tmp_path / key).parent.mkdir(exist_ok=True)
        (tmp_path / key).write_text("a key file\n")
    config = parse_config(text, source=tmp_path / "a.yaml", base_dir=tmp_path)
    expected = key if fingerprint else str((tmp_path / key).resolve())
    assert config.signing.key == expected


def test_a_field_type_without_a_name_is_a_bug_not_a_message() -> None:
    from isobuild.config import conversion

    assert conversion._type_name(tuple[str, ...]) == "a list of a string"
    with pytest.raises(TypeError, match=r"^config field type <class 'int'> has no name here$"):
        conversion._type_name(int)


def test_the_check_factories_word_their_refusals() -> None:
    """The checks are built when the module loads; built here, each is tested as written."""
    from isobuild.config import model, value_checks

    check = value_checks.matches(r"[a-z]+", "lowercase letters")
    assert check("abc") is None
    assert check("ab1") == "expected lowercase letters, got 'ab1'"
    assert check(12) == "expected lowercase letters, got 12"
    between = value_checks.between(1, 3)
    assert [between(v) for v in (1, 3)] == [None, None]
    assert between(0) == "expected 1..3, got 0"
    assert between(4) == "expected 1..3, got 4"
    assert model._check(between) == {"check": between}
    fixed = value_checks.fixed_namespace("flux-system")
    assert fixed("flux-system") is None
    assert fixed("flux") == (
        "'flux' is not supported: the release bundle (flux/) and Flux's install.yaml use "
        "'flux-system', so the appliance's objects would land where Flux never looks; remove "
        "the key or set 'flux-system'"
    )


def test_an_appliance_directory_check_names_its_example() -> None:
    """model.py builds its checks when it loads; built here, one is tested as written."""
    from isobuild.config import value_checks

    directory = value_checks.appliance_dir("/srv/example")
    assert directory("/srv/box") is None
    assert directory("/etc") == (
        "'/etc' is a system directory or holds one; systemd-tmpfiles sets the owner and mode "
        "of this directory at every boot: give a directory of the appliance's own, e.g. "
        "'/srv/example'"
    )


def test_a_number_yaml_reads_keeps_the_text_it_was_written_as() -> None:
    """ConfigLoader's constructors are built when the module loads; built here, each is tested
    as written."""
    from isobuild.config import yaml_source
    from isobuild.config.message_values import Scalar

    construct = yaml_source._keeping_text(yaml.SafeLoader.construct_yaml_int)
    loader = yaml.SafeLoader("0x1F")
    assert construct(loader, loader.get_single_node()) == Scalar(31, "0x1F")
    loader = yaml.SafeLoader("  " + "9" * 5000)
    with pytest.raises(yaml.constructor.ConstructorError) as caught:
        construct(loader, loader.get_single_node())
    assert yaml_error(Path("a.yaml"), caught.value) == (
        f"a.yaml: not valid YAML (line 1, column 3): cannot read '{'9' * 57}...': Exceeds the "
        "limit (4300 digits) for integer string conversion: value has 5000 digits; use "
        "sys.set_int_max_str_digits() to increase the limit"
    )
    assert (caught.value.context, caught.value.context_mark) == (None, None)


def test_a_yaml_error_without_a_position() -> None:
    assert yaml_error(Path("a.yaml"), yaml.YAMLError("boom")) == (
        "a.yaml: not valid YAML (somewhere): boom"
    )


def test_a_missing_config_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml")
    assert str(caught.value) == f"{tmp_path / 'nope.yaml'}: config file not found"
    assert caught.value.hint == "pass --config with an existing file"


@pytest.mark.usefixtures("ascii_locale")
def test_a_config_is_read_as_utf8_whatever_the_locale(tmp_path: Path) -> None:
    path = tmp_path / "appliance.yaml"
    path.write_text(
        "name: a\nversion: '1'\nautoinstall: {identity: {realname: Administrátor}}\n",
        encoding="utf-8",
    )
    assert load_config(path).autoinstall.identity.realname == "Administrátor"


def test_the_cross_checks_word_for_word() -> None:
    problems = _problems(
        "name: a\nversion: '1'\n"
        "autoinstall: {apt_mode: offline, apt_fallback: abort, updates: all,\n"
        "  storage: {layout: direct, sizing_policy: scaled}, ssh: {allow_pw: true}}\n"
    )
    assert problems == [
        "appliance.yaml: autoinstall.apt_fallback: 'abort' applies only with apt_mode: online "
        "(an offline install never asks a mirror); remove it or set apt_mode: online",
        "appliance.yaml: autoinstall.updates: 'all' needs apt_mode: online (an offline install "
        "downloads no updates); remove it or set apt_mode: online",
        "appliance.yaml: autoinstall.storage.sizing_policy: applies only to layout: lvm (the "
        "direct layout always uses the whole disk)",
        "appliance.yaml: autoinstall.ssh.allow_pw: password login over SSH is enabled but "
        "autoinstall.identity.password_hash is not set; set a hash or turn allow_pw off",
    ]


def test_every_unknown_key_is_named_with_or_without_a_suggestion() -> None:
    problems = _problems("name: a\nversion: '1'\nzzzz: 1\nsha256: x\n")
    allowed = "allowed here: appliance, autoinstall, iso, name, payload, signing, version"
    assert problems == [
        f"appliance.yaml: zzzz: unknown key; {allowed}",
        f"appliance.yaml: sha256: unknown key; {allowed}",
    ]


def test_problems_and_yaml_errors_carry_their_hints() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("name: A\nversion: '1'\n", source=Path("a.yaml"))
    assert caught.value.hint == "see docs/config.md for every key and default"
    with pytest.raises(ConfigError) as caught:
        parse_config("name: [\n", source=Path("a.yaml"))
    assert caught.value.hint == (
        "fix the YAML syntax; `python3 -c 'import yaml,sys; yaml.safe_load(sys.stdin)'` < FILE "
        "shows the same error"
    )


def test_a_path_with_dot_dot_is_refused() -> None:
    assert _problems("name: a\nversion: '1'\nappliance: {paths: {opt: /opt/../etc}}\n") == [
        "appliance.yaml: appliance.paths.opt: expected an absolute path without '.' or '..', "
        "got '/opt/../etc'"
    ]


def test_an_unsupported_field_type_is_a_bug() -> None:
    from isobuild.config import conversion, problems

    with pytest.raises(TypeError, match=r"^config field type <class 'float'> is not supported$"):
        conversion._convert(float, 1.0, "x", problems.Problems("a.yaml"))


def test_a_config_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "appliance.yaml"
    path.write_bytes(b"name: \xff\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: cannot read config: 'utf-8' codec can't decode byte 0xff in position 6: "
        "invalid start byte"
    )
