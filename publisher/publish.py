"""One publish, top to bottom: distributions -> checks -> credentials -> upload -> report.

Nothing touches the network before the distributions are found and their metadata checked, and
nothing is uploaded unless the credentials were had. Every minted token is revoked at the end,
whatever happened in between.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests

from publisher.console import Console, human_size
from publisher.context import DryRun, RunContext, decide_dry_run
from publisher.distributions import (
    Distribution,
    check_metadata,
    check_pypi_rules,
    find_distributions,
)
from publisher.errors import PublishError, TrustedPublishingError, UploadError
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
from publisher.simple import RemoteFile, existing_files
from publisher.upload import Credentials, FileResult, upload_distributions


@dataclass(frozen=True)
class Report:
    repository_url: str
    dry_run: DryRun
    results: tuple[FileResult, ...] = ()
    release_url: str = ""
    exchange: str = ""  # what a dry run learned of the trusted-publisher exchange
    error: PublishError | None = None


def publish(settings: Settings, context: RunContext, console: Console) -> Report:
    dry_run = decide_dry_run(settings, context)
    if dry_run.enabled:
        console.notice(dry_run.reason, title="Dry run: nothing will be uploaded")
    try:
        return _publish(settings, context, dry_run, console)
    except PublishError as error:
        return Report(settings.repository_url, dry_run, error=error)


def _publish(settings: Settings, context: RunContext, dry_run: DryRun, console: Console) -> Report:
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

    first = dists[0]
    release = release_url(settings.repository_url, first.name, first.version)
    policy = RetryPolicy(delay=settings.retry_delay)
    with make_session() as session:
        exchange = Exchange(session, settings.repository_url, policy, console.line, console.mask)
        known: dict[str, RemoteFile] = {}
        if dry_run.enabled or settings.skip_existing:
            known = _existing(session, settings, dists, policy, console)
        if dry_run.enabled:
            return _dry_run(settings, context, dry_run, dists, known, exchange, release, console)

        if settings.attestations and web_url(settings.repository_url):
            console.warning(
                "`attestations: true` is accepted, but this action does not generate PEP 740 "
                "attestations yet: the files are published without them.",
                title="No attestations",
            )
        minted: list[UploadToken] = []
        try:
            credentials = _credentials(settings, exchange, dists, minted, console)
            outcome = upload_distributions(
                dists,
                credentials,
                repository_url=settings.repository_url,
                skip_existing=settings.skip_existing,
                known=known,
                policy=policy,
                console=console,
                renew=(lambda: _mint(exchange, dists, minted, console)) if minted else None,
            )
        finally:
            for token in minted:
                _revoke(exchange, token, console)
    return Report(settings.repository_url, dry_run, outcome.results, release, error=outcome.error)


def _list(dists: tuple[Distribution, ...], settings: Settings, console: Console) -> None:
    with console.group(f"Distributions in {settings.packages_dir} ({len(dists)})"):
        for dist in dists:
            console.line(f"{dist.filename}  {human_size(dist.size)}")
            if settings.print_hash:
                console.line(f"  SHA256:      {dist.digests.sha256}")
                console.line(f"  MD5:         {dist.digests.md5}")
                console.line(f"  BLAKE2-256:  {dist.digests.blake2_256}")


def _existing(
    session: requests.Session,
    settings: Settings,
    dists: tuple[Distribution, ...],
    policy: RetryPolicy,
    console: Console,
) -> dict[str, RemoteFile]:
    files = existing_files(
        session, settings.repository_url, {d.name for d in dists}, policy=policy, log=console.line
    )
    if files is None:
        console.line("Could not read the index's simple API: existing files are found on upload.")
        return {}
    return files


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
    """A fresh OIDC token exchanged for an upload token; the previous one is revoked first."""
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
    while minted:
        _revoke(exchange, minted.pop(), console)
    minted.append(token)
    exchange.log(
        f"Exchanged the OIDC token for an upload token ({index_name(exchange.repository_url)})."
    )
    return Credentials("__token__", token.value, token.expires)


def _revoke(exchange: Exchange, token: UploadToken, console: Console) -> None:
    problem = burn_token(exchange, token)
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
    known: dict[str, RemoteFile],
    exchange: Exchange,
    release: str,
    console: Console,
) -> Report:
    exchange_result = _prove_exchange(settings, context, exchange, dists, console)
    results = []
    conflicts = []
    for dist in dists:
        remote = known.get(dist.filename)
        note = ""
        if remote is not None:
            same = remote.sha256 == dist.digests.sha256
            note = "identical file already on the index" if same else "other content on the index"
            if not same and not settings.skip_existing:
                conflicts.append(dist.filename)
        results.append(FileResult(dist, "dry-run", url=remote.url if remote else "", note=note))
        console.line(f"would upload {dist.filename}" + (f" ({note})" if note else ""))
    error = None
    if conflicts:
        error = UploadError(
            "A real run would fail: the index already has "
            + ", ".join(f"`{name}`" for name in conflicts)
            + " with other content. Give the release a new version number and rebuild, or set "
            "`skip-existing: true` to publish the rest.",
        )
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
    _mint(exchange, dists, minted, console)
    for token in minted:
        _revoke(exchange, token, console)
    message = (
        f"Trusted publishing works: {index_name(settings.repository_url)} exchanged this run's "
        "OIDC token for an upload token, which was revoked at once."
    )
    console.line(message, style="green")
    return message
