"""Program builders for paradigms that send whole messages over multi-hop routes.

Centralised, federated and split learning move messages between each sensor and the
fusion (server) node along the sensor's route.  :class:`RoutedTraffic` turns one message
on a route into one transfer per hop (each with the same ``n_values`` and ``nbytes``)
and gives every relay a two-op program per message: receive it, send it on (store and
forward, no compute).  The builders below add the senders' and receivers' programs of
one epoch / round / inference; :meth:`NetworkPlane.time_programs` times them on the
same channels and clock as INL, and :meth:`RoutedTraffic.record` appends the epoch to
the ledger.  Nothing here knows what the tensors mean, only their sizes.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from inl_sim.sim.accounting import DIRECTIONS, Ledger
from inl_sim.sim.programs import COMPUTE, RECV, SEND, Program
from inl_sim.sim.timing import NetworkPlane

__all__ = ["RoutedTraffic", "Message", "gather_programs", "centralised_programs", "fl_round_programs",
           "sl_epoch_programs", "tree_forward_programs"]

#: (n_values, nbytes) of one message
Message = tuple[int, int]
Paths = Mapping[int, Sequence[int]]   # sensor index -> node indices sensor ... fusion


class RoutedTraffic:
    """The transfers and programs of one epoch (or round) of a routed paradigm."""

    def __init__(self) -> None:
        self.columns: dict[str, list[int]] = {k: [] for k in ("step", "src", "dst", "direction", "n_values",
                                                              "nbytes")}
        self.programs: list[Program] = []

    def __len__(self) -> int:
        return len(self.columns["step"])

    def send(self, path: Sequence[int], direction: str, message: Message, step: int = 0) -> tuple[int, int]:
        """One message along ``path`` (node indices, sender first): a transfer per hop.

        Relays get their store-and-forward programs here; returns the ids of the first
        hop (for the sender's SEND) and the last (for the receiver's RECV).
        """
        if len(path) < 2:
            raise ValueError(f"internal: route {list(path)} has no link; a sender is never its receiver")
        d = DIRECTIONS.index(direction)
        ids = []
        for u, v in zip(path[:-1], path[1:]):
            ids.append(len(self))
            for key, value in zip(self.columns, (step, u, v, d, message[0], message[1])):
                self.columns[key].append(value)
        for a, b in zip(ids[:-1], ids[1:]):
            self.programs.append([(RECV, [a]), (SEND, [b])])
        return ids[0], ids[-1]

    def time(self, plane: NetworkPlane) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Send, start and arrival times of every transfer (advances ``plane.now_s``)."""
        c = self.columns
        return plane.time_programs(self.programs, np.array(c["src"], dtype=np.int64),
                                   np.array(c["dst"], dtype=np.int64), np.array(c["nbytes"], dtype=np.int64))

    def record(self, plane: NetworkPlane, ledger: Ledger, epoch: int) -> None:
        """Time the epoch and append its transfers to ``ledger`` (node table = ``plane.nodes``' prefix)."""
        times = self.time(plane)
        c = {k: np.array(v, dtype=np.int64) for k, v in self.columns.items()}
        ledger.extend_columns(epoch, c["step"], c["src"], c["dst"], c["direction"], c["n_values"], c["nbytes"],
                              *times)


def gather_programs(traffic: RoutedTraffic, paths: Paths, fusion: int, direction: str,
                    messages: Mapping[int, Message], sensor_s: Mapping[int, float], fusion_s: float) -> None:
    """Every sensor computes, then sends one message to the fusion node, which computes once all arrived.

    Inference of centralised (raw views), split learning (cut activations) and
    federated late fusion (logits): the simulated latency is when the fusion node ends.
    """
    arrivals = []
    for s, path in paths.items():
        first, last = traffic.send(path, direction, messages[s])
        traffic.programs.append([(COMPUTE, sensor_s.get(s, 0.0)), (SEND, [first])])
        arrivals.append(last)
    traffic.programs.append([(RECV, arrivals), (COMPUTE, fusion_s)])


