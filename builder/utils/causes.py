"""The chain of errors behind an error: `raise A from B` makes B the `__cause__` of A.

Libraries wrap errors (`datasets` wraps what a generator raises, huggingface_hub re-raises
httpx's), so the error worth reporting is often one or more links down. A chain can loop: an
error raised "from" itself, or from one behind it (`raise wrap(err) from err` where `wrap` may
return `err`), so every walk goes through `causes`, which yields each error once and ends.
"""

from __future__ import annotations

from collections.abc import Iterator


def causes(err: BaseException | None) -> Iterator[BaseException]:
    """`err`, then its `__cause__`, then that one's, ...; each error once, so a loop ends."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__
