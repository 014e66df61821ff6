"""The scenario schema: frozen dataclasses, one per section of a scenario file.

Plain data with the defaults of ``shared/METHOD.md``; ``convert`` parses and checks them,
once.  Kept apart so that the schema reads on one screen and imports without PyYAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

from inl_sim.scenario.faults import FaultsSpec
from inl_sim.scenario.experts import ExpertsSpec
from inl_sim.scenario.paradigms import ParadigmSections

__all__ = [
    "NodeId", "FUSION_RULES", "SENSOR_RULES", "GENERATORS", "DISTRIBUTIONS", "GATE_KINDS", "ENCODINGS", "AGGREGATIONS",
    "ROUTING_MODES", "EDGE_COSTS", "DENSE_TIES", "OPTIMIZERS", "DATA_KINDS", "LimitsSpec", "Distribution",
    "SensorSpec", "TopologySpec", "DataSpec", "ModelSpec", "RoutingSpec", "GateSpec", "MessageSpec", "TrainingSpec",
    "SimulationSpec", "MethodSpec", "CompareSpec", "Scenario", "RATE_CHOICES", "CapacityRule", "PathLossSpec",
    "WirelessSpec", "EnergySpec", "CAPACITY_RULES",
]

NodeId = Union[int, str]

FUSION_RULES = ("most_central", "max_degree", "first")
SENSOR_RULES = ("all", "leaves", "k_random", "farthest", "ids")
GENERATORS = ("random_geometric", "knn", "waxman", "erdos_renyi", "grid", "star", "balanced_tree")
DISTRIBUTIONS = ("constant", "uniform", "loguniform", "choice")
RATE_CHOICES = ("kl_standard_normal", "kl_learned_prior", "aggregate_posterior")
CAPACITY_RULES = ("constant", "uniform", "by_degree", "by_distance")
# Names of the registries that live right of this wing (learning/, network/, study/), kept
# here so a scenario is checked whole before torch is imported (an error in < 0.5 s);
# tests/test_hostile_registry.py holds each tuple equal to its registry.  Add a gate,
# codec, aggregation, routing mode or optimiser: add its name here too.
GATE_KINDS = ("none", "gaussian", "gumbel")
ENCODINGS = ("float32", "float16", "int8", "entropy_coded", "dithered")
AGGREGATIONS = ("concat", "mean", "sum")
ROUTING_MODES = ("dense", "spt", "bfs", "random_tree", "mst")
EDGE_COSTS = ("payload_over_capacity", "inv_capacity", "hops", "latency")
DENSE_TIES = ("drop", "keep")
OPTIMIZERS = ("adam", "sgd")
DATA_KINDS = ("synthetic", "digits")


@dataclass(frozen=True)
class Distribution:
    """A link/node attribute given as a constant or a seeded random draw.

    YAML forms: ``1.0e6``, ``{uniform: [lo, hi]}``, ``{loguniform: [lo, hi]}``, ``{choice: [a, b, c]}``.
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
class CapacityRule:
    """Link capacities where the topology data has none (``inl_sim.network.library``).

    ``constant``: ``bps``; ``uniform``: a seeded draw in [``low_bps``, ``high_bps``];
    ``by_degree``: ``bps * min(deg u, deg v)``; ``by_distance``:
    ``bps * min(1, (ref_km / length_km) ** exponent)``.
    """

    rule: str = "constant"
    bps: float = 1.0e9
    low_bps: float = 1.0e8
    high_bps: float = 1.0e9
    ref_km: float = 100.0
    exponent: float = 1.0


@dataclass(frozen=True)
class PathLossSpec:
    """Log-distance path loss: ``PL(d) = ref_loss_db + 10 * exponent * log10(d / ref_distance_m)``
    (for d >= ref_distance_m; closer links are treated as at ref_distance_m).  The defaults,
    40 dB at 1 m and exponent 3, are a 2.4 GHz urban/indoor-ish channel."""

    model: str = "log_distance"
    exponent: float = 3.0
    ref_loss_db: float = 40.0
    ref_distance_m: float = 1.0


@dataclass(frozen=True)
class WirelessSpec:
    """Links from geometry: a link exists where SNR >= ``min_snr_db``, with Shannon capacity
    ``bandwidth_hz * log2(1 + SNR)`` and latency ``distance / c``.

    Node positions are multiplied by ``area_m`` (metres per position unit: generated graphs
    live in the unit square, so ``area_m`` is the side of the field in metres).
    Defaults: a 20 MHz channel at 20 dBm over thermal noise (-174 dBm/Hz), 10 dB threshold.
    """

    bandwidth_hz: float = 20.0e6
    tx_power_dbm: float = 20.0
    noise_dbm_per_hz: float = -174.0
    path_loss: PathLossSpec = PathLossSpec()
    min_snr_db: float = 10.0
    area_m: float = 1000.0


