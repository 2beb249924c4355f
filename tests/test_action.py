"""`action.yml` itself, as a runner runs it (nektos/act, `tests/act.py`): the container where a
Docker engine answers (podman's API socket), natively where none does; both publish to the
stand-ins with attestations that the Warehouse stand-in verifies, and a later step of the job
reads the outputs. A second publish step of the job reuses the native set-up; a native step
cancelled mid-upload still revokes its token, and one cancelled while it sets up stops at once.
A project whose own package is named like a dependency publishes with the locked one, and a
failed publish in the container fails the step.

The native set-up installs the lock from the package index with uv; the session shares one uv
cache, so only the first set-up downloads. The container test needs root (podman and buildah,
as tests/test_container.py); it is skipped elsewhere, unless PUBLISHER_CONTAINER_TESTS=required
(as in CI), where not being able to run it is a failure.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import images
from tests.act import (
    RUNNER_PATH,
    Act,
    ActRun,
    Project,
    copy_action,
    publish_step,
    runner_environment,
)
from tests.conftest import (
    TRUST_CONFIG,
    Background,
    Run,
    Runner,
    assert_no_secrets,
    build_dists,
    build_release,
    load_script,
)
from tests.servers import OidcRuntime, StandIn, Warehouse
from tests.sigstore_standin import Sigstore

PUBLISH_PREDICATE = "https://docs.pypi.org/attestations/publish/v1"
SIGNED = {"sigstore-trust-config": TRUST_CONFIG}  # sign with the stand-in Sigstore
NATIVELY = "Running natively (Python "
IN_THE_CONTAINER = "Running in the container built from the action's Dockerfile"
RELEASE = 20  # files in the release cancelled mid-upload: an sdist and 19 wheels
SET_UP = re.compile(r"Set up the locked environment in (\d+\.\d+) s")
REUSED = "Reusing the environment set up by an earlier step"
STOP_WITHIN = 5.0  # seconds from the runner's first signal to the exit


@pytest.fixture(scope="session")
def action(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The action's files, copied once: every job (and the image) runs the same code."""
    return copy_action(tmp_path_factory.mktemp("action") / "action")


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    cache = tmp_path_factory.mktemp("uv-cache")
    yield cache
    shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture
def project(tmp_path: Path, action: Path, sigstore: Sigstore) -> Project:
    return Project(tmp_path / "project", action, sigstore)


@pytest.fixture
def no_engine(tmp_path: Path, runtime: OidcRuntime, uv_cache: Path) -> Act:
    """A runner without a Docker engine, as ubuntu-slim: a `docker` client, and nothing
    listening where DOCKER_HOST points."""
    return Act(
        tmp_path, runtime, docker_host=f"unix://{tmp_path}/no-engine.sock", uv_cache=uv_cache
    )


@pytest.fixture
def testpypi(runtime: OidcRuntime, sigstore: Sigstore) -> Iterator[Warehouse]:
    server = Warehouse(runtime, audience="testpypi")
    server.trusted_root = sigstore.trusted_root_json()
    yield server
    server.close()


def predicates(index: Warehouse, filename: str) -> list[str]:
    return [
        json.loads(base64.b64decode(a["envelope"]["statement"]))["predicateType"]
        for a in index.files[filename].attestations
    ]


def assert_published(run: ActRun, step: str, index: Warehouse, dists: list[Path]) -> None:
    """Every file on `index`, each with its attestation, which the index verified, and the
    step's outputs saying so, as a later step of the job read them."""
    names = sorted(p.name for p in dists)
    assert sorted(index.files) == names
    for path in dists:
        assert index.files[path.name].content == path.read_bytes()
        assert predicates(index, path.name) == [PUBLISH_PREDICATE]  # stored once verified
    outputs = run.outputs[step]
    assert outputs["outcome"] == "success"
    files = run.files(step)
    assert [f["filename"] for f in files] == names
    assert {f["status"] for f in files} == {"uploaded"}
    assert {f["sha256"] for f in files} == {index.files[name].sha256 for name in names}
    assert outputs["dry-run"] == "false"
    assert outputs["verified"] == "true"
    assert outputs["attestations"].splitlines() == [f"dist/{n}.publish.attestation" for n in names]
    assert outputs["release-url"] == ""  # not PyPI's own host
    assert index.minted, "no token minted"
    assert all(m.burned for m in index.minted), "a minted token was left alive"


