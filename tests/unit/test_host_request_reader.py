"""Reading a request as its bytes arrive: limits, malformed lines, the body."""

from __future__ import annotations

import pytest

from host_service.request_reader import (
    MAX_HEAD,
    MAX_REQUEST_LINE,
    Incoming,
    ProtocolError,
    RequestReader,
)

REQUEST = (
    b"POST /api/login?x=1 HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
    b'Content-Length: 15\r\n\r\n{"token": "t"}\n'
)


def read(data: bytes, *, max_body: int = 1024) -> Incoming | None:
    return RequestReader(max_body=max_body).feed(data)


def refused(data: bytes, *, max_body: int = 1024) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        read(data, max_body=max_body)
    return caught.value


def test_a_whole_request() -> None:
    incoming = read(REQUEST)
    assert incoming is not None
    assert (incoming.method, incoming.target, incoming.version) == (
        "POST",
        "/api/login?x=1",
        "HTTP/1.1",
    )
    assert incoming.headers["Content-Type"] == "application/json"
    assert incoming.body == b'{"token": "t"}\n'


def test_byte_by_byte_is_the_same_request() -> None:
    reader = RequestReader(max_body=1024)
    results = [reader.feed(REQUEST[i : i + 1]) for i in range(len(REQUEST))]
    assert results[:-1] == [None] * (len(REQUEST) - 1)
    whole, last = read(REQUEST), results[-1]
    assert whole is not None
    assert last is not None
    assert (last.method, last.target, last.body) == (whole.method, whole.target, whole.body)
    assert last.headers.items() == whole.headers.items()
    assert reader.started


def test_no_headers_and_bare_newlines() -> None:
    incoming = read(b"GET / HTTP/1.0\r\n\r\n")
    assert incoming is not None
    assert incoming.body == b""
    incoming = read(b"GET /healthz HTTP/1.1\nHost: a\n\n")
    assert incoming is not None
    assert incoming.headers["Host"] == "a"


def test_the_body_is_waited_for() -> None:
    reader = RequestReader(max_body=1024)
    assert reader.feed(REQUEST[:-5]) is None
    assert reader.feed(REQUEST[-5:]) is not None


@pytest.mark.parametrize(
    ("data", "status", "fragment"),
    [
        (b"GET /\r\n", 400, "HTTP/0.9"),
        (b"GARBAGE\r\n\r\n", 400, "malformed request line"),
        (b"G(T / HTTP/1.1\r\n\r\n", 400, "malformed method"),
        (b"GET / FTP/1.0\r\n\r\n", 400, "malformed protocol version"),
        (b"GET / HTTP/2.0\r\n\r\n", 505, "HTTP/2.0 is not supported"),
        (b"GET http://a/ HTTP/1.1\r\n\r\n", 400, "starting with /"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411, "Content-Length"),
        (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400, "conflict"),
        (b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400, "invalid Content-Length"),
        (b"POST / HTTP/1.1\r\nContent-Length: \xd9\xa1\r\n\r\n", 400, "invalid Content-Length"),
        (b"POST / HTTP/1.1\r\nContent-Length: 1025\r\n\r\n", 413, "larger than 1024"),
        (b"GET / HTTP/1.1\r\n" + b"A: b\r\n" * 101 + b"\r\n", 431, "more than 100"),
    ],
)
def test_refused(data: bytes, status: int, fragment: str) -> None:
    error = refused(data)
    assert error.status == status
    assert fragment in error.message


def test_http_0_9_is_refused_on_the_request_line_alone() -> None:
    # Nothing else arrives after an HTTP/0.9 request line; waiting for headers would hang.
    reader = RequestReader(max_body=10)
    with pytest.raises(ProtocolError) as caught:
        reader.feed(b"GET /api/status\r\n")
    assert caught.value.target == "/api/status"


def test_an_overlong_request_line_names_its_target() -> None:
    start = b"GET /api/status?q=" + b"A" * MAX_REQUEST_LINE
    reader = RequestReader(max_body=10)
    with pytest.raises(ProtocolError) as caught:
        reader.feed(start)  # no newline yet: refused as soon as it is too long
    assert caught.value.status == 414
    assert caught.value.target.startswith("/api/status?q=AAAA")
    error = refused(b"GET /" + b"a" * MAX_REQUEST_LINE + b" HTTP/1.1\r\n\r\n")
    assert error.status == 414


def test_headers_are_bounded_also_when_they_trickle() -> None:
    reader = RequestReader(max_body=10)
    reader.feed(b"GET /status HTTP/1.1\r\n")
    line = b"X-Slow: 1\r\n"
    error: ProtocolError | None = None
    for _ in range(MAX_HEAD):
        try:
            reader.feed(line)
        except ProtocolError as exc:
            error = exc
            break
    assert error is not None
    assert error.status == 431
    assert error.target == "/status"
    assert error.method == "GET"
    assert len(reader.buffer) <= MAX_HEAD + 16
