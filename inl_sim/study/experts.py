"""The finite-expert-bank study: selection over alpha, the accuracy-rate curve, routed traffic.

``python run.py experts scenarios/expert_bank.yaml`` runs :func:`expert_study`:

1. pretrain the bank and its router offline (:mod:`inl_sim.learning.experts`);
2. **selection over alpha**: draw R training sets of n digits i.i.d. from the evaluation
   pool (the law D), pick an expert by the Gibbs rule q(W|S) ~ exp(-alpha n L_S(W)), and
   report Î(S;W), the measured gap E[L_D(W) - L_S(W)], the Xu-Raginsky bound
   sqrt(2 sigma^2 Î / n) and the union bound with log|W| (:mod:`inl_sim.learning.selection`);
3. **accuracy-rate curve** of the bank (distortion = misclassification, Blahut-Arimoto,
   :mod:`inl_sim.learning.curves`) with the router's own (I(X;T), accuracy) beside it;
4. **experts as nodes**: the router sends each batch's samples only to the chosen experts,
   the coded choices to the fusion node, the experts their outputs to the fusion node,
   hop by hop on the network plane (:mod:`inl_sim.sim.experts`); a broadcast-to-all pass
   (every expert gets every sample; the gate's q travels as float32) beside it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import yaml

from inl_sim import __version__
from inl_sim.learning.curves import RateCurve, accuracy_rate_curve
from inl_sim.learning.experts import (ExpertBank, Routing, build_bank, choice_codebook, choice_model, choice_nbytes,
                                      fixed_choice_bits, route)
from inl_sim.learning.information import entropy, nats_to_bits
from inl_sim.learning.selection import (gap_per_resample, gibbs_posterior, resampled_losses,
                                        selection_information, union_bound, xu_raginsky_bound)
from inl_sim.network import build_network
from inl_sim.network.experts import ExpertPlacement, place_experts
from inl_sim.scenario import Scenario, load_scenario, scenario_to_dict
from inl_sim.sim.energy import run_energy
from inl_sim.sim.experts import ExpertMessages, ExpertPass, record_expert_pass
from inl_sim.study.folders import atomic_dir
from inl_sim.study.results import write_json, write_table

__all__ = ["ExpertStudy", "expert_study", "selection_rows", "write_expert_study", "FLOAT32_NBYTES"]

log = logging.getLogger(__name__)
FLOAT32_NBYTES = 4


@dataclass(frozen=True)
class ExpertStudy:
    """Everything ``experts`` measured; rows are flat dicts (tables, JSON, figures)."""

    scenario: Scenario
    seed: int
    placement: ExpertPlacement
    parts: tuple[str, ...]
    expert_accuracy: tuple[float, ...]
    selection: list[dict[str, float]]
    curve: RateCurve
    router: dict[str, Any]
    traffic: list[dict[str, Any]]
    passes: dict[str, ExpertPass] = field(repr=False)
    routing: Routing | None = field(default=None, repr=False)   # the router's choices on the pool

    def summary(self) -> dict[str, Any]:
        return {"scenario": self.scenario.name, "seed": self.seed, "router": self.placement.router,
                "experts": list(self.placement.experts), "fusion": self.placement.fusion,
                "hops": self.placement.hops(), "parts": list(self.parts),
                "expert_accuracy": list(self.expert_accuracy), **self.router,
                "best_fixed_accuracy": 1 - self.curve.d_max, "oracle_accuracy": 1 - self.curve.d_min,
                "oracle_rate_bits": self.curve.oracle_rate_bits, "log2_bank": self.curve.max_rate_bits,
                "package_version": __version__, "torch_version": torch.__version__}

    def to_markdown(self) -> str:
        """The three tables the CLI prints."""
        s = self.summary()
        lines = [f"bank of {len(self.parts)} experts at nodes {s['experts']}, router {s['router']}, fusion "
                 f"{s['fusion']}; expert accuracies " + ", ".join(f"{a:.3f}" for a in self.expert_accuracy),
                 "", "| alpha | Î(S;W) (nats) | gap ± s.e. | Xu-Raginsky | union bound | E L_S(W) | E L_D(W) |",
                 "|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['alpha']:g} | {r['information_nats']:.4f} | {r['gap']:.4f} ± {r['gap_se']:.4f} | {r['xu_raginsky']:.4f} | "
                  f"{r['union_bound']:.4f} | {r['train_loss']:.4f} | {r['population_loss']:.4f} |"
                  for r in self.selection]
        lines += ["", f"router ({s['routing']}, k={s['k']}): accuracy {s['routed_accuracy']:.4f} at I(X;T) = "
                  f"{s['router_information_bits']:.4f} bits; broadcast accuracy {s['broadcast_accuracy']:.4f}; "
                  f"curve: best fixed {s['best_fixed_accuracy']:.4f} at 0 bits, oracle {s['oracle_accuracy']:.4f} "
                  f"at {s['oracle_rate_bits']:.4f} bits", "",
                  "| pass | to experts (B/sample, delivered) | total, every hop (B/sample) | choice/gate (B/sample) | "
                  "outputs, every hop (B/sample) | time (s) | energy (J) |", "|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {t['pass']} | {t['to_expert_delivered_per_sample']:.2f} | {t['total_per_sample']:.2f} | "
                  f"{t['choice_per_sample']:.3f} | {t['to_fusion_per_sample']:.2f} | {t['time_s']:.4g} | "
                  f"{t['energy_j']:.4g} |" for t in self.traffic]
        return "\n".join(lines)


# --------------------------------------------------------------------------- selection over alpha
def selection_rows(wrong: np.ndarray, alphas: tuple[float, ...], n: int, n_resamples: int,
                   rng: np.random.Generator) -> list[dict[str, float]]:
    """One row per alpha: Î(S;W), gap, both bounds, mean train and population loss.

    The same R training sets serve every alpha, so the rows differ only by the rule.
    """
    losses = resampled_losses(wrong, n, n_resamples, rng)                  # (R, |W|)
    population = wrong.mean(axis=0)                                        # (|W|,) L_D exactly
    rows = []
    for alpha in alphas:
        q = gibbs_posterior(losses, alpha, n)
        info = selection_information(q)
        gaps = gap_per_resample(q, losses, population)                    # (R,)
        rows.append({"alpha": float(alpha), "information_nats": info, "information_bits": float(nats_to_bits(info)),
                     "gap": float(gaps.mean()), "gap_se": float(gaps.std(ddof=1) / math.sqrt(len(gaps))),
                     "xu_raginsky": xu_raginsky_bound(info, n), "union_bound": union_bound(wrong.shape[1], n),
                     "train_loss": float(np.mean(np.sum(q * losses, axis=1))),
                     "population_loss": float(np.mean(q @ population)),
                     "selected_entropy_nats": float(entropy(q.mean(axis=0))), "n": n, "n_resamples": n_resamples})
    return rows


# --------------------------------------------------------------------------- experts as nodes
def _flops_per_sample(module: torch.nn.Module) -> int:
    """Multiply-adds of the module's linear layers, x2: the forward FLOPs of one sample."""
    return 2 * sum(int(m.weight.numel()) for m in module.modules() if isinstance(m, torch.nn.Linear))


