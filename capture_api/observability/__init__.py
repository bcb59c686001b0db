"""What operators watch: Prometheus metrics and the health of the background loops.

``metrics`` (the counters, the STOW latency and the outbox depth, rendered for /metrics)
and ``loops`` (``LoopHealth``: a background loop failing again and again makes /readyz
answer 503). The readiness checks themselves are ``capture_api.api.readiness``.
"""

from capture_api.observability import metrics
from capture_api.observability.loops import LoopHealth

__all__ = [
    "LoopHealth",
    "metrics",
]
