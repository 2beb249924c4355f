"""Every failure a user can cause or meet, as one family of `PublishError`s.

Each error has a short title (the `::error title=...::` and the step summary heading) and a
Markdown explanation that says what happened and what to change. The entry point turns a
`PublishError` into exit code 1; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class PublishError(Exception):
    """Base class: a failure that is explained to the user, never a bug."""

    title = "Publishing failed"

    def __init__(self, markdown: str, *, title: str | None = None) -> None:
        super().__init__(markdown)
        self.markdown = markdown
        if title is not None:
            self.title = title


class InternalError(PublishError):
    """A bug in the action, met after the first upload request: the report still lists each
    file as it is (the traceback is in the log)."""

    title = "Internal error"

    def __init__(self, bug: BaseException) -> None:
        super().__init__(
            f"This is a bug in the action, not in your workflow (`{type(bug).__name__}`): "
            "please report it with the traceback from the step's log. The files listed as "
            "uploaded are on the index; those listed as unknown may be.",
        )


class InputError(PublishError):
    """An input of the step (or a command-line flag) has a value we cannot use."""

    title = "Invalid input"

    def __init__(self, name: str, value: str, problem: str) -> None:
        shown = f"`{value}`" if value else "an empty value"
        super().__init__(f"Input `{name}` got {shown}: {problem}", title=f"Invalid input `{name}`")
        self.name = name


class DistributionError(PublishError):
    """The packages directory holds nothing to publish, or a file that is not a distribution."""

    title = "No valid distributions"


class MetadataError(PublishError):
    """A distribution's metadata would be refused or badly rendered by the index."""

    title = "Metadata check failed"


class TrustedPublishingError(PublishError):
    """The OIDC token could not be had, or the index would not exchange it."""

    title = "Trusted publishing failed"


class AttestationError(PublishError):
    """A distribution could not be attested, or an attestation beside it does not match it."""

    title = "Attestations failed"


class IndexRefused(PublishError):
    """The index answered something we cannot go on from (after any retries)."""

    title = "The index refused the request"


class CertificateNotTrusted(PublishError):
    """A server (or a proxy in its place) presented a certificate that does not verify: the
    explanation names the certificate and the `ca-certificates` input (publisher.network)."""

    title = "TLS certificate not trusted"


class RedirectRefused(IndexRefused):
    """A redirect is the sign of a wrong or hostile URL: credentials must not follow it."""

    title = "Redirect refused"

    def __init__(self, url: str, location: str) -> None:
        self.location = location
        super().__init__(
            f"`{url}` answered with a redirect to `{location}`. Redirects are refused because "
            "credentials must only ever go to the URL you configured. If the index really moved, "
            "set `repository-url` to its new upload URL."
        )


class UploadError(PublishError):
    """Some files could not be uploaded. `uploaded`, `not_uploaded` and `unknown` (an upload cut
    off by a cancellation: it may or may not have landed) say which."""

    title = "Upload failed"

    def __init__(
        self,
        markdown: str,
        *,
        title: str | None = None,
        uploaded: tuple[str, ...] = (),
        not_uploaded: tuple[str, ...] = (),
        unknown: tuple[str, ...] = (),
    ) -> None:
        lines = [markdown]
        if uploaded or not_uploaded or unknown:
            lines.append("")
            lines.append("Uploaded: " + (", ".join(f"`{f}`" for f in uploaded) or "none") + ".")
            lines.append(
                "**Not uploaded**: " + (", ".join(f"`{f}`" for f in not_uploaded) or "none") + "."
            )
            if unknown:
                lines.append(
                    "**Unknown, check the index**: "
                    + ", ".join(f"`{f}`" for f in unknown)
                    + " (cut off while uploading)."
                )
            if uploaded or unknown:
                lines.append(
                    "Re-running the job with `skip-existing: true` publishes the rest "
                    "and skips what is already there."
                )
        super().__init__("\n".join(lines), title=title)
        self.uploaded = uploaded
        self.not_uploaded = not_uploaded
        self.unknown = unknown
