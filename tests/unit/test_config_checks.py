"""Build config values that used to pass the load and fail (or ship) later: each is refused
when the config is loaded, naming the file and the key, and never echoing a secret."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from isobuild import config as config_module
from isobuild.artifacts.lockfile import parse_lock
from isobuild.config import load_config, parse_config
from isobuild.errors import ConfigError, ExitCode
from isobuild.installer.autoinstall import render_autoinstall
from isobuild.resources import DEFAULT_LOCK, SCHEMAS_DIR

HEAD = "name: a\nversion: '1'\n"


def _problems(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source=Path("appliance.yaml"), **kwargs)  # type: ignore[arg-type]
    assert info.value.exit_code == ExitCode.USAGE
    return info.value.problems


def _one(text: str, **kwargs: object) -> str:
    (problem,) = _problems(HEAD + text, **kwargs)
    return problem


def _public(key: object) -> str:
    return (
        key.public_key()
        .public_bytes(  # type: ignore[attr-defined,no-any-return]
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        .decode()
    )


ED25519 = ed25519.Ed25519PrivateKey.generate()
ED25519_PUB = _public(ED25519)
ED25519_PRIVATE = ED25519.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.OpenSSH,
    serialization.NoEncryption(),
).decode()


def _keys_config(*keys: str) -> str:
    return "autoinstall:\n  ssh:\n    authorized_keys: " + json.dumps(list(keys)) + "\n"


# -- 1. appliance.paths ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("opt", "/opt/alga appliance", "expected an absolute path of letters, digits"),
        ("opt", "/opt/a\nExecStartPre=/bin/true", "expected an absolute path of letters"),
        ("opt", "/opt//alga", "expected an absolute path of letters"),
        ("opt", "/opt/alga/", "expected an absolute path of letters"),
        ("opt", "/opt/./alga", "expected an absolute path without '.' or '..'"),
        ("etc", "/etc", "'/etc' is a system directory or holds one"),
        ("state", "/", "'/' is a system directory or holds one"),
        ("state", "/var/lib", "'/var/lib' is a system directory or holds one"),
        ("state", "/var", "'/var' is a system directory or holds one"),
        ("opt", "/usr", "'/usr' is a system directory or holds one"),
        ("opt", "/usr/local", "'/usr/local' is a system directory or holds one"),
        ("etc", "/etc/systemd", "'/etc/systemd' is a system directory or holds one"),
        ("opt", "/opt", "'/opt' is a system directory or holds one"),
        ("state", "/tmp/alga", "'/tmp/alga' is inside /tmp, cleaned by systemd-tmpfiles"),
        ("state", "/run/alga", "'/run/alga' is inside /run, emptied at every boot"),
        ("state", "/home/alga", "'/home/alga' is inside /home, the users' home directories"),
        ("state", "/var/lib/rancher/k3s/x", "inside /var/lib/rancher, k3s's own"),
        ("state", "/proc/1", "inside /proc, a kernel file system"),
    ],
)
def test_an_appliance_path_must_be_a_plain_directory_of_its_own(
    key: str, value: str, fragment: str
) -> None:
    problem = _one(f"appliance:\n  paths:\n    {key}: {json.dumps(value)}\n")
    assert problem.startswith(f"appliance.yaml: appliance.paths.{key}: ")
    assert fragment in problem
    assert "\n" not in problem


def test_a_refused_system_directory_names_an_example_for_its_key() -> None:
    problem = _one("appliance: {paths: {etc: /etc}}\n")
    assert problem.endswith("give a directory of the appliance's own, e.g. '/etc/alga-appliance'")


@pytest.mark.parametrize(
    "paths",
    [
        {"opt": "/srv/box", "etc": "/etc/box", "state": "/var/lib/box"},
        {"opt": "/usr/local/lib/alga_1.2", "etc": "/etc/alga-appliance", "state": "/data/alga"},
        {"opt": "/opt/a", "etc": "/opt/ab", "state": "/opt/a-state"},
    ],
)
def test_plain_distinct_paths_are_accepted(paths: dict[str, str]) -> None:
    config = parse_config(HEAD + f"appliance: {{paths: {json.dumps(paths)}}}\n", source=Path("a"))
    assert config.appliance.paths.state == paths["state"]


def test_the_paths_must_be_distinct_and_not_nested() -> None:
    problems = _problems(
        HEAD + "appliance: {paths: {opt: /srv/a, etc: /srv/a, state: /srv/a/state}}\n"
    )
    assert problems == [
        "appliance.yaml: appliance.paths.etc: '/srv/a' is also appliance.paths.opt ('/srv/a'); "
        "each needs a directory of its own (systemd-tmpfiles gives them different owners and "
        "modes)",
        "appliance.yaml: appliance.paths.state: '/srv/a/state' is inside appliance.paths.opt "
        "('/srv/a'); each needs a directory of its own (systemd-tmpfiles gives them different "
        "owners and modes)",
        "appliance.yaml: appliance.paths.state: '/srv/a/state' is inside appliance.paths.etc "
        "('/srv/a'); each needs a directory of its own (systemd-tmpfiles gives them different "
        "owners and modes)",
    ]


def test_a_path_holding_another_is_named_too() -> None:
    problem = _one("appliance: {paths: {opt: /srv/a/b/c, etc: /srv/a}}\n")
    assert problem.startswith(
        "appliance.yaml: appliance.paths.etc: '/srv/a' holds appliance.paths.opt ('/srv/a/b/c')"
    )


def test_each_path_is_compared_with_every_path_before_it() -> None:
    # state has nothing to do with opt, and is inside etc, which comes after opt.
    assert _one("appliance: {paths: {opt: /srv/a, etc: /srv/b, state: /srv/b/state}}\n") == (
        "appliance.yaml: appliance.paths.state: '/srv/b/state' is inside appliance.paths.etc "
        "('/srv/b'); each needs a directory of its own (systemd-tmpfiles gives them different "
        "owners and modes)"
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("relative/path", "expected an absolute path, got 'relative/path'"),
        ("/opt/alga appliance",
         "expected an absolute path of letters, digits, '.', '_' and '-' with single '/' "
         "between names and none at the end (it is written unquoted into systemd units and "
         "tmpfiles.d), got '/opt/alga appliance'"),
    ],
)  # fmt: skip
def test_a_path_that_is_not_plain_is_refused_word_for_word(value: str, problem: str) -> None:
    assert _one(f"appliance: {{paths: {{opt: {json.dumps(value)}}}}}\n") == (
        f"appliance.yaml: appliance.paths.opt: {problem}"
    )


# -- 2. the password hash is never shown ---------------------------------------------------


@pytest.mark.parametrize(
    "value", ["hunter2-Secret", "'$6$with space'", "123456", "'$1$md5$old'", "[hunter2]"]
)
def test_a_password_hash_that_is_not_one_is_never_shown(value: str) -> None:
    problem = _one(f"autoinstall: {{identity: {{password_hash: {value}}}}}\n")
    assert problem.startswith("appliance.yaml: autoinstall.identity.password_hash: ")
    for secret in ("hunter2", "Secret", "with space", "123456", "md5$old"):
        assert secret not in problem
    if value == "123456":  # a YAML number: said as a type, not quoted back
        assert problem.endswith("expected a string, got int")
    elif value == "[hunter2]":
        assert problem.endswith("expected a string, got list")
    else:
        assert "(value not shown: it may be a password)" in problem
        assert "`mkpasswd -m sha-512`" in problem


@pytest.mark.parametrize(
    "value",
    [
        "$6$salt$hash",  # sha-512
        "$y$j9T$salt$hash",  # yescrypt, what Ubuntu's mkpasswd makes by default
        "$5$salt$hash",  # sha-256
        "$2a$12$hash",  # bcrypt, in each of its three spellings
        "$2b$12$hash",
        "$2y$12$hash",
    ],
)
def test_every_crypt_hash_ubuntu_reads_is_accepted(value: str) -> None:
    config = parse_config(
        HEAD + f"autoinstall: {{identity: {{password_hash: '{value}'}}}}\n", source=Path("a")
    )
    assert config.autoinstall.identity.password_hash == value


# -- 3. YAML numbers where text is expected --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name: a\nversion: 1.10\n",
         'version: expected a string, got 1.10 (YAML reads it as the number 1.1); quote it: '
         'version: "1.10"'),
        ("name: 0123\nversion: '1'\n",
         'name: expected a string, got 0123 (YAML reads it as the number 83); quote it: '
         'name: "0123"'),
        (HEAD + "appliance: {k3s: {write_kubeconfig_mode: 0600}}\n",
         "appliance.k3s.write_kubeconfig_mode: expected a string, got 0600 (YAML reads it as "
         'the number 384); quote it: write_kubeconfig_mode: "0600"'),
        (HEAD + "autoinstall: {keyboard_layout: no}\n",
         "autoinstall.keyboard_layout: expected a string, got no (YAML reads it as the "
         'boolean false); quote it: keyboard_layout: "no"'),
        ("name: a\nversion: 2024-01-02\n",
         "version: expected a string, got 2024-01-02 (YAML reads it as a date); quote it: "
         'version: "2024-01-02"'),
        ("name: a\nversion: 1_000\n",
         "version: expected a string, got 1_000 (YAML reads it as the number 1000); quote it: "
         'version: "1_000"'),
        (HEAD + "iso: {disk_info: 1.50}\n",
         "iso.disk_info: expected a string, got 1.50 (YAML reads it as the number 1.5); quote "
         'it: disk_info: "1.50"'),
    ],
)  # fmt: skip
def test_a_number_that_would_change_is_refused_with_how_to_quote_it(
    text: str, problem: str
) -> None:
    assert _problems(text) == [f"appliance.yaml: {problem}"]


def test_a_number_that_reads_back_as_written_is_taken_as_text() -> None:
    config = parse_config(
        "name: 7\nversion: 1.0\niso: {volume_id: 2024, grub: {timeout: 10}}\n", source=Path("a")
    )
    assert (config.name, config.version, config.iso.volume_id) == ("7", "1.0", "2024")
    assert config.iso.grub.timeout == 10
    assert config.iso_filename == "7-1.0.iso"


def test_a_number_where_a_section_is_expected_is_shown_as_read() -> None:
    problem = _one("autoinstall: {interactive_sections: [network, 0x1]}\n")
    assert problem == (
        "appliance.yaml: autoinstall.interactive_sections[1]: expected one of 'network', "
        "'storage', 'identity', got 1"
    )


def test_a_number_too_long_for_python_is_a_yaml_error_not_a_crash() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("name: a\nversion: " + "9" * 5000 + "\n", source=Path("a.yaml"))
    assert str(info.value).startswith("a.yaml: not valid YAML (line 2, column 10): cannot read")
    assert len(str(info.value)) < 300


# -- 4. duplicate keys -----------------------------------------------------------------------


def test_duplicate_keys_are_refused_with_their_lines() -> None:
    problems = _problems(
        "name: a\nversion: '1'\nautoinstall:\n  identity: {hostname: a}\n  timezone: Etc/UTC\n"
        "  identity: {hostname: b, hostname: c}\nname: b\n"
    )
    assert problems == [
        "appliance.yaml: line 6: duplicate key 'identity' (first on line 4 in this mapping); "
        "YAML keeps only the last one, so remove or merge the other",
        "appliance.yaml: line 6: duplicate key 'hostname' (twice in this mapping); YAML keeps "
        "only the last one, so remove or merge the other",
        "appliance.yaml: line 7: duplicate key 'name' (first on line 1 in this mapping); YAML "
        "keeps only the last one, so remove or merge the other",
    ]


def test_duplicates_come_with_the_other_problems() -> None:
    problems = _problems(HEAD + "iso: {grub: {timeout: soon}}\nversion: '2'\n")
    assert [p.split(": ")[1] for p in problems] == ["line 4", "iso.grub.timeout"]


def test_merge_keys_and_aliases_are_no_duplicates() -> None:
    data, duplicates = config_module.load_yaml(
        "base: &base {a: 1, b: 2}\nx: {<<: *base, a: 3}\ny: [*base, *base]\n"
    )
    assert duplicates == []
    assert data["x"] == {"a": 3, "b": 2}


def test_a_duplicate_in_an_aliased_mapping_is_found_once_and_none_after_it_is_missed() -> None:
    _, duplicates = config_module.load_yaml(
        "dup: {d: 1, d: 2}\nbase: &b {a: 1, a: 2}\nx: *b\ny: *b\n"
    )
    assert duplicates == [
        config_module.DuplicateKey(line=1, first_line=1, key="d"),
        config_module.DuplicateKey(line=2, first_line=2, key="a"),
    ]


def test_a_duplicate_after_a_merge_key_is_found() -> None:
    _, duplicates = config_module.load_yaml("base: &b {a: 1}\nx: {<<: *b, c: 1, c: 2}\n")
    assert duplicates == [config_module.DuplicateKey(line=2, first_line=2, key="c")]


def test_a_list_as_a_key_is_a_yaml_error_not_a_crash() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("? [a, b]\n: 1\n", source=Path("a.yaml"))
    assert str(info.value) == "a.yaml: not valid YAML (line 1, column 3): found unhashable key"


def test_a_lock_file_with_a_duplicate_key_is_refused() -> None:
    text = DEFAULT_LOCK.read_text()
    doubled = text.replace("k3s:\n", "k3s:\n  version: v0.0.0\n", 1)
    assert doubled != text
    with pytest.raises(ConfigError) as info:
        parse_lock(doubled, source=Path("payload.lock.yaml"))
    assert info.value.exit_code == ExitCode.USAGE
    assert any(
        p.startswith("payload.lock.yaml: line ") and "duplicate key 'version' (first on line" in p
        for p in info.value.problems
    )


# -- 5. what the autoinstall schema checks is checked at load time ----------------------------


def test_the_locale_pattern_is_the_schemas() -> None:
    schema = json.loads((SCHEMAS_DIR / "autoinstall.json").read_text())
    pattern = schema["properties"]["locale"]["pattern"]
    for locale in ("en_US.UTF-8", "de_CH.UTF-8", "C", "C.UTF-8", "sr_RS@latin", "klingon"):
        accepted = config_module.LOCALE(locale) is None
        assert accepted == bool(re.search(pattern, locale)), locale


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("autoinstall: {locale: klingon}",
         "autoinstall.locale: expected a locale such as en_US.UTF-8, got 'klingon'"),
        ("autoinstall: {interactive_sections: [network, storage, network]}",
         "autoinstall.interactive_sections: 'network' is listed more than once; list each once"),
        ("autoinstall: {ssh: {authorized_keys: ['']}}",
         "autoinstall.ssh.authorized_keys[0]: is empty; give a public key: `[options ]<type> "
         "<base64>[ comment]`, one line of a .pub file"),
    ],
)  # fmt: skip
def test_schema_rules_are_config_errors_naming_the_key(text: str, problem: str) -> None:
    assert _problems(HEAD + text + "\n") == [f"appliance.yaml: {problem}"]


def test_a_repeated_section_is_named_after_a_wrong_one() -> None:
    assert _problems(HEAD + "autoinstall: {interactive_sections: [disks, network, network]}\n") == [
        "appliance.yaml: autoinstall.interactive_sections[0]: expected one of 'network', "
        "'storage', 'identity', got 'disks'",
        "appliance.yaml: autoinstall.interactive_sections: 'network' is listed more than once; "
        "list each once",
    ]


def test_whatever_loads_renders_an_autoinstall_the_schema_accepts() -> None:
    config = parse_config(
        HEAD + "autoinstall:\n  locale: sr_RS.UTF-8@latin\n"
        "  interactive_sections: [network, storage, identity]\n"
        "  identity: {realname: 'Ops team (Zürich) \"A\"'}\n"
        "  ssh: {authorized_keys: " + json.dumps([ED25519_PUB]) + "}\n",
        source=Path("a.yaml"),
    )
    assert render_autoinstall(config).body["locale"] == "sr_RS.UTF-8@latin"


# -- 6. identity.realname ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "realname",
    [
        "A:B",
        "A\nC",
        "Smith, John",
        "a=b",
        "tab\there",
        "line\u2028sep",
        "para\u2029sep",
        "bell\x07",
    ],
)
def test_a_realname_useradd_cannot_store_is_refused(realname: str) -> None:
    problem = _one(f"autoinstall: {{identity: {{realname: {json.dumps(realname)}}}}}\n")
    assert problem == (
        "appliance.yaml: autoinstall.identity.realname: expected a name without ':', ',', '=', "
        "line breaks or other control characters (the GECOS field of /etc/passwd; subiquity "
        f"refuses them too), got {realname!r}"
    )
    assert "\n" not in problem


@pytest.mark.parametrize("realname", ["Xavier Ops", "Zoë Müller (site 2)", "O'Brien-Smith"])
def test_a_realname_with_letters_spaces_and_punctuation_is_accepted(realname: str) -> None:
    config = parse_config(
        HEAD + f"autoinstall: {{identity: {{realname: {json.dumps(realname)}}}}}\n",
        source=Path("a"),
    )
    assert config.autoinstall.identity.realname == realname


def test_a_realname_is_at_most_160_characters() -> None:
    assert (
        parse_config(
            HEAD + f"autoinstall: {{identity: {{realname: {'x' * 160}}}}}\n", source=Path("a")
        ).autoinstall.identity.realname
        == "x" * 160
    )
    assert _one(f"autoinstall: {{identity: {{realname: {'x' * 161}}}}}\n") == (
        "appliance.yaml: autoinstall.identity.realname: expected at most 160 characters, got 161"
    )


# -- 7. ssh.authorized_keys -----------------------------------------------------------------


def test_real_public_keys_of_every_kind_are_accepted() -> None:
    keys = [
        ED25519_PUB + " ops@site",
        _public(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
        _public(ec.generate_private_key(ec.SECP256R1())),
        _public(ec.generate_private_key(ec.SECP384R1())) + " with a longer comment",
        _public(ec.generate_private_key(ec.SECP521R1())),
        f'from="10.0.0.0/8",command="echo \\"hi there\\"",no-pty {ED25519_PUB} c',
        f"restrict {ED25519_PUB}",
        f"restrict {ED25519_PUB} ops at site two",  # options, then a comment of several words
        ED25519_PUB.replace(" ", "\t"),
    ]
    config = parse_config(HEAD + _keys_config(*keys), source=Path("a.yaml"))
    assert config.autoinstall.ssh.authorized_keys == tuple(keys)


def _key_problem(key: str) -> str:
    problem = _one(_keys_config(key))
    assert problem.startswith("appliance.yaml: autoinstall.ssh.authorized_keys[0]: ")
    return problem.split(": ", 2)[2]


def test_a_private_key_is_refused_and_never_shown() -> None:
    problem = _key_problem(ED25519_PRIVATE)
    assert problem == (
        "is a private key (value not shown); everything on the ISO is readable by whoever "
        "holds it: give the public key (`ssh-keygen -y -f KEY` prints it)"
    )


@pytest.mark.parametrize(
    ("key", "start"),
    [
        ("hunter2 is-not-a-key", "not an OpenSSH public key (value not shown); expected `["),
        ("ssh-foo AAAAB3NzaC1yc2E", "not an OpenSSH public key (value not shown)"),
        ("ssh-ed25519", "not an OpenSSH public key (value not shown)"),
        ('from="unclosed ssh-ed25519 AAAA', "not an OpenSSH public key (value not shown)"),
        ("ssh-ed25519 AAAAC3Nza k", "ssh-ed25519 key whose base64 part is not an ssh-ed25519"),
        ("ssh-ed25519 !!!!", "ssh-ed25519 key whose base64 part is not an ssh-ed25519"),
        ("ssh-rsa " + ED25519_PUB.split()[1], "ssh-rsa key whose base64 part is not an ssh-rsa"),
        (ED25519_PUB + "\n" + ED25519_PUB, "has a line break or control character"),
        # Unicode's line and paragraph separators: str.split() would take them for spaces.
        (ED25519_PUB.replace(" ", "\u2028"), "has a line break or control character"),
        (ED25519_PUB.replace(" ", "\u2029"), "has a line break or control character"),
        ("ssh-dss AAAAB3NzaC1kc3M=", "is a DSA (ssh-dss) key, which the OpenSSH of Ubuntu"),
    ],
)
def test_what_is_not_a_public_key_is_refused_without_showing_it(key: str, start: str) -> None:
    problem = _key_problem(key)
    assert problem.startswith(start)
    for part in key.split():
        if part not in ("ssh-ed25519", "ssh-rsa", "ssh-dss", "a", "k"):
            assert part not in problem


KEY_LINE = "`[options ]<type> <base64>[ comment]`, one line of a .pub file"


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("hunter2 is-not-a-key",
         f"not an OpenSSH public key (value not shown); expected {KEY_LINE}, with a type of "
         "ssh-ed25519, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521, "
         "sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com, ssh-rsa"),
        ("ssh-dss AAAAB3NzaC1kc3M=",
         "is a DSA (ssh-dss) key, which the OpenSSH of Ubuntu 24.04 refuses; give an "
         "ssh-ed25519 key (`ssh-keygen -t ed25519`)"),
        ("ssh-rsa " + ED25519_PUB.split()[1],
         "ssh-rsa key whose base64 part is not an ssh-rsa key (value not shown: cut or "
         "mistyped?); copy the whole line from the .pub file"),
    ],
)  # fmt: skip
def test_each_key_refusal_word_for_word(key: str, problem: str) -> None:
    assert _key_problem(key) == problem


def _blob(data: bytes) -> str:
    return "ssh-ed25519 " + base64.b64encode(data).decode()


def test_a_base64_part_with_a_stray_character_is_refused() -> None:
    blob = ED25519_PUB.split()[1]
    assert _key_problem(f"ssh-ed25519 {blob[:10]}*{blob[10:]}") == (
        "ssh-ed25519 key whose base64 part is not an ssh-ed25519 key (value not shown: cut or "
        "mistyped?); copy the whole line from the .pub file"
    )


def test_a_base64_part_must_hold_its_type_and_then_key_data() -> None:
    """Only the embedded type is read: what follows it is for sshd to judge, but a blob
    that ends with the type (or inside it) was cut."""
    data = base64.b64decode(ED25519_PUB.split()[1])
    assert data[:15] == b"\x00\x00\x00\x0bssh-ed25519"
    for cut in (data[:15], data[:14], data[:4]):
        assert _key_problem(_blob(cut)).startswith("ssh-ed25519 key whose base64 part is not an")
    for kept in (data[:16], data):
        config = parse_config(HEAD + _keys_config(_blob(kept)), source=Path("a"))
        assert config.autoinstall.ssh.authorized_keys == (_blob(kept),)


def test_a_key_after_one_that_is_no_string_is_still_checked() -> None:
    text = 'autoinstall: {ssh: {authorized_keys: [[x], "hunter2 not-a-key"]}}\n'
    problems = _problems(HEAD + text)
    assert [p.split(": ", 2)[1] for p in problems] == [
        "autoinstall.ssh.authorized_keys[0]",
        "autoinstall.ssh.authorized_keys[1]",
    ]
    assert problems[0].endswith("expected a string, got list")
    types = ", ".join(config_module.SSH_KEY_TYPES)
    assert problems[1].endswith(
        f"not an OpenSSH public key (value not shown); expected {KEY_LINE}, with a type of {types}"
    )


def test_a_key_listed_twice_is_taken_as_listed() -> None:
    # sshd reads both lines alike; only a list marked unique (interactive_sections) refuses it.
    config = parse_config(HEAD + _keys_config(ED25519_PUB, ED25519_PUB), source=Path("a"))
    assert config.autoinstall.ssh.authorized_keys == (ED25519_PUB, ED25519_PUB)


def test_a_key_that_is_no_string_is_named_by_its_type_only() -> None:
    assert _one("autoinstall: {ssh: {authorized_keys: [12345678]}}\n") == (
        "appliance.yaml: autoinstall.ssh.authorized_keys[0]: expected a string, got int"
    )


# -- 8. values in messages are short ---------------------------------------------------------

BOMB = """name: a
version: '1'
autoinstall:
  interactive_sections: &f [&e [&d [&c [&b [&a [x,x,x,x,x,x,x,x,x],*a,*a,*a,*a,*a,*a,*a,*a],
    *b,*b,*b,*b,*b,*b,*b,*b],*c,*c,*c,*c,*c,*c,*c,*c],*d,*d,*d,*d,*d,*d,*d,*d],*e,*e,*e,*e,*e]
  locale: *f
  identity: {realname: *f}
  ssh: {allow_pw: *f}
