"""The one table of `make bench` (bench/report.py, bench/run_all.py): how each figure is
judged against its goal and its same-run baseline, and the rows of benchmarks that failed.
No benchmark runs here."""

import json
import math

import pytest

from bench import report, run_all
from bench.report import ABSOLUTE, HIGHER, LOWER, BenchRun, Figure


def figure(**fields) -> Figure:
    defaults = {"bench": "events_bench", "name": "batched ingest", "value": 7_000.0, "unit": "events/s"}
    return Figure(**{**defaults, **fields})


def ingest(value: float, copy: float | None) -> Figure:
    return figure(value=value, better=HIGHER, goal=0.35, baseline="PostgreSQL COPY", baseline_value=copy)


def export(seconds: float, copy: float | None) -> Figure:
    return figure(name="admin export CSV 100k", value=seconds, unit="s", better=LOWER, goal=6,
                  baseline="PostgreSQL COPY", baseline_value=copy)  # fmt: skip


def test_it_takes_the_ratio_to_the_same_runs_baseline():
    assert ingest(7_000, 20_000).ratio == pytest.approx(0.35)
    assert export(1.5, 0.25).ratio == pytest.approx(6.0)


def test_a_higher_is_better_figure_passes_at_or_above_its_goal():
    assert ingest(7_100, 20_000).passed is True
    assert ingest(7_000, 20_000).passed is True  # exactly on the goal
    assert ingest(6_900, 20_000).passed is False


def test_a_lower_is_better_figure_passes_at_or_below_its_goal():
    assert export(1.40, 0.25).passed is True
    assert export(1.50, 0.25).passed is True
    assert export(1.60, 0.25).passed is False


def test_the_same_ratio_passes_or_fails_by_direction():
    higher = figure(value=2.0, better=HIGHER, goal=1.5, baseline="b", baseline_value=1.0)
    lower = figure(value=2.0, better=LOWER, goal=1.5, baseline="b", baseline_value=1.0)
    assert (higher.passed, lower.passed) == (True, False)


def test_an_absolute_goal_is_on_the_value_whatever_the_baseline():
    p99 = figure(name="live p99", value=45.0, unit="ms", better=LOWER, goal=50, goal_on=ABSOLUTE,
                 baseline="relay p99", baseline_value=1.0)  # fmt: skip
    assert p99.ratio == 45.0 and p99.passed is True
    assert report.goal_text(p99) == "≤ 50 ms (absolute)"
    slow = figure(name="live p99", value=55.0, unit="ms", better=LOWER, goal=50, goal_on=ABSOLUTE)
    assert slow.ratio is None and slow.passed is False


@pytest.mark.parametrize("missing", [None, 0.0, math.nan])
def test_a_ratio_goal_without_its_baseline_is_neither_pass_nor_fail(missing):
    lost = ingest(7_000, missing)
    assert lost.ratio is None
    assert lost.passed is None
    row = report.figure_row("events_bench", lost)
    if missing is None:
        assert row[4] == "PostgreSQL COPY: not measured"
    assert (row[5], row[6]) == ("—", "no baseline")
    run = BenchRun("events_bench", 0, 60.0, [lost])
    assert report.counts([run])["no baseline"] == 1
    assert report.all_passed([run])


def test_a_figure_without_a_goal_is_shown_but_not_judged():
    info = figure(value=5_783, better=HIGHER, baseline="DRF ModelViewSet", baseline_value=198)
    assert info.passed is None
    assert report.figure_row("events_bench", info)[3:] == (
        "—",
        "DRF ModelViewSet 198 events/s",
        "29.2",
        "—",
        "",
    )
    assert report.all_passed([BenchRun("events_bench", 0, 1.0, [info])])


def test_numbers_keep_their_digits_at_every_size():
    assert [report.number(v) for v in (0.0, 0.042, 0.35, 24.0, 56.54, 1893.7)] == [
        "0",
        "0.042",
        "0.35",
        "24",
        "56.5",
        "1,894",
    ]


def test_a_ratio_goal_must_name_its_baseline_and_a_direction():
    with pytest.raises(ValueError, match="baseline"):
        figure(better=HIGHER, goal=0.35)
    with pytest.raises(ValueError, match="better"):
        figure(better="faster")
    with pytest.raises(ValueError, match="goal_on"):
        figure(better=HIGHER, goal=1, goal_on="relative", baseline="b")


