"""PEP 740 publish attestations: every distribution signed with Sigstore before it is uploaded.

    GET  $ACTIONS_ID_TOKEN_REQUEST_URL&audience=sigstore  -> a second OIDC token (through `id`)
    TUF  the public instance's trust root and service URLs (or a `sigstore-trust-config` file)
    POST <Fulcio>/api/v2/signingCert     -> one 10-minute certificate for one ephemeral key
    POST <Rekor v1>/api/v1/log/entries   -> per distribution, its signed statement in the log

The statement names the file and its sha256 under PyPI's publish predicate; it is written beside
the file as `<filename>.publish.attestation`, the name the anchor action writes and twine and uv
pick up, and goes up with the file. Rekor v1, because PyPI cannot verify v2 entries yet.

A release is never published half attested: everything is signed before the first upload, and
any failure that outlasts the retries stops the publish. sigstore and pypi-attestations are
imported only by `sign_distributions`: a run that does not sign never pays for them.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from publisher.console import Console
from publisher.errors import AttestationError
from publisher.http import (
    RetryPolicy,
    Transient,
    add_timeouts,
    answer_text,
    describe_failure,
    transient_status,
    with_retries,
)
from publisher.parallel import map_bounded
from publisher.settings import Settings
from publisher.trusted_publishing import TrustedPublishing, read_claims, reusable_workflow
from publisher.values import Attested, Distribution
from publisher.worker import Worker

if TYPE_CHECKING:
    import requests
    from sigstore.models import ClientTrustConfig
    from sigstore.sign import Signer, SigningContext

PUBLISH_SUFFIX = ".publish.attestation"
PUBLISH_PREDICATE = "https://docs.pypi.org/attestations/publish/v1"
PUBLIC_LOG_SEARCH = "https://search.sigstore.dev/?logIndex={}"
STATUS_PAGE = "https://status.sigstore.dev"

T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    """What this run does about attestations, decided before any request."""

    sign: bool  # sign what has no publish attestation yet (after the token exchange)
    send: bool  # upload the attestation files with their distributions
    explicit: bool  # `attestations: true` was set, not just defaulted
    reason: str = ""  # why nothing is signed, for the log and the summary
    existing: Mapping[str, Attested] = field(default_factory=dict)  # filename -> to reuse


def plan_attestations(settings: Settings, dists: Sequence[Distribution]) -> Plan:
    """Sign with trusted publishing unless `attestations: false`; never with a password (PyPI
    takes attestations only from trusted publishing) and then say nothing unless asked.

    The attestation files already beside the distributions are checked here, before any request:
    a `.publish.attestation` that matches its file is reused, one that does not is an error.
    """
    explicit = settings.attestations is True
    if settings.attestations is False:
        return Plan(False, False, False, "`attestations` is `false`.")
    if not settings.signs:  # a password
        return Plan(
            False,
            False,
            explicit,
            "PyPI accepts attestations only with trusted publishing, and this step has a "
            "`password`: the files are published without them. Remove `user` and `password` "
            "(and register a trusted publisher) to publish with attestations.",
        )
    return Plan(True, True, explicit, existing=_existing(dists, settings.sigstore_trust_config))


def without_attestations(dists: Sequence[Distribution]) -> tuple[Distribution, ...]:
    return tuple(replace(d, attestation_files=()) for d in dists)


def with_attestations(
    dists: Sequence[Distribution], attested: Sequence[Attested]
) -> tuple[Distribution, ...]:
    """The distributions with their new publish attestations among the files that go up."""
    paths = {a.filename: a.path for a in attested}
    result = []
    for dist in dists:
        path = paths.get(dist.filename)
        if path is not None and path not in dist.attestation_files:
            dist = replace(dist, attestation_files=tuple(sorted((*dist.attestation_files, path))))
        result.append(dist)
    return tuple(result)


def publish_path(dist: Distribution) -> Path:
    return dist.path.with_name(dist.filename + PUBLISH_SUFFIX)


def reusable_workflow_refusal(claims: Mapping[str, object]) -> str:
    """Why PyPI would refuse attestations from this job (empty if it would not).

    The certificate names the calling workflow (`workflow_ref`) while PyPI matches the trusted
    publisher on the workflow that runs the job (`job_workflow_ref`): in a reusable workflow the
    two name other files, and every attested upload is refused.
    """
    found = reusable_workflow(claims)
    if found is None:
        return ""
    job, caller = found
    return (
        f"This job runs in the reusable workflow `{job}`, called from `{caller}`. The "
        "Sigstore certificate would name the calling workflow, which PyPI does not accept "
        "from a trusted publisher registered for the reusable one, so it would refuse every "
        "attested upload. To publish with attestations, run this action in a job of the "
        "top-level workflow (and register that workflow file as the trusted publisher)."
    )


def attest(
    dists: tuple[Distribution, ...],
    plan: Plan,
    trusted: TrustedPublishing,
    settings: Settings,
    worker: Worker | None,
) -> tuple[tuple[Distribution, ...], tuple[Attested, ...], str]:
    """The attestation stage of a real run: an attestation for each file (signed now, or
    reused), the files with them attached, and why there are none (a reusable workflow)."""
    console = trusted.console
    token = ""
    if any(d.filename not in plan.existing for d in dists):
        token = trusted.sigstore_token()
        refusal = reusable_workflow_refusal(read_claims(token))
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
        signing = Signing(
            settings.sigstore_trust_config,
            RetryPolicy(delay=settings.retry_delay),
            console,
            settings.upload_concurrency,
        )
        attested = sign_distributions(dists, token, signing, plan.existing, worker)
        for a in attested:
            entry = f"transparency log index {a.log_index}" if a.log_index is not None else "?"
            console.line(f"{'reused' if a.reused else 'signed'} {a.path.name} ({entry})")
    return with_attestations(dists, attested), attested, ""


def preview(
    dists: tuple[Distribution, ...], plan: Plan, trusted: TrustedPublishing, oidc: bool
) -> str:
    """What a real run would attest, for a dry run; the `sigstore` token is asked for (`oidc`:
    the job may have one), which proves the job may have it. Nothing is signed: that would
    write a public log entry for files never published."""
    if not plan.sign:
        return plan.reason if plan.explicit else ""
    to_sign = [d.filename for d in dists if d.filename not in plan.existing]
    reused = [a.path.name for a in plan.existing.values()]
    parts = []
    if to_sign:
        parts.append("A real run would sign " + ", ".join(f"`{n}`" for n in to_sign) + ".")
    if reused:
        parts.append("It would reuse " + ", ".join(f"`{n}`" for n in reused) + ".")
    if to_sign and oidc:
        refusal = reusable_workflow_refusal(read_claims(trusted.sigstore_token()))
        parts.append(
            refusal + " A real run publishes without attestations (unless `attestations` is "
            "`true`)."
            if refusal
            else "This job may have the OIDC token for Sigstore (`id-token: write`)."
        )
    elif to_sign:
        parts.append("Signing needs trusted publishing in a job with `id-token: write`.")
    message = " ".join(parts)
    trusted.console.line(f"Attestations: {message}")
    return message


def unattested(
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


@dataclass(frozen=True)
class Signing:
    """How to sign, as the signing worker gets it: the Sigstore instance (a trust configuration;
    None: the public one), the retry policy, the log, and how many log entries at once."""

    trust_config: Path | None
    policy: RetryPolicy
    console: Console
    concurrency: int = 4


def sign_distributions(
    dists: Sequence[Distribution],
    oidc_token: str,
    signing: Signing,
    existing: Mapping[str, Attested],
    worker: Worker | None = None,
) -> tuple[Attested, ...]:
    """An attestation for each distribution, in their order: those in `existing` as they are,
    the others signed now (one ephemeral key, one certificate) and written beside their files.

    In `worker` if there is one: it has loaded sigstore while this process did the rest.
    """
    todo = [d for d in dists if d.filename not in existing]
    signed: list[Attested] = []
    if todo and worker is not None:
        signed = worker.call(_sign_all, todo, oidc_token, signing)
    elif todo:
        context = prepare_signing(signing.trust_config, signing.policy, signing.console)
        signed = _sign_all(context, todo, oidc_token, signing)
    trust_config = signing.trust_config
    made = {a.filename: replace(a, log_url=_log_url(a.log_index, trust_config)) for a in signed}
    return tuple(existing.get(d.filename) or made[d.filename] for d in dists)


def prepare_signing(
    trust_config: Path | None, policy: RetryPolicy, console: Console
) -> SigningContext:
    """Everything signing needs before it has a token: sigstore and pypi-attestations loaded,
    the trust root read (refreshed through TUF for the public instance). A worker's `prepare`."""
    import pypi_attestations  # noqa: F401 - loaded now: every signature uses it

    with _sigstore_log(console):
        return _signing_context(trust_config, policy, console)