iso: {grub: {timeout: *f}, volume_id: *f}
payload: {lock: *f}
"""


def test_nested_aliases_give_short_messages() -> None:
    problems = _problems(BOMB)
    assert len(problems) == 12  # 6 sections, 6 keys
    assert all(p.endswith(("got list", "got list; list each once")) for p in problems)
    assert sum(map(len, problems)) < 2000


def test_a_long_value_is_cut_in_messages() -> None:
    problem = _one(f"iso: {{volume_id: {'x' * 100_000}}}\n")
    assert problem.startswith(
        "appliance.yaml: iso.volume_id: expected 1 to 32 of A-Z a-z 0-9 space _ . -, got 'xxx"
    )
    assert len(problem) < 200


def test_a_long_unknown_key_is_cut_in_messages() -> None:
    problem = _one(f"{'k' * 1000}: 1\n")  # YAML's longest plain key
    assert len(problem) < 300


ALLOWED = "allowed here: appliance, autoinstall, iso, name, payload, signing, version"


def test_a_key_is_cut_after_60_characters() -> None:
    assert _one(f"{'k' * 60}: 1\n") == f"appliance.yaml: {'k' * 60}: unknown key; {ALLOWED}"
    assert _one(f"{'k' * 61}: 1\n") == f"appliance.yaml: {'k' * 57}...: unknown key; {ALLOWED}"


def test_a_key_yaml_reads_as_bytes_is_shown_as_bytes() -> None:
    short = base64.b64encode(b"hello").decode()
    assert _one(f"!!binary {short}: 1\n") == f"appliance.yaml: b'hello': unknown key; {ALLOWED}"
    long = base64.b64encode(b"x" * 100).decode()
    assert _one(f"!!binary {long}: 1\n") == (
        f"appliance.yaml: b'{'x' * 36}...{'x' * 38}': unknown key; {ALLOWED}"
    )


def test_an_empty_section_is_named_null() -> None:
    assert _one("iso:\n") == "appliance.yaml: iso: expected a mapping, got null"


# -- 9. values_profile and registry.host -------------------------------------------------------


def test_an_unknown_values_profile_lists_the_profiles(tmp_path: Path) -> None:
    for name, files in (("edge", ["kustomization.yaml"]), ("lab", ["Kustomization"]),
                        ("draft", ["values/x.yaml"])):  # fmt: skip
        for file in files:
            (tmp_path / "profiles" / name / file).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "profiles" / name / file).write_text("{}\n")
    text = "appliance: {values_profile: draft}\n"
    assert _one(text, flux_dir=tmp_path) == (
        "appliance.yaml: appliance.values_profile: 'draft' is not a profile of the release "
        f"bundle ({tmp_path}/profiles has edge, lab); set one of those or add "
        "profiles/draft/ with a kustomization"
    )
    config = parse_config(HEAD + "appliance: {values_profile: lab}\n", source=Path("a"),
                          flux_dir=tmp_path)  # fmt: skip
    assert config.appliance.values_profile == "lab"


def test_a_bundle_without_profiles_says_it_has_none(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    assert _one("appliance: {values_profile: lab}\n", flux_dir=tmp_path) == (
        "appliance.yaml: appliance.values_profile: 'lab' is not a profile of the release "
        f"bundle ({tmp_path}/profiles has none); set one of those or add profiles/lab/ with a "
        "kustomization"
    )


def test_the_projects_profile_exists_and_another_is_refused() -> None:
    assert config_module.values_profiles() == ["single-node"]
    problem = _one("appliance: {values_profile: nonexistent-profile}\n")
    assert "'nonexistent-profile' is not a profile of the release bundle" in problem
    assert "flux/profiles has single-node)" in problem


@pytest.mark.parametrize(
    "host",
    ["ghcr.io", "registry.example.com:5000", "localhost", "localhost:5000", "10.0.0.1:443",
     "Registry-1.Example.COM", "host:65535",
     # the longest name DNS allows: 253 characters
     ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])],
)  # fmt: skip
def test_a_good_registry_host_is_accepted(host: str) -> None:
    config = parse_config(HEAD + f"appliance: {{registry: {{host: '{host}'}}}}\n", source=Path("a"))
    assert config.appliance.registry.host == host


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("ghcr.io:99999", "the port must be 1..65535"),
        ("ghcr.io:65536", "the port must be 1..65535"),
        (".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 62]), "each name between dots is 1-63"),
        ("ghcr.io:0", "the port must be 1..65535"),
        ("ghcr.io:", "the port must be 1..65535"),
        ("ghcr.io:08", "the port must be 1..65535"),
        ("...", "each name between dots is 1-63 of A-Z a-z 0-9 -"),
        ("-bad.example", "each name between dots is 1-63"),
        ("a..b", "each name between dots is 1-63"),
        ("x" * 64 + ".io", "each name between dots is 1-63"),
        ("300.1.1.1", "not an IPv4 address"),
        ("[::1]:5000", "an IPv6 address is not supported"),
        ("registry", "a name without a dot or a port reads as a Docker Hub namespace"),
        ("bad host", "each name between dots"),
    ],
)
def test_a_bad_registry_host_is_refused(host: str, why: str) -> None:
    problem = _one(f"appliance: {{registry: {{host: '{host}'}}}}\n")
    assert problem.startswith(
        "appliance.yaml: appliance.registry.host: expected a registry host[:port] (DNS name or "
        "IPv4 address), got "
    )
    assert why in problem


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("registry", "a name without a dot or a port reads as a Docker Hub namespace; give the "
         "full name or a port"),
        ("ghcr.io:0", "the port must be 1..65535"),
    ],
)  # fmt: skip
def test_a_bad_registry_host_word_for_word(host: str, why: str) -> None:
    assert _one(f"appliance: {{registry: {{host: '{host}'}}}}\n") == (
        "appliance.yaml: appliance.registry.host: expected a registry host[:port] (DNS name or "
        f"IPv4 address), got {host!r}: {why}"
    )


# -- 10. file-valued keys --------------------------------------------------------------------


def _site(tmp_path: Path, body: str) -> Path:
    cfg = tmp_path / "site" / "appliance.yaml"
    cfg.parent.mkdir(exist_ok=True)
    cfg.write_text(HEAD + body)
    return cfg


def _site_problems(cfg: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert info.value.exit_code == ExitCode.USAGE
    return info.value.problems


def test_a_missing_signing_key_file_names_the_key(tmp_path: Path) -> None:
    cfg = _site(tmp_path, "signing: {key: nokey.asc}\n")
    assert _site_problems(cfg) == [
        f"{cfg}: signing.key: {tmp_path}/site/nokey.asc: no such file; give an OpenPGP secret "
        "key file (`gpg --export-secret-keys --armor FINGERPRINT > key.asc`) or the 16- or "
        "40-hex-digit fingerprint of a key in gpg-agent (a relative path is relative to the "
        "config file's directory)"
    ]
    (tmp_path / "site" / "nokey.asc").mkdir()
    assert _site_problems(cfg)[0].startswith(f"{cfg}: signing.key: {tmp_path}/site/nokey.asc: is a")


def test_a_signing_key_file_beside_the_config_and_a_fingerprint_load(tmp_path: Path) -> None:
    cfg = _site(tmp_path, "signing: {key: keys/sign.asc}\n")
    (tmp_path / "site" / "keys").mkdir()
    (tmp_path / "site" / "keys" / "sign.asc").write_text("-----BEGIN PGP PRIVATE KEY BLOCK-----\n")
    assert load_config(cfg).signing.key == str(tmp_path / "site" / "keys" / "sign.asc")
    cfg = _site(tmp_path, "signing: {key: '0x0123456789ABCDEF'}\n")
    assert load_config(cfg).signing.key == "0x0123456789ABCDEF"


def test_an_unreadable_signing_key_is_named(tmp_path: Path) -> None:
    (problem,) = _site_problems(_site(tmp_path, "signing: {key: /proc/self/mem}\n"))
    assert problem.endswith(
        "signing.key: /proc/self/mem: cannot be read (Input/output error); make it readable by "
        "the user running isobuild"
    )


def test_a_missing_lock_file_names_the_key(tmp_path: Path) -> None:
    cfg = _site(tmp_path, "payload: {lock: nope.yaml}\n")
    assert _site_problems(cfg) == [
        f"{cfg}: payload.lock: {tmp_path}/site/nope.yaml: no such file; give the payload lock "
        "file (docs/payload.md; `isobuild lock --update` writes one) (a relative path is "
        "relative to the config file's directory)"
    ]


def test_file_problems_come_with_the_others(tmp_path: Path) -> None:
    cfg = _site(tmp_path, "payload: {lock: ../site}\nsigning: {key: k.asc}\niso: [1]\n")
    assert [p.split(": ")[1] for p in _site_problems(cfg)] == [
        "iso",
        "signing.key",
        "payload.lock",
    ]


def test_the_example_private_key_is_a_real_one() -> None:
    """The refusal above must be tested on what ssh-keygen writes, not on a made-up block."""
    assert ED25519_PRIVATE.startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    assert base64.b64decode(ED25519_PUB.split()[1])[4:15] == b"ssh-ed25519"


# -- the administrator's user name --------------------------------------------------------


@pytest.mark.parametrize("name", ["root", "sshd", "sudo", "systemd-network", "nogroup", "lxd"])
def test_a_user_name_the_system_has_already_is_refused(name: str) -> None:
    text = f"autoinstall:\n  identity:\n    username: {name}\n"
    assert _one(text) == (
        f"appliance.yaml: autoinstall.identity.username: {name!r} is a system account or "
        "group of Ubuntu; the installer cannot make the administrator under it: choose "
        "another name"
    )


@pytest.mark.parametrize("name", ["Admin", "1ops", "ops.team", "a" * 33])
def test_a_user_name_linux_cannot_take_is_refused(name: str) -> None:
    assert _one(f"autoinstall: {{identity: {{username: '{name}'}}}}\n") == (
        f"appliance.yaml: autoinstall.identity.username: expected a Linux user name, got {name!r}"
    )


def test_the_user_name_may_not_be_the_appliance_s_group() -> None:
    # The late-commands make the group <name> (sysusers); the first boot then makes the
    # administrator, whose own group of the same name is taken.
    text = "name: edge\nversion: '1'\nautoinstall:\n  identity:\n    username: edge\n"
    (problem,) = _problems(text)
    assert problem == (
        "appliance.yaml: autoinstall.identity.username: 'edge' is also the appliance's name, "
        "which names its group (the one that may read appliance.paths.etc); choose another "
        "user name"
    )
    assert parse_config(text.replace("username: edge", "username: ops"),
                        source=Path("a.yaml")).autoinstall.identity.username == "ops"  # fmt: skip