def pass_messages(bank: ExpertBank, chosen: np.ndarray | None, batch_size: int,
                  choice_bytes: Any) -> ExpertMessages:
    """Every message of one pass over the pool, sized from the tensors that would cross.

    ``chosen`` (N, k) routes each sample to k experts; None broadcasts every sample to all
    experts.  ``choice_bytes(step, rows) -> (n_values, nbytes)`` sizes the router's message
    to the fusion node for the samples ``rows`` of a step.
    """
    x, k_all = bank.pool_x, bank.n_experts
    cols: dict[str, list[int]] = {name: [] for name in ("step", "kind", "expert", "n_samples", "n_values", "nbytes")}

    def add(step: int, kind: int, expert: int, n: int, tensor_values: int, nbytes: int) -> None:
        for name, value in zip(cols, (step, kind, expert, n, tensor_values, nbytes)):
            cols[name].append(value)

    batches = torch.arange(len(x)).split(batch_size)
    with torch.no_grad():
        for s, rows in enumerate(batches):
            for e in range(k_all):
                idx = rows if chosen is None else rows[(chosen[rows.numpy()] == e).any(axis=1)]
                if len(idx) == 0:
                    continue                                      # nothing routed: nothing sent
                message = x[idx]                                  # (n, 64) what the router sends
                output = bank.experts[e](message)                 # (n, C) what the expert returns
                add(s, 0, e, len(idx), message.numel(), message.numel() * message.element_size())
                add(s, 1, e, len(idx), output.numel(), output.numel() * output.element_size())
            n_values, nbytes = choice_bytes(s, rows.numpy())
            add(s, 2, -1, len(rows), n_values, nbytes)
    arrays = {name: np.asarray(v, dtype=np.int64) for name, v in cols.items()}
    return ExpertMessages(**arrays, batch=np.array([len(r) for r in batches], dtype=np.int64))


