"""The HTTP layer against malformed and hostile clients, over real sockets to the service
running as its own process: every malformed request gets an answer (JSON under /api/, a
page elsewhere) with the security headers and leaves no traceback in the log; idle and slow
clients hold no threads, are cut off at the request deadline, and /healthz keeps answering
while every request slot is busy."""

from __future__ import annotations

import json
import select
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixtures.host_service import Client, ServiceProcess
from tests.waiting import wait_until

SECURITY_HEADERS = (
    "content-security-policy",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "cache-control",
)


@dataclass
class Raw:
    """An answer read off a socket until the server closed it."""

    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def parse_answer(data: bytes) -> Raw:
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, f"no complete answer: {data[:300]!r}"
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1."), lines[0]
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Raw(int(lines[0].split()[1]), headers, body)


def read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def exchange(port: int, data: bytes, *, timeout: float = 20.0) -> Raw:
    """Send ``data`` as it is and read the answer; a server that never answers fails the
    test with a timeout (the safety net, not a measurement)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return parse_answer(read_until_closed(sock))


def assert_answer(answer: Raw, status: int, *, api: bool) -> None:
    assert answer.status == status, (answer.status, answer.body[:300])
    for name in SECURITY_HEADERS:
        assert name in answer.headers, (name, answer.headers)
    assert "python" not in answer.headers.get("server", "").lower()
    if api:
        assert answer.headers["content-type"] == "application/json"
        assert answer.json["error"]
    else:
        assert answer.headers["content-type"] == "text/html; charset=utf-8"
        assert f"Error {status}".encode() in answer.body


def assert_no_traceback(service: ServiceProcess, since: int = 0) -> None:
    """No traceback in the service's log (from byte ``since`` on)."""
    assert service.log is not None
    text = service.log.read_bytes()[since:].decode(errors="replace")
    assert "Traceback" not in text, text[-4000:]


def set_http_limits(service: ServiceProcess, **limits: float) -> None:
    service.appliance.edit_settings(
        lambda d: d["appliance"]["host_service"].setdefault("http", {}).update(limits)
    )


def closed_by_server(sockets: list[socket.socket], *, count: int) -> list[int]:
    """Indexes of ``sockets`` the server closed (EOF), waiting until ``count`` are, or
    20 s pass without another; the rest stay open."""
    closed: list[int] = []
    open_ = dict(enumerate(sockets))
    while len(closed) < count:
        readable, _, _ = select.select(list(open_.values()), [], [], 20)
        if not readable:
            break
        for index, sock in list(open_.items()):
            if sock in readable:
                assert sock.recv(1) == b""  # an idle connection is closed without an answer
                closed.append(index)
                del open_[index]
    return closed


def threads_of(service: ServiceProcess) -> int:
    assert service.proc is not None
    return len(list(Path(f"/proc/{service.proc.pid}/task").iterdir()))


# -- malformed requests -----------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """One service for the malformed requests; each test checks its log afterwards."""
    from tests.fixtures.host_service import DoublesConfig, make_appliance
    from tests.ports import free_port

    base = tmp_path_factory.mktemp("protocol")
    appliance = make_appliance(base, registry_host="127.0.0.1:9", ca_path=None)
    doubles = DoublesConfig(record=str(appliance.work / "doubles.json"), root=str(appliance.root))
    service = ServiceProcess(appliance, doubles.save(appliance.work / "doubles.cfg"), free_port())
    service.start()
    yield service
    service.stop()


@pytest.fixture
def service(served: ServiceProcess) -> Iterator[ServiceProcess]:
    assert served.log is not None
    since = served.log.stat().st_size
    yield served
    assert_no_traceback(served, since)


def logged_in(service: ServiceProcess) -> Client:
    client = Client(service.url)
    assert client.login(service.appliance.token()).status_code == 200
    return client


def cookie_header(client: Client) -> bytes:
    return b"Cookie: " + "; ".join(f"{k}={v}" for k, v in client.http.cookies.items()).encode()


def test_json_nested_5000_deep_is_a_400_not_a_crash(service: ServiceProcess) -> None:
    body = b'{"token": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    answer = exchange(
        service.port,
        b"POST /api/login HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body),
    )
    assert_answer(answer, 400, api=True)
    assert "deep" in answer.json["error"]


