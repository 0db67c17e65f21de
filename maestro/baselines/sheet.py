"""The baselines sheet (``config/baselines*.tsv``): one row per baseline foundation model,
run with probe then fine-tune on its datasets, beside the MAESTRO cells of the ablation sheet.

Columns: ``model`` (dinov2 | dofa | satmae | prithvi | croma), ``size`` (per model:
``maestro.baselines.spec.SIZES``), ``fusion`` (shared | monotemp for the image models, mod
for the Sentinel-2 models, late | inter for CROMA), ``weights``
(``random``, or the name of a checkpoint in the config's ``weights`` section), ``grid``
(token grid side, or ``auto``: each modality's crop in whole patches), ``head``
(attentive | linear | concat), ``datasets`` (``all`` or ``+``-joined names) and ``seeds``
(``all`` or ``+``-joined seeds). The row id, e.g.
``model~dinov2_size~demo_fusion~shared_weights~random``, names its results folders:
``results/baseline/{probe,finetune}/<dataset>/<id>/seed~<s>/``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from maestro.baselines.spec import FUSIONS, MODELS, SIZES

COLUMNS = ("model", "size", "fusion", "weights", "grid", "head", "datasets", "seeds")
ID_COLUMNS = ("model", "size", "fusion", "weights")
HEADS = ("attentive", "linear", "concat")


@dataclass(frozen=True)
class BaselineRow:
    """One row of the sheet."""

    values: dict[str, str]
    datasets: tuple[str, ...]
    seeds: tuple[int, ...] | None  # None: the config's seeds

    @property
    def id(self) -> str:
        """Path component of the row's results."""
        return "_".join(f"{c}~{self.values[c]}" for c in ID_COLUMNS)

    def spec(self, weights_path: str | None = None, head_norm: str = "none") -> dict:
        """The job's ``baseline`` section (``maestro.baselines.spec.BaselineSpec`` data);
        ``weights_path``: where the row's named checkpoint is (None for random weights);
        ``head_norm``: as MAESTRO's heads (the config's ``model.head_norm``)."""
        grid = self.values["grid"]
        return {
            "model": self.values["model"], "size": self.values["size"],
            "fusion": self.values["fusion"], "weights": weights_path,
            "grid": None if grid == "auto" else int(grid), "head": self.values["head"],
            "head_norm": head_norm,
        }  # fmt: skip


def read_baselines(
    path: str | Path, all_datasets: Iterable[str], weights: Iterable[str] = ()
) -> list[BaselineRow]:
    """Parse and validate the sheet; errors name the file, the line and the value."""
    all_datasets, weights = tuple(all_datasets), set(weights)
    with open(path, newline="") as f:
        numbered = [(n, ln) for n, ln in enumerate(f, 1) if ln.strip() and not ln.startswith("#")]
    reader = csv.DictReader((ln for _, ln in numbered), delimiter="\t")
    rows = list(reader)
    if list(reader.fieldnames or []) != list(COLUMNS):
        raise ValueError(f"{path}: expected the columns {list(COLUMNS)}, found {reader.fieldnames}")
    out, seen = [], set()
    for (n, _), row in zip(numbered[1:], rows, strict=True):
        where = f"{path}, line {n}"
        if None in row or any(not (row[c] or "").strip() for c in COLUMNS):
            raise ValueError(f"{where}: every column needs a value ({list(COLUMNS)})")
        v = {c: row[c].strip() for c in COLUMNS}
        model = v["model"]
        checks = [
            ("model", model in MODELS, MODELS),
            ("size", model not in MODELS or v["size"] in SIZES[model], SIZES.get(model, ())),
            ("fusion", model not in MODELS or v["fusion"] in FUSIONS[model],
             FUSIONS.get(model, ())),
            ("head", v["head"] in HEADS, HEADS),
            ("grid", v["grid"] == "auto" or (v["grid"].isdigit() and int(v["grid"]) > 0), "auto|N"),
            ("weights", v["weights"] == "random" or v["weights"] in weights,
             ["random", *sorted(weights)]),
        ]  # fmt: skip
        for col, ok, allowed in checks:
            if not ok:
                raise ValueError(f"{where}: {col} {v[col]!r} is not one of {list(allowed)}")
        names = all_datasets if v["datasets"] == "all" else tuple(v["datasets"].split("+"))
        unknown = [d for d in names if d not in all_datasets]
        if unknown:
            raise ValueError(f"{where}: datasets {unknown} are not in {list(all_datasets)}")
        if v["seeds"] == "all":
            seeds = None
        elif all(p.isdigit() for p in v["seeds"].split("+")):
            seeds = tuple(int(p) for p in v["seeds"].split("+"))
            if len(set(seeds)) != len(seeds):  # one run would count as two seeds
                raise ValueError(f"{where}: seeds must differ, found {v['seeds']!r}")
        else:
            raise ValueError(f"{where}: seeds must be 'all' or e.g. 0+1, found {v['seeds']!r}")
        r = BaselineRow(v, names, seeds)
        if r.id in seen:
            raise ValueError(f"{where}: a second row {r.id}")
        seen.add(r.id)
        out.append(r)
    return out
