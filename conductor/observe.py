"""What an operator sees of each call: metrics, and one log line per failed or slow call.

It wraps the dispatcher's ``handle`` before the server gets it, so neither the server
(AMQP only) nor the dispatcher (calls only) carries metrics or log policy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from conductor.dispatch import Delivery, Outcome
from conductor.metrics import Metrics

log = logging.getLogger("conductor.calls")

Handle = Callable[[bytes, Delivery], Awaitable[Outcome]]


class ObservedHandle:
    def __init__(self, handle: Handle, metrics: Metrics | None,
                 slow_call_ms: float) -> None:
        self.handle = handle
        self.metrics = metrics
        self.slow_call_ms = slow_call_ms

    async def __call__(self, body: bytes, delivery: Delivery) -> Outcome:
        metrics = self.metrics
        start = time.monotonic()
        if metrics is not None:
            metrics.in_flight.inc()
            if delivery.redelivered:
                metrics.redeliveries.inc()
        try:
            outcome = await self.handle(body, delivery)
        finally:
            if metrics is not None:
                metrics.in_flight.dec()
        seconds = time.monotonic() - start
        if metrics is not None:
            self._count(metrics, outcome, seconds)
        self._log(outcome, delivery, seconds * 1000.0)
        return outcome

    @staticmethod
    def _count(metrics: Metrics, outcome: Outcome, seconds: float) -> None:
        if outcome.expired:
            metrics.expired.inc()
            return
        metrics.observe_call(outcome.method, outcome.error_class or "ok", seconds)
        if outcome.replayed:
            metrics.replays.inc()
        if outcome.refused:
            metrics.refused.labels(outcome.refused).inc()
        elif outcome.error_class == "InvalidRequest":
            metrics.refused.labels("invalid").inc()

    def _log(self, outcome: Outcome, delivery: Delivery, ms: float) -> None:
        # The request id and broker user come from the context variables the dispatcher
        # set for this message (conductor/logs.py).
        fields = {"function": outcome.method, "duration_ms": round(ms, 1),
                  "outcome": outcome.error_class or "ok",
                  "message_id": (delivery.message_id or "")[:128] or None}
        if outcome.expired:
            return  # the dispatcher logged the drop
        if outcome.error_class is not None:
            log.info("%s failed with %s in %.1f ms", outcome.method, outcome.error_class, ms,
                     extra=fields)
        elif ms >= self.slow_call_ms:
            log.warning("%s was slow: %.1f ms (--slow-call-ms %g)", outcome.method, ms,
                        self.slow_call_ms, extra=fields)
