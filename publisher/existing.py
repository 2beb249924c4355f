"""What is on the index already, file by file, by name and sha256, decided before any upload.

An identical file is not sent again (whatever `skip-existing` says) and never reported as
uploaded: PyPI answers 200 to an identical re-upload, so "uploaded" would only mean "was there".
The same name with other content is a conflict: the run stops before anything is uploaded,
unless `skip-existing` asks to skip it (with a warning). An index that gives no hash is taken
at its word, by name, with a warning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from publisher.console import Console
from publisher.errors import UploadError
from publisher.simple import Listing, RemoteFile
from publisher.values import Distribution, FileResult, Status


class Presence(Enum):
    """What the index has under a distribution's file name, when it lists one: the one rule,
    for the comparison before the upload and for an upload the index refused."""

    SAME = "this file (same sha256)"
    BY_NAME = "a file of this name, without a hash"
    OTHER = "another file of this name (other sha256)"


def presence(dist: Distribution, remote: RemoteFile) -> Presence:
    if not remote.sha256:
        return Presence.BY_NAME
    return Presence.SAME if remote.sha256 == dist.digests.sha256 else Presence.OTHER


@dataclass(frozen=True)
class Comparison:
    to_upload: tuple[Distribution, ...]
    settled: Mapping[str, FileResult]  # filename -> already there, or skipped
    conflicts: tuple[str, ...]  # one sentence a file: same name, other content


def compare_with_index(
    dists: Sequence[Distribution], listing: Listing, *, skip_existing: bool, console: Console
) -> Comparison:
    to_upload: list[Distribution] = []
    settled: dict[str, FileResult] = {}
    conflicts: list[str] = []
    for dist in dists:
        remote = listing.files.get(dist.filename)
        if remote is None:
            to_upload.append(dist)
            continue
        found = presence(dist, remote)
        if found is Presence.BY_NAME:
            console.warning(
                f"The index lists `{dist.filename}` without a hash: taken to be this file, by "
                "its name, and not uploaded again.",
                title=f"{dist.filename}: no hash on the index",
            )
            settled[dist.filename] = already_there(dist, remote, "by name: the index gives no hash")
        elif found is Presence.SAME:
            settled[dist.filename] = already_there(dist, remote)
        elif skip_existing:
            settled[dist.filename] = skipped_other_build(dist, remote, console)
        else:
            conflicts.append(other_build(dist, remote))
    return Comparison(tuple(to_upload), settled, tuple(conflicts))


def conflict_error(conflicts: Sequence[str], *, dry_run: bool = False) -> UploadError:
    lead = "A real run would fail: the" if dry_run else "The"
    return UploadError(
        f"{lead} index already has files of these names with other content:\n\n"
        + "\n".join(f"- {c}" for c in conflicts)
        + "\n\nA file name can be used only once: these are other builds of the same version. "
        "Nothing was uploaded. Give the release a new version number and rebuild (or, to "
        "publish the rest and leave those as they are, set `skip-existing: true`).",
        title="Other builds are already published under these names",
    )


def already_there(dist: Distribution, remote: RemoteFile, how: str = "") -> FileResult:
    note = "identical file already on the index" + (f", {how}" if how else "")
    return FileResult(dist, Status.ALREADY_THERE, url=remote.url, note=note)


def other_build(dist: Distribution, remote: RemoteFile) -> str:
    return (
        f"`{dist.filename}`: the index has sha256 `{remote.sha256}`, this build "
        f"`{dist.digests.sha256}`"
    )


def skipped_other_build(dist: Distribution, remote: RemoteFile, console: Console) -> FileResult:
    console.warning(
        f"`{dist.filename}` is already on the index with other content (sha256 "
        f"{remote.sha256}, ours {dist.digests.sha256}): a different build was published "
        "under this name. Skipped; bump the version to publish this build.",
        title=f"{dist.filename} differs from the published file",
    )
    return FileResult(dist, Status.SKIPPED, url=remote.url, note="different content on the index")
