#!/usr/bin/env python3
"""atoll beside Ray and Dask: the same workloads on the same machine, in one run.

  benchmarks/peers.sh [ARGS]                                 # set-up and build first, then this
  .venv/bin/python benchmarks/peer_benchmarks.py            # full run (under 25 min on 2 cores)
  .venv/bin/python benchmarks/peer_benchmarks.py --quick    # under 3 minutes
  .venv/bin/python benchmarks/peer_benchmarks.py --quick --systems atoll,atoll-cluster

Systems (--systems, comma-separated; default: all):
  atoll-cpp, atoll-cpp-cluster   the C++ API's Google Benchmark suites (build/benchmarks/),
                                 embedded and driving a local cluster (`atoll up`)
  atoll, atoll-cluster           the Python API, embedded and driving a local cluster
  ray, ray-default               ray.init(num_cpus=N) and ray.init() with Ray's defaults
  dask                           distributed.LocalCluster(processes=True), one worker per CPU

Ray and Dask are installed from PyPI into their own virtual environment (.venv-peers, made on
first use; --no-install uses it as it is), so they never share a process or a package set with
atoll. Each system runs in a process of its own (benchmarks/peer_workloads.py for the Python
ones). A system that cannot be installed or crashes is reported in the table and the run goes on.

Writes build/peer_benchmarks.json (every repetition, the machine, the versions), prints a table
(medians, and atoll/Ray, atoll/Dask ratios), and regenerates the marked section of
docs/benchmarks.md with a chart (docs/peer_benchmarks.png; --no-docs leaves the docs alone).
The cross-node transfer of a 1 GiB object (benchmarks/object_transfer.cpp: node agent to node
agent, beside one raw TCP stream and ucx_perftest on the same link) runs with the atoll systems.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import re
import subprocess
import sys
import tempfile
from typing import Any, Dict, List, Optional

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import peer_report  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
HERE = ROOT / "benchmarks"
PEERS = {"ray", "ray-default", "dask"}
PEER_PACKAGES = ["ray", "dask[distributed]", "numpy", "matplotlib"]
# C++ suites: which Google Benchmark binary measures each system.
CPP = {"atoll-cpp": "atoll_microbenchmarks", "atoll-cpp-cluster": "atoll_cluster_benchmarks"}


def log(message: str) -> None:
    print(f"peer_benchmarks: {message}", file=sys.stderr, flush=True)


def machine() -> Dict[str, Any]:
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = 0.0
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                memory = int(line.split()[1]) / 2**20
    except OSError:
        pass
    return {"cpu_model": model, "cores": os.cpu_count(), "memory_gib": memory,
            "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version()}


def peers_python(venv: pathlib.Path, install: bool) -> Optional[str]:
    """The interpreter of the peers' environment, made and filled when missing; None (logged)
    when it cannot be had."""
    python = venv / "bin" / "python"
    if install:
        try:
            if not python.exists():
                log(f"creating {venv}")
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            log("installing " + ", ".join(PEER_PACKAGES) + " from PyPI (once; a minute or two)")
            subprocess.run([str(python), "-m", "pip", "install", "-q",
                            "--disable-pip-version-check"] + PEER_PACKAGES, check=True)
        except (subprocess.CalledProcessError, OSError) as e:
            log(f"could not install the peers: {e}")
            return None
    return str(python) if python.exists() else None


def run_python(system: str, python: str, args: argparse.Namespace, cpus: int) -> Dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    command = [python, str(HERE / "peer_workloads.py"), "--system", system, "--cpus", str(cpus),
               "--duration", str(args.duration), "--repetitions", str(args.repetitions),
               "--out", out] + (["--quick"] if args.quick else [])
    log(f"{system}: running ({args.repetitions} x {args.duration} s per workload)")
    try:
        proc = subprocess.run(command, timeout=args.timeout, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        with open(out) as f:
            result = json.load(f)
        if proc.returncode != 0:
            result.setdefault("errors", {})["(exit)"] = f"exit status {proc.returncode}"
        return result
    except subprocess.TimeoutExpired:
        return {"system": system, "errors": {"(start)": f"timed out after {args.timeout} s"}}
    except (OSError, ValueError) as e:
        tail = proc.stderr[-2000:] if "proc" in locals() else ""
        return {"system": system, "errors": {"(start)": f"{type(e).__name__}: {e} {tail}"}}
    finally:
        os.unlink(out)


def run_cpp(system: str, args: argparse.Namespace) -> Dict[str, Any]:
    binary = ROOT / "build" / "benchmarks" / CPP[system]
    if not binary.exists():
        return {"system": system, "errors": {"(start)": f"{binary} is not built"}}
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    # The cluster suite starts a local cluster for every run of every benchmark (a second or two
    # each): a quick run measures it once.
    repetitions = 1 if args.quick and system == "atoll-cpp-cluster" else args.repetitions
    log(f"{system}: running {binary.name}")
    command = [str(binary), f"--benchmark_repetitions={repetitions}",
               f"--benchmark_min_time={args.duration}", "--benchmark_format=console",
               f"--benchmark_out={out}", "--benchmark_out_format=json",
               "--benchmark_filter=^(single_client|multi_client|1_|n_n)"]
    try:
        subprocess.run(command, check=True, timeout=args.timeout, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        with open(out) as f:
            data = json.load(f)
    except (subprocess.SubprocessError, OSError, ValueError) as e:
        return {"system": system, "errors": {"(start)": f"{type(e).__name__}: {e}"}}
    finally:
        os.unlink(out)
    results: Dict[str, List[float]] = {}
    for b in data.get("benchmarks", []):
        if b.get("run_type") != "iteration":
            continue
        name = b["name"].split("/")[0]
        if name == "single_client_put_gigabytes":
            value = b.get("bytes_per_second", 0.0) / 1e9
        else:
            value = b.get("items_per_second", 0.0)
        results.setdefault(name, []).append(value)
    missing = {w: "not in the C++ benchmark suite yet" for w in peer_report.WORKLOADS
               if w not in results}
    return {"system": system, "version": "this checkout", "results": results,
            "skipped": missing, "errors": {}}


def run_transfer(args: argparse.Namespace) -> Dict[str, Any]:
    binary = ROOT / "build" / "benchmarks" / "atoll_object_transfer"
    if not binary.exists():
        return {"error": f"{binary} is not built"}
    size = (64 << 20) if args.quick else (1 << 30)
    repeat = 3 if args.quick else 5
    log(f"cross-node transfer: {size >> 20} MiB, {repeat} rounds")
    try:
        proc = subprocess.run([str(binary), "--size", str(size), "--repeat", str(repeat)],
                              capture_output=True, text=True, timeout=args.timeout, check=True)
    except (subprocess.SubprocessError, OSError) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    paths = []
    pattern = re.compile(r"^\s+(.+?)\s+([\d.]+) GB/s\s*(?:\[([\d.]+)-([\d.]+)\])?")
    for line in proc.stdout.splitlines():
        m = pattern.match(line)
        if m:
            path = {"name": m.group(1), "gbps": float(m.group(2))}
            if m.group(3):
                path["min"], path["max"] = float(m.group(3)), float(m.group(4))
            paths.append(path)
    return {"size_bytes": size, "repeat": repeat, "paths": paths}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n", 2)[2])
    parser.add_argument("--quick", action="store_true", help="a short run (under 3 minutes)")
    parser.add_argument("--systems", default=",".join(peer_report.SYSTEMS))
    parser.add_argument("--repetitions", type=int, help="per workload (default 5; quick 3)")
    parser.add_argument("--duration", type=float, help="seconds per repetition (default 1.0; "
                        "quick 0.1)")
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--timeout", type=int, default=900, help="seconds per system at most")
    parser.add_argument("--out", default=str(ROOT / "build" / "peer_benchmarks.json"))
    parser.add_argument("--docs", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--no-docs", action="store_true", help="leave docs/benchmarks.md alone")
    parser.add_argument("--no-transfer", action="store_true")
    parser.add_argument("--peers-venv", default=str(ROOT / ".venv-peers"))
    parser.add_argument("--no-install", action="store_true",
                        help="use the peers' environment as it is")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: print the table and regenerate the docs from --out")
    args = parser.parse_args(argv)
    if args.report_only:
        with open(args.out) as f:
            doc = json.load(f)
        report(doc, args, pathlib.Path(args.peers_venv) / "bin" / "python")
        return 0
    if args.repetitions is None:
        args.repetitions = 3 if args.quick else 5
    if args.duration is None:
        args.duration = 0.1 if args.quick else 1.0
    systems = [s for s in args.systems.split(",") if s]
    unknown = [s for s in systems if s not in peer_report.SYSTEMS]
    if unknown:
        parser.error(f"unknown systems {unknown}; known: {', '.join(peer_report.SYSTEMS)}")

    runs: Dict[str, Any] = {}
    peer_python = None
    if PEERS & set(systems):
        peer_python = peers_python(pathlib.Path(args.peers_venv), not args.no_install)
    for system in systems:
        if system in CPP:
            runs[system] = run_cpp(system, args)
        elif system in PEERS:
            runs[system] = (run_python(system, peer_python, args, args.cpus) if peer_python else
                            {"system": system,
                             "errors": {"(start)": "could not install it from PyPI"}})
        else:
            runs[system] = run_python(system, sys.executable, args, args.cpus)
    transfer = None
    if not args.no_transfer and any(s.startswith("atoll") for s in systems):
        transfer = run_transfer(args)

    summary = peer_report.summarize(runs)
    doc = {"date": datetime.date.today().isoformat(), "mode": "quick" if args.quick else "full",
           "repetitions": args.repetitions, "duration": args.duration, "cpus": args.cpus,
           "machine": machine(), "runs": runs, "summary": summary,
           "ratios": peer_report.ratios(summary), "transfer": transfer,
           "json_name": os.path.relpath(args.out, ROOT)}
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)
    report(doc, args, peer_python)
    return 0


def report(doc: Dict[str, Any], args: argparse.Namespace, peer_python: Any) -> None:
    """The terminal table, and (unless --no-docs) docs/benchmarks.md's section and chart."""
    summary, runs = doc["summary"], doc["runs"]
    print(peer_report.table(summary, runs, markdown=False))
    for line in peer_report.transfer_lines(doc.get("transfer")) + peer_report.problems(runs):
        print(line)
    print(f"every repetition: {args.out}")
    if not args.no_docs:
        chart_path = pathlib.Path(args.docs).parent / "peer_benchmarks.png"
        chart = None
        peer_python = str(peer_python) if peer_python and os.path.exists(peer_python) else None
        for python in filter(None, [peer_python, sys.executable]):
            made = subprocess.run([python, str(HERE / "peer_report.py"), "--chart", args.out,
                                   str(chart_path)], capture_output=True)
            if made.returncode == 0:
                chart = chart_path.name
                break
        peer_report.update_docs(args.docs, peer_report.docs_section(doc, chart))
        print(f"updated {args.docs}" + (f" and {chart_path}" if chart else " (no chart)"))


if __name__ == "__main__":
    sys.exit(main())
