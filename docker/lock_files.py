"""Write `files.txt`: the file name of every hash in `requirements.txt`.

The lock says which sha256 digests each pin may have, not which file (which platform) each one
is. `tests/test_lock.py` needs the names to check, offline, that every platform the action runs
on natively has a wheel of every pin it needs. uv writes the same resolution as a PEP 751 lock
(`pylock.toml`), which names each file: this asks it for one in a temporary folder and keeps,
for each hash the lock allows, the pin and the file's name (not its URL).

Usage, in docker/ after compiling the lock (README, "Updating the lock"): python lock_files.py
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEADER = """\
# The file of each hash in requirements.txt: `name==version sha256 filename`, a line each.
# Written by `python lock_files.py` in docker/ from the same resolution as a PEP 751 lock; read by
# tests/test_lock.py to check that every platform the action runs on has a wheel of every pin.
"""


def allowed_hashes(lock: str) -> set[str]:
    return set(re.findall(r"--hash=sha256:([0-9a-f]{64})", lock))


def files_lines(pylock: dict[str, object], hashes: set[str]) -> list[str]:
    """`name==version sha256 filename` for each file of the PEP 751 lock whose hash is allowed."""
    lines = []
    packages = pylock.get("packages")
    assert isinstance(packages, list)
    for package in packages:
        files = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
        for file in files:
            sha256 = file["hashes"]["sha256"]
            if sha256 in hashes:
                name = file.get("name") or file["url"].rsplit("/", 1)[-1]
                lines.append(f"{package['name']}=={package['version']} {sha256} {name}")
    return sorted(lines)


def main() -> None:
    lock = (HERE / "requirements.txt").read_text()
    command = re.search(r"^#\s+uv pip compile (.*?) -o requirements.txt$", lock, re.M)
    if command is None:
        sys.exit("requirements.txt does not say the command it was compiled with")
    # The lock as a constraint: exactly its pins (a resolution from scratch could pick others).
    arguments = [a for a in command[1].split() if a != "--generate-hashes"]
    arguments += ["--constraint", "requirements.txt"]
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder, "pylock.toml")
        subprocess.run(
            [sys.executable, "-m", "uv", "pip", "compile", *arguments, "-q", "-o", str(output)],
            cwd=HERE,
            check=True,
        )
        pylock = tomllib.loads(output.read_text())
    lines = files_lines(pylock, allowed_hashes(lock))
    (HERE / "files.txt").write_text(HEADER + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
