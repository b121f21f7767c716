#!/usr/bin/env python3
"""Summaries, the terminal table, docs/benchmarks.md's generated section and its chart, for the
peer comparison (benchmarks/peer_benchmarks.py). No third-party imports except matplotlib, and
that only for the chart (``python peer_report.py --chart RESULTS.json OUT.png``, run by the
harness with the peers' interpreter, where it is installed)."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any, Dict, List, Optional

WORKLOADS = [
    "single_client_tasks_sync",
    "single_client_tasks_async",
    "multi_client_tasks_async",
    "1_1_actor_calls_sync",
    "1_1_actor_calls_async",
    "1_n_actor_calls_async",
    "n_n_actor_calls_async",
    "single_client_put_calls",
    "single_client_get_calls",
    "single_client_put_gigabytes",
    "single_client_wait_1k_refs",
    "single_client_tasks_and_get_batch",
]
UNITS = {"single_client_put_gigabytes": "GB/s", "single_client_wait_1k_refs": "1k waits/s",
         "single_client_tasks_and_get_batch": "batches/s"}
SYSTEMS = {
    "atoll-cpp": "atoll C++ embedded",
    "atoll-cpp-cluster": "atoll C++ cluster",
    "atoll": "atoll Py embedded",
    "atoll-cluster": "atoll Py cluster",
    "ray": "Ray",
    "ray-default": "Ray (defaults)",
    "dask": "Dask",
}
# Each ratio: an atoll system against a peer. The like-for-like pair is atoll's Python API on a
# local cluster against Ray's local runtime: both run every task in another process.
RATIOS = [("atoll-cluster", "ray"), ("atoll", "ray"), ("atoll-cluster", "dask")]
BEGIN, END = "<!-- peer-benchmarks:begin -->", "<!-- peer-benchmarks:end -->"


def summarize(runs: Dict[str, Any]) -> Dict[str, Dict[str, Dict[str, float]]]:
    """{system: {workload: {median, min, max, n}}} from each system's repetitions."""
    out: Dict[str, Dict[str, Dict[str, float]]] = {}
    for system, run in runs.items():
        for workload, reps in run.get("results", {}).items():
            if reps:
                out.setdefault(system, {})[workload] = {
                    "median": statistics.median(reps), "min": min(reps), "max": max(reps),
                    "n": len(reps)}
    return out


def ratios(summary: Dict[str, Any]) -> Dict[str, Dict[str, float]]:
    """{"atoll-cluster/ray": {workload: ratio of medians}} where both ran the workload."""
    out: Dict[str, Dict[str, float]] = {}
    for mine, peer in RATIOS:
        for w in WORKLOADS:
            a, b = summary.get(mine, {}).get(w), summary.get(peer, {}).get(w)
            if a and b and b["median"] > 0:
                out.setdefault(f"{mine}/{peer}", {})[w] = a["median"] / b["median"]
    return out


def _figure(v: float) -> str:
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:,.2f}" if v < 10 else f"{v:,.1f}"


def cell(system: str, workload: str, summary: Dict[str, Any], runs: Dict[str, Any],
         spread: bool = False) -> str:
    s = summary.get(system, {}).get(workload)
    if s:
        if spread and s["n"] > 1:
            return f"{_figure(s['median'])} ({_figure(s['min'])}–{_figure(s['max'])})"
        return _figure(s["median"])
    run = runs.get(system, {})
    if workload in run.get("errors", {}) or "(start)" in run.get("errors", {}):
        return "failed"
    if workload in run.get("skipped", {}):
        return "n/a"
    return "—"


def table(summary: Dict[str, Any], runs: Dict[str, Any], markdown: bool) -> str:
    systems = [s for s in SYSTEMS if s in runs]
    ratio = ratios(summary)
    ratio_names = [f"{m}/{p}" for m, p in RATIOS if m in runs and p in runs]
    head = ["workload"] + [SYSTEMS[s] for s in systems] + [
        f"{SYSTEMS[n.split('/')[0]]} / {SYSTEMS[n.split('/')[1]]}" for n in ratio_names]
    rows = []
    for w in WORKLOADS:
        row = [w + (f" ({UNITS[w]})" if w in UNITS else "")]
        row += [cell(s, w, summary, runs, spread=markdown) for s in systems]
        row += [f"{ratio[n][w]:.2f}x" if w in ratio.get(n, {}) else "—" for n in ratio_names]
        rows.append(row)
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    fmt = lambda r: "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])  # noqa: E731
                              for i, c in enumerate(r))
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def problems(runs: Dict[str, Any]) -> List[str]:
    out = []
    for system, run in runs.items():
        for workload, error in run.get("errors", {}).items():
            out.append(f"{SYSTEMS.get(system, system)}: {workload}: {error}")
    return out


