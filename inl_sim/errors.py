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
