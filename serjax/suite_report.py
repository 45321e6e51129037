"""A suite's table: per variant and protocol, the report's figure beside serjax's, as
``RESULTS.md`` and ``results.json``, and the README's copy of it.

Reads what :func:`serjax.experiments.run_suite` leaves in each run directory (the run's
``results.json`` and the suite's ``run.json``: wall time, ``--quick`` or full, the machine);
computes nothing that the runs did not measure.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path

from serjax import files
from serjax.suites import Protocol, Suite, Variant

README_BEGIN = "<!-- results table: begin (python -m serjax.experiments --update-readme) -->"
README_END = "<!-- results table: end -->"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes:.1f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def _mean(values: Sequence[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def summarize_runs(variant: Variant, protocol: Protocol, runs: Sequence[tuple[dict, dict]]) -> dict:
    """One row of the table from the complete runs (seeds) of a variant under a protocol.

    Args:
      runs: per seed, ``(results, run)``: the run's ``results.json`` and ``run.json``.

    Returns:
      The row (``results.json``'s ``rows`` entry): mean WA, UA, macro-F1 and mean ROC-AUC over
      seeds (each seed's figure pooled over its folds), the spread of WA (standard deviation
      over seeds, or over folds with one seed), folds, wall time, mode and machines.
    """
    tests = [results["test"] for results, _ in runs]
    row = {
        "system": variant.system,
        "variant": variant.name,
        "title": variant.title,
        "protocol": protocol.kind,
        "split": protocol.description,
        "speaker_dependent": protocol.speaker_dependent,
        "reported": variant.reported if protocol.kind == "report" else None,
        "reported_as": variant.reported_as,
        "note": variant.note,
        "seeds": len(runs),
    }
    if not runs:
        return row | {"wa": None, "ua": None, "macro_f1": None, "mean_roc_auc": None}
    for key in ("wa", "ua", "macro_f1", "mean_roc_auc"):
        row[key] = _mean([t.get(key) for t in tests])
    wa = [t["wa"] for t in tests]
    folds = runs[0][0].get("folds")
    row["folds"] = len(folds) if folds else 1
    row["spread"], row["spread_over"] = None, None
    if len(wa) > 1:
        row["spread"], row["spread_over"] = statistics.pstdev(wa), "seeds"
    elif folds and len(folds) > 1:
        row["spread"] = runs[0][0]["fold_summary"]["wa_std"]
        row["spread_over"] = "folds"
    row["wall_seconds"] = sum(run["seconds"] for _, run in runs)
    row["mode"] = "quick" if any(run["quick"] for _, run in runs) else "full"
    quick_folds = protocol.quick.get("data.run_folds")
    if row["mode"] == "quick" and quick_folds:
        row["split"] += f"; `--quick`: fold {', '.join(quick_folds)} only"
    row["machines"] = sorted({run["machine"]["summary"] for _, run in runs})
    # The load when the invocation that made each run started: on a shared machine its wall
    # time is an upper bound.
    row["load_averages"] = [run["machine"].get("load_average") for _, run in runs]
    return row


def _wall(row: dict) -> str:
    if "wall_seconds" not in row:
        return "—"
    loads = [f"{x:.1f}" for x in row["load_averages"] if x is not None]
    return _duration(row["wall_seconds"]) + (f" (load {', '.join(loads)})" if loads else "")


def _spread(row: dict) -> str:
    if row.get("spread") is None:
        return "—"
    return f"± {100 * row['spread']:.1f} ({row['spread_over']})"


def markdown_tables(rows: Sequence[dict], suite: Suite) -> tuple[str, str]:
    """``(summary, details)``: one line per variant (the report's figure, serjax's under the
    report's protocol and under the honest one), and one per variant and protocol."""
    by_variant: dict[tuple[str, str], dict[str, dict]] = {}
    for row in rows:
        by_variant.setdefault((row["system"], row["variant"]), {})[row["protocol"]] = row
    summary = [
        "| system | variant | report | serjax, report's protocol (WA / UA) | "
        "serjax, speaker-independent (WA / UA) | run | machine |",
        "|---|---|---|---|---|---|---|",
    ]
    for protocols in by_variant.values():
        first = next(iter(protocols.values()))
        cells = []
        for kind in ("report", "honest"):
            row = protocols.get(kind)
            if row is None or row["wa"] is None:
                cells.append("—" if row is None else "not run")
            else:
                cells.append(f"{_percent(row['wa'])} / {_percent(row['ua'])}" + _label(row))
        variant = _find(suite, first["system"], first["variant"])
        reported = "—"
        if variant.reported is not None:
            reported = f"{_percent(variant.reported)} ({variant.reported_as})"
        ran = [r for r in protocols.values() if r.get("mode")]
        modes = ", ".join(sorted({r["mode"] for r in ran})) or "not run"
        machines = "; ".join(sorted({m for r in ran for m in r["machines"]})) or "—"
        summary.append(
            f"| {first['system']} | {first['title']} | {reported} | {cells[0]} | {cells[1]} | "
            f"{modes} | {machines} |"
        )
    details = [
        "| system | variant | protocol | split | WA | UA | macro-F1 | ROC-AUC | seeds | folds | "
        "spread of WA | wall time | run | machine | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        auc = row.get("mean_roc_auc")
        details.append(
            "| {system} | {variant} | {protocol} | {split} | {wa} | {ua} | {f1} | {auc} | "
            "{seeds} | {folds} | {spread} | {wall} | {mode} | {machine} | {note} |".format(
                system=row["system"],
                variant=row["variant"],
                protocol=row["protocol"] + _label(row),
                split=row["split"],
                wa=_percent(row["wa"]),
                ua=_percent(row["ua"]),
                f1=_percent(row["macro_f1"]),
                auc="—" if auc is None else f"{auc:.3f}",
                seeds=row["seeds"],
                folds=row.get("folds", "—"),
                spread=_spread(row),
                wall=_wall(row),
                mode=row.get("mode", "not run"),
                machine="; ".join(row.get("machines", [])) or "—",
                note=row["note"] or "",
            )
        )
    return "\n".join(summary) + "\n", "\n".join(details) + "\n"


def _label(row: dict) -> str:
    return " (speaker-dependent)" if row.get("speaker_dependent") else ""


def _find(suite: Suite, system: str, name: str) -> Variant:
    return next(v for v in suite.variants if v.system == system and v.name == name)


def write(workdir: Path, suite: Suite, rows: Sequence[dict], machine: dict, command: str) -> str:
    """Writes ``RESULTS.md`` and ``results.json`` into ``workdir``; returns the summary table."""
    summary, details = markdown_tables(rows, suite)
    quick = any(r.get("mode") == "quick" for r in rows)
    text = [
        f"# Results of the suite `{suite.name}`",
        "",
        f"Made by `{command}`. Every figure is measured by the run named in its row; the "
        "reports' figures are their own claims on their own splits (`serjax/references.py`). "
        "WA is accuracy, UA the mean of per-class recalls. Under the honest protocol every "
        "speaker is tested once by a model that never heard them, and the figures pool every "
        "fold's predictions.",
        "",
    ]
    load = machine.get("load_average")
    text += [
        f"This invocation ran on: {machine['summary']}"
        + ("" if load is None else f", load average {load:.1f} when it started")
        + ". Each row names the machine of its own runs, and its wall time the load average "
        "when the invocation that made it started (runs complete before this one were only "
        "collected).",
        "",
    ]
    if quick:
        text += [
            "**`--quick` figures** (a smoke pass: one epoch (S2: two), one seed, one fold of the "
            "honest protocol, S1's segments every 12 frames, S3's LSTM on the first second of "
            "each file): they show that every run works, not what the systems reach.",
            "",
        ]
    if any(r.get("speaker_dependent") for r in rows):
        text += [
            "Figures marked **speaker-dependent** come from a split by file, as the report's "
            "likely was: every test speaker is also heard in training, so they measure "
            "something easier than the speaker-independent figures and are not comparable "
            "with them.",
            "",
        ]
    text += [summary, "## Per protocol", "", details]
    notes = [f"- {r['system']} {r['variant']}: {r['note']}" for r in rows if r["note"]]
    if notes:
        text += ["## Notes", "", *dict.fromkeys(notes), ""]
    files.write_text_atomic(workdir / "RESULTS.md", "\n".join(text))
    files.write_json_atomic(
        workdir / "results.json",
        {"suite": suite.name, "command": command, "machine": machine, "rows": list(rows)},
    )
    return summary


def update_readme(readme: Path, table: str, link: str) -> None:
    """Replaces the README's text between :data:`README_BEGIN` and :data:`README_END` with the
    table and a link to the full results.

    Raises:
      ValueError: the README lacks the markers.
    """
    text = readme.read_text()
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(f"{readme} has no {README_BEGIN!r} ... {README_END!r} markers")
    block = f"{README_BEGIN}\n{table}\nEvery run, protocol and note: [{link}]({link}).\n"
    files.write_text_atomic(readme, text[:begin] + block + text[end:])


def load_run(run_dir: Path) -> tuple[dict, dict] | None:
    """``(results, run)`` of a complete run directory, or None."""
    results, run = run_dir / "results.json", run_dir / "run.json"
    if not (results.is_file() and run.is_file()):
        return None
    return json.loads(results.read_text()), json.loads(run.read_text())
