"""One upstream ``kubectl logs --follow`` per container, shared by every viewer of it.

A stream starts with its first viewer and keeps a bounded window of recent lines; it is
stopped (kubectl ended and reaped) ``grace`` seconds after its last viewer left. Each
viewer has a bounded queue: a viewer that does not keep up loses its oldest queued lines
and is told how many, so it never holds up the stream, another viewer or memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from host_service.command import Children, tracking
from host_service.errors import ServiceError
from host_service.kube import Kube
from host_service.logs.lines import Cursor, LogLine, Numbering
from host_service.logs.window import LineWindow

log = logging.getLogger(__name__)

StreamKey = tuple[str, str, str]  # namespace, pod, container


@dataclass(frozen=True, kw_only=True)
class LogLimits:
    """The bounds of live logs (docs/host-service.md, "Logs")."""

    ring_lines: int = 5_000  # kept per stream: what a new viewer catches up from
    viewer_lines: int = 5_000  # queued per viewer before its oldest are dropped
    batch_lines: int = 1_000  # sent in one event
    grace: float = 10.0  # an upstream follow outlives its last viewer this long
    heartbeat: float = 15.0  # an idle event stream sends a comment this often
    lifetime: float = 600.0  # an event stream ends after this; the browser reconnects
    max_follows: int = 16  # event streams at once (each holds a request slot)
    max_follows_per_session: int = 4  # past it the session's oldest stream ends
    stop_grace: float = 5.0  # kubectl gets this long after SIGTERM
    # A live line longer than this is cut (and says so): with the line counts above it bounds
    # a stream's memory in bytes. Chunks and downloads read the whole line.
    max_line_chars: int = 64 * 1024


class TooManyFollows(ServiceError):
    """No room for another live stream; the message says whose limit was reached."""


@dataclass
class Batch:
    lines: list[LogLine]
    missed: int = 0  # lines dropped before these because the viewer fell behind
    gap: bool = False  # lines between the viewer's cursor and these are no longer kept
    ended: str | None = None  # why the stream is over (no more batches follow)


@dataclass(eq=False)
class Viewer:
    stream: Stream
    owner: str
    after: Cursor | None
    queue: deque[LogLine] = field(default_factory=deque)
    missed: int = 0
    gap: bool = False
    delivered: int = 0
    ended: str | None = None  # this viewer was ended (its stream may go on)


@dataclass(eq=False)
class Stream:
    key: StreamKey
    window: LineWindow
    changed: threading.Condition
    children: Children = field(default_factory=Children)
    viewers: set[Viewer] = field(default_factory=set)
    ended: str | None = None
    stopping: bool = False
    idle_since: float | None = None
    thread: threading.Thread | None = None


class LogHub:
    def __init__(self, kube: Kube, limits: LogLimits | None = None) -> None:
        self.kube = kube
        self.limits = limits or LogLimits()
        self._lock = threading.Lock()
        self._streams: dict[StreamKey, Stream] = {}
        self._viewers = 0
        self._owned: dict[str, list[Viewer]] = {}  # each session's viewers, oldest first
        self._closed = False
        self.started = 0  # upstream follows started, for the tests and the bench

    # -- viewers -------------------------------------------------------------------------

    def subscribe(self, key: StreamKey, after: Cursor | None, *, owner: str) -> Viewer:
        """A viewer of ``key``'s lines after ``after`` (from the kept window, then live).

        A session at its limit gives up its oldest stream for this one (a reloaded tab's old
        stream is only noticed at its next write): that viewer is ended with the reason.
        """
        limits = self.limits
        idle: Stream | None = None
        with self._lock:
            if self._closed:
                raise TooManyFollows("the service is stopping")
            mine = self._owned.setdefault(owner, [])
            oldest = mine[0] if len(mine) >= limits.max_follows_per_session else None
            if self._viewers - (oldest is not None) >= limits.max_follows:
                raise TooManyFollows(
                    f"{limits.max_follows} live log streams are open on this appliance; "
                    "close a log tab or try again in a moment"
                )
            if oldest is not None:
                oldest.ended = (
                    f"this session opened more than {limits.max_follows_per_session} live "
                    "logs, so the oldest stopped; reload to follow it again"
                )
                idle = self._release(oldest)
                oldest.stream.changed.notify_all()
            stream = self._streams.get(key)
            if stream is None or stream.stopping or stream.ended:
                stream = self._start(key)
            viewer = Viewer(stream, owner, after)
            lines, viewer.gap = stream.window.after(after)
            viewer.queue.extend(lines[-limits.viewer_lines :])
            viewer.missed = max(0, len(lines) - limits.viewer_lines)
            stream.viewers.add(viewer)
            stream.idle_since = None
            self._viewers += 1
            self._owned.setdefault(owner, []).append(viewer)  # ``mine`` went if it emptied
        if idle is not None and idle is not stream:
            self._stop_later(idle)
        return viewer

    def unsubscribe(self, viewer: Viewer) -> None:
        with self._lock:
            idle = self._release(viewer)
        if idle is not None:
            self._stop_later(idle)

    def _release(self, viewer: Viewer) -> Stream | None:
        """Forget ``viewer`` (the lock held); its stream if that has no viewer left."""
        stream = viewer.stream
        if viewer not in stream.viewers:
            return None
        stream.viewers.discard(viewer)
        self._viewers -= 1
        mine = self._owned[viewer.owner]
        mine.remove(viewer)
        if not mine:
            del self._owned[viewer.owner]
        if stream.viewers or stream.ended:
            return None
        stream.idle_since = time.monotonic()
        return stream

    def _stop_later(self, stream: Stream) -> None:
        timer = threading.Timer(self.limits.grace, self._stop_if_idle, (stream,))
        timer.daemon = True
        timer.start()

    def take(self, viewer: Viewer, timeout: float) -> Batch:
        """The viewer's next lines, waiting up to ``timeout`` s for some (an empty batch
        then). A batch with ``ended`` is the last."""
        stream = viewer.stream
        deadline = time.monotonic() + timeout
        with stream.changed:
            while not viewer.queue and not viewer.missed and stream.ended is None:
                if viewer.ended is not None:
                    break
                if self._closed:
                    return Batch([], ended="the service is stopping")
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                stream.changed.wait(left)
            count = min(len(viewer.queue), self.limits.batch_lines)
            lines = [viewer.queue.popleft() for _ in range(count)]
            batch = Batch(lines, viewer.missed, viewer.gap)
            viewer.missed, viewer.gap = 0, False
            viewer.delivered += len(lines)
            if stream.ended is not None and not viewer.queue:
                batch.ended = stream.ended
            if viewer.ended is not None:
                viewer.queue.clear()
                batch.ended = viewer.ended
        return batch

    # -- streams -------------------------------------------------------------------------

    def _start(self, key: StreamKey) -> Stream:
        """A new upstream follow (the hub lock held)."""
        stream = Stream(key, LineWindow(self.limits.ring_lines), threading.Condition(self._lock))
        self._streams[key] = stream
        self.started += 1
        stream.thread = threading.Thread(
            target=self._follow, args=(stream,), name=f"logs {'/'.join(key)}", daemon=True
        )
        stream.thread.start()
        return stream

    def _follow(self, stream: Stream) -> None:
        namespace, pod, container = stream.key
        numbering = Numbering()
        reason = "the container ended"
        try:
            with tracking(stream.children):
                lines: Iterator[str] = self.kube.follow_logs(
                    namespace, pod, container=container or None,
                    tail=self.limits.ring_lines, timestamps=True,
                )  # fmt: skip
                for raw in lines:
                    self._publish(stream, self._bounded(numbering.line(raw)))
        except ServiceError as exc:
            if not stream.stopping:
                log.warning("following the log of %s failed: %s", "/".join(stream.key), exc)
                reason = f"reading the log failed: {exc}"
        except Exception:
            log.exception("following the log of %s failed", "/".join(stream.key))
            reason = "reading the log failed (a bug; see the service log)"
        with stream.changed:
            stream.ended = "the service is stopping" if self._closed else reason
            if self._streams.get(stream.key) is stream:
                del self._streams[stream.key]
            stream.changed.notify_all()

    def _bounded(self, line: LogLine) -> LogLine:
        most = self.limits.max_line_chars
        if len(line.text) <= most:
            return line
        note = f" [… cut: the line has {len(line.text)} characters; download the log for all]"
        return LogLine(line.cursor, line.text[:most] + note)

    def _publish(self, stream: Stream, line: LogLine) -> None:
        limit = self.limits.viewer_lines
        with stream.changed:
            stream.window.append(line)
            for viewer in stream.viewers:
                if viewer.after is not None:
                    if line.cursor <= viewer.after:
                        continue
                    viewer.after = None  # past it: the rest of the stream is newer
                if len(viewer.queue) >= limit:
                    viewer.queue.popleft()
                    viewer.missed += 1
                viewer.queue.append(line)
            stream.changed.notify_all()

    def _stop_if_idle(self, stream: Stream) -> None:
        with self._lock:
            if stream.viewers or stream.stopping or stream.ended:
                return
            stream.stopping = True
            if self._streams.get(stream.key) is stream:
                del self._streams[stream.key]
        self._stop(stream)

    def _stop(self, stream: Stream) -> None:
        stream.children.stop(self.limits.stop_grace)
        if stream.thread is not None and stream.thread is not threading.current_thread():
            stream.thread.join(self.limits.stop_grace + 5)

    # -- the whole hub -------------------------------------------------------------------

    def streams(self) -> dict[StreamKey, int]:
        """Each running upstream follow and its viewer count."""
        with self._lock:
            return {key: len(s.viewers) for key, s in self._streams.items()}

    def backlogs(self, key: StreamKey) -> list[int]:
        """The lines queued for each viewer of ``key`` (what slow viewers hold)."""
        with self._lock:
            stream = self._streams.get(key)
            return sorted(len(v.queue) for v in stream.viewers) if stream else []

    def close(self) -> None:
        """End every stream and wake every viewer (the service stops)."""
        with self._lock:
            self._closed = True
            streams = list(self._streams.values())
            for stream in streams:
                stream.stopping = True
                stream.changed.notify_all()
        # Side by side: a stop waits up to ``stop_grace`` for its kubectl.
        stoppers = [threading.Thread(target=self._stop, args=(s,)) for s in streams]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