def _sign_all(
    context: SigningContext, dists: Sequence[Distribution], oidc_token: str, signing: Signing
) -> list[Attested]:
    """One certificate, then the log entries `concurrency` at a time (as the uploads)."""
    policy, console = signing.policy, signing.console
    with _sigstore_log(console):
        signer = _signer(context, oidc_token, policy, console)
        sign = partial(_sign, context, signer, policy=policy, console=console)
        return map_bounded(sign, dists, limit=signing.concurrency)


def _log_url(log_index: int | None, trust_config: Path | None) -> str:
    """The public log's search page for the entry; empty for another Sigstore instance."""
    if trust_config is not None or log_index is None:
        return ""
    return PUBLIC_LOG_SEARCH.format(log_index)


# --- the attestation files already there -------------------------------------------------------


def _existing(dists: Sequence[Distribution], trust_config: Path | None) -> dict[str, Attested]:
    reused: dict[str, Attested] = {}
    problems: list[str] = []
    for dist in dists:
        for path in dist.attestation_files:
            try:
                document = json.loads(path.read_bytes())
                if not isinstance(document, dict):
                    raise ValueError("not a JSON object")
            except (OSError, ValueError) as e:
                problems.append(f"- `{path}` is not an attestation: {e}.")
                continue
            if path != publish_path(dist):
                continue  # another kind (from astral-sh/attest-action, say): it just goes up
            problem = _mismatch(document, dist)
            if problem:
                problems.append(f"- `{path}` {problem}")
            else:
                index = _log_index(document)
                reused[dist.filename] = Attested(
                    dist.filename, path, index, _log_url(index, trust_config), reused=True
                )
    if problems:
        raise AttestationError(
            "Attestation files beside the distributions do not fit them:\n\n"
            + "\n".join(problems)
            + "\n\nAn attestation is made for one build of one file; these were made for "
            "other files or another build (an earlier build in this job, a cache, an artifact "
            "of another run). Nothing was uploaded. Delete them, and the action signs the files "
            "again; or rebuild in the job that attests them.",
            title="Attestations do not match their files",
        )
    return reused


