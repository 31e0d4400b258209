"""Plain aligned text for the results table and the ratio checks (no rich: not a dependency)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


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
    vs_echo: float | None = None  # rate / the echo's rate, in throughput tables


Sign = Literal[">=", "<=", "="]


@dataclass
class Aim:
    name: str
    value: float
    target: float
    sign: Sign  # ">=": met at or above the target, "<=": at or below, "=": equal as printed
    # the same ratio for the floor (River and a codec in a function, none of the platform),
    # measured in the same run: where the floor misses the aim too, no served function can meet it
    floor: float | None = None

    @property
    def met(self) -> bool:
        return _meets(self.value, self.target, self.sign)

    @property
    def above_floor(self) -> bool:
        """The floor itself misses the aim: it is out of reach of any served function."""
        return self.floor is not None and not _meets(self.floor, self.target, self.sign)


def _meets(value: float, target: float, sign: Sign) -> bool:
    if sign == ">=":
        return value >= target
    if sign == "<=":
        return value <= target
    # a count per request, printed with two decimals: 1.004 is 1.00, 1.01 is not 1
    return round(value, 2) == round(target, 2)


HEAD = (
    "case",
    "served by",
    "conc",
    "req|calls/s",
    "÷ echo",
    "p50 ms",
    "p99 ms",
    "err",
    "CPU (1 core=100%)",
)
TEXT_COLUMNS = {0, 1, 8}  # flush left; numbers flush right, so digits line up


def cells(row: Row) -> tuple[str, ...]:
    return (
        row.case,
        row.served,
        "-" if row.concurrency is None else str(row.concurrency),
        f"{row.rate:,.0f}",
        "" if row.vs_echo is None else f"{row.vs_echo:.2f}",
        f"{row.p50_ms:.3f}",
        f"{row.p99_ms:.3f}",
        "-" if row.errors is None else str(row.errors),
        row.cpu,
    )


def table(rows: list[Row]) -> str:
    lines = [HEAD, *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEAD))]

    def fmt(line: tuple[str, ...]) -> str:
        parts = [
            c.ljust(w) if i in TEXT_COLUMNS else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "-" * len(fmt(HEAD))
    return "\n".join([fmt(HEAD), rule, *(fmt(line) for line in lines[1:])])


def aims(checks: list[Aim]) -> str:
    width = max(len(a.name) for a in checks)
    lines = []
    for a in checks:
        mark = "met" if a.met else "aim missed"
        if a.floor is not None:
            mark += f" (floor {a.floor:.2f}{', the floor misses it too' if a.above_floor else ''})"
        aim = f"aim {a.sign} {a.target:g}".ljust(10)
        lines.append(f"{a.name.ljust(width)}  {a.value:7.2f}  {aim}  {mark}")
    return "\n".join(lines)
