"""A child process forked at start-up that prepares ahead of time, then runs one call.

Signing needs sigstore and pypi-attestations, about 0.15 s of CPU to import (their pydantic
models): as much as everything else a publish imports, and all of it before the first upload;
then Sigstore's trust root, refreshed over the network. Forked before the other imports, a
worker does both on a second core while this process imports twine, reads the distributions
and exchanges the token; the call then runs in the worker, whose log lines go to the same
stdout, while this process waits for the answer. On one core nothing is lost but the fork.

This module imports nothing but `os` and `sys`: it runs before anything heavy is loaded.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Worker:
    """`Worker(prepare)` forks now and runs `prepare()` there; `call(f, ...)` then runs
    `f(prepared, ...)` there, once, with what `prepare` returned."""

    def __init__(self, prepare: Callable[[], object]) -> None:
        calls, self._calls = os.pipe()
        self._answers, answers = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(self._calls)
            os.close(self._answers)
            _serve(prepare, calls, answers)  # never returns
        os.close(calls)
        os.close(answers)
        self._open = {self._calls, self._answers}

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`function(prepared, *args, **kwargs)` in the worker: its value, or its exception
        raised here (or the one `prepare` raised, if it did).

        Everything goes through pickle: the function by name, the arguments and the answer.
        Whatever interrupts the wait (a cancelled job raises `Cancelled` here) ends the worker
        at once: it must not go on signing, or logging, for a run that has stopped.
        """
        import pickle

        if not self.pid:
            raise RuntimeError("a worker runs one call")
        try:
            with os.fdopen(self._calls, "wb", closefd=False) as calls:
                pickle.dump((function, args, kwargs), calls)
            self._close(self._calls)
            with os.fdopen(self._answers, "rb", closefd=False) as answers:
                answer = answers.read()
        except BaseException:
            self.close()
            raise
        self._close(self._answers)
        self._reap()
        if not answer:
            raise RuntimeError("the worker process ended without an answer")
        kind, value = pickle.loads(answer)  # noqa: S301 - our own child's answer
        if kind == "value":
            return value  # type: ignore[no-any-return]
        if kind == "raise":
            raise value
        raise RuntimeError(f"in the worker process:\n{value}")

    def close(self) -> None:
        """End the worker now, whatever it is doing (it was not needed, or the run stopped)."""
        if self.pid:
            import signal
            from contextlib import suppress

            self._close(self._calls)
            self._close(self._answers)
            with suppress(ProcessLookupError):  # it had ended already: reaped all the same
                os.kill(self.pid, signal.SIGKILL)
            self._reap()

    def _close(self, fd: int) -> None:
        """Each pipe end once: a second close could close a descriptor opened since."""
        if fd in self._open:
            self._open.discard(fd)
            os.close(fd)

    def _reap(self) -> None:
        from contextlib import suppress

        with suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        self.pid = 0


def _serve(prepare: Callable[[], object], calls_fd: int, answers_fd: int) -> None:
    from publisher.cancel import restore_default_handlers

    restore_default_handlers()  # a stop signal is the parent's to handle (it ends this one)
    status = 0
    try:
        prepared = _outcome(prepare)
        with os.fdopen(calls_fd, "rb") as calls:
            request = calls.read()
        if request:
            import pickle

            answer = prepared
            if prepared[0] == "value":
                function, args, kwargs = pickle.loads(request)  # noqa: S301 - from our parent
                answer = _outcome(lambda: function(prepared[1], *args, **kwargs))
            with os.fdopen(answers_fd, "wb") as answers:
                pickle.dump(answer, answers)
    except BaseException:
        status = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def _outcome(function: Callable[[], object]) -> tuple[str, Any]:
    """("value", what it returned), ("raise", the `PublishError` it raised) or ("bug", the
    traceback of anything else, which pickle would lose)."""
    try:
        return "value", function()
    except Exception as e:
        from publisher.errors import PublishError

        if isinstance(e, PublishError):
            return "raise", e
        import traceback

        return "bug", traceback.format_exc()
