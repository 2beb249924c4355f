"""A cancelled job: SIGTERM or SIGINT (a cancel, `timeout-minutes`, `docker stop`).

The runner kills the container about 10 seconds after its stop signal, so the run has a few
seconds to leave things tidy: start nothing new, give the uploads in flight a moment, revoke
the minted token, and say in the summary and the outputs what is on the index and what is not.
Outside the upload loop the first signal raises `Cancelled` where the run is (the minted token
is revoked on the way out); inside it, the loop polls `requested` and winds down itself. A
second signal exits at once.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from publisher.errors import PublishError

EXIT_AT_ONCE = 128  # + the signal's number, as a shell reports a process killed by it


class Cancelled(PublishError):
    title = "Cancelled"

    def __init__(self, signal_name: str) -> None:
        super().__init__(
            f"The job was cancelled ({signal_name}) before anything was uploaded. Nothing was "
            "published; the minted token, if any, was revoked.",
            title=f"Cancelled ({signal_name})",
        )


class Cancellation:
    def __init__(self) -> None:
        self._requested = threading.Event()
        self._deferred = 0
        self.signal_name = ""

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    def install(self) -> None:
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, self._handle)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Within this block a first signal only sets `requested`: the block winds down."""
        self._deferred += 1
        try:
            yield
        finally:
            self._deferred -= 1

    def _handle(self, number: int, _frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        if self._requested.is_set():
            sys.stdout.flush()
            os._exit(EXIT_AT_ONCE + number)
        self.signal_name = name
        self._requested.set()
        sys.stdout.write(f"Received {name}: stopping; a second signal exits at once.\n")
        sys.stdout.flush()
        if not self._deferred:
            raise Cancelled(name)


def restore_default_handlers() -> None:
    """For a forked child: the signals are the parent's to handle."""
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, signal.SIG_DFL)
