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

from dataclasses import replace

from publisher.attestations import Plan, attest, plan_attestations, preview, unattested
from publisher.await_release import await_release
from publisher.cancel import Cancelled
from publisher.context import decide_dry_run
from publisher.distributions import (
    check_metadata,
    check_pypi_rules,
    find_distributions,
    show_distributions,
)
from publisher.dry_run import prove_exchange, would_do
from publisher.errors import InternalError, PublishError
from publisher.existing import Comparison, compare_with_index, conflict_error
from publisher.http import make_session
from publisher.index import Index, release_url, web_url
from publisher.job import Job, in_order
from publisher.simple import Listing, read_index
from publisher.upload import Outcome, Uploading, describe, upload_distributions
from publisher.values import Credentials, Distribution, Report


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
        results = in_order(dists, comparison.settled, outcome.results)
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
