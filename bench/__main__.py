"""`python -m bench`: our whole action against bare `twine upload` and `uv publish`, side by side.

A stand-in Warehouse and OIDC runtime run on 127.0.0.1 (the test suite's). Each tool uploads
the same files, alternating, several times; the medians and ratios are printed as Markdown:

1. small dists (a wheel and an sdist): our full run (runner environment, trusted publishing,
   metadata check, digests) vs `twine upload` and `uv publish` with a ready token;
2. the same, attested (PEP 740, against the stand-in Sigstore): our full run vs the anchor
   action's way, a process that signs (`bench/anchor_attest.py`) then `twine upload
   --attestations`, each run on an index and a packages directory that have neither file;
3. a 40-file release (an sdist and 39 wheels of 1 MB, as cibuildwheel makes them) to an index
   that spends 300 ms on each upload: ours four at a time after the first, the others in turn;
4. one 200 MB wheel, then five (the first alone, then four at once): wall time and peak RSS;
5. start-up: process start to the first request the index receives, and `--help` and a bad
   input for ours.

Before every run of every tool the index forgets the files: ours reads the index first and would
send nothing twice (twine and uv would, and get 200 for identical files).

Nothing here asserts a time: the numbers are for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT, TRUST_CONFIG, Runner, build_dists, build_release
from tests.servers import Minted, OidcRuntime, Warehouse
from tests.sigstore_standin import Sigstore


@dataclass
class Sample:
    seconds: float
    max_rss_mib: float
    first_request: float | None  # seconds from start to the first request the index saw


def measure(
    command: list[str], env: dict[str, str], cwd: Path, warehouse: Warehouse | None, *, ok: int = 0
) -> Sample:
    """Run `command` to its end, expecting exit status `ok`.

    Peak RSS is the child's VmHWM, sampled every 5 ms, plus that of its own children (our
    signing worker): `wait4`'s ru_maxrss would start from this (large) process's own high-water
    mark, which a child inherits at fork.
    """
    if warehouse is not None:
        warehouse.first_request_at = None  # type: ignore[attr-defined]
    started = time.monotonic()
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    peak_kib = 0
    output = b""
    helpers: dict[int, int] = {}
    while process.poll() is None:
        for pid in _children(process.pid):
            helpers[pid] = max(helpers.get(pid, 0), _hwm_kib(pid))
        peak_kib = max(peak_kib, _hwm_kib(process.pid))
        try:
            output += process.communicate(timeout=0.005)[0]
        except subprocess.TimeoutExpired:
            continue
    elapsed = time.monotonic() - started
    first = getattr(warehouse, "first_request_at", None) if warehouse else None
    if process.returncode != ok:
        raise RuntimeError(f"{command[:4]} exited {process.returncode}:\n{output.decode()[-3000:]}")
    peak_kib += sum(helpers.values())
    return Sample(elapsed, peak_kib / 1024, first - started if first else None)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(child) for child in f.read().split()]
    except OSError:
        return []


def _hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def with_first_request_clock(warehouse: Warehouse) -> None:
    """Note when the index sees a process's first request."""
    handle = warehouse.handle

    def timed(method, path, headers, body):  # type: ignore[no-untyped-def]
        if getattr(warehouse, "first_request_at", None) is None:
            warehouse.first_request_at = time.monotonic()  # type: ignore[attr-defined]
        return handle(method, path, headers, body)

    warehouse.handle = timed  # type: ignore[method-assign]


def ready_token(warehouse: Warehouse) -> str:
    token = "pypi-bench-" + "x" * 40
    warehouse.minted.append(
        Minted(token, time.time() + 86400, ("example-pkg", "big-pkg"), warehouse.publishers[0])
    )
    return token


