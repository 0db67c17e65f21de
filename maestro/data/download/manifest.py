"""Download manifests: which files of which Hugging Face repositories make up a dataset root.

A manifest is YAML data (``config/manifests/<store>.yaml``)::

    name: treesatai_ts
    description: free text
    sources:
      - repo: IGNF/TreeSatAI-Time-Series
        repo_type: dataset              # dataset | model
        revision: main                  # a commit sha once pinned
        ref: main                       # the branch a pinned revision was resolved from
        licence: Apache-2.0             # optional: the licence of the files taken
        files:
          - {path: aerial.zip, sha256: null, size: null, extract: true, target: aerial}
        include:                        # globs over the repository tree, expanded by `pin`
          - {glob: "dataset_splits/TreeSatAI-TS/*.csv", target: "{name}"}

A file's ``target`` is its path under the dataset root (default: its repository path; for an
extracted archive: the folder it unpacks into, default the path without ``.zip``). Include
rules may set ``target`` as a template over ``{path}``, ``{name}`` and ``{stem}``. ``pin``
expands the rules into files marked ``from_include: true`` and records the revision it
expanded them at (``expanded_at``); a rule not yet expanded at the current revision is
"pending" and makes the manifest unpinned.

Globs (:mod:`.globs`): ``*`` and ``?`` stay inside one path component, ``**`` spans
components, ``[...]`` is a character class.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from maestro.data.download.errors import ManifestError
from maestro.data.download.globs import glob_regex
from maestro.utils.atomic import write_text

RepoType = Literal["dataset", "model"]
STATE_DIR = ".download"  # downloader state under the dataset root (sidecars, archives)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_TEMPLATE_KEYS = {"path", "name", "stem"}


def is_commit(revision: str) -> bool:
    """Whether ``revision`` is a full 40-hex git commit sha (and not a branch or tag)."""
    return bool(_COMMIT.match(revision))


def _check_target(target: str, where: str) -> str:
    norm = posixpath.normpath(target.replace("\\", "/"))
    parts = norm.split("/")
    if norm.startswith("/") or norm in (".", "") or ".." in parts:
        raise ManifestError(
            where, f"target must be a relative path inside the root, got {target!r}"
        )
    if parts[0] == STATE_DIR:
        raise ManifestError(where, f"target {target!r} is inside the downloader's {STATE_DIR}/")
    return norm


def _stem(name: str) -> str:
    return name[: -len(".zip")] if name.lower().endswith(".zip") else name


@dataclass(frozen=True)
class FileEntry:
    """One repository file: where it goes, and the hash and size it must have."""

    path: str
    sha256: str | None = None
    size: int | None = None
    extract: bool = False
    target: str | None = None
    flatten: int = 1  # wrapping single top-level folders stripped on extraction (at most)
    from_include: bool = False

    @property
    def dest(self) -> str:
        """The target path under the dataset root (a folder for extracted archives)."""
        if self.target is not None:
            return self.target
        return _stem(self.path) if self.extract else self.path

    @property
    def pinned(self) -> bool:
        """Whether the file has a known sha256."""
        return self.sha256 is not None


@dataclass(frozen=True)
class IncludeRule:
    """A glob over the repository tree; matched files inherit ``extract/target/flatten``."""

    glob: str
    extract: bool = False
    target: str | None = None  # template over {path} {name} {stem}
    flatten: int = 1

    def matches(self, path: str) -> bool:
        """Whether a repository path matches the rule's glob."""
        return bool(glob_regex(self.glob).match(path))

    def entry(self, path: str, sha256: str | None, size: int | None) -> FileEntry:
        """The file entry this rule makes of a matching repository path."""
        name = posixpath.basename(path)
        target = None
        if self.target is not None:
            target = self.target.format(path=path, name=name, stem=_stem(name))
            target = _check_target(target, f"include {self.glob!r}")
        return FileEntry(path, sha256, size, self.extract, target, self.flatten, True)


@dataclass(frozen=True)
class Source:
    """One repository at one revision, and the files taken from it."""

    repo: str
    repo_type: RepoType = "dataset"
    revision: str = "main"
    files: tuple[FileEntry, ...] = ()
    include: tuple[IncludeRule, ...] = ()
    ref: str | None = None
    expanded_at: str | None = None
    note: str | None = None
    licence: str | None = None  # of the files taken (model weights carry one each)

    @property
    def include_pending(self) -> bool:
        """Include rules that ``pin`` has not expanded at the current revision."""
        return bool(self.include) and self.expanded_at != self.revision


