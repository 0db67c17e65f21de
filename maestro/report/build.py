"""Build every table of ``results/tables/`` from the downstream metrics files."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from maestro.report import paper
from maestro.report.tables import (
    AXES,
    fusion_name,
    load_metrics,
    norm_name,
    pivot,
    reference_table,
    summarize,
    write_table,
)

RECIPE = ("spectral", "norm", "groups", "dates")  # what makes "the MAESTRO recipe" in Table 1
TABLE1_FUSION = "group"  # Table 1 holds the group and inter-group models; others are ablations
#: Modes of the reference rows of maestro.train.reference (no model, no cell).
REFERENCES = ("trivial", "linear")
#: Row names of the reference rows (no pretraining), in the order tables list them.
REFERENCE_NAMES = {
    "probe_random": "Random-init encoder (probe)",
    "scratch": "ViT (supervised)",
    "linear": "Linear model on raw inputs",
    "trivial": "Trivial predictor",
}
_ORDER = {
    "MAESTRO": 0,
    "MAESTRO†": 1,
    "MAESTRO (probe)": 2,
    "MAESTRO† (probe)": 3,
    **{name: 4 + i for i, name in enumerate(REFERENCE_NAMES.values())},
}


def _cell(row: Mapping[str, object]) -> dict[str, str]:
    return {k[5:]: str(v) for k, v in row.items() if k.startswith("cell_") and isinstance(v, str)}


def _model_name(mode: str, length: str) -> str:
    dagger = "†" if str(length) == "2" else ""
    names = {"finetune": f"MAESTRO{dagger}", "probe": f"MAESTRO{dagger} (probe)"}
    return names.get(mode) or REFERENCE_NAMES[mode]


def _where(df: pd.DataFrame, test) -> pd.DataFrame:
    """Rows of ``df`` for which ``test(row)`` holds (an empty frame stays empty)."""
    if df.empty:
        return df.copy()
    return df[df.apply(test, axis=1).astype(bool)].copy()


#: Pretraining data of each baseline's published weights (the names of Table 2).
BASELINE_PRETRAINING = {
    "dinov2": "LVD-142M", "dinov2_sat": "Maxar Vivid2", "dofa": "DOFA MM", "croma": "SSL4EO",
    "prithvi": "HLS", "satmae": "fMoW RGB+S",
}  # fmt: skip


def _intra(df: pd.DataFrame) -> pd.DataFrame:
    """Intra-dataset MAESTRO runs (no transfer, no reference row, no baseline model)."""
    return df[df["source"].isna() & ~df["mode"].isin(REFERENCES) & df["row"].isna()].copy()


def baseline_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Runs of the baseline foundation models, labelled for Table 1 (probe rows marked)."""
    rows = df[df["row"].notna()].copy()
    rows["Model"] = [
        f"{r} (probe)" if m == "probe" else r
        for r, m in zip(rows["row"], rows["mode"], strict=True)
    ]
    rows["Size"] = rows["baseline_size"]
    rows["Fusion mode"] = rows["baseline_fusion"]
    return rows


def reference_rows(df: pd.DataFrame, label_cols: list[str], label: str) -> pd.DataFrame:
    """The trivial and linear rows, labelled for a table whose first label column is ``label``."""
    rows = df[df["mode"].isin(REFERENCES)].copy()
    rank = {m: i for i, m in enumerate(REFERENCE_NAMES)}
    rows = rows.sort_values("mode", key=lambda s: s.map(rank), kind="stable")
    for col in label_cols:
        rows[col] = "–"
    rows[label] = [REFERENCE_NAMES[m] for m in rows["mode"]]  # the strategy is in the CSV
    return rows


def table1(df: pd.DataFrame, reference: Mapping[str, str]) -> tuple:
    """Intra-dataset runs of the reference recipe, per model, size and fusion mode; then the
    floors: random-init probe, supervised ViT, linear model on raw inputs, trivial predictor."""
    rows = _where(
        _intra(df),
        lambda r: (
            all(_cell(r).get(c) == reference[c] for c in RECIPE)
            and _cell(r).get("fusion") == TABLE1_FUSION
        ),
    )
    rows["Model"] = [
        _model_name(m, c) for m, c in zip(rows["mode"], rows["cell_length"], strict=True)
    ]
    rows["Size"] = rows["size"]
    rows["Fusion mode"] = [fusion_name(_cell(r)) for _, r in rows.iterrows()]
    # baselines without pretraining do not depend on its length: one row per architecture
    rows = rows[~rows["mode"].isin(["scratch", "probe_random"]) | (rows["cell_length"] == "1")]
    keys = ["Model", "Size", "Fusion mode"]
    parts = [p for p in (rows, baseline_rows(df), reference_rows(df, keys, "Model")) if len(p)]
    rows = pd.concat(parts, ignore_index=True) if parts else rows  # only transfer runs: empty
    rows = rows.sort_values(
        by=keys,
        key=lambda s: s.map(_ORDER).fillna(3.5) if s.name == "Model" else s,
        kind="stable",
    )
    return pivot(summarize(rows, keys), keys)


