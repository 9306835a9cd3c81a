"""`make bench` prints one table at the end of the session: every row of issue 18 with its figure, its
baseline from the same run, their ratio, the goal and whether it is met."""

from __future__ import annotations

import os

from tests.bench.harness import RESULTS, SCALE, table


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest's hook
    if not RESULTS:
        return
    tr = terminalreporter
    tr.write_sep("=", "benchmarks (issue 18)")
    tr.write_line(table())
    tr.write_line(
        f"{os.cpu_count()} cores; BENCH_SCALE={SCALE:g}; each figure the median of its runs; "
        "ratios: figure / baseline (sweep rows: sweep time / UPDATE time; 2 workers: 1-worker time / 2-worker time)"
    )
