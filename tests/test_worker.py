"""The forked worker: one call, its value or its exception, and nothing left behind."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from publisher.cancel import Cancellation, Cancelled
from publisher.errors import AttestationError
from publisher.worker import Worker


def load_minidom() -> int:
    import xml.dom.minidom  # noqa: F401

    return os.getpid()


def where_and_loaded(prepared_in: int, name: str) -> tuple[int, int, bool]:
    return prepared_in, os.getpid(), name in sys.modules


def fails_as_a_user_would_see(_prepared: object) -> None:
    raise AttestationError("Rekor said no.", title="Rekor refused")


def fails_as_a_bug() -> None:
    raise KeyError("no such thing")


def test_the_call_runs_in_the_child_with_what_it_prepared() -> None:
    assert "xml.dom.minidom" not in sys.modules
    worker = Worker(load_minidom)

    prepared_in, pid, loaded = worker.call(where_and_loaded, "xml.dom.minidom")

    assert prepared_in == pid != os.getpid()
    assert loaded
    assert "xml.dom.minidom" not in sys.modules  # loaded there, not here


def test_a_publish_error_arrives_whole() -> None:
    worker = Worker(lambda: None)

    with pytest.raises(AttestationError) as raised:
        worker.call(fails_as_a_user_would_see)

    assert raised.value.title == "Rekor refused"
    assert raised.value.markdown == "Rekor said no."


def test_a_failed_preparation_is_raised_by_the_call() -> None:
    worker = Worker(fails_as_a_bug)

    with pytest.raises(RuntimeError, match=r"in the worker process:\n(.|\n)*KeyError"):
        worker.call(where_and_loaded, "os")


def test_a_worker_not_needed_is_killed_and_reaped() -> None:
    worker = Worker(lambda: time.sleep(30))
    pid = worker.pid

    worker.close()

    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped: no zombie left


def signs_for_a_long_time(_prepared: object, marker: str) -> None:
    time.sleep(1.0)
    with open(marker, "w") as f:
        f.write("still working")


def test_a_signal_during_the_call_ends_the_worker_at_once(tmp_path: Path) -> None:
    """The job is cancelled while the worker signs: `Cancelled` reaches the caller, and the
    worker is killed then, not left to go on logging entries for a run that has stopped."""
    cancellation = Cancellation()
    previous = signal.getsignal(signal.SIGTERM)
    cancellation.install()
    marker = tmp_path / "marker"
    worker = Worker(lambda: None)
    pid = worker.pid
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM))
    try:
        timer.start()
        with pytest.raises(Cancelled):
            worker.call(signs_for_a_long_time, str(marker))
        worker.close()  # as the entry point does on every way out: nothing left to do
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    time.sleep(1.2)
    assert not marker.exists()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