def set_up_seconds(log: str) -> float:
    found = SET_UP.search(log)
    assert found, log
    return float(found[1])


def test_without_an_engine_two_publish_steps_run_natively_on_one_set_up(
    no_engine: Act,
    project: Project,
    runtime: OidcRuntime,
    testpypi: Warehouse,
    warehouse: Warehouse,
) -> None:
    """TestPyPI, then PyPI, in one job, as release workflows do."""
    run = no_engine.run(
        project,
        [
            publish_step(
                "testpypi", SIGNED | {"repository-url": testpypi.upload_url}, "Publish to TestPyPI"
            ),
            publish_step(
                "pypi", SIGNED | {"repository-url": warehouse.upload_url}, "Publish to PyPI"
            ),
        ],
        read=["testpypi", "pypi"],
    )

    assert run.returncode == 0, run.log
    first, second = run.step_log("Publish to TestPyPI"), run.step_log("Publish to PyPI")
    assert NATIVELY in first, first
    assert "no Docker engine: " in first
    assert NATIVELY in second, second
    assert REUSED not in first
    assert REUSED in second
    assert not SET_UP.search(second)
    print(f"native set-up {set_up_seconds(first):.1f} s; job {run.seconds:.1f} s")
    assert_published(run, "testpypi", testpypi, project.dists)
    assert_published(run, "pypi", warehouse, project.dists)
    # The second step uploaded what the first signed: one signature per file for the job.
    for path in project.dists:
        assert testpypi.files[path.name].attestations == warehouse.files[path.name].attestations
    secrets = [*runtime.issued, *testpypi.minted_tokens, *warehouse.minted_tokens]
    assert_no_secrets(run.as_run(), *secrets, runtime.request_token)
    assert "Traceback" not in run.log


def test_run_in_is_checked_before_anything_is_sent(
    no_engine: Act, project: Project, warehouse: Warehouse
) -> None:
    inputs = SIGNED | {"repository-url": warehouse.upload_url}
    steps = [
        publish_step("container", inputs | {"run-in": "container"}, "In the container"),
        publish_step("bogus", inputs | {"run-in": "bogus"}, "Somewhere"),
    ]
    for step in steps:
        step["continue-on-error"] = True
    run = no_engine.run(project, steps, read=["container", "bogus"])

    assert run.returncode == 0, run.log  # each step failed, and the job went on
    assert run.outputs["container"]["outcome"] == "failure"
    assert run.outputs["bogus"]["outcome"] == "failure"
    container = run.step_log("In the container")
    assert "::error title=No Docker engine::`run-in` is `container`, but " in container
    assert "Remove `run-in` to run natively here." in container
    assert "### ❌ No Docker engine" in container  # the step summary
    bogus = run.step_log("Somewhere")
    assert "::error title=Invalid input `run-in`::Input `run-in` got `bogus`" in bogus
    assert "### ❌ Invalid input `run-in`" in bogus
    for log in (container, bogus):
        assert "Running " not in log
    assert run.outputs["container"]["files"] == ""
    assert warehouse.requests == []  # nothing uploaded, not even a token minted