def centralised_programs(traffic: RoutedTraffic, paths: Paths, fusion: int, raw: Mapping[int, Message] | None,
                         train_s: float) -> None:
    """One centralised epoch: raw views travel to the fusion node (when ``raw``), then it trains for ``train_s``."""
    if raw is None:
        traffic.programs.append([(COMPUTE, train_s)])
        return
    gather_programs(traffic, paths, fusion, "raw_data", raw, {}, train_s)


def fl_round_programs(traffic: RoutedTraffic, paths: Paths, fusion: int, down: Mapping[int, Message],
                      up: Mapping[int, Message], local_s: Mapping[int, float], aggregate_s: float) -> None:
    """One FedAvg round: the server sends the global parameters down every selected client's route,
    each client trains for ``local_s`` and sends its parameters back up; the server averages."""
    sends, arrivals = [], []
    for s in down:
        path = list(paths[s])
        first_down, last_down = traffic.send(path[::-1], "parameters", down[s])
        first_up, last_up = traffic.send(path, "parameters", up[s])
        traffic.programs.append([(RECV, [last_down]), (COMPUTE, local_s[s]), (SEND, [first_up])])
        sends.append(first_down)
        arrivals.append(last_up)
    traffic.programs.append([(SEND, sends), (RECV, arrivals), (COMPUTE, aggregate_s)])


def sl_epoch_programs(traffic: RoutedTraffic, paths: Paths, fusion: int, cuts: Sequence[Mapping[int, Message]],
                      errors: Sequence[Mapping[int, Message]], bottom_s: Sequence[Mapping[int, float]],
                      top_s: Sequence[float], backward_factor: float, sequential: bool) -> None:
    """One split-learning epoch, step by step.

    Per step each sensor computes its bottom (``bottom_s``), sends its cut activation to
    the server, waits for its error and backpropagates (``backward_factor`` times the
    forward time); the server waits for every activation, computes the top model
    forward and backward (``top_s``, all of it) and sends each error back.  With
    ``sequential``, sensor i+1 sends only after sensor i's activation has reached the
    server (one sender at a time).
    """
    sensors = list(paths)
    ops: dict[int, Program] = {s: [] for s in sensors}
    server: Program = []
    for step in range(len(cuts)):
        arrivals, previous = [], None
        for s in sensors:
            first, last = traffic.send(paths[s], "forward", cuts[step][s], step)
            wait = [(RECV, [previous])] if sequential and previous is not None else []
            ops[s] += [(COMPUTE, bottom_s[step][s])] + wait + [(SEND, [first])]
            arrivals.append(last)
            previous = last
        back = []
        for s in sensors:
            first, last = traffic.send(list(paths[s])[::-1], "backward", errors[step][s], step)
            ops[s] += [(RECV, [last]), (COMPUTE, backward_factor * bottom_s[step][s])]
            back.append(first)
        server += [(RECV, arrivals), (COMPUTE, top_s[step]), (SEND, back)]
    traffic.programs.extend(ops.values())
    traffic.programs.append(server)


def tree_forward_programs(traffic: RoutedTraffic, edges: Sequence[tuple[int, int]], n_nodes: int,
                          messages: Mapping[int, Message], compute_s: Sequence[float]) -> None:
    """INL inference of one sample: every node waits for its children, computes, sends to its parents.

    ``edges`` are single-hop (child, parent) links of the training graph.
    """
    incoming: dict[int, list[int]] = {v: [] for v in range(n_nodes)}
    outgoing: dict[int, list[int]] = {v: [] for v in range(n_nodes)}
    for child, parent in edges:
        first, _ = traffic.send([child, parent], "forward", messages[child])
        outgoing[child].append(first)
        incoming[parent].append(first)
    for v in range(n_nodes):
        traffic.programs.append([(RECV, incoming[v]), (COMPUTE, compute_s[v]), (SEND, outgoing[v])])
