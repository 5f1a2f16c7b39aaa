"""Numbers in text the host service reads (requests, arguments, systemctl's answers) are
ASCII digits: ``str.isdigit`` is also true for superscripts, which ``int`` refuses, and for
fullwidth digits, which it reads as a number. Each was a 500 or a traceback."""

from __future__ import annotations

import pytest

from host_service.server import parse_listen
from host_service.systemd import Systemctl


@pytest.mark.parametrize("port", ["\u00b2", "80\u00b9", "\uff18\uff10\uff18\uff10"])
def test_a_listen_port_of_other_digits_is_the_usage_error(port: str) -> None:
    with pytest.raises(ValueError, match="expected ADDR:PORT, \\[IPv6\\]:PORT or :PORT"):
        parse_listen(f"127.0.0.1:{port}")


class Answering(Systemctl):
    """systemctl's real parser, fed the answer given instead of running systemctl."""

    def __init__(self, answer: str) -> None:
        super().__init__()
        self.answer = answer

    def _run(self, args: list[str]) -> str:
        return self.answer


def test_a_restart_count_of_other_digits_reads_as_none() -> None:
    state = Answering("ActiveState=active\nSubState=running\nNRestarts=\u00b2\n").unit_state("k3s")
    assert (state.active, state.restarts) == ("active", 0)
    state = Answering("ActiveState=failed\nSubState=failed\nNRestarts=3\n").unit_state("k3s")
    assert (state.active, state.restarts) == ("failed", 3)
