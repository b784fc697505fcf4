#!/usr/bin/env python3
"""Profile a CSV file with the standard library only and print a JSON summary.

Usage: summarize_csv.py FILE [--delimiter ,] [--top 5] [--group-by COL --value COL]
"""

import argparse
import csv
import json
import statistics
import sys
from collections import Counter, defaultdict

MISSING = {"", "na", "n/a", "nan", "null", "none", "-"}


def to_number(raw):
    """A float for '1,234.5', '$12', '7%', or None when the text is not a number."""
    s = raw.strip().replace(",", "").replace("$", "").replace("€", "").replace("£", "")
    if s.endswith("%"):
        s = s[:-1]
    try:
        return float(s)
    except ValueError:
        return None


def describe_numbers(values):
    out = {"count": len(values)}
    if values:
        out.update(
            mean=round(statistics.fmean(values), 6),
            median=statistics.median(values),
            stdev=round(statistics.stdev(values), 6) if len(values) > 1 else 0.0,
            min=min(values),
            max=max(values),
        )
    return out


def profile(rows, columns, top):
    result = {}
    for col in columns:
        raw = [r.get(col) or "" for r in rows]
        present = [v for v in raw if v.strip().lower() not in MISSING]
        numbers = [n for n in (to_number(v) for v in present) if n is not None]
        info = {"missing": len(raw) - len(present)}
        if present and len(numbers) >= 0.9 * len(present):
            info["type"] = "numeric"
            info["non_numeric"] = len(present) - len(numbers)
            info.update(describe_numbers(numbers))
        else:
            counts = Counter(v.strip() for v in present)
            info["type"] = "text"
            info["distinct"] = len(counts)
            info["most_common"] = counts.most_common(top)
        result[col] = info
    return result


def group(rows, by, value):
    groups = defaultdict(list)
    skipped = 0
    for r in rows:
        n = to_number(r.get(value) or "")
        if n is None:
            skipped += 1
            continue
        groups[(r.get(by) or "").strip() or "(missing)"].append(n)
    table = [
        {"group": g, "count": len(v), "sum": round(sum(v), 6), "mean": round(statistics.fmean(v), 6),
         "median": statistics.median(v)}
        for g, v in groups.items()
    ]
    table.sort(key=lambda t: t["sum"], reverse=True)
    return {"by": by, "value": value, "rows_skipped": skipped, "groups": table}


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("file")
    p.add_argument("--delimiter", default=",")
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--group-by", dest="group_by")
    p.add_argument("--value")
    a = p.parse_args(argv)
    if bool(a.group_by) != bool(a.value):
        p.error("--group-by and --value go together")
    with open(a.file, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, delimiter=a.delimiter)
        columns = reader.fieldnames or []
        rows = list(reader)
    for needed in filter(None, (a.group_by, a.value)):
        if needed not in columns:
            p.error(f"column {needed!r} not in {columns}")
    out = {"file": a.file, "rows": len(rows), "columns": profile(rows, columns, a.top)}
    if a.group_by:
        out["grouped"] = group(rows, a.group_by, a.value)
    json.dump(out, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
