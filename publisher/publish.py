"""One publish, top to bottom: distributions -> what the index holds -> trusted publishing ->
attestations -> upload -> await -> report.

Nothing touches the network before the distributions are found and their metadata checked;
nothing is minted, signed or sent for a file the index already has; nothing is uploaded unless
the credentials were had and every file was attested. Every minted token is revoked when the
trusted publishing ends (before the wait for the release), whatever happened in between. From
the first upload request on, every ending (an error, a cancelled job, a bug) reports each file
as it is. The stages decide; this module only calls them in order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import requests

from publisher.attestations import Plan, attest, plan_attestations, preview, unattested
from publisher.await_release import await_release
from publisher.cancel import Cancellation, Cancelled
from publisher.console import Console
from publisher.context import RunContext, decide_dry_run
from publisher.distributions import (
    check_metadata,
    check_pypi_rules,
    find_distributions,
    show_distributions,
)
from publisher.dry_run import prove_exchange, would_do
from publisher.errors import InternalError, PublishError
from publisher.existing import Comparison, compare_with_index, conflict_error
from publisher.http import RetryPolicy, make_session
from publisher.index import Index, release_url, web_url
from publisher.settings import Settings
from publisher.shared import Shared
from publisher.simple import Listing, read_index
from publisher.trusted_publishing import TrustedPublishing
from publisher.upload import Outcome, Uploading, describe, upload_distributions
from publisher.values import (
    Attested,
    Credentials,
    Distribution,
    DryRun,
    FileResult,
    Report,
    Status,
)
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
    progress: _Progress = field(default_factory=lambda: _Progress())
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def policy(self) -> RetryPolicy:
        return RetryPolicy(delay=self.settings.retry_delay)

    @property
    def shared(self) -> Shared:
        """What every stage shares, as one value."""
        return Shared(self.console, self.policy, self.session, self.cancellation)


def publish(job: Job) -> Report:
    """Publish as `job` says; the report of every ending (an error is in it, never raised)."""
    job.dry_run = decide_dry_run(job.settings, job.context)
    if job.dry_run.enabled:
        job.console.notice(job.dry_run.reason, title="Dry run: nothing will be uploaded")
    try:
        return _publish(job)
    except PublishError as error:
        return job.progress.ended(job, error)
    except Cancelled as stop:
        sent = bool(job.progress.sending)
        return job.progress.ended(job, stop.after_upload() if sent else stop.before_upload())
    except Exception as bug:
        if not job.progress.sending:
            raise  # nothing was sent: the entry point shows it as any bug
        job.console.traceback(bug)
        return job.progress.ended(job, InternalError(bug))


def _publish(job: Job) -> Report:
    settings = job.settings
    dists, plan = _distributions(job)
    index = Index.from_settings(settings)
    with make_session() as job.session:
        listing = _read(index, dists, job)
        index = index.found(listing.root)
        comparison = compare_with_index(
            dists, listing, skip_existing=settings.skip_existing, console=job.console
        )
        if job.dry_run.enabled:
            return _dry_run(job, dists, comparison, plan, listing)
        if comparison.conflicts:
            raise conflict_error(comparison.conflicts)
        job.progress.started(dists, comparison.settled)
        for result in comparison.settled.values():
            job.console.line(describe(result))
        outcome, note = _send(job, comparison.to_upload, plan, index)
        results = _in_order(dists, comparison.settled, outcome.results)
        report = job.progress.report(job, results, outcome.error, note, listing.problem)
        if settings.await_release and outcome.error is None and not job.cancellation.requested:
            served = await_release(job.shared, index, results, timeout=settings.await_timeout)
            report = job.progress.report(job, served.results, served.error, note, listing.problem)
            return replace(report, verified=served.verified)
    return report


def _distributions(job: Job) -> tuple[tuple[Distribution, ...], Plan]:
    """The files to publish, checked, and what is done about their attestations."""
    settings = job.settings
    found = find_distributions(settings.packages_dir)
    show_distributions(found, settings.packages_dir, settings.print_hash, job.console)
    dists = found.distributions
    if settings.verify_metadata:
        check_metadata(dists)
        if web_url(settings.repository_url):
            check_pypi_rules(dists)
        job.console.line("Metadata check passed (as `twine check --strict`).", style="green")
    plan = plan_attestations(settings, dists)
    if not plan.send:
        dists = unattested(dists, plan, job.console)
    job.progress.release = release_url(settings.repository_url, dists[0].name, dists[0].version)
    return dists, plan


def _send(
    job: Job,
    to_upload: tuple[Distribution, ...],
    plan: Plan,
    index: Index,
) -> tuple[Outcome, str]:
    """Credentials, attestations and the upload of what the index does not have yet; every
    token minted is revoked on the way out. The outcome, and why there are no attestations."""
    note = plan.reason if plan.explicit else ""
    if not to_upload:
        return Outcome(()), note
    settings = job.settings
    with job.trusted_publishing(job) as trusted:
        if settings.trusted_publishing:
            credentials = trusted.credentials({d.name for d in to_upload})
        else:
            credentials = Credentials(settings.user, settings.password)
        if plan.sign:
            to_upload, job.progress.attested, note = attest(
                to_upload, plan, trusted, settings, job.worker
            )
        with job.cancellation.deferred():
            job.cancellation.check()  # stopped a moment ago: nothing is sent
            job.progress.sending = to_upload
            how = Uploading(
                settings.skip_existing,
                settings.upload_concurrency,
                trusted.renew if trusted.minted else None,
            )
            outcome = upload_distributions(to_upload, credentials, index, job.shared, how)
            job.progress.uploaded(outcome.results)
    return outcome, note


def _dry_run(
    job: Job,
    dists: tuple[Distribution, ...],
    comparison: Comparison,
    plan: Plan,
    listing: Listing,
) -> Report:
    """What a real run would do with each file, the exchange proven, the attestations
    previewed; nothing uploaded, nothing signed."""
    results, error = would_do(dists, comparison, job.console)
    with job.trusted_publishing(job) as trusted:
        exchange = prove_exchange(job.settings, job.context, trusted, dists)
        note = preview(dists, plan, trusted, job.context.oidc_available)
    return Report(
        job.settings.repository_url,
        job.dry_run,
        results,
        job.progress.release,
        exchange,
        error,
        attestation_note=note,
        index_note=listing.problem,
    )


def _read(index: Index, dists: tuple[Distribution, ...], job: Job) -> Listing:
    projects = {d.name for d in dists}
    listing = read_index(job.shared, index, projects)
    if not listing.readable:
        job.console.warning(
            f"Could not check what the index holds ({listing.problem}). Every file is sent; "
            "the index says which it has already.",
            title="Index not readable",
        )
    return listing


@dataclass
class _Progress:
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
        self.results = _in_order(self.dists, self.settled, results)

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
            results = _in_order(self.dists, self.settled, unknown)
        report = self.report(job, results, error, "", "")
        return report if results else replace(report, attestations=())


def _in_order(
    dists: tuple[Distribution, ...],
    settled: Mapping[str, FileResult],
    uploaded: tuple[FileResult, ...],
) -> tuple[FileResult, ...]:
    """The results of all files in their order: those settled before the upload among them."""
    by_name = {r.distribution.filename: r for r in uploaded} | dict(settled)
    return tuple(by_name[d.filename] for d in dists)
