"""One publish job: what its stages share, and how far it got.

`Job` is what `publish` is given (the settings, the run, the log, the cancellation, the signing
worker, where trusted publishing comes from) and what it keeps as it goes (the HTTP session, the
dry run decided, the progress). `Progress` records how far the run got, so that every ending
after the first upload request (an error, a cancelled job, a bug) can still report each file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import requests

from publisher.cancel import Cancellation
from publisher.console import Console
from publisher.context import RunContext
from publisher.errors import PublishError
from publisher.http import RetryPolicy
from publisher.settings import Settings
from publisher.shared import Shared
from publisher.trusted_publishing import TrustedPublishing
from publisher.values import Attested, Distribution, DryRun, FileResult, Report, Status
from publisher.worker import Worker


def open_trusted_publishing(job: Job) -> TrustedPublishing:
    """This run's trusted publishing at its index (nothing is asked for until it is used)."""
    return TrustedPublishing(job.shared, job.settings.repository_url, job.context.oidc_request)


@dataclass
class Job:
    """What the stages of one publish share: the user's settings, the run, the log, the job's
    cancellation, the signing worker (if one was started), where trusted publishing comes from
    (a fake in the in-process tests), the HTTP session and the retry policy, and how far the run
    got."""

    settings: Settings
    context: RunContext
    console: Console
    cancellation: Cancellation = field(default_factory=Cancellation)
    worker: Worker | None = None
    trusted_publishing: Callable[[Job], TrustedPublishing] = open_trusted_publishing
    dry_run: DryRun = field(default_factory=lambda: DryRun(False, ""))
    progress: Progress = field(default_factory=lambda: Progress())
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def policy(self) -> RetryPolicy:
        return RetryPolicy(delay=self.settings.retry_delay)

    @property
    def shared(self) -> Shared:
        """What every stage shares, as one value."""
        return Shared(self.console, self.policy, self.session, self.cancellation)


@dataclass
class Progress:
    """How far the run got, for every ending: from the first upload request on, an error, a
    cancelled job or a bug still says what became of each file."""

    dists: tuple[Distribution, ...] = ()
    settled: Mapping[str, FileResult] = field(default_factory=dict)  # on the index already
    sending: tuple[Distribution, ...] = ()  # set just before the first upload request
    results: tuple[FileResult, ...] = ()  # every file's, once the upload stage has ended
    attested: tuple[Attested, ...] = ()  # the attestations that went up
    release: str = ""  # the release page, where the index has one

    def started(self, dists: tuple[Distribution, ...], settled: Mapping[str, FileResult]) -> None:
        self.dists, self.settled = dists, settled

    def uploaded(self, results: tuple[FileResult, ...]) -> None:
        self.results = in_order(self.dists, self.settled, results)

    def report(
        self,
        job: Job,
        results: tuple[FileResult, ...],
        error: PublishError | None,
        note: str,
        index_note: str,
    ) -> Report:
        return Report(
            job.settings.repository_url,
            job.dry_run,
            results,
            self.release,
            error=error,
            attestations=self.attested,
            attestation_note=note,
            index_note=index_note,
        )

    def ended(self, job: Job, error: PublishError) -> Report:
        results = self.results
        if self.sending and not results:  # cut off in the upload stage: each may have landed
            unknown = tuple(
                FileResult(d, Status.UNKNOWN, note="check the index") for d in self.sending
            )
            results = in_order(self.dists, self.settled, unknown)
        report = self.report(job, results, error, "", "")
        return report if results else replace(report, attestations=())


def in_order(
    dists: tuple[Distribution, ...],
    settled: Mapping[str, FileResult],
    uploaded: tuple[FileResult, ...],
) -> tuple[FileResult, ...]:
    """The results of all files in their order: those settled before the upload among them."""
    by_name = {r.distribution.filename: r for r in uploaded} | dict(settled)
    return tuple(by_name[d.filename] for d in dists)
