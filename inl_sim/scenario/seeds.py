"""Seeds of a study: a count, a list or a range, checked before anything is imported.

Lives in the scenario wing so that ``--seeds`` is refused in a fraction of a second,
before torch loads; the limits keep ``--seeds 10**11`` from building a huge tuple.
"""

from __future__ import annotations

import re
from typing import Iterable

from inl_sim.errors import ScenarioError

__all__ = ["parse_seeds", "MAX_SEEDS", "MAX_SEED"]

MAX_SEEDS = 10 ** 6        # seeds in one study
MAX_SEED = 2 ** 32 - 1     # the run seed is a 32-bit unsigned integer (scenario ``seed``)
MAX_TEXT = 100_000         # characters of a seed list
_RANGE = re.compile(r"^\s*(\d+)\s*(?:-|\.\.)\s*(\d+)\s*$")


def parse_seeds(value: int | str | Iterable[int]) -> tuple[int, ...]:
    """Seeds from a count (``5`` -> 0..4), a list (``"0,1,2,7"``) or a range (``"0-9"``, ``"0..9"``, inclusive)."""
    if isinstance(value, bool):
        raise ScenarioError(f"seeds: {value!r} is not a count, list or range; write e.g. 5, 0,1,2,7 or 0-9")
    if isinstance(value, int):
        if value < 1:
            raise ScenarioError(f"seeds: {value} must be a count >= 1; write e.g. 5 (seeds 0..4)")
        if value > MAX_SEEDS:
            raise ScenarioError(f"seeds: {value:,} exceeds the limit of {MAX_SEEDS:,} seeds; use fewer seeds")
        return tuple(range(value))
    if isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_TEXT:
            raise ScenarioError(f"seeds: a text of {len(text):,} characters exceeds {MAX_TEXT:,}; "
                                "use a count or a range, e.g. 0-999")
        if text.isdigit():
            return parse_seeds(int(text))
        match = _RANGE.match(text)
        if match:
            lo, hi = int(match.group(1)), int(match.group(2))
            if lo > hi:
                raise ScenarioError(f"seeds: range {text!r} runs backwards; write the low end first, e.g. {hi}-{lo}")
            if hi - lo + 1 > MAX_SEEDS or hi > MAX_SEED:
                raise ScenarioError(f"seeds: range {text[:40]!r} exceeds {MAX_SEEDS:,} seeds or seed {MAX_SEED}; "
                                    "use a smaller range")
            return tuple(range(lo, hi + 1))
        parts = [p.strip() for p in text.split(",")]
        if not all(p.isdigit() for p in parts):
            raise ScenarioError(f"seeds: {value!r} is not a count, list or range; write e.g. 5, 0,1,2,7 or 0-9")
        value = [int(p) for p in parts]
    seeds = tuple(int(s) for s in value)
    if len(seeds) > MAX_SEEDS or any(not 0 <= s <= MAX_SEED for s in seeds):
        raise ScenarioError(f"seeds: each seed must be in 0..{MAX_SEED} and at most {MAX_SEEDS:,} of them; "
                            "fix the seed list")
    if not seeds:
        raise ScenarioError("seeds: no seeds; give at least one seed")
    if len(set(seeds)) != len(seeds):
        raise ScenarioError(f"seeds: {list(seeds)} repeats a seed; paired statistics need each seed once")
    return seeds
