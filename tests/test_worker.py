"""The forked worker: one call, its value or its exception, and nothing left behind."""

from __future__ import annotations

import os
import sys

import pytest

from publisher.errors import AttestationError
from publisher.worker import Worker


def where_and_loaded(name: str) -> tuple[int, bool]:
    return os.getpid(), name in sys.modules


def fails_as_a_user_would_see() -> None:
    raise AttestationError("Rekor said no.", title="Rekor refused")


def fails_as_a_bug() -> None:
    raise KeyError("no such thing")


def test_the_call_runs_in_the_child_which_preloaded_its_modules() -> None:
    assert "xml.dom.minidom" not in sys.modules
    worker = Worker(["xml.dom.minidom"])

    pid, loaded = worker.call(where_and_loaded, "xml.dom.minidom")

    assert pid != os.getpid()
    assert loaded
    assert "xml.dom.minidom" not in sys.modules  # loaded there, not here


def test_a_publish_error_arrives_whole() -> None:
    worker = Worker([])

    with pytest.raises(AttestationError) as raised:
        worker.call(fails_as_a_user_would_see)

    assert raised.value.title == "Rekor refused"
    assert raised.value.markdown == "Rekor said no."


def test_a_bug_arrives_with_its_traceback() -> None:
    worker = Worker([])

    with pytest.raises(RuntimeError, match=r"in the worker process:\n(.|\n)*KeyError"):
        worker.call(fails_as_a_bug)


def test_a_worker_not_needed_is_reaped_and_a_missing_module_is_no_failure() -> None:
    worker = Worker(["no_such_module_here"])
    pid = worker.pid

    worker.close()

    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped: no zombie left
