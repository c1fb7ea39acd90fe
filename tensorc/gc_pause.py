"""`cycle_collection_paused`: Python's cyclic garbage collector paused while tensorc works.

A compile allocates some 100,000 objects (IR ops, llvmlite values), and `import tensorc` as
many again (NumPy's, lark's and llvmlite's modules). Every 700 net allocations start a young
collection, and every few of those an older one that walks the long-lived objects again, so
a cold compile spent a tenth of its time in the collector. Pausing it for the import and the
compile, and resuming it after (only if it was running), gives the same results sooner; what
cycles a compile leaves garbage (an IR module's ops and blocks) go at the next collection.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    was_running = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_running:
            gc.enable()
