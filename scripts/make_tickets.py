"""Write data/tickets.csv: a small, deterministic support-ticket data set (title, description,
priority) for the ML service example (seed 003: "Server down" → critical).

Run: `python -m scripts.make_tickets` (the same bytes every time: a seeded generator).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "data" / "tickets.csv"
ROWS_PER_PRIORITY = 100
SEED = 42

SYSTEMS = ["billing", "checkout", "search", "auth", "reporting", "mobile app", "API", "portal"]
CUSTOMERS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka"]

# title templates, description templates per priority ({s} a system, {c} a customer)
TEMPLATES: dict[str, tuple[list[str], list[str]]] = {
    "critical": (
        [
            "Server down",
            "Production outage",
            "{s} is down",
            "Database unreachable",
            "Site not loading for anyone",
            "Data loss in {s}",
            "Security breach suspected",
            "Payments failing everywhere",
        ],
        [
            "Production server is not responding",
            "The production {s} is down and no customer can use it",
            "All users get 503 errors, production is not responding since this morning",
            "Outage: the {s} cluster crashed and does not come back",
            "Customers cannot log in at all, the whole production is unavailable",
            "Every request to production times out, revenue is lost every minute",
            "Urgent: the database server is down and production is not responding",
        ],
    ),
    "high": (
        [
            "Errors in {s} for some users",
            "{s} very slow",
            "Intermittent failures in {s}",
            "{c} cannot export invoices",
            "Login fails for some accounts",
            "Emails delayed by hours",
        ],
        [
            "Some users see errors in {s} several times an hour",
            "{c} reports that {s} takes over a minute to answer",
            "Intermittent 500 errors in {s}, a workaround exists but is painful",
            "A subset of accounts at {c} cannot log in since the last release",
            "Notification emails from {s} arrive hours late",
        ],
    ),
    "medium": (
        [
            "Wrong totals in {s} report",
            "{s} filter ignores dates",
            "Export misses a column",
            "Chart does not refresh in {s}",
            "Pagination broken in {s}",
        ],
        [
            "The {s} report shows wrong totals for last month",
            "Filtering by date in {s} returns every row",
            "The CSV export from {s} lacks the customer column",
            "{c} says the chart in {s} only refreshes after a reload",
            "Page two of the {s} list repeats page one",
        ],
    ),
    "low": (
        [
            "Typo on {s} page",
            "Feature request: dark mode",
            "Button colour in {s}",
            "Update help link",
            "Question about {s} settings",
            "Nice to have: keyboard shortcuts",
        ],
        [
            "There is a small typo in the {s} settings page",
            "{c} would like a dark mode some day",
            "The save button in {s} could use the brand colour",
            "The help link in the footer points to the old documentation",
            "How do I change the default language in {s}? No rush",
            "Cosmetic: the icon in {s} is slightly blurry",
        ],
    ),
}


def rows(rng: random.Random) -> list[dict[str, str]]:
    out = []
    for priority, (titles, descriptions) in TEMPLATES.items():
        for _ in range(ROWS_PER_PRIORITY):
            fill = {"s": rng.choice(SYSTEMS), "c": rng.choice(CUSTOMERS)}
            out.append(
                {
                    "ticket_title": rng.choice(titles).format(**fill),
                    "ticket_description": rng.choice(descriptions).format(**fill),
                    "priority": priority,
                }
            )
    rng.shuffle(out)
    return out


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["ticket_title", "ticket_description", "priority"])
        writer.writeheader()
        writer.writerows(rows(random.Random(SEED)))
    print(f"wrote {OUT} ({ROWS_PER_PRIORITY * len(TEMPLATES)} tickets)")


if __name__ == "__main__":
    main()
