"""The schema of the learning paradigms beside INL: centralised, federated, split learning.

``paradigm`` (a top-level scenario key, default ``inl``) picks what trains on the
network; each non-INL paradigm reads its own section below.  Plain frozen dataclasses
with their defaults; ``inl_sim.scenario.convert`` validates them like every section.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PARADIGMS", "CentralisedSpec", "FLSpec", "SLSpec", "ParadigmSections"]

#: inl: INL / D-INL (``routing.mode`` picks the training graph); the others send over routes
PARADIGMS = ("inl", "centralised", "fl", "sl")


@dataclass(frozen=True)
class CentralisedSpec:
    """Raw views travel each sensor's route to the fusion node; one model trains there.

    ``resend``: ``once`` (default; the fusion node keeps the data) or ``per_epoch``
    (the views are sent again every epoch, e.g. when the fusion node cannot store them).
    """

    resend: str = "once"


@dataclass(frozen=True)
class FLSpec:
    """Federated averaging (FedAvg) with the sensors as clients and the fusion node as server.

    ``rounds`` (null: ``training.epochs``) rounds of ``local_epochs`` local epochs each;
    ``clients_per_round`` (null: all) clients drawn per round with the run seed.
    ``inference``: how the one global model classifies a multi-view test sample:
    ``late_fusion`` (every client sends its logits over its route, the server averages
    the log-probabilities) or ``per_client`` (each client classifies from its own view
    alone; the reported accuracy is the mean over clients).
    """

    rounds: int | None = None
    local_epochs: int = 1
    clients_per_round: int | None = None
    inference: str = "late_fusion"


@dataclass(frozen=True)
class SLSpec:
    """Vertical split learning (multi-view SplitNN): bottom models on the sensors, the top at the fusion node.

    ``cut_width`` (null: ``model.latent_dim``) values per sample cross each route per
    direction; ``schedule``: ``parallel`` (all sensors send at once) or ``sequential``
    (one sensor's activation reaches the server before the next sensor sends).
    """

    cut_width: int | None = None
    schedule: str = "parallel"


@dataclass(frozen=True)
class ParadigmSections:
    """The top-level ``paradigm`` key and its sections; :class:`~inl_sim.scenario.spec.Scenario`
    inherits them, so the paradigms' schema lives here, beside its sections."""

    paradigm: str = "inl"                       # inl | centralised | fl | sl
    centralised: CentralisedSpec = CentralisedSpec()
    fl: FLSpec = FLSpec()
    sl: SLSpec = SLSpec()