def test_non_ascii_secrets_are_refused_not_a_crash(service: ServiceProcess) -> None:
    client = logged_in(service)
    answer = exchange(
        service.port,
        b"POST /api/retry HTTP/1.1\r\nHost: a\r\n" + cookie_header(client) + b"\r\n"
        b"X-CSRF-Token: \xe9t\xe9\r\nContent-Length: 0\r\n\r\n",
    )
    assert_answer(answer, 403, api=True)
    # So is a session cookie's signature.
    answer = exchange(
        service.port,
        b"GET /api/session HTTP/1.1\r\nCookie: appliance_session=eyJ9.\xe9\xe9\r\n\r\n",
    )
    assert_answer(answer, 401, api=True)
    # The login form's nonce is compared the same way.
    form = b"nonce=%C3%A9t%C3%A9&token=x"
    answer = exchange(
        service.port,
        b"POST /login HTTP/1.1\r\nHost: a\r\nCookie: appliance_login=abc\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(form), form),
    )
    assert_answer(answer, 403, api=False)


def test_cookies_in_headers_of_their_own_are_all_read(service: ServiceProcess) -> None:
    # An HTTP/2 proxy in front of the appliance may send each cookie in a header of its own;
    # joined with a comma, the session cookie's value took in the next one and was refused.
    client = logged_in(service)
    session = client.http.cookies["appliance_session"]
    for first, second in [("theme=dark", f"appliance_session={session}"),
                          (f"appliance_session={session}", "theme=dark")]:  # fmt: skip
        answer = exchange(
            service.port,
            b"GET /api/session HTTP/1.1\r\nHost: a\r\nCookie: %s\r\nCookie: %s\r\n\r\n"
            % (first.encode(), second.encode()),
        )
        assert answer.status == 200, (answer.status, answer.body[:300])
        assert answer.json["csrf"]


@pytest.mark.parametrize(("path", "api"), [("/api/status", True), ("/status", False)])
def test_a_request_line_over_8_kib_is_a_414(service: ServiceProcess, path: str, api: bool) -> None:
    target = f"{path}?q={'A' * 9000}".encode()
    answer = exchange(service.port, b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    assert_answer(answer, 414, api=api)


def test_a_chunked_body_is_a_411(service: ServiceProcess) -> None:
    answer = exchange(
        service.port,
        b"POST /api/login HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
        b'Transfer-Encoding: chunked\r\n\r\n10\r\n{"token": "abc"}\r\n0\r\n\r\n',
    )
    assert_answer(answer, 411, api=True)


def test_an_http_0_9_request_is_answered_at_once(service: ServiceProcess) -> None:
    # Nothing follows the request line: a server waiting for headers would hang here.
    answer = exchange(service.port, b"GET /\r\n")
    assert_answer(answer, 400, api=False)


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /api/status HTTP/2.0\r\n\r\n", 505),
        (b"GET /api/status FTP/1.0\r\n\r\n", 400),
        (b"G(T /api/status HTTP/1.1\r\n\r\n", 400),
        (b"GET api/status HTTP/1.1\r\n\r\n", 400),
    ],
)
def test_malformed_request_lines_are_400(
    service: ServiceProcess, request_line: bytes, status: int
) -> None:
    answer = exchange(service.port, request_line)
    assert answer.status == status
    for name in SECURITY_HEADERS:
        assert name in answer.headers


@pytest.mark.parametrize(("path", "api"), [("/api/login", True), ("/login", False)])
def test_a_large_body_is_a_413_with_the_security_headers(
    service: ServiceProcess, path: str, api: bool
) -> None:
    body = b"x" * 40_000
    answer = exchange(
        service.port,
        f"POST {path} HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body,
    )
    assert_answer(answer, 413, api=api)


@pytest.mark.parametrize(("path", "api"), [("/api/status", True), ("/status", False)])
def test_too_many_or_too_large_headers_are_a_431(
    service: ServiceProcess, path: str, api: bool
) -> None:
    many = b"".join(b"X-Header-%d: %d\r\n" % (i, i) for i in range(200))
    answer = exchange(service.port, f"GET {path} HTTP/1.1\r\n".encode() + many + b"\r\n")
    assert_answer(answer, 431, api=api)
    huge = b"X-Huge: " + b"h" * 70_000 + b"\r\n"
    answer = exchange(service.port, f"GET {path} HTTP/1.1\r\n".encode() + huge + b"\r\n")
    assert_answer(answer, 431, api=api)


