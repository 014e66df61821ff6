"""The value rules of scenario fields: numeric bounds by field name, choices by dotted path.

``RULES[name] = (check, rule, fix)`` applies to every numeric field of that name in any
section (units are in the names: ``bps``, ``_hz``, ``_m``, ``j_per_bit``); ``CHOICES``
lists the allowed values of a field by its dotted path.  A new option with a bound or a
closed set of values is one line here; :mod:`inl_sim.scenario.convert` applies them.
"""

from __future__ import annotations

from typing import Any, Callable

from inl_sim.scenario.seeds import MAX_SEED
from inl_sim.scenario.spec import (AGGREGATIONS, CAPACITY_RULES, DATA_KINDS, DENSE_TIES, ENCODINGS, GATE_KINDS,
                                   GENERATORS, OPTIMIZERS, RATE_CHOICES, ROUTING_MODES)
from inl_sim.scenario.paradigms import PARADIGMS

__all__ = ["RULES", "CHOICES"]

RULES: dict[str, tuple[Callable[[Any], bool], str, str]] = {
    "n_nodes": (lambda v: v >= 1, "must be >= 1", "give the number of nodes"),
    "n_train": (lambda v: v >= 2, "must be >= 2", "use a larger training set"),
    "n_test": (lambda v: v >= 1, "must be >= 1", "use a non-empty test set"),
    "n_classes": (lambda v: v >= 2, "must be >= 2", "a classifier needs two classes or more"),
    "view_dim": (lambda v: v >= 1, "must be >= 1", "give each view at least one feature"),
    "groups_per_view": (lambda v: v >= 1, "must be >= 1", "use 1..n_classes groups"),
    "separation": (lambda v: v > 0, "must be > 0", "use a positive class separation"),
    "noise": (lambda v: v >= 0, "must be >= 0", "use a non-negative noise std"),
    "latent_dim": (lambda v: v >= 1, "must be >= 1", "use a positive latent width"),
    "hidden_dim": (lambda v: v >= 1, "must be >= 1", "use a positive hidden width"),
    "beta": (lambda v: v >= 0, "must be >= 0", "the rate penalty weight cannot be negative"),
    "n_choices": (lambda v: v >= 2, "must be >= 2", "a discrete gate needs two choices or more"),
    "temperature": (lambda v: v > 0, "must be > 0", "use a positive Gumbel-softmax temperature"),
    "step": (lambda v: v > 0, "must be > 0", "use a positive quantisation step"),
    "grad_step": (lambda v: v > 0, "must be > 0", "use a positive quantisation step for errors"),
    "bits": (lambda v: 2 <= v <= 16, "must be in 2..16", "use e.g. 8 bits per value"),
    "epochs": (lambda v: v >= 1, "must be >= 1", "train for at least one epoch"),
    "batch_size": (lambda v: v >= 1, "must be >= 1", "use a positive batch size"),
    "lr": (lambda v: v > 0, "must be > 0", "use a positive learning rate, e.g. 3.0e-3"),
    "weight_decay": (lambda v: v >= 0, "must be >= 0", "use a non-negative weight decay"),
    "seeds": (lambda v: v >= 1, "must be >= 1", "compare over at least one seed"),
    "memory_fraction": (lambda v: 0 < v <= 1, "must be in (0, 1]", "give a share of physical RAM, e.g. 0.75"),
    "max_hours": (lambda v: 0 < v <= 1e6, "must be in (0, 1e6]", "give hours, e.g. 24"),
    "seed": (lambda v: v is None or 0 <= v <= MAX_SEED, f"must be in 0..{MAX_SEED}", "use a non-negative 32-bit seed"),
    # real networks: capacity rules, wireless links, energy (units in the names)
    "bps": (lambda v: v > 0, "must be > 0", "give a capacity in bit/s, e.g. 1.0e9"),
    "low_bps": (lambda v: v > 0, "must be > 0", "give a capacity in bit/s, e.g. 1.0e8"),
    "high_bps": (lambda v: v > 0, "must be > 0", "give a capacity in bit/s, e.g. 1.0e9"),
    "ref_km": (lambda v: v > 0, "must be > 0", "give a reference length in km, e.g. 100"),
    "exponent": (lambda v: v > 0, "must be > 0", "use a positive exponent, e.g. 3 for path loss"),
    "bandwidth_hz": (lambda v: v > 0, "must be > 0", "give the channel bandwidth in Hz, e.g. 20.0e6"),
    "ref_distance_m": (lambda v: v > 0, "must be > 0", "give the reference distance in metres, e.g. 1.0"),
    "area_m": (lambda v: v > 0, "must be > 0", "give metres per position unit, e.g. 1000"),
    "tx_j_per_bit": (lambda v: v >= 0, "must be >= 0", "use 0 to switch the term off, e.g. 5.0e-8"),
    "rx_j_per_bit": (lambda v: v >= 0, "must be >= 0", "use 0 to switch the term off, e.g. 5.0e-8"),
    "j_per_flop": (lambda v: v >= 0, "must be >= 0", "use 0 to switch the term off, e.g. 1.0e-9"),
    "idle_w": (lambda v: v >= 0, "must be >= 0", "use 0 to switch idle power off"),
    # paradigms beside INL (scenario.paradigms)
    "rounds": (lambda v: v >= 1, "must be >= 1", "run at least one federated round (null: training.epochs)"),
    "local_epochs": (lambda v: v >= 1, "must be >= 1", "train at least one local epoch per round"),
    "clients_per_round": (lambda v: v >= 1, "must be >= 1", "sample at least one client (null: all)"),
    "cut_width": (lambda v: v >= 1, "must be >= 1", "send at least one value per sample (null: model.latent_dim)"),
}

CHOICES: dict[str, tuple] = {
    "topology.generator": GENERATORS + (None,),
    "data.kind": DATA_KINDS,
    "model.aggregation": AGGREGATIONS,
    "routing.mode": ROUTING_MODES,
    "routing.dense_ties": DENSE_TIES,
    "training.optimizer": OPTIMIZERS,
    "gate.kind": GATE_KINDS,
    "message.encoding": ENCODINGS,
    "message.grad_encoding": ENCODINGS,
    "topology.capacity_rule.rule": CAPACITY_RULES,
    "topology.wireless.path_loss.model": ("log_distance",),
    "simulation.engine": ("fast", "reference"),
    "simulation.device": ("cpu", "cuda"),
    "gate.rate": RATE_CHOICES,
    "paradigm": PARADIGMS,
    "centralised.resend": ("once", "per_epoch"),
    "fl.inference": ("late_fusion", "per_client"),
    "sl.schedule": ("parallel", "sequential"),
}
