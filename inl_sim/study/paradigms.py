"""Runners of the paradigms beside INL: centralised, federated (FedAvg) and split learning.

``RUNNERS`` maps ``scenario.paradigm`` to a runner ``(RoutedRun, t0) -> Outcome``: it
trains the paradigm's model for real (``inl_sim.learning.paradigms``), hands each
epoch's messages to a program builder of :mod:`inl_sim.sim.routed` (one ledger record
per hop) and measures the cost of classifying one test sample.  Every paradigm starts
from the run seed: the model from ``seed``, the batches from the same shuffle stream as
INL, so centralised and split learning train the very same model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from torch.nn import functional as F
from torch.nn.utils import parameters_to_vector

from inl_sim.errors import ScenarioError
from inl_sim.scenario import Scenario
from inl_sim.learning.data import batch_indices, run_stream
from inl_sim.learning.paradigms.federated import fedavg, fl_accuracy, local_train, sample_clients, view_logits
from inl_sim.learning.paradigms.models import MultiViewNet, ViewNet, linear_flops, seeded
from inl_sim.learning.paradigms.split import central_step, split_step
from inl_sim.sim.routed import (RoutedTraffic, centralised_programs, fl_round_programs, gather_programs,
                                sl_epoch_programs)
from inl_sim.sim.timing import BACKWARD_FLOPS_FACTOR
from inl_sim.study.routed import EpochStats, RoutedRun, inference_cost, routed_loop, tensor_message

__all__ = ["Outcome", "RUNNERS", "run_centralised", "run_sl", "run_fl"]

PASSES = 1.0 + BACKWARD_FLOPS_FACTOR   # forward + backward compute of one training sample
CLIENT_STREAM = 5                     # which FL clients train each round


@dataclass(frozen=True)
class Outcome:
    """A trained paradigm: its history, final test numbers and inference cost per test sample."""

    history: list[dict]
    accuracy: float
    test_loss: float
    inference_bytes: int | None
    inference_latency_s: float | None
    extra: dict = field(default_factory=dict)
    #: the final model on the training split, evaluated as the test split is
    train_accuracy: float = math.nan
    train_loss: float = math.nan


def _model_seed(seed: int) -> int:
    return (seed * 1_000_003 + 17) % (2 ** 63 - 1)


def _multiview(run: RoutedRun) -> MultiViewNet:
    sc, data = run.scenario, run.dataset
    cut = sc.sl.cut_width or sc.model.latent_dim
    dims = [data.view_dims[s] for s in run.sensors]
    return seeded(_model_seed(run.seed), lambda: MultiViewNet(dims, cut, sc.model.hidden_dim, data.n_classes))


def _optimizer(params: Iterable[torch.nn.Parameter], sc: Scenario) -> torch.optim.Optimizer:
    """``training.optimizer`` over ``params``: one optimiser for every part (element-wise, so per node)."""
    cls = torch.optim.Adam if sc.training.optimizer == "adam" else torch.optim.SGD
    return cls(params, lr=sc.training.lr, weight_decay=sc.training.weight_decay)


def _multiview_start(run: RoutedRun) -> tuple[MultiViewNet, torch.optim.Optimizer, torch.Generator, list]:
    """What centralised and SL start from, alike: the same model, optimiser, batch order
    and training views (so that they train the very same model)."""
    net = _multiview(run)
    views = [run.dataset.train_views[s] for s in run.sensors]
    return net, _optimizer(net.parameters(), run.scenario), run_stream(run.seed), views


def _evaluate_multiview(net: MultiViewNet, run: RoutedRun) -> Callable[..., dict]:
    data = run.dataset

    @torch.no_grad()
    def evaluate(split: str = "test") -> dict:
        views, labels = ((data.test_views, data.test_labels) if split == "test"
                         else (data.train_views, data.train_labels))
        logits = net([views[s] for s in run.sensors])                    # (N, C)
        return {"accuracy": float((logits.argmax(-1) == labels).float().mean()),
                "loss": float(F.cross_entropy(logits, labels))}
    return evaluate


def _finish(run: RoutedRun, history: list[dict], evaluate: Callable[..., dict], cost: tuple[int, float],
            **extra: object) -> Outcome:
    final, on_train = evaluate(), evaluate("train")
    return Outcome(history, final["accuracy"], final["loss"], cost[0], cost[1], dict(extra),
                   on_train["accuracy"], on_train["loss"])


def run_centralised(run: RoutedRun, t0: float) -> Outcome:
    """Raw views to the fusion node (``raw_data``, once or every epoch), one model trains there."""
    sc, data = run.scenario, run.dataset
    net, opt, shuffle, views = _multiview_start(run)
    flops = linear_flops(net)

    def epoch(e: int) -> EpochStats:
        loss_sum, correct = 0.0, 0
        for idx in batch_indices(data.n_train, sc.training.batch_size, shuffle):
            out = central_step(net, opt, [x[idx] for x in views], data.train_labels[idx])
            loss_sum, correct = loss_sum + out.loss_sum, correct + out.correct
        send = e == 0 or sc.centralised.resend == "per_epoch"
        raw = {i: tensor_message(data.train_views[run.plane.nodes[i]]) for i in run.paths} if send else None
        traffic = RoutedTraffic()
        train_s = PASSES * flops * data.n_train / run.flops_per_s[run.fusion]
        centralised_programs(traffic, run.paths, run.fusion, raw, train_s)
        traffic.record(run.plane, run.ledger, e)
        run.add_flops(run.fusion, PASSES * flops * data.n_train)
        return EpochStats(loss_sum, correct, data.n_train)

    evaluate = _evaluate_multiview(net, run)
    history = routed_loop(run, sc.training.epochs, epoch, evaluate, t0)
    one = {i: tensor_message(data.test_views[run.plane.nodes[i]][:1]) for i in run.paths}
    cost = inference_cost(run, lambda t: gather_programs(t, run.paths, run.fusion, "raw_data", one, {},
                                                         flops / run.flops_per_s[run.fusion]))
    return _finish(run, history, evaluate, cost)


def run_sl(run: RoutedRun, t0: float) -> Outcome:
    """Vertical SplitNN: cut activations up each route (``forward``), errors back (``backward``)."""
    sc, data = run.scenario, run.dataset
    net, opt, shuffle, views = _multiview_start(run)
    index = [run.plane.index[s] for s in run.sensors]
    bottom = [linear_flops(b) for b in net.bottoms]
    top = linear_flops(net.top)
    speed = run.flops_per_s

    def epoch(e: int) -> EpochStats:
        loss_sum, correct = 0.0, 0
        cuts, errors, bottom_s, top_s = [], [], [], []
        for idx in batch_indices(data.n_train, sc.training.batch_size, shuffle):
            out = split_step(net, opt, [x[idx] for x in views], data.train_labels[idx])
            loss_sum, correct, b = loss_sum + out.loss_sum, correct + out.correct, len(idx)
            cuts.append({i: tensor_message(c) for i, c in zip(index, out.cuts)})
            errors.append({i: tensor_message(g) for i, g in zip(index, out.errors)})
            bottom_s.append({i: f * b / speed[i] for i, f in zip(index, bottom)})
            top_s.append(PASSES * top * b / speed[run.fusion])
        traffic = RoutedTraffic()
        sl_epoch_programs(traffic, run.paths, run.fusion, cuts, errors, bottom_s, top_s, BACKWARD_FLOPS_FACTOR,
                          sc.sl.schedule == "sequential")
        traffic.record(run.plane, run.ledger, e)
        for i, f in zip(index, bottom):
            run.add_flops(i, PASSES * f * data.n_train)
        run.add_flops(run.fusion, PASSES * top * data.n_train)
        return EpochStats(loss_sum, correct, data.n_train)

    evaluate = _evaluate_multiview(net, run)
    history = routed_loop(run, sc.training.epochs, epoch, evaluate, t0)
    with torch.no_grad():
        one = {i: tensor_message(c) for i, c in zip(index, net.cut([data.test_views[s][:1] for s in run.sensors]))}
    cost = inference_cost(run, lambda t: gather_programs(
        t, run.paths, run.fusion, "forward", one, {i: f / speed[i] for i, f in zip(index, bottom)},
        top / speed[run.fusion]))
    return _finish(run, history, evaluate, cost)


def run_fl(run: RoutedRun, t0: float) -> Outcome:
    """FedAvg: parameters down and up every selected client's route each round (``parameters``)."""
    sc, data = run.scenario, run.dataset
    dims = {data.view_dims[s] for s in run.sensors}
    if len(dims) != 1:
        raise ScenarioError(f"paradigm: 'fl' needs one model shape for every client, but the sensors' views have "
                            f"widths {sorted(dims)}; use data.kind: synthetic or a sensor count that divides 64")
    view_dim = dims.pop()
    net = seeded(_model_seed(run.seed), lambda: ViewNet(view_dim, sc.model.latent_dim, sc.model.hidden_dim,
                                                        data.n_classes))
    index = [run.plane.index[s] for s in run.sensors]
    flops, speed = linear_flops(net), run.flops_per_s
    state = {"global": parameters_to_vector(net.parameters()).detach().clone()}
    draw = run_stream(run.seed, CLIENT_STREAM)

    def round_(r: int) -> EpochStats:
        clients = sample_clients(len(index), sc.fl.clients_per_round, draw)   # k: position in topology.sensors
        chosen = [index[k] for k in clients]
        start, vectors, stats = state["global"], [], [0.0, 0, 0]
        up, local_s = {}, {}
        for k, i in zip(clients, chosen):
            gen = torch.Generator().manual_seed((run.seed * 1_000_003 + r * 7_919 + k) % (2 ** 63 - 1))
            vec, loss_sum, correct, seen = local_train(
                net, start, data.train_views[run.plane.nodes[i]], data.train_labels, epochs=sc.fl.local_epochs,
                batch_size=sc.training.batch_size, lr=sc.training.lr, optimizer=sc.training.optimizer,
                weight_decay=sc.training.weight_decay, generator=gen)
            vectors.append(vec)
            up[i], local_s[i] = tensor_message(vec), PASSES * flops * seen / speed[i]
            stats = [stats[0] + loss_sum, stats[1] + correct, stats[2] + seen]
            run.add_flops(i, PASSES * flops * seen)
        state["global"] = fedavg(vectors, [len(data.train_labels)] * len(vectors))
        traffic = RoutedTraffic()
        aggregate_flops = 2 * start.numel() * len(chosen)
        fl_round_programs(traffic, run.paths, run.fusion, {i: tensor_message(start) for i in chosen}, up, local_s,
                          aggregate_flops / speed[run.fusion])
        traffic.record(run.plane, run.ledger, r)
        run.add_flops(run.fusion, aggregate_flops)
        return EpochStats(*stats)

    def evaluate(split: str = "test") -> dict:
        views, labels = ((data.test_views, data.test_labels) if split == "test"
                         else (data.train_views, data.train_labels))
        acc = fl_accuracy(view_logits(net, state["global"], {s: views[s] for s in run.sensors}), labels)
        mode = sc.fl.inference
        return {"accuracy": acc[mode], "loss": acc[f"{mode}_loss"], "accuracy_per_client": acc["per_client"],
                "accuracy_late_fusion": acc["late_fusion"]}

    history = routed_loop(run, sc.fl.rounds or sc.training.epochs, round_, evaluate, t0)
    on_train, final = evaluate("train"), evaluate()
    if sc.fl.inference == "late_fusion":
        with torch.no_grad():
            one = {i: tensor_message(net(data.test_views[run.plane.nodes[i]][:1])) for i in index}
        cost = inference_cost(run, lambda t: gather_programs(t, run.paths, run.fusion, "forward", one,
                                                             {i: flops / speed[i] for i in index}, 0.0))
    else:  # each client classifies alone: nothing crosses a link; latency of the slowest client
        cost = (0, max(flops / speed[i] for i in index))
    return Outcome(history, final["accuracy"], final["loss"], cost[0], cost[1],
                   {"accuracy_per_client": final["accuracy_per_client"],
                    "accuracy_late_fusion": final["accuracy_late_fusion"]}, on_train["accuracy"], on_train["loss"])


#: scenario.paradigm -> runner; INL is the learning plane of :mod:`inl_sim.study.training`
RUNNERS: dict[str, Callable[[RoutedRun, float], Outcome]] = {
    "centralised": run_centralised,
    "fl": run_fl,
    "sl": run_sl,
}