@dataclass(frozen=True)
class EnergySpec:
    """Energy model (``inl_sim.sim.energy``), computed from ledger records and node FLOPs.

    Defaults are typical orders of magnitude, not zero, so every run reports an energy:
    50 nJ/bit to transmit and receive (a low-power radio, e.g. the first-order radio
    model's 50 nJ/bit electronics), 1 nJ/FLOP (an embedded CPU), no idle power.  Set a
    coefficient to 0 to leave that term out.
    """

    tx_j_per_bit: float = 5.0e-8
    rx_j_per_bit: float = 5.0e-8
    j_per_flop: float = 1.0e-9
    idle_w: float = 0.0


@dataclass(frozen=True)
class TopologySpec:
    """Where the graph comes from (one of ``generator``, ``file``, ``library``, ``edges``) and its roles.

    ``fusion`` is a node id or a rule (``most_central``, ``max_degree``, ``first``);
    ``sensors`` is ``all``, a list of ids or ``{rule, k}``.  Left null they take the
    file's own roles when the file has them, else ``most_central`` and ``all``.

    ``seed`` fixes the topology independently of the run seed, so that a comparison over
    seeds varies training, not the network (set it to ``null`` to draw it from the run seed).

    ``library`` is a topohub key (``sndlib/abilene``); ``capacity_rule`` fills capacities
    the data lacks (else ``capacity_bps``); ``wireless`` replaces the links by those that
    the radio geometry allows over the node positions.
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
    library: str | None = None
    capacity_rule: CapacityRule | None = None
    wireless: WirelessSpec | None = None


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

    Control trees (same n - 1 links, another choice of them): ``bfs`` (hop count),
    ``random_tree`` (uniform, seeded from the run seed), ``mst`` (maximum capacity).
    ``cost`` is the Dijkstra edge cost; ``dense_ties`` says what dense INL does with a
    link between two nodes equally far from the fusion node: ``keep`` (default, so dense
    uses every link; oriented by (distance, depth, node order)) or ``drop``."""

    mode: str = "spt"
    cost: str | Callable = "payload_over_capacity"
    dense_ties: str = "keep"


@dataclass(frozen=True)
class GateSpec:
    """The finite-rate gate on every transmitted message and its rate penalty.

    ``rate`` (gaussian gate only) names the estimator the loss penalises, one of
    ``RATE_CHOICES`` (see ``inl_sim.learning.rates``); every run reports all of them.
    """

    kind: str = "none"
    beta: float = 0.0
    node_beta: dict = field(default_factory=dict)
    n_choices: int = 8
    temperature: float = 1.0
    hard: bool = False
    eval_sample: bool = False
    rate: str = "kl_standard_normal"   # which estimator the loss penalises (gaussian gate)


@dataclass(frozen=True)
class MessageSpec:
    """Wire format of activations (``encoding``) and of backpropagated errors.

    ``step`` is the quantisation step of ``entropy_coded`` activations; errors are
    orders of magnitude smaller, so ``entropy_coded`` errors use ``grad_step``.
    ``dithered`` codes a Gaussian gate's mean with subtractive dither at a step tied to
    its sigma (``inl_sim.learning.dither``); without a gate it uses ``step``.
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
class SimulationSpec:
    """How a run is computed, not what it models (results agree up to float rounding).

    ``engine``: ``fast`` (default) trains the whole training graph as one autograd graph,
    nodes of one module signature batched level by level, and times the transfers with the
    network plane; ``reference`` is the 0.1 per-node link-cut SimPy engine, kept as the
    oracle.  ``device``: ``cpu`` (default) or ``cuda`` (fast engine only).
    """

    engine: str = "fast"
    device: str = "cpu"


@dataclass(frozen=True)
class MethodSpec:
    """One arm of a comparison: a name and the dotted overrides that define it.

    ``budget_of`` names another method whose training bytes this one should match:
    ``compare`` then sets this arm's ``model.latent_dim`` so that its bytes per step
    (width x bytes per value x active links) equal the other's, up to rounding
    (equal-budget control, e.g. dense INL at D-INL's budget)."""

    name: str
    set: dict = field(default_factory=dict)
    budget_of: str | None = None


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
class Scenario(ParadigmSections):
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
    simulation: SimulationSpec = SimulationSpec()
    compare: CompareSpec = CompareSpec()
    output_dir: str = "results"
    energy: EnergySpec = EnergySpec()
    faults: FaultsSpec = FaultsSpec()
    limits: LimitsSpec = LimitsSpec()
    experts: ExpertsSpec = ExpertsSpec()
