"""After the upload: wait until the index serves every file uploaded, with our sha256.

Indexes publish behind caches and replicas (PyPI's CDN, Artifactory's remotes): a job that
installs or announces the release right after the upload may find nothing. This polls the same
simple page the run read before, past any cache (`Cache-Control: no-cache`), at growing
intervals, and says each file as it appears. A file served with other bytes is an error; a file
still missing at the deadline is a warning that names it (the upload itself succeeded). On PyPI
and TestPyPI, a file uploaded with attestations must also be served with its provenance.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from publisher.console import Console
from publisher.errors import PublishError, UploadError
from publisher.index import Index, web_url
from publisher.shared import Shared
from publisher.simple import Listing, read_index
from publisher.values import FileResult, Status

FIRST_INTERVAL = 0.5  # seconds; doubled after each look, up to
MAX_INTERVAL = 15.0


@dataclass(frozen=True)
class Served:
    results: tuple[FileResult, ...]  # each uploaded file with `served` set
    verified: bool  # every uploaded file is served, with our sha256 (and provenance)
    error: PublishError | None = None


def await_release(
    shared: Shared,
    index: Index,
    results: tuple[FileResult, ...],
    *,
    timeout: float,
    provenance: bool | None = None,
) -> Served:
    """`provenance`: an attested file counts as served once listed with its provenance (by
    default on PyPI and TestPyPI, the indexes that keep attestations)."""
    waiting = {r.distribution.filename: r for r in results if r.status == Status.UPLOADED}
    if not waiting:
        return Served(results, True)
    if provenance is None:
        provenance = bool(web_url(index.repository_url))
    served: set[str] = set()
    deadline = time.monotonic() + timeout
    interval = FIRST_INTERVAL
    console = shared.console
    with console.group(f"Waiting until {index.name} serves the {len(waiting)} files uploaded"):
        while True:
            listing = read_index(
                shared, index, {r.distribution.name for r in waiting.values()}, fresh=True
            )
            if not listing.readable:
                console.warning(
                    f"Cannot see whether the release is served: {listing.problem}.",
                    title="Release not verified",
                )
                return Served(_mark(results, served), False)
            replaced = _look(listing, waiting, served, provenance, shared)
            if replaced is not None:
                return Served(_mark(results, served), False, _other_content(index, *replaced))
            if served == waiting.keys():
                console.line(f"{index.name} serves every file of the release.", style="green")
                return Served(_mark(results, served), True)
            if time.monotonic() + interval > deadline:
                _not_yet(index, sorted(waiting.keys() - served), timeout, console)
                return Served(_mark(results, served), False)
            time.sleep(interval)
            interval = min(interval * 2, MAX_INTERVAL)


def _look(
    listing: Listing,
    waiting: Mapping[str, FileResult],
    served: set[str],
    provenance: bool,
    shared: Shared,
) -> tuple[FileResult, str] | None:
    """Add to `served` each file the listing shows with our sha256 (and its provenance where
    that is awaited); a file served with other bytes, and their sha256."""
    for filename in sorted(waiting.keys() - served):
        remote = listing.files.get(filename)
        dist = waiting[filename].distribution
        if remote is None or (provenance and dist.attestation_files and not remote.provenance):
            continue
        if remote.sha256 and remote.sha256 != dist.digests.sha256:
            return waiting[filename], remote.sha256
        served.add(filename)
        shared.log(f"served {filename}")
    return None


def _other_content(index: Index, result: FileResult, sha256: str) -> PublishError:
    dist = result.distribution
    return UploadError(
        f"{index.name} serves `{dist.filename}` with sha256 `{sha256}`, not the "
        f"`{dist.digests.sha256}` just uploaded: something else replaced it (a volatile index, "
        "a proxy or a mirror). Check the index before anyone installs this release.",
        title=f"{dist.filename} is served with other content",
    )


def _not_yet(index: Index, missing: list[str], timeout: float, console: Console) -> None:
    console.warning(
        f"After {timeout:.0f} s, {index.name} does not serve "
        + ", ".join(f"`{m}`" for m in missing)
        + " yet. The upload succeeded; the index may still be processing it. "
        "Raise `await-timeout` if your index is often this slow.",
        title="Release not served yet",
    )


def _mark(results: tuple[FileResult, ...], served: set[str]) -> tuple[FileResult, ...]:
    return tuple(
        replace(r, served=r.distribution.filename in served) if r.status == Status.UPLOADED else r
        for r in results
    )
