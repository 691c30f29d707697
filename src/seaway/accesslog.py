"""Access logs: one line per L4 connection (or UDP flow) and per L7 request, written by a
thread of its own.

Data planes hand finished connections to :meth:`AccessLog.emit`, which only puts a
small record on a bounded queue; formatting and writing happen on the writer thread,
so that a slow disk never stalls the event loop. When the queue is full the record is
dropped and counted (``dropped``), as a full kernel socket buffer drops datagrams.

Two formats: ``json`` (JSON lines, one object per line) and ``text`` (one line of
space-separated fields, in the spirit of HAProxy's TCP log for connections and of nginx's
combined log for requests). Any object with ``as_json()`` and ``as_text()`` can be
logged (see :class:`AccessRecord`): :class:`ConnectionRecord` for the L4 proxy,
:class:`RequestRecord` for the HTTP proxy. Records hold raw values; everything costly
(time formatting, joining addresses, escaping) happens in ``as_json``/``as_text``, on
the writer thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from seaway.core.config import join_host_port

log = logging.getLogger(__name__)

AccessLogFormat = Literal["json", "text"]
FORMATS: tuple[AccessLogFormat, ...] = ("json", "text")
# Results of an L4 connection, as logged and documented (docs/operations.md).
RESULT_OK = "ok"  # both sides closed normally
RESULT_RESET = "reset"  # the client or the backend reset the connection
RESULT_NO_BACKEND = "no-backend"  # no usable backend: refused with an RST
RESULT_REJECTED = "rejected"  # outside loadBalancerSourceRanges, or a bad PROXY header
RESULT_CONNECT_FAILED = "connect-failed"  # every connect attempt failed
# Request targets are logged up to this many characters: a client may send targets of
# many kilobytes, and one would make every line that long (HAProxy's tune.http.logurilen
# default is 1024 too).
MAX_LOGGED_TARGET = 1024
# Records waiting for the writer beyond this are dropped (about 20 MB at ~200 B each).
QUEUE_LIMIT = 100_000
# How often the writer checks whether the log file was moved away (logrotate), as
# logging.handlers.WatchedFileHandler does on every record; once a second is enough.
REOPEN_CHECK_SECONDS = 1.0
# The writer thread writes what it holds once this many bytes of lines are waiting,
# and whenever the queue runs empty.
WRITE_CHUNK = 64 * 1024


class AccessRecord(Protocol):
    """What the writer needs from a record."""

    def as_json(self) -> dict[str, Any]: ...

    def as_text(self) -> str: ...


def _iso(ts: float) -> str:
    """RFC 3339 UTC time with milliseconds."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _common_json(
    kind: str, start: float, duration: float, protocol: str, client: tuple[str, int]
) -> dict[str, Any]:
    """The fields every access record starts with, in JSON."""
    return {
        "type": kind,
        "start": _iso(start),
        "end": _iso(start + duration),
        "duration_ms": round(duration * 1000, 3),
        "protocol": protocol,
        "client": join_host_port(*client),
    }


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    """One finished L4 connection (TCP) or flow (UDP).

    ``start`` is wall-clock time (seconds since the epoch); ``duration`` and
    ``connect_duration`` are seconds (``connect_duration`` None when no backend
    connected). Bytes are counted as they were forwarded.
    """

    start: float
    duration: float
    protocol: str
    client: tuple[str, int]
    listener: str
    service: str
    backend: str | None
    bytes_to_backend: int
    bytes_from_backend: int
    result: str
    connect_duration: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            **_common_json("connection", self.start, self.duration, self.protocol, self.client),
            "listener": self.listener,
            "service": self.service,
            "backend": self.backend,
            "connect_ms": (
                None if self.connect_duration is None else round(self.connect_duration * 1000, 3)
            ),
            "bytes_to_backend": self.bytes_to_backend,
            "bytes_from_backend": self.bytes_from_backend,
            "result": self.result,
        }

    def as_text(self) -> str:
        connect = "-" if self.connect_duration is None else f"{self.connect_duration * 1000:.1f}"
        return " ".join(
            (
                _iso(self.start),
                join_host_port(*self.client),
                self.listener,
                self.service or "-",
                self.backend or "-",
                self.result,
                f"{self.duration * 1000:.1f}ms",
                f"connect={connect}ms",
                f"up={self.bytes_to_backend}",
                f"down={self.bytes_from_backend}",
            )
        )