def _mismatch(document: Mapping[str, Any], dist: Distribution) -> str:
    """What keeps a publish attestation from attesting `dist` (empty if nothing does)."""
    try:
        statement = json.loads(base64.b64decode(document["envelope"]["statement"]))
        subjects = statement["subject"]
        predicate = statement.get("predicateType", "")
    except (KeyError, TypeError, ValueError) as e:
        return f"is not a PEP 740 attestation (cannot read its statement: {e!r})."
    if predicate != PUBLISH_PREDICATE:
        return f"has the predicate type `{predicate}`, not PyPI's `{PUBLISH_PREDICATE}`."
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        return "must name exactly one subject."
    name = str(subjects[0].get("name", ""))
    sha256 = str((subjects[0].get("digest") or {}).get("sha256", ""))
    if not _same_file_name(name, dist.filename):
        return f"attests `{name}`, not `{dist.filename}`."
    if sha256 != dist.digests.sha256:
        return (
            f"attests another build of `{dist.filename}` (sha256 `{sha256}`; this file's is "
            f"`{dist.digests.sha256}`)."
        )
    return ""


def _same_file_name(attested: str, filename: str) -> bool:
    """Equal, or equal once parsed, as PyPI compares them (`Foo-1.0` is `foo-1.0`)."""
    if attested == filename:
        return True
    from packaging.utils import (
        InvalidSdistFilename,
        InvalidWheelFilename,
        parse_sdist_filename,
        parse_wheel_filename,
    )

    parse = parse_wheel_filename if filename.endswith(".whl") else parse_sdist_filename
    try:
        return parse(attested) == parse(filename)
    except (InvalidSdistFilename, InvalidWheelFilename):
        return False


def _log_index(document: Mapping[str, Any]) -> int | None:
    try:
        return _entry_index(document["verification_material"]["transparency_entries"])
    except (KeyError, TypeError):
        return None


def _entry_index(entries: Sequence[Mapping[str, Any]]) -> int | None:
    try:
        return int(entries[0]["logIndex"])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


# --- signing ------------------------------------------------------------------------------------


