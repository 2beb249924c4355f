"""A dry run: everything a real run does before its first upload, and what it would then do.

The distributions are checked and the index read as in a real run; then, instead of uploading,
each file is reported with what a real run would do with it (upload, skip, fail on), as
`compare_with_index` decided it, and the trusted-publisher exchange is proven: a token minted
and revoked at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from publisher.console import Console
from publisher.context import RunContext
from publisher.errors import UploadError
from publisher.existing import Comparison, conflict_error
from publisher.settings import Settings
from publisher.trusted_publishing import TrustedPublishing
from publisher.values import Distribution, FileResult, Status


def would_do(
    dists: Sequence[Distribution], comparison: Comparison, console: Console
) -> tuple[tuple[FileResult, ...], UploadError | None]:
    """Each file with what a real run would do with it, said in the log; the error a real run
    would end with (files of these names with other content on the index), if any."""
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
    return tuple(results), conflict_error(conflicts, dry_run=True) if conflicts else None


def prove_exchange(
    settings: Settings,
    context: RunContext,
    trusted: TrustedPublishing,
    dists: Sequence[Distribution],
) -> str:
    """Whether this run's trusted publishing works, as far as a dry run can tell: the sentence
    for the log and the summary."""
    if not settings.trusted_publishing:
        return "Not checked: credentials are a `password`, which only a real upload can test."
    if not context.oidc_available:
        reason = (
            "this job has no `id-token: write` permission (pull requests from forks never get it)"
            if context.in_actions
            else "no OIDC token outside GitHub Actions"
        )
        message = f"Trusted-publisher exchange skipped: {reason}."
        trusted.console.line(message)
        return message
    return trusted.prove({d.name for d in dists})