def test_a_failed_benchmark_gets_a_failing_row_after_what_it_recorded():
    runs = [
        BenchRun("subjects_bench", 0, 120.0, [export(1.4, 0.25)]),
        BenchRun("events_bench", 2, 42.4, [ingest(8_000, 20_000), ingest(5_000, 20_000)]),
        BenchRun("login_bench", 0, 80.0, []),
        BenchRun("gallery_bench", None, 3600.0, []),
    ]
    rows = report.table_rows(runs)
    assert [(row[0], row[6]) for row in rows] == [
        ("subjects_bench", "pass"),
        ("events_bench", "pass"),
        ("", "FAIL"),  # the benchmark's name on its first row only
        ("", "FAIL"),
        ("login_bench", "FAIL"),
        ("gallery_bench", "FAIL"),
    ]
    assert rows[3][1] == "benchmark exited with code 2 after 42 s"
    assert rows[3][7] == "2 figures recorded before it ended"
    assert rows[4][1] == "no figure recorded"
    assert rows[5][1] == "benchmark stopped after 3600 s (time limit)"
    tally = report.counts(runs)
    assert (tally["pass"], tally["fail"], tally["benchmarks failed"]) == (2, 1, 3)
    assert not report.all_passed(runs)
    assert report.summary(runs).endswith("benchmarks: 1 of 4 ran to the end")


def test_one_failed_goal_fails_the_run():
    assert report.all_passed([BenchRun("subjects_bench", 0, 1.0, [export(1.4, 0.25)])])
    assert not report.all_passed([BenchRun("subjects_bench", 0, 1.0, [export(1.4, 0.25), export(2.0, 0.25)])])


def test_the_plain_table_is_aligned_and_the_markdown_one_has_every_cell():
    rows = report.table_rows([BenchRun("events_bench", 1, 5.0, [ingest(8_000, 20_000)])])
    lines = report.render_text(rows).splitlines()
    header, rule, *body = lines
    assert set(rule) == {"-"} and len(rule) == len(header)
    for column in ("figure", "value", "goal", "baseline", "ratio", "result"):
        at = report.HEADERS.index(column)
        starts = {line.index(row[at]) for line, row in zip(body, rows, strict=True) if row[at]}
        assert starts == {header.index(column)}, column
    markdown = report.render_markdown(rows).splitlines()
    assert len(markdown) == 2 + len(rows)
    assert all(line.count(" | ") == len(report.HEADERS) - 1 for line in markdown[2:])


def test_record_appends_one_json_line_per_figure_when_asked(tmp_path, monkeypatch):
    results = tmp_path / "results.jsonl"
    monkeypatch.delenv(report.RESULTS_VARIABLE, raising=False)
    report.record("quiet", 1.0, "s", better=LOWER)
    assert not results.exists()

    monkeypatch.setenv(report.RESULTS_VARIABLE, str(results))
    report.record("batched ingest", 7_000, "events/s", better=HIGHER, goal=0.35, baseline="COPY", baseline_value=2e4)
    report.record("live p99", 55, "ms", better=LOWER, goal=50, goal_on=ABSOLUTE)
    lines = results.read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["name"] == "batched ingest"
    assert first["ratio"] == pytest.approx(0.35) and first["passed"] is True
    assert json.loads(lines[1])["passed"] is False
    loaded = report.load(results)
    assert [(f.name, f.passed) for f in loaded] == [("batched ingest", True), ("live p99", False)]


def test_the_readme_keeps_one_latest_table_between_its_markers():
    readme = f"# Benchmarks\n\n## Latest table\n\n{run_all.TABLE_START}\nold\n{run_all.TABLE_END}\n\n## Subjects\n"
    updated = run_all.replace_table(readme, "| new |\n")
    assert updated == readme.replace("\nold\n", "\n| new |\n")
    assert run_all.replace_table(updated, "newer") == readme.replace("\nold\n", "\nnewer\n")
    with pytest.raises(SystemExit):
        run_all.replace_table("# Benchmarks\n", "table")
    assert run_all.TABLE_START in (run_all.README).read_text()


def test_quick_options_exist_for_every_benchmark_the_runner_knows():
    assert set(run_all.BENCHMARKS) == {path.stem for path in run_all.BENCH.glob("*_bench.py")}
    assert run_all.chosen("faces,gallery_bench") == ["faces_bench", "gallery_bench"]
    with pytest.raises(SystemExit):
        run_all.chosen("nothing")
