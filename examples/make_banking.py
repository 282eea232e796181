"""Writes examples/banking.csv: a made-up bank marketing table in the shape
of the dataset Amazon ML's tutorial used (did a customer subscribe to a
term deposit after a campaign call?), so a first run needs no download.

The outcome depends on the columns the way such data does (call duration,
a previous success, the month, age and balance), with noise, so a model has
something real to learn and a cut-off to choose. Run it to write the file
again: `python examples/make_banking.py`.
"""
from __future__ import annotations

import csv
import math
import random
from pathlib import Path

ROWS = 4000
JOBS = ["admin.", "blue-collar", "entrepreneur", "housemaid", "management", "retired", "self-employed",
        "services", "student", "technician", "unemployed"]
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]


def rows(rng: random.Random):
    for _ in range(ROWS):
        job = rng.choice(JOBS)
        age = max(18, min(95, int(rng.gauss(60 if job == "retired" else 22 if job == "student" else 40, 9))))
        marital = rng.choices(["married", "single", "divorced"], [0.6, 0.28, 0.12])[0]
        education = rng.choices(["primary", "secondary", "tertiary"], [0.15, 0.5, 0.35])[0]
        balance = round(rng.lognormvariate(6.5, 1.2) - 300, 2)
        housing = rng.random() < 0.55
        loan = rng.random() < 0.16
        month = rng.choices(MONTHS, [3, 4, 6, 7, 30, 12, 15, 13, 3, 4, 8, 1])[0]
        duration = int(rng.expovariate(1 / 260)) + 5
        campaign = 1 + int(rng.expovariate(0.5))
        previous = int(rng.expovariate(2.5)) if rng.random() < 0.2 else 0
        poutcome = rng.choices(["success", "failure", "other"], [0.3, 0.55, 0.15])[0] if previous else "unknown"
        z = (-3.4 + 0.0042 * duration + (2.1 if poutcome == "success" else 0)
             + (0.9 if month in ("mar", "sep", "oct", "dec") else 0) - 0.5 * housing - 0.4 * loan
             + 0.00009 * balance + 0.025 * abs(age - 42) * (age > 60) - 0.08 * campaign
             + (0.4 if job in ("student", "retired") else 0) + (0.25 if education == "tertiary" else 0))
        y = "yes" if rng.random() < 1 / (1 + math.exp(-z)) else "no"
        yield [age, job, marital, education, balance, "yes" if housing else "no", "yes" if loan else "no", month,
               duration, campaign, previous, poutcome, y]


def main() -> None:
    path = Path(__file__).with_name("banking.csv")
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["age", "job", "marital", "education", "balance", "housing", "loan", "month", "duration",
                         "campaign", "previous", "poutcome", "y"])
        writer.writerows(rows(random.Random(2015)))


if __name__ == "__main__":
    main()
