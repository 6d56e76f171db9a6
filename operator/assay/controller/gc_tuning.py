"""Python's cyclic garbage collector, set for a long-lived operator with large watch caches.

With the interpreter's defaults (a young collection every 700 new container objects, a full one after every
100 of those) the collector took 12.3 of the operator's 26.7 CPU-seconds in a tier-S burst of the
benchmark, 8.7 of them in 33 full collections of about a quarter of a second each: every one walks the
indexes of every pod, Job and Evaluation, and pauses the event loop, the webhook's answers included. So:

* what start-up built (modules, classes, kopf's registry: about 93,000 objects) is frozen, and full
  collections skip it;
* a full collection waits for 1,000 young ones instead of 100 (tier S: 4 of them; the collector's time
  12.3 -> 4.6 s, the operator's CPU 25.4 -> 20.0 s, in one round each).

The price: cyclic garbage waits longer to be freed, and the peak RSS of that round rose from 159 to 195 MiB.
"""

from __future__ import annotations

import gc

THRESHOLDS = (700, 10, 100)  # young, middle (the interpreter's), and full collections (10 by default)


def tune() -> None:
    """Freeze what exists now and set :data:`THRESHOLDS`; call once, after start-up's imports."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