def test_deprecated_aliases_and_every_input_reach_the_publisher(
    no_engine: Act, project: Project, runtime: OidcRuntime, warehouse: Warehouse
) -> None:
    """The composite hands each input on as the runner gives a Docker action its inputs."""
    inputs = SIGNED | {
        "repository_url": warehouse.upload_url,
        "packages_dir": "dist",
        "print_hash": "true",
        "upload-concurrency": "1",
        "await-release": "false",
        "verbose": "true",
    }
    run = no_engine.run(project, [publish_step("publish", inputs, "Publish")], read=["publish"])

    assert run.returncode == 0, run.log
    log = run.step_log("Publish")
    assert "Input `repository_url` is deprecated; rename it to `repository-url`." in log
    assert "Input `packages_dir` is deprecated; rename it to `packages-dir`." in log
    assert "Input `print_hash` is deprecated; rename it to `print-hash`." in log
    for path in project.dists:  # print-hash
        assert f"SHA256:      {warehouse.files[path.name].sha256}" in log
    assert sorted(warehouse.files) == sorted(p.name for p in project.dists)
    assert warehouse.max_in_flight() == 1  # upload-concurrency
    assert run.outputs["publish"]["verified"] == ""  # await-release: not checked
    assert "200 OK" in log  # verbose: the index's answers
    print(f"native set-up {set_up_seconds(log):.1f} s; job {run.seconds:.1f} s")
    assert {f["status"] for f in run.files("publish")} == {"uploaded"}
    assert all(m.burned for m in warehouse.minted)
    assert_no_secrets(run.as_run(), *runtime.issued, *warehouse.minted_tokens)


def test_a_project_named_like_a_dependency_publishes_with_the_locked_one(
    no_engine: Act, project: Project, warehouse: Warehouse
) -> None:
    """A flat-layout project whose package has the name of one of the action's dependencies
    (rich, pygments, certifi, idna, twine and sigstore keep theirs at the repository's root):
    the publisher imports the locked one, never the project's code."""
    (project.path / "rich").mkdir()
    (project.path / "rich" / "__init__.py").write_text(
        "print('the project s own rich')\nraise SystemExit(3)\n"
    )
    inputs = SIGNED | {"repository-url": warehouse.upload_url}
    run = no_engine.run(project, [publish_step("publish", inputs, "Publish")], read=["publish"])

    assert "the project s own rich" not in run.log
    assert run.returncode == 0, run.log
    assert sorted(warehouse.files) == sorted(p.name for p in project.dists)


# --- cancelled --------------------------------------------------------------------------------
# act kills a cancelled step outright; GitHub's runner sends SIGINT to the step's entry process
# first. So these steps start here as the runner starts the action's step: `bash -c`, whose
# `exec` makes the launcher, and then the publisher, that very process.


def _default_sigint() -> None:
    """SIGINT as the runner leaves it to a step: not ignored, even where these tests were
    started in the background (which ignores it in every process started from there)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class ActionStep(Background):
    """The action's step as the runner starts it (`bash -c 'exec python3 launch.py'`), natively
    unless `inputs` say otherwise, with the runner's variables."""

    def __init__(
        self, runner: Runner, action: Path, uv_cache: Path, inputs: dict[str, str], **env: str
    ) -> None:
        tmp = runner.tmp_path
        given = runner.environment({"run-in": "native"} | inputs)
        environment = runner_environment(
            tmp / "home", docker_host=f"unix://{tmp}/no-engine.sock", uv_cache=uv_cache
        )
        environment |= {
            k: v for k, v in given.items() if k.startswith(("INPUT_", "GITHUB_", "ACTIONS_"))
        }
        self.runner_temp = tmp / "temp"
        environment |= {"CI": "true", "RUNNER_OS": "Linux", "RUNNER_TEMP": str(self.runner_temp)}
        super().__init__(
            ["bash", "-c", 'exec python3 "$0"', str(action / "action" / "launch.py")],
            tmp,
            runner.workspace,
            environment | env,
            preexec_fn=_default_sigint,
        )

    def cancel(self) -> float:
        """SIGINT, as the runner cancels; the seconds until the step ended."""
        return self.signal(signal.SIGINT)

    def __enter__(self) -> ActionStep:
        return self

    def __exit__(self, *_: object) -> None:
        """The step ended, and its RUNNER_TEMP emptied, as the runner does after a job."""
        self.kill()
        shutil.rmtree(self.runner_temp, ignore_errors=True)


