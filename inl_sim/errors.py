"""The small exception family of inl-sim.

Every error a user can trigger with bad input is an :class:`InlSimError`, so the CLI can
turn it into one line and exit code 2.  Messages name the field, the value, the rule and
the fix, e.g. ``topology.capacity_bps: -3 must be > 0; give a positive link capacity``.
"""

from __future__ import annotations

import reprlib

__all__ = [
    "short",
    "InlSimError",
    "ScenarioError",
    "TopologyError",
    "RoutingError",
    "DataError",
    "ResultsError",
    "DivergedError",
    "ExecutorError",
]


class InlSimError(Exception):
    """Base class of every error raised on purpose by inl-sim."""


class ScenarioError(InlSimError, ValueError):
    """A scenario (YAML file, dict or override) is malformed or has a bad value."""


class TopologyError(InlSimError, ValueError):
    """A topology cannot be built or is unusable (disconnected, bad roles, bad file)."""


class RoutingError(InlSimError, ValueError):
    """A training graph cannot be derived (unknown cost, unreachable fusion node)."""


class DataError(InlSimError, ValueError):
    """A data set cannot be built for the requested views and sizes."""


class ResultsError(InlSimError, ValueError):
    """A results folder is missing, incomplete or of an unknown layout."""


class DivergedError(InlSimError):
    """Training produced a non-finite loss, message or parameter: the run stops as ``diverged``.

    Raised by both engines at the step where the loss stops being finite (and, as a
    backstop, by the epoch loop when an epoch's mean loss is not finite: ``step`` -1).
    ``node`` is the first node (in processing order) whose message or parameters went
    non-finite, or None when none can be named.  Not a bad-input error: the scenario is
    valid, its optimiser settings are not, so the CLI exits 3 rather than 2.  ``history``
    holds the epochs completed before it (the epoch loop fills it in).
    """

    def __init__(self, epoch: int, step: int, node: object | None = None, reason: str | None = None) -> None:
        super().__init__(epoch, step, node, reason)   # args rebuild the error (SimPy re-raises copies)
        self.epoch, self.step, self.node, self.reason = epoch, step, node, reason
        self.history: list = []

    def __str__(self) -> str:
        if self.reason:
            return self.reason
        where = f" at node {self.node!r}" if self.node is not None else ""
        return (f"training diverged in epoch {self.epoch}, step {self.step}{where}: the loss is not finite; "
                "lower training.lr or raise gate.beta")


class ExecutorError(InlSimError, ValueError):
    """A study cannot run where asked (unknown executor, bad jobs, Ray missing or unreachable)."""
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6
_REPR.maxlevel = 3
_REPR.maxlong = 40


def short(value: object) -> str:
    """``repr(value)`` cut to about 100 characters, so that a 20,000-item value or a
    5,000-digit number still gives a one-line, readable error."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"<an integer of about {int(value.bit_length() * 0.30103)} digits>"
    try:
        text = _REPR.repr(value)
    except (ValueError, RecursionError):  # e.g. an int past Python's int-to-str limit
        text = f"<a {type(value).__name__} that cannot be shown>"
    text = " ".join(text.split())
    return text if len(text) <= 120 else text[:117] + "..."


def field_error(
    cls: type[InlSimError], field: str, value: object, rule: str, fix: str, *, source: str | None = None
) -> InlSimError:
    """Build an error whose message follows the project's 'field: value rule; fix' form.

    ``source`` (a file path) is prefixed when the bad value came from a file, so a user
    with several scenario files knows which one to open.
    """
    where = f"{source}: " if source else ""
    return cls(f"{where}{field}: {short(value)} {rule}; {fix}")
