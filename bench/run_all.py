"""Run every benchmark under bench/ and print one table of their figures: value, goal, the
baseline measured in the same run, the ratio, pass or fail (see bench/report.py).

    .venv/bin/python bench/run_all.py                   # every benchmark, full sizes (about 25 minutes)
    .venv/bin/python bench/run_all.py --quick           # each with its small sizes (about 10 minutes)
    .venv/bin/python bench/run_all.py --only faces,gallery --markdown
    .venv/bin/python bench/run_all.py --write-readme    # also writes the table into bench/README.md

Each benchmark runs as a subprocess, one after the other (they would measure each other
otherwise), with BENCH_RESULTS naming the file it records its figures in; its own output
goes through as it runs. A benchmark that exits with an error, or outlives --timeout, gets
a failed row and the next one runs. The exit code is 1 when any goal failed or any
benchmark did not run to the end. See bench/README.md, "Latest table".
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402

# Every benchmark, in the order they run, with the options of a quick check: each one's own
# small sizes, as its section of bench/README.md gives them.
BENCHMARKS: dict[str, list[str]] = {
    "subjects_bench": ["--quick"],
    "faces_bench": ["--quick"],
    "recognize_bench": ["--faces", "2000", "--requests", "5"],
    "gallery_bench": ["--faces", "2000", "--rounds", "1"],
    "events_bench": ["--rounds", "1", "--batches", "10", "--singles", "300", "--points", "100x20", "--seconds", "3"],
    "login_bench": [],
}

README = BENCH / "README.md"
TABLE_START = "<!-- latest table: written by bench/run_all.py --write-readme -->"
TABLE_END = "<!-- end of latest table -->"


# --- the machine --------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def code_version() -> str:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return found.stdout.strip() + (" with local changes" if dirty.stdout.strip() else "")


def load_text(load: tuple[float, float, float]) -> str:
    return " / ".join(f"{x:.2f}" for x in load)


def machine_lines(started: datetime, load_start, load_end, command: str) -> list[str]:
    memory = memory_gib()
    return [
        f"Run of {started:%Y-%m-%d %H:%M} UTC, `{command}`, code at {code_version()}.",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, {f'{memory:.1f} GiB' if memory else 'unknown'} RAM, "
        f"Python {platform.python_version()}; load average (1 / 5 / 15 min) {load_text(load_start)} at the start, "
        f"{load_text(load_end)} at the end.",
    ]


# --- running ------------------------------------------------------------------------------------


def stop_group(process: subprocess.Popen) -> None:
    """End the benchmark and what it started (uvicorn, dashboards): its own process group."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_one(name: str, args: list[str], results: Path, timeout: float) -> report.BenchRun:
    print(f"\n=== {name} {' '.join(args)}".rstrip(), flush=True)
    env = {**os.environ, report.RESULTS_VARIABLE: str(results)}
    started = time.monotonic()
    # A session of its own, so that a time-out can stop its servers and children with it.
    process = subprocess.Popen([sys.executable, str(BENCH / f"{name}.py"), *args], cwd=ROOT, env=env,
                               start_new_session=True)  # fmt: skip
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(process)
        code = None
    except KeyboardInterrupt:
        stop_group(process)
        raise
    seconds = time.monotonic() - started
    print(f"=== {name}: {'time limit' if code is None else f'exit {code}'} after {seconds:.0f} s", flush=True)
    return report.BenchRun(name=name, exit_code=code, seconds=seconds, figures=report.load(results))


def chosen(only: str | None) -> list[str]:
    if not only:
        return list(BENCHMARKS)
    names = []
    for part in only.split(","):
        name = part.strip()
        name = name if name.endswith("_bench") else f"{name}_bench"
        if name not in BENCHMARKS:
            raise SystemExit(f"no benchmark {part.strip()!r}; they are: {', '.join(BENCHMARKS)}")
        names.append(name)
    return names


# --- bench/README.md ------------------------------------------------------------------------------


def replace_table(readme: str, section: str) -> str:
    """`readme` with what stands between the latest table's two markers replaced by `section`."""
    pattern = re.compile(re.escape(TABLE_START) + r".*?" + re.escape(TABLE_END), re.S)
    if not pattern.search(readme):
        raise SystemExit(f"{README} has no latest-table markers ({TABLE_START} … {TABLE_END})")
    return pattern.sub(lambda _: f"{TABLE_START}\n{section.strip()}\n{TABLE_END}", readme, count=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="pass each benchmark its own small-size options")
    parser.add_argument("--only", metavar="NAMES", help="comma-separated, e.g. faces,gallery (default: all)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--write-readme", action="store_true", help="write the table into bench/README.md")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per benchmark (default: %(default)s)")
    parser.add_argument("--results", type=Path, help="also keep every figure recorded, as JSON lines, in this file")
    args = parser.parse_args()
    names = chosen(args.only)
    command = " ".join(["bench/run_all.py", *sys.argv[1:]])

    started = datetime.now(UTC)
    load_start = os.getloadavg()
    runs = []
    with tempfile.TemporaryDirectory(prefix="kangaroo-bench-") as scratch:
        for name in names:
            results = Path(scratch) / f"{name}.jsonl"
            runs.append(run_one(name, BENCHMARKS[name] if args.quick else [], results, args.timeout))
            if args.results:
                with args.results.open("a", encoding="utf-8") as out:
                    out.writelines(figure.as_json() + "\n" for figure in runs[-1].figures)
    head = machine_lines(started, load_start, os.getloadavg(), command)
    rows = report.table_rows(runs)
    markdown = "\n\n".join(["\n".join(head), report.render_markdown(rows), report.summary(runs)])

    print()
    if args.markdown:
        print(markdown)
    else:
        print("\n".join([*head, "", report.render_text(rows), "", report.summary(runs)]))
    if args.write_readme:
        README.write_text(replace_table(README.read_text(encoding="utf-8"), markdown), encoding="utf-8")
        print(f"\nwritten into {README.relative_to(ROOT)}")
    return 0 if report.all_passed(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
