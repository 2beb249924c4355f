"""Images built here as the runner builds an action's: buildah, no layer cache, no Docker engine.

`tests/container/setup.sh` installs buildah and podman, makes them work without a Docker engine
or Docker Hub, and makes a local stand-in for the Dockerfile's pinned base image (root only).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import ROOT


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
