"""From a workflow configuration (``config/config.yaml``) to the job configuration of one step.

The workflow passes each ``maestro`` subcommand a *job configuration* (``--job``): the few
sections of the workflow configuration that the step depends on (its rerun trigger and its
provenance). This module is the one place that builds them, for the Snakemake rules
(``workflow/rules/common.smk``) and for ``maestro job`` (:func:`maestro.grid.step_job`, which
also resolves the cell), which prints the job of a step so that a subcommand can be run by
hand with exactly the settings the pipeline would use.

The workflow configuration is validated against ``maestro/schemas/config.schema.yaml``
(JSON Schema draft 2020-12), and the schema's defaults are filled in, as Snakemake's
``validate`` does.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

SCHEMA_PATH = Path(__file__).parent / "schemas" / "config.schema.yaml"

#: Step -> (config sections, phase section) of its job; every job also gets the overrides
#: of its store. Steps with a phase are per (dataset, cell); the others per store / dataset.
STEPS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "generate-demo": ((), None),
    "convert": (("convert",), None),
    "analyze-bands": (("analysis",), None),
    "pretrain": (("model", "runtime"), "pretrain"),
    "probe": (("model", "runtime"), "probe"),
    "finetune": (("model", "runtime"), "finetune"),
    "scratch": (("model", "runtime"), "scratch"),
    "reference": ((), None),
}
#: Phase sections that start from another's: the supervised baseline trains with the
#: fine-tuning recipe (and its ``by_dataset`` changes) unless its own section says otherwise.
INHERITS = {"scratch": "finetune"}
#: Top-level keys that only a workflow configuration has (never a job configuration).
WORKFLOW_KEYS = frozenset(
    {"datasets", "sources", "variants", "seeds", "transfer", "weights", "baselines"}
)


def _fill_defaults(schema: Mapping[str, Any], value: Any, root: Mapping[str, Any]) -> None:
    """Set the ``default`` of every missing property, recursively (in place)."""
    if "$ref" in schema:
        ref = schema["$ref"]
        node: Any = root
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        _fill_defaults(node, value, root)
    if not isinstance(value, dict):
        return
    for key, sub in (schema.get("properties") or {}).items():
        if key not in value and "default" in sub:
            value[key] = copy.deepcopy(sub["default"])
        if key in value:
            _fill_defaults(sub, value[key], root)


def _schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def job_schema() -> dict[str, Any]:
    """The schema of a job configuration, made of the workflow schema's own sections (one
    source of truth): a job phase trains at least one epoch and has no ``by_dataset``."""
    wf = _schema()
    props = wf["properties"]
    phase = copy.deepcopy(wf["$defs"]["phase"])
    phase["properties"].pop("by_dataset")
    phase["properties"]["epochs"] = {"type": "integer", "minimum": 1}
    return {
        "$schema": wf["$schema"],
        "$defs": {**wf["$defs"], "job_phase": phase},
        "type": "object",
        "additionalProperties": False,
        "properties": {
            **{k: props[k] for k in ("overrides", "model", "runtime", "convert", "analysis")},
            "phase": {"$ref": "#/$defs/job_phase"},
            "cell": {"type": "object", "additionalProperties": {"type": ["string", "integer"]}},
            "demo": wf["$defs"]["source"]["properties"]["demo"],
            "transfer_from": {"type": ["string", "null"]},
            "released": {"type": ["string", "null"]},
        },
    }


def _violations(schema: Mapping[str, Any], value: Any) -> list[str]:
    import jsonschema

    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(value),
        key=lambda e: [str(p) for p in e.path],
    )
    return [f"  {'.'.join(map(str, e.path)) or '<top level>'}: {e.message}" for e in errors]


def validate_job(job: Mapping[str, Any], source: str = "job configuration") -> None:
    """Check a job configuration (``--job``) before any work; ``ValueError`` lists every
    violation (a typo in a key, a wrong type, ``epochs: 0``), one per line."""
    lines = _violations(job_schema(), dict(job))
    if lines:
        raise ValueError(f"invalid {source}:\n" + "\n".join(lines))


def validate_config(config: Mapping[str, Any], source: str = "configuration") -> dict[str, Any]:
    """A copy of ``config`` with the schema's defaults, after checking it against the schema.

    Raises ``ValueError`` listing every violation (``path: message``, one per line).
    """
    schema = _schema()
    lines = _violations(schema, dict(config))
    if lines:
        raise ValueError(f"invalid {source}:\n" + "\n".join(lines))
    out = copy.deepcopy(dict(config))
    _fill_defaults(schema, out, schema)
    return out


def merge_config(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``update`` as Snakemake merges config files (``update_config``):
    nested mappings merge recursively, other values replace."""
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge_config(out[k], v)
        else:
            out[k] = v
    return out


def load_config(paths: Iterable[str | Path]) -> dict[str, Any]:
    """Read workflow config files, validate them and fill the defaults.

    Later files update earlier ones as ``snakemake --configfile a b`` does: mappings merge
    key by key at every depth, any other value is replaced. (A ``by_dataset`` entry of an
    earlier file still overrides a later file's phase-wide value for that dataset: it is
    the more specific setting.)
    """
    config: dict[str, Any] = {}
    names = []
    for path in paths:
        names.append(str(path))
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ValueError(f"{path}: cannot read a YAML mapping ({err})") from err
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a YAML mapping, found {type(data).__name__}")
        config = merge_config(config, data)
    return validate_config(config, source="configuration " + " + ".join(names))


def phase_section(config: Mapping[str, Any], name: str, dataset: str | None) -> dict[str, Any]:
    """A phase section (``pretrain`` / ``probe`` / ``finetune`` / ``scratch``) with the
    dataset's ``by_dataset`` changes applied.

    ``scratch`` starts from the resolved ``finetune`` section (:data:`INHERITS`); its own keys,
    then its own ``by_dataset`` keys, replace those.
    """
    base = phase_section(config, INHERITS[name], dataset) if name in INHERITS else {}
    section = dict(config.get(name) or {})
    specific = section.pop("by_dataset", {}).get(dataset, {})
    return base | section | specific


def merge_overrides(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Store overrides with ``extra`` on top (modalities merged key by key)."""
    out = {k: v for k, v in base.items() if k != "modalities"}
    out |= {k: v for k, v in extra.items() if k != "modalities"}
    mods = {m: dict(v) for m, v in (base.get("modalities") or {}).items()}
    for m, v in (extra.get("modalities") or {}).items():
        mods[m] = mods.get(m, {}) | dict(v)
    if mods:
        out["modalities"] = mods
    return out


def job_for(
    config: Mapping[str, Any],
    store: str,
    sections: Iterable[str] = (),
    *,
    phase: str | None = None,
    cell: Mapping[str, Any] | None = None,
    dataset: str | None = None,
    extra_overrides: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The job configuration of one step: ``store``'s overrides only (editing another
    store reruns nothing), the named ``sections``, the ``phase`` section as ``phase``, the
    ``cell`` and any ``extra`` keys."""
    base = (config.get("overrides") or {}).get(store, {})
    overrides = merge_overrides(base, extra_overrides or {})
    out: dict[str, Any] = {"overrides": {store: overrides} if overrides else {}}
    out |= {s: config[s] for s in sections if s in config}
    if phase is not None:
        out["phase"] = phase_section(config, phase, dataset)
    if cell is not None:
        out["cell"] = dict(cell)
    return out | extra


def job_json(job: Mapping[str, Any]) -> str:
    """The canonical text of a job configuration (what the rules pass with ``--job``)."""
    return json.dumps(job, sort_keys=True)
