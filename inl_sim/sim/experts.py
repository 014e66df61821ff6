"""Network plane of a routed expert bank: every message hop by hop, timed, on the ledger.

Per batch (a *step*) the router computes its gate, then sends each chosen expert the
samples routed to it (kind ``to_expert``) and the fusion node the coded choices
(``choice``); each expert, once its samples have arrived, computes and sends its outputs
to the fusion node (``to_fusion``).  Each message follows its route one transfer per hop
(store-and-forward: a relay sends a message on the moment it has it), every transfer is a
``forward`` record of the columnar ledger, and the times come from the same SimPy
executor and FIFO channels as INL (:func:`inl_sim.sim.programs.run_programs`).
Sizes only: the learning side measures each message from its real tensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Mapping, Sequence

import numpy as np
import simpy

from inl_sim.errors import InlSimError
from inl_sim.network.experts import ExpertPlacement
from inl_sim.sim.accounting import DIRECTIONS, Ledger
from inl_sim.sim.programs import COMPUTE, RECV, SEND, Program, run_programs

__all__ = ["ExpertMessages", "ExpertPass", "KINDS", "expert_programs", "record_expert_pass"]

NodeId = Hashable
KINDS = ("to_expert", "to_fusion", "choice")
_FORWARD = DIRECTIONS.index("forward")


@dataclass(frozen=True)
class ExpertMessages:
    """One pass over the data: each message's step, kind, expert and size (no tensors).

    ``kind`` indexes :data:`KINDS`; ``expert`` is -1 for ``choice``; ``n_samples`` is how
    many samples the message carries (an expert's compute scales with it).
    """

    step: np.ndarray        # (M,) int
    kind: np.ndarray        # (M,) int
    expert: np.ndarray      # (M,) int
    n_samples: np.ndarray   # (M,) int
    n_values: np.ndarray    # (M,) int
    nbytes: np.ndarray      # (M,) int
    batch: np.ndarray       # (S,) samples per step (the router's compute scales with it)


@dataclass(frozen=True)
class ExpertPass:
    """The ledger of one pass, and for each of its records the message kind and whether it
    is the message's last hop (so "bytes delivered to experts" derives from records)."""

    ledger: Ledger
    kind: np.ndarray        # (T,) index into KINDS, per record
    final: np.ndarray       # (T,) bool, per record

    def nbytes(self, kind: str, *, final_only: bool = False) -> int:
        """Bytes of every hop (or only last hops) of messages of ``kind``, summed over records."""
        mask = self.kind == KINDS.index(kind)
        if final_only:
            mask &= self.final
        return int(self.ledger.columns()["nbytes"][mask].sum(dtype=np.int64))

    @property
    def makespan_s(self) -> float:
        """When the last record arrived (0 for an empty pass)."""
        arrive = self.ledger.columns()["t_arrive_s"]
        return float(arrive.max()) if len(arrive) else 0.0


class _Hops:
    """Transfer table: one row per hop of every message, with channels per directed link."""

    def __init__(self, graph, nodes: Sequence[NodeId]) -> None:  # type: ignore[no-untyped-def]
        self.graph, self.index = graph, {v: i for i, v in enumerate(nodes)}
        self.channels: dict[tuple[int, int], int] = {}
        self.src: list[int] = []
        self.dst: list[int] = []
        self.chan: list[int] = []
        self.message: list[int] = []

    def add_path(self, path: Sequence[NodeId], message: int) -> list[int]:
        ids = []
        for u, v in zip(path, path[1:]):
            key = (self.index[u], self.index[v])
            ids.append(len(self.src))
            self.src.append(key[0])
            self.dst.append(key[1])
            self.chan.append(self.channels.setdefault(key, len(self.channels)))
            self.message.append(message)
        return ids

    def link_arrays(self, nodes: Sequence[NodeId]) -> tuple[np.ndarray, np.ndarray]:
        links = sorted(self.channels.items(), key=lambda kv: kv[1])
        attrs = [self.graph.adj[nodes[u]][nodes[v]] for (u, v), _ in links]
        return (np.array([float(a["capacity_bps"]) for a in attrs]), np.array([float(a["latency_s"]) for a in attrs]))


def _path_of(placement: ExpertPlacement, kind: int, expert: int) -> tuple[NodeId, ...]:
    if kind == 0:
        return placement.to_expert[expert]
    return placement.to_fusion[expert] if kind == 1 else placement.choice


def expert_programs(messages: ExpertMessages, placement: ExpertPlacement, hops: _Hops,
                    compute_s: Mapping[str, np.ndarray]) -> list[Program]:
    """Router, relay and expert programs of one pass; fills ``hops`` with every transfer.

    ``compute_s["router"][s]`` is the router's gate time at step s; ``compute_s["expert"][m]``
    the time expert ``messages.expert[m]`` spends on message m's samples.
    """
    hop_ids = [hops.add_path(_path_of(placement, int(k), int(e)), m)
               for m, (k, e) in enumerate(zip(messages.kind.tolist(), messages.expert.tolist()))]
    programs: list[Program] = []
    for ids in hop_ids:                                   # relays: forward each message on arrival
        programs += [[(RECV, [a]), (SEND, [b])] for a, b in zip(ids, ids[1:])]
    router: Program = []
    experts: dict[int, Program] = {}
    reply = {(s, e): m for m, (s, k, e) in enumerate(zip(messages.step.tolist(), messages.kind.tolist(),
                                                          messages.expert.tolist())) if k == 1}
    for s in range(len(messages.batch)):
        out = np.flatnonzero((messages.step == s) & (messages.kind != 1)).tolist()
        router += [(COMPUTE, float(compute_s["router"][s])), (SEND, [hop_ids[m][0] for m in out if hop_ids[m]])]
        for m in out:
            e = int(messages.expert[m])
            if e < 0:
                continue
            back = hop_ids[reply[(s, e)]]
            experts.setdefault(e, []).extend([(RECV, [hop_ids[m][-1]]), (COMPUTE, float(compute_s["expert"][m])),
                                              (SEND, back[:1])])
    return programs + [router] + list(experts.values())


def record_expert_pass(messages: ExpertMessages, placement: ExpertPlacement, graph,  # type: ignore[no-untyped-def]
                       nodes: Sequence[NodeId], compute_s: Mapping[str, np.ndarray], *, epoch: int = 0) -> ExpertPass:
    """Time one pass from t = 0 on fresh channels and return its ledger (``nodes`` as node table)."""
    if len(messages.kind) and (messages.kind.min() < 0 or messages.kind.max() >= len(KINDS)):
        raise InlSimError(f"ExpertMessages.kind: values must index {KINDS}")
    hops = _Hops(graph, nodes)
    programs = expert_programs(messages, placement, hops, compute_s)
    capacity, latency = hops.link_arrays(nodes)
    msg = np.asarray(hops.message, dtype=np.int64)
    nbytes, n_values = messages.nbytes[msg].astype(np.int64), messages.n_values[msg].astype(np.int64)
    chan = np.asarray(hops.chan, dtype=np.int64)
    tx_s = 8.0 * nbytes / capacity[chan] if len(chan) else np.zeros(0)
    times = run_programs(simpy.Environment(), programs, chan, tx_s, latency, np.zeros(len(capacity)))
    ledger = Ledger(nodes)
    ledger.extend_columns(epoch, messages.step[msg], np.asarray(hops.src), np.asarray(hops.dst),
                          np.full(len(msg), _FORWARD), n_values, nbytes, *times)
    final = np.append(msg[1:] != msg[:-1], True) if len(msg) else np.zeros(0, dtype=bool)
    return ExpertPass(ledger, messages.kind[msg].astype(np.int64), final)
