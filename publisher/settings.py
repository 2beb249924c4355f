"""What the user asked for: the step's inputs, or the same settings as command-line flags.

The runner passes each input as `INPUT_<NAME>` with hyphens kept (`INPUT_REPOSITORY-URL`). The
names and defaults are those of pypa/gh-action-pypi-publish, so a workflow written for it runs
unchanged; its deprecated snake_case aliases still work and earn a warning. Everything is
validated here, before any network request, and each error names the input.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from publisher.errors import InputError

if TYPE_CHECKING:
    import argparse

PYPI_UPLOAD_URL = "https://upload.pypi.org/legacy/"
TOKEN_USER = "__token__"  # noqa: S105 - the user name of API tokens, not a secret
DRY_RUN_CHOICES = ("auto", "true", "false")

# input name -> deprecated alias that still works
ALIASES = {
    "repository-url": "repository_url",
    "packages-dir": "packages_dir",
    "verify-metadata": "verify_metadata",
    "skip-existing": "skip_existing",
    "print-hash": "print_hash",
}

DEFAULTS = {
    "user": TOKEN_USER,
    "password": "",
    "repository-url": PYPI_UPLOAD_URL,
    "packages-dir": "dist",
    "verify-metadata": "true",
    "skip-existing": "false",
    "verbose": "false",
    "print-hash": "false",
    "attestations": "",  # empty: on wherever it can work (see `Settings.attestations`)
    "dry-run": "auto",
    "sigstore-trust-config": "",
    "upload-concurrency": "4",
    "index-url": "",
    "await-release": "true",
    "await-timeout": "300",
    "ca-certificates": "",
    "run-in": "auto",  # read by action/launch.py, which starts the publisher one way or the other
}
RUN_IN_CHOICES = ("auto", "container", "native")
BOOLEANS = ("verify-metadata", "skip-existing", "verbose", "print-hash", "await-release")
MAX_CONCURRENCY = 16  # more gains nothing on an index that spends a second per file


@dataclass(frozen=True)
class Settings:
    user: str
    password: str
    repository_url: str
    packages_dir: Path
    verify_metadata: bool
    skip_existing: bool
    verbose: bool
    print_hash: bool
    attestations: bool | None  # None: not set, so on with trusted publishing and quiet elsewhere
    dry_run: str  # one of DRY_RUN_CHOICES
    sigstore_trust_config: Path | None = None  # None: the public Sigstore instance
    upload_concurrency: int = 4  # files in flight at once, after the first (and log entries)
    index_url: str = ""  # the index's simple root, as pip's --index-url; empty: derived
    await_release: bool = True  # after uploading, wait until the index serves every file
    await_timeout: float = 300.0  # seconds
    ca_certificates: tuple[Path, ...] = ()  # PEM files added to the default roots
    retry_delay: float = 2.0  # seconds before the first retry; doubles at each next one
    warnings: tuple[str, ...] = ()

    @property
    def trusted_publishing(self) -> bool:
        """As in the anchor action: `__token__` with no password means "mint one"."""
        return self.user == TOKEN_USER and not self.password

    @property
    def signs(self) -> bool:
        """The rule for attestations: signed with trusted publishing unless `attestations` is
        `false`; never with a password (PyPI takes attestations only from trusted publishing)."""
        return self.trusted_publishing and self.attestations is not False


def load_settings(environ: Mapping[str, str], argv: Sequence[str] = ()) -> Settings:
    """Read the inputs from the runner's environment, let flags override them, validate all."""
    raw, warnings = _raw_inputs(environ, _parse_flags(argv))

    # Only the password is kept verbatim: a secret may legitimately end in a space.
    password = environ.get("INPUT_PASSWORD", "") or ""
    user = raw["user"]
    if password.strip() == "":
        password = ""
    if user != TOKEN_USER and not password:
        raise InputError(
            "user",
            user,
            "a `password` is needed with any user other than `__token__`. For trusted "
            "publishing, remove both `user` and `password` from the step.",
        )

    dry_run = raw["dry-run"].lower()
    if dry_run not in DRY_RUN_CHOICES:
        raise InputError("dry-run", raw["dry-run"], "expected `auto`, `true` or `false`.")
    if raw["run-in"].lower() not in RUN_IN_CHOICES:
        raise InputError("run-in", raw["run-in"], "expected `auto`, `container` or `native`.")

    # The checks that need no import first: a typo in a boolean fails in tens of milliseconds.
    flags = {name: _boolean(name, raw[name]) for name in BOOLEANS}
    attestations = _boolean("attestations", raw["attestations"]) if raw["attestations"] else None
    concurrency = _concurrency(raw["upload-concurrency"])
    await_timeout = _seconds("await-timeout", raw["await-timeout"])
    return Settings(
        user=user,
        password=password,
        repository_url=_repository_url(raw["repository-url"]),
        packages_dir=_packages_dir(raw["packages-dir"]),
        verify_metadata=flags["verify-metadata"],
        skip_existing=flags["skip-existing"],
        verbose=flags["verbose"],
        print_hash=flags["print-hash"],
        attestations=attestations,
        dry_run=dry_run,
        sigstore_trust_config=_trust_config(raw["sigstore-trust-config"]),
        upload_concurrency=concurrency,
        index_url=_index_url(raw["index-url"]),
        await_release=flags["await-release"],
        await_timeout=await_timeout,
        ca_certificates=_ca_certificates(raw["ca-certificates"], environ),
        retry_delay=_retry_delay(environ.get("PUBLISHER_RETRY_DELAY", "")),
        warnings=tuple(warnings),
    )


