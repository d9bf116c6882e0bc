"""The HTTP server itself, below the app's guards: uvicorn, with a time limit on a request head
that does not arrive and on a response nobody reads (`H11WithHeadTimeout`), as
`pix2color serve` runs it (`server_config`)."""

from __future__ import annotations

import contextlib
import struct

from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

try:  # Unix: a socket's send queue (H11WithHeadTimeout)
    import fcntl
    import termios
except ImportError:
    fcntl = termios = None


class H11WithHeadTimeout(H11Protocol):
    """uvicorn's HTTP/1.1 protocol (h11), with two time limits uvicorn 0.54 has no setting for:

    - a client that connects and sends nothing, or half a request head, would hold a connection
      for ever: here a connection whose next request head is not in within `head_timeout`
      seconds of its opening, or of the previous response, is closed (`timeout_keep_alive`
      starts only after a first response);
    - a client that stops reading a response would hold it in memory for ever (a response is
      handed to the transport whole): one that takes none of it for `head_timeout` seconds is
      cut off and the rest dropped; a slow reader that keeps reading is left to finish.

    A request's body has its own limits (`BoundedBodies`). This subclass uses uvicorn's `cycle`
    and `transport`, the one place pix2color reaches into uvicorn;
    `test_a_request_head_that_never_ends_is_timed_out` and
    `test_a_client_that_stops_reading_is_cut_off` fail if a uvicorn upgrade changes them."""

    head_timeout = 30.0

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._unsent = 0
        self._deadline = self.loop.call_later(self.head_timeout, self._close_if_idle)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._deadline.cancel()
        self._unsent = self._unsent_bytes()
        self._deadline = self.loop.call_later(self.head_timeout, self._close_if_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline.cancel()
        super().connection_lost(exc)

    def _close_if_idle(self) -> None:
        waiting_for_a_head = self.cycle is None or self.cycle.response_complete
        if not waiting_for_a_head or self.transport.is_closing():
            return
        if self.transport.get_write_buffer_size() == 0:  # the rest, if any, is the system's to send
            self.transport.close()
            return
        unsent = self._unsent_bytes()
        if unsent < self._unsent:  # still reading the response: another period
            self._unsent = unsent
            self._deadline = self.loop.call_later(self.head_timeout, self._close_if_idle)
        else:
            self.transport.abort()  # close() would keep the unsent bytes until the client reads them

    def _unsent_bytes(self) -> int:
        """Bytes of the response the client has not taken: the transport's buffer, and on Linux the
        socket's send queue (the system's buffer can hold megabytes, and the transport's shrinks
        only when half of it is free, so a slow reader's progress shows there first)."""
        unsent = self.transport.get_write_buffer_size()
        connection = self.transport.get_extra_info("socket")
        if connection is not None and termios is not None and hasattr(termios, "TIOCOUTQ"):
            with contextlib.suppress(OSError):
                unsent += struct.unpack("i", fcntl.ioctl(connection.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
        return unsent


def server_config(app: ASGIApp, head_timeout: float = H11WithHeadTimeout.head_timeout, **options):
    """The uvicorn configuration `pix2color serve` runs `app` with (`options`: uvicorn's)."""
    import uvicorn

    protocol = type("H11WithHeadTimeout", (H11WithHeadTimeout,), {"head_timeout": head_timeout})
    return uvicorn.Config(app, http=protocol, **{"log_level": "warning", **options})