def big_wheel(directory: Path, megabytes: int, tag: str = "py3-none-any") -> Path:
    """A valid wheel holding `megabytes` of incompressible data, stored like real wheels' data."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"big_pkg-1.0.0-{tag}.whl"
    metadata = (
        "Metadata-Version: 2.1\nName: big-pkg\nVersion: 1.0.0\n"
        "Description-Content-Type: text/markdown\n\n# big-pkg\n"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("big_pkg-1.0.0.dist-info/METADATA", metadata)
        zf.writestr(
            "big_pkg-1.0.0.dist-info/WHEEL",
            f"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: {tag}\n",
        )
        zf.writestr("big_pkg-1.0.0.dist-info/RECORD", "")
        with zf.open("big_pkg/data.bin", "w", force_zip64=True) as f:
            for _ in range(megabytes):
                f.write(os.urandom(1 << 20))
    return path


def tools(
    runner: Runner, warehouse: Warehouse, dist: Path, token: str
) -> dict[str, Callable[[], Sample]]:
    ours_env = runner.environment({"repository-url": warehouse.upload_url, "attestations": "false"})
    ours_env.pop("PUBLISHER_RETRY_DELAY")
    plain = {
        k: v for k, v in ours_env.items() if not k.startswith(("INPUT_", "ACTIONS_", "GITHUB_"))
    }
    plain["TWINE_NON_INTERACTIVE"] = "1"
    files = [str(p) for p in sorted(dist.iterdir())]
    uv = shutil.which("uv")
    result = {
        "publisher (full action)": lambda: measure(
            [sys.executable, "-m", "publisher", "--packages-dir", str(dist)],
            ours_env,
            runner.workspace,
            warehouse,
        ),
        "twine upload": lambda: measure(
            twine_upload(warehouse, token, files), plain, runner.workspace, warehouse
        ),
    }
    if uv:
        result["uv publish"] = lambda: measure(
            [
                uv,
                "publish",
                "--publish-url",
                warehouse.upload_url,
                "--token",
                token,
                "--trusted-publishing",
                "never",
                *files,
            ],
            plain,
            runner.workspace,
            warehouse,
        )
    return result


def twine_upload(warehouse: Warehouse, token: str, arguments: list[str]) -> list[str]:
    return [
        *(sys.executable, "-m", "twine", "upload", "--repository-url", warehouse.upload_url),
        *("-u", "__token__", "-p", token, "--disable-progress-bar", *arguments),
    ]


def attested_tools(
    runner: Runner, warehouse: Warehouse, dist: Path, token: str
) -> dict[str, Callable[[], Sample]]:
    ours_env = runner.environment({"repository-url": warehouse.upload_url})
    ours_env.pop("PUBLISHER_RETRY_DELAY")
    plain = {k: v for k, v in ours_env.items() if not k.startswith("INPUT_")}
    plain["TWINE_NON_INTERACTIVE"] = "1"

    def anchor() -> Sample:
        sign = measure(
            [sys.executable, "-m", "bench.anchor_attest", str(dist), TRUST_CONFIG],
            plain,
            runner.workspace,
            None,
        )
        files = [str(p) for p in sorted(dist.iterdir())]
        upload = measure(
            twine_upload(warehouse, token, ["--attestations", *files]),
            plain,
            runner.workspace,
            warehouse,
        )
        return Sample(
            sign.seconds + upload.seconds, max(sign.max_rss_mib, upload.max_rss_mib), None
        )

    return {
        "publisher (full action)": lambda: measure(
            [sys.executable, "-m", "publisher", "--packages-dir", str(dist)],
            ours_env,
            runner.workspace,
            warehouse,
        ),
        "sign, then twine upload --attestations": anchor,
    }


def fresh(warehouse: Warehouse, dist: Path) -> Callable[[], None]:
    """Before each attested run: an index without the files (an identical file is answered 200
    before its attestations are read) and no attestation to reuse."""

    def reset() -> None:
        warehouse.files.clear()
        for path in dist.glob("*.attestation"):
            path.unlink()

    return reset


def compare(
    name: str,
    runs: dict[str, Callable[[], Sample]],
    rounds: int,
    before: Callable[[], None] = lambda: None,
) -> dict[str, list[Sample]]:
    samples: dict[str, list[Sample]] = {tool: [] for tool in runs}
    for run in runs.values():  # warm-up: page cache, .pyc files
        before()
        run()
    for _ in range(rounds):
        for tool, run in runs.items():
            before()
            samples[tool].append(run())
    print(f"\n### {name} (median of {rounds}, tools alternating)\n")
    print("| tool | wall | ours ÷ this | peak RSS | first request after |")
    print("| --- | --- | --- | --- | --- |")
    ours = statistics.median(s.seconds for s in samples["publisher (full action)"])
    for tool, tool_samples in samples.items():
        wall = statistics.median(s.seconds for s in tool_samples)
        rss = max(s.max_rss_mib for s in tool_samples)
        firsts = [s.first_request for s in tool_samples if s.first_request is not None]
        first = f"{statistics.median(firsts) * 1000:.0f} ms" if firsts else "-"
        print(f"| {tool} | {wall:.3f} s | {ours / wall:.2f} | {rss:.0f} MiB | {first} |")
    return samples


def startup(runner: Runner, rounds: int) -> None:
    env = runner.environment({})
    env.pop("ACTIONS_ID_TOKEN_REQUEST_URL")
    help_ = [
        measure([sys.executable, "-m", "publisher", "--help"], env, ROOT, None).seconds
        for _ in range(rounds)
    ]
    env["INPUT_SKIP-EXISTING"] = "yes"
    bad = [
        measure([sys.executable, "-m", "publisher"], env, ROOT, None, ok=1).seconds
        for _ in range(rounds)
    ]
    bare = [measure([sys.executable, "-c", "pass"], env, ROOT, None).seconds for _ in range(rounds)]
    twine_help = [
        measure([sys.executable, "-m", "twine", "--help"], env, ROOT, None).seconds
        for _ in range(rounds)
    ]
    print(f"\n### Start-up (median of {rounds})\n")
    print("| command | wall |")
    print("| --- | --- |")
    for name, values in (
        ("`python -c pass` (the floor)", bare),
        ("`python -m publisher --help`", help_),
        ("`python -m publisher` with a bad input", bad),
        ("`python -m twine --help`", twine_help),
    ):
        print(f"| {name} | {statistics.median(values) * 1000:.0f} ms |")


def byte_compile_ours() -> None:
    """Our package compiled, as the image and a pip install leave it. An editable checkout on a
    machine that sets PYTHONDONTWRITEBYTECODE (this one does) would otherwise compile our sources
    at every run, while every other tool's are compiled at install."""
    import compileall

    sys.dont_write_bytecode = False
    compileall.compile_dir(ROOT / "publisher", quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="runs of each tool (small dists)")
    parser.add_argument("--big-rounds", type=int, default=3, help="runs of each tool (big wheel)")
    parser.add_argument("--megabytes", type=int, default=200, help="size of the big wheel")
    parser.add_argument("--many-rounds", type=int, default=3, help="runs of each tool (40 files)")
    parser.add_argument(
        "--index-delay", type=float, default=0.3, help="index work per file, 40-file release"
    )
    args = parser.parse_args()
    byte_compile_ours()

    print(
        f"Machine: {platform.platform()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    runtime = OidcRuntime()
    sigstore = Sigstore(runtime)
    warehouse = Warehouse(runtime)
    warehouse.trusted_root = sigstore.trusted_root_json()
    warehouse.publishers[0].projects = ("example-pkg", "big-pkg")
    with_first_request_clock(warehouse)
    token = ready_token(warehouse)
    with tempfile.TemporaryDirectory() as tmp:
        runner = Runner(Path(tmp), runtime, sigstore)
        small = build_dists(runner.workspace / "small")
        compare(
            "Small dists: a wheel and an sdist",
            tools(runner, warehouse, small[0].parent, token),
            args.rounds,
            before=warehouse.files.clear,
        )
        attested = build_dists(runner.workspace / "attested")
        compare(
            "Attested (PEP 740): a wheel and an sdist",
            attested_tools(runner, warehouse, attested[0].parent, token),
            args.rounds,
            before=fresh(warehouse, attested[0].parent),
        )
        many = build_release(runner.workspace / "many", 39, payload=1_000_000)
        warehouse.upload_delay = args.index_delay
        compare(
            f"A 40-file release (1 MB wheels), {args.index_delay * 1000:.0f} ms of index work "
            "per file",
            tools(runner, warehouse, many[0].parent, token),
            args.many_rounds,
            before=warehouse.files.clear,
        )
        warehouse.upload_delay = 0.0
        shutil.rmtree(many[0].parent)
        big = big_wheel(runner.workspace / "big", args.megabytes)
        compare(
            f"One {args.megabytes} MB wheel",
            tools(runner, warehouse, big.parent, token),
            args.big_rounds,
            before=warehouse.files.clear,
        )
        for tag in ("cp311-cp311-win_amd64", "cp312-cp312-win_amd64", "cp313-cp313-win_amd64"):
            big_wheel(big.parent, args.megabytes, tag)
        big_wheel(big.parent, args.megabytes, "cp310-cp310-win_amd64")  # uploaded first
        compare(
            f"Five {args.megabytes} MB wheels: the first alone, then four at once",
            tools(runner, warehouse, big.parent, token),
            args.big_rounds,
            before=warehouse.files.clear,
        )
        startup(runner, args.rounds)
    warehouse.close()
    sigstore.close()
    runtime.close()


if __name__ == "__main__":
    main()
