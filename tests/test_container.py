"""The image built from our real Dockerfile, run the way the runner runs a Docker action.

`tests/container/setup.sh` makes buildah and podman work here (no Docker engine, no Docker Hub);
`tests/images.py` builds as the runner does.
The test needs root; it is skipped elsewhere, unless PUBLISHER_CONTAINER_TESTS=required (as in
CI), where not being able to run it is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests import images
from tests.conftest import (
    ROOT,
    Run,
    Runner,
    assert_masked_first,
    assert_no_secrets,
    build_release,
    parse_outputs,
)
from tests.servers import OidcRuntime, Warehouse
from tests.sigstore_standin import Sigstore

pytestmark = pytest.mark.container
IMAGE = "localhost/publisher:test"


@pytest.fixture(scope="module")
def image() -> str:
    images.build_image(ROOT, IMAGE)
    return IMAGE


def container_command(
    image: str, runner: Runner, inputs: dict[str, str], *, name: str = "", **kwargs: Any
) -> list[str]:
    """`docker run` as the runner does it: workspace, file commands and event mounted."""
    tmp = runner.tmp_path
    commands = tmp / "file_commands"
    workflow = tmp / "workflow"
    commands.mkdir(exist_ok=True)
    workflow.mkdir(exist_ok=True)
    env = runner.environment(inputs, **kwargs)
    shutil.copy(env["GITHUB_EVENT_PATH"], workflow / "event.json")
    for file in ("set_output", "step_summary"):
        (commands / file).write_text("")
    env.update(
        {
            "GITHUB_WORKSPACE": "/github/workspace",
            "GITHUB_EVENT_PATH": "/github/workflow/event.json",
            "GITHUB_OUTPUT": "/github/file_commands/set_output",
            "GITHUB_STEP_SUMMARY": "/github/file_commands/step_summary",
            "HOME": "/github/home",
        }
    )
    passed = {
        k: v for k, v in env.items() if k.startswith(("INPUT_", "GITHUB_", "ACTIONS_", "RUNNER_"))
    }
    passed.update({"CI": "true", "HOME": "/github/home", "PUBLISHER_RETRY_DELAY": "0.05"})
    command = [
        "podman",
        "run",
        "--rm",
        "--network",
        "host",
        "--workdir",
        "/github/workspace",
        "-v",
        f"{runner.workspace}:/github/workspace",
        "-v",
        f"{commands}:/github/file_commands",
        "-v",
        f"{workflow}:/github/workflow",
    ]
    if name:
        command += ["--name", name]
    for variable, value in passed.items():
        command += ["-e", f"{variable}={value}"]
    return [*command, image]


def container_run(runner: Runner, completed: subprocess.CompletedProcess[str]) -> Run:
    commands = runner.tmp_path / "file_commands"
    return Run(
        completed.returncode,
        completed.stdout,
        completed.stderr,
        parse_outputs((commands / "set_output").read_text()),
        (commands / "step_summary").read_text(),
    )


def run_container(image: str, runner: Runner, inputs: dict[str, str], **kwargs: Any) -> Run:
    command = container_command(image, runner, inputs, **kwargs)
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    return container_run(runner, completed)


def test_image_publishes_with_trusted_publishing_and_attestations(
    image: str,
    runner: Runner,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    sigstore: Sigstore,
    dists: list[Path],
) -> None:
    run = run_container(image, runner, {"repository-url": warehouse.upload_url})

    assert run.returncode == 0, run.log
    assert sorted(warehouse.files) == sorted(p.name for p in dists)
    for path in dists:
        stored = warehouse.files[path.name]
        assert stored.content == path.read_bytes()
        # signed in the container against the stand-in Sigstore, verified by Warehouse
        assert len(stored.attestations) == 1
        assert Path(f"{path}.publish.attestation").exists()
    assert len(sigstore.rekor.entries) == 2
    assert warehouse.count("POST", "/_/oidc/mint-token") == 1
    assert warehouse.count("POST", "/_/oidc/burn-token") == 1
    assert all(m.burned for m in warehouse.minted)
    assert {f["status"] for f in run.files()} == {"uploaded"}
    assert run.outputs["dry-run"] == "false"
    assert len(run.outputs["attestations"].splitlines()) == 2
    assert "✅ uploaded" in run.summary
    assert_masked_first(run, *runtime.issued, warehouse.minted_tokens[0])
    assert_no_secrets(run, *runtime.issued, warehouse.minted_tokens[0])


def test_image_refuses_bad_input_by_name(
    image: str, runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    run = run_container(
        image, runner, {"repository-url": warehouse.upload_url, "skip-existing": "yes"}
    )

    assert run.returncode == 1
    assert "::error title=Invalid input `skip-existing`::" in run.stdout
    assert warehouse.requests == []


def test_a_stopped_container_burns_the_token_and_says_what_made_it(
    image: str, runner: Runner, runtime: OidcRuntime, warehouse: Warehouse
) -> None:
    """`docker stop` as the runner does it when a job is cancelled: SIGTERM to the action's
    process, SIGKILL 10 s later. It must be done well before."""
    release = build_release(runner.workspace / "dist", 19)
    name = f"publisher-stop-{os.getpid()}"
    inputs = {"repository-url": warehouse.upload_url, "attestations": "false"}
    warehouse.upload_delays = [0.0]  # the first file lands; the next ones would take long
    warehouse.upload_delay = 30.0
    process = subprocess.Popen(
        container_command(image, runner, inputs, name=name),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while warehouse.in_flight < 4:
        assert time.monotonic() < deadline, "the uploads never started"
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)

    stopped = time.monotonic()
    subprocess.run(["podman", "stop", "--time", "10", name], capture_output=True, check=True)
    took = time.monotonic() - stopped
    stdout, stderr = process.communicate(timeout=60)
    run = container_run(runner, subprocess.CompletedProcess([], process.returncode, stdout, stderr))

    assert took < 5.0, f"took {took:.1f} s to stop"
    assert run.returncode not in (0, 137), run.log  # not the SIGKILL 10 s later
    statuses = [f["status"] for f in run.files()]
    assert statuses == ["uploaded"] + ["unknown"] * 4 + ["failed"] * (len(release) - 5)
    assert "Cancelled (SIGTERM) during the upload" in run.summary
    assert "**Unknown, check the index**" in run.summary
    assert all(m.burned for m in warehouse.minted)
    assert_no_secrets(run, *runtime.issued, *warehouse.minted_tokens)


def test_image_publishes_over_https_with_a_private_ca(
    image: str, runner: Runner, runtime: OidcRuntime, sigstore: Sigstore, dists: list[Path]
) -> None:
    """An index whose certificate comes from a private CA: refused by name without the CA,
    published with it. The CA is named as users write it, `${{ github.workspace }}/...`: a
    path on the runner's host (the runner lays out `$RUNNER_WORKSPACE/<repository name>`)."""
    from tests.tls import make_authority

    authority = make_authority("Example Corp Issuing CA", "Example Corp")
    authority.write(runner.workspace / "certs" / "ca.pem")
    warehouse = Warehouse(runtime, tls=authority.server_context())
    warehouse.trusted_root = sigstore.trusted_root_json()

    def run(inputs: dict[str, str]) -> Run:
        command = container_command(
            image, runner, {"repository-url": warehouse.upload_url} | inputs
        )
        command[-1:-1] = ["-e", "RUNNER_WORKSPACE=/home/runner/work/example-pkg"]
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=300, check=False
        )
        return container_run(runner, completed)

    try:
        refused = run({})
        assert refused.returncode == 1, refused.log
        assert "::error title=TLS certificate of 127.0.0.1 not trusted::" in refused.stdout
        assert f"It was issued by `{authority.name}`" in refused.summary
        assert "`ca-certificates`" in refused.summary
        assert warehouse.requests == []

        host_path = "/home/runner/work/example-pkg/example-pkg/certs/ca.pem"
        published = run({"ca-certificates": host_path})
    finally:
        warehouse.close()
    assert published.returncode == 0, published.log
    assert "Trusting 1 more certificate besides the default roots" in published.stdout
    assert sorted(warehouse.files) == sorted(p.name for p in dists)
    assert all(len(warehouse.files[p.name].attestations) == 1 for p in dists)
    assert all(m.burned for m in warehouse.minted)
    assert_no_secrets(published, *runtime.issued, *warehouse.minted_tokens)
