"""docker/fetch_uv.py: the image build's uv, fetched from an index on 127.0.0.1 as from PyPI."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, load_script
from tests.servers import StandIn

SCRIPT = ROOT / "docker" / "fetch_uv.py"
VERSION = "0.13.9"


fetch_uv = load_script(SCRIPT)


@pytest.mark.parametrize(
    ("filename", "machine", "libc", "expected"),
    [
        ("manylinux_2_17_x86_64.manylinux2014_x86_64", "x86_64", ("glibc", "2.36"), (2, 17)),
        ("musllinux_1_1_x86_64", "x86_64", ("glibc", "2.36"), None),
        ("musllinux_1_1_x86_64", "x86_64", ("", ""), (1, 1)),
        ("manylinux_2_17_x86_64.manylinux2014_x86_64", "x86_64", ("", ""), None),
        ("manylinux_2_28_aarch64", "aarch64", ("glibc", "2.41"), (2, 28)),
        ("manylinux_2_28_aarch64", "aarch64", ("glibc", "2.17"), None),
        ("manylinux_2_28_aarch64.manylinux_2_17_aarch64", "aarch64", ("glibc", "2.41"), (2, 28)),
        (
            "manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64",
            "aarch64",
            ("glibc", "2.17"),
            (2, 17),
        ),
        ("manylinux_2_17_x86_64.manylinux2014_x86_64", "aarch64", ("glibc", "2.41"), None),
        ("manylinux_2_17_i686.manylinux2014_i686", "x86_64", ("glibc", "2.41"), None),
        ("macosx_11_0_arm64", "arm64", ("", ""), None),
        ("win_amd64", "x86_64", ("", ""), None),
    ],
)
def test_fit(
    filename: str, machine: str, libc: tuple[str, str], expected: tuple[int, int] | None
) -> None:
    assert fetch_uv.fit(f"uv-{VERSION}-py3-none-{filename}.whl", machine, libc) == expected


@pytest.mark.parametrize(
    ("filename", "system", "machine", "release", "expected"),
    [
        ("macosx_11_0_arm64", "Darwin", "arm64", (14, 5), (11, 0)),
        ("macosx_11_0_arm64", "Darwin", "arm64", (10, 15), None),
        ("macosx_11_0_arm64", "Darwin", "x86_64", (14, 5), None),
        ("macosx_10_12_x86_64", "Darwin", "x86_64", (13, 0), (10, 12)),
        ("macosx_10_12_universal2", "Darwin", "arm64", (14, 0), (10, 12)),
        ("win_amd64", "Windows", "AMD64", (0, 0), (0, 0)),
        ("win_arm64", "Windows", "ARM64", (0, 0), (0, 0)),
        ("win_amd64", "Windows", "ARM64", (0, 0), None),
        ("win32", "Windows", "x86", (0, 0), (0, 0)),
        ("manylinux_2_17_x86_64", "Windows", "AMD64", (0, 0), None),
    ],
)
def test_fit_on_macos_and_windows(
    filename: str,
    system: str,
    machine: str,
    release: tuple[int, int],
    expected: tuple[int, int] | None,
) -> None:
    name = f"uv-{VERSION}-py3-none-{filename}.whl"

    assert fetch_uv.fit(name, machine, ("", ""), system, release) == expected


def test_pinned_reads_the_version_and_every_hash_of_the_real_lock() -> None:
    version, hashes = fetch_uv.pinned((ROOT / "docker" / "build-requirements.txt").read_text())

    assert version.count(".") == 2
    assert len(hashes) >= 10  # a wheel per platform, and the sdist
    assert all(len(h) == 64 for h in hashes)


# --- the script, against an index on 127.0.0.1 ------------------------------------------------


def wheel(tags: str, executable: bytes) -> tuple[str, bytes]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"uv-{VERSION}.data/scripts/uv", executable)
        archive.writestr(f"uv-{VERSION}.data/scripts/uvx", b"uvx " + executable)
        archive.writestr("uv/__init__.py", b"")
    return f"uv-{VERSION}-py3-none-{tags}.whl", buffer.getvalue()


class Index(StandIn):
    """A simple API that lists uv's files, as JSON (PEP 691) or HTML (PEP 503)."""

    def __init__(self, files: dict[str, bytes], *, html: bool = False, fail: int = 0) -> None:
        super().__init__()
        self.files = files
        self.html = html
        self.fail = fail  # answer this many requests with a 503 first
        self.authorization: list[str] = []  # each request's Authorization header

    def handle(self, method: str, path: str, headers: Any, body: bytes):  # type: ignore[no-untyped-def]
        self.authorization.append(headers.get("authorization", ""))
        if self.fail:
            self.fail -= 1
            return 503, {}, b"try again"
        if path == "/simple/uv/":
            listed = [
                (name, f"../../files/{name}#sha256={hashlib.sha256(data).hexdigest()}")
                for name, data in self.files.items()
            ]
            if self.html:
                links = "".join(f'<a href="{url}">{name}</a>\n' for name, url in listed)
                return 200, {"content-type": "text/html"}, links.encode()
            page = {"files": [{"filename": name, "url": url} for name, url in listed]}
            return (
                200,
                {"content-type": "application/vnd.pypi.simple.v1+json"},
                json.dumps(page).encode(),
            )
        name = path.removeprefix("/files/")
        if name in self.files:
            return 200, {"content-type": "application/octet-stream"}, self.files[name]
        return 404, {}, b"not found"


