"""The one bounded pool: results in the order of the items, the earliest failure raised."""

from __future__ import annotations

import threading
import time

import pytest

from publisher.parallel import map_bounded


def test_results_keep_the_order_of_the_items_whatever_finishes_first() -> None:
    def slow_for_small(n: int) -> int:
        time.sleep(0.02 * (5 - n))
        return n * 10

    assert map_bounded(slow_for_small, [1, 2, 3, 4], limit=4) == [10, 20, 30, 40]


def test_never_more_than_the_limit_at_once() -> None:
    lock = threading.Lock()
    running = 0
    most = 0

    def work(_: int) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.01)
        with lock:
            running -= 1

    map_bounded(work, list(range(12)), limit=3)

    assert most == 3


def test_a_failure_stops_what_has_not_started_and_is_raised() -> None:
    started: list[int] = []

    def work(n: int) -> int:
        started.append(n)
        if n == 1:
            raise ValueError("item 1 failed")
        time.sleep(0.05)
        return n

    with pytest.raises(ValueError, match="item 1 failed"):
        map_bounded(work, list(range(20)), limit=2)

    assert len(started) < 20
