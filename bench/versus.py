"""`python -m bench.versus OTHER_CHECKOUT`: this checkout's action against another's, alternating.

To see what a change costs: OTHER_CHECKOUT is the same project at another commit (`git worktree
add /tmp/before <commit>`). Each round runs both, in turn, against the same stand-ins: a publish
of a wheel and an sdist (`attestations: false`), an input error (the fast failure), and five
wheels of `--megabytes` MB each. Both packages are byte-compiled first. Medians are printed;
nothing asserts a time.
"""

from __future__ import annotations

import argparse
import compileall
import statistics
import sys
import tempfile
from pathlib import Path

from bench.__main__ import big_wheel, measure, with_first_request_clock
from tests.conftest import ROOT, Runner, build_dists
from tests.servers import OidcRuntime, Warehouse
from tests.sigstore_standin import Sigstore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("other", type=Path, help="a checkout of this project at another commit")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--megabytes", type=int, default=50)
    args = parser.parse_args()
    trees = {f"other ({args.other})": args.other.resolve(), "this checkout": ROOT}
    for tree in trees.values():
        compileall.compile_dir(tree / "publisher", quiet=1)
    runtime = OidcRuntime()
    sigstore = Sigstore(runtime)
    warehouse = Warehouse(runtime)
    warehouse.publishers[0].projects = ("example-pkg", "big-pkg")
    with_first_request_clock(warehouse)
    runs = ("publish, 2 small files", "input error", f"publish, 5 x {args.megabytes} MB")
    times: dict[tuple[str, str], list[float]] = {(t, r): [] for t in trees for r in runs}
    with tempfile.TemporaryDirectory() as tmp:
        runner = Runner(Path(tmp), runtime, sigstore)
        small = build_dists(runner.workspace / "small")[0].parent
        big = big_wheel(runner.workspace / "big", args.megabytes).parent
        for tag in ("cp311-cp311-win_amd64", "cp312-cp312-win_amd64", "cp313-cp313-win_amd64"):
            big_wheel(big, args.megabytes, tag)
        big_wheel(big, args.megabytes, "cp310-cp310-win_amd64")
        for _round in range(args.rounds):
            for name, tree in trees.items():
                env = runner.environment(
                    {"repository-url": warehouse.upload_url, "attestations": "false"}
                )
                env.pop("PUBLISHER_RETRY_DELAY")
                env["PYTHONPATH"] = str(tree)
                bad = env | {"INPUT_SKIP-EXISTING": "yes"}
                for run, folder, environ in zip(
                    runs, (small, None, big), (env, bad, env), strict=True
                ):
                    warehouse.files.clear()
                    command = [sys.executable, "-m", "publisher"]
                    if folder is not None:
                        command += ["--packages-dir", str(folder)]
                    sample = measure(
                        command, environ, runner.workspace, warehouse, ok=0 if folder else 1
                    )
                    times[name, run].append(sample.seconds)
    warehouse.close()
    sigstore.close()
    runtime.close()
    print(f"medians of {args.rounds} rounds, alternating\n")
    print("| run | " + " | ".join(trees) + " |")
    print("| --- |" + " --- |" * len(trees))
    for run in runs:
        cells = [f"{statistics.median(times[t, run]) * 1000:.0f} ms" for t in trees]
        print(f"| {run} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
