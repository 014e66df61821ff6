"""Shared tiny fixtures for the inl-sim tests.

Scenarios here train for one epoch on a few hundred samples, so an end-to-end run takes
well under a second.  The expected values in the tests never come from these helpers:
they only build inputs.

Torch is limited to one intra-op thread (``OMP_NUM_THREADS=1``, inherited by the CLI
subprocesses too): the modules are tiny, and on a shared two-core machine torch's
thread pool made a one-second run take minutes.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
MESH9 = ROOT / "inl_sim" / "assets" / "topologies" / "mesh9.yaml"

#: One epoch, 4 mini-batches of 64: the smallest run that still exercises every stage.
TINY: dict[str, Any] = {
    "name": "tiny",
    "seed": 0,
    "topology": {"file": str(MESH9)},
    "data": {"kind": "synthetic", "n_train": 256, "n_test": 128, "n_classes": 8,
             "view_dim": 6, "groups_per_view": 4},
    "model": {"latent_dim": 8, "hidden_dim": 16},
    "routing": {"mode": "spt"},
    "training": {"epochs": 1, "batch_size": 64},
    "compare": {"seeds": 2},
}


def _set(raw: dict, dotted: str, value: object) -> None:
    *parents, last = dotted.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def tiny_scenario(topology: dict | None = None, **dotted: object) -> dict:
    """A fresh tiny scenario dict; ``topology`` replaces the mesh9 topology section and
    keyword arguments are dotted keys with '__' for '.' (``training__epochs=2``)."""
    raw = copy.deepcopy(TINY)
    if topology is not None:
        raw["topology"] = copy.deepcopy(topology)
    for key, value in dotted.items():
        _set(raw, key.replace("__", "."), value)
    return raw


def explicit_topology(edges: list, *, fusion: object = 0, sensors: object = None,
                      nodes: list | None = None, **extra: object) -> dict:
    """A ``topology`` section with explicit links (each ``[u, v, {capacity_bps, latency_s}]``)."""
    topo: dict = {"edges": [list(e) for e in edges], "fusion": fusion, **extra}
    if nodes is not None:
        topo["nodes"] = nodes
    if sensors is not None:
        topo["sensors"] = sensors
    return topo


@pytest.fixture
def make_scenario() -> Callable[..., dict]:
    """Factory of tiny scenario dicts (see :func:`tiny_scenario`)."""
    return tiny_scenario


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def cli_env() -> dict[str, str]:
    """Environment for ``python run.py`` subprocesses: the checkout on the path, one thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["OMP_NUM_THREADS"] = "1"
    return env


PYTHON = sys.executable


# Hand-made 5-node graph whose links and node speeds differ everywhere.  Costs
# (payload/capacity, in units of 256 bits / 1e7 b/s): 0-1: 1, 0-2: 0.5, 1-2: 2, 1-3: 1,
# 2-3: 0.25, 3-4: 1, 2-4: 3.33; distances to 0: 2: 0.5, 3: 0.75, 1: 1, 4: 1.75 (all
# distinct), so dense INL uses all 7 links (node 1 has three parents, 2 has two) and the
# tree is 1->0, 2->0, 3->2, 4->3 (4 links).
KITE_LINKS = [
    [0, 1, {"capacity_bps": 1.0e7, "latency_s": 1.0e-3}],
    [0, 2, {"capacity_bps": 2.0e7, "latency_s": 2.0e-3}],
    [1, 2, {"capacity_bps": 5.0e6, "latency_s": 0.0}],
    [1, 3, {"capacity_bps": 1.0e7, "latency_s": 5.0e-4}],
    [2, 3, {"capacity_bps": 4.0e7, "latency_s": 3.0e-3}],
    [3, 4, {"capacity_bps": 1.0e7, "latency_s": 1.5e-3}],
    [2, 4, {"capacity_bps": 3.0e6, "latency_s": 2.5e-3}],
]


@contextlib.contextmanager
def fail_after(seconds: int, what: str) -> Iterator[None]:
    """Raise TimeoutError (a failure, not a hang) when the body runs longer than ``seconds``."""
    def expire(*_: object) -> None:
        raise TimeoutError(f"{what} took more than {seconds} s: a hang")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    """cli.main calls logging.basicConfig; drop the handler it adds (it holds capsys's stream)."""
    root_logger = logging.getLogger()
    handlers, level = list(root_logger.handlers), root_logger.level
    yield
    root_logger.handlers[:] = handlers
    root_logger.setLevel(level)


# A 4-node chain 3 -> 2 -> 1 -> 0 (fusion 0, sensor 3) with links and node speeds that
# differ everywhere: closed-form timing tests compute its critical path by hand.
CHAIN = [(3, 2, 1.0e6, 2.0e-3), (2, 1, 4.0e6, 5.0e-4), (1, 0, 2.5e7, 3.0e-3)]
CHAIN_SPEED = {0: 3.0e6, 1: 5.0e6, 2: 7.0e6, 3: 2.0e6}
CHAIN_FLOPS = {0: 300, 1: 0, 2: 1000, 3: 2000}


def chain() -> tuple[Any, Any]:
    """The chain as a (Network, its spt TrainingGraph), built by hand (no routing)."""
    import networkx as nx

    from inl_sim.network import Network
    from inl_sim.network.routing import TrainingGraph
    g = nx.Graph()
    for v, s in CHAIN_SPEED.items():
        g.add_node(v, flops_per_s=s)
    for u, v, cap, lat in CHAIN:
        g.add_edge(u, v, capacity_bps=cap, latency_s=lat)
    order = (3, 2, 1, 0)
    edges = tuple((u, v) for u, v, _, _ in CHAIN)
    tg = TrainingGraph("spt", 0, (3,), order, edges, {3: (2,), 2: (1,), 1: (0,), 0: ()},
                       {3: (), 2: (3,), 1: (2,), 0: (1,)}, {v: float(v) for v in order})
    return Network(g, 0, (3,), "chain"), tg
