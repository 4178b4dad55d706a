"""How a sweep's model calls go between the incremental scorer and the full model
(engine.protocols.WindowScorer): while the sweep runs incrementally, by the scorer; where
"auto" left the choice to a measurement (``scorer.probing``), by whichever of the two was
faster on the sweep's second batch; after an incremental call failed ("auto" only), by the
full model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastocclusion.engine.protocols import WindowScorer

__all__ = ["probed_calls"]

Call = Callable[[int, int], Any]


def probed_calls(
    scorer: WindowScorer, chunk: int, incremental: Call, full: Call, count_call: Callable[[], None]
) -> Call:
    """The model call of batch b of ``chunk``, ``(b, rows) -> value``: ``incremental``'s
    while the sweep runs incrementally, else ``full``'s. "auto" undecided
    (``scorer.probing``): batch 0 warms the incremental calls up, batch 1 is computed both
    ways and timed (the model's device synchronised around each; ``count_call`` counts the
    second call), and the faster kind computes the rest; a sweep of fewer than 3 batches
    cannot measure and the scorer decides unmeasured. An incremental call that fails hands
    its batch and the rest to ``full`` where the scorer steps aside (not for
    incremental=True: the error propagates).

    >>> measure = probed_calls(scorer, 8, incremental, full, count)  # doctest: +SKIP
    >>> scores = measure(0, 32)  # doctest: +SKIP
    """
    probe = scorer.probing and chunk >= 3
    running = scorer.unmeasured() if scorer.probing and not probe else True

    def timed(b: int, rows: int) -> Any:
        nonlocal running
        if not (probe and b == 1):
            return incremental(b, rows)
        scorer.synchronize()
        started = time.perf_counter()
        value = incremental(b, rows)
        scorer.synchronize()
        middle = time.perf_counter()
        other = full(b, rows)
        scorer.synchronize()
        count_call()
        if scorer.measured(middle - started, time.perf_counter() - middle):
            return value
        running = False
        return other

    def call(b: int, rows: int) -> Any:
        nonlocal running
        if running:
            try:
                return timed(b, rows)
            except Exception as error:
                if not scorer.failed(error):
                    raise
                running = False  # stepped aside: this batch and the rest in full
        return full(b, rows)

    return call
