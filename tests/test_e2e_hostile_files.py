"""Hostile inputs and files, end to end: each is an error that names its input or its file,
met before any request (no token minted, nothing uploaded), never a traceback, and no secret
in the log, the summary or the outputs."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest

from tests.conftest import ROOT, Run, Runner, assert_no_secrets
from tests.servers import OidcRuntime, Warehouse
from tests.test_distributions import drop_read_override, make_unreadable, write_bomb_wheel


def assert_refused_before_any_request(
    run: Run, title: str, runtime: OidcRuntime, *indexes: Warehouse
) -> None:
    assert run.returncode == 1, run.log
    assert f"::error title={title}::" in run.stdout
    assert title in run.summary
    assert "Traceback" not in run.log
    assert runtime.requests == []
    for index in indexes:
        assert index.requests == []
        assert index.minted == []
        assert index.files == {}
    assert run.outputs["files"] == "[]"


def test_a_decompression_bomb_is_named_and_nothing_is_uploaded(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    """64 kB on disk, a METADATA of 64 MiB: read up to its bound, no further."""
    bomb = dists[0].parent / "bomb-1.0-py3-none-any.whl"
    write_bomb_wheel(bomb, 64 << 20)
    run = runner({"repository-url": warehouse.upload_url})

    assert_refused_before_any_request(run, f"Metadata too large in {bomb.name}", runtime, warehouse)
    assert f"`{bomb.name}` holds a `bomb-1.0.dist-info/METADATA` of more than 8 MiB" in run.summary
    assert "Nothing was uploaded" in run.summary


def test_a_distribution_the_process_cannot_read_is_named(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path], tmp_path: Path
) -> None:
    """Mode 000, in a process that mode bits bind even as root (its capabilities dropped)."""
    sdist = dists[0]
    make_unreadable(sdist)
    startup = tmp_path / "startup"
    startup.mkdir()
    source = inspect.getsource(drop_read_override)
    (startup / "sitecustomize.py").write_text(f"{source}\n\ndrop_read_override()\n")
    run = runner(
        {"repository-url": warehouse.upload_url},
        extra_env={"PYTHONPATH": f"{startup}{os.pathsep}{ROOT}"},
    )

    assert_refused_before_any_request(run, f"Cannot read {sdist.name}", runtime, warehouse)
    assert f"`{sdist.name}` cannot be read: Permission denied." in run.summary


def test_a_fifo_named_as_a_distribution_is_named_and_never_opened(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    """Opened, it would block the run until the job's time-out; ignored, a file would be missing
    from the release."""
    fifo = dists[0].parent / "other_pkg-1.0.tar.gz"
    os.mkfifo(fifo)
    run = runner({"repository-url": warehouse.upload_url})

    assert_refused_before_any_request(run, f"Cannot read {fifo.name}", runtime, warehouse)
    assert f"`{fifo.name}` is named as a distribution, but it is a named pipe" in run.summary


def test_a_password_in_the_url_is_refused_and_never_shown(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    url = warehouse.upload_url.replace("http://", "http://alice:hunter2-in-url@")
    run = runner({"repository-url": url})

    assert_refused_before_any_request(run, "Invalid input `repository-url`", runtime, warehouse)
    assert "Give them in the `user` and `password` inputs" in run.summary
    assert_no_secrets(run, "hunter2-in-url")


def test_a_url_read_as_loopback_but_connected_elsewhere_sends_nothing(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    """`http://localhost:P\\@127.0.0.1:Q/`: loopback on Q to urllib.parse, which the checks
    used; requests connects to P. Here both are this machine; elsewhere, P is another host
    that gets the password in clear text."""
    elsewhere = Warehouse(runtime)
    try:
        port = elsewhere.url.rsplit(":", 1)[1]
        url = warehouse.upload_url.replace("http://", f"http://localhost:{port}\\@")
        run = runner({"repository-url": url, "user": "alice", "password": "hunter2-input"})
    finally:
        elsewhere.close()

    name = "Invalid input `repository-url`"
    assert_refused_before_any_request(run, name, runtime, warehouse, elsewhere)
    assert f"localhost:{port}" not in run.summary  # where a password could be: masked
    assert_no_secrets(run, "hunter2-input")


@pytest.mark.parametrize(
    ("name", "value"),
    [("upload-concurrency", "\u00b2"), ("await-timeout", "\u0663\u0660\u0660")],
)
def test_non_ascii_digits_are_named_before_any_request(
    runner: Runner,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    dists: list[Path],
    name: str,
    value: str,
) -> None:
    run = runner({"repository-url": warehouse.upload_url, name: value})

    assert_refused_before_any_request(run, f"Invalid input `{name}`", runtime, warehouse)
    assert f"::error title=Invalid input `{name}`::Input `{name}` got `{value}`" in run.stdout