def _raw_inputs(
    environ: Mapping[str, str], flags: argparse.Namespace | SimpleNamespace
) -> tuple[dict[str, str], list[str]]:
    """Each input's text (a flag over the variable over its deprecated alias's, else the
    default), and the warnings the aliases earn."""
    raw: dict[str, str] = {}
    warnings: list[str] = []
    for name, default in DEFAULTS.items():
        value = environ.get(_variable(name), "").strip()
        alias = ALIASES.get(name)
        alias_value = environ.get(_variable(alias), "").strip() if alias else ""
        if alias and alias_value:
            if value and value != alias_value:
                warnings.append(
                    f"Both `{name}` and its deprecated alias `{alias}` are set; "
                    f"using `{name}` (`{value}`). Remove `{alias}`."
                )
            elif not value:
                value = alias_value
                warnings.append(f"Input `{alias}` is deprecated; rename it to `{name}`.")
        flag_value = getattr(flags, name.replace("-", "_"))
        if flag_value is not None:
            value = flag_value
        raw[name] = value or default
    return raw, warnings


def _variable(name: str) -> str:
    return "INPUT_" + name.upper().replace(" ", "_")


def _boolean(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise InputError(name, value, "expected `true` or `false`.")
    return lowered == "true"


def _repository_url(value: str) -> str:
    return _http_url("repository-url", value)


def _http_url(name: str, value: str) -> str:
    """An http(s) URL that requests connects to where we think it does: credentials go there.

    The rules are checked on the URL as requests will use it, not only as `urllib.parse` reads
    it: the two parsers differ (`http://evil.example\\@127.0.0.1/` is loopback to one and
    evil.example to the other), so whatever they could read differently is refused rather than
    guessed at. The error shows the URL without anything that could be a password in it.
    """
    problem = _url_problem(value)
    if problem:
        shown = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in value)
        raise InputError(name, _without_userinfo(shown), problem)
    return value


