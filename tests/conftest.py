"""Fixtures: the stand-in servers, real distributions, and the action run as the runner runs it."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.servers import OidcRuntime, Warehouse
from tests.sigstore_standin import Sigstore, sigstore_fixture  # noqa: F401 (the `sigstore` fixture)

ROOT = Path(__file__).resolve().parent.parent


def load_script(path: Path) -> ModuleType:
    """One of the action's scripts (action/launch.py, docker/fetch_uv.py), imported from its
    file: they are run as programs, not imported from a package."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


README = """\
# example-pkg

An example package, published by the tests.
"""


def build_dists(
    directory: Path,
    name: str = "example-pkg",
    version: str = "1.0.0",
    *,
    description: str = README,
    content_type: str | None = "text/markdown",
    code: str = "VALUE = 42\n",
) -> list[Path]:
    """A real wheel and sdist, as a build backend would write them."""
    directory.mkdir(parents=True, exist_ok=True)
    module = re.sub(r"[-.]+", "_", name).lower()
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: An example\n"
    metadata += "Requires-Python: >=3.8\n"
    if content_type:
        metadata += f"Description-Content-Type: {content_type}\n"
    metadata += f"\n{description}" if description else ""

    wheel = directory / f"{module}-{version}-py3-none-any.whl"
    write_wheel(wheel, module, version, metadata, code.encode())
    sdist = directory / f"{module}-{version}.tar.gz"
    root = f"{module}-{version}"
    pyproject = f'[project]\nname = "{name}"\nversion = "{version}"\n'
    with tarfile.open(sdist, "w:gz") as tf:
        for member, data in {
            f"{root}/PKG-INFO": metadata.encode(),
            f"{root}/pyproject.toml": pyproject.encode(),
            f"{root}/src/{module}/__init__.py": code.encode(),
        }.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tf.addfile(info, io.BytesIO(data))
    return [sdist, wheel]


