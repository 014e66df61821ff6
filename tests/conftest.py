"""Shared tiny fixtures for the inl-sim tests.

Scenarios here train for one epoch on a few hundred samples, so an end-to-end run takes
well under a second.  The expected values in the tests never come from these helpers:
they only build inputs.

Torch is limited to one intra-op thread (``OMP_NUM_THREADS=1``, inherited by the CLI
subprocesses too): the modules are tiny, and on a shared two-core machine torch's
thread pool made a one-second run take minutes.
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any, Callable

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
