"""A cancelled job: SIGTERM or SIGINT (a cancel, `timeout-minutes`, `docker stop`).

The runner kills the step about 10 seconds after its first signal, so the run has a few seconds
to leave things tidy: start nothing new, give the uploads in flight a moment, revoke the minted
token, and say in the summary and the outputs what is on the index and what is not. Outside the
upload loop the first signal raises `Cancelled` where the run is; inside it, the loop polls
`requested` and winds down itself. A second signal exits at once.

`Cancelled` is a `BaseException`, as `KeyboardInterrupt` is: no `except Exception` or
`except PublishError` on the way (an index that cannot be read, a token that cannot be revoked)
can take it for a failure to go on from. `publisher.publish` turns it into the error that says
what had been uploaded by then.
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
# The runner's first signal is SIGINT (Ctrl-C on Windows), its second SIGTERM (Ctrl-Break on
# Windows, which Python sees as SIGBREAK); `docker stop` sends SIGTERM.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGBREAK") if hasattr(signal, name)
)


class Cancelled(BaseException):
    """Raised where the run is when the job is being stopped."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name

    def before_upload(self) -> PublishError:
        """The error of a run stopped before its first upload request: nothing was sent."""
        return PublishError(
            f"The job was cancelled ({self.signal_name}) before anything was uploaded. Nothing "
            "was published; the minted token, if any, was revoked.",
            title=f"Cancelled ({self.signal_name})",
        )

    def after_upload(self) -> PublishError:
        """The error of a run stopped once its uploads had begun: the outputs and the summary
        list each file as it is."""
        return PublishError(
            f"The job was cancelled ({self.signal_name}) after the upload began. Each file is "
            "listed as it is: uploaded (on the index), not uploaded, or unknown (cut off while "
            "it was being sent: check the index). The minted token, if any, was revoked.",
            title=f"Cancelled ({self.signal_name}) after the upload began",
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
        for number in STOP_SIGNALS:
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

    def check(self) -> None:
        """Raise `Cancelled` if the job is being stopped: for a stage about to start something
        new from within a deferred block."""
        if self._requested.is_set():
            raise Cancelled(self.signal_name)


def restore_default_handlers() -> None:
    """For a forked child: the signals are the parent's to handle."""
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_DFL)