def write_wheel(
    path: Path, module: str, version: str, metadata: str, code: bytes, data: bytes = b""
) -> None:
    """A wheel as a build backend writes it: the module, its dist-info, a RECORD of hashes; the
    tag from the file name. `data`, if any, goes in a file of its own, stored as is."""
    tag = "-".join(path.name.removesuffix(".whl").split("-")[-3:])
    dist_info = f"{module}-{version}.dist-info"
    members = {
        f"{module}/__init__.py": code,
        f"{dist_info}/METADATA": metadata.encode(),
        f"{dist_info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: {tag}\n".encode()
        ),
    }
    if data:
        members[f"{module}/data.bin"] = data
    record = []
    for member, content in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
        record.append(f"{member},sha256={digest},{len(content)}")
    record.append(f"{dist_info}/RECORD,,")
    members[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, content in members.items():
            compress = zipfile.ZIP_STORED if member.endswith("data.bin") else zipfile.ZIP_DEFLATED
            zf.writestr(member, content, compress_type=compress)


# What cibuildwheel makes for one release: a wheel per Python and platform.
PYTHONS = ("cp39", "cp310", "cp311", "cp312", "cp313", "cp314")
PLATFORMS = (
    "manylinux_2_17_x86_64.manylinux2014_x86_64",
    "manylinux_2_17_aarch64.manylinux2014_aarch64",
    "musllinux_1_2_x86_64",
    "musllinux_1_2_aarch64",
    "macosx_10_13_x86_64",
    "macosx_11_0_arm64",
    "win_amd64",
    "win32",
)


def build_release(directory: Path, wheels: int, *, payload: int = 0) -> list[Path]:
    """An sdist and `wheels` platform wheels of example-pkg 1.0.0, in the order they are
    published (sorted by name); each wheel holds `payload` random bytes besides the code."""
    sdist = next(p for p in build_dists(directory) if p.name.endswith(".tar.gz"))
    (directory / "example_pkg-1.0.0-py3-none-any.whl").unlink()
    metadata = (
        "Metadata-Version: 2.1\nName: example-pkg\nVersion: 1.0.0\nSummary: An example\n"
        f"Description-Content-Type: text/markdown\n\n{README}"
    )
    tags = [(py, platform) for py in PYTHONS for platform in PLATFORMS][:wheels]
    assert len(tags) == wheels, f"at most {len(PYTHONS) * len(PLATFORMS)} wheels"
    for py, platform in tags:
        path = directory / f"example_pkg-1.0.0-{py}-{py}-{platform}.whl"
        write_wheel(path, "example_pkg", "1.0.0", metadata, b"VALUE = 42\n", os.urandom(payload))
    return sorted([sdist, *directory.glob("*.whl")])


def rebuild_with_other_content(dists: list[Path]) -> list[Path]:
    """The same file names with other bytes: a different build of the same version, made where
    no attestation of the earlier build lies about (as in a fresh job)."""
    for path in dists:
        path.unlink()
    for path in dists[0].parent.glob("*.attestation"):
        path.unlink()
    return build_dists(dists[0].parent, code="VALUE = 43\n")


def pip_install(index_url: str, target: Path, requirement: str) -> None:
    """Install `requirement` from `index_url` alone, as a user of the index would."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--index-url",
            index_url,
            "--target",
            str(target),
            requirement,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str

    @property
    def log(self) -> str:
        return self.stdout + self.stderr

    def files(self) -> list[dict[str, Any]]:
        return json.loads(self.outputs["files"])  # type: ignore[no-any-return]


def parse_outputs(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT as the runner reads it: `name=value` lines and `name<<DELIM` blocks."""
    outputs: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line:
            name, delimiter = line.split("<<", 1)
            value = []
            for inner in lines:
                if inner == delimiter:
                    break
                value.append(inner)
            else:
                raise AssertionError(f"unterminated output {name}")
            outputs[name] = "\n".join(value)
        elif "=" in line:
            name, value_ = line.split("=", 1)
            outputs[name] = value_
    return outputs


class Background:
    """A step's process started in the background as the runner starts it, its output collected
    as it comes, to be signalled when a test says; its outputs and summary (`tmp`'s
    output.txt and summary.md, emptied first) read after."""

    def __init__(
        self, command: list[str], tmp: Path, cwd: Path, env: dict[str, str], **popen: Any
    ) -> None:
        self.tmp = tmp
        for name in ("output.txt", "summary.md"):
            (tmp / name).write_text("")
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            **popen,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        self.lines.extend(self.process.stdout or ())

    def wait_for(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, "the step ended:\n" + self.log
            assert time.monotonic() < deadline, "never got there:\n" + self.log
            time.sleep(0.01)

    def signal(self, number: int) -> float:
        """Send it `number`; the seconds until the process ended."""
        signalled = time.monotonic()
        self.process.send_signal(number)
        self.process.wait(timeout=30)
        self.reader.join(timeout=5)
        return time.monotonic() - signalled

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def outputs(self) -> dict[str, str]:
        return parse_outputs((self.tmp / "output.txt").read_text())

    def summary(self) -> str:
        return (self.tmp / "summary.md").read_text()

    def run(self) -> Run:
        return Run(self.process.returncode, self.log, "", self.outputs(), self.summary())


TRUST_CONFIG = "sigstore-trust.json"  # in the workspace: the stand-in Sigstore's


class Runner:
    """Runs `python -m publisher` with the environment GitHub's runner gives a Docker action.

    Every run signs with the stand-in Sigstore (its trust configuration is in the workspace and
    the `sigstore-trust-config` input names it) unless a test gives that input itself.
    """

    def __init__(self, tmp_path: Path, runtime: OidcRuntime, sigstore: Sigstore) -> None:
        self.tmp_path = tmp_path
        self.runtime = runtime
        self.workspace = tmp_path / "workspace"
        self.workspace.mkdir()
        sigstore.write_trust_config(self.workspace / TRUST_CONFIG)
        self.defaults = {"sigstore-trust-config": TRUST_CONFIG}

    def environment(
        self,
        inputs: dict[str, str],
        *,
        event_name: str = "push",
        event: dict[str, Any] | None = None,
        id_token: bool = True,
        repository: str = "octo-org/example-pkg",
    ) -> dict[str, str]:
        event_path = self.tmp_path / "event.json"
        event_path.write_text(
            json.dumps(event or {"repository": {"full_name": repository, "fork": False}})
        )
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("INPUT_", "GITHUB_", "ACTIONS_", "RUNNER_"))
        }
        env.update(
            {
                "GITHUB_ACTIONS": "true",
                "CI": "true",
                "GITHUB_REPOSITORY": repository,
                "GITHUB_REPOSITORY_OWNER": repository.split("/")[0],
                "GITHUB_EVENT_NAME": event_name,
                "GITHUB_EVENT_PATH": str(event_path),
                "GITHUB_SERVER_URL": "https://github.com",
                "GITHUB_RUN_ID": "1234",
                "GITHUB_REF": "refs/tags/v1.0.0",
                "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
                "GITHUB_WORKSPACE": str(self.workspace),
                "GITHUB_OUTPUT": str(self.tmp_path / "output.txt"),
                "GITHUB_STEP_SUMMARY": str(self.tmp_path / "summary.md"),
                "RUNNER_OS": "Linux",
                "RUNNER_TEMP": str(self.tmp_path),
                "PUBLISHER_RETRY_DELAY": "0.05",
                "PYTHONPATH": str(ROOT),
            }
        )
        if id_token:
            env["ACTIONS_ID_TOKEN_REQUEST_URL"] = self.runtime.request_url
            env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = self.runtime.request_token
        for name, value in (self.defaults | inputs).items():
            env[f"INPUT_{name.upper()}"] = value  # hyphens kept, as the runner does
        return env

    def __call__(
        self, inputs: dict[str, str], *, extra_env: dict[str, str] | None = None, **kwargs: Any
    ) -> Run:
        for name in ("output.txt", "summary.md"):
            (self.tmp_path / name).write_text("")
        env = self.environment(inputs, **kwargs) | (extra_env or {})
        completed = subprocess.run(
            [sys.executable, "-m", "publisher"],
            cwd=self.workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Run(
            completed.returncode,
            completed.stdout,
            completed.stderr,
            parse_outputs((self.tmp_path / "output.txt").read_text()),
            (self.tmp_path / "summary.md").read_text(),
        )


def assert_no_secrets(run: Run, *secrets: str) -> None:
    """No secret anywhere: not in the log (but for `::add-mask::` lines), outputs or summary."""
    for secret in secrets:
        assert secret, "an empty secret proves nothing"
        for line in run.log.splitlines():
            if line.startswith("::add-mask::"):
                continue
            assert secret not in line, f"secret printed: {line!r}"
        assert secret not in run.summary
        assert all(secret not in value for value in run.outputs.values())


def assert_masked_first(run: Run, *secrets: str) -> None:
    """Each secret is masked before it could appear: its ::add-mask:: line exists."""
    masks = [
        line[len("::add-mask::") :]
        for line in run.stdout.splitlines()
        if line.startswith("::add-mask::")
    ]
    for secret in secrets:
        assert secret in masks, "secret never masked"


@pytest.fixture
def runtime() -> Iterator[OidcRuntime]:
    server = OidcRuntime()
    yield server
    server.close()


@pytest.fixture
def warehouse(runtime: OidcRuntime, sigstore: Sigstore) -> Iterator[Warehouse]:
    server = Warehouse(runtime)
    server.trusted_root = sigstore.trusted_root_json()
    yield server
    server.close()


@pytest.fixture
def runner(tmp_path: Path, runtime: OidcRuntime, sigstore: Sigstore) -> Runner:
    return Runner(tmp_path, runtime, sigstore)


@pytest.fixture
def dists(runner: Runner) -> list[Path]:
    return build_dists(runner.workspace / "dist")


# A hostile index (or file name, or secret) tries to slip workflow commands into the log. Every
# command it tries carries this marker right where a command's title or message begins, so a
# scan can tell its commands from ours even where a whole line of ours quotes its text.
HOSTILE = "PWNED"
HOSTILE_TEXTS = (
    f"\r::error title={HOSTILE}::{HOSTILE}",  # a bare CR: the runner ends a line there too
    f"\r\n::warning::{HOSTILE}",
    f"\n  ::stop-commands::{HOSTILE}",  # leading spaces: trimmed by the runner
    f" ##[error]{HOSTILE}",  # the old form, read anywhere in a line
    f"\r##[add-mask]{HOSTILE}",
    f"%0A::notice::{HOSTILE}",  # an escape of ours, in text from outside
)
OUR_COMMANDS = frozenset({"add-mask", "group", "endgroup", "notice", "warning", "error"})
_RUNNER_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# The old form, `##[name ...]data`, anywhere in a line: every name the runner knows starts with
# a letter (`##[\\error]` is text).
_OLD_FORM = re.compile(r"##\[[A-Za-z]")


def runner_lines(text: str) -> list[str]:
    """The lines the runner reads from a step's output: it ends a line at CR, LF or CRLF."""
    return _RUNNER_LINE_BREAK.split(text)


def secret_parts(secret: str) -> list[str]:
    """A secret and each of its lines: none may be shown, in whole or in part."""
    pieces = [piece.strip() for piece in runner_lines(secret)]
    parts = list(dict.fromkeys([secret, *(piece for piece in pieces if piece)]))
    escaped = [json.dumps(part)[1:-1] for part in parts]  # as a JSON answer would quote it
    return list(dict.fromkeys(parts + escaped))


def parse_command(line: str) -> tuple[str, dict[str, str], str] | None:
    """`::name key=value,...::data` as the runner's `ActionCommand.TryParseV2` reads it (the
    line already trimmed), unescaped; None if the runner would not take it for a command."""
    end = line.find("::", 2)
    if not line.startswith("::") or end < 0:
        return None
    name, _, properties = line[2:end].partition(" ")
    pairs = (item.split("=", 1) for item in properties.strip().split(",") if item)
    unescape_property = {"%0D": "\r", "%0A": "\n", "%3A": ":", "%2C": ",", "%25": "%"}
    values = {}
    for pair in pairs:
        if len(pair) == 2 and pair[0] and pair[1]:
            values[pair[0].lower()] = _unescape(pair[1], unescape_property)
    data = _unescape(line[end + 2 :], {"%0D": "\r", "%0A": "\n", "%25": "%"})
    return name.lower(), values, data


def _unescape(text: str, mapping: dict[str, str]) -> str:
    for escaped, raw in mapping.items():  # in the runner's order: %25 last
        text = text.replace(escaped, raw)
    return text


def assert_no_injection(run: Run, *secrets: str, marker: str = HOSTILE) -> None:
    """No workflow command we did not write, and no part of any secret, in any line the runner
    reads: the log (stdout and stderr, each split as the runner splits it), the summary and the
    outputs. Ours are `add-mask`, `group`, `endgroup`, `notice`, `warning`, `error`, with a
    title at most, and neither their title nor their message begins with a hostile `marker`."""
    for stream in (run.stdout, run.stderr):
        for line in runner_lines(stream):
            _assert_ours(line, marker)
    for text in (run.summary, *run.outputs.values()):
        for line in runner_lines(text):
            assert not line.lstrip().startswith("::"), f"command in a file: {line!r}"
            assert not _OLD_FORM.search(line), f"command in a file: {line!r}"
    for secret in secrets:
        assert secret, "an empty secret proves nothing"
        for part in secret_parts(secret):
            for stream in (run.stdout, run.stderr):
                for line in runner_lines(stream):
                    if not line.lstrip().startswith("::add-mask::"):
                        assert part not in line, f"part of a secret printed: {line!r}"
            assert part not in run.summary, "part of a secret in the summary"
            assert all(part not in value for value in run.outputs.values())


def _assert_ours(line: str, marker: str) -> None:
    trimmed = line.lstrip()  # the runner's TrimStart; Python's whitespace is a superset of .NET's
    command = parse_command(trimmed)
    if command is None:
        assert not trimmed.startswith("::"), f"a line the runner may read as a command: {line!r}"
        assert not _OLD_FORM.search(line), f"a command in the old form: {line!r}"
        return
    name, properties, data = command
    assert name in OUR_COMMANDS, f"a command we never write: {line!r}"
    assert set(properties) <= {"title"}, f"properties we never write: {line!r}"
    for value in (*properties.values(), data):
        assert not value.lstrip().startswith(marker), f"a hostile command: {line!r}"


def assert_masked_lines(run: Run, *secrets: str) -> None:
    """Each line of each secret has an `::add-mask::` line of its own (with the scan above, that
    no line shows any part of it, this is "masked before it could appear")."""
    masks = []
    for line in run.stdout.split("\n"):
        command = parse_command(line)
        if command is not None and command[0] == "add-mask":
            masks.append(command[2])
    for secret in secrets:
        for piece in (p.strip() for p in runner_lines(secret)):
            assert not piece or piece in masks, "a line of a secret never masked"
