"""The values that pass between the stages: plain, frozen, and importing no stage.

A distribution as found and hashed, what became of each file (`FileResult`, with a `Status`), an
attestation made or reused, the decision to dry-run, and the `Report` that the entry point turns
into the outputs and the summary. The report depends on these, never on the orchestrator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packaging.metadata import RawMetadata

    from publisher.errors import PublishError


@dataclass(frozen=True)
class Digests:
    sha256: str
    blake2_256: str
    md5: str


@dataclass(frozen=True)
class Distribution:
    path: Path
    filetype: str  # "bdist_wheel" or "sdist", as the upload form names them
    pyversion: str  # "source" for an sdist, the wheel's python tag otherwise
    name: str
    version: str
    size: int
    digests: Digests
    metadata: RawMetadata = field(compare=False, repr=False)
    # PEP 740 attestations beside the file (`<filename>.<kind>.attestation`), sorted by name
    attestation_files: tuple[Path, ...] = ()

    @property
    def filename(self) -> str:
        return self.path.name


class Status(StrEnum):
    """What became of a file; the `status` of the `files` output."""

    UPLOADED = "uploaded"
    ALREADY_THERE = "already-there"  # identical on the index, not sent
    SKIPPED = "skipped"  # other content on the index, with skip-existing
    DRY_RUN = "dry-run"
    FAILED = "failed"  # not uploaded
    UNKNOWN = "unknown"  # cut off while it was sent: it may have landed


ON_INDEX = frozenset({Status.UPLOADED, Status.ALREADY_THERE, Status.SKIPPED})


@dataclass(frozen=True)
class FileResult:
    distribution: Distribution
    status: Status
    url: str = ""
    seconds: float = 0.0
    note: str = ""
    served: bool | None = None  # seen on the index after the upload; None: not checked

    @property
    def on_index(self) -> bool:
        """The index has a file of this name now: this run's, or one that was there."""
        return self.status in ON_INDEX


@dataclass(frozen=True)
class Credentials:
    """What an upload authenticates with: the step's user and password, or a minted token."""

    username: str
    password: str = field(repr=False)
    expires: float | None = None  # set for a minted token


@dataclass(frozen=True)
class Attested:
    filename: str  # the distribution's
    path: Path  # its `.publish.attestation`
    log_index: int | None  # of the transparency-log entry
    log_url: str = ""  # the entry on the public log's search page; empty for other instances
    reused: bool = False  # found beside the file, not signed by this run


@dataclass(frozen=True)
class DryRun:
    enabled: bool
    reason: str  # said in the log and the summary; empty for a real publish


@dataclass(frozen=True)
class Report:
    repository_url: str
    dry_run: DryRun
    results: tuple[FileResult, ...] = ()
    release_url: str = ""
    exchange: str = ""  # what a dry run learned of the trusted-publisher exchange
    error: PublishError | None = None
    attestations: tuple[Attested, ...] = ()  # in the order of the distributions
    attestation_note: str = ""  # why there are none, or what a dry run would sign
    index_note: str = ""  # why what the index holds could not be checked
    verified: bool | None = None  # every uploaded file served with our sha256; None: not checked
