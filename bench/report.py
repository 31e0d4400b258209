"""Plain aligned text for the results table and the ratio checks (no rich: not a dependency)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Row:
    case: str
    served: str
    concurrency: int | None  # None: an in-process loop, no HTTP
    rate: float  # req/s, or calls/s in-process
    p50_ms: float
    p99_ms: float
    errors: int | None = None
    cpu: str = ""
    client_cpu: float | None = None


@dataclass
class Aim:
    name: str
    value: float
    target: float
    at_least: bool  # True: value >= target is met; False: value <= target is met

    @property
    def met(self) -> bool:
        return self.value >= self.target if self.at_least else self.value <= self.target


HEAD = ("case", "served by", "conc", "req|calls/s", "p50 ms", "p99 ms", "err", "CPU (1 core=100%)")


def cells(row: Row) -> tuple[str, ...]:
    return (
        row.case,
        row.served,
        "-" if row.concurrency is None else str(row.concurrency),
        f"{row.rate:,.0f}",
        f"{row.p50_ms:.3f}",
        f"{row.p99_ms:.3f}",
        "-" if row.errors is None else str(row.errors),
        row.cpu,
    )


def table(rows: list[Row]) -> str:
    lines = [HEAD, *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEAD))]
    # Text columns flush left, numbers flush right, so digits line up.
    text_cols = {0, 1, 7}

    def fmt(line: tuple[str, ...]) -> str:
        parts = [
            c.ljust(w) if i in text_cols else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "-" * len(fmt(HEAD))
    return "\n".join([fmt(HEAD), rule, *(fmt(line) for line in lines[1:])])


def aims(checks: list[Aim]) -> str:
    width = max(len(a.name) for a in checks)
    lines = []
    for a in checks:
        sign = ">=" if a.at_least else "<="
        mark = "met" if a.met else "MISSED"
        lines.append(f"{a.name.ljust(width)}  {a.value:6.2f}  aim {sign} {a.target:.1f}  {mark}")
    return "\n".join(lines)
