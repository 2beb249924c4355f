"""The console: whatever text it is given, only the commands it writes itself reach the runner.

Each test prints hostile text through one of the console's methods, in GitHub Actions and on a
laptop, and reads the output as the runner does: split at CR, LF and CRLF, each line trimmed.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable

import pytest

from publisher.console import Console
from tests.conftest import (
    HOSTILE,
    HOSTILE_TEXTS,
    Run,
    assert_masked_lines,
    assert_no_injection,
    parse_command,
)

MORE_HOSTILE = (
    *HOSTILE_TEXTS,
    f"::error::{HOSTILE}",  # the whole text, at the start of a line
    f"  \t::warning::{HOSTILE}",
    f"\u2003::notice::{HOSTILE}",  # Unicode whitespace, which .NET's TrimStart removes too
    f"\u200b::error::{HOSTILE}",
    f"##[ERROR]{HOSTILE}",  # command names are matched ignoring case
    f"\x1b[31m::error::{HOSTILE}",
    f"\r\r\n\n::error::{HOSTILE}",
)
Print = Callable[[Console, str], None]
METHODS: dict[str, Print] = {
    "line": lambda c, text: c.line(f"said: {text}"),
    "line alone": lambda c, text: c.line(text),
    "styled line": lambda c, text: c.line(text, style="bold red"),
    "detail": lambda c, text: c.detail(text),
    "notice": lambda c, text: c.notice(f"the index said {text}", title="Index"),
    "warning": lambda c, text: c.warning(text),
    "error": lambda c, text: c.error(text, title=text),
    "title": lambda c, text: c.error("message", title=f"Refused: {text}"),
    "group": lambda c, text: _group(c, text),
}


def _group(console: Console, text: str) -> None:
    with console.group(f"Files in {text}"):
        console.line("inside")


def printed(in_actions: bool, *secrets: str) -> tuple[Console, io.StringIO]:
    stream = io.StringIO()
    console = Console(stream, in_actions=in_actions)
    console.verbose = True
    for secret in secrets:
        console.mask(secret)
    return console, stream


def as_run(stream: io.StringIO) -> Run:
    return Run(0, stream.getvalue(), "", {}, "")


@pytest.mark.parametrize("in_actions", [True, False], ids=["actions", "laptop"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("text", MORE_HOSTILE)
def test_no_text_starts_a_command(in_actions: bool, method: str, text: str) -> None:
    console, stream = printed(in_actions)
    METHODS[method](console, text)

    assert_no_injection(as_run(stream))
    assert HOSTILE in stream.getvalue()  # defused, not dropped: the reader sees what was sent
    assert stream.getvalue().endswith("\n")


def test_a_line_stays_one_line() -> None:
    console, stream = printed(True)
    console.line("HTTP 503 Busy\r::error::x; retry 1 of 4")
    console.line("a\nb\r\nc\x85d\u2028e\x1b[2Jf")

    assert stream.getvalue() == (
        "HTTP 503 Busy\\r::error::x; retry 1 of 4\na\\nb\\r\\nc\\x85d\\u2028e\\x1b[2Jf\n"
    )


def test_a_styled_line_stays_one_line_whatever_its_length() -> None:
    console, stream = printed(True)
    console.line("x" * 500 + "\ty\r::error::z\u2029", style="dim")

    output = stream.getvalue()
    assert output.count("\n") == 1
    assert output.endswith("\n")
    assert "\r" not in output
    assert "\u2029" not in output


def test_a_line_that_would_be_a_command_is_defused_visibly() -> None:
    console, stream = printed(True)
    console.line("  ::error::x")
    console.line("see ##[error]x")

    assert stream.getvalue() == "\\  ::error::x\nsee ##[\\error]x\n"


def test_detail_shows_each_line_of_a_body() -> None:
    console, stream = printed(True)
    console.detail("first\r\nsecond\nthird\rstill the third")

    assert stream.getvalue().split("\n") == [
        "\x1b[2m  | first\x1b[0m",
        "\x1b[2m  | second\x1b[0m",
        "\x1b[2m  | third\\rstill the third\x1b[0m",
        "",
    ]


def test_command_title_and_message_are_escaped_as_the_runner_unescapes() -> None:
    console, stream = printed(True)
    console.error("one\r\ntwo\rthree\n%0A 100%\x1b[2J", title="Refused: a, b\n::error::c")

    line = stream.getvalue()
    assert line == (
        "::error title=Refused%3A a%2C b\\n%3A%3Aerror%3A%3Ac::"
        "one%0D%0Atwo%0Dthree%0A%250A 100%25\\x1b[2J\n"
    )
    assert parse_command(line.rstrip("\n")) == (
        "error",
        {"title": "Refused: a, b\\n::error::c"},
        "one\r\ntwo\rthree\n%0A 100%\\x1b[2J",
    )


def test_group_title_is_escaped() -> None:
    console, stream = printed(True)
    with console.group("dist\r::error::x"):
        pass

    assert stream.getvalue() == "::group::dist\\r::error::x\n::endgroup::\n"


def test_text_that_cannot_be_encoded_is_escaped_not_a_crash() -> None:
    """A lone surrogate from a JSON answer, on a strict UTF-8 stream."""
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", write_through=True)
    console = Console(stream, in_actions=True)
    console.line("bad \ud800 text")
    console.error("bad \udfff", title="bad \ud800")

    assert raw.getvalue().decode() == ("bad \\ud800 text\n::error title=bad \\ud800::bad \\udfff\n")


SECRET = "first-line-of-it\r\nsecond-line-of-it\rthird-line-of-it\n\n  fourth-line  \n"
PIECES = ("first-line-of-it", "second-line-of-it", "third-line-of-it", "fourth-line")


def test_a_multi_line_secret_is_masked_line_by_line() -> None:
    _, stream = printed(True, SECRET)

    lines = stream.getvalue().split("\n")
    assert lines[0] == (
        "::add-mask::first-line-of-it%0D%0Asecond-line-of-it%0Dthird-line-of-it%0A%0A"
        "  fourth-line  %0A"
    )
    assert lines[1:] == [f"::add-mask::{piece}" for piece in PIECES] + [""]
    assert_masked_lines(as_run(stream), SECRET)


@pytest.mark.parametrize("in_actions", [True, False], ids=["actions", "laptop"])
@pytest.mark.parametrize("method", METHODS)
def test_no_part_of_a_secret_is_printed(in_actions: bool, method: str) -> None:
    console, stream = printed(in_actions, SECRET)
    for text in (SECRET, *PIECES, f"x{PIECES[1]}y", SECRET.replace("\r\n", "\n")):
        METHODS[method](console, text)

    assert_no_injection(as_run(stream), SECRET)


def test_redact_removes_the_secret_and_each_line() -> None:
    console, _ = printed(False, SECRET, "ab")

    assert console.redact(f"<{SECRET}>") == "<***>"
    assert console.redact(f"<{PIECES[0]}> <{PIECES[3]}> ab") == "<***> <***> ***"


def test_a_secret_with_escapes_in_it_is_masked_as_it_is() -> None:
    """`%0A` in a secret is not a line break: the runner must mask the text itself."""
    _, stream = printed(True, "pass%0Aword%25")

    assert stream.getvalue() == "::add-mask::pass%250Aword%2525\n"


def test_blank_secrets_and_repeats_are_not_registered() -> None:
    console, stream = printed(True, "", "  ", "\n", "same-secret", "same-secret")

    assert stream.getvalue() == "::add-mask::same-secret\n"
    assert console.redact("a  b") == "a  b"


def test_a_worker_keeps_every_line_of_a_secret() -> None:
    console, _ = printed(True, SECRET)
    copy = pickle.loads(pickle.dumps(console))  # noqa: S301 - our own object

    assert copy.redact(PIECES[2]) == "***"