def _signing_context(
    trust_config: Path | None, policy: RetryPolicy, console: Console
) -> SigningContext:
    """Where to sign and what to trust: the public instance (refreshed through TUF) or the
    instance a `sigstore-trust-config` file describes; transparency log v1 in both cases."""
    from sigstore.models import ClientTrustConfig
    from sigstore.sign import SigningContext

    if trust_config is None:
        from sigstore._internal.tuf import DEFAULT_TUF_URL

        config = _call(
            ClientTrustConfig.production,
            service="Sigstore's trust root (TUF)",
            url=DEFAULT_TUF_URL,
            what="Refreshing Sigstore's trust root (TUF)",
            policy=policy,
            console=console,
        )
    else:
        config = _read_trust_config(trust_config)
    config.force_tlog_version = 1
    try:
        context = SigningContext.from_trust_config(config)
    except Exception as e:  # sigstore.errors.Error, pydantic's ValueError: the file's content
        raise AttestationError(
            f"No Sigstore instance to sign with in `{trust_config or 'the public trust root'}`:"
            f" {e}. It needs a certificate authority (`caUrls`) and a transparency log with "
            "`majorApiVersion` 1 (`rekorTlogUrls`): PyPI cannot verify Rekor v2 entries yet.",
            title="Sigstore configuration unusable",
        ) from e
    add_timeouts(context._fulcio.session)
    context._tsa_clients = [_RetriedTimestamps(c, policy, console) for c in context._tsa_clients]  # type: ignore[misc]
    return context


def _read_trust_config(path: Path) -> ClientTrustConfig:
    from sigstore.models import ClientTrustConfig

    try:
        return ClientTrustConfig.from_json(path.read_text(encoding="utf-8"))
    except Exception as e:  # whatever the parser raises: it is the file that is wrong
        raise AttestationError(
            f"Input `sigstore-trust-config`: `{path}` is not a client trust configuration "
            f"that sigstore-python reads ({e}). Write it as `sigstore --trust-config` expects, "
            "or remove the input to use the public Sigstore instance.",
            title="Invalid input `sigstore-trust-config`",
        ) from e


def _signer(
    context: SigningContext, oidc_token: str, policy: RetryPolicy, console: Console
) -> Signer:
    """One ephemeral key and its certificate from Fulcio, for every file of the run."""
    from sigstore.oidc import IdentityError, IdentityToken
    from sigstore.sign import Signer

    try:
        identity = IdentityToken(oidc_token)
    except IdentityError as e:
        raise AttestationError(
            f"The Actions runtime gave an OIDC token for Sigstore that cannot be used: {e}. "
            "Re-run the job; if it happens again, set `attestations: false` to publish without "
            "attestations and report it.",
            title="Sigstore token unusable",
        ) from e
    signer = _call(
        lambda: Signer(identity, context, cache=True),
        service="Sigstore's certificate authority (Fulcio)",
        url=context._fulcio.url,
        what="Requesting the signing certificate (Fulcio)",
        policy=policy,
        console=console,
    )
    console.line("Got a signing certificate from Sigstore for this run's workflow.")
    return signer


def _sign(
    context: SigningContext,
    signer: Signer,
    dist: Distribution,
    *,
    policy: RetryPolicy,
    console: Console,
) -> Attested:
    from pypi_attestations import Attestation
    from pypi_attestations import AttestationError as SigningFailed
    from pypi_attestations import Distribution as Subject

    rekor = context._rekor
    add_timeouts(rekor._session)  # type: ignore[attr-defined] # one a thread, made on first use

    def attempt() -> Attestation:
        try:
            return Attestation.sign(signer, Subject(name=dist.filename, digest=dist.digests.sha256))
        except SigningFailed as e:  # the certificate or the token expired: nothing to retry
            raise AttestationError(
                f"`{dist.filename}` could not be signed: {e}. The signing certificate lives 10 "
                "minutes; re-run the job.",
                title=f"Signing {dist.filename} failed",
            ) from e

    attestation = _call(
        attempt,
        service="Sigstore's transparency log (Rekor)",
        url=getattr(rekor, "url", ""),
        policy=policy,
        console=console,
        what=f"Logging the attestation of {dist.filename} (Rekor)",
    )
    path = publish_path(dist)
    _write_atomically(path, attestation.model_dump_json())
    return Attested(
        dist.filename, path, _entry_index(attestation.verification_material.transparency_entries)
    )


class _RetriedTimestamps:
    """A timestamp authority's client whose requests follow our retry policy. A timestamp that
    still cannot be had is left out, as sigstore itself does: the log's time stands for it."""

    def __init__(self, client: Any, policy: RetryPolicy, console: Console) -> None:
        self.client = client
        self.url = client.url
        self.policy = policy
        self.console = console

    def request_timestamp(self, signature: bytes) -> Any:
        from sigstore._internal.timestamp import TimestampError

        add_timeouts(self.client._session)
        try:
            return _call(
                lambda: self.client.request_timestamp(signature),
                service="Sigstore's timestamp authority",
                url=self.url,
                what="Timestamping a signature",
                policy=self.policy,
                console=self.console,
            )
        except AttestationError as e:
            raise TimestampError(e.title) from e


