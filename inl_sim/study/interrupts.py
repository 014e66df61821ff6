"""SIGTERM handled like Ctrl-C, and what an interrupted study kept.

A study keeps every finished run on disk (:mod:`inl_sim.study.resume`); for that the
interpreter must unwind (close the lock, remove the temporary of a run being written)
instead of dying.  Python turns SIGINT into :class:`KeyboardInterrupt`; SIGTERM, by
default, kills at once.  :func:`sigterm_raises` makes SIGTERM raise :class:`Terminated`,
a ``KeyboardInterrupt``, so both signals take the same cleanup path.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

__all__ = ["Terminated", "sigterm_raises", "count_finished"]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every cleanup path runs the same way."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block SIGTERM raises :class:`Terminated`; a no-op off the main thread,
    where Python cannot set handlers."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def count_finished(folder: Path | None) -> int:
    """Finished run folders (``.../seed<k>/summary.json``) under a study folder."""
    if folder is None or not Path(folder).is_dir():
        return 0
    return sum(1 for p in Path(folder).glob("**/seed*/summary.json") if not p.parent.name.startswith("."))
