"""What a person reads and a workflow uses after the step: outputs, step summary, last log lines.

Outputs (`GITHUB_OUTPUT`, multi-line form with a random delimiter):
    files         JSON list: filename, size, sha256, blake2_256, md5, status, url
    release-url   the release page on PyPI/TestPyPI, empty for other indexes
    dry-run       "true" or "false"
    attestations  the attestation files that went (or would go) up, one path a line
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.console import Console, human_size
from publisher.context import RunContext
from publisher.errors import PublishError
from publisher.index import index_name

if TYPE_CHECKING:  # a failure before publishing is reported without importing twine or requests
    from publisher.attestations import Attested
    from publisher.publish import Report
    from publisher.results import FileResult

STATUS_ICONS = {
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
    outputs = {
        "files": json.dumps(files_output(report.results)),
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
        _append(context.summary_path, console.redact(summary_markdown(report)))


def write_failure(error: PublishError, context: RunContext, console: Console) -> None:
    """A failure before anything was published: the error, empty outputs, a summary section."""
    console.error(error.markdown, title=error.title)
    if context.output_path is not None:
        _append(
            context.output_path,
            _outputs_text({"files": "[]", "release-url": "", "attestations": ""}),
        )
    if context.summary_path is not None:
        _append(context.summary_path, console.redact(_failure_section(error)))


def summary_markdown(report: Report) -> str:
    index = index_name(report.repository_url)
    lines = []
    if report.dry_run.enabled:
        lines += [
            f"## 🧪 Dry run for {index}: nothing was uploaded",
            "",
            f"> [!NOTE]\n> {report.dry_run.reason}",
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
            status = f"{STATUS_ICONS.get(r.status, '')} {r.status}"
            if r.note:
                status += f" ({r.note})"
            if r.served is not None:
                status += ", served" if r.served else ", **not served yet**"
            name = (
                f"[`{r.distribution.filename}`]({r.url})"
                if r.url
                else f"`{r.distribution.filename}`"
            )
            row = (
                f"| {name} | {human_size(r.distribution.size)} | `{r.distribution.digests.sha256}` "
                f"| {status} |"
            )
            if column:
                row += f" {_attestation_cell(r, attested.get(r.distribution.filename))} |"
            lines.append(row)
        lines.append("")
    lines.append(f"Index: `{report.repository_url}`")
    if report.release_url and (_published(report) or report.dry_run.enabled):
        word = "Release" if _published(report) else "Release page (after publishing)"
        lines.append(f"{word}: {report.release_url}")
    if report.exchange:
        lines.append("")
        lines.append(report.exchange)
    if report.index_note:
        lines.append("")
        lines.append(f"Could not check what the index holds: {report.index_note}.")
    if report.verified is not None:
        lines.append("")
        if not any(r.status == "uploaded" for r in report.results):
            lines.append("Nothing needed uploading: every file is on the index already.")
        elif report.verified:
            lines.append("Every file uploaded is served by the index.")
        else:
            lines.append("Not every file uploaded is served yet (see the warning).")
    if report.attestation_note:
        lines.append("")
        lines.append(f"Attestations: {report.attestation_note}")
    lines.append("")
    if report.error is not None:
        lines.append(_failure_section(report.error))
    return "\n".join(lines) + "\n"


def _attestation_cell(result: FileResult, attested: Attested | None) -> str:
    """How the file is attested: the transparency-log entry of its publish attestation, and the
    other attestation files that went with it."""
    parts = []
    if attested is not None:
        index = f"log index {attested.log_index}" if attested.log_index is not None else "signed"
        entry = f"[{index}]({attested.log_url})" if attested.log_url else index
        parts.append(f"🔏 {entry}" + (" (reused)" if attested.reused else ""))
    others = [
        p.name
        for p in result.distribution.attestation_files
        if attested is None or p != attested.path
    ]
    parts += [f"`{name}`" for name in others]
    return "<br>".join(parts) or "none"


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


def _outputs_text(outputs: dict[str, str]) -> str:
    parts = []
    for name, value in outputs.items():
        delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
        parts.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
    return "".join(parts)


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(text)
