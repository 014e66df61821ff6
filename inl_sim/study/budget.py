"""Equal-budget control: give a method the training bytes of another.

D-INL sends fewer bytes than dense INL because it uses fewer links; its accuracy could
differ because of *which* links (a tree) or merely because of *how many bytes* travel.
The control keeps dense INL's links and narrows its messages until its bytes match:
with fixed-width messages a step costs ``2 * batch * latent_dim * bytes_per_value *
n_edges`` (forward + backward), so the matching width is

    latent_dim_method = round(latent_dim_target * bpv_target * E_target / (bpv_method * E_method))

(at least 1).  The match is exact when the division is, otherwise within rounding; the
planned byte ratio is reported, and the table shows the bytes the ledger actually
recorded.  Edge counts come from the scenario's own seed (``scenario.seed``): on a
seeded random topology other seeds may have other counts.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from inl_sim.errors import ScenarioError
from inl_sim.network import build_network
from inl_sim.network.routing import build_training_graph
from inl_sim.scenario import MethodSpec, Scenario, with_overrides
from inl_sim.study.show import nominal_bits_per_value

__all__ = ["bytes_per_sample_step", "equal_budget_latent_dim", "apply_budgets", "annotate_rows"]


def bytes_per_sample_step(sc: Scenario, seed: int | None = None) -> tuple[float, int]:
    """Forward bytes per sample per step of ``sc`` (width x bytes/value x links) and its link count."""
    seed = sc.seed if seed is None else seed
    network = build_network(sc.topology, seed=seed)
    bits = nominal_bits_per_value(sc.message.encoding, sc.message.bits)
    graph = build_training_graph(network, sc.routing.mode, cost=sc.routing.cost,
                                 payload_bits=sc.model.latent_dim * bits, dense_ties=sc.routing.dense_ties, seed=seed)
    return sc.model.latent_dim * bits / 8 * graph.n_edges, graph.n_edges


def equal_budget_latent_dim(method: Scenario, target: Scenario, seed: int | None = None) -> tuple[int, float]:
    """The ``model.latent_dim`` that gives ``method`` the bytes of ``target``, and the resulting byte ratio."""
    target_bytes, _ = bytes_per_sample_step(target, seed)
    unit_bytes, _ = bytes_per_sample_step(with_overrides(method, {"model.latent_dim": 1}), seed)
    width = max(1, round(target_bytes / unit_bytes))
    return width, width * unit_bytes / target_bytes


def apply_budgets(variants: Mapping[str, Scenario], arms: Sequence[MethodSpec]) -> tuple[dict, dict[str, Any]]:
    """Set ``model.latent_dim`` of every arm with ``budget_of``; return the variants and what was set."""
    out, report = dict(variants), {}
    for arm in arms:
        if arm.budget_of is None:
            continue
        if arm.budget_of not in variants:
            raise ScenarioError(f"compare.methods.{arm.name}.budget_of: {arm.budget_of!r} is not a method of "
                                f"this comparison {sorted(variants)}; name one of them")
        target = variants[arm.budget_of]
        if (target.training.epochs, target.training.batch_size, target.data.n_train) != (
                variants[arm.name].training.epochs, variants[arm.name].training.batch_size,
                variants[arm.name].data.n_train):
            raise ScenarioError(f"compare.methods.{arm.name}.budget_of: {arm.budget_of!r} trains on another "
                                "schedule (epochs, batch size or n_train differ); equal budgets need the same steps")
        width, ratio = equal_budget_latent_dim(variants[arm.name], target)
        out[arm.name] = with_overrides(variants[arm.name], {"model.latent_dim": width})
        report[arm.name] = {"budget_of": arm.budget_of, "latent_dim": width, "planned_byte_ratio": ratio,
                            "target_latent_dim": target.model.latent_dim}
    return out, report


def annotate_rows(rows: Sequence[dict], variants: Mapping[str, Scenario], budgets: Mapping[str, Any]) -> None:
    """Add each method's ``latent_dim`` and, for equal-budget arms, the measured byte ratio to its target."""
    by_name = {r["method"]: r for r in rows}
    for row in rows:
        row["latent_dim"] = variants[row["method"]].model.latent_dim
        plan = budgets.get(row["method"])
        if plan is not None:
            target = by_name[plan["budget_of"]]["exchange_bytes_mean"]
            row.update({"budget_of": plan["budget_of"], "planned_byte_ratio": plan["planned_byte_ratio"],
                        "byte_ratio_to_budget": row["exchange_bytes_mean"] / target if target else None})
