"""The subcommands: each parses nothing, checks the scenario before importing torch,
calls one function of the study wing and prints what it returns."""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from pathlib import Path

from inl_sim.cli.common import (EXIT_DIVERGED, MAX_GRID_POINTS, _bytes, _check_variants, _default_out, _load,
                                _maybe_report, _parse_grid, _print_claims, _print_diverged, _progress, _where)
from inl_sim.errors import ScenarioError
from inl_sim.scenario import load_scenario
from inl_sim.scenario.library import describe_scenarios

def cmd_run(args: argparse.Namespace) -> int:
    sc = _load(args)
    from inl_sim.study.experiment import run
    seed = sc.seed if args.seed is None else args.seed
    out = _default_out(sc, args, f"run-{sc.routing.mode if sc.paradigm == 'inl' else sc.paradigm}-seed{seed}")
    args.study_out = None  # a run keeps nothing until it ends
    res = run(sc, seed, out_dir=out, progress=_progress(args), overwrite=args.overwrite)
    s = res.summary()
    if res.status == "diverged":
        print(f"diverged: {s['diverged_reason']} (epoch {s['diverged_epoch']}, node {s['diverged_node']}); "
              f"run folder with status 'diverged': {out}", file=sys.stderr)
        return EXIT_DIVERGED
    rows = [("method", f"{s['method']} ({s['paradigm']})"), ("seed", s["seed"]), ("active links", s["n_active_edges"]),
            ("test accuracy", f"{s['accuracy']:.4f}"), ("test loss", f"{s['test_loss']:.4f}"),
            ("exchange", _bytes(s["exchange_bytes"])), ("  forward", _bytes(s["exchange_bytes_forward"])),
            ("  backward", _bytes(s["exchange_bytes_backward"])),
            *[(f"  {d}", _bytes(s[f"exchange_bytes_{d}"])) for d in ("parameters", "raw_data")
              if s[f"exchange_bytes_{d}"]],
            ("inference/sample", f"{_bytes(s['inference_bytes_per_sample'])}, {1e3 * s['inference_latency_s']:.3f} ms"),
            ("rate (bits/sample)", "n/a" if s["rate_bits"] is None else f"{s['rate_bits']:.3f}"),
            ("simulated time", f"{s['sim_time_s']:.3f} s ({s['sim_time_per_epoch_s']:.3f} s/epoch)"),
            ("wall time", f"{s['wall_time_s']:.2f} s"), ("results", str(out))]
    if "faults_policy" in s:   # a faulty network: what it cost (faults.json holds the timeline)
        rows[-1:-1] = [("faults", f"policy {s['faults_policy']}: {_bytes(s['faults_bytes_sent'])} sent, "
                                  f"{s['faults_mean_attempts']:.3f} attempts/message, {s['faults_dropped_inputs']} "
                                  f"inputs dropped, {s['faults_repairs']} repairs")]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from inl_sim.study.folders import check_name, folder_names
    sc = _load(args)
    modes = args.modes.split(",") if args.modes else None
    names = modes or [m.name for m in sc.compare.methods]
    folder_names([check_name(n, "compare.methods.name") for n in names], "compare.methods.name")  # before torch
    _check_variants(sc, [{"routing.mode": m} for m in modes] if modes else [dict(m.set) for m in sc.compare.methods])
    out = _default_out(sc, args, "compare")
    from inl_sim.study.comparison import compare
    cmp = compare(sc, modes=modes, seeds=args.seeds, out_dir=out, progress=_progress(args), fresh=args.fresh,
                  **_where(args))
    print(cmp.to_markdown())
    _print_claims(cmp.rows)
    _print_diverged(cmp.rows)
    _maybe_report(out, args)
    print(f"results: {out}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    sc = _load(args)
    from inl_sim.study.show import describe
    print(describe(sc, seed=sc.seed if args.seed is None else args.seed))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    sc = _load(args)
    grid = dict(_parse_grid(text) for text in args.grid)
    keys = list(grid)
    if math.prod(len(v) for v in grid.values()) > MAX_GRID_POINTS:
        raise ScenarioError(f"--grid: {math.prod(len(v) for v in grid.values()):,} points exceed the limit of "
                            f"{MAX_GRID_POINTS:,}; sweep fewer values")
    _check_variants(sc, [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))])
    out = _default_out(sc, args, "sweep")
    from inl_sim.study.comparison import sweep
    cmp = sweep(sc, grid, seeds=args.seeds, out_dir=out, progress=_progress(args), fresh=args.fresh,
                **_where(args))
    print(cmp.to_markdown())
    _print_diverged(cmp.rows)
    _maybe_report(out, args)
    print(f"results: {out}")
    return 0


def cmd_topologies(args: argparse.Namespace) -> int:
    if args.action == "list" and args.library:
        from inl_sim.network.library import format_library_markdown, list_library
        rows = list_library(args.match)
        print(format_library_markdown(rows), end="")
        print(f"{len(rows)} network(s); use one as topology: {{library: <name>}}")
        return 0
    if args.action == "list":
        from inl_sim.study import survey
        print(survey.format_list_markdown(survey.list_topologies()), end="")
        return 0
    sc = _load(args)
    if args.epochs is not None:
        sc = load_scenario(sc, {"training.epochs": args.epochs})
    from inl_sim.study import survey  # torch: only once the scenario is known to be valid
    choices = survey.parse_choices(args.files, args.generators, args.library)
    out = _default_out(sc, args, "topologies")
    res = survey.compare_topologies(sc, choices, seeds=args.seeds, sensors=args.sensors,
                                    structure_only=args.structure_only, out_dir=out,
                                    progress=_progress(args), fresh=args.fresh, **_where(args))
    print(res.to_markdown())
    for r in res.rows:
        if r.get("exchange_matches_structure") is False:
            print(f"warning: {r['topology']}: measured exchange reduction {r['exchange_reduction']:.4%} "
                  f"differs from the structural {r['structural_reduction']:.4%}")
    print(f"results: {out}")
    return 0


def cmd_rate_curve(args: argparse.Namespace) -> int:
    sc = _load(args)
    from inl_sim.study.ratecurve import parse_slopes, rate_curve, write_rate_curve
    out = _default_out(sc, args, "rate-curve")
    study = rate_curve(sc, args.seed, slopes=parse_slopes(args.slopes), fill=args.fill,
                       max_full=args.max_children, progress=_progress(args))
    write_rate_curve(study, out)
    print(study.to_markdown())
    print(f"results: {out} (rate_curve.html, rate_curve.csv/.json, options.csv)")
    return 0


def cmd_experts(args: argparse.Namespace) -> int:
    sc = _load(args)
    from inl_sim.report.experts import run_experts
    print(run_experts(sc, args.seed, _default_out(sc, args, "experts"), progress=_progress(args)))
    return 0


def cmd_scenarios(args: argparse.Namespace) -> int:
    rows = describe_scenarios()
    width = max([len("name"), *(len(name) for name, _ in rows)])
    print(f"{'name':<{width}}  description")
    print("\n".join(f"{name:<{width}}  {text}" for name, text in rows))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from inl_sim.report.html import build_report
    print(f"report: {build_report(Path(args.results), Path(args.out) if args.out else None)}")
    return 0
