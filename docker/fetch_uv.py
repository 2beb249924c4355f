"""Fetch the uv executable that installs the lock: once while the image is built, and by the
action's native set-up (`action/launch.py`) on Linux, macOS and Windows runners.

The one file pinned in build-requirements.txt: the wheel of that version whose platform tag fits
this machine, downloaded from the index's simple API (JSON, PEP 691, or HTML, PEP 503), its
sha256 checked against the lock's hashes before anything is unpacked, and only its `uv`
executable written. `pip install` of the same wheel took 1.2 s, a third of the whole build:
starting pip, then unpacking both 38 MB executables into site-packages, only to uninstall them
at the end of the step. This takes 0.45 s.

The index is UV_DEFAULT_INDEX (or UV_INDEX_URL), which the uv install that follows reads too,
else PyPI. Requests go through urllib: the *_proxy variables and the system's CA store, as
UV_SYSTEM_CERTS tells uv (plus any CA files the caller names), with a few retries for the errors
pip would retry. Runs on Python 3.9 and newer: the native set-up runs it on the runner's Python.

Usage: python fetch_uv.py LOCK DEST
"""

from __future__ import annotations

import base64
import hashlib
import html
import http.client
import io
import json
import os
import platform
import re
import ssl
import stat
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

DEFAULT_INDEX = "https://pypi.org/simple/"
ATTEMPTS = 4
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
WINDOWS_TAGS = {"amd64": "win_amd64", "x86_64": "win_amd64", "arm64": "win_arm64", "x86": "win32"}


def pinned(lock: str) -> tuple[str, set[str]]:
    """uv's version in the lock, and the sha256 digests it allows."""
    match = re.search(
        r"^uv==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})+)", lock.replace("\\\n", " "), re.M
    )
    if not match:
        sys.exit("the lock has no `uv==VERSION --hash=sha256:...` pin")
    return match[1], set(re.findall(r"sha256:([0-9a-f]{64})", match[2]))


def needs(tag: str, machine: str) -> tuple[str, tuple[int, int]] | None:
    """The C library, and its version, that a wheel's platform tag needs on this machine; None
    for a tag of another machine or system."""
    if not tag.endswith(f"_{machine}"):
        return None
    prefix = tag.removesuffix(f"_{machine}")
    if prefix in LEGACY_MANYLINUX:
        return "glibc", LEGACY_MANYLINUX[prefix]
    match = re.fullmatch(r"(manylinux|musllinux)_(\d+)_(\d+)", prefix)
    if not match:
        return None
    return "glibc" if match[1] == "manylinux" else "musl", (int(match[2]), int(match[3]))


def fit(
    filename: str,
    machine: str,
    libc: tuple[str, str],
    system: str = "Linux",
    release: tuple[int, int] = (0, 0),
) -> tuple[int, int] | None:
    """How closely a wheel fits this machine: the highest C library (Linux) or system (macOS)
    version that one of its platform tags needs (pip prefers the most specific tag), or None
    when none fits. `libc` is `platform.libc_ver()`: glibc reports its version; musl reports
    nothing, and any musllinux tag is taken to fit. `release`: macOS's version."""
    tags = filename[: -len(".whl")].split("-")[-1].split(".")
    if system == "Windows":
        return (0, 0) if WINDOWS_TAGS.get(machine.lower()) in tags else None
    if system == "Darwin":
        return _fit_macos(tags, machine, release)
    family = libc[0] or "musl"
    have = tuple(int(part) for part in libc[1].split(".")[:2]) if libc[1] else (0, 0)
    best: tuple[int, int] | None = None
    for tag in tags:
        needed = needs(tag, machine)
        if needed is None or needed[0] != family or (family == "glibc" and needed[1] > have):
            continue
        if best is None or needed[1] > best:
            best = needed[1]
    return best


def _fit_macos(tags: list[str], machine: str, release: tuple[int, int]) -> tuple[int, int] | None:
    best: tuple[int, int] | None = None
    for tag in tags:
        match = re.fullmatch(r"macosx_(\d+)_(\d+)_(\w+)", tag)
        if not match or match[3] not in (machine, "universal2"):
            continue
        needed = (int(match[1]), int(match[2]))
        if needed <= release and (best is None or needed > best):
            best = needed
    return best


