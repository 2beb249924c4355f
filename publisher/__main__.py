"""`python -m publisher`: the action's entry point, and the same tool on a laptop.

The environment is read here (into the settings and the run context); exit 0 when everything
was published (or a dry run found nothing wrong), 1 with an explanation otherwise. An exception
that is not a `PublishError` is a bug: it keeps its traceback, with every secret redacted. From
the first upload request on, `publish` itself reports every ending, bugs and cancellations
included, file by file; what reaches this function then is a failure before any upload.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from publisher.cancel import Cancellation, Cancelled
from publisher.console import Console
from publisher.context import RunContext, decide_dry_run, load_context
from publisher.errors import PublishError
from publisher.network import setup_network
from publisher.settings import Settings, load_settings
from publisher.worker import Worker

if TYPE_CHECKING:
    from publisher.values import Report


def main(argv: Sequence[str] | None = None) -> int:
    environ = dict(os.environ)
    context = load_context(environ)
    console = Console(in_actions=context.in_actions)
    cancellation = Cancellation()
    cancellation.install()
    worker = None
    report = None
    try:
        settings = load_settings(environ, sys.argv[1:] if argv is None else argv)
        console.mask(settings.password)
        console.verbose = settings.verbose
        setup_network(settings.ca_certificates, os.environ, console)  # before any connection
        for warning in settings.warnings:
            console.warning(warning, title="Deprecated input")
        if _will_sign(settings, context):
            import requests  # noqa: F401 - both processes need it: loaded once, before the fork

            worker = Worker(lambda: _prepare_signing(settings, console))

        from publisher.job import Job
        from publisher.publish import publish

        report = publish(Job(settings, context, console, cancellation, worker))
        with cancellation.deferred():
            _write_report(report, context, console)
    except PublishError as error:
        _write_failure(error, context, console, cancellation)
        return 1
    except Cancelled as stop:
        if report is not None:  # stopped as the report was about to be written: write it
            with cancellation.deferred():
                _write_report(report, context, console)
            return 1
        _write_failure(stop.before_upload(), context, console, cancellation)
        return 1
    except Exception as bug:
        console.traceback(bug)
        _write_failure(
            PublishError(
                f"This is a bug in the action, not in your workflow (`{type(bug).__name__}`): "
                "please report it with the traceback from the step's log. Nothing was "
                "uploaded: the action stopped before its first upload request.",
                title="Internal error",
            ),
            context,
            console,
            cancellation,
        )
        return 1
    finally:
        if worker is not None:
            worker.close()
    return 1 if report.error is not None else 0


def _write_report(report: Report, context: RunContext, console: Console) -> None:
    from publisher.report import write_report

    write_report(report, context, console)


def _write_failure(
    error: PublishError, context: RunContext, console: Console, cancellation: Cancellation
) -> None:
    from publisher.report import write_failure

    with cancellation.deferred():
        write_failure(error, context, console)


def _prepare_signing(settings: Settings, console: Console) -> object:
    """In the worker: load sigstore and its trust root while this process does the rest."""
    from publisher.attestations import prepare_signing
    from publisher.http import RetryPolicy

    return prepare_signing(
        settings.sigstore_trust_config, RetryPolicy(delay=settings.retry_delay), console
    )


def _will_sign(settings: Settings, context: RunContext) -> bool:
    """Whether this run is to sign attestations: then a worker starts loading sigstore now."""
    return (
        hasattr(os, "fork")
        and settings.signs
        and context.oidc_available
        and not decide_dry_run(settings, context).enabled
    )


def run() -> None:
    """Run as a program: a short-lived process, so spend nothing on tidying memory.

    The cyclic collector would otherwise run dozens of times over the objects of the imports
    (requests, twine, packaging), and the interpreter's clean-up at exit frees every module one by
    one: together about 40 ms of a 240 ms publish, none of it useful. Both as mypy does: a high
    collection threshold, and `os._exit` once the output is flushed. Every file we write is
    closed by then (`with` blocks), and the console flushes each line as it writes it.
    """
    gc.set_threshold(100_000, 50, 50)
    status = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said there
            status = status or 1
    os._exit(status)


if __name__ == "__main__":
    run()
