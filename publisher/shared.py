"""What every stage of a publish shares, as one value: the log, the retry policy, the HTTP
session and the job's cancellation."""

from __future__ import annotations

from dataclasses import dataclass

import requests

from publisher.cancel import Cancellation
from publisher.console import Console
from publisher.http import RetryPolicy


@dataclass(frozen=True)
class Shared:
    console: Console
    policy: RetryPolicy
    session: requests.Session
    cancellation: Cancellation

    def log(self, text: str) -> None:
        self.console.line(text)
