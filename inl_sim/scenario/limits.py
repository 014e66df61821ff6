"""Value limits of the scenario boundary: ranges, size caps and generator parameters.

Kept apart from ``convert`` (which turns raw values into dataclasses) because these are
the numbers a reviewer of hostile input wants on one screen: how large an integer, how
long a latency, which generator parameters, and how a value is shown in an error.
Each bound is far above any real run and exists so that a typo such as ``10**30`` or
``1e308`` is an error naming the field, never an OverflowError, an infinite simulated
time or an allocator traceback.
"""

from __future__ import annotations

import math
from typing import Mapping

from inl_sim.errors import InlSimError, ScenarioError, TopologyError, short

__all__ = ["MAX_INT", "MAX_ID_CHARS", "valid_node_id", "MAX_SIZE", "ATTRIBUTE_RANGES", "GENERATOR_PARAMS", "clip",
           "spec_error", "in_range",
           "check_generator_params", "generated_nodes"]

MAX_INT = 2 ** 63 - 1
MAX_ID_CHARS = 256

#: Hard upper bounds of integer fields (the resource estimate in ``budget`` is the finer check).
MAX_SIZE: dict[str, int] = {
    "n_nodes": 10 ** 7, "n_train": 10 ** 9, "n_test": 10 ** 9, "n_classes": 10 ** 6, "view_dim": 10 ** 7,
    "groups_per_view": 10 ** 6, "latent_dim": 10 ** 7, "hidden_dim": 10 ** 7, "n_choices": 10 ** 6,
    "epochs": 10 ** 9, "batch_size": 10 ** 9, "seeds": 10 ** 6, "bits": 16,
}

#: Physical ranges of link/node attributes: wide enough for any real network, narrow
#: enough that simulated times stay finite (``latency_s: 1e308`` made sim_time_s null).
ATTRIBUTE_RANGES: dict[str, tuple[float, float, str]] = {
    "capacity_bps": (1.0, 1.0e15, "bits per second, 1 b/s .. 1 Pb/s, e.g. 1.0e+7"),
    "latency_s": (0.0, 1.0e6, "seconds, 0 .. 1e6 (11 days), e.g. 2.0e-3"),
    "node_flops_per_s": (1.0, 1.0e300, "FLOP/s, >= 1 (very large: compute is free), e.g. 1.0e+9"),
    "flops_per_s": (1.0, 1.0e300, "FLOP/s, >= 1 (very large: compute is free), e.g. 1.0e+9"),
}

#: Parameters of each generator in ``inl_sim.network.generators``: name -> int or float.
#: Their types are checked here, before torch is imported; the generators check names
#: and ranges again when they draw.
GENERATOR_PARAMS: dict[str, dict[str, type]] = {
    "random_geometric": {"radius": float},
    "knn": {"k": int},
    "waxman": {"alpha": float, "beta": float},
    "erdos_renyi": {"p": float},
    "grid": {"rows": int, "cols": int},
    "star": {},
    "balanced_tree": {"branching": int, "height": int},
}


def valid_node_id(value: int | str) -> bool:
    """A node id that every output can write: an int within 64 bits (a 5,000-digit id
    cannot even be printed) or a name of at most MAX_ID_CHARS characters."""
    return abs(value) <= MAX_INT if isinstance(value, int) else len(value) <= MAX_ID_CHARS


def clip(text: str, limit: int = 120) -> str:
    """A field path or name cut to ``limit`` characters (a hostile key can be 100 KB)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def spec_error(path: str, value: object, rule: str, fix: str,
               cls: type[InlSimError] = ScenarioError) -> InlSimError:
    """An error (ScenarioError by default) in the 'field: value rule; fix' form, value shown short."""
    return cls(f"{clip(path)}: {short(value)} {rule}; {fix}")


def in_range(number: float, path: str, shown: object) -> float:
    """``number`` if the attribute named by ``path``'s last part is in its physical range."""
    name = path.rsplit(".", 1)[-1]
    lo, hi, unit = ATTRIBUTE_RANGES.get(name, (-math.inf, math.inf, "a number"))
    if not lo <= number <= hi:
        raise spec_error(path, shown, f"must be in [{lo:g}, {hi:g}]", f"give {unit}")
    return number


def _param(value: object, kind: type, path: str) -> float:
    def error(rule: str, fix: str) -> InlSimError:
        return spec_error(path, value, rule, fix, TopologyError)

    if isinstance(value, str) and len(value) <= 64:  # PyYAML reads 1e-3 as a string; the CLI passes k=3
        text = value.strip()
        try:
            value = int(text) if text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise error("must be a number", "write e.g. 0.5 (integers for k, rows, cols, branching, height)")
    if kind is int and not isinstance(value, int):
        raise error("must be an integer, not a float", "write a whole number such as 3")
    if isinstance(value, int) and abs(value) > MAX_SIZE["n_nodes"]:
        raise error(f"must be <= {MAX_SIZE['n_nodes']:,}", "use a smaller value")
    if not math.isfinite(value):
        raise error("must be a finite number", "write e.g. 0.5")
    return value


def check_generator_params(generator: str, params: Mapping, n_nodes: int, path: str) -> None:
    """Types and sizes of the known ``topology.params`` of ``generator`` (``height: 1.5`` is
    an error, not 1; ``rows: 10**6, cols: 10**6`` is refused before a graph is drawn).
    Keys not listed in :data:`GENERATOR_PARAMS` are left to the generator, which names
    the unknown ones when it draws (so a generator can grow a parameter in one place)."""
    known = GENERATOR_PARAMS.get(generator, {})
    for key, value in params.items():
        if key in known:
            _param(value, known[key], f"{path}.{key}")
    nodes = generated_nodes(generator, params, n_nodes)
    if nodes > MAX_SIZE["n_nodes"]:
        raise spec_error(path, dict(params), f"gives {nodes:.3g} nodes, over {MAX_SIZE['n_nodes']:,}",
                         "use smaller generator parameters", TopologyError)


def generated_nodes(generator: str, params: Mapping, n_nodes: int) -> float:
    """Nodes the generator will draw (grid and balanced_tree may set it by their parameters)."""
    if generator == "grid" and isinstance(params.get("rows"), int) and isinstance(params.get("cols"), int):
        if params["rows"] > 0 and params["cols"] > 0:
            return float(params["rows"]) * float(params["cols"])
    if generator == "balanced_tree" and isinstance(params.get("height"), int) and params["height"] >= 0:
        branching = params.get("branching", 2)
        if isinstance(branching, int) and branching >= 2:
            exponent = (params["height"] + 1) * math.log10(branching)
            return 1e300 if exponent > 300 else 10.0 ** exponent
    return float(n_nodes)