def _write_atomically(path: Path, text: str) -> None:
    """Whole or not at all: a job cancelled mid-write leaves no half file to be reused."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except OSError as e:
        raise AttestationError(
            f"The attestation could not be written to `{path}`: {e}. The packages directory "
            "must be writable (the action writes each attestation beside its file).",
            title="Attestation not written",
        ) from e
    finally:
        partial.unlink(missing_ok=True)


def _call(
    operation: Callable[[], T],
    *,
    service: str,
    url: str,
    what: str,
    policy: RetryPolicy,
    console: Console,
) -> T:
    """`operation` with our retry policy: connection failures, time-outs, 5xx and 429 are tried
    again; any other failure, or the last one, is an error that names the service."""

    def attempt(_number: int) -> T:
        try:
            return operation()
        except AttestationError:
            raise
        except Exception as e:
            cause = _transient(e)
            if cause:
                raise Transient(cause) from e
            raise _refused(service, url, e) from e

    def gave_up(cause: str) -> AttestationError:
        return AttestationError(
            f"{service} at `{url}` failed {policy.attempts} times, the last time with: {cause}."
            f"\n\nNothing was uploaded: a release is never published half attested. Sigstore's "
            f"public instance reports its incidents at {STATUS_PAGE}. Re-run the job later, or "
            "set `attestations: false` to publish without attestations now.",
            title=f"{service} unavailable",
        )

    return with_retries(
        attempt,
        url=url,
        what=what,
        policy=policy,
        log=console.line,
        gave_up=gave_up,
    )


def _refused(service: str, url: str, error: Exception) -> AttestationError:
    response = _response(error)
    if response is not None:
        said = answer_text(response, limit=1000)
        answer = f"HTTP {response.status_code} {response.reason}" + (
            f":\n\n```\n{said}\n```" if said else "."
        )
    else:
        answer = f"`{type(error).__name__}`: {error}"
    return AttestationError(
        f"{service} at `{url}` refused: {answer}\n\nNothing was uploaded: a release is never "
        "published half attested. If the job's OIDC token was refused, check that this runs "
        "on GitHub-hosted runners or GitHub Enterprise Cloud (Sigstore's public instance "
        "trusts their tokens only). To publish now without attestations, set "
        "`attestations: false`.",
        title=f"{service} refused",
    )


def _transient(error: BaseException) -> str:
    """Why `error` deserves another attempt (a connection failure, a time-out, a 5xx or a 429);
    empty if it does not. sigstore and tuf wrap the `requests`/`urllib3` error they met."""
    import requests
    import urllib3.exceptions
    from tuf.api.exceptions import DownloadHTTPError, SlowRetrievalError

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, requests.ConnectionError | requests.Timeout):
            return describe_failure(seen)
        if isinstance(seen, requests.HTTPError) and seen.response is not None:
            status = seen.response.status_code
            if transient_status(status):
                return f"HTTP {status} {seen.response.reason}"
            return ""
        if isinstance(seen, DownloadHTTPError):
            return f"HTTP {seen.status_code}" if transient_status(seen.status_code) else ""
        if isinstance(seen, SlowRetrievalError):
            return "timed out"
        if isinstance(seen, urllib3.exceptions.HTTPError):  # tuf's fetcher: connection errors
            return f"connection failed ({seen})"
        seen = seen.__cause__ or seen.__context__
    return ""


def _response(error: BaseException) -> requests.Response | None:
    import requests

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, requests.HTTPError) and seen.response is not None:
            return seen.response
        seen = seen.__cause__ or seen.__context__
    return None


class _SigstoreLog(logging.Handler):
    """sigstore's own lines: its debug lines with `verbose` only, its warnings always."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.DEBUG if console.verbose else logging.WARNING)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            self.console.line(f"sigstore: {message}", style="yellow")
        else:
            self.console.detail(f"sigstore: {message}")


@contextmanager
def _sigstore_log(console: Console) -> Iterator[None]:
    handler = _SigstoreLog(console)
    logger = logging.getLogger("sigstore")
    logger.addHandler(handler)
    logger.setLevel(handler.level)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
