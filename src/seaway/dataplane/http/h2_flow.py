"""Sending on an HTTP/2 stream within its flow-control window (RFC 9113 section 5.2).

A ``SendQueue`` holds what one stream still has to send: data, then optionally
trailers, then the end of the stream. ``flush`` sends as much as the stream's and the
connection's windows allow, in frames no larger than the peer's SETTINGS_MAX_FRAME_SIZE;
the rest waits for a WINDOW_UPDATE. The bytes queued are what backpressure looks at.
"""

from __future__ import annotations

import collections

import h2.connection
import h2.exceptions

Fields = list[tuple[bytes, bytes]]


class SendQueue:
    """Pending output of one stream (owned by its connection)."""

    __slots__ = ("data", "ended", "finished", "queued", "trailers")

    def __init__(self) -> None:
        self.data: collections.deque[bytes] = collections.deque()
        self.queued = 0
        self.ended = False
        self.trailers: Fields | None = None
        self.finished = False  # END_STREAM sent

    def push(self, data: bytes) -> None:
        if data and not self.ended:
            self.data.append(data)
            self.queued += len(data)

    def end(self, trailers: Fields | None = None) -> None:
        if not self.ended:
            self.ended = True
            self.trailers = trailers or None


def flush(conn: h2.connection.H2Connection, stream_id: int, queue: SendQueue) -> None:
    """Send what the windows allow; raises nothing for a stream that is gone (the queue
    is emptied and marked finished)."""
    try:
        while queue.data:
            window = conn.local_flow_control_window(stream_id)
            if window <= 0:
                return
            chunk = queue.data[0]
            size = min(window, conn.max_outbound_frame_size, len(chunk))
            if size == len(chunk):
                queue.data.popleft()
                conn.send_data(stream_id, chunk)
            else:
                queue.data[0] = chunk[size:]
                conn.send_data(stream_id, chunk[:size])
            queue.queued -= size
        if queue.ended and not queue.finished:
            queue.finished = True
            if queue.trailers is not None:
                conn.send_headers(stream_id, queue.trailers, end_stream=True)
            else:
                conn.end_stream(stream_id)
    except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
        queue.data.clear()
        queue.queued = 0
        queue.finished = True
