"""Results as data, and their rendering: the Markdown of ``docs/benchmarks.md`` (also what is printed)."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.common import ROOT, median, paired_ratio, ratio


@dataclass(frozen=True)
class Row:
    """One figure against its baseline, and the target it is held to.

    ``limit`` applies to the ratio (``on_ratio``) or to the figure itself (e.g. "at most 32 MiB");
    ``higher_is_better`` turns the limit into a floor (throughput). No limit: reported, not judged.
    """

    figure_name: str
    figure: float
    baseline_name: str
    baseline: float
    unit: str
    limit: float | None = None
    on_ratio: bool = True
    higher_is_better: bool = False

    @property
    def ratio(self) -> float:
        return ratio(self.figure, self.baseline)

    @property
    def met(self) -> bool | None:
        if self.limit is None:
            return None
        value = self.ratio if self.on_ratio else self.figure
        return value >= self.limit if self.higher_is_better else value <= self.limit

    @property
    def target(self) -> str:
        if self.limit is None:
            return "none (reported)"
        sign = ">=" if self.higher_is_better else "<="
        return f"{sign} {self.limit:g}x" if self.on_ratio else f"{sign} {self.limit:g} {self.unit}"


def paired_rows(
    figure_name: str, figures: list[float], baseline_name: str, baselines: list[float], limit: float | None
) -> list[Row]:
    """Interleaved samples (seconds, round by round) as two rows: their medians in ms (reported), and the
    median of the rounds' ratios (judged against ``limit``, if any): the drift of a shared machine's speed
    cancels within a round, where the ratio of two medians keeps it."""
    samples = len(figures)
    return [
        Row(
            f"{figure_name} (median of {samples})",
            median(figures) * 1000,
            f"{baseline_name} (median of {samples})",
            median(baselines) * 1000,
            "ms",
        ),
        Row(
            f"{figure_name} / {baseline_name}, median of the {samples} rounds' ratios",
            paired_ratio(figures, baselines),
            "equal",
            1.0,
            "x",
            limit=limit,
        ),
    ]


@dataclass
class Section:
    title: str
    #: What was measured and how, in a few lines of Markdown.
    method: str
    rows: list[Row] = field(default_factory=list)
    #: Extra lines under the table (details, spreads, explanations of a miss).
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def met(self) -> bool:
        return all(row.met is not False for row in self.rows)


@dataclass(frozen=True)
class Machine:
    cores: int
    usable_cores: int
    cpu: str
    python: str
    platform: str
    load_average: tuple[float, float, float]

    @classmethod
    def probe(cls) -> Machine:
        cpu = "unknown"
        cpuinfo = Path("/proc/cpuinfo")
        if cpuinfo.exists():
            for line in cpuinfo.read_text().splitlines():
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return cls(
            cores=os.cpu_count() or 1,
            usable_cores=usable,
            cpu=cpu,
            python=f"{platform.python_implementation()} {platform.python_version()}",
            platform=platform.platform(terse=True),
            load_average=os.getloadavg(),
        )


def method_of(doc: str | None) -> str:
    """A benchmark module's docstring without its first paragraph (the section's title says it)."""
    paragraphs = (doc or "").strip().split("\n\n", 1)
    return paragraphs[1].strip() if len(paragraphs) > 1 else ""


def format_value(value: float, unit: str) -> str:
    if math.isinf(value) or math.isnan(value):
        return str(value)
    digits = 0 if unit == "req/s" or abs(value) >= 100 else 2
    return f"{value:,.{digits}f} {unit}"


def format_ratio(value: float) -> str:
    return f"{value:.2f}x" if math.isfinite(value) else str(value)


def render_table(rows: list[Row]) -> list[str]:
    lines = [
        "| figure | value | baseline | value | ratio | target | met |",
        "|---|---:|---|---:|---:|---|---|",
    ]
    for row in rows:
        met = {True: "yes", False: "**NO**", None: "-"}[row.met]
        lines.append(
            f"| {row.figure_name} | {format_value(row.figure, row.unit)} | {row.baseline_name} "
            f"| {format_value(row.baseline, row.unit)} | {format_ratio(row.ratio)} | {row.target} | {met} |"
        )
    return lines


def git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True, text=True, check=False
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{rev}{' (src/ has uncommitted changes)' if dirty.stdout.strip() else ''}"


def render(
    sections: list[Section],
    *,
    command: str,
    machine: Machine,
    started: datetime,
    seconds: float,
    src: str,
    revision: str,
    load_after: tuple[float, float, float] | None = None,
    findings: str = "",
    quick: bool = False,
) -> str:
    """The whole report (``docs/benchmarks.md``)."""
    met = sum(1 for s in sections for r in s.rows if r.met is True)
    judged = sum(1 for s in sections for r in s.rows if r.met is not None)
    load = " / ".join(f"{v:.2f}" for v in machine.load_average)
    load_end = f"; at the end {' / '.join(f'{v:.2f}' for v in load_after)}" if load_after else ""
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated file: do not edit by hand. Re-run `make bench` to update it. -->",
        f"Generated by `{command}` (`make bench`; `python -m bench --help` lists the options) on "
        f"{started.astimezone(UTC).strftime('%Y-%m-%d %H:%M UTC')}, in {seconds:.0f} s.",
        "",
        f"- Machine: {machine.cores} cores ({machine.usable_cores} usable), {machine.cpu}; {machine.platform}",
        f"- Python: {machine.python}",
        f"- Load average (1/5/15 min) at the start: {load}{load_end}. The machine may be shared: absolute "
        "numbers move with its load; each figure is a ratio against a baseline measured in the same run, "
        "interleaved with it, which is what the targets judge.",
        f"- Code under test: `{src}` (revision {revision})",
        f"- Targets met: {met} of {judged}.",
        "",
    ]
    if quick:
        lines[4:4] = ["", "**Quick run** (`--quick`): few samples and small files; a smoke test, not the record.", ""]
    for section in sections:
        lines += [f"## {section.title}", "", section.method.strip(), "", *render_table(section.rows)]
        if section.notes:
            lines += ["", *section.notes]
        lines += ["", f"_({section.seconds:.0f} s)_", ""]
    if findings.strip():
        lines += [findings.strip(), ""]
    return "\n".join(lines)
