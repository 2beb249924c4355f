"""Corporate networks: a private CA added to the default roots, and the proxy variables.

(Being written: see issue 13. `certificate_paths` reads the `ca-certificates` input.)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from publisher.errors import InputError


def certificate_paths(value: str, environ: Mapping[str, str]) -> tuple[Path, ...]:
    paths = tuple(Path(part) for part in value.split())
    for path in paths:
        if not path.is_file():
            raise InputError("ca-certificates", value, f"`{path}` is not a file.")
    return paths
