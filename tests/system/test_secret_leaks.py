"""Secrets never reach logs: the setup token is on the console and in its 0600 file, nowhere else.

Like subiquity's CI grep for a leaked test password, but on the running appliance: after the
setup flow (login with the token, setup, bootstrap, a reboot) the journal of every boot and
every file the host service writes besides the token file must not contain the token.
"""

from __future__ import annotations

import shlex

import testinfra.host

from tests.system.bootstrap_flow import BootstrapRun
from tests.system.target import BootedTarget


def test_journal_of_every_boot_never_holds_the_token(
    host: testinfra.host.Host, bootstrap_run: BootstrapRun, setup_token: str
) -> None:
    boots = host.check_output("journalctl --list-boots --no-pager | wc -l")
    assert int(boots) >= 2, "the bootstrap flow reboots: the journal must hold both boots"
    journal = host.run("journalctl --no-pager -o cat")
    assert journal.rc == 0, journal.stderr
    assert "appliance-setup" in journal.stdout or "host_service" in journal.stdout
    assert setup_token not in journal.stdout, "the setup token is in the journal"


def test_state_files_other_than_the_token_file_never_hold_it(
    host: testinfra.host.Host,
    appliance_target: BootedTarget,
    bootstrap_run: BootstrapRun,
    setup_token: str,
) -> None:
    state = appliance_target.paths["state"]
    etc = appliance_target.paths["etc"]
    listing = host.check_output(
        f"find {shlex.quote(state)} {shlex.quote(etc)} -type f ! -name setup-token"
    ).split()
    assert any(path.endswith(".json") for path in listing), listing  # bootstrap state exists
    holders = host.run(
        f"grep -rlF -- {shlex.quote(setup_token)} {shlex.quote(state)} {shlex.quote(etc)}"
    ).stdout.split()
    assert holders == [f"{state}/setup-token"], holders
