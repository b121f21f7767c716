"""The peer comparison harness (benchmarks/peer_benchmarks.py): its report logic on made-up
figures, and a quick run of atoll's own systems end to end (the peers are not installed here)."""

import json
import subprocess
import sys

from conftest import CLI, ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import peer_report  # noqa: E402


def made_up_runs():
    return {
        "atoll-cluster": {"version": "0.1.0", "results": {
            "single_client_tasks_async": [40000.0, 45000.0, 50000.0],
            "single_client_put_gigabytes": [16.0, 17.0]},
            "skipped": {}, "errors": {}},
        "ray": {"version": "2.60.0", "results": {
            "single_client_tasks_async": [9000.0, 10000.0, 11000.0]},
            "skipped": {}, "errors": {"single_client_put_gigabytes": "MemoryError: boom"}},
        "dask": {"system": "dask", "errors": {"(start)": "could not install it from PyPI"}},
    }


def test_medians_ratios_and_the_table_say_what_each_system_did():
    runs = made_up_runs()
    summary = peer_report.summarize(runs)
    tasks = summary["atoll-cluster"]["single_client_tasks_async"]
    assert (tasks["median"], tasks["min"], tasks["max"], tasks["n"]) == (45000.0, 40000.0,
                                                                         50000.0, 3)
    ratios = peer_report.ratios(summary)
    assert ratios["atoll-cluster/ray"] == {"single_client_tasks_async": 4.5}
    text = peer_report.table(summary, runs, markdown=False)
    row = next(line for line in text.splitlines() if line.startswith("single_client_tasks_async"))
    assert "45,000" in row and "10,000" in row and "4.50x" in row and "failed" in row
    gb = next(line for line in text.splitlines() if line.startswith("single_client_put_gigabytes"))
    assert "17.0" in gb or "16.5" in gb
    assert "failed" in gb  # Ray's error, and Dask that never started
    assert any("MemoryError: boom" in p for p in peer_report.problems(runs))


def test_the_docs_section_is_replaced_between_its_markers(tmp_path):
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nhand-written text\n")
    runs = made_up_runs()
    doc = {"date": "2026-11-22", "mode": "quick", "repetitions": 3, "duration": 0.1, "cpus": 2,
           "machine": {"cpu_model": "Test CPU", "cores": 2, "memory_gib": 24, "os": "Linux",
                       "python": "3.11"},
           "runs": runs, "summary": peer_report.summarize(runs), "transfer": None,
           "json_name": "build/peer_benchmarks.json"}
    peer_report.update_docs(str(docs), peer_report.docs_section(doc, None))
    first = docs.read_text()
    assert "hand-written text" in first and "Test CPU" in first and "Ray 2.60.0" in first
    doc["machine"]["cpu_model"] = "Other CPU"
    peer_report.update_docs(str(docs), peer_report.docs_section(doc, "chart.png"))
    second = docs.read_text()
    assert "Other CPU" in second and "Test CPU" not in second and "chart.png" in second
    assert second.count(peer_report.BEGIN) == 1 and "hand-written text" in second


def test_a_quick_run_of_atolls_systems_writes_the_json_table_and_docs(tmp_path):
    out, docs = tmp_path / "peers.json", tmp_path / "benchmarks.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "peer_benchmarks.py"), "--quick",
         "--systems", "atoll,atoll-cluster", "--repetitions", "1", "--duration", "0.02",
         "--no-transfer", "--out", str(out), "--docs", str(docs)],
        capture_output=True, text=True, timeout=300, env={**__import__("os").environ,
                                                          "ATOLL_CLI": CLI})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    for system in ("atoll", "atoll-cluster"):
        run = result["runs"][system]
        assert not run["errors"], run["errors"]
        assert set(run["results"]) == set(peer_report.WORKLOADS)
        assert all(len(r) == 1 and r[0] > 0 for r in run["results"].values())
    assert result["machine"]["cores"] >= 1
    assert "single_client_tasks_async" in proc.stdout
    assert peer_report.BEGIN in docs.read_text()