# Characters written as \xHH in the text format, as nginx escapes its variables: anything
# but printable ASCII, and the quote and backslash, so that a field never splits a line
# or a quoted field (a space too, except in the quoted route name).
_UNSAFE_TEXT = re.compile(r'[^\x21-\x7e]|["\\]')
_UNSAFE_QUOTED = re.compile(r'[^\x20-\x7e]|["\\]')


def _escape_char(match: re.Match[str]) -> str:
    return "".join(f"\\x{byte:02x}" for byte in match.group().encode("utf-8"))


def _text_field(value: str, unsafe: re.Pattern[str] = _UNSAFE_TEXT) -> str:
    """``value`` for the text format: escaped, "-" when empty."""
    return unsafe.sub(_escape_char, value) if value else "-"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One finished HTTP request (HTTP/1.x or an HTTP/2 stream), answered or not.

    ``start`` is wall-clock time (seconds since the epoch) when the request head was
    read; ``duration`` and ``upstream_ttfb`` are seconds (``upstream_ttfb``: from
    choosing a backend, connecting included, to its response head; None when no backend
    answered). ``target`` is the path and query as the client sent them. ``status`` is
    0 when no response was sent. ``backend`` is the backend the request went to last
    (None for answers of seaway's own, such as a 404 without a route); ``route`` names
    the Ingress rule or HTTPRoute rule that matched. Body bytes are counted as
    forwarded (after a 101, the tunnel's bytes).
    """

    start: float
    duration: float
    protocol: str
    client: tuple[str, int]
    listener: str
    host: str
    method: str
    target: str
    status: int
    backend: str | None
    route: str | None
    request_body_bytes: int
    response_body_bytes: int
    upstream_ttfb: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            **_common_json("request", self.start, self.duration, self.protocol, self.client),
            "listener": self.listener,
            "host": self.host,
            "method": self.method,
            "path": self.target[:MAX_LOGGED_TARGET],
            "status": self.status or None,
            "backend": self.backend,
            "route": self.route,
            "upstream_ttfb_ms": (
                None if self.upstream_ttfb is None else round(self.upstream_ttfb * 1000, 3)
            ),
            "request_body_bytes": self.request_body_bytes,
            "response_body_bytes": self.response_body_bytes,
        }

    def as_text(self) -> str:
        ttfb = "-" if self.upstream_ttfb is None else f"{self.upstream_ttfb * 1000:.1f}ms"
        request = " ".join(
            (
                _text_field(self.method),
                _text_field(self.target[:MAX_LOGGED_TARGET]),
                self.protocol,
            )
        )
        return " ".join(
            (
                _iso(self.start),
                join_host_port(*self.client),
                f'"{request}"',
                str(self.status) if self.status else "-",
                str(self.response_body_bytes),
                f"{self.duration * 1000:.1f}ms",
                self.backend or "-",
                self.listener,
                _text_field(self.host),
                f"in={self.request_body_bytes}",
                f"ttfb={ttfb}",
                f'"{_text_field(self.route or "", _UNSAFE_QUOTED)}"',
            )
        )


@dataclass(frozen=True, slots=True)
class AccessLogSpec:
    """Where access logs go and how they look; ``path`` "-" is standard output."""

    path: str
    format: AccessLogFormat = "json"


class _Reconfigure:
    __slots__ = ("spec",)

    def __init__(self, spec: AccessLogSpec | None) -> None:
        self.spec = spec


_STOP = object()


class AccessLog:
    """The access log writer (owns its thread and its file; ``close`` ends both).

    ``enabled`` tells data planes whether building a record is worth it. ``emit``
    may be called from the event loop thread only; it never blocks.
    """

    def __init__(
        self, spec: AccessLogSpec | None = None, *, queue_limit: int = QUEUE_LIMIT
    ) -> None:
        self.spec = spec
        self.enabled = spec is not None
        self.dropped = 0
        self.written = 0
        self._queue: queue.Queue[object] = queue.Queue(queue_limit)
        self._thread: threading.Thread | None = None
        # The file's descriptor (O_APPEND), or None; standard output when the path is "-".
        self._fd: int | None = None
        self._stdout = False
        # Lines written since the last flush: they leave together in one write(2).
        self._lines: list[str] = []
        self._pending = 0
        self._inode: tuple[int, int] | None = None
        self._checked = 0.0
        self._writer_spec: AccessLogSpec | None = None

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, args=(self.spec,), name="seaway-access-log", daemon=True
            )
            self._thread.start()

    def configure(self, spec: AccessLogSpec | None) -> None:
        """Write to ``spec`` from now on (None: stop logging); records queued go first."""
        if spec == self.spec:
            return
        self.spec = spec
        self.enabled = spec is not None
        if self._thread is not None:
            self._queue.put(_Reconfigure(spec))

    def emit(self, record: AccessRecord) -> None:
        """Queue ``record`` for writing; dropped (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every record queued so far is written (for tests and shutdown)."""
        if self._thread is None:
            return True
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the thread and close the file."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout)
        thread.join(timeout)

    # -- writer thread -----------------------------------------------------------

    def _run(self, spec: AccessLogSpec | None) -> None:
        self._open(spec)
        try:
            while True:
                item = self._queue.get()
                try:
                    if item is _STOP:
                        return
                    if isinstance(item, _Reconfigure):
                        self._open(item.spec)
                    else:
                        self._reopen_if_moved()
                        self._write(item)  # type: ignore[arg-type]
                    if self._queue.empty():  # a burst is written; flush it once
                        self._flush_file()
                finally:
                    self._queue.task_done()
        finally:
            self._close_file()

    def _write(self, record: AccessRecord) -> None:
        spec = self._writer_spec
        if spec is None or (self._fd is None and not self._stdout):
            return
        try:
            if spec.format == "json":
                line = json.dumps(record.as_json(), separators=(",", ":"))
            else:
                line = record.as_text()
        except (ValueError, TypeError) as exc:
            log.error("cannot format an access log record: %s", exc)
            return
        self._lines.append(line + "\n")
        self._pending += len(line) + 1
        self.written += 1
        if self._pending >= WRITE_CHUNK:
            self._flush_file()

    def _flush_file(self) -> None:
        """Write the held lines in one write(2) of whole lines.

        The file is opened with O_APPEND, and Linux serialises write(2) calls on one
        file: the lines of several workers writing to the same file never cut into each
        other, as they could with a buffered file flushed at an arbitrary byte.
        """
        lines, self._lines, self._pending = self._lines, [], 0
        if not lines:
            return
        if self._stdout:
            with contextlib.suppress(OSError, ValueError):
                sys.stdout.write("".join(lines))
                sys.stdout.flush()
            return
        if self._fd is None:
            return
        data = memoryview("".join(lines).encode("utf-8"))
        try:
            while data:  # a short write only when the disk is full, or on a signal
                data = data[os.write(self._fd, data) :]
        except OSError as exc:
            log.error("cannot write the access log: %s; check free disk space", exc)

    def _open(self, spec: AccessLogSpec | None) -> None:
        self._close_file()
        self._writer_spec = spec
        if spec is None:
            return
        if spec.path == "-":
            self._stdout = True
            return
        try:
            self._fd = os.open(spec.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            st = os.fstat(self._fd)
            self._inode = (st.st_dev, st.st_ino)
        except OSError as exc:
            self._fd = None
            log.error(
                "cannot open the access log %s: %s; access logs are off until the path is "
                "writable (fix it, then edit the SeawayConfig or restart)",
                spec.path,
                exc.strerror or exc,
            )

    def _reopen_if_moved(self) -> None:
        spec = self._writer_spec
        now = time.monotonic()
        if spec is None or spec.path == "-" or now - self._checked < REOPEN_CHECK_SECONDS:
            return
        self._checked = now
        try:
            st = os.stat(spec.path)
            moved = (st.st_dev, st.st_ino) != self._inode
        except FileNotFoundError:
            moved = True
        except OSError:
            return
        if moved:  # logrotate renamed it: continue in a new file at the configured path
            self._open(spec)

    def _close_file(self) -> None:
        self._flush_file()
        fd, self._fd = self._fd, None
        self._stdout = False
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