@dataclass(frozen=True)
class Manifest:
    """A dataset's download manifest (see the module docstring)."""

    name: str
    sources: tuple[Source, ...]
    description: str | None = None
    origin: str = "<manifest>"

    def unpinned(self) -> list[str]:
        """Human-readable list of what is not pinned (files without sha256, pending rules)."""
        out = []
        for s in self.sources:
            out += [f"{s.repo}: include {r.glob!r}" for r in s.include if s.include_pending]
            out += [f"{s.repo}: {f.path}" for f in s.files if not f.pinned]
        return out


# --- parsing -----------------------------------------------------------------------------


def _keys(d: Any, allowed: set[str], required: set[str], where: str) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise ManifestError(where, f"expected a mapping, found {type(d).__name__}")
    unknown = set(d) - allowed
    if unknown:
        raise ManifestError(where, f"unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    missing = required - set(d)
    if missing:
        raise ManifestError(where, f"missing key(s) {sorted(missing)}")
    return d


def _opt(d: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = d.get(key)
    if value is not None and (
        not isinstance(value, kind) or isinstance(value, bool) != (kind is bool)
    ):
        name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ManifestError(where, f"{key} must be {name} or null, found {value!r}")
    return value


def _flatten(d: Mapping[str, Any], where: str) -> int:
    value = _opt(d, "flatten", int, where)
    if value is None:
        return 1
    if value < 0:
        raise ManifestError(where, f"flatten must be >= 0, found {value}")
    return value


def _file(d: Any, where: str) -> FileEntry:
    keys = {"path", "sha256", "size", "extract", "target", "flatten", "from_include"}
    d = _keys(d, keys, {"path"}, where)
    path = _opt(d, "path", str, where)
    if not path or path.startswith("/"):
        raise ManifestError(where, f"path must be a relative repository path, found {path!r}")
    sha = _opt(d, "sha256", str, where)
    if sha is not None:
        sha = sha.lower()
        if not _SHA256.match(sha):
            raise ManifestError(where, f"sha256 must be 64 hex digits or null, found {sha!r}")
    size = _opt(d, "size", int, where)
    if size is not None and size < 0:
        raise ManifestError(where, f"size must be >= 0, found {size}")
    target = _opt(d, "target", str, where)
    return FileEntry(
        path=path,
        sha256=sha,
        size=size,
        extract=bool(_opt(d, "extract", bool, where)),
        target=None if target is None else _check_target(target, where),
        flatten=_flatten(d, where),
        from_include=bool(_opt(d, "from_include", bool, where)),
    )


def _rule(d: Any, where: str) -> IncludeRule:
    if isinstance(d, str):
        d = {"glob": d}
    d = _keys(d, {"glob", "extract", "target", "flatten"}, {"glob"}, where)
    glob = _opt(d, "glob", str, where)
    target = _opt(d, "target", str, where)
    if target is not None:
        fields = set(re.findall(r"{(\w*)}", target))
        if not fields <= _TEMPLATE_KEYS:
            raise ManifestError(
                where,
                f"target template {target!r} uses {sorted(fields - _TEMPLATE_KEYS)}; "
                f"allowed: {sorted(_TEMPLATE_KEYS)}",
            )
    return IncludeRule(glob, bool(_opt(d, "extract", bool, where)), target, _flatten(d, where))


def _source(d: Any, where: str) -> Source:
    keys = {"repo", "repo_type", "revision", "ref", "expanded_at", "note", "licence", "files",
            "include"}  # fmt: skip
    d = _keys(d, keys, {"repo", "revision"}, where)
    repo = _opt(d, "repo", str, where)
    if not repo or not _REPO.match(repo):
        raise ManifestError(where, f"repo must look like 'owner/name', found {repo!r}")
    repo_type = d.get("repo_type", "dataset")
    if repo_type not in ("dataset", "model"):
        raise ManifestError(where, f"repo_type must be 'dataset' or 'model', found {repo_type!r}")
    revision = _opt(d, "revision", str, where)
    if not revision:
        raise ManifestError(where, "revision must be a branch, tag or commit sha")
    files = d.get("files") or []
    rules = d.get("include") or []
    for key, value in (("files", files), ("include", rules)):
        if not isinstance(value, list):
            raise ManifestError(where, f"{key} must be a list, found {type(value).__name__}")
    if not files and not rules:
        raise ManifestError(where, "a source needs at least one entry in files or include")
    return Source(
        repo=repo,
        repo_type=repo_type,
        revision=revision,
        files=tuple(_file(f, f"{where}.files[{i}]") for i, f in enumerate(files)),
        include=tuple(_rule(r, f"{where}.include[{i}]") for i, r in enumerate(rules)),
        ref=_opt(d, "ref", str, where),
        expanded_at=_opt(d, "expanded_at", str, where),
        note=_opt(d, "note", str, where),
        licence=_opt(d, "licence", str, where),
    )


def check_targets(entries: Iterable[tuple[str, FileEntry]], where: str) -> None:
    """Refuse two files with one target, and a target inside an extracted folder."""
    seen: dict[str, str] = {}
    folders: dict[str, str] = {}
    for repo, e in entries:
        label = f"{repo}:{e.path}"
        if e.dest in seen:
            raise ManifestError(where, f"{label} and {seen[e.dest]} both target {e.dest!r}")
        seen[e.dest] = label
        if e.extract:
            folders[e.dest] = label
    for dest, label in seen.items():
        for folder, owner in folders.items():
            if dest != folder and (dest + "/").startswith(folder + "/"):
                raise ManifestError(
                    where, f"{label} targets {dest!r}, inside {folder!r} extracted from {owner}"
                )


def parse_manifest(data: Any, origin: str = "<manifest>") -> Manifest:
    """Validate manifest data (as loaded from YAML); errors name ``origin`` and the key."""
    d = _keys(data, {"name", "description", "sources"}, {"name", "sources"}, origin)
    if not isinstance(d["sources"], list) or not d["sources"]:
        raise ManifestError(origin, "sources must be a non-empty list")
    sources = tuple(_source(s, f"{origin}: sources[{i}]") for i, s in enumerate(d["sources"]))
    check_targets(((s.repo, f) for s in sources for f in s.files), origin)
    return Manifest(str(d["name"]), sources, d.get("description"), origin)


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest YAML file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as err:
        raise ManifestError(str(path), "manifest file not found") from err
    except yaml.YAMLError as err:
        raise ManifestError(str(path), f"not valid YAML ({err})") from err
    return parse_manifest(data, str(path))


# --- writing -----------------------------------------------------------------------------


def _file_dict(f: FileEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"path": f.path, "sha256": f.sha256, "size": f.size}
    if f.extract:
        out["extract"] = True
    if f.target is not None and f.target != replace(f, target=None).dest:
        out["target"] = f.target
    if f.extract and f.flatten != 1:
        out["flatten"] = f.flatten
    if f.from_include:
        out["from_include"] = True
    return out


def _rule_dict(r: IncludeRule) -> str | dict[str, Any]:
    if not r.extract and r.target is None and r.flatten == 1:
        return r.glob
    out: dict[str, Any] = {"glob": r.glob}
    if r.extract:
        out["extract"] = True
        if r.flatten != 1:
            out["flatten"] = r.flatten
    if r.target is not None:
        out["target"] = r.target
    return out


def manifest_dict(m: Manifest) -> dict[str, Any]:
    """The manifest as plain data, in the key order of the files in config/manifests/."""
    sources = []
    for s in m.sources:
        d: dict[str, Any] = {"repo": s.repo, "repo_type": s.repo_type, "revision": s.revision}
        for key in ("ref", "expanded_at", "note", "licence"):
            if getattr(s, key) is not None:
                d[key] = getattr(s, key)
        if s.include:
            d["include"] = [_rule_dict(r) for r in s.include]
        if s.files or not s.include:
            d["files"] = [_file_dict(f) for f in s.files]
        sources.append(d)
    out: dict[str, Any] = {"name": m.name}
    if m.description:
        out["description"] = m.description
    out["sources"] = sources
    return out


class _Dumper(yaml.SafeDumper):
    """Safe YAML with multi-line strings as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_manifest(m: Manifest, path: str | Path, header: str = "") -> None:
    """Write a manifest as YAML atomically (one flow-style line per file entry)."""
    text = yaml.dump(
        manifest_dict(m),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=None,
        width=4096,
        allow_unicode=True,
    )
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    write_text(path, "\n".join([*lines, text]) if lines else text)
