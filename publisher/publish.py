"""One publish, top to bottom: distributions -> checks -> credentials -> attestations -> upload
-> report.

Nothing touches the network before the distributions are found and their metadata checked, and
nothing is uploaded unless the credentials were had and every file was attested. Every minted
token is revoked at the end, whatever happened in between.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import requests

from publisher.attestations import (
    SIGSTORE_AUDIENCE,
    Plan,
    plan_attestations,
    reusable_workflow,
    sign_distributions,
    with_attestations,
    without_attestations,
)
from publisher.await_release import await_release
from publisher.cancel import Cancellation, Cancelled
from publisher.console import Console, human_size
from publisher.context import RunContext, decide_dry_run
from publisher.diagnosis import read_claims
from publisher.distributions import (
    check_metadata,
    check_pypi_rules,
    find_distributions,
)
from publisher.errors import InternalError, PublishError, TrustedPublishingError
from publisher.existing import Comparison, compare_with_index, conflict_error
from publisher.http import RetryPolicy, make_session
from publisher.index import index_name, release_url, web_url
from publisher.oidc import (
    Exchange,
    UploadToken,
    burn_token,
    fetch_audience,
    fetch_oidc_token,
    mint_upload_token,
)
from publisher.settings import Settings
from publisher.simple import Index, Listing, read_index
from publisher.upload import Credentials, Outcome, describe, upload_distributions
from publisher.values import Attested, Distribution, DryRun, FileResult, Report, Status
from publisher.worker import Worker


def publish(
    settings: Settings,
    context: RunContext,
    console: Console,
    worker: Worker | None = None,
    cancellation: Cancellation | None = None,
) -> Report:
    """`worker`, if given, is where the files are signed (it has loaded sigstore meanwhile);
    `cancellation` tells the upload loop that the job is being stopped."""
    dry_run = decide_dry_run(settings, context)
    if dry_run.enabled:
        console.notice(dry_run.reason, title="Dry run: nothing will be uploaded")
    progress = _Progress()
    try:
        return _publish(
            settings, context, dry_run, console, worker, cancellation or Cancellation(), progress
        )
    except PublishError as error:
        return progress.ended(settings, dry_run, error)
    except Cancelled as stop:
        return progress.ended(
            settings, dry_run, stop.after_upload() if progress.sending else stop.before_upload()
        )
    except Exception as bug:
        if not progress.sending:
            raise  # nothing was sent: the entry point shows it as any bug
        console.traceback(bug)
        return progress.ended(settings, dry_run, InternalError(bug))


@dataclass
class _Progress:
    """How far the run got, for an ending that is not the normal one: from the first upload
    request on, every ending (an error, a cancelled job, a bug) says what became of each file."""

    dists: tuple[Distribution, ...] = ()
    settled: Mapping[str, FileResult] = field(default_factory=dict)  # on the index already
    sending: tuple[Distribution, ...] = ()  # set just before the first upload request
    results: tuple[FileResult, ...] = ()  # every file's, once the upload stage has ended
    attested: tuple[Attested, ...] = ()
    release: str = ""  # the release page, where the index has one

    def ended(self, settings: Settings, dry_run: DryRun, error: PublishError) -> Report:
        results = self.results
        if self.sending and not results:  # cut off in the upload stage: each may have landed
            unknown = tuple(
                FileResult(d, Status.UNKNOWN, note="check the index") for d in self.sending
            )
            results = _in_order(self.dists, self.settled, unknown)
        return Report(
            settings.repository_url,
            dry_run,
            results,
            self.release,
            error=error,
            attestations=self.attested if results else (),
        )


def _publish(
    settings: Settings,
    context: RunContext,
    dry_run: DryRun,
    console: Console,
    worker: Worker | None,
    cancellation: Cancellation,
    progress: _Progress,
) -> Report:
    found = find_distributions(settings.packages_dir)
    if found.ignored:
        console.warning(
            f"Ignored what is not a wheel or an sdist in `{settings.packages_dir}`: "
            + ", ".join(f"`{name}`" for name in found.ignored),
            title="Files ignored in packages-dir",
        )
    dists = found.distributions
    _list(dists, settings, console)
    if settings.verify_metadata:
        check_metadata(dists)
        if web_url(settings.repository_url):
            check_pypi_rules(dists)
        console.line("Metadata check passed (as `twine check --strict`).", style="green")
    plan = plan_attestations(settings, dists)
    if not plan.send:
        dists = _unattested(dists, plan, console)

    first = dists[0]
    release = release_url(settings.repository_url, first.name, first.version)
    policy = RetryPolicy(delay=settings.retry_delay)
    index = Index(
        settings.repository_url,
        settings.index_url,
        (settings.user, settings.password) if settings.password else None,
    )
    with make_session() as session:
        exchange = Exchange(
            session,
            settings.repository_url,
            policy,
            console.line,
            console.mask,
            context.oidc_request,
        )
        listing = _read(session, index, dists, policy, console)
        comparison = compare_with_index(
            dists, listing, skip_existing=settings.skip_existing, console=console
        )
        if dry_run.enabled:
            report = _dry_run(
                settings, context, dry_run, dists, comparison, exchange, release, console
            )
            note = _preview_attestations(plan, context, exchange, dists, console)
            return replace(report, attestation_note=note, index_note=listing.problem)
        if comparison.conflicts:
            raise conflict_error(comparison.conflicts)
        progress.dists, progress.settled, progress.release = dists, comparison.settled, release
        for result in comparison.settled.values():
            console.line(describe(result))

        minted: list[UploadToken] = []
        attested: tuple[Attested, ...] = ()
        note = plan.reason if plan.explicit else ""
        outcome = Outcome(())
        to_upload = comparison.to_upload  # nothing else is minted for, signed or sent
        try:
            if to_upload:
                credentials = _credentials(settings, exchange, to_upload, minted, console)
                if plan.sign:
                    to_upload, attested, note = _attest(
                        settings, plan, exchange, to_upload, console, worker
                    )
                with cancellation.deferred():
                    cancellation.check()  # stopped a moment ago: nothing is sent
                    progress.sending, progress.attested = to_upload, attested
                    outcome = upload_distributions(
                        to_upload,
                        credentials,
                        index=index,
                        root=listing.root,
                        skip_existing=settings.skip_existing,
                        policy=policy,
                        console=console,
                        renew=(lambda: _mint(exchange, to_upload, minted, console))
                        if minted
                        else None,
                        concurrency=settings.upload_concurrency,
                        cancellation=cancellation,
                    )
                    progress.results = _in_order(dists, comparison.settled, outcome.results)
        finally:
            with cancellation.deferred():
                # Every token minted, renewed ones included: an upload may have used it until
                # the end. Quickly when the job is being stopped: the runner kills us soon.
                for token in minted:
                    _revoke(exchange, token, console, quick=cancellation.requested)
        results = _in_order(dists, comparison.settled, outcome.results)
        error, verified = outcome.error, None
        if settings.await_release and error is None and not cancellation.requested:
            served = await_release(
                session,
                index,
                listing.root,
                results,
                timeout=settings.await_timeout,
                policy=policy,
                console=console,
            )
            results, verified, error = served.results, served.verified, served.error
    return Report(
        settings.repository_url,
        dry_run,
        results,
        release,
        error=error,
        attestations=attested,
        attestation_note=note,
        index_note=listing.problem,
        verified=verified,
    )


def _in_order(
    dists: tuple[Distribution, ...],
    settled: Mapping[str, FileResult],
    uploaded: tuple[FileResult, ...],
) -> tuple[FileResult, ...]:
    """The results of all files in their order: those settled before the upload among them."""
    by_name = {r.distribution.filename: r for r in uploaded} | dict(settled)
    return tuple(by_name[d.filename] for d in dists)


def _read(
    session: requests.Session,
    index: Index,
    dists: tuple[Distribution, ...],
    policy: RetryPolicy,
    console: Console,
) -> Listing:
    listing = read_index(session, index, {d.name for d in dists}, policy=policy, log=console.line)
    if not listing.readable:
        console.warning(
            f"Could not check what the index holds ({listing.problem}). Every file is sent; "
            "the index says which it has already.",
            title="Index not readable",
        )
    return listing


def _unattested(
    dists: tuple[Distribution, ...], plan: Plan, console: Console
) -> tuple[Distribution, ...]:
    """No attestations go up: say why only where someone asked for them or left files for them."""
    if plan.explicit:
        console.notice(plan.reason, title="No attestations")
    files = [p.name for d in dists for p in d.attestation_files]
    if files:
        console.line(
            "Not uploading the attestation files beside the distributions ("
            + ", ".join(files)
            + f"): {plan.reason}"
        )
    return without_attestations(dists)


def _attest(
    settings: Settings,
    plan: Plan,
    exchange: Exchange,
    dists: tuple[Distribution, ...],
    console: Console,
    worker: Worker | None,
) -> tuple[tuple[Distribution, ...], tuple[Attested, ...], str]:
    """An attestation for each file (signed now, or reused); the files with them attached."""
    token = ""
    if any(d.filename not in plan.existing for d in dists):
        token = _sigstore_token(exchange)
        refusal = reusable_workflow(read_claims(token))
        if refusal and not plan.explicit:
            console.warning(
                refusal + " Publishing without attestations (set `attestations: true` to "
                "attest anyway).",
                title="No attestations from a reusable workflow",
            )
            return without_attestations(dists), (), refusal
        if refusal:
            console.warning(refusal + " Attesting anyway: `attestations` is `true`.")
    with console.group(f"Attestations (PEP 740) for {len(dists)} files"):
        attested = sign_distributions(
            dists,
            token,
            trust_config=settings.sigstore_trust_config,
            existing=plan.existing,
            policy=exchange.policy,
            console=console,
            worker=worker,
            concurrency=settings.upload_concurrency,
        )
        for a in attested:
            entry = f"transparency log index {a.log_index}" if a.log_index is not None else "?"
            how = "reused" if a.reused else "signed"
            console.line(f"{how} {a.path.name} ({entry})")
    return with_attestations(dists, attested), attested, ""


def _sigstore_token(exchange: Exchange) -> str:
    token = fetch_oidc_token(exchange, SIGSTORE_AUDIENCE)
    if token is None:  # the index's token was had a moment ago: the runtime went away
        raise TrustedPublishingError(
            "The Actions runtime gave no OIDC token for Sigstore.", title="No Sigstore token"
        )
    return token


def _preview_attestations(
    plan: Plan,
    context: RunContext,
    exchange: Exchange,
    dists: tuple[Distribution, ...],
    console: Console,
) -> str:
    """What a real run would attest; the `sigstore` token is asked for, which proves the job may
    have it. Nothing is signed: that would write a public log entry for files never published."""
    if not plan.sign:
        return plan.reason if plan.explicit else ""
    to_sign = [d.filename for d in dists if d.filename not in plan.existing]
    reused = [a.path.name for a in plan.existing.values()]
    parts = []
    if to_sign:
        parts.append("A real run would sign " + ", ".join(f"`{n}`" for n in to_sign) + ".")
    if reused:
        parts.append("It would reuse " + ", ".join(f"`{n}`" for n in reused) + ".")
    if to_sign and context.oidc_available:
        refusal = reusable_workflow(read_claims(_sigstore_token(exchange)))
        parts.append(
            refusal + " A real run publishes without attestations (unless `attestations` is "
            "`true`)."
            if refusal
            else "This job may have the OIDC token for Sigstore (`id-token: write`)."
        )
    elif to_sign:
        parts.append("Signing needs trusted publishing in a job with `id-token: write`.")
    message = " ".join(parts)
    console.line(f"Attestations: {message}")
    return message


def _list(dists: tuple[Distribution, ...], settings: Settings, console: Console) -> None:
    with console.group(f"Distributions in {settings.packages_dir} ({len(dists)})"):
        for dist in dists:
            console.line(f"{dist.filename}  {human_size(dist.size)}")
            if settings.print_hash:
                console.line(f"  SHA256:      {dist.digests.sha256}")
                console.line(f"  MD5:         {dist.digests.md5}")
                console.line(f"  BLAKE2-256:  {dist.digests.blake2_256}")


def _credentials(
    settings: Settings,
    exchange: Exchange,
    dists: tuple[Distribution, ...],
    minted: list[UploadToken],
    console: Console,
) -> Credentials:
    if not settings.trusted_publishing:
        return Credentials(settings.user, settings.password)
    return _mint(exchange, dists, minted, console)


def _mint(
    exchange: Exchange,
    dists: tuple[Distribution, ...],
    minted: list[UploadToken],
    console: Console,
) -> Credentials:
    """A fresh OIDC token exchanged for an upload token; all are revoked at the end (one that
    is renewed may still be in use by an upload in flight)."""
    audience = fetch_audience(exchange)
    oidc_token = fetch_oidc_token(exchange, audience)
    if oidc_token is None:
        raise TrustedPublishingError(
            "No OIDC token can be had here: trusted publishing works from GitHub Actions (in a "
            "job with `permissions: id-token: write`). Elsewhere, pass an API token in the "
            "`INPUT_PASSWORD` variable, or use `--dry-run` to check the distributions.",
            title="Not in GitHub Actions",
        )
    token = mint_upload_token(exchange, oidc_token, {d.name for d in dists})
    minted.append(token)
    exchange.log(
        f"Exchanged the OIDC token for an upload token ({index_name(exchange.repository_url)})."
    )
    return Credentials("__token__", token.value, token.expires)


def _revoke(exchange: Exchange, token: UploadToken, console: Console, quick: bool = False) -> None:
    problem = burn_token(exchange, token, quick=quick)
    if problem:
        console.warning(
            f"The upload token could not be revoked ({problem}). It expires by itself within "
            "15 minutes and can only upload to this project.",
            title="Upload token not revoked",
        )
    else:
        console.line("Revoked the upload token.")


def _dry_run(
    settings: Settings,
    context: RunContext,
    dry_run: DryRun,
    dists: tuple[Distribution, ...],
    comparison: Comparison,
    exchange: Exchange,
    release: str,
    console: Console,
) -> Report:
    """What a real run would do with each file, as `compare_with_index` decided it."""
    exchange_result = _prove_exchange(settings, context, exchange, dists, console)
    results = []
    for dist in dists:
        settled = comparison.settled.get(dist.filename)
        if settled is not None:
            verb, note, url = "would skip", settled.note, settled.url
        elif dist in comparison.to_upload:
            verb, note, url = "would upload", "", ""
        else:  # one of the conflicts
            verb, note, url = "would fail on", "other content on the index", ""
        results.append(FileResult(dist, Status.DRY_RUN, url=url, note=note))
        console.line(f"{verb} {dist.filename}" + (f" ({note})" if note else ""))
    conflicts = comparison.conflicts
    error = conflict_error(conflicts, dry_run=True) if conflicts else None
    return Report(settings.repository_url, dry_run, tuple(results), release, exchange_result, error)


def _prove_exchange(
    settings: Settings,
    context: RunContext,
    exchange: Exchange,
    dists: tuple[Distribution, ...],
    console: Console,
) -> str:
    """Mint a token and revoke it at once: proof that the trusted publisher matches this run."""
    if not settings.trusted_publishing:
        return "Not checked: credentials are a `password`, which only a real upload can test."
    if not context.oidc_available:
        reason = (
            "this job has no `id-token: write` permission (pull requests from forks never get it)"
            if context.in_actions
            else "no OIDC token outside GitHub Actions"
        )
        message = f"Trusted-publisher exchange skipped: {reason}."
        console.line(message)
        return message
    minted: list[UploadToken] = []
    try:
        _mint(exchange, dists, minted, console)
    finally:
        for token in minted:
            _revoke(exchange, token, console)
    message = (
        f"Trusted publishing works: {index_name(settings.repository_url)} exchanged this run's "
        "OIDC token for an upload token, which was revoked at once."
    )
    console.line(message, style="green")
    return message
