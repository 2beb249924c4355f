"""`python -m bench.runners`: a publish step's wall time, the container way against the native way.

The same release (an sdist and a wheel, attested with the stand-in Sigstore) goes to the same
stand-in Warehouse three ways, alternating, `--pairs` times:

- **container, first step**: what a runner with Docker does in a job's first publish step: build
  the image from our Dockerfile (as the tests build it: no layer cache, every package downloaded
  from the index), then run it as the runner runs a Docker action (`podman run`);
- **native, first step**: `action/launch.py` as the action's step runs it, with a fresh
  `RUNNER_TEMP` and no uv cache: uv fetched and checked, the lock installed from the index, then
  the publish;
- **native, second step**: the launcher again in the same job (same `RUNNER_TEMP`): the
  environment is reused.

It prints each way's median and range, and the ratios the issue sets targets for (native first /
container first, native second / native first). Root only (buildah and podman, as
`tests/container/setup.sh` sets them up). Nothing here asserts a time: the numbers are for
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tests import images
from tests.conftest import ROOT, Runner, build_dists
from tests.servers import OidcRuntime, Warehouse
from tests.sigstore_standin import Sigstore
from tests.test_container import container_command

IMAGE = "localhost/publisher:bench-runners"


def container_first(runner: Runner, warehouse: Warehouse, base: str) -> float:
    started = time.monotonic()
    built = subprocess.run(
        images.build_command(ROOT, IMAGE, base), capture_output=True, text=True, check=False
    )
    if built.returncode != 0:
        raise SystemExit(f"build failed:\n{built.stdout}{built.stderr}")
    command = container_command(IMAGE, runner, {"repository-url": warehouse.upload_url})
    ran = subprocess.run(command, capture_output=True, text=True, check=False)
    took = time.monotonic() - started
    if ran.returncode != 0:
        raise SystemExit(f"the container's publish failed:\n{ran.stdout}{ran.stderr}")
    return took


RUNNER_PATH = "/usr/local/bin:/usr/bin:/bin"  # the runner's PATH, not this venv's


def native(runner: Runner, warehouse: Warehouse, temp: Path, *, alone: bool = False) -> float:
    """The action's step as the runner starts it: bash execs the launcher on the runner's Python
    (this machine's python3), which sets up (or reuses) and execs the publisher. `alone`: the
    publisher without the launcher, in the environment it set up (what the set-up adds is the
    difference)."""
    env = runner.environment({"repository-url": warehouse.upload_url, "run-in": "native"})
    env.update(RUNNER_TEMP=str(temp), GITHUB_ACTION_PATH=str(ROOT), PATH=RUNNER_PATH)
    for name in ("PYTHONPATH", "VIRTUAL_ENV", "UV_CACHE_DIR"):  # a cold first step, no cache
        env.pop(name, None)
    for name in ("output.txt", "summary.md"):
        (runner.tmp_path / name).write_text("")
    command = 'exec python3 "$GITHUB_ACTION_PATH/action/launch.py"'
    if alone:
        (venv,) = temp.glob("publisher-action/venv-*")
        command = f'PYTHONPATH="$GITHUB_ACTION_PATH" exec {venv}/bin/python -m publisher'
    started = time.monotonic()
    ran = subprocess.run(
        ["bash", "-c", command],
        cwd=runner.workspace,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.monotonic() - started
    if ran.returncode != 0:
        raise SystemExit(f"the native publish failed:\n{ran.stdout}{ran.stderr}")
    return took


def show(name: str, samples: list[float]) -> float:
    median = statistics.median(samples)
    print(f"{name:<24} median {median:6.2f} s   range {min(samples):.2f}-{max(samples):.2f} s")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--pairs", type=int, default=5)
    arguments = parser.parse_args()
    setup = images.set_up()
    if setup.returncode != 0:
        raise SystemExit(f"set-up failed:\n{setup.stdout}{setup.stderr}")
    base = setup.stdout.split()[-1]
    runtime = OidcRuntime()
    sigstore = Sigstore(runtime)
    warehouse = Warehouse(runtime)
    warehouse.trusted_root = sigstore.trusted_root_json()
    times: dict[str, list[float]] = {"container": [], "native": [], "second": [], "alone": []}
    try:
        with tempfile.TemporaryDirectory() as folder:
            runner = Runner(Path(folder), runtime, sigstore)
            dists = build_dists(runner.workspace / "dist")
            for _pair in range(arguments.pairs):
                for way in ("container", "native"):
                    warehouse.files.clear()
                    for path in runner.workspace.joinpath("dist").glob("*.attestation"):
                        path.unlink()
                    if way == "container":
                        times[way].append(container_first(runner, warehouse, base))
                        continue
                    temp = Path(folder, f"runner-temp-{time.monotonic_ns()}")
                    temp.mkdir()
                    times["native"].append(native(runner, warehouse, temp))
                    warehouse.files.clear()
                    for path in runner.workspace.joinpath("dist").glob("*.attestation"):
                        path.unlink()
                    times["second"].append(native(runner, warehouse, temp))
                    warehouse.files.clear()
                    for path in runner.workspace.joinpath("dist").glob("*.attestation"):
                        path.unlink()
                    times["alone"].append(native(runner, warehouse, temp, alone=True))
                    shutil.rmtree(temp)
            assert all(d.exists() for d in dists)
    finally:
        warehouse.close()
        sigstore.close()
        runtime.close()
        subprocess.run(["podman", "rmi", "-f", IMAGE], capture_output=True, check=False)
    print(f"{arguments.pairs} pairs, each way publishing an sdist and a wheel with attestations")
    container = show("container, first step", times["container"])
    first = show("native, first step", times["native"])
    second = show("native, second step", times["second"])
    alone = show("the publisher alone", times["alone"])
    print(f"native first / container first: {first / container:.2f}")
    print(f"native second / native first:    {second / first:.2f}")
    print(f"set-up of the second step:       {second - alone:.2f} s (second step - alone)")
    version = subprocess.run(
        ["python3", "--version"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": RUNNER_PATH},
    )
    print(f"(the runner's Python here: {version.stdout.strip()})")


if __name__ == "__main__":
    main()
