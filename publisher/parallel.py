"""The one place where work runs concurrently, with one bound.

Uploads (a transfer, then a second or more of work on the index) and transparency-log entries
are network round trips, so a few at once pay. Callers still see a plain list of results in
the order of their items, whatever order they finished in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_LIMIT = 4


@dataclass(frozen=True)
class Outcome(Generic[R]):
    """What became of one item: its value, its exception, or why it has neither."""

    value: R | None = None
    error: Exception | None = None
    started: bool = True
    finished: bool = True  # False: still running when the run was given up


def map_bounded(
    function: Callable[[T], R], items: Sequence[T], limit: int = DEFAULT_LIMIT
) -> list[R]:
    """`function` over `items`, at most `limit` at once; the results in the order of `items`.

    On a failure, items not yet started are never started, those in flight are waited for, and
    the exception of the earliest failed item is raised.
    """
    outcomes = run_bounded(function, items, limit=limit)
    for outcome in outcomes:
        if outcome.error is not None:
            raise outcome.error
    return [outcome.value for outcome in outcomes]  # type: ignore[misc]


def run_bounded(
    function: Callable[[T], R],
    items: Sequence[T],
    *,
    limit: int,
    first_alone: bool = False,
    stop: Callable[[], bool] = lambda: False,
    grace: float = 2.0,
    on_outcome: Callable[[int, Outcome[R]], None] = lambda index, outcome: None,
) -> list[Outcome[R]]:
    """`function` over `items` with at most `limit` in flight, each item's outcome in order.

    `first_alone`: the first item runs alone, the others start once it is done. A failure
    starts nothing new; what is in flight is waited for. When `stop()` turns true (polled every
    0.1 s), nothing new starts either, and what is in flight gets `grace` seconds, then is left
    running and reported unfinished. `on_outcome(index, outcome)` is called in this thread as
    each item ends.
    """
    import time
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    outcomes: dict[int, Outcome[R]] = {}
    running: dict[Future[R], int] = {}
    following = 0  # the next item to start
    failed = False
    deadline: float | None = None
    pool = ThreadPoolExecutor(max_workers=max(1, min(limit, len(items))))
    try:
        while following < len(items) or running:
            if deadline is None and stop():
                deadline = time.monotonic() + grace
            width = 1 if first_alone and not outcomes else max(1, limit)
            while (
                following < len(items) and not failed and deadline is None and len(running) < width
            ):
                running[pool.submit(function, items[following])] = following
                following += 1
            if not running:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            finished, _ = wait(running, timeout=0.1, return_when=FIRST_COMPLETED)
            for future in finished:
                index = running.pop(future)
                error = future.exception()
                if error is not None and not isinstance(error, Exception):
                    raise error
                outcome: Outcome[R] = (
                    Outcome(error=error) if error is not None else Outcome(future.result())
                )
                failed = failed or error is not None
                outcomes[index] = outcome
                on_outcome(index, outcome)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    for index in running.values():
        outcomes[index] = Outcome(finished=False)
    for index in range(following, len(items)):
        outcomes[index] = Outcome(started=False, finished=False)
    return [outcomes[index] for index in range(len(items))]
