"""The scenario schema: frozen dataclasses, one per section of a scenario file.

Plain data with the defaults of ``shared/METHOD.md``; no parsing and no validation
(``inl_sim.scenario`` turns YAML or dicts into these, checking every value once).  Kept
apart so that the schema can be read on one screen and imported without PyYAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

__all__ = [
    "NodeId", "FUSION_RULES", "SENSOR_RULES", "GENERATORS", "DISTRIBUTIONS",
    "GATE_KINDS", "ENCODINGS", "AGGREGATIONS", "ROUTING_MODES", "EDGE_COSTS", "DENSE_TIES", "OPTIMIZERS", "DATA_KINDS",
    "LimitsSpec", "Distribution", "SensorSpec", "TopologySpec", "DataSpec", "ModelSpec", "RoutingSpec",
    "GateSpec", "MessageSpec", "TrainingSpec", "MethodSpec", "CompareSpec", "Scenario",
]

NodeId = Union[int, str]

FUSION_RULES = ("most_central", "max_degree", "first")
SENSOR_RULES = ("all", "leaves", "k_random", "farthest", "ids")
GENERATORS = ("random_geometric", "knn", "waxman", "erdos_renyi", "grid", "star", "balanced_tree")
DISTRIBUTIONS = ("constant", "uniform", "loguniform", "choice")
# Names of the registries that live right of this wing (learning/, network/, study/), kept
# here so a scenario is checked whole before torch is imported (an error in < 0.5 s);
# tests/test_hostile_registry.py holds each tuple equal to its registry.  Add a gate,
# codec, aggregation, routing mode or optimiser: add its name here too.
GATE_KINDS = ("none", "gaussian", "gumbel")
ENCODINGS = ("float32", "float16", "int8", "entropy_coded")
AGGREGATIONS = ("concat", "mean", "sum")
ROUTING_MODES = ("dense", "spt")
EDGE_COSTS = ("payload_over_capacity", "inv_capacity", "hops", "latency")
DENSE_TIES = ("drop", "keep")
OPTIMIZERS = ("adam", "sgd")
DATA_KINDS = ("synthetic", "digits")


@dataclass(frozen=True)
class Distribution:
    """A link/node attribute given as a constant or a seeded random draw.

    YAML forms: ``1.0e6``, ``{uniform: [lo, hi]}``, ``{loguniform: [lo, hi]}``,
    ``{choice: [a, b, c]}``.
    """

    kind: str = "constant"
    params: tuple[float, ...] = (1.0,)

    def to_yaml(self) -> object:
        return self.params[0] if self.kind == "constant" else {self.kind: list(self.params)}


@dataclass(frozen=True)
class SensorSpec:
    """Which nodes sense: ``all`` non-fusion nodes, explicit ``ids``, ``leaves``,
    ``k_random`` (seeded) or the ``k`` nodes ``farthest`` from the fusion node (hops)."""

    rule: str = "all"
    ids: tuple[NodeId, ...] = ()
    k: int | None = None

    def to_yaml(self) -> object:
        if self.rule == "ids":
            return list(self.ids)
        if self.rule == "all":
            return "all"
        return {"rule": self.rule, "k": self.k} if self.k is not None else {"rule": self.rule}


@dataclass(frozen=True)
class TopologySpec:
    """Where the graph comes from (one of ``generator``, ``file``, ``edges``) and its roles.

    ``fusion`` is a node id or a rule (``most_central``, ``max_degree``, ``first``);
    ``sensors`` is ``all``, a list of ids or ``{rule, k}``.  Left null they take the
    file's own roles when the file has them, else ``most_central`` and ``all``.

    ``seed`` fixes the topology independently of the run seed, so that a comparison over
    seeds varies training, not the network (set it to ``null`` to draw it from the run seed).
    """

    generator: str | None = None
    n_nodes: int = 9
    params: dict = field(default_factory=dict)
    file: str | None = None
    nodes: tuple = ()
    edges: tuple = ()
    capacity_bps: Distribution = Distribution("constant", (1.0e6,))
    latency_s: Distribution = Distribution("constant", (1.0e-3,))
    node_flops_per_s: Distribution = Distribution("constant", (1.0e9,))
    fusion: NodeId | None = None
    sensors: SensorSpec | None = None
    seed: int | None = 0
    ensure_connected: bool = True


@dataclass(frozen=True)
class DataSpec:
    """The learning task. ``synthetic``: seeded multi-view Gaussian classes where each view
    only sees a coarse partition of the classes, so no single view suffices.
    ``digits``: scikit-learn's bundled 8x8 digits, pixels split into per-sensor views."""

    kind: str = "synthetic"
    n_train: int = 2000
    n_test: int = 1000
    n_classes: int = 8
    view_dim: int = 6
    groups_per_view: int = 4
    separation: float = 0.7
    noise: float = 1.0
    seed: int | None = None


