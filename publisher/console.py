"""The log: GitHub workflow commands, masking, and rich's colours for the rest.

Every line goes through `redact`, so a registered secret cannot reach the log even where
`::add-mask::` means nothing (on a laptop). GitHub's log viewer shows ANSI colours but is not a
terminal: no progress bars, no cursor tricks, no wrapping.

Text from outside (an index's answers, file names, secrets) is data: the runner ends a line at
CR, LF or CRLF and runs any line that starts with `::` (after leading whitespace) or holds `##[`
as a workflow command (actions/runner, `ActionCommand.TryParseV2` and `TryParse`). So only the
commands written here reach it as commands; in every other line a line break or a control
character is shown as an escape (`\\r`), a leading `::` gets a backslash in front of the line,
and `##[` becomes `##[\\` (as the runner defuses its own markers).
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import rich.console

LINE_BREAK = re.compile(r"\r\n|\r|\n")  # where the runner ends a line
# Shown as escapes wherever they are printed: controls (ESC would restyle the log), separators
# that some readers take for line breaks, bidirectional overrides that reorder what is shown,
# and lone surrogates, which a UTF-8 stream cannot even write. Tabs stay.
_UNPRINTABLE = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_OLD_COMMAND = re.compile(r"##\[")


class Console:
    def __init__(self, stream: TextIO | None = None, *, in_actions: bool) -> None:
        self.stream = stream or sys.stdout
        self.in_actions = in_actions
        self.verbose = False
        self._secrets: list[str] = []  # longest first: a secret goes before its lines
        self._rich: rich.console.Console | None = None

    def __getstate__(self) -> dict[str, object]:
        """For a worker process (`publisher.worker`): the settings and secrets, not the stream."""
        return {"in_actions": self.in_actions, "verbose": self.verbose, "secrets": self._secrets}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.stream = sys.stdout
        self.in_actions = bool(state["in_actions"])
        self.verbose = bool(state["verbose"])
        self._secrets = list(state["secrets"])
        self._rich = None

    def mask(self, secret: str) -> None:
        """Register a secret: masked by the runner from now on, and redacted by us everywhere.

        The runner masks a value only within one line of the log, so a secret with line breaks
        is registered whole and each of its lines on its own `::add-mask::` line (as the runner
        itself adds the lines of an escaped value). Like the runner, every line counts, however
        short. Nothing is printed before these lines."""
        values = [secret, *(piece.strip() for piece in LINE_BREAK.split(secret))]
        for value in dict.fromkeys(values):
            if not value.strip() or value in self._secrets:
                continue
            self._secrets.append(value)
            self._secrets.sort(key=len, reverse=True)
            if self.in_actions:
                self._write(f"::add-mask::{_escape_data(value)}")

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def line(self, text: str = "", style: str | None = None) -> None:
        """One line of the log, with a rich style (`"green"`, `"bold red"`) or plain: a line
        break in `text` is shown as an escape, never started."""
        text = self.redact(safe_line(self.redact(text)))
        if style is None:
            self._write(text)
            return
        from rich.text import Text

        self._console().print(Text(text, style=style))
        self.stream.flush()

    def detail(self, text: str) -> None:
        """Lines shown only with `verbose: true`: a text from outside (an index's answer), one
        log line for each of its lines."""
        if self.verbose:
            for part in _lines(text):
                self.line(f"  | {part}", style="dim")

    def notice(self, message: str, title: str = "") -> None:
        self._command("notice", message, title, style="cyan")

    def warning(self, message: str, title: str = "") -> None:
        self._command("warning", message, title, style="yellow")

    def error(self, message: str, title: str = "") -> None:
        self._command("error", message, title, style="bold red")

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        if self.in_actions:
            self._write(f"::group::{_escape_data(_printable(self.redact(title)))}")
        else:
            self.line(title, style="bold")
        try:
            yield
        finally:
            if self.in_actions:
                self._write("::endgroup::")

    def _command(self, kind: str, message: str, title: str, style: str) -> None:
        message = _printable(self.redact(message), keep="\r\n")
        title = _printable(self.redact(title))  # a title is one line
        if self.in_actions:
            properties = f" title={_escape_property(title)}" if title else ""
            self._write(f"::{kind}{properties}::{_escape_data(message)}")
        else:
            heading = f"{kind}: {title}" if title else f"{kind}:"
            self.line(heading, style=style)
            for part in _lines(message) if message else []:
                self.line(f"  {part}")

    def traceback(self, error: BaseException) -> None:
        """A bug's traceback on stderr, which the runner logs too: secrets redacted, and each
        line made safe (an exception's message may quote an index)."""
        import traceback

        for line in _lines("".join(traceback.format_exception(error))):
            sys.stderr.write(self.redact(safe_line(self.redact(line))) + "\n")
        sys.stderr.flush()

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def _console(self) -> rich.console.Console:
        if self._rich is None:
            import rich.console

            self._rich = rich.console.Console(
                file=self.stream,
                force_terminal=True if self.in_actions else None,
                color_system="standard" if self.in_actions else "auto",
                highlight=False,
                emoji=False,
                soft_wrap=True,
            )
        return self._rich


def safe_line(text: str) -> str:
    """`text` as one line that the runner shows and never runs: line breaks and controls as
    escapes, a leading `::` behind a backslash, `##[` as `##[\\`.

    The runner trims the line start (.NET's whitespace, a subset of Python's) before looking
    for `::`; format characters and marks are skipped here too, should a reader ignore them."""
    text = _OLD_COMMAND.sub(r"##[\\", _printable(text))
    start = next((i for i, ch in enumerate(text) if not _blank(ch)), len(text))
    return "\\" + text if text.startswith("::", start) else text


def human_size(size: float) -> str:
    """Decimal units, as pip and PyPI show sizes."""
    if size < 1000:
        return f"{size:.0f} B"
    for unit in ("kB", "MB", "GB"):
        size /= 1000
        if size < 1000 or unit == "GB":
            break
    return f"{size:.1f} {unit}"


def _lines(text: str) -> list[str]:
    """The lines of a text that has some (a body, a message), as `splitlines` but at LF and
    CRLF only: a bare CR stays in its line, to be shown there as an escape."""
    lines = re.split(r"\r?\n", text)
    return lines[:-1] if len(lines) > 1 and not lines[-1] else lines


def _printable(text: str, keep: str = "") -> str:
    return _UNPRINTABLE.sub(
        lambda m: m[0] if m[0] in keep else m[0].encode("unicode_escape").decode("ascii"),
        text,
    )


def _blank(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch)[0] in "CMZ"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