def get(url: str, accept: str, context: ssl.SSLContext | None = None) -> tuple[bytes, str]:
    """The body and content type at `url`, retrying connection errors, 429 and 5xx. A user name
    and password in the URL (a private mirror's) go in an Authorization header, never in a
    message."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http"):  # urllib would open file: too
        sys.exit(f"{shown(url)}: not an http(s) URL")
    headers = {"Accept": accept, "User-Agent": "fetch_uv"}
    if parts.username is not None:
        credentials = f"{urllib.parse.unquote(parts.username)}:"
        credentials += urllib.parse.unquote(parts.password or "")
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
        url = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    request = urllib.request.Request(url, headers=headers)  # noqa: S310
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with urllib.request.urlopen(request, timeout=60, context=context) as response:  # noqa: S310
                return response.read(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            if attempt == ATTEMPTS or (error.code != 429 and error.code < 500):
                sys.exit(f"{shown(url)}: HTTP {error.code} {error.reason}")
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            if attempt == ATTEMPTS:
                sys.exit(f"{shown(url)}: {error}")
        time.sleep(0.25 * 2**attempt)
    raise AssertionError("unreachable")


def shown(url: str) -> str:
    """`url` fit for a message: no user name or password."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def files(index: str, context: ssl.SSLContext | None = None) -> dict[str, str]:
    """The files the index's simple API lists for uv: filename to absolute URL."""
    page = urllib.parse.urljoin(index.rstrip("/") + "/", "uv/")
    body, content_type = get(
        page, "application/vnd.pypi.simple.v1+json, text/html;q=0.1, */*;q=0.01", context
    )
    if "json" in content_type:
        links = [(f["filename"], f["url"]) for f in json.loads(body)["files"]]
    else:
        hrefs = re.findall(r"""href\s*=\s*["']([^"']+)["']""", body.decode("utf-8", "replace"))
        links = [(_filename(html.unescape(href)), html.unescape(href)) for href in hrefs]
    return {name: urllib.parse.urljoin(page, url) for name, url in links}


def _filename(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])


def fetch(lock: str, destination: Path, cafiles: tuple[Path, ...] = ()) -> None:
    """Write the `uv` executable (`uv.exe` on Windows) of the lock's pin that fits this machine.
    `cafiles`: certificates to trust besides the system's (a TLS-inspecting proxy's)."""
    version, allowed = pinned(lock)
    index = os.environ.get("UV_DEFAULT_INDEX") or os.environ.get("UV_INDEX_URL") or DEFAULT_INDEX
    context = ssl.create_default_context()
    for cafile in cafiles:
        try:
            context.load_verify_locations(cafile=str(cafile))
        except (ssl.SSLError, OSError, UnicodeDecodeError) as error:
            sys.exit(f"{cafile}: not a PEM file of certificates ({error})")
    system, machine, libc = platform.system(), platform.machine(), platform.libc_ver()
    major, minor = ((platform.mac_ver()[0] or "0") + ".0").split(".")[:2]
    release = (int(major), int(minor))
    listed = files(index, context)
    fits = {}
    for name in listed:
        if name.startswith(f"uv-{version}-") and name.endswith(".whl"):
            rank = fit(name, machine, libc, system, release)
            if rank is not None:
                fits[name] = rank
    if not fits:
        library = " ".join(libc) if libc[0] else "musl" if system == "Linux" else system
        sys.exit(f"{shown(index)}: no uv {version} wheel for {machine} with {library}")
    name = max(fits, key=fits.__getitem__)
    body, _ = get(listed[name], "*/*", context)
    digest = hashlib.sha256(body).hexdigest()
    if digest not in allowed:
        sys.exit(f"{name}: sha256 {digest} is not one of the lock's hashes for uv=={version}")
    executable = "uv.exe" if system == "Windows" else "uv"
    with zipfile.ZipFile(io.BytesIO(body)) as wheel:
        data = wheel.read(f"uv-{version}.data/scripts/{executable}")
    destination.write_bytes(data)
    destination.chmod(destination.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def main(lock: Path, destination: Path) -> None:
    fetch(lock.read_text(), destination)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
