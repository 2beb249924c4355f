"""The one place where work runs concurrently, with one bound.

Signing (one transparency-log entry per file) is network round trips, so a few at once pay.
Callers still see a plain list of results in the order of their items, whatever order they
finished in, and the first failure as if the items had been done one after the other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_LIMIT = 4


def map_bounded(
    function: Callable[[T], R], items: Sequence[T], limit: int = DEFAULT_LIMIT
) -> list[R]:
    """`function` over `items`, at most `limit` at once; the results in the order of `items`.

    On a failure, items not yet started are never started, those in flight are waited for, and
    the exception of the earliest failed item is raised.
    """
    if limit <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    with ThreadPoolExecutor(max_workers=min(limit, len(items))) as pool:
        futures = [pool.submit(function, item) for item in items]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() is not None for f in done):
            for future in futures:
                future.cancel()
            wait(futures)
        for future in futures:
            error = None if future.cancelled() else future.exception()
            if error is not None:
                raise error
        return [future.result() for future in futures]
