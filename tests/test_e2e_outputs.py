"""Outputs, step summary, hashes and console, after a publish, a skip and a dry run."""

from __future__ import annotations

import hashlib
import json
import re
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.conftest import HOSTILE, Run, Runner, assert_no_injection
from tests.servers import Warehouse


def expected_files(dists: list[Path], status: str) -> list[dict[str, Any]]:
    files = []
    for path in sorted(dists, key=lambda p: p.name):
        data = path.read_bytes()
        files.append(
            {
                "filename": path.name,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "blake2_256": hashlib.blake2b(data, digest_size=32).hexdigest(),
                "md5": hashlib.md5(data).hexdigest(),  # noqa: S324
                "status": status,
            }
        )
    return files


def without_urls(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in f.items() if k != "url"} for f in files]


def assert_summary_rows(run: Run, dists: list[Path], status: str) -> None:
    for path in dists:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        row = next(line for line in run.summary.splitlines() if path.name in line)
        assert f"| `{digest}` |" in row
        assert status in row


def test_outputs_and_summary_after_a_publish(
    runner: Runner, warehouse: Warehouse, dists: list[Path], tmp_path: Path
) -> None:
    run = runner({"repository-url": warehouse.upload_url})

    assert run.returncode == 0, run.log
    raw = (tmp_path / "output.txt").read_text()
    assert raw.startswith("files<<ghadelimiter_")  # the multi-line form
    assert without_urls(run.files()) == expected_files(dists, "uploaded")
    assert run.outputs["dry-run"] == "false"
    assert run.outputs["release-url"] == ""  # only PyPI and TestPyPI have release pages
    assert f"## 📦 Publishing to `127.0.0.1:{warehouse.url.rsplit(':', 1)[1]}`" in run.summary
    assert "| File | Size | SHA256 | Status |" in run.summary
    assert_summary_rows(run, dists, "✅ uploaded")
    assert f"Index: `{warehouse.upload_url}`" in run.summary


def test_outputs_and_summary_after_a_skip(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    assert runner({"repository-url": warehouse.upload_url}).returncode == 0
    run = runner({"repository-url": warehouse.upload_url, "skip-existing": "true"})

    assert run.returncode == 0, run.log
    files = run.files()
    assert without_urls(files) == expected_files(dists, "already-there")
    assert all(f["url"] == f"{warehouse.url}/files/{f['filename']}" for f in files)
    assert_summary_rows(run, dists, "☑️ already-there (identical file already on the index)")
    assert warehouse.upload_attempts.count(dists[0].name) == 1  # looked up first, never re-sent


def test_outputs_and_summary_after_a_dry_run(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    run = runner({"repository-url": warehouse.upload_url, "dry-run": "true"})

    assert run.returncode == 0, run.log
    assert without_urls(run.files()) == expected_files(dists, "dry-run")
    assert run.outputs["dry-run"] == "true"
    assert run.outputs["release-url"] == ""
    assert "## 🧪 Dry run for" in run.summary
    assert "nothing was uploaded" in run.summary.splitlines()[0]
    assert_summary_rows(run, dists, "🧪 dry-run")


def test_print_hash_logs_every_digest(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    run = runner({"repository-url": warehouse.upload_url, "print-hash": "true"})

    assert run.returncode == 0, run.log
    for f in expected_files(dists, "uploaded"):
        assert f"SHA256:      {f['sha256']}" in run.stdout
        assert f"MD5:         {f['md5']}" in run.stdout
        assert f"BLAKE2-256:  {f['blake2_256']}" in run.stdout


def test_console_is_a_log_not_a_terminal(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    run = runner({"repository-url": warehouse.upload_url, "verbose": "true"})

    assert run.returncode == 0, run.log
    assert "\r" not in run.log
    assert "━" not in run.log  # no progress bars
    assert "::group::Distributions in dist (2)" in run.stdout
    assert "::endgroup::" in run.stdout
    upload_lines = [line for line in run.stdout.splitlines() if "uploaded example_pkg" in line]
    assert len(upload_lines) == 2
    assert all(" kB in " in line or " B in " in line for line in upload_lines)
    assert all("/s)" in line for line in upload_lines)
    assert "| 200 OK" in run.stdout  # verbose: the index's answers


def test_quiet_without_verbose(runner: Runner, warehouse: Warehouse, dists: list[Path]) -> None:
    run = runner({"repository-url": warehouse.upload_url})

    assert "| 200 OK" not in run.stdout


def cells(row: str) -> list[str]:
    """A row of a GitHub Markdown table cut as GitHub cuts it: at each `|` not escaped."""
    return re.split(r"(?<!\\)\|", row.strip())[1:-1]


HOSTILE_URL = (
    "https://mirror.invalid/f.whl?a=1) | a cell | [click](https://elsewhere.invalid) "
    f"<img src=x>\n| a row |\r##[error]{HOSTILE}\n::error::{HOSTILE}"
)


def test_what_the_index_says_cannot_break_the_summary_or_the_outputs(
    runner: Runner, warehouse: Warehouse, dists: list[Path], tmp_path: Path
) -> None:
    """A simple page that lists our files (same sha256) at URLs full of Markdown and HTML."""
    assert runner({"repository-url": warehouse.upload_url}).returncode == 0
    page = json.dumps(
        {
            "meta": {"api-version": "1.1"},
            "name": "example-pkg",
            "files": [
                {
                    "filename": path.name,
                    "url": HOSTILE_URL,
                    "hashes": {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()},
                }
                for path in dists
            ],
        }
    ).encode()
    answer = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.pypi.simple.v1+json\r\n"
        f"Content-Length: {len(page)}\r\nConnection: close\r\n\r\n"
    ).encode() + page

    def simple(handler: BaseHTTPRequestHandler, _body: bytes) -> None:
        handler.wfile.write(answer)

    warehouse.takeover["/simple/"] = simple
    run = runner({"repository-url": warehouse.upload_url, "skip-existing": "true"})

    assert run.returncode == 0, run.log
    rows = [line for line in run.summary.split("\n") if line.startswith("|")]
    assert len(rows) == 2 + len(dists)  # the heading, its rule, a row a file
    assert all(len(cells(row)) == len(cells(rows[0])) for row in rows), rows
    assert "<img" not in run.summary
    assert "[click]" not in run.summary
    assert "\r" not in run.summary
    assert all(f["url"] == HOSTILE_URL for f in run.files())  # as the index gave it
    assert "\r" not in (tmp_path / "output.txt").read_text()
    assert_no_injection(run)
