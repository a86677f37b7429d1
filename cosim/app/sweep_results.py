"""The results of ``snncosim sweep``: one row per (point, data shard) as the workers return them, the table
(``results.csv``, ``results.json``, both written atomically), the per-point merge of shards, the exit status."""

from __future__ import annotations

import csv
import io
import json
import math

from golden.core.files import write_text_atomic

__all__ = ["EXIT_MISMATCH", "EXIT_FAILED", "exit_status", "columns", "flat_rows", "merged_points", "write_results",
           "counts"]

EXIT_MISMATCH = 1  # some point's RTL disagreed with the golden model (or its own output was inconsistent)
EXIT_FAILED = 3  # no mismatch, but some point could not run (its error and traceback are in the results)

PARAMETER_COLUMNS = ("point", "network", "shard", "coding", "T", "K", "P", "weight_bits", "membrane_bits", "seed")
FIGURE_COLUMNS = ("status", "verdict", "first_difference", "ann_accuracy", "golden_accuracy", "test_images",
                  "first_test_image", "rtl_images", "cycles_per_image", "rtl_cycles_per_image", "acs_per_image",
                  "spikes_per_image")
COST_COLUMNS = ("convert_seconds", "golden_seconds", "build_seconds", "build_cached", "rtl_seconds",
                "rtl_images_per_second", "layers", "worker", "error", "traceback")
ENERGY_PREFIX = "energy_pj_"


def counts(rows: list[dict]) -> dict:
    """How many rows ended ``ok``, ``mismatch`` and ``failed``."""
    out = {"ok": 0, "mismatch": 0, "failed": 0}
    for row in rows:
        out[row.get("status", "failed")] = out.get(row.get("status", "failed"), 0) + 1
    return out


def exit_status(rows: list[dict]) -> int:
    """0 when every point ran and agreed; :data:`EXIT_MISMATCH` when any disagreed (whatever else happened);
    otherwise :data:`EXIT_FAILED` when any point failed."""
    found = counts(rows)
    if found["mismatch"]:
        return EXIT_MISMATCH
    return EXIT_FAILED if found["failed"] else 0


def columns(grid_keys: tuple[str, ...], chips: list[str]) -> list[str]:
    """The table's columns: the point's parameters (those every sweep has, then the other grid keys), its figures,
    the SNN energy per image on each chip model, then cost, worker and error columns."""
    extra = [k for k in grid_keys if k not in PARAMETER_COLUMNS]
    return [*PARAMETER_COLUMNS, *extra, *FIGURE_COLUMNS, *(ENERGY_PREFIX + c for c in chips), *COST_COLUMNS]


def flat_rows(rows: list[dict], names: list[str]) -> list[dict]:
    """Rows with one value per column (grid values from ``params``, energies from ``energy_pj_per_image``)."""
    out = []
    for row in rows:
        flat = {}
        for name in names:
            if name in row:
                flat[name] = row[name]
            elif name.startswith(ENERGY_PREFIX):
                flat[name] = (row.get("energy_pj_per_image") or {}).get(name[len(ENERGY_PREFIX):])
            else:
                flat[name] = (row.get("params") or {}).get(name)
        out.append(flat)
    return out


def _csv_text(rows: list[dict], names: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else _csv_value(v) for k, v in row.items()})
    return buffer.getvalue()


def _csv_value(value):
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return value


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return value.item()
    return value


def merged_points(rows: list[dict]) -> list[dict]:
    """One row per point: its shards' figures weighted by their test images (accuracy: correct over images), the
    verdict EQUIVALENT only when every shard's is, the status the worst of the shards'."""
    by_point: dict[int, list[dict]] = {}
    for row in rows:
        by_point.setdefault(row["point"], []).append(row)
    merged = []
    for index in sorted(by_point):
        parts = sorted(by_point[index], key=lambda r: r.get("shard", 0))
        row = {k: v for k, v in parts[0].items() if k not in ("shard", "first_test_image", "worker", "traceback")}
        statuses = [p.get("status") for p in parts]
        row["status"] = "mismatch" if "mismatch" in statuses else "failed" if "failed" in statuses else "ok"
        row["shards"] = len(parts)
        finished = [p for p in parts if p.get("test_images")]
        if len(finished) == len(parts):
            images = sum(p["test_images"] for p in parts)
            row["test_images"] = images
            for name in ("golden_accuracy", "cycles_per_image", "acs_per_image", "spikes_per_image"):
                known = all(isinstance(p.get(name), (int, float)) for p in parts)
                row[name] = sum(p[name] * p["test_images"] for p in parts) / images if known else None
            chips = parts[0].get("energy_pj_per_image") or {}
            row["energy_pj_per_image"] = {
                chip: None if any((p.get("energy_pj_per_image") or {}).get(chip) is None for p in parts)
                else sum(p["energy_pj_per_image"][chip] * p["test_images"] for p in parts) / images
                for chip in chips}
            verdicts = {p.get("verdict") for p in parts}
            row["verdict"] = verdicts.pop() if len(verdicts) == 1 else "MISMATCH" if "MISMATCH" in verdicts else None
            row["rtl_images"] = sum(p.get("rtl_images") or 0 for p in parts)
        else:
            for name in ("golden_accuracy", "cycles_per_image", "acs_per_image", "spikes_per_image", "verdict"):
                row[name] = None
            row["energy_pj_per_image"] = {}
        errors = [p.get("error") for p in parts if p.get("error")]
        row["error"] = errors[0] if errors else None
        merged.append(row)
    return merged


def write_results(folder, rows: list[dict], grid_keys: tuple[str, ...], chips: list[str], meta: dict) -> list:
    """``results.csv`` (one line per point and shard; tracebacks in their column) and ``results.json`` (the rows
    as the workers returned them, the per-point merge when there are shards, and ``meta``: the grid, the settings,
    the counts and the exit status). Returns the paths."""
    names = columns(grid_keys, chips)
    csv_path = write_text_atomic(folder / "results.csv", _csv_text(flat_rows(rows, names), names))
    document = {"format": "snncosim-sweep", "version": 1, **meta, "columns": names, "counts": counts(rows),
                "exit_status": exit_status(rows), "results": rows}
    if any(row.get("shard") for row in rows):
        document["points"] = merged_points(rows)
    json_path = write_text_atomic(folder / "results.json", json.dumps(_json_safe(document), indent=1) + "\n")
    return [csv_path, json_path]
