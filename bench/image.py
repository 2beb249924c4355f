"""`python -m bench.image ANCHOR_DIR`: our image's build time and size against the anchor's.

ANCHOR_DIR is a checkout of pypa/gh-action-pypi-publish: its Dockerfile, requirements/ and the
files it copies. Both Dockerfiles are built on the same base, the tests' local stand-in for
python:3.13-slim (`tests/container/setup.sh` makes it and installs buildah and podman; root
only): ours through its BASE_IMAGE argument, the anchor's from a copy whose `FROM` line names
that base (ANCHOR_DIR itself is not changed). Each build is the one the tests and the runner
make: no layer cache, packages downloaded from the index at every build. The builds alternate,
`--pairs` times; the build time is the median, the ratio both the ratio of the medians and the
median of each pair's ratio; the size is what each image adds to the base.

Nothing here asserts a time: the numbers are for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tests import images
from tests.conftest import ROOT


def build(context: Path, tag: str, base: str) -> float:
    """Build `context` as the tests do; the wall time in seconds."""
    started = time.monotonic()
    command = images.build_command(context, tag, base)
    built = subprocess.run(command, capture_output=True, text=True, check=False)
    if built.returncode != 0:
        raise SystemExit(f"building {context} failed:\n{built.stdout}{built.stderr}")
    return time.monotonic() - started


def size(image: str) -> int:
    inspect = ["podman", "image", "inspect", "--format", "{{.Size}}", image]
    return int(subprocess.run(inspect, capture_output=True, text=True, check=True).stdout)


def on_base(anchor: Path, base: str, into: Path) -> Path:
    """A copy of the anchor's build context whose Dockerfile starts from `base`."""
    copy = into / "anchor"
    shutil.copytree(anchor, copy, ignore=shutil.ignore_patterns(".git"))
    dockerfile = copy / "Dockerfile"
    text, replaced = re.subn(
        r"^FROM \S+", f"FROM {base}", dockerfile.read_text(), count=1, flags=re.M
    )
    if not replaced:
        raise SystemExit(f"{anchor / 'Dockerfile'}: no FROM line")
    dockerfile.write_text(text)
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.image", description=__doc__.splitlines()[0]
    )
    parser.add_argument("anchor", type=Path, help="a checkout of pypa/gh-action-pypi-publish")
    parser.add_argument("--pairs", type=int, default=10, help="builds of each, alternating")
    args = parser.parse_args()
    setup = images.set_up()
    if setup.returncode != 0:
        raise SystemExit(f"tests/container/setup.sh failed:\n{setup.stdout}\n{setup.stderr}")
    base = setup.stdout.split()[-1]
    with tempfile.TemporaryDirectory() as tmp:
        contexts = {"ours": ROOT, "anchor": on_base(args.anchor.resolve(), base, Path(tmp))}
        times: dict[str, list[float]] = {name: [] for name in contexts}
        for _ in range(args.pairs):
            for name, context in contexts.items():
                times[name].append(build(context, f"localhost/bench-{name}:latest", base))
    added = {name: size(f"localhost/bench-{name}:latest") - size(base) for name in contexts}
    ours, anchor = statistics.median(times["ours"]), statistics.median(times["anchor"])
    pairwise = statistics.median(o / a for o, a in zip(times["ours"], times["anchor"], strict=True))
    print(f"\n### The image, built on {base} ({args.pairs} builds each, alternating)\n")
    print(f"| | build (median of {args.pairs}) | added to the base |")
    print("| --- | --- | --- |")
    for name, label in (("ours", "ours"), ("anchor", "the anchor's")):
        low, high = min(times[name]), max(times[name])
        median = statistics.median(times[name])
        print(
            f"| {label} | {median:.2f} s ({low:.2f} to {high:.2f}) | {added[name] / 1e6:.1f} MB |"
        )
    print(
        f"| ratio | **{ours / anchor:.2f}** (median of the pairs' ratios: {pairwise:.2f}) "
        f"| **{added['ours'] / added['anchor']:.2f}** |"
    )


if __name__ == "__main__":
    main()