def _url_problem(value: str) -> str:
    """Why credentials must not be sent to `value`; empty if nothing is wrong with it."""
    if any(c == "\\" or c.isspace() or not c.isprintable() for c in value):
        return (
            "it holds a backslash, a space or a control character, which URL parsers read "
            "differently (requests could connect to another host than the one checked). "
            "Write the URL without them."
        )
    ours = _endpoint(value)
    if ours is None:
        return "it cannot be read as a URL: check its port and any `[IPv6]` address."
    if ours[0] not in ("http", "https") or not ours[1]:
        return (
            "expected an http(s) URL with a host, such as `https://upload.pypi.org/legacy/` "
            "or `https://test.pypi.org/legacy/`."
        )
    if "@" in urlsplit(value).netloc:
        return (
            "it holds a user name or password (`user:password@host`). Give them in the "
            "`user` and `password` inputs (the password from a secret), and the URL without them."
        )
    if not _HOST.fullmatch(ours[1]):
        return (
            "the host may hold only ASCII letters, digits, `.`, `-` and `_`, or be an IP "
            "address: write an internationalized name in its `xn--` form."
        )
    if _endpoint_requests_uses(value) != ours:
        return (
            "requests would not connect to the scheme, host and port the URL reads as. "
            "Write it in the plain form `https://host[:port]/path`."
        )
    if ours[0] == "http" and not _is_loopback(ours[1]):
        return (
            "plain `http://` would send the upload credentials across the network in clear "
            "text. Use `https://` (plain http is accepted only for 127.0.0.1, localhost and ::1)."
        )
    return ""


# A host name or an IP address (IPv6 without its brackets, as urlsplit gives it), nothing else:
# no percent-encoding, and no non-ASCII letter that IDNA would map onto another one.
_HOST = re.compile(r"[a-z0-9._-]+|[0-9a-f:.]+")


def _endpoint(url: str) -> tuple[str, str, int | None] | None:
    """Scheme, host and port as `urllib.parse` reads `url`; None if it cannot."""
    try:
        parts = urlsplit(url)
        return parts.scheme, parts.hostname or "", parts.port
    except ValueError:  # an invalid port or IPv6 address
        return None


def _endpoint_requests_uses(url: str) -> tuple[str, str, int | None] | None:
    """Scheme, host and port requests connects to for `url`: it prepares the URL with urllib3's
    parser, then its adapter picks the connection from `urllib.parse` on the URL prepared."""
    import requests

    prepared = requests.PreparedRequest()
    try:
        prepared.prepare_url(url, None)
    except ValueError:  # requests' InvalidURL and MissingSchema are ValueErrors
        return None
    return _endpoint(prepared.url or "")


