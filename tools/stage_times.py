"""Where a pipeline run's time went, from the executed notebooks' papermill records.

    python tools/stage_times.py [results/notebooks] [--params params.yaml]

Every stage notebook papermill executed records its start, end and duration. This groups them by stage
(pre-training and evaluation split into the main models and the ablations, as params.yaml's variants say),
prints a markdown table of minutes and shares, and the span from the first start to the last end; what
the notebooks do not cover (DVC hashing and caching, kernel start-up, the cards stage) is the difference.
"""
from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

import yaml


def records(folder: Path) -> list[dict]:
    out = []
    for path in sorted(folder.rglob("*.ipynb")):
        meta = json.loads(path.read_text()).get("metadata", {}).get("papermill") or {}
        if meta.get("start_time") and meta.get("end_time"):
            out.append({"path": path.relative_to(folder), "start": datetime.fromisoformat(meta["start_time"]),
                        "end": datetime.fromisoformat(meta["end_time"]), "seconds": float(meta["duration"])})
    return out


def group(rec: dict, budgets: dict[str, str]) -> str:
    parts = rec["path"].parts
    if parts[0] in ("pretrain", "evaluate"):
        return f"{parts[0]} ({budgets.get(Path(parts[1]).stem, 'ablation')} models)"
    return Path(parts[0]).stem.split("_", 1)[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=Path("results/notebooks"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    variants = yaml.safe_load(args.params.read_text())["variants"]
    budgets = {name: spec.get("budget", "ablation") for name, spec in variants.items()}
    recs = records(args.folder)
    if not recs:
        print(f"no executed notebooks with papermill times under {args.folder}")
        return 1
    span = (max(r["end"] for r in recs) - min(r["start"] for r in recs)).total_seconds()
    totals: dict[str, tuple[float, int]] = {}
    for r in recs:
        seconds, n = totals.get(group(r, budgets), (0.0, 0))
        totals[group(r, budgets)] = (seconds + r["seconds"], n + 1)
    print("| stage | notebooks | minutes | share of the span |\n|---|---|---|---|")
    for name, (seconds, n) in sorted(totals.items(), key=lambda kv: -kv[1][0]):
        print(f"| {name} | {n} | {seconds / 60:.1f} | {100 * seconds / span:.0f} % |")
    covered = sum(s for s, _ in totals.values())
    print(f"| outside the notebooks (DVC, kernel start-up, cards) | – | {(span - covered) / 60:.1f} | "
          f"{100 * (span - covered) / span:.0f} % |")
    print(f"\nspan from the first notebook's start to the last one's end: {span / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
