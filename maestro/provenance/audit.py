"""Audit one table cell: the files behind it, with recorded and recomputed hashes.

Per seed, the chain is followed through the ``provenance.json`` files: metrics.json ->
fine-tuned model.pt -> probe model.pt -> pretrained model.pt (each job records the sha256
of the model it started from) -> the Zarr store(s) (content hash recorded by every job,
file hashes in the store manifest) -> the raw data (download record with sha256 per file;
demo data: the generator's settings). Every file is also checked against the md5 that
``dvc.lock`` pins for it (through the directory listing in the DVC cache) when the lock
exists. Any difference between a recorded and a recomputed hash is a failure that names the
file; nothing is ever repaired.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from maestro.provenance.dvcio import DvcRecords
from maestro.provenance.record import config_hash, path_hash
from maestro.store.manifest import MANIFEST_NAME, store_hash, verify_manifest

#: Names DVC does not track (.dvcignore): Snakemake markers, resume/partial state.
IGNORED_DIRS = {".work", ".download"}
IGNORED_SUFFIXES = (".part", ".corrupt", ".partial")


@dataclass
class Check:
    """One comparison; ``ok`` is None when nothing recorded could be compared."""

    what: str
    ok: bool | None
    path: str | None = None
    recorded: str | None = None
    found: str | None = None


def compare(what: str, path: str | os.PathLike[str], recorded: Any, found: Any) -> Check:
    """A check that a recomputed value equals the recorded one."""
    rec = None if recorded is None else str(recorded)
    got = None if found is None else str(found)
    return Check(what, rec is not None and rec == got, str(path), rec, got)


@dataclass
class Link:
    """One file (or folder) of the chain."""

    kind: str
    path: str
    info: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)


@dataclass
class Report:
    """The audit of one cell: its table link, one chain per seed, the data links."""

    title: str
    table: Link | None = None
    chains: list[list[Link]] = field(default_factory=list)
    data: list[Link] = field(default_factory=list)

    def links(self) -> list[Link]:
        """Every link, in report order."""
        head = [self.table] if self.table else []
        return head + [ln for chain in self.chains for ln in chain] + self.data

    @property
    def failures(self) -> list[Check]:
        """Checks that found a difference."""
        return [c for ln in self.links() for c in ln.checks if c.ok is False]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "ok": not self.failures, "failures": len(self.failures)}


def ignored(rel: str) -> bool:
    """Whether DVC ignores a path under a tracked folder (see .dvcignore)."""
    return any(
        p in IGNORED_DIRS
        or p.startswith(".snakemake")
        or p.endswith(IGNORED_SUFFIXES)
        or (p.startswith(".") and (".tmp-" in p or ".old-" in p))
        for p in PurePosixPath(rel).parts
    )


class Auditor:
    """Builds the links of a chain, hashing each file once."""

    def __init__(
        self, root: str | os.PathLike[str] = ".", config: dict | None = None, deep: bool = True
    ) -> None:
        self.root = Path(root)
        self.config = config or {}
        self.deep = deep
        self.dvc = DvcRecords(self.root)
        self._hashes: dict[Path, tuple[str, str]] = {}
        self.stores: dict[str, list[tuple[str, str]]] = {}  # path -> [(recorded by, sha256)]

    def abs(self, path: str | os.PathLike[str]) -> Path:
        """A recorded path (relative to the run's working directory) on this machine."""
        p = Path(path)
        return p if p.is_absolute() else self.root / p

    def missing(self, what: str, path: Path) -> Check:
        """A failed check for a file that is not there (with the stage that would restore it)."""
        out = self.dvc.out_of(path) if self.dvc.present else None
        hint = f" (in dvc.lock stage {out.stage}: dvc pull {out.stage})" if out else ""
        return Check(f"{what} missing{hint}", False, str(path))

    def hashes(self, path: Path) -> tuple[str, str]:
        """(sha256, md5) of a file, in one read."""
        if path not in self._hashes:
            sha, md5 = hashlib.sha256(), hashlib.md5()
            with open(path, "rb") as f:
                while block := f.read(1 << 20):
                    sha.update(block)
                    md5.update(block)
            self._hashes[path] = (sha.hexdigest(), md5.hexdigest())
        return self._hashes[path]

    # --- DVC ---------------------------------------------------------------------------
    def dvc_file(self, path: Path) -> list[Check]:
        """The md5 pinned by dvc.lock for one file."""
        if not self.dvc.present:
            return []
        out, md5 = self.dvc.recorded_md5(path)
        if out is None:
            return [Check("dvc.lock: in no stage output", None, str(path))]
        where = f"dvc.lock stage {out.stage}: {out.path} {out.md5}"
        if md5 is None:
            return [Check(f"{where} (listing not in the DVC cache: dvc fetch)", None, str(path))]
        if not path.is_file():
            return [Check(f"{where}: file missing", False, str(path), md5, None)]
        found = self.hashes(path)[1]
        return [Check(f"md5 pinned by {where}", found == md5, str(path), md5, found)]

    def dvc_tree(self, folder: Path) -> list[Check]:
        """Every file under ``folder`` against the listing pinned by dvc.lock."""
        if not self.dvc.present:
            return []
        out = self.dvc.out_of(folder)
        pinned = self.dvc.recorded_tree(folder)
        if out is None or pinned is None:
            what = "in no stage output" if out is None else "listing not in the DVC cache"
            return [Check(f"dvc.lock: {what}", None, str(folder))]
        found = {
            p.relative_to(folder).as_posix(): p
            for p in folder.rglob("*")
            if p.is_file() and not ignored(p.relative_to(folder).as_posix())
        }
        checks = []
        for rel in sorted(set(pinned) | set(found)):
            path = folder / rel
            if rel not in found:
                checks.append(Check("pinned by dvc.lock, missing", False, str(path), pinned[rel]))
            elif rel not in pinned:
                checks.append(Check("not in the dvc.lock listing", False, str(path)))
            elif self.hashes(found[rel])[1] != pinned[rel]:
                got = self.hashes(found[rel])[1]
                checks.append(Check("md5 pinned by dvc.lock", False, str(path), pinned[rel], got))
        n = len(pinned)
        where = f"dvc.lock stage {out.stage}: {out.path} {out.md5}"
        return checks or [Check(f"{n} files match the md5s pinned by {where}", True, str(folder))]

    # --- the chain ---------------------------------------------------------------------
    def chain(self, metrics_path: str | os.PathLike[str]) -> list[Link]:
        """metrics.json, then each model up the ``init`` inputs of the provenance records."""
        metrics = self.abs(metrics_path)
        folder = metrics.parent
        head = Link("metrics", str(metrics))
        if not metrics.is_file():
            head.checks.append(self.missing("metrics file", metrics))
            return [head]
        data = json.loads(metrics.read_text())
        metric = data.get("metric")
        head.info = {
            k: data.get(k) for k in ("dataset", "mode", "seed", "metric", "transfer_from")
        } | {"test": (data.get("test") or {}).get(metric)}
        prov_path = folder / "provenance.json"
        if prov_path.is_file():
            same = json.loads(prov_path.read_text()).get("metrics") == data
            head.checks.append(Check("equals the metrics in provenance.json", same, str(metrics)))
        head.checks += self.dvc_file(metrics)
        links, recorded = [head], None
        while True:
            link, init = self.model(folder, recorded)
            links.append(link)
            if init is None:
                return links
            folder, recorded = self.abs(init["path"]).parent, (link.info["step"], init)

    def model(self, folder: Path, recorded: tuple[str, dict] | None) -> tuple[Link, dict | None]:
        """One model folder: its provenance, its model.pt and the inputs it records."""
        model = folder / "model.pt"
        prov_path = folder / "provenance.json"
        link = Link("model", str(model))
        if not prov_path.is_file():
            link.info["step"] = "?"
            link.checks.append(self.missing("provenance.json", prov_path))
            return link, None
        prov = json.loads(prov_path.read_text())
        cfg = prov.get("config") or {}
        link.kind = prov.get("step", "model")
        link.info = {
            "step": prov.get("step"),
            "dataset": cfg.get("dataset"),
            "seed": cfg.get("seed"),
            "config_hash": prov.get("config_hash"),
            "phase": (cfg.get("job") or {}).get("phase"),
            "cell": (cfg.get("job") or {}).get("cell"),
            "git": prov.get("git"),
            "finished_at": prov.get("finished_at"),
            "device": (prov.get("device") or {}).get("device"),
        }
        ok = config_hash(cfg) == prov.get("config_hash")
        link.checks.append(Check("config_hash of the recorded config", ok, str(prov_path)))
        outputs = prov.get("outputs") or {}
        # a reference row (trivial predictor, linear model) records no model.pt: it has none
        no_model = str(prov.get("step", "")).startswith("reference") and "model.pt" not in outputs
        if model.is_file():
            link.info["sha256"] = self.hashes(model)[0]
        if no_model:
            link.info["sha256"] = "(no model: a reference row)"
        elif not model.is_file():
            link.checks.append(self.missing("model.pt", model))
        else:
            own = outputs.get("model.pt")
            if own is not None:
                what = "sha256 recorded by its own job (outputs)"
                link.checks.append(compare(what, model, own["sha256"], link.info["sha256"]))
        if model.is_file() and recorded is not None:
            by, init = recorded
            what = f"sha256 recorded by the {by} job (inputs.init)"
            link.checks.append(compare(what, model, init["sha256"], link.info["sha256"]))
        link.checks += self.dvc_tree(folder)
        inputs = prov.get("inputs") or {}
        for name, entry in inputs.items():
            if name == "store":
                self.stores.setdefault(entry["path"], []).append((link.kind, entry["sha256"]))
            elif name != "init":
                path = self.abs(entry["path"])
                found = path_hash(path) if path.exists() else None
                what = f"input {name}: sha256 recorded by provenance.json"
                link.checks.append(compare(what, path, entry["sha256"], found))
        return link, inputs.get("init")

    # --- data ----------------------------------------------------------------------------
    def store(self, path: str) -> Link:
        """A Zarr store: the content hash every job recorded, the manifest, dvc.lock."""
        folder = self.abs(path)
        link = Link("store", str(folder))
        if not (folder / MANIFEST_NAME).is_file():
            link.checks.append(self.missing("store manifest", folder / MANIFEST_NAME))
            return link
        content = store_hash(folder)
        link.info = {"content_hash": content}
        for by, sha in self.stores.get(path, []):
            link.checks.append(
                compare(f"content hash recorded by the {by} job", folder, sha, content)
            )
        if self.deep:
            problems = verify_manifest(folder)
            n = len(json.loads((folder / MANIFEST_NAME).read_text())["files"])
            link.checks += [Check(f"manifest: {p}", False, str(folder)) for p in problems] or [
                Check(f"{n} files re-hashed, all match {MANIFEST_NAME}", True, str(folder))
            ]
        link.checks += self.dvc_file(folder / MANIFEST_NAME)
        return link

    def raw(self, store: str) -> Link:
        """The raw data a store was converted from (the config says which source kind)."""
        src = (self.config.get("sources") or {}).get(store) or {}
        kind = src.get("kind")
        record = self.root / "data" / "raw" / store / "download_manifest.json"
        demo = self.root / "data" / "raw" / "demo" / store
        if kind == "download" or (kind is None and record.is_file()):
            return self.download(record)
        if kind == "demo" or (kind is None and demo.is_dir()):
            link = Link("raw (demo)", str(demo), {"generator": src.get("demo")})
            if not demo.is_dir():
                link.checks.append(Check("demo data not present (dvc pull raw)", None, str(demo)))
                return link
            link.info["sha256"] = path_hash(demo) if self.deep else None
            tree = self.dvc_tree(demo) if self.deep else []
            none = Check("no recorded hash: maestro generate-demo is deterministic", None)
            link.checks += tree or [none]
            return link
        where = self.abs(src["root"]) if src.get("root") else Path("?")
        if (where / "download_manifest.json").is_file():  # a root made by maestro download
            return self.download(where / "download_manifest.json")
        check = Check("no download record in the source root: not verified", None, str(where))
        return Link("raw", str(where), {"kind": kind}, [check])

    def download(self, record: Path) -> Link:
        """A download record: every plain file's sha256; archives as recorded."""
        link = Link("raw (download record)", str(record))
        if not record.is_file():
            link.checks.append(self.missing("download record", record))
            return link
        data = json.loads(record.read_text())
        files = data.get("files") or {}
        link.info = {"manifest": data.get("manifest"), "files": len(files)}
        for target, entry in sorted(files.items()):
            path = record.parent / target
            if "extracted" in entry:
                n = (entry.get("extracted") or {}).get("files")
                what = f"archive sha256 verified at download, {n} files extracted"
                link.checks.append(Check(what, None, str(path), entry.get("sha256")))
            elif not path.is_file():
                link.checks.append(self.missing("recorded file", path))
            elif self.deep:
                found = self.hashes(path)[0]
                what = "sha256 in the download record"
                link.checks.append(compare(what, path, entry.get("sha256"), found))
        link.checks += self.dvc_tree(record.parent) if self.deep else self.dvc_file(record)
        return link

    def data_links(self) -> list[Link]:
        """Each store met in the chains, then its raw data."""
        out = []
        for path in self.stores:
            out += [self.store(path), self.raw(Path(path).name.removesuffix(".zarr"))]
        return out
