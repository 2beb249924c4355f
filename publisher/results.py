"""What became of each file: the value every stage after the upload reads."""

from __future__ import annotations

from dataclasses import dataclass

from publisher.distributions import Distribution


@dataclass(frozen=True)
class FileResult:
    distribution: Distribution
    # "uploaded", "already-there" (identical on the index, not sent), "skipped" (other content,
    # with skip-existing), "dry-run", "failed", or "unknown" (cut off by a cancellation)
    status: str
    url: str = ""
    seconds: float = 0.0
    note: str = ""
    served: bool | None = None  # seen on the index after the upload; None: not checked

    @property
    def on_index(self) -> bool:
        """The index has a file of this name now: this run's, or one that was there."""
        return self.status in ("uploaded", "already-there", "skipped")