def cancel_mid_upload(
    runner: Runner, action: Path, uv_cache: Path, warehouse: Warehouse, **env: str
) -> tuple[Run, float]:
    """The step started as the runner starts it (`env`: how it runs), then the runner's SIGINT
    once the first file landed and four are in flight (30 s each on the index); the run and
    the seconds it took to stop."""
    build_release(runner.workspace / "dist", RELEASE - 1)
    warehouse.upload_delays = [0.0]
    warehouse.upload_delay = 30.0
    inputs = {"repository-url": warehouse.upload_url, "attestations": "false"}
    if "DOCKER_HOST" in env:
        inputs["run-in"] = "container"
    with ActionStep(runner, action, uv_cache, inputs, **env) as step:
        step.wait_for(lambda: warehouse.in_flight == 4, timeout=300)  # the set-up comes first
        took = step.cancel()
    return step.run(), took


def assert_stopped_mid_upload(run: Run, took: float, warehouse: Warehouse) -> None:
    """Within 5 s, each file reported as it is, the token revoked."""
    assert took < STOP_WITHIN, f"took {took:.1f} s to stop"
    assert run.returncode not in (0, -signal.SIGINT), run.log
    statuses = [f["status"] for f in run.files()]
    assert statuses == ["uploaded"] + ["unknown"] * 4 + ["failed"] * (RELEASE - 5)
    assert "Cancelled (SIGINT) during the upload" in run.summary
    assert warehouse.minted, "no token minted"
    assert all(m.burned for m in warehouse.minted), "the token was left alive"


def test_a_cancelled_native_step_revokes_the_token_and_reports_each_file(
    tmp_path: Path,
    action: Path,
    uv_cache: Path,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    sigstore: Sigstore,
) -> None:
    runner = Runner(tmp_path, runtime, sigstore)
    run, took = cancel_mid_upload(runner, action, uv_cache, warehouse)

    assert NATIVELY in run.log, run.log
    assert_stopped_mid_upload(run, took, warehouse)
    assert "**Unknown, check the index**" in run.summary
    assert "Traceback" not in run.log
    assert_no_secrets(run, *runtime.issued, *warehouse.minted_tokens, runtime.request_token)


