"""The small exception family of inl-sim.

Every error a user can trigger with bad input is an :class:`InlSimError`, so the CLI can
turn it into one line and exit code 2.  Messages name the field, the value, the rule and
the fix, e.g. ``topology.capacity_bps: -3 must be > 0; give a positive link capacity``.
"""

from __future__ import annotations

__all__ = [
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
    """Training produced a non-finite loss or parameter: the run stops with status ``diverged``.

    ``epoch`` and ``step`` locate the first non-finite value (``step`` is -1 when only the
    epoch's mean loss was checked); ``node`` names the node whose loss or parameters went
    non-finite, when known.  Not a bad-input error: the scenario is valid, its optimiser
    settings are not, so the CLI exits 3 rather than 2.
    """

    def __init__(self, message: str, *, epoch: int, step: int, node: object = None) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.node = node


class ExecutorError(InlSimError, ValueError):
    """A study cannot run where asked (unknown executor, bad jobs, Ray missing or unreachable)."""


def field_error(
    cls: type[InlSimError], field: str, value: object, rule: str, fix: str, *, source: str | None = None
) -> InlSimError:
    """Build an error whose message follows the project's 'field: value rule; fix' form.

    ``source`` (a file path) is prefixed when the bad value came from a file, so a user
    with several scenario files knows which one to open.
    """
    where = f"{source}: " if source else ""
    return cls(f"{where}{field}: {value!r} {rule}; {fix}")
