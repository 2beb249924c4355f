"""A hostile (or broken) index, end to end: answers Python's HTML parser rejects, a page sent a
byte at a time or too large to read, an upload answer that never completes, a `Retry-After` in
digits `float()` does not read. Each run ends in bounded time, says what it could not read,
still uploads what it can (reading the index only informs), reports each file, revokes the
upload token, and shows no traceback.

Waits that take a minute in a real run are shortened to a second here, by a `sitecustomize` on
`PYTHONPATH`: the run is still `python -m publisher`, as the runner starts it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests.conftest import ROOT, Run, Runner, assert_no_secrets
from tests.servers import OidcRuntime, StandIn, Warehouse

Answer = Callable[[BaseHTTPRequestHandler, bytes], None]


def short_read_timeouts(directory: Path, seconds: float) -> dict[str, str]:
    """The environment for a run whose read time-outs (for the whole answer) are `seconds`."""
    directory.mkdir(exist_ok=True)
    (directory / "sitecustomize.py").write_text(
        "import publisher.http\n"
        f"publisher.http.TIMEOUT = (5.0, {seconds})\n"
        f"publisher.http.UPLOAD_TIMEOUT = (5.0, {seconds})\n"
    )
    return {"PYTHONPATH": f"{directory}:{ROOT}"}


def raw(status: bytes, content_type: bytes, body: bytes, extra: bytes = b"") -> Answer:
    def answer(handler: BaseHTTPRequestHandler, _body: bytes) -> None:
        handler.wfile.write(
            b"HTTP/1.1 " + status + b"\r\nContent-Type: " + content_type + b"\r\n" + extra
        )
        handler.wfile.write(b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)

    return answer


def serve(server: StandIn, handler: BaseHTTPRequestHandler, body: bytes) -> None:
    """What the stand-in answers when nothing is taken over (the upload stores the file)."""
    status, headers, payload = server.handle(handler.command, handler.path, handler.headers, body)
    headers = dict(headers)
    handler.send_response(status, headers.pop(":reason", None))
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


def drip(head: bytes, seconds: float = 20.0) -> Answer:
    """`head`, then a byte every 50 ms for `seconds`: each packet in time, the whole never."""

    def answer(handler: BaseHTTPRequestHandler, _body: bytes) -> None:
        handler.wfile.write(head)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            handler.wfile.write(b"<")
            handler.wfile.flush()
            time.sleep(0.05)

    return answer


def huge_page(size: int) -> Answer:
    """A simple page of `size` bytes, made as it is sent."""
    line = b'<a href="/files/other-1.0.tar.gz#sha256=' + b"0" * 64 + b'">other-1.0.tar.gz</a><br>\n'
    block = line * (1 << 16)

    def answer(handler: BaseHTTPRequestHandler, _body: bytes) -> None:
        handler.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % size
        )
        for start in range(0, size, len(block)):
            handler.wfile.write(block[: size - start])

    return answer


def assert_published_without_reading(
    run: Run, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path], problem: str
) -> None:
    """The index was not readable (and the run said why); every file went out all the same."""
    assert run.returncode == 0, run.log
    assert "::warning title=Index not readable::" in run.stdout
    assert problem in run.stdout.split("::warning title=Index not readable::")[1]
    assert sorted(warehouse.files) == sorted(p.name for p in dists)
    assert {f["filename"]: f["status"] for f in run.files()} == {p.name: "uploaded" for p in dists}
    assert all(p.name in run.summary for p in dists)
    assert_token_revoked_and_nothing_shown(run, runtime, warehouse)


def assert_token_revoked_and_nothing_shown(
    run: Run, runtime: OidcRuntime, warehouse: Warehouse
) -> None:
    assert warehouse.minted
    assert all(m.burned for m in warehouse.minted)
    assert "Traceback" not in run.log
    assert "Internal error" not in run.log
    assert_no_secrets(run, *runtime.issued, *warehouse.minted_tokens)


LINK = b'<a href="/files/example_pkg-1.0.0.tar.gz#sha256=' + b"0" * 64 + b'">x</a>'


@pytest.mark.parametrize(
    ("content_type", "page", "problem"),
    [
        (b"text/html", b"<html><body><![note[ x ]]>" + LINK, "HTML that cannot be parsed"),
        (b"text/html", b"<a href='http://[::1/x.tar.gz'>x</a>", "a link that is not a URL"),
        (b"application/vnd.pypi.simple.v1+json", b"[" * 100_000, "JSON that does not parse"),
    ],
)
def test_a_simple_page_that_cannot_be_read_is_said_and_the_release_goes_out(
    runner: Runner,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    dists: list[Path],
    content_type: bytes,
    page: bytes,
    problem: str,
) -> None:
    warehouse.takeover["/simple/"] = raw(b"200 OK", content_type, page)
    run = runner({"repository-url": warehouse.upload_url})

    assert_published_without_reading(run, runtime, warehouse, dists, problem)
    assert run.outputs["verified"] == "false"  # nor can it see the release served


def test_a_simple_page_in_a_charset_no_codec_reads_is_read_as_utf8(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    assert runner({"repository-url": warehouse.upload_url}).returncode == 0

    def undefined_charset(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        status, _, page = warehouse.handle("GET", handler.path, {"accept": "text/html"}, body)
        raw(b"%d OK" % status, b"text/html; charset=undefined", page)(handler, body)

    warehouse.takeover["/simple/"] = undefined_charset
    warehouse.requests.clear()
    run = runner({"repository-url": warehouse.upload_url})

    assert run.returncode == 0, run.log
    assert {f["status"] for f in run.files()} == {"already-there"}
    assert warehouse.count("POST", "/legacy/") == 0
    assert "Traceback" not in run.log


def test_a_simple_page_too_large_to_read_is_given_up_at_its_limit(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    warehouse.takeover["/simple/"] = huge_page(200 << 20)
    started = time.monotonic()
    run = runner({"repository-url": warehouse.upload_url})

    assert time.monotonic() - started < 30  # 32 MiB read twice (before and after), no more
    assert_published_without_reading(
        run, runtime, warehouse, dists, "the answer is larger than 32 MiB"
    )


def test_a_simple_page_sent_a_byte_at_a_time_is_given_up_at_the_read_timeout(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path], tmp_path: Path
) -> None:
    warehouse.takeover["/simple/"] = drip(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n")
    started = time.monotonic()
    run = runner(
        {"repository-url": warehouse.upload_url},
        extra_env=short_read_timeouts(tmp_path / "short", 1.0),
    )

    assert time.monotonic() - started < 15  # two reads of two attempts of 1 s, and the rest
    assert_published_without_reading(run, runtime, warehouse, dists, "failed: timed out")


def test_an_upload_answer_the_parser_rejects_is_shown_as_it_came(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    page = b"<html><body><![note[ stored ]]><p>OK</p></body></html>"

    def stored_then_hostile(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        status, _, _ = warehouse.handle(handler.command, handler.path, handler.headers, body)
        assert status == 200
        raw(b"200 OK", b"text/html", page)(handler, body)

    warehouse.takeover["/legacy/"] = stored_then_hostile
    run = runner({"repository-url": warehouse.upload_url, "verbose": "true"})

    assert run.returncode == 0, run.log
    assert {f["status"] for f in run.files()} == {"uploaded"}
    assert sorted(warehouse.files) == sorted(p.name for p in dists)
    assert run.stdout.count("<![note[ stored ]]><p>OK</p>") == len(dists)  # as it came
    assert_token_revoked_and_nothing_shown(run, runtime, warehouse)


def test_an_upload_answer_that_never_completes_fails_in_bounded_time_file_by_file(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path], tmp_path: Path
) -> None:
    sdist = next(p for p in dists if p.name.endswith(".tar.gz"))
    wheel = next(p for p in dists if p.name.endswith(".whl"))

    def sdist_never_answered(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        if f'filename="{sdist.name}"'.encode() in body:
            drip(b"HTTP/1.1 200 OK\r\nX-Wait: ", seconds=15)(handler, body)
        else:
            serve(warehouse, handler, body)

    warehouse.takeover["/legacy/"] = sdist_never_answered
    started = time.monotonic()
    run = runner(
        {"repository-url": warehouse.upload_url},
        extra_env=short_read_timeouts(tmp_path / "short", 1.0),
    )

    assert time.monotonic() - started < 20  # 5 attempts of 1 s, the waits between, the rest
    assert run.returncode == 1, run.log
    assert {f["filename"]: f["status"] for f in run.files()} == {
        wheel.name: "uploaded",
        sdist.name: "failed",
    }
    assert f"Uploading {sdist.name} failed 5 times, the last time with: timed out" in run.summary
    assert f"Uploaded: `{wheel.name}`" in run.summary
    assert f"**Not uploaded**: `{sdist.name}`" in run.summary
    assert list(warehouse.files) == [wheel.name]
    assert_token_revoked_and_nothing_shown(run, runtime, warehouse)


@pytest.mark.parametrize("path", ["/_/oidc/mint-token", "/legacy/"])
def test_a_retry_after_in_digits_float_does_not_read_is_waited_as_any_retry(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path], path: str
) -> None:
    answers = [raw(b"503 Slow Down", b"text/plain", b"busy", b"Retry-After: \xb2\r\n")]

    def first_busy(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        if answers:
            answers.pop()(handler, body)
        else:
            serve(warehouse, handler, body)

    warehouse.takeover[path] = first_busy
    run = runner({"repository-url": warehouse.upload_url})

    assert run.returncode == 0, run.log
    assert "HTTP 503 Slow Down; retry 1 of 4 in " in run.stdout
    assert {f["status"] for f in run.files()} == {"uploaded"}
    assert sorted(warehouse.files) == sorted(p.name for p in dists)
    assert_token_revoked_and_nothing_shown(run, runtime, warehouse)