class SilentIndex(StandIn):
    """A package index that takes every request and answers none (until it is closed)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = threading.Event()
        self.released = threading.Event()

    def handle(
        self, method: str, path: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        self.asked.set()
        self.released.wait(timeout=60)
        return 503, {}, b""

    def close(self) -> None:
        self.released.set()
        super().close()


def test_a_native_step_cancelled_while_it_sets_up_stops_at_once(
    tmp_path: Path,
    action: Path,
    uv_cache: Path,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    sigstore: Sigstore,
) -> None:
    """SIGINT while the launcher fetches uv (from an index that never answers)."""
    runner = Runner(tmp_path, runtime, sigstore)
    build_dists(runner.workspace / "dist")
    index = SilentIndex()
    inputs = {"repository-url": warehouse.upload_url}
    try:
        with ActionStep(
            runner, action, uv_cache, inputs, UV_DEFAULT_INDEX=f"{index.url}/simple/"
        ) as step:
            step.wait_for(index.asked.is_set, timeout=60)
            took = step.cancel()
    finally:
        index.close()
    run = step.run()

    assert took < 1.0, f"took {took:.1f} s to stop"
    assert run.returncode == 130, run.log
    assert "Cancelled while setting up: nothing was published." in run.log
    assert "Traceback" not in run.log
    assert warehouse.requests == []
    assert runtime.issued == []


# --- with an engine ---------------------------------------------------------------------------


def image_tag(action: Path) -> str:
    """The tag the launcher looks for (and builds when it is missing)."""
    launch = load_script(action / "action" / "launch.py")
    return f"publisher-action:{launch.image_hash()}"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, action: Path) -> Iterator[str]:
    """podman's Docker-compatible API on a socket (its DOCKER_HOST), holding the action's
    image. The launcher would build it with `docker build`, which cannot pull the Dockerfile's
    pinned base here: it is built beforehand as tests/test_container.py builds it, on the local
    stand-in for that base, and tagged as the launcher names it, so the launcher finds it."""
    if shutil.which("docker", path=RUNNER_PATH) is None:
        images.unavailable("no `docker` client")
    tag = image_tag(action)
    images.build_image(action, tag)
    here = tmp_path_factory.mktemp("engine")
    socket = here / "podman.sock"
    with (here / "service.log").open("w") as log:
        service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{socket}"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        docker_host = f"unix://{socket}"
        _wait_for_engine(docker_host, service, here / "service.log")
        yield docker_host
    finally:
        service.terminate()
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
        subprocess.run(["podman", "rmi", "--force", tag], capture_output=True, check=False)


def _wait_for_engine(docker_host: str, service: subprocess.Popen[bytes], log: Path) -> None:
    env = {"PATH": RUNNER_PATH, "DOCKER_HOST": docker_host, "HOME": str(log.parent)}
    deadline = time.monotonic() + 60
    while True:
        answer = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if answer.returncode == 0 and answer.stdout.strip():
            return
        if service.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"podman's API never answered:\n{log.read_text()}")
        time.sleep(0.1)


@pytest.mark.container
def test_with_an_engine_it_runs_in_the_container(
    engine: str,
    tmp_path: Path,
    uv_cache: Path,
    project: Project,
    runtime: OidcRuntime,
    warehouse: Warehouse,
) -> None:
    act = Act(tmp_path, runtime, docker_host=engine, uv_cache=uv_cache)
    run = act.run(
        project,
        [publish_step("publish", SIGNED | {"repository-url": warehouse.upload_url}, "Publish")],
        read=["publish"],
    )

    assert run.returncode == 0, run.log
    log = run.step_log("Publish")
    assert f"{IN_THE_CONTAINER}: the Docker engine answered (Docker " in log, log
    assert "Building the action's image" not in log  # it found the image by its tag
    assert NATIVELY not in log
    print(f"job in the container {run.seconds:.1f} s")
    assert_published(run, "publish", warehouse, project.dists)
    secrets = [*runtime.issued, *warehouse.minted_tokens, runtime.request_token]
    assert_no_secrets(run.as_run(), *secrets)
    assert "Traceback" not in run.log


@pytest.mark.container
def test_in_the_container_a_failure_fails_the_step(
    engine: str,
    tmp_path: Path,
    uv_cache: Path,
    project: Project,
    runtime: OidcRuntime,
    warehouse: Warehouse,
) -> None:
    act = Act(tmp_path, runtime, docker_host=engine, uv_cache=uv_cache)
    inputs = SIGNED | {"repository-url": warehouse.upload_url, "skip-existing": "yes"}
    step = publish_step("publish", inputs, "Publish") | {"continue-on-error": True}
    run = act.run(project, [step], read=["publish"])

    log = run.step_log("Publish")
    assert IN_THE_CONTAINER in log, log
    assert "::error title=Invalid input `skip-existing`::" in log
    assert warehouse.requests == []
    assert run.outputs["publish"]["outcome"] == "failure", run.log


@pytest.mark.container
def test_a_cancelled_container_step_revokes_the_token_and_reports_each_file(
    engine: str,
    tmp_path: Path,
    action: Path,
    uv_cache: Path,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    sigstore: Sigstore,
) -> None:
    """The runner's SIGINT reaches the publisher in the container: the launcher, the step's
    entry process, passes it on (`docker kill --signal`); the container is removed."""
    runner = Runner(tmp_path, runtime, sigstore)
    run, took = cancel_mid_upload(runner, action, uv_cache, warehouse, DOCKER_HOST=engine)

    assert IN_THE_CONTAINER in run.log, run.log
    assert_stopped_mid_upload(run, took, warehouse)
    left = subprocess.run(
        ["docker", "ps", "--all", "--quiet", "--filter", f"ancestor={image_tag(action)}"],
        env={"DOCKER_HOST": engine, "PATH": RUNNER_PATH},
        capture_output=True,
        text=True,
        check=False,
    )
    assert left.stdout.strip() == "", "the container was left behind"
