"""A job cancelled at the worst moments: each stage stops, nothing new is minted, signed or sent,
every token is revoked, the exit comes within 5 s, and the report says what is on the index.

The action runs as the runner starts it (`python -m publisher` with the runner's environment) and
gets SIGTERM, as `docker stop` or the runner's cancel sends it, while a stand-in holds it in one
stage: reading the index, signing, awaiting the release.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.conftest import Background, Runner
from tests.servers import OidcRuntime, Warehouse
from tests.sigstore_standin import Sigstore

STOP_WITHIN = 5.0  # seconds from the signal to the exit


def started(runner: Runner, inputs: dict[str, str]) -> Background:
    """`python -m publisher` running in the background, as the runner starts the action."""
    command = [sys.executable, "-m", "publisher"]
    return Background(command, runner.tmp_path, runner.workspace, runner.environment(inputs))


def hold(seconds: float) -> Callable[[BaseHTTPRequestHandler, bytes], None]:
    """An answer that never comes in time: the headers of a page, then nothing for a while."""

    def answer(handler: BaseHTTPRequestHandler, _body: bytes) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n")
        handler.wfile.write(b"Content-Length: 100000\r\n\r\n<html><body>")
        handler.wfile.flush()
        time.sleep(seconds)

    return answer


def test_a_signal_while_the_index_is_read_stops_before_any_token_or_signature(
    runner: Runner, warehouse: Warehouse, sigstore: Sigstore, dists: list[Path]
) -> None:
    """Not "index not readable, going on": the run stops there."""
    warehouse.takeover["/simple/"] = hold(20)
    run = started(runner, {"repository-url": warehouse.upload_url})
    run.wait_for(lambda: warehouse.count("GET", "/simple/") > 0)

    took = run.signal(signal.SIGTERM)

    assert run.process.returncode == 1, run.log
    assert took < STOP_WITHIN, f"took {took:.1f} s to stop"
    assert warehouse.minted == []
    assert warehouse.count("GET", "/_/oidc/") == 0
    assert sigstore.fulcio.count("POST", "/") == 0
    assert warehouse.upload_attempts == []
    assert "Index not readable" not in run.log
    assert "Cancelled (SIGTERM)" in run.summary()
    assert "before anything was uploaded" in run.summary()
    assert json.loads(run.outputs()["files"]) == []
    assert "Traceback" not in run.log


def test_a_signal_while_signing_ends_the_signing_and_revokes_the_token(
    runner: Runner, warehouse: Warehouse, sigstore: Sigstore, dists: list[Path]
) -> None:
    """The certificate authority holds the run; the worker that signs must not go on to log
    entries after the signal, and nothing is uploaded."""
    sigstore.fulcio.takeover["/api/v2/signingCert"] = hold(20)
    run = started(runner, {"repository-url": warehouse.upload_url})
    run.wait_for(lambda: sigstore.fulcio.count("POST", "/api/v2/signingCert") > 0)

    took = run.signal(signal.SIGTERM)
    time.sleep(0.5)  # a worker left running would reach Rekor by now

    assert run.process.returncode == 1, run.log
    assert took < STOP_WITHIN, f"took {took:.1f} s to stop"
    assert len(warehouse.minted) == 1
    assert all(m.burned for m in warehouse.minted)
    assert sigstore.rekor.entries == []
    assert warehouse.upload_attempts == []
    assert "before anything was uploaded" in run.summary()
    assert "Traceback" not in run.log


def test_a_signal_while_the_release_is_awaited_reports_what_was_uploaded(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    """The uploads landed: the report must say so, not "cancelled before anything was
    uploaded" with no files."""
    warehouse.serve_delay = 60.0  # uploaded, but not listed for a minute
    run = started(runner, {"repository-url": warehouse.upload_url})
    run.wait_for(lambda: "Waiting until" in run.log)

    took = run.signal(signal.SIGTERM)

    assert run.process.returncode == 1, run.log
    assert took < STOP_WITHIN, f"took {took:.1f} s to stop"
    files = json.loads(run.outputs()["files"])
    assert sorted(f["filename"] for f in files) == sorted(p.name for p in dists)
    assert {f["status"] for f in files} == {"uploaded"}
    assert sorted(warehouse.files) == sorted(p.name for p in dists)
    summary = run.summary()
    assert "Cancelled (SIGTERM) after the upload began" in summary
    assert "before anything was uploaded" not in summary
    assert summary.count("✅ uploaded") == len(dists)
    assert all(m.burned for m in warehouse.minted)
    assert "Traceback" not in run.log