def transfer_lines(transfer: Optional[Dict[str, Any]]) -> List[str]:
    if not transfer:
        return []
    if "error" in transfer:
        return [f"cross-node transfer: {transfer['error']}"]
    lines = [f"Cross-node transfer of a {transfer['size_bytes'] / 2**30:.2f} GiB object "
             f"(benchmarks/object_transfer.cpp; median of {transfer['repeat']} rounds, slowest "
             "and fastest in brackets):", ""]
    for path in transfer["paths"]:
        spread = f" [{path['min']:.2f}-{path['max']:.2f}]" if "min" in path else ""
        lines.append(f"- {path['name']}: {path['gbps']:.2f} GB/s{spread}")
    return lines


def versions(runs: Dict[str, Any]) -> str:
    """atoll's, Ray's and Dask's versions, once each."""
    found: Dict[str, str] = {}
    for system, run in runs.items():
        family = "atoll" if system.startswith("atoll") else SYSTEMS.get(system, system).split()[0]
        version = run.get("version")
        if version and (found.get(family) in (None, "this checkout")):
            found[family] = version  # a package's version over the C++ suites' "this checkout"
    return ", ".join(f"{family} {version}" for family, version in found.items())


def machine_line(machine: Dict[str, Any]) -> str:
    return (f"{machine.get('cpu_model', '?')}, {machine.get('cores', '?')} cores, "
            f"{machine.get('memory_gib', 0):.0f} GiB, {machine.get('os', '?')}, "
            f"Python {machine.get('python', '?')}")


def docs_section(doc: Dict[str, Any], chart: Optional[str]) -> str:
    """The generated part of docs/benchmarks.md (between the markers)."""
    summary, runs = doc["summary"], doc["runs"]
    lines = [
        BEGIN,
        "<!-- Generated by benchmarks/peer_benchmarks.py; edits between these markers are lost. -->",
        "",
        f"**Run:** {doc['date']} ({doc['mode']} mode: {doc['repetitions']} repetitions of "
        f"{doc['duration']} s per workload; every repetition in `{doc['json_name']}`), "
        f"{doc['cpus']} CPUs given to every system.",
        "",
        f"**Machine:** {machine_line(doc['machine'])}.",
        "",
        f"**Versions:** {versions(runs)}.",
        "",
        "Operations per second (tasks, calls, puts or gets), higher is better: the median "
        "repetition, with the slowest and fastest in brackets; ratios are of medians. n/a: the "
        "system has no equivalent; failed: see below.",
        "",
        table(summary, runs, markdown=True),
        "",
    ]
    lines += transfer_lines(doc.get("transfer"))
    issues = problems(runs)
    if issues:
        lines += ["", "Failures in this run:", ""] + [f"- {p}" for p in issues]
    lines += [""]
    if chart:
        lines += [f"![atoll / peer, per workload (log scale)]({chart})", ""]
    else:
        lines += ["(No chart in this run: matplotlib was not available.)", ""]
    lines += [END]
    return "\n".join(lines)


def update_docs(path: str, section: str) -> None:
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = "# Benchmarks\n"
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n## atoll beside Ray and Dask (generated)\n\n" + section + "\n"
    with open(path, "w") as f:
        f.write(text)


def chart(doc: Dict[str, Any], out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ratio = ratios(doc["summary"])
    names = [n for n in ratio if ratio[n]]
    if not names:
        raise SystemExit("no ratios to chart")
    fig, ax = plt.subplots(figsize=(10, 6.5))
    height = 0.8 / len(names)
    for i, n in enumerate(names):
        ys = [j + i * height for j in range(len(WORKLOADS))]
        xs = [ratio[n].get(w, float("nan")) for w in WORKLOADS]
        mine, peer = n.split("/")
        ax.barh(ys, xs, height=height, label=f"{SYSTEMS[mine]} / {SYSTEMS[peer]}")
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks([j + 0.4 - height / 2 for j in range(len(WORKLOADS))])
    ax.set_yticklabels(WORKLOADS)
    ax.invert_yaxis()
    ax.set_xlabel("ratio of medians (right of 1: atoll faster)")
    ax.set_title(f"atoll against its peers, same machine, same run ({doc['date']})")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chart", nargs=2, metavar=("RESULTS_JSON", "OUT_PNG"), required=True)
    args = parser.parse_args()
    with open(args.chart[0]) as f:
        doc = json.load(f)
    chart(doc, args.chart[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