def lock(*wheels: bytes) -> str:
    hashes = "".join(f" \\\n    --hash=sha256:{hashlib.sha256(w).hexdigest()}" for w in wheels)
    return f"# compiled\nuv=={VERSION}{hashes}\n    # via -r build-requirements.in\n"


def fetch(index: Index, lock_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    (tmp_path / "build-requirements.txt").write_text(lock_text)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}
    environ["UV_DEFAULT_INDEX"] = f"{index.url}/simple"
    return subprocess.run(
        [sys.executable, str(SCRIPT), "build-requirements.txt", "uv"],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def release() -> dict[str, tuple[str, bytes]]:
    machine = platform.machine()
    return {
        "old": wheel(f"manylinux_2_17_{machine}.manylinux2014_{machine}", b"for old glibc"),
        "here": wheel(f"manylinux_2_28_{machine}", b"the executable"),
        "musl": wheel(f"musllinux_1_1_{machine}", b"musl's executable"),
        "windows": wheel("win_amd64", b"windows' executable"),
    }


Serve = Callable[..., Index]
needs_glibc_2_28 = pytest.mark.skipif(
    fetch_uv.fit("uv-0-py3-none-manylinux_2_28_x.whl", "x", platform.libc_ver()) is None,
    reason="the release's wheel for this machine is manylinux_2_28",
)


@pytest.fixture
def serve(release: dict[str, tuple[str, bytes]]) -> Iterator[Serve]:
    """Start an index that holds `release` (Index's keywords: html, fail)."""
    started: list[Index] = []

    def start(**kwargs: Any) -> Index:
        started.append(Index(dict(release.values()), **kwargs))
        return started[-1]

    yield start
    for index in started:
        index.close()


@needs_glibc_2_28
@pytest.mark.parametrize("html", [False, True], ids=["json", "html"])
def test_writes_only_the_executable_of_the_wheel_that_fits(
    serve: Serve, release: dict[str, tuple[str, bytes]], tmp_path: Path, html: bool
) -> None:
    index = serve(html=html)
    completed = fetch(index, lock(*(data for _, data in release.values())), tmp_path)

    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "uv").read_bytes() == b"the executable"
    assert os.access(tmp_path / "uv", os.X_OK)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build-requirements.txt", "uv"]
    assert index.requests == [("GET", "/simple/uv/"), ("GET", f"/files/{release['here'][0]}")]


@needs_glibc_2_28
def test_a_file_the_lock_does_not_hash_is_refused_and_nothing_is_written(
    serve: Serve, release: dict[str, tuple[str, bytes]], tmp_path: Path
) -> None:
    completed = fetch(serve(), lock(release["musl"][1], release["windows"][1]), tmp_path)

    assert completed.returncode == 1
    digest = hashlib.sha256(release["here"][1]).hexdigest()
    assert f"{release['here'][0]}: sha256 {digest} is not one of the lock's hashes" in (
        completed.stderr
    )
    assert not (tmp_path / "uv").exists()


@needs_glibc_2_28
def test_errors_of_the_index_are_retried(
    serve: Serve, release: dict[str, tuple[str, bytes]], tmp_path: Path
) -> None:
    index = serve(fail=2)
    completed = fetch(index, lock(release["here"][1]), tmp_path)

    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "uv").read_bytes() == b"the executable"
    assert index.count("GET", "/simple/uv/") == 3


def test_no_wheel_for_this_machine_is_an_error_that_says_so(tmp_path: Path) -> None:
    name, data = wheel("win_amd64", b"windows' executable")
    index = Index({name: data})
    try:
        completed = fetch(index, lock(data), tmp_path)
    finally:
        index.close()

    assert completed.returncode == 1
    assert f"no uv {VERSION} wheel for {platform.machine()}" in completed.stderr
    assert not (tmp_path / "uv").exists()


def test_credentials_in_the_index_url_go_in_a_header_and_never_in_a_message(
    tmp_path: Path,
) -> None:
    """A private mirror's URL with a user name and token: urllib would take `user:token@host`
    for the host name, and the error would print the token."""
    index = Index({}, fail=99)
    try:
        url = index.url.replace("://", "://ci-user:s3cret-token@") + "/simple"
        with pytest.raises(SystemExit) as failed:
            fetch_uv.get(url + "/uv/", "*/*")
    finally:
        index.close()

    assert "s3cret-token" not in str(failed.value)
    assert str(failed.value).startswith(f"{index.url}/simple/uv/: HTTP 503")
    expected = "Basic " + base64.b64encode(b"ci-user:s3cret-token").decode()
    assert index.authorization == [expected] * fetch_uv.ATTEMPTS
