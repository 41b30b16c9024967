"""Every benchmark's figures in one table.

A benchmark calls `record()` once per figure it measures: its value, the baseline measured
in the same run and the goal. The machines the benchmarks run on are shared and noisy, so
most goals are ratios to that baseline (both move with the load); a goal on the value itself
is marked "absolute". With BENCH_RESULTS set (bench/run_all.py sets it), each figure is
appended to that file as one JSON line; without it `record()` writes nothing, and the
benchmark's own printed output is all there is, as before.

`table_rows()` and `render_text()` / `render_markdown()` turn the figures of a run of every
benchmark (`BenchRun`) into the table `make bench` prints, with a row for each benchmark
that exited with an error.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

RESULTS_VARIABLE = "BENCH_RESULTS"
HIGHER, LOWER = "higher", "lower"
RATIO, ABSOLUTE = "ratio", "absolute"
HEADERS = ("benchmark", "figure", "value", "goal", "baseline", "ratio", "result", "note")


@dataclass(frozen=True)
class Figure:
    """One measured figure. `goal` limits `value / baseline_value` when `goal_on` is
    "ratio", `value` itself when it is "absolute"; `better` says which side of it passes."""

    bench: str
    name: str
    value: float
    unit: str
    better: str
    goal: float | None = None
    goal_on: str = RATIO
    baseline: str | None = None
    baseline_value: float | None = None
    note: str = ""

    def __post_init__(self):
        if self.better not in (HIGHER, LOWER):
            raise ValueError(f"better must be {HIGHER!r} or {LOWER!r}, not {self.better!r}")
        if self.goal_on not in (RATIO, ABSOLUTE):
            raise ValueError(f"goal_on must be {RATIO!r} or {ABSOLUTE!r}, not {self.goal_on!r}")
        if self.goal is not None and self.goal_on == RATIO and not self.baseline:
            raise ValueError(f"{self.name}: a goal on the ratio needs the baseline's name")

    @property
    def ratio(self) -> float | None:
        """value / baseline, or None when the baseline is missing (not measured, zero, or
        not a number: a percentile of no samples)."""
        if self.baseline_value is None or not math.isfinite(self.baseline_value) or self.baseline_value == 0:
            return None
        return self.value / self.baseline_value

    @property
    def passed(self) -> bool | None:
        """None when there is no goal, or when the goal is on the ratio and the baseline is
        missing: such a figure is neither a pass nor a fail, and the table says which."""
        if self.goal is None:
            return None
        measured = self.value if self.goal_on == ABSOLUTE else self.ratio
        if measured is None:
            return None
        return measured >= self.goal if self.better == HIGHER else measured <= self.goal

    def as_json(self) -> str:
        return json.dumps({**asdict(self), "ratio": self.ratio, "passed": self.passed}, ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> Figure:
        data = json.loads(line)
        data.pop("ratio", None)  # derived: recomputed from the rest
        data.pop("passed", None)
        return cls(**data)


def record(
    name: str,
    value: float,
    unit: str,
    *,
    better: str,
    goal: float | None = None,
    goal_on: str = RATIO,
    baseline: str | None = None,
    baseline_value: float | None = None,
    note: str = "",
) -> Figure:
    """Record one figure of the running benchmark (named after its script). A baseline that
    was not measured, or fell over, is passed as `baseline_value=None`."""
    figure = Figure(
        bench=Path(sys.argv[0]).stem,
        name=name,
        value=float(value),
        unit=unit,
        better=better,
        goal=goal,
        goal_on=goal_on,
        baseline=baseline,
        baseline_value=None if baseline_value is None else float(baseline_value),
        note=note,
    )
    path = os.environ.get(RESULTS_VARIABLE)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(figure.as_json() + "\n")
    return figure


def load(path: Path) -> list[Figure]:
    if not path.exists():
        return []
    return [Figure.from_json(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass
class BenchRun:
    """One benchmark's run: its exit code (None when it was stopped at the time limit)
    and the figures it recorded before it ended."""

    name: str
    exit_code: int | None
    seconds: float
    figures: list[Figure] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.exit_code != 0


# --- the table ----------------------------------------------------------------------------------


def number(value: float) -> str:
    size = abs(value)
    if size >= 1000 or float(value).is_integer():
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 0.1 or size == 0:
        return f"{value:.2f}"
    return f"{value:.2g}"


def goal_text(figure: Figure) -> str:
    if figure.goal is None:
        return "—"
    sign = "≥" if figure.better == HIGHER else "≤"
    if figure.goal_on == RATIO:
        return f"{sign} {figure.goal:g} × baseline"
    return f"{sign} {figure.goal:g} {figure.unit} (absolute)"


def result_text(figure: Figure) -> str:
    if figure.goal is None:
        return "—"
    passed = figure.passed
    if passed is None:
        return "no baseline"
    return "pass" if passed else "FAIL"


def figure_row(bench: str, figure: Figure) -> tuple[str, ...]:
    if figure.baseline is None:
        baseline = "—"
    elif figure.baseline_value is None:
        baseline = f"{figure.baseline}: not measured"
    else:
        baseline = f"{figure.baseline} {number(figure.baseline_value)} {figure.unit}"
    ratio = figure.ratio
    return (
        bench,
        figure.name,
        f"{number(figure.value)} {figure.unit}",
        goal_text(figure),
        baseline,
        "—" if ratio is None else number(ratio),
        result_text(figure),
        figure.note,
    )


def failure_row(run: BenchRun) -> tuple[str, ...]:
    if run.exit_code is None:
        what = f"benchmark stopped after {run.seconds:.0f} s (time limit)"
    else:
        what = f"benchmark exited with code {run.exit_code} after {run.seconds:.0f} s"
    recorded = len(run.figures)
    note = "no figure recorded"
    if recorded:
        note = f"{recorded} figure{'s' if recorded > 1 else ''} recorded before it ended"
    return (run.name, what, "", "", "", "", "FAIL", note)


def table_rows(runs: list[BenchRun]) -> list[tuple[str, ...]]:
    """One row per figure, in the order recorded, then a failure row for each benchmark
    that did not exit 0 (or exited 0 without recording a figure). The benchmark's name is
    written on its first row only."""
    rows = []
    for run in runs:
        own = [figure_row(run.name, figure) for figure in run.figures]
        if run.failed:
            own.append(failure_row(run))
        elif not own:
            own.append((run.name, "no figure recorded", "", "", "", "", "FAIL", "exit code 0"))
        rows.extend(own[:1] + [("", *row[1:]) for row in own[1:]])
    return rows


def counts(runs: list[BenchRun]) -> dict[str, int]:
    figures = [figure for run in runs for figure in run.figures]
    return {
        "pass": sum(1 for f in figures if f.passed is True),
        "fail": sum(1 for f in figures if f.passed is False),
        "no baseline": sum(1 for f in figures if f.goal is not None and f.passed is None),
        "no goal": sum(1 for f in figures if f.goal is None),
        "benchmarks failed": sum(1 for run in runs if run.failed or not run.figures),
        "benchmarks": len(runs),
    }


def all_passed(runs: list[BenchRun]) -> bool:
    tally = counts(runs)
    return tally["fail"] == 0 and tally["benchmarks failed"] == 0


def summary(runs: list[BenchRun]) -> str:
    tally = counts(runs)
    return (
        f"goals: {tally['pass']} pass, {tally['fail']} fail, {tally['no baseline']} without their baseline; "
        f"{tally['no goal']} figures without a goal; "
        f"benchmarks: {tally['benchmarks'] - tally['benchmarks failed']} of {tally['benchmarks']} ran to the end"
    )


def render_text(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in [HEADERS, *rows]) for i in range(len(HEADERS))]

    def line(cells) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    header = line(HEADERS)
    return "\n".join([header, "-" * len(header), *(line(row) for row in rows)])


def render_markdown(rows: list[tuple[str, ...]]) -> str:
    def line(cells) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(HEADERS), "|" + "---|" * len(HEADERS), *(line(row) for row in rows)])
