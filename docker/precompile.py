"""Byte-compile what the action imports, and nothing else; run once while the image is built.

pip installs with --no-compile: most of the installed code is never loaded by a run (pygments'
lexers, docutils' languages, dnspython...), and compiling all of it cost 20 MB and 2 s of every
build. This compiles the package, then imports every module its source names anywhere (the stages
import their heavy dependencies inside functions), so Python writes .pyc files for those modules
and for everything they import in turn. A module missed here still works: Python compiles it in
memory when it is first imported. A module that the source names but the image lacks fails the
build here rather than a release later. The signing stack is imported in a second process, on
the second core, while this one imports the rest: 0.3 s of the build.

Usage: python precompile.py PACKAGE_DIR
"""

from __future__ import annotations

import ast
import compileall
import contextlib
import importlib
import os
import subprocess
import sys
from pathlib import Path


def imported_modules(package: Path) -> tuple[set[str], set[str]]:
    """Modules the package's source imports (they must exist), and the names it imports from
    them, which may be submodules (`from twine import sdist`) or attributes (`from x import f`)."""
    required: set[str] = set()
    maybe: set[str] = set()
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                required.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                required.add(node.module)
                maybe.update(f"{node.module}.{alias.name}" for alias in node.names)
    own = {package.name}
    return (
        {m for m in required if m.split(".")[0] not in own},
        {m for m in maybe if m.split(".")[0] not in own},
    )


# Imported in a second process, on the second core: the signing stack (its pydantic models are
# half the work), while this process imports the rest.
ALONGSIDE = ("sigstore", "pypi_attestations", "pydantic", "tuf")


def main(package: Path) -> None:
    sys.dont_write_bytecode = False  # the image sets PYTHONDONTWRITEBYTECODE for run time
    if not compileall.compile_dir(package, quiet=1):
        sys.exit(f"could not compile {package}")
    required, maybe = imported_modules(package)
    alongside = sorted(m for m in required if m.split(".")[0] in ALONGSIDE)
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    importer = "import importlib, sys; [*map(importlib.import_module, sys.argv[1:])]"
    child = subprocess.Popen([sys.executable, "-c", importer, *alongside], env=environ)
    for name in sorted(required - set(alongside)):
        importlib.import_module(name)
    for name in sorted(maybe - required):
        with contextlib.suppress(ModuleNotFoundError):  # an attribute, not a submodule
            importlib.import_module(name)
    if child.wait() != 0:
        sys.exit(f"could not import {', '.join(alongside)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
