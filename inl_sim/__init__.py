"""inl-sim: a simulator for distributed in-network learning (INL) and D-INL.

Quickstart::

    import inl_sim
    sc = inl_sim.load_scenario("quickstart", overrides={"routing.mode": "spt"})
    res = inl_sim.run(sc, seed=0)
    cmp = inl_sim.compare(sc, modes=["dense", "spt"], seeds=range(5))
"""

__version__ = "0.2.0"

from inl_sim.errors import InlSimError, RoutingError, ScenarioError, TopologyError  # noqa: E402
from inl_sim.scenario import Scenario, load_scenario  # noqa: E402

__all__ = [
    "__version__", "InlSimError", "ScenarioError", "TopologyError", "RoutingError",
    "Scenario", "load_scenario", "run", "compare", "sweep", "RunResult", "Comparison",
    "prepare", "evaluate", "composed_forward",
]


def __getattr__(name: str):
    """Import the heavy parts (torch, simpy) only when first used."""
    if name in ("run", "RunResult", "prepare", "evaluate"):
        from inl_sim.study import experiment
        return getattr(experiment, name)
    if name == "composed_forward":
        from inl_sim.learning.modules import composed_forward
        return composed_forward
    if name in ("compare", "sweep", "Comparison"):
        from inl_sim.study import comparison as study
        return getattr(study, name)
    raise AttributeError(f"module 'inl_sim' has no attribute {name!r}")
