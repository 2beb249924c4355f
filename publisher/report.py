"""What a person reads and a workflow uses after the step: outputs, step summary, last log lines.

Outputs (`GITHUB_OUTPUT`, multi-line form with a random delimiter):
    files         JSON list: filename, size, sha256, blake2_256, md5, status, url
    release-url   the release page on PyPI/TestPyPI, empty for other indexes
    dry-run       "true" or "false"
    attestations  the attestation files that went (or would go) up, one path a line

Text from outside (file names, an index's notes and URLs) is escaped where it goes: a table cell
must stay a cell of its row, a note must not become a link or an HTML tag, and no line of the
summary may look like a workflow command (`publisher.console.safe_line`).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from publisher.console import LINE_BREAK, Console, human_size, safe_line
from publisher.context import RunContext
from publisher.errors import PublishError
from publisher.index import index_name

if TYPE_CHECKING:  # a failure before publishing is reported without importing twine or requests
    from publisher.values import Attested, FileResult, Report

OUTPUT_NAMES = ("files", "release-url", "dry-run", "verified", "attestations")

STATUS_ICONS = {  # by `values.Status`, which a failure before publishing never loads
    "uploaded": "✅",
    "already-there": "☑️",
    "skipped": "⏭️",
    "dry-run": "🧪",
    "failed": "❌",
    "unknown": "❓",
}


def files_output(results: Iterable[FileResult]) -> list[dict[str, object]]:
    return [
        {
            "filename": r.distribution.filename,
            "size": r.distribution.size,
            "sha256": r.distribution.digests.sha256,
            "blake2_256": r.distribution.digests.blake2_256,
            "md5": r.distribution.digests.md5,
            "status": r.status,
            "url": r.url,
        }
        for r in results
    ]


def write_report(report: Report, context: RunContext, console: Console) -> None:
    _closing_lines(report, console)
    if report.error is not None:
        console.error(report.error.markdown, title=report.error.title)
    outputs = {  # OUTPUT_NAMES, which action.yml declares
        "files": _json_output(files_output(report.results)),
        "release-url": report.release_url if _published(report) else "",
        "dry-run": "true" if report.dry_run.enabled else "false",
        "verified": "" if report.verified is None else str(report.verified).lower(),
        "attestations": "\n".join(
            str(path) for r in report.results for path in r.distribution.attestation_files
        ),
    }
    if context.output_path is not None:
        _append(context.output_path, _outputs_text(outputs))
    if context.summary_path is not None:
        _append(context.summary_path, _summary_text(console.redact(summary_markdown(report))))


def write_failure(error: PublishError, context: RunContext, console: Console) -> None:
    """A failure before anything was published: the error, empty outputs, a summary section."""
    console.error(error.markdown, title=error.title)
    if context.output_path is not None:
        _append(
            context.output_path,
            _outputs_text({"files": "[]", "release-url": "", "attestations": ""}),
        )
    if context.summary_path is not None:
        _append(context.summary_path, _summary_text(console.redact(_failure_section(error))))


def summary_markdown(report: Report) -> str:
    from publisher.values import Status  # loaded by then: the run published

    index = _inline(index_name(report.repository_url))
    lines = []
    if report.dry_run.enabled:
        lines += [
            f"## 🧪 Dry run for {index}: nothing was uploaded",
            "",
            f"> [!NOTE]\n> {_inline(report.dry_run.reason)}",
            "",
        ]
    else:
        lines += [f"## 📦 Publishing to {index}", ""]
    if report.results:
        attested = {a.filename: a for a in report.attestations}
        column = bool(attested) or any(r.distribution.attestation_files for r in report.results)
        lines += [
            "| File | Size | SHA256 | Status |" + (" Attestation |" if column else ""),
            "| --- | --- | --- | --- |" + (" --- |" if column else ""),
        ]
        for r in report.results:
            row = _file_row(r)
            if column:
                row += f" {_attestation_cell(r, attested.get(r.distribution.filename))} |"
            lines.append(row)
        lines.append("")
    lines.append(f"Index: {_code(report.repository_url)}")
    if report.release_url and (_published(report) or report.dry_run.enabled):
        word = "Release" if _published(report) else "Release page (after publishing)"
        lines.append(f"{word}: {_inline(report.release_url)}")
    if report.exchange:
        lines.append("")
        lines.append(_inline(report.exchange))
    if report.index_note:
        lines.append("")
        lines.append(f"Could not check what the index holds: {_inline(report.index_note)}.")
    if report.verified is not None:
        lines.append("")
        if not any(r.status is Status.UPLOADED for r in report.results):
            lines.append("Nothing needed uploading: every file is on the index already.")
        elif report.verified:
            lines.append("Every file uploaded is served by the index.")
        else:
            lines.append("Not every file uploaded is served yet (see the warning).")
    if report.attestation_note:
        lines.append("")
        lines.append(f"Attestations: {_inline(report.attestation_note)}")
    lines.append("")
    if report.error is not None:
        lines.append(_failure_section(report.error))
    return "\n".join(lines) + "\n"


def _file_row(r: FileResult) -> str:
    """A row of the table but for its attestation cell: every text in it escaped for its cell."""
    status = f"{STATUS_ICONS.get(r.status, '')} {_cell(r.status)}"
    if r.note:
        status += f" ({_cell(r.note)})"
    if r.served is not None:
        status += ", served" if r.served else ", **not served yet**"
    name = _link(_code(r.distribution.filename), r.url)
    sha256 = _code(r.distribution.digests.sha256)
    return f"| {name} | {human_size(r.distribution.size)} | {sha256} | {status} |"


def _attestation_cell(result: FileResult, attested: Attested | None) -> str:
    """How the file is attested: the transparency-log entry of its publish attestation, and the
    other attestation files that went with it."""
    parts = []
    if attested is not None:
        index = "signed" if attested.log_index is None else f"log index {int(attested.log_index)}"
        entry = _link(index, attested.log_url)
        parts.append(f"🔏 {entry}" + (" (reused)" if attested.reused else ""))
    others = [
        p.name
        for p in result.distribution.attestation_files
        if attested is None or p != attested.path
    ]
    parts += [_code(name) for name in others]
    return "<br>".join(parts) or "none"


# What Markdown or HTML could read as syntax in plain text: `|` ends a cell, `[...](...)` is a
# link, `<...>` a tag, `&...;` an entity, `*`, `_`, `~` and backticks change the text.
_MARKDOWN_SYNTAX = re.compile(r"([\\`*_\[\]<>|&~])")


def _cell(text: str) -> str:
    """Plain text from outside in a table cell: on one line, its Markdown syntax escaped."""
    return _MARKDOWN_SYNTAX.sub(r"\\\1", _inline(text))


def _code(text: str) -> str:
    """Text from outside as inline code: on one line, between more backticks than any run of
    them in it, its `|` escaped (a table cuts its cells before it reads code spans)."""
    text = _inline(text)
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    escaped = text.replace("|", "\\|")
    return f"{fence}{pad}{escaped}{pad}{fence}"


def _link(label: str, url: str) -> str:
    """`label` linked to `url` if it is an http(s) URL, percent-encoded so that nothing in it
    can end the link or the cell; `label` alone for any other URL (`javascript:`, none)."""
    if not re.match(r"https?://", url, re.IGNORECASE):
        return label
    quoted = quote(url, safe=":/?#&=+%;@!$,~*'", errors="backslashreplace")
    return f"[{label}]({quoted})"


def _inline(text: str) -> str:
    """A text that keeps its Markdown (ours, with a name or an answer from outside in it) on
    one line: a line break in it could end a table row or a quote, or start a heading."""
    return LINE_BREAK.sub(" ", text)


def _summary_text(markdown: str) -> str:
    """The summary as written: no line that looks like a workflow command, no control
    character (shown as escapes, as in the log)."""
    return "\n".join(safe_line(line) for line in markdown.split("\n"))


def _failure_section(error: PublishError) -> str:
    return f"### ❌ {error.title}\n\n{error.markdown}\n"


def _published(report: Report) -> bool:
    return any(r.on_index for r in report.results)


def _closing_lines(report: Report, console: Console) -> None:
    counts: dict[str, int] = {}
    for r in report.results:
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in counts.items()) or "no files"
    if report.error is not None and not report.results:
        return
    if report.dry_run.enabled:
        console.line(f"Dry run: nothing was uploaded ({summary}).", style="bold cyan")
    elif report.error is None:
        console.line(f"Done: {summary}.", style="bold green")
    if report.release_url and _published(report):
        console.line(f"Release: {report.release_url}")


def _json_output(value: object) -> str:
    """JSON for an output, on one line, in which no `##[` is left (a URL from the index could
    have one): a step that echoes the output must not run it as a command. `\\u005b` is the
    same `[` to any JSON reader; `##` occurs only inside strings."""
    return json.dumps(value).replace("##[", "##\\u005b")


def _outputs_text(outputs: dict[str, str]) -> str:
    """The multi-line form, with a random delimiter that is no line of its value. A CR in a
    value (a path could have one) is shown as `\\r`: a reader of the file that ends lines at
    CR, as the runner's log does, must not see a line of it end there."""
    parts = []
    for name, value in outputs.items():
        value = value.replace("\r", "\\r")
        delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
        while delimiter in value.split("\n"):  # cannot happen: 128 random bits
            delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
        parts.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
    return "".join(parts)


def _append(path: Path, text: str) -> None:
    """Lines end in LF on every platform, as `echo >> "$GITHUB_OUTPUT"` writes them in Git Bash
    on Windows: the runner splits these files at LF (text mode would write CRLF there)."""
    with path.open("a", encoding="utf-8", newline="\n") as f:
        f.write(text)