def test_no_answer_names_the_python_version(service: ServiceProcess) -> None:
    for path in ("/healthz", "/login", "/api/status", "/nowhere"):
        response = requests.get(service.url + path, timeout=10, allow_redirects=False)
        assert "python" not in response.headers.get("Server", "").lower(), path
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_normal_request_still_works(service: ServiceProcess) -> None:
    client = logged_in(service)
    assert client.get("/api/session").json()["csrf"] == client.csrf
    page = client.get("/setup")
    assert page.status_code == 200
    assert 'name="app_url"' in page.text


# -- limits ------------------------------------------------------------------------------


def test_idle_connections_hold_no_threads_and_the_oldest_give_way(
    service_process: ServiceProcess,
) -> None:
    set_http_limits(service_process, max_connections=4, max_waiting=50)
    service_process.start()
    before = threads_of(service_process)
    idle = [socket.create_connection(("127.0.0.1", service_process.port)) for _ in range(200)]
    try:
        # Answered after the 200 (accepted in order): /healthz answers under that load.
        assert requests.get(service_process.url + "/healthz", timeout=10).json() == {"ok": True}
        assert threads_of(service_process) - before < 4
        # At most 50 are held: the oldest were closed to make room (201 connections, 50 kept).
        closed = closed_by_server(idle, count=151)
        assert len(closed) == 151
        assert set(closed) >= set(range(140))  # the oldest first (accepted in order)
        held = [sock for index, sock in enumerate(idle) if index not in closed]
        assert not select.select(held, [], [], 0)[0]  # the newest 49 are still open
    finally:
        for sock in idle:
            sock.close()
    assert_no_traceback(service_process)


def test_a_slow_client_is_cut_off_at_the_request_deadline(service_process: ServiceProcess) -> None:
    set_http_limits(service_process, request_timeout=1.0)
    service_process.start()
    with socket.create_connection(("127.0.0.1", service_process.port), timeout=20) as sock:
        sock.sendall(b"GET /api/status HTTP/1.1\r\n")
        sent = 0
        # A header line every 50 ms keeps any per-read timeout from firing; the whole head
        # must still arrive within the deadline. Up to 20 s worth, then give up.
        while sent < 400:
            try:
                sock.sendall(b"X-Slow-%d: 1\r\n" % sent)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                break
        answer = parse_answer(read_until_closed(sock))
    assert sent < 400, "the server waited for the whole slow head"
    assert_answer(answer, 408, api=True)
    # The same deadline covers a body that trickles in.
    with socket.create_connection(("127.0.0.1", service_process.port), timeout=20) as sock:
        sock.sendall(
            b"POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 100\r\n\r\ntoken="
        )
        answer = parse_answer(read_until_closed(sock))
    assert_answer(answer, 408, api=False)
    # A connection that never sends anything is closed without an answer.
    with socket.create_connection(("127.0.0.1", service_process.port), timeout=20) as sock:
        assert read_until_closed(sock) == b""
    assert_no_traceback(service_process)


def test_healthz_answers_while_every_request_slot_is_busy(
    service_process: ServiceProcess,
) -> None:
    set_http_limits(service_process, max_connections=2)
    service_process.start()
    client = logged_in(service_process)
    version = client.status()["version"]
    ended: list[object] = []

    def hold() -> None:
        # A long-poll holds its slot until the state changes or 60 s pass. The probe below
        # takes a slot for a moment too: a long-poll refused in that moment asks again.
        try:
            while True:
                answer = client.get(f"/api/status?wait={version}&timeout=60", timeout=90)
                if answer.status_code != 503:
                    ended.append(answer)
                    return
        except requests.RequestException as exc:
            ended.append(exc)

    holders = [threading.Thread(target=hold, daemon=True) for _ in range(2)]
    for thread in holders:
        thread.start()

    def refused_as_busy() -> list[requests.Response]:
        answer = client.get("/api/session")
        assert answer.status_code in (200, 503), answer.text
        return [answer] if answer.status_code == 503 else []  # a 503 Response is falsy

    (busy,) = wait_until(
        refused_as_busy, 30, lambda: f"both long-polls to hold a request slot (ended: {ended})"
    )
    assert busy.json()["error"]
    assert busy.headers["Retry-After"]
    assert busy.headers["X-Frame-Options"] == "DENY"
    page = client.get("/status")
    assert page.status_code == 503
    assert "text/html" in page.headers["Content-Type"]
    assert requests.get(service_process.url + "/healthz", timeout=10).json() == {"ok": True}
    assert not ended  # the long-polls still hold both slots
    service_process.stop()
    for thread in holders:
        thread.join(30)
    assert_no_traceback(service_process)
    assert service_process.log is not None
    assert "request slots are busy" in service_process.log.read_text()