def _compute_s(messages: ExpertMessages, bank: ExpertBank, placement: ExpertPlacement, graph: Any) -> dict:
    speed = {v: float(graph.nodes[v]["flops_per_s"]) for v in (placement.router, *placement.experts)}
    router_flops = _flops_per_sample(bank.router)
    expert_flops = np.array([_flops_per_sample(e) for e in bank.experts])
    speeds = np.array([speed[v] for v in placement.experts])
    e = np.maximum(messages.expert, 0)
    return {"router": router_flops * messages.batch / speed[placement.router],
            "expert": expert_flops[e] * messages.n_samples / speeds[e],
            "flops": {placement.router: float(router_flops * messages.batch.sum()),
                      **{v: float(expert_flops[j] * messages.n_samples[(messages.kind == 0) & (messages.expert == j)]
                                  .sum()) for j, v in enumerate(placement.experts)}}}


def _traffic_row(name: str, passed: ExpertPass, n_samples: int, energy_j: float) -> dict[str, Any]:
    per = lambda kind, final=False: passed.nbytes(kind, final_only=final) / n_samples  # noqa: E731
    total = int(passed.ledger.columns()["nbytes"].sum(dtype=np.int64))
    return {"pass": name, "n_samples": n_samples, "n_transfers": len(passed.ledger),
            "to_expert_delivered_bytes": passed.nbytes("to_expert", final_only=True),
            "to_expert_hop_bytes": passed.nbytes("to_expert"), "total_bytes": total,
            "to_expert_delivered_per_sample": per("to_expert", True), "to_expert_per_sample": per("to_expert"),
            "to_fusion_per_sample": per("to_fusion"), "choice_per_sample": per("choice"),
            "total_per_sample": total / n_samples, "time_s": passed.makespan_s, "energy_j": energy_j}


def _router_info(bank: ExpertBank, r: Routing, spec: Any) -> dict[str, Any]:
    """Empirical I(X;T) of the router over the pool, and the accuracies routed vs broadcast.

    Hard Gumbel: T is drawn from q(.|x), so I(X;T) = H(mean q) - mean H(q) (the plug-in
    over the pool's samples).  Top-k: T is a function of x, so I(X;T) = H(T).
    """
    y = bank.pool_y.numpy()
    if r.kind == "hard_gumbel":
        info = float(entropy(r.q.mean(axis=0)) - np.mean(entropy(r.q, axis=1)))
    else:
        info = float(entropy(np.bincount(r.symbol, minlength=len(choice_codebook(bank.n_experts, spec.k)))
                             / len(r.symbol)))
    counts = np.bincount(r.chosen.ravel(), minlength=bank.n_experts)
    return {"routing": r.kind, "k": int(r.chosen.shape[1]), "choice_coding": spec.choice_coding,
            "router_information_bits": float(nats_to_bits(max(info, 0.0))),
            "routed_accuracy": float(np.mean(r.predicted == y)),
            "broadcast_accuracy": float(np.mean(r.broadcast_predicted == y)),
            "expert_load": (counts / counts.sum()).tolist(), "n_pool": int(len(y))}


def _choice_sizer(bank: ExpertBank, r: Routing, spec: Any, seed: int) -> Any:
    bits = fixed_choice_bits(bank.n_experts, spec.k)
    probs = choice_model(bank, spec.routing, spec.k, spec.temperature, seed=seed) \
        if spec.choice_coding == "entropy" else None
    return lambda step, rows: (len(rows), choice_nbytes(r.symbol[rows], spec.choice_coding,
                                                          bits_per_choice=bits, probs=probs))