def _without_userinfo(url: str) -> str:
    """`url` fit to print: what could be `user:password@` becomes `***@`. Up to the last `@`,
    as a parser that reads the URL otherwise could find a password anywhere before it."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    if "@" not in rest:
        return url
    return f"{scheme}{separator}***@{rest.rpartition('@')[2]}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _packages_dir(value: str) -> Path:
    path = Path(value)
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise InputError(
            "packages-dir",
            value,
            f"`{path.absolute()}` {what}. Build your distributions first (for example "
            "`python -m build`), or point `packages-dir` at the folder that holds them.",
        )
    return path


def _index_url(value: str) -> str:
    """Held to the rules of `repository-url`: it is read with the upload credentials."""
    if not value:
        return ""
    url = _http_url("index-url", value)
    return url if url.endswith("/") else url + "/"


def _seconds(name: str, value: str) -> float:
    seconds = _decimal(value)
    if seconds is None or not 0 <= seconds <= 3600:
        raise InputError(name, value, "expected a number of seconds from 0 to 3600.")
    return seconds


def _decimal(value: str, *, fraction: bool = True) -> float | None:
    """The number `value` writes in ASCII digits (`300`, `0.5`), or None for anything else.

    `float()` and `int()` take more than a reader of the workflow would call a number (`١٢`,
    `1_0`, `1e3`, `nan`, `inf`) and not all of the same (`²` passes `str.isdigit` and fails
    `int()`), so neither is asked before this pattern is met. A float reads any length of
    digits (`int()` refuses past 4300 of them); the caller checks the range.
    """
    pattern = _DECIMAL if fraction else _DIGITS
    return float(value) if pattern.fullmatch(value) else None


_DIGITS = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+")


def _ca_certificates(value: str, environ: Mapping[str, str]) -> tuple[Path, ...]:
    """PEM files, one a line (or separated by spaces); see `publisher.network`."""
    if not value:
        return ()
    from publisher.network import certificate_paths

    return certificate_paths(value, environ)


def _concurrency(value: str) -> int:
    number = _decimal(value, fraction=False)
    if number is None or not 1 <= number <= MAX_CONCURRENCY:
        raise InputError(
            "upload-concurrency",
            value,
            f"expected a whole number from 1 (one file at a time) to {MAX_CONCURRENCY}.",
        )
    return int(number)


def _trust_config(value: str) -> Path | None:
    """A client trust configuration, as `sigstore --trust-config` reads it; checked in full where
    it is used, only when attesting (that needs sigstore), so here just that it can be read."""
    if not value:
        return None
    import json

    path = Path(value)
    problem = ""
    try:
        media_type = json.loads(path.read_text(encoding="utf-8")).get("mediaType", "")
        if not str(media_type).startswith("application/vnd.dev.sigstore.clienttrustconfig"):
            problem = (
                f"`{path}` is JSON, but not a Sigstore client trust configuration (its "
                f"`mediaType` is `{media_type}`, expected "
                "`application/vnd.dev.sigstore.clienttrustconfig.v0.1+json`)."
            )
    except FileNotFoundError:
        problem = f"`{path.absolute()}` does not exist."
    except (OSError, ValueError, AttributeError, RecursionError) as e:  # JSON nested too deep
        problem = f"`{path}` cannot be read as a JSON object ({e})."
    if problem:
        raise InputError(
            "sigstore-trust-config",
            value,
            problem + " Give the path, relative to the workspace, of the client trust "
            "configuration of your Sigstore instance, or remove the input to use the public one.",
        )
    return path


def _retry_delay(value: str) -> float:
    """`PUBLISHER_RETRY_DELAY`, a knob of the tests (they need no 2 s waits). No user sets it,
    so a value that is not a number of seconds up to a minute is the default, not an error."""
    delay = _decimal(value.strip())
    return delay if delay is not None and delay <= 60 else 2.0


# The flags of a laptop's run: (flag, what it sets, metavar or the value a switch stores, help).
FLAGS = (
    ("--packages-dir", "packages_dir", "DIR", "folder with the distributions (default: dist)"),
    ("--repository-url", "repository_url", "URL", f"upload URL (default: {PYPI_UPLOAD_URL})"),
    ("--user", "user", "NAME", "user name (default: __token__, trusted publishing)"),
    ("--skip-existing", "skip_existing", True, "skip files the index already has"),
    (
        "--no-verify-metadata",
        "verify_metadata",
        False,
        "do not check the metadata before uploading",
    ),
    ("--print-hash", "print_hash", True, "print every file's SHA256, MD5 and BLAKE2-256"),
    ("--verbose", "verbose", True, "show the index's answers"),
    (
        "--upload-concurrency",
        "upload_concurrency",
        "N",
        "files uploaded at once, after the first (default: 4)",
    ),
    ("--index-url", "index_url", "URL", "the index's simple root (default: derived)"),
    (
        "--no-await-release",
        "await_release",
        False,
        "do not wait until the index serves the files",
    ),
    ("--await-timeout", "await_timeout", "SECONDS", "how long to wait for them (default: 300)"),
    ("--ca-certificates", "ca_certificates", "PEM", "a CA to trust besides the default roots"),
)


def _parse_flags(argv: Sequence[str]) -> argparse.Namespace | SimpleNamespace:
    """The flags given; none in GitHub Actions, where argparse is not even imported."""
    if not argv:
        return SimpleNamespace(**dict.fromkeys(name.replace("-", "_") for name in DEFAULTS))
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m publisher",
        description=(
            "Publish the distributions in a folder to PyPI or another index. In GitHub Actions "
            "the step's inputs arrive as INPUT_* variables; on a laptop, use these flags "
            "(the password, if any, only through the INPUT_PASSWORD variable)."
        ),
    )
    parser.add_argument(
        "--dry-run",
        nargs="?",
        const="true",
        metavar="auto|true|false",
        help="do everything but upload (default: auto, a dry run in forks)",
    )
    for flag, dest, value, text in FLAGS:
        if isinstance(value, bool):  # a switch
            store = str(value).lower()
            parser.add_argument(flag, dest=dest, action="store_const", const=store, help=text)
        else:
            parser.add_argument(flag, dest=dest, metavar=value, help=text)
    parser.set_defaults(password=None, attestations=None, sigstore_trust_config=None, run_in=None)
    return parser.parse_args(list(argv))
