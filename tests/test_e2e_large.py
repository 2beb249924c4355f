"""Large releases end to end: a cibuildwheel-sized release uploaded concurrently, and a job
stopped in the middle of one.

The Warehouse stand-in spends `upload_delay` seconds on each upload and records when each one
arrived and was answered, so the tests can see what ran at the same time.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from publisher.upload import RENEW_MARGIN
from tests.conftest import Runner, assert_no_secrets, build_release, parse_outputs
from tests.servers import OidcRuntime, Warehouse

RELEASE = 40  # files: an sdist and 39 wheels


@pytest.fixture
def release(runner: Runner) -> list[Path]:
    return build_release(runner.workspace / "dist", RELEASE - 1)


def test_a_release_of_40_files_goes_four_at_a_time_after_the_first(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, release: list[Path]
) -> None:
    warehouse.upload_delay = 0.05
    run = runner({"repository-url": warehouse.upload_url, "upload-concurrency": "4"})

    assert run.returncode == 0, run.log
    names = [p.name for p in release]
    assert sorted(warehouse.upload_attempts) == sorted(names)  # each exactly once
    times = {name: (arrived, answered) for name, arrived, answered in warehouse.upload_times}
    first = names[0]
    assert all(times[first][1] <= arrived for name, (arrived, _) in times.items() if name != first)
    assert warehouse.max_in_flight() == 4
    # The log and the summary keep the files' order, whatever order they finished in.
    logged = [line.split()[1] for line in run.stdout.splitlines() if "uploaded " in line[:20]]
    assert [name for name in logged if name in times] == names
    assert [f["filename"] for f in run.files()] == names
    assert {f["status"] for f in run.files()} == {"uploaded"}
    assert len(run.outputs["attestations"].splitlines()) == RELEASE  # signed 4 at a time too
    assert_no_secrets(run, *runtime.issued, *warehouse.minted_tokens)


def test_one_at_a_time_when_asked(
    runner: Runner, warehouse: Warehouse, release: list[Path]
) -> None:
    warehouse.upload_delay = 0.01
    run = runner(
        {"repository-url": warehouse.upload_url, "upload-concurrency": "1", "attestations": "false"}
    )

    assert run.returncode == 0, run.log
    assert warehouse.max_in_flight() == 1
    assert [name for name, _, _ in warehouse.upload_times] == [p.name for p in release]


def test_a_503_on_a_concurrent_upload_is_retried_and_counted_once(
    runner: Runner, warehouse: Warehouse, release: list[Path]
) -> None:
    warehouse.fail_next["/legacy/"] = ["pass", "pass", "pass", 503]
    run = runner({"repository-url": warehouse.upload_url, "attestations": "false"})

    assert run.returncode == 0, run.log
    assert "HTTP 503 Service Unavailable; retry 1 of 4" in run.stdout
    assert sorted(warehouse.upload_attempts) == sorted(p.name for p in release)
    assert {f["status"] for f in run.files()} == {"uploaded"}


def test_the_token_is_renewed_once_for_all_the_uploads_in_flight(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, release: list[Path]
) -> None:
    # Due for renewal 1.5 s into a release that takes over 2 s; the fresh token is due 1.5 s
    # later, after the release.
    warehouse.token_lifetime = RENEW_MARGIN + 1.5
    warehouse.whole_second_expiry = False
    warehouse.upload_delay = 0.2
    run = runner({"repository-url": warehouse.upload_url, "attestations": "false"})

    assert run.returncode == 0, run.log
    assert sorted(warehouse.upload_attempts) == sorted(p.name for p in release)
    assert len(warehouse.minted) == 2  # one renewal, whatever was in flight
    assert run.stdout.count("about to expire") == 1
    assert all(m.burned for m in warehouse.minted)  # the first too, once nothing used it
    assert_no_secrets(run, *runtime.issued, *warehouse.minted_tokens)


def start_a_long_release(runner: Runner, warehouse: Warehouse) -> subprocess.Popen[str]:
    """The action started as the runner starts it, stopped in the middle: the first file has
    landed and four others are in flight, each of which the index takes 30 s to answer."""
    env = runner.environment({"repository-url": warehouse.upload_url, "attestations": "false"})
    for name in ("output.txt", "summary.md"):
        (runner.tmp_path / name).write_text("")
    warehouse.upload_delays = [0.0]
    warehouse.upload_delay = 30.0
    process = subprocess.Popen(
        [sys.executable, "-m", "publisher"],
        cwd=runner.workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _wait_for(lambda: warehouse.in_flight == 4)
    return process


def test_sigterm_mid_release_says_what_made_it_and_burns_the_token(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, release: list[Path]
) -> None:
    process = start_a_long_release(runner, warehouse)

    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    stdout, _ = process.communicate(timeout=30)
    took = time.monotonic() - signalled

    assert process.returncode != 0, stdout
    assert took < 5.0, f"took {took:.1f} s to stop"
    outputs = parse_outputs((runner.tmp_path / "output.txt").read_text())
    statuses = [f["status"] for f in json.loads(outputs["files"])]
    assert statuses[0] == "uploaded"
    assert statuses.count("unknown") == 4
    assert statuses.count("failed") == RELEASE - 5
    summary = (runner.tmp_path / "summary.md").read_text()
    assert "Cancelled (SIGTERM) during the upload" in summary
    assert f"Uploaded: `{release[0].name}`." in summary
    assert "**Unknown, check the index**" in summary
    assert "❓ unknown" in summary
    assert all(m.burned for m in warehouse.minted)
    assert "Traceback" not in stdout
    for secret in (*runtime.issued, *warehouse.minted_tokens):
        assert secret not in summary
        assert all(secret not in line for line in stdout.splitlines() if "add-mask" not in line)


def test_a_second_signal_exits_at_once(
    runner: Runner, warehouse: Warehouse, release: list[Path]
) -> None:
    process = start_a_long_release(runner, warehouse)

    process.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)

    assert time.monotonic() - signalled < 1.0
    assert process.returncode == 128 + signal.SIGTERM


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)
