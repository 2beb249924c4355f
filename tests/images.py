"""Images built here as the runner builds an action's: buildah, no layer cache, no Docker engine.

`tests/container/setup.sh` installs buildah and podman, makes them work without a Docker engine
or Docker Hub, and makes a local stand-in for the Dockerfile's pinned base image (root only).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

# In CI the container tests must run: not being able to is a failure, not a skip.
REQUIRED = os.environ.get("PUBLISHER_CONTAINER_TESTS") == "required"


def unavailable(reason: str) -> None:
    """Skip the container test, or fail it where it is required."""
    if REQUIRED:
        pytest.fail(f"container test required but cannot run: {reason}")
    pytest.skip(reason)


def build_image(context: Path, tag: str) -> None:
    """Build `context`'s Dockerfile as `tag`, as the runner builds an action's image, on the
    local stand-in for its pinned base (set up first); unavailable without root or podman."""
    if os.geteuid() != 0:
        unavailable("needs root for podman and buildah")
    if shutil.which("apt-get") is None and shutil.which("podman") is None:
        unavailable("no podman and no apt-get to install it")
    setup = set_up()
    if setup.returncode != 0:
        unavailable(f"setup failed:\n{setup.stdout}\n{setup.stderr}")
    started = time.monotonic()
    # setup.sh prints the local stand-in for the pinned base image
    command = build_command(context, tag, setup.stdout.split()[-1])
    build = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    assert build.returncode == 0, build.stdout + build.stderr
    print(f"image built in {time.monotonic() - started:.1f} s")


def set_up() -> subprocess.CompletedProcess[str]:
    """Run the set-up (idempotent); its last word of output is the base image's name."""
    return subprocess.run(
        ["bash", str(ROOT / "tests" / "container" / "setup.sh")],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )


def build_command(context: Path, tag: str, base: str) -> list[str]:
    """`buildah build` of `context` on `base` (its BASE_IMAGE argument), packages downloaded
    from the index at every build, as on a runner."""
    return [
        "buildah",
        "build",
        "--isolation",
        "chroot",
        "--network",
        "host",
        "--pull=never",
        "--layers=false",
        "--build-arg",
        f"BASE_IMAGE={base}",
        "-q",
        "-t",
        tag,
        str(context),
    ]