@dataclass(frozen=True)
class ModelSpec:
    """Module sizes and how a node fuses its inputs (``concat`` then MLP, ``mean``, ``sum``)."""

    latent_dim: int = 8
    hidden_dim: int = 32
    aggregation: str = "concat"


@dataclass(frozen=True)
class RoutingSpec:
    """Training graph: ``dense`` DAG over every usable link, or ``spt`` (D-INL's tree).

    ``cost`` is the Dijkstra edge cost; ``dense_ties`` says what dense INL does with a
    link between two nodes equally far from the fusion node (``drop`` or ``keep``)."""

    mode: str = "spt"
    cost: str | Callable = "payload_over_capacity"
    dense_ties: str = "drop"


@dataclass(frozen=True)
class GateSpec:
    """The finite-rate gate on every transmitted message and its rate penalty."""

    kind: str = "none"
    beta: float = 0.0
    node_beta: dict = field(default_factory=dict)
    n_choices: int = 8
    temperature: float = 1.0
    hard: bool = False
    eval_sample: bool = False


@dataclass(frozen=True)
class MessageSpec:
    """Wire format of activations (``encoding``) and of backpropagated errors.

    ``step`` is the quantisation step of ``entropy_coded`` activations; errors are
    orders of magnitude smaller, so ``entropy_coded`` errors use ``grad_step``.
    """

    encoding: str = "float32"
    grad_encoding: str = "float32"
    step: float = 0.05
    grad_step: float = 1.0e-5
    bits: int = 8


@dataclass(frozen=True)
class TrainingSpec:
    """Optimisation: every node has its own optimiser of this kind."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 3.0e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0


@dataclass(frozen=True)
class MethodSpec:
    """One arm of a comparison: a name and the dotted overrides that define it."""

    name: str
    set: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CompareSpec:
    """Default arms and seeds of ``compare``.

    ``reference`` names the method that exchange reductions and accuracy gaps are taken
    against (default: the first); ``rate_reference`` the one rate reductions are taken
    against (default: none, no rate reduction column).
    """

    seeds: int = 5
    reference: str | None = None
    rate_reference: str | None = None
    methods: tuple[MethodSpec, ...] = (
        MethodSpec("dense", {"routing.mode": "dense"}),
        MethodSpec("spt", {"routing.mode": "spt"}),
    )


@dataclass(frozen=True)
class LimitsSpec:
    """The resource budget a scenario is checked against before anything is built.

    The estimate (``inl_sim.scenario.budget``) is from the sizes alone: nodes, samples,
    widths, epochs and batch.  ``force: true`` (CLI ``--force``) runs it anyway.
    """

    memory_fraction: float = 0.75     # of physical RAM
    max_hours: float = 24.0           # estimated wall time of one run
    force: bool = False


@dataclass(frozen=True)
class Scenario:
    """A whole experiment description; see ``scenarios/quickstart.yaml``."""

    name: str = "scenario"
    description: str = ""
    seed: int = 0
    topology: TopologySpec = TopologySpec()
    data: DataSpec = DataSpec()
    model: ModelSpec = ModelSpec()
    routing: RoutingSpec = RoutingSpec()
    gate: GateSpec = GateSpec()
    message: MessageSpec = MessageSpec()
    training: TrainingSpec = TrainingSpec()
    compare: CompareSpec = CompareSpec()
    output_dir: str = "results"
    limits: LimitsSpec = LimitsSpec()
