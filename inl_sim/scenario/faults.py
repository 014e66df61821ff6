"""The ``faults:`` section: what goes wrong on the network, and what training does about it.

Frozen dataclasses and their conversion from YAML (no torch, no networkx).  The fault
*models* live in :mod:`inl_sim.network.faults`; their timing in :mod:`inl_sim.sim.faults`.

YAML layout (every key optional; an absent section is a perfect network)::

    faults:
      loss_prob: 0.1                  # every link, per transmission attempt
      link_loss: [[0, 3, 0.3]]        # per-link overrides [u, v, p]
      retransmit_timeout_s: null      # after a lost attempt; null = one round trip (2 x latency)
      events:                         # scheduled; anchors: at_epoch [+ at_step] | at_step | at_time_s
        - {at_epoch: 2, fail_link: [0, 3]}
        - {at_time_s: 5.0, recover_link: [0, 3]}
        - {at_epoch: 1, at_step: 4, fail_node: 7}
      random: {mtbf_s: null, mttr_s: 1.0, nodes: false}   # exponential up/down times per link
      stragglers: {kind: fixed, factors: {3: 4.0}}          # or lognormal {sigma, nodes}, trace {trace}
      capacity: {kind: gilbert_elliott, p_good_to_bad: 0.1, p_bad_to_good: 0.5, bad_factor: 0.1}
      policy: wait                    # wait | deadline | repair
      deadline_s: null                # per step, for deadline (and optionally repair)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from inl_sim.errors import ScenarioError, short

__all__ = ["FaultEvent", "RandomFailures", "StragglerSpec", "CapacityChange", "CapacitySpec", "FaultsSpec",
           "POLICIES", "STRAGGLER_KINDS", "CAPACITY_KINDS", "EVENT_ACTIONS", "to_faults", "check_faults_engine"]

POLICIES = ("wait", "deadline", "repair")
STRAGGLER_KINDS = ("none", "fixed", "lognormal", "trace")
CAPACITY_KINDS = ("constant", "schedule", "gilbert_elliott")
EVENT_ACTIONS = ("fail_link", "recover_link", "fail_node", "recover_node")
ANCHORS = ("at_epoch", "at_step", "at_time_s")


@dataclass(frozen=True)
class FaultEvent:
    """One scheduled change: exactly one action, anchored at a step or a simulated time.

    ``at_epoch`` alone: the first step of that epoch; with ``at_step``: that step of that
    epoch; ``at_step`` alone: that step counted from the start of training; ``at_time_s``:
    the first transmission at or after that simulated time.
    """

    at_epoch: int | None = None
    at_step: int | None = None
    at_time_s: float | None = None
    fail_link: tuple | None = None
    recover_link: tuple | None = None
    fail_node: int | str | None = None
    recover_node: int | str | None = None

    @property
    def action(self) -> str:
        return next(a for a in EVENT_ACTIONS if getattr(self, a) is not None)

    @property
    def target(self) -> Any:
        return getattr(self, self.action)

    on_time = property(lambda self: self.at_time_s is not None)


@dataclass(frozen=True)
class RandomFailures:
    """Random link (and optionally node) failures: exponential up times of mean ``mtbf_s``
    and down times of mean ``mttr_s`` per element, seeded; ``mtbf_s: null`` switches them off."""

    mtbf_s: float | None = None
    mttr_s: float = 1.0
    nodes: bool = False


@dataclass(frozen=True)
class StragglerSpec:
    """Per-node compute-time multipliers (>= 1 is slower).

    ``fixed``: ``factors: {node: m}``; ``lognormal``: m = exp(N(0, sigma^2)) drawn per node and
    step (median 1) for ``nodes`` (empty: every node); ``trace``: ``trace: {node: [m0, m1, ...]}``,
    one value per step, repeated cyclically.
    """

    kind: str = "none"
    factors: dict = field(default_factory=dict)
    sigma: float = 0.5
    nodes: tuple = ()
    trace: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CapacityChange:
    """From its anchor on, ``link`` (or every link when null) carries ``factor`` times its capacity."""

    at_epoch: int | None = None
    at_step: int | None = None
    at_time_s: float | None = None
    factor: float = 1.0
    link: tuple | None = None


@dataclass(frozen=True)
class CapacitySpec:
    """Time-varying capacity: a ``schedule`` of changes, or a two-state Gilbert-Elliott channel
    per link (good: full capacity; bad: ``bad_factor`` times it), stepping once per training step."""

    kind: str = "constant"
    schedule: tuple[CapacityChange, ...] = ()
    p_good_to_bad: float = 0.1
    p_bad_to_good: float = 0.5
    bad_factor: float = 0.1
    links: tuple = ()


@dataclass(frozen=True)
class FaultsSpec:
    """The whole ``faults:`` section (see the module docstring); the default is a perfect network."""

    loss_prob: float = 0.0
    link_loss: tuple = ()
    retransmit_timeout_s: float | None = None
    events: tuple[FaultEvent, ...] = ()
    random: RandomFailures = RandomFailures()
    stragglers: StragglerSpec = StragglerSpec()
    capacity: CapacitySpec = CapacitySpec()
    policy: str = "wait"
    deadline_s: float | None = None

    @property
    def active(self) -> bool:
        """Whether anything can go wrong (a fault-free section keeps the fault-free engine path)."""
        return bool(self.loss_prob or self.link_loss or self.events or self.random.mtbf_s is not None
                    or self.stragglers.kind != "none" or self.capacity.kind != "constant"
                    or self.policy != "wait" or self.deadline_s is not None)


# --------------------------------------------------------------------------- conversion

def _err(path: str, value: object, rule: str, fix: str) -> ScenarioError:
    return ScenarioError(f"{path}: {short(value)} {rule}; {fix}")


def _mapping(raw: object, path: str, cls: type) -> Mapping:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise _err(path, raw, "must be a mapping", "write key: value pairs")
    known = [f.name for f in fields(cls)]
    for key in raw:
        if key not in known:
            raise ScenarioError(f"{path}.{key}: unknown key; known keys here: {', '.join(known)}")
    return raw


def _number(value: object, path: str, *, low: float, high: float = math.inf, low_open: bool = False,
            fix: str = "write a number such as 0.1") -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _err(path, value, "is not a number", fix) from None
    huge = isinstance(value, int) and abs(value) > 2 ** 1000   # float() would overflow
    if isinstance(value, bool) or not isinstance(value, (int, float)) or huge or not math.isfinite(value):
        raise _err(path, value, "must be a finite number", fix)
    bad = value <= low if low_open else value < low
    if bad or value > high:
        bound = f"{'>' if low_open else '>='} {low}" + (f" and <= {high}" if high != math.inf else "")
        raise _err(path, value, f"must be {bound}", fix)
    return float(value)


def _int(value: object, path: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _err(path, value, "must be a non-negative integer", "write e.g. 2")
    return value


def _node(value: object, path: str) -> int | str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _err(path, value, "must be a node id (integer or string)", "use an id from the topology")
    return value


def _link(value: object, path: str) -> tuple:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _err(path, value, "must be a link [u, v]", "write e.g. [0, 3]")
    return (_node(value[0], path), _node(value[1], path))


def _anchors(raw: Mapping, path: str) -> dict:
    out = {k: None for k in ANCHORS}
    for key in ("at_epoch", "at_step"):
        if raw.get(key) is not None:
            out[key] = _int(raw[key], f"{path}.{key}")
    if raw.get("at_time_s") is not None:
        out["at_time_s"] = _number(raw["at_time_s"], f"{path}.at_time_s", low=0.0, fix="write seconds, e.g. 2.5")
    steps, time = out["at_epoch"] is not None or out["at_step"] is not None, out["at_time_s"] is not None
    if steps == time:
        raise _err(path, dict(raw), "needs one anchor: at_epoch (optionally with at_step), at_step, or at_time_s",
                   "write e.g. {at_epoch: 2, fail_link: [0, 3]}")
    return out


def _event(raw: object, path: str) -> FaultEvent:
    if isinstance(raw, FaultEvent):
        return raw
    raw = _mapping(raw, path, FaultEvent)
    given = [a for a in EVENT_ACTIONS if raw.get(a) is not None]
    if len(given) != 1:
        raise _err(path, dict(raw), f"needs exactly one action of {list(EVENT_ACTIONS)}",
                   "write e.g. {at_epoch: 2, fail_link: [0, 3]}")
    action = given[0]
    target = _link(raw[action], f"{path}.{action}") if action.endswith("link") else _node(raw[action], f"{path}.{action}")
    return FaultEvent(**_anchors(raw, path), **{action: target})


def _list(raw: object, path: str) -> list:
    if raw is None:
        return []
    if not isinstance(raw, (list, tuple)):
        raise _err(path, raw, "must be a list", "write a YAML list")
    return list(raw)


def _stragglers(raw: object, path: str) -> StragglerSpec:
    raw = _mapping(raw, path, StragglerSpec)
    kind = raw.get("kind", "none")
    if kind not in STRAGGLER_KINDS:
        raise _err(f"{path}.kind", kind, f"is not one of {list(STRAGGLER_KINDS)}", "choose one of them")
    factors = {(_node(k, f"{path}.factors")): _number(v, f"{path}.factors.{k}", low=0.0, low_open=True)
               for k, v in _mapping_any(raw.get("factors"), f"{path}.factors").items()}
    trace = {}
    for k, v in _mapping_any(raw.get("trace"), f"{path}.trace").items():
        values = _list(v, f"{path}.trace.{k}")
        if not values:
            raise _err(f"{path}.trace.{k}", v, "is empty", "give one multiplier per step, e.g. [1.0, 3.0]")
        trace[_node(k, f"{path}.trace")] = tuple(_number(x, f"{path}.trace.{k}", low=0.0, low_open=True)
                                                for x in values)
    if kind == "fixed" and not factors:
        raise _err(f"{path}.factors", {}, "is empty for kind fixed", "write e.g. factors: {3: 4.0}")
    if kind == "trace" and not trace:
        raise _err(f"{path}.trace", {}, "is empty for kind trace", "write e.g. trace: {3: [1.0, 5.0]}")
    sigma = _number(raw.get("sigma", 0.5), f"{path}.sigma", low=0.0)
    nodes = tuple(_node(v, f"{path}.nodes") for v in _list(raw.get("nodes"), f"{path}.nodes"))
    return StragglerSpec(kind, factors, sigma, nodes, trace)


def _mapping_any(raw: object, path: str) -> Mapping:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise _err(path, raw, "must be a mapping {node: value}", "write e.g. {3: 4.0}")
    return raw


def _capacity(raw: object, path: str) -> CapacitySpec:
    raw = _mapping(raw, path, CapacitySpec)
    kind = raw.get("kind", "constant")
    if kind not in CAPACITY_KINDS:
        raise _err(f"{path}.kind", kind, f"is not one of {list(CAPACITY_KINDS)}", "choose one of them")
    schedule = []
    for i, item in enumerate(_list(raw.get("schedule"), f"{path}.schedule")):
        where = f"{path}.schedule[{i}]"
        if isinstance(item, CapacityChange):
            schedule.append(item)
            continue
        item = _mapping(item, where, CapacityChange)
        link = None if item.get("link") is None else _link(item["link"], f"{where}.link")
        factor = _number(item.get("factor", 1.0), f"{where}.factor", low=0.0, low_open=True,
                         fix="a capacity factor > 0, e.g. 0.25 (a down link is a fail_link event)")
        schedule.append(CapacityChange(**_anchors(item, where), factor=factor, link=link))
    if kind == "schedule" and not schedule:
        raise _err(f"{path}.schedule", [], "is empty for kind schedule", "write e.g. [{at_epoch: 2, factor: 0.5}]")
    probs = {k: _number(raw.get(k, d), f"{path}.{k}", low=0.0, high=1.0) for k, d in
             (("p_good_to_bad", 0.1), ("p_bad_to_good", 0.5))}
    bad = _number(raw.get("bad_factor", 0.1), f"{path}.bad_factor", low=0.0, low_open=True, high=1.0)
    links = tuple(_link(v, f"{path}.links") for v in _list(raw.get("links"), f"{path}.links"))
    return CapacitySpec(kind, tuple(schedule), probs["p_good_to_bad"], probs["p_bad_to_good"], bad, links)


def _random(raw: object, path: str) -> RandomFailures:
    raw = _mapping(raw, path, RandomFailures)
    mtbf = raw.get("mtbf_s")
    mtbf = None if mtbf is None else _number(mtbf, f"{path}.mtbf_s", low=0.0, low_open=True, fix="write seconds, e.g. 20.0")
    mttr = _number(raw.get("mttr_s", 1.0), f"{path}.mttr_s", low=0.0, low_open=True, fix="write seconds, e.g. 1.0")
    nodes = raw.get("nodes", False)
    if not isinstance(nodes, bool):
        raise _err(f"{path}.nodes", nodes, "must be true or false", "write true or false")
    return RandomFailures(mtbf, mttr, nodes)


def to_faults(raw: object, path: str = "faults") -> FaultsSpec:
    """Build and validate the ``faults`` section (a mapping, None or a FaultsSpec)."""
    if isinstance(raw, FaultsSpec):
        return raw
    raw = _mapping(raw, path, FaultsSpec)
    # loss below 1: a link that loses every attempt would retransmit forever
    loss = _number(raw.get("loss_prob", 0.0), f"{path}.loss_prob", low=0.0, high=0.99,
                   fix="use a probability in [0, 0.99]; a link that is down is a fail_link event")
    link_loss = []
    for i, item in enumerate(_list(raw.get("link_loss"), f"{path}.link_loss")):
        where = f"{path}.link_loss[{i}]"
        if not isinstance(item, (list, tuple)) or len(item) != 3:
            raise _err(where, item, "must be [u, v, loss_prob]", "write e.g. [0, 3, 0.2]")
        link_loss.append((*_link(item[:2], where), _number(item[2], where, low=0.0, high=0.99)))
    timeout = raw.get("retransmit_timeout_s")
    timeout = None if timeout is None else _number(timeout, f"{path}.retransmit_timeout_s", low=0.0)
    events = tuple(_event(e, f"{path}.events[{i}]") for i, e in enumerate(_list(raw.get("events"), f"{path}.events")))
    policy = raw.get("policy", "wait")
    if policy not in POLICIES:
        raise _err(f"{path}.policy", policy, f"is not one of {list(POLICIES)}", f"choose one of {list(POLICIES)}")
    deadline = raw.get("deadline_s")
    deadline = None if deadline is None else _number(deadline, f"{path}.deadline_s", low=0.0, low_open=True,
                                                     fix="write seconds per step, e.g. 0.05")
    if policy == "deadline" and deadline is None:
        raise _err(f"{path}.deadline_s", None, "is required by policy deadline", "write e.g. deadline_s: 0.05")
    if policy == "wait" and deadline is not None:
        raise _err(f"{path}.deadline_s", deadline, "has no effect under policy wait",
                   "set policy: deadline (or repair), or remove deadline_s")
    return FaultsSpec(loss, tuple(link_loss), timeout, events, _random(raw.get("random"), f"{path}.random"),
                      _stragglers(raw.get("stragglers"), f"{path}.stragglers"),
                      _capacity(raw.get("capacity"), f"{path}.capacity"), policy, deadline)


def check_faults_engine(faults: FaultsSpec, engine: str, paradigm: str = "inl") -> None:
    """The reference engine is the fault-free oracle: faults need ``simulation.engine: fast``
    and, for now, the INL paradigm (whose steps the fault path times)."""
    if faults.active and paradigm != "inl":
        raise ScenarioError(f"faults: the section is set while paradigm is {paradigm!r}; faults act on INL and "
                            "D-INL training so far; set paradigm: inl or remove the faults section")
    if faults.active and engine != "fast":
        raise ScenarioError(f"faults: the section is set while simulation.engine is {engine!r}; the reference engine "
                            "models a perfect network (it is the oracle of the fast planes); set "
                            "simulation.engine: fast or remove the faults section")
