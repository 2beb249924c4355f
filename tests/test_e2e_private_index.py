"""Private indexes: a real pypiserver (409 for existing files), and the same cases on the
Warehouse stand-in (400 "File already exists"). skip-existing works on both."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from passlib.apache import HtpasswdFile  # type: ignore[import-untyped]

from tests.conftest import (
    Run,
    Runner,
    assert_no_secrets,
    pip_install,
    rebuild_with_other_content,
)
from tests.servers import Warehouse, free_port, wait_until_up

USER, PASSWORD = "alice", "correct-horse-battery-staple"


@dataclass
class PyPIServer:
    url: str
    packages: Path

    def files(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(self.packages.iterdir())}


@contextmanager
def running_pypiserver(tmp_path: Path, name: str) -> Iterator[PyPIServer]:
    """A real pypiserver on 127.0.0.1, with `alice` allowed to upload; its log in `name.log`."""
    packages = tmp_path / f"{name}-packages"
    packages.mkdir()
    htpasswd = HtpasswdFile(str(tmp_path / f"{name}.htpasswd"), new=True)
    htpasswd.set_password(USER, PASSWORD)
    htpasswd.save()
    port = free_port()
    log_path = tmp_path / f"{name}.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pypiserver",
            "run",
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-P",
            str(tmp_path / f"{name}.htpasswd"),
            "-a",
            "update",
            "--hash-algo",
            "sha256",
            str(packages),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/simple/", process, log_path, timeout=30)
        yield PyPIServer(f"{url}/", packages)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def pypiserver(tmp_path: Path) -> Iterator[PyPIServer]:
    with running_pypiserver(tmp_path, "pypiserver") as server:
        yield server


def inputs(server: PyPIServer, **extra: str) -> dict[str, str]:
    return {"repository-url": server.url, "user": USER, "password": PASSWORD, **extra}


def test_upload_with_user_and_password(
    runner: Runner, pypiserver: PyPIServer, dists: list[Path], tmp_path: Path
) -> None:
    run = runner(inputs(pypiserver), id_token=False)

    assert run.returncode == 0, run.log
    assert pypiserver.files() == {p.name: p.read_bytes() for p in dists}
    assert {f["status"] for f in run.files()} == {"uploaded"}
    assert_no_secrets(run, PASSWORD)

    target = tmp_path / "installed"
    pip_install(f"{pypiserver.url}simple/", target, "example-pkg==1.0.0")
    assert (target / "example_pkg" / "__init__.py").read_text() == "VALUE = 42\n"


@pytest.mark.parametrize("verbose", ["false", "true"])
def test_wrong_password_fails_clearly_and_uploads_nothing(
    runner: Runner, pypiserver: PyPIServer, dists: list[Path], verbose: str
) -> None:
    run = runner(
        {**inputs(pypiserver), "password": "wrong-password-456", "verbose": verbose}, id_token=False
    )

    assert run.returncode == 1
    assert "::error title=Credentials refused (HTTP 403)::" in run.stdout
    assert "check the `user` and `password` inputs" in run.stdout
    assert pypiserver.files() == {}
    assert_no_secrets(run, "wrong-password-456")


def test_a_rerun_finds_its_files_already_there_and_sends_nothing(
    runner: Runner, pypiserver: PyPIServer, dists: list[Path]
) -> None:
    assert runner(inputs(pypiserver), id_token=False).returncode == 0
    run = runner(inputs(pypiserver), id_token=False)

    assert run.returncode == 0, run.log
    assert {f["status"] for f in run.files()} == {"already-there"}
    assert "Uploading" not in run.stdout  # nothing sent: pypiserver would answer 409
    assert "already there example_pkg-1.0.0-py3-none-any.whl" in run.stdout
    assert "☑️ already-there (identical file already on the index)" in run.summary


def test_rerun_with_skip_existing_after_a_partial_upload(
    runner: Runner, pypiserver: PyPIServer, dists: list[Path]
) -> None:
    wheel, sdist = sorted(dists, key=lambda p: p.name)
    sdist.rename(sdist.with_suffix(".held"))
    assert runner(inputs(pypiserver), id_token=False).returncode == 0  # the wheel only
    sdist.with_suffix(".held").rename(sdist)

    run = runner(inputs(pypiserver, **{"skip-existing": "true"}), id_token=False)

    assert run.returncode == 0, run.log
    assert {f["filename"]: f["status"] for f in run.files()} == {
        wheel.name: "already-there",
        sdist.name: "uploaded",
    }
    assert pypiserver.files() == {p.name: p.read_bytes() for p in dists}


def test_skip_existing_warns_when_the_published_file_differs(
    runner: Runner, pypiserver: PyPIServer, dists: list[Path]
) -> None:
    assert runner(inputs(pypiserver), id_token=False).returncode == 0
    rebuilt = rebuild_with_other_content(dists)
    run = runner(inputs(pypiserver, **{"skip-existing": "true"}), id_token=False)

    assert run.returncode == 0, run.log
    assert run.stdout.count("::warning title=") == 2
    assert "differs from the published file" in run.stdout
    ours = hashlib.sha256(rebuilt[1].read_bytes()).hexdigest()
    assert f"ours {ours}" in run.stdout
    assert {f["status"] for f in run.files()} == {"skipped"}


# The same cases on the Warehouse stand-in, which answers 400 "File already exists".


def test_warehouse_rerun_with_skip_existing_after_a_partial_failure(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    warehouse.fail_next["/legacy/"] = ["pass", 400]
    assert runner({"repository-url": warehouse.upload_url}).returncode == 1

    run = runner({"repository-url": warehouse.upload_url, "skip-existing": "true"})

    assert run.returncode == 0, run.log
    statuses = {f["filename"]: f["status"] for f in run.files()}
    assert statuses == {
        "example_pkg-1.0.0-py3-none-any.whl": "already-there",
        "example_pkg-1.0.0.tar.gz": "uploaded",
    }
    assert len(warehouse.files) == 2


def test_warehouse_400_already_exists_is_skipped_when_the_lookup_fails(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    assert runner({"repository-url": warehouse.upload_url}).returncode == 0
    rebuild_with_other_content(dists)
    warehouse.fail_next["/simple/"] = [503, 503]  # the look-up first is lost: the upload tells
    run = runner({"repository-url": warehouse.upload_url, "skip-existing": "true"})

    assert run.returncode == 0, run.log
    assert "Could not check what the index holds" in run.stdout
    assert warehouse.count("POST", "/legacy/") == 4  # two the first time, two answered 400 now
    assert {f["status"] for f in run.files()} == {"skipped"}
    assert "differs from the published file" in run.stdout


# pypiserver with its fallback: the simple page of a project it does not hold REDIRECTS to PyPI.


@dataclass
class FallingBack(PyPIServer):
    fallback_host: str  # where the simple page of a project not on this index sends the client


@pytest.fixture
def pypiserver_with_fallback(tmp_path: Path) -> Iterator[FallingBack]:
    """pypiserver started as `pypiserver` above, without `--disable-fallback`: `GET
    /simple/<project>/` of a project it does not hold answers `303 See Other` with `Location:`
    PyPI's page of that name (`/+simple/<project>/` answers 404). The redirect is checked here,
    so that the tests below cannot pass for want of it."""
    with running_pypiserver(tmp_path, "pypiserver-fallback") as server:
        answer = requests.get(f"{server.url}simple/example-pkg/", allow_redirects=False, timeout=5)
        fallback_host = urlsplit(answer.headers.get("location", "")).hostname or ""
        assert answer.status_code == 303, answer.status_code
        assert fallback_host not in ("", "127.0.0.1"), answer.headers
        yield FallingBack(server.url, server.packages, fallback_host)


class ProxyTrap:
    """An HTTP proxy on 127.0.0.1 that forwards nothing: it notes what it is asked for and
    refuses it. Named in the proxy variables, with the loopback exempted, it catches every
    request the action would make to any host but 127.0.0.1 (this machine can reach PyPI)."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        trap = self

        class Handler(BaseHTTPRequestHandler):
            def refuse(self) -> None:
                trap.asked.append(f"{self.command} {self.path}")
                self.send_error(403, "nothing leaves 127.0.0.1 in this test")

            do_CONNECT = do_GET = do_HEAD = do_POST = refuse

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.env = {
            name: value
            for proxy in ("https_proxy", "http_proxy")
            for name, value in ((proxy, url), (proxy.upper(), url))
        } | {"no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy_trap() -> Iterator[ProxyTrap]:
    trap = ProxyTrap()
    yield trap
    trap.close()


def assert_clean(run: Run, server: FallingBack, trap: ProxyTrap) -> None:
    """No warning, no error, no redirect followed or complained of, nothing but 127.0.0.1."""
    assert "::warning" not in run.stdout, run.log
    assert "::error" not in run.stdout, run.log
    said = (run.log + run.summary).lower()
    assert "redirect" not in said, run.log
    assert "could not" not in said, run.log  # the index was read, not given up on
    assert server.fallback_host not in run.log + run.summary, run.log
    assert trap.asked == []


def test_with_fallback_a_dry_run_before_the_first_publish_finds_nothing_on_the_index(
    runner: Runner,
    pypiserver_with_fallback: FallingBack,
    proxy_trap: ProxyTrap,
    dists: list[Path],
) -> None:
    run = runner(
        inputs(pypiserver_with_fallback, **{"dry-run": "true"}),
        id_token=False,
        extra_env=proxy_trap.env,
    )

    assert run.returncode == 0, run.log
    assert {f["status"] for f in run.files()} == {"dry-run"}
    for path in dists:
        assert f"would upload {path.name}\n" in run.stdout, run.log
    assert "already on the index" not in run.log + run.summary
    assert_clean(run, pypiserver_with_fallback, proxy_trap)
    assert pypiserver_with_fallback.files() == {}


def test_with_fallback_a_new_project_is_published_and_then_found_on_this_index(
    runner: Runner,
    pypiserver_with_fallback: FallingBack,
    proxy_trap: ProxyTrap,
    dists: list[Path],
) -> None:
    run = runner(inputs(pypiserver_with_fallback), id_token=False, extra_env=proxy_trap.env)

    assert run.returncode == 0, run.log
    assert {f["status"] for f in run.files()} == {"uploaded"}
    assert pypiserver_with_fallback.files() == {p.name: p.read_bytes() for p in dists}
    assert run.outputs["verified"] == "true", run.log
    assert_clean(run, pypiserver_with_fallback, proxy_trap)

    again = runner(inputs(pypiserver_with_fallback), id_token=False, extra_env=proxy_trap.env)

    assert again.returncode == 0, again.log
    assert {f["status"] for f in again.files()} == {"already-there"}
    assert_clean(again, pypiserver_with_fallback, proxy_trap)
