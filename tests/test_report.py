"""The files the runner reads after the step: written the same on every platform."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from publisher.console import Console
from publisher.context import RunContext
from publisher.errors import PublishError
from publisher.report import write_failure
from tests.conftest import parse_outputs


def test_outputs_and_summary_end_their_lines_in_lf_on_every_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Text mode would write CRLF on Windows; the runner splits GITHUB_OUTPUT at LF, as bash
    (`echo >> "$GITHUB_OUTPUT"`) writes it there. What this platform's text mode would do is
    not what is checked: how the files are opened is."""
    opened: list[dict[str, Any]] = []
    original = Path.open

    def open_(self: Path, *args: Any, **kwargs: Any) -> Any:
        opened.append({"path": self, **kwargs})
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_)
    context = RunContext(True, "", None, tmp_path / "output.txt", tmp_path / "summary.md")
    error = PublishError("Line one.\nLine two.", title="Failed")

    write_failure(error, context, Console(io.StringIO(), in_actions=True))

    assert {o["path"].name for o in opened} == {"output.txt", "summary.md"}
    assert all(o.get("newline") == "\n" for o in opened)
    written = (tmp_path / "output.txt").read_bytes()
    assert b"\r" not in written
    assert parse_outputs(written.decode()) == {"files": "[]", "release-url": "", "attestations": ""}
