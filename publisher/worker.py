"""A child process forked at start-up that loads modules ahead of time and then runs one call.

Signing needs sigstore and pypi-attestations, about 0.15 s of CPU to import (their pydantic
models): as much as everything else a publish imports, and all of it before the first upload.
Forked before those other imports, a worker loads them on a second core while this process
imports twine, reads the distributions and exchanges the token; the call then runs in the
worker, whose log lines go to the same stdout while this process waits for the answer. On a
single core nothing is lost but the fork (about 2 ms).

This module imports nothing but `os` and `sys`: it runs before anything heavy is loaded.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


class Worker:
    """`Worker(["sigstore.sign"])` forks now; `call(f, ...)` runs `f(...)` there, once."""

    def __init__(self, preload: Sequence[str]) -> None:
        calls, self._calls = os.pipe()
        self._answers, answers = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(self._calls)
            os.close(self._answers)
            _serve(preload, calls, answers)  # never returns
        os.close(calls)
        os.close(answers)

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`function(*args, **kwargs)` in the worker: its value, or its exception raised here.

        Everything goes through pickle: the function by name, the arguments and the answer.
        """
        import pickle

        if not self.pid:
            raise RuntimeError("a worker runs one call")
        with os.fdopen(self._calls, "wb") as calls:
            pickle.dump((function, args, kwargs), calls)
        with os.fdopen(self._answers, "rb") as answers:
            answer = answers.read()
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
        """End a worker that was not needed (it has done nothing but import)."""
        if self.pid:
            import signal

            os.close(self._calls)
            os.close(self._answers)
            os.kill(self.pid, signal.SIGKILL)
            self._reap()

    def _reap(self) -> None:
        os.waitpid(self.pid, 0)
        self.pid = 0


def _serve(preload: Sequence[str], calls_fd: int, answers_fd: int) -> None:
    import importlib

    status = 0
    try:
        for name in preload:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: S112 - the call imports it again, and says what is wrong
                continue
        with os.fdopen(calls_fd, "rb") as calls:
            request = calls.read()
        if request:
            import pickle

            answer: tuple[str, Any]
            try:
                function, args, kwargs = pickle.loads(request)  # noqa: S301 - from our parent
                answer = ("value", function(*args, **kwargs))
            except Exception as e:
                from publisher.errors import PublishError

                if isinstance(e, PublishError):
                    answer = ("raise", e)
                else:  # a bug: its traceback, which pickle would lose
                    import traceback

                    answer = ("bug", traceback.format_exc())
            with os.fdopen(answers_fd, "wb") as answers:
                pickle.dump(answer, answers)
    except BaseException:
        status = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
