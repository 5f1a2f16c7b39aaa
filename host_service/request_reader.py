"""One HTTP/1.x request (line, headers, body) read from bytes as they arrive, with limits.

Pure: the server feeds what ``recv`` returned; the reader says "more", gives the complete
request, or raises ``ProtocolError`` with the status to answer. Everything a client can
send is bounded here, before any thread or handler sees the request.
"""

from __future__ import annotations

import http.client
import io
import re
from dataclasses import dataclass
from email.message import Message

MAX_REQUEST_LINE = 8 * 1024
MAX_HEAD = 64 * 1024  # request line and every header line
MAX_HEADERS = 100
VERSIONS = ("HTTP/1.0", "HTTP/1.1")

_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}")
_VERSION = re.compile(r"HTTP/[0-9]\.[0-9]")
_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")


class ProtocolError(Exception):
    """The request cannot be served; ``status`` and ``message`` are the answer, ``target``
    what is known of the request target (to answer in JSON under /api/)."""

    def __init__(self, status: int, message: str, *, target: str = "", method: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.target = target
        self.method = method


@dataclass(frozen=True)
class Incoming:
    """A complete request as the client sent it."""

    method: str
    target: str  # origin form: path and query, still percent-encoded
    version: str
    headers: Message
    body: bytes


class RequestReader:
    """Feed it bytes; ``feed`` returns the request once it is complete, else None."""

    def __init__(self, *, max_body: int) -> None:
        self.max_body = max_body
        self.buffer = bytearray()
        self.method = ""
        self.target = ""
        self._version = ""
        self._line_end = -1  # index after the request line's newline
        self._scan_from = 0
        self._headers: Message | None = None
        self._body_start = 0
        self._length = 0

    @property
    def started(self) -> bool:
        """Whether the client has sent anything (an idle connection has not)."""
        return bool(self.buffer)

    def feed(self, data: bytes) -> Incoming | None:
        self.buffer += data
        if self._line_end < 0 and not self._read_request_line():
            return None
        if self._headers is None and not self._read_headers():
            return None
        if len(self.buffer) - self._body_start < self._length:
            return None
        assert self._headers is not None
        body = bytes(self.buffer[self._body_start : self._body_start + self._length])
        return Incoming(self.method, self.target, self._version, self._headers, body)

    def _error(self, status: int, message: str) -> ProtocolError:
        return ProtocolError(status, message, target=self.target, method=self.method)

    def _read_request_line(self) -> bool:
        end = self.buffer.find(b"\n")
        if end < 0 or end > MAX_REQUEST_LINE:
            if end > MAX_REQUEST_LINE or len(self.buffer) > MAX_REQUEST_LINE:
                # Enough of the line to know where it was going (JSON or a page).
                self.target = _partial_target(bytes(self.buffer[:MAX_REQUEST_LINE]))
                raise self._error(414, f"request line longer than {MAX_REQUEST_LINE} bytes")
            return False
        self._line_end = end + 1
        self._scan_from = end
        line = bytes(self.buffer[:end]).rstrip(b"\r").decode("latin-1")
        words = line.split()
        if len(words) == 2 and _METHOD.fullmatch(words[0]):
            # HTTP/0.9 has no version and no headers: answer now, waiting for more hangs.
            self.target = words[1]
            raise self._error(400, "HTTP/0.9 is not supported: send HTTP/1.0 or HTTP/1.1")
        if len(words) != 3:
            raise self._error(400, "malformed request line: expected METHOD /path HTTP/1.1")
        method, target, version = words
        self.target = target
        if not _METHOD.fullmatch(method):
            raise self._error(400, f"malformed method {method[:32]!r}")
        self.method = method
        if not _VERSION.fullmatch(version):
            raise self._error(400, f"malformed protocol version {version[:16]!r}")
        if version not in VERSIONS:
            raise self._error(505, f"{version} is not supported: send HTTP/1.0 or HTTP/1.1")
        if not target.startswith("/"):
            raise self._error(400, "the request target must be a path starting with /")
        self._version = version
        return True

    def _read_headers(self) -> bool:
        # From the request line's own newline: a request without headers ends right there.
        found = _END_OF_HEAD.search(self.buffer, self._scan_from)
        if found is None:
            if len(self.buffer) > MAX_HEAD:
                raise self._error(431, f"request headers longer than {MAX_HEAD} bytes")
            self._scan_from = max(self._line_end - 1, len(self.buffer) - 3)
            return False
        if found.end() > MAX_HEAD:
            raise self._error(431, f"request headers longer than {MAX_HEAD} bytes")
        block = io.BytesIO(bytes(self.buffer[self._line_end : found.end()]))
        try:
            headers = http.client.parse_headers(block)
        except http.client.HTTPException as exc:  # more than 100 header lines
            raise self._error(431, f"more than {MAX_HEADERS} request headers") from exc
        self._length = self._content_length(headers)
        self._headers = headers
        self._body_start = found.end()
        return True

    def _content_length(self, headers: Message) -> int:
        if headers.get("Transfer-Encoding") is not None:
            raise self._error(
                411, "Transfer-Encoding (chunked) bodies are not accepted: send Content-Length"
            )
        values = {v.strip() for v in headers.get_all("Content-Length") or []}
        if not values:
            return 0
        if len(values) > 1:
            raise self._error(400, "conflicting Content-Length headers")
        (text,) = values
        if not text.isascii() or not text.isdigit():
            raise self._error(400, f"invalid Content-Length {text[:20]!r}")
        length = int(text)
        if length > self.max_body:
            raise self._error(413, f"request body larger than {self.max_body} bytes")
        return length


def _partial_target(start: bytes) -> str:
    words = start.decode("latin-1").split(maxsplit=2)
    return words[1] if len(words) >= 2 else ""