def table2(df: pd.DataFrame, titles: Mapping[str, str]) -> tuple:
    """Cross-dataset fine-tuning: rows = (model, pretraining data), columns = target datasets:
    MAESTRO pretrained on another dataset (by us, or the released checkpoint of the authors),
    then the fine-tuned baseline foundation models
    (their pretraining data; "none" for the demo's random weights)."""
    rows = df[df["source"].notna() & (df["mode"] == "finetune")].copy()
    released = rows["released"].notna() if "released" in rows else False
    rows["Model"] = "MAESTRO"
    rows.loc[released, "Model"] = "MAESTRO (released checkpoint)"
    rows["Size"] = rows["size"]
    rows["Pretraining dataset"] = [titles.get(s, s) for s in rows["source"]]
    base = df[df["row"].notna() & (df["mode"] == "finetune")].copy()
    if len(base):
        base["Model"] = base["row"]
        base["Size"] = base["baseline_size"]
        base["Pretraining dataset"] = [
            BASELINE_PRETRAINING.get(m, "–") if w else "none (random init)"
            for m, w in zip(base["baseline_model"], base["baseline_weights"], strict=True)
        ]
        rows = pd.concat([p for p in (rows, base) if len(p)], ignore_index=True)
    keys = ["Model", "Size", "Pretraining dataset"]
    return pivot(summarize(rows, keys), keys)


def ablation(df: pd.DataFrame, reference: Mapping[str, str], axis: str) -> tuple:
    """The reference cell and the cells differing from it only on ``axis`` (fine-tuned), then
    the floors of the reference architecture and dataset (random-init probe, supervised ViT,
    linear model on raw inputs, trivial predictor)."""
    _, columns = AXES[axis]
    intra = _intra(df)
    others = [c for c in reference if c not in columns]
    rows = _where(
        intra[intra["mode"] == "finetune"],
        lambda r: all(_cell(r).get(c) == reference[c] for c in others),
    )
    label = {
        "norm": norm_name,
        "spectral": lambda c: c["spectral"],
        "fusion": fusion_name,
        "dates": lambda c: "every date" if c["dates"] == "all" else f"{c['dates']} date(s)",
    }[axis]
    rows["Variant"] = [
        label(_cell(r))
        + (" (reference)" if all(_cell(r)[c] == reference[c] for c in columns) else "")
        for _, r in rows.iterrows()
    ]
    floors = _where(
        intra[intra["mode"].isin(["scratch", "probe_random"])],
        lambda r: all(_cell(r).get(c) == reference[c] for c in reference),
    )
    floors["Variant"] = [REFERENCE_NAMES[m] for m in floors["mode"]]
    datasets = set(rows["dataset"])
    refs = reference_rows(df, ["Variant"], "Variant")
    parts = [rows, floors[floors["dataset"].isin(datasets)], refs[refs["dataset"].isin(datasets)]]
    return pivot(summarize(pd.concat(parts, ignore_index=True), ["Variant"]), ["Variant"])


def write_all(
    metrics: Iterable[str | Path], reference: Mapping[str, str], out_dir: str | Path
) -> dict[str, pd.DataFrame]:
    """Write table1, table2 and ablation_<axis> (.md, .html, .csv, .tex) into ``out_dir``."""
    df = load_metrics(metrics)
    reference = {"dates": "all"} | dict(reference)  # ids of older runs have no dates column
    out_dir = Path(out_dir)
    titles = dict(zip(df["dataset"], df["title"], strict=False)) | {"s2_naip": "S2-NAIP urban"}
    cell_note = (
        "Test metric in %: mean ± std over seeds (when several) [95 % interval: seeds and test "
        "items resampled]. Generated by `maestro report-tables` from the metrics.json files "
        "listed in the CSV."
    )
    tables = {}
    t1 = table1(df, reference)
    datasets = (
        [d for d in paper.TABLE1_DATASETS if d in set(t1[2]["dataset"])] if len(t1[2]) else []
    )
    write_table(
        out_dir / "table1", "Table 1: intra-dataset evaluation",
        "MAESTRO: pretrained, probed, then fine-tuned; † = twice the pretraining epochs; probe = "
        "frozen encoder. Floors (no pretraining): a probe of the same encoder at random "
        "initialization; ViT (supervised) = the same architecture trained from scratch; a "
        "linear model on raw input features (per tile, or per pixel for segmentation); the "
        "trivial predictor (the constant strategy best on val). A number at a floor is a "
        "defect to find, not a result. " + cell_note,
        t1, 3, reference_table(paper.TABLE1, datasets, ["Model", "Size", "Fusion mode"], titles),
    )  # fmt: skip
    tables["table1"] = t1[2]
    t2 = table2(df, titles)
    datasets2 = (
        [d for d in paper.TABLE1_DATASETS if d in set(t2[2]["dataset"])] if len(t2[2]) else []
    )
    write_table(
        out_dir / "table2", "Table 2: cross-dataset evaluation",
        "The reference cell pretrained on one dataset, probed and fine-tuned on another; the "
        "baseline foundation models fine-tuned from their pretraining (rows with random "
        "weights are floors, not the published models). " + cell_note,
        t2, 3, reference_table(paper.TABLE2, datasets2, ["Model", "Pretraining data"], titles),
    )  # fmt: skip
    tables["table2"] = t2[2]
    for axis, (title, _) in AXES.items():
        t = ablation(df, reference, axis)
        write_table(
            out_dir / f"ablation_{axis}", f"Ablation: {title.lower()}",
            "Fine-tuned models; every other setting equals the reference cell. " + cell_note, t, 1,
        )  # fmt: skip
        tables[f"ablation_{axis}"] = t[2]
    return tables
