"""The log: GitHub workflow commands, masking, and rich's colours for the rest.

Every line goes through `redact`, so a registered secret cannot reach the log even where
`::add-mask::` means nothing (on a laptop). GitHub's log viewer shows ANSI colours but is not a
terminal: no progress bars, no cursor tricks, no wrapping.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import rich.console


class Console:
    def __init__(self, stream: TextIO | None = None, *, in_actions: bool) -> None:
        self.stream = stream or sys.stdout
        self.in_actions = in_actions
        self.verbose = False
        self._secrets: list[str] = []
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
        """Register a secret: masked by the runner from now on, and redacted by us everywhere."""
        if not secret or secret in self._secrets:
            return
        self._secrets.append(secret)
        if self.in_actions:
            self._write(f"::add-mask::{secret}")

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def line(self, text: str = "", style: str | None = None) -> None:
        """A line of the log, with a rich style (`"green"`, `"bold red"`) or plain."""
        text = self.redact(text)
        if style is None:
            self._write(text)
            return
        from rich.text import Text

        self._console().print(Text(text, style=style))
        self.stream.flush()

    def detail(self, text: str) -> None:
        """A line shown only with `verbose: true`."""
        if self.verbose:
            for part in text.splitlines() or [""]:
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
            self._write(f"::group::{self.redact(title)}")
        else:
            self.line(title, style="bold")
        try:
            yield
        finally:
            if self.in_actions:
                self._write("::endgroup::")

    def _command(self, kind: str, message: str, title: str, style: str) -> None:
        message = self.redact(message)
        title = self.redact(title)
        if self.in_actions:
            properties = f" title={_escape_property(title)}" if title else ""
            self._write(f"::{kind}{properties}::{_escape_data(message)}")
        else:
            heading = f"{kind}: {title}" if title else f"{kind}:"
            self.line(heading, style=style)
            for part in message.splitlines():
                self.line(f"  {part}")

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


def human_size(size: float) -> str:
    """Decimal units, as pip and PyPI show sizes."""
    if size < 1000:
        return f"{size:.0f} B"
    for unit in ("kB", "MB", "GB"):
        size /= 1000
        if size < 1000 or unit == "GB":
            break
    return f"{size:.1f} {unit}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