def _passes(sc: Scenario, bank: ExpertBank, r: Routing, placement: ExpertPlacement, network: Any,
            seed: int) -> tuple[list[dict], dict[str, ExpertPass]]:
    spec, graph = sc.experts, network.graph
    gate_values = lambda step, rows: (len(rows) * bank.n_experts,  # noqa: E731  q as float32, (B, K)
                                      len(rows) * bank.n_experts * FLOAT32_NBYTES)
    rows, passes = [], {}
    for name, chosen, sizer in (("routed", r.chosen, _choice_sizer(bank, r, spec, seed)),
                                ("broadcast", None, gate_values)):
        messages = pass_messages(bank, chosen, spec.batch_size, sizer)
        compute = _compute_s(messages, bank, placement, graph)
        passed = record_expert_pass(messages, placement, graph, list(graph.nodes), compute)
        energy = run_energy(passed.ledger.records, compute["flops"], sc.energy, nodes=list(graph.nodes),
                            sim_time_s=passed.makespan_s)
        rows.append(_traffic_row(name, passed, len(bank.pool_y), energy.total()))
        passes[name] = passed
        log.info("experts: %s pass, %d transfers, %.1f B/sample", name, len(passed.ledger), rows[-1]["total_per_sample"])
    return rows, passes


def expert_study(scenario: Scenario | str | Path | Mapping, seed: int | None = None, *,
                 progress: bool | None = False) -> ExpertStudy:
    """Run the whole finite-expert-bank study of ``scenario``'s ``experts`` section.

    Parameters
    ----------
    scenario
        A Scenario, YAML path or dict; its topology places the router, experts and fusion.
    seed
        Seed (default: ``experts.seed``, else ``scenario.seed``); derives the data
        split, the bank, the resampled training sets and the Gumbel noise.
    progress
        A progress bar over the study's stages (None: only on an interactive terminal).
    """
    from tqdm.auto import tqdm
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    spec = sc.experts
    seed = int(seed if seed is not None else spec.seed if spec.seed is not None else sc.seed)
    network = build_network(sc.topology, seed=seed)
    placement = place_experts(network, spec, cost=sc.routing.cost, payload_bits=64 * 32 * spec.batch_size,
                              seed=seed)
    bar = tqdm(total=4, desc="experts", unit="stage", disable=None if progress is None else not progress, leave=False)
    with bar:
        bar.set_postfix_str(f"pretraining {spec.n_experts} experts + router ({spec.bank})")
        bank = build_bank(spec, seed)
        wrong = bank.wrong()                                              # (N, K)
        bar.update()
        bar.set_postfix_str(f"selection: {len(spec.alphas)} alphas x {spec.n_resamples} training sets")
        selection = selection_rows(wrong, spec.alphas, spec.n_selection, spec.n_resamples,
                                   np.random.default_rng([seed, 12]))
        bar.update()
        bar.set_postfix_str("accuracy-rate curve (Blahut-Arimoto)")
        curve = accuracy_rate_curve(wrong, 16)
        bar.update()
        bar.set_postfix_str("routed and broadcast passes on the network")
        r = route(bank, spec.routing, spec.k, spec.temperature, seed=seed)
        traffic, passes = _passes(sc, bank, r, placement, network, seed)
        bar.update()
    return ExpertStudy(sc, seed, placement, bank.parts, tuple((1 - wrong.mean(axis=0)).tolist()), selection, curve,
                       _router_info(bank, r, spec), traffic, passes, r)


def write_expert_study(study: ExpertStudy, out_dir: str | Path) -> Path:
    """Write the tables (CSV + JSON), both passes' transfers and provenance, atomically."""
    resolved = scenario_to_dict(study.scenario)
    resolved["seed"] = study.seed
    curve = [pt.row() for pt in study.curve.points]
    with atomic_dir(Path(out_dir), kind="experts") as tmp:
        (tmp / "scenario.resolved.yaml").write_text(
            f"# resolved scenario of experts, seed {study.seed}\n" + yaml.safe_dump(resolved, sort_keys=False),
            encoding="utf-8")
        write_json(tmp / "summary.json", study.summary())
        write_table(tmp / "selection.csv", study.selection)
        write_table(tmp / "curve.csv", curve)
        write_table(tmp / "traffic.csv", study.traffic)
        write_json(tmp / "experts.json", {"summary": study.summary(), "selection": study.selection,
                                          "curve": curve, "traffic": study.traffic})
        for name, passed in study.passes.items():
            passed.ledger.write_csv(tmp / f"transfers_{name}.csv")
    return Path(out_dir)
