"""Zip extraction, pinning against a fake Hub API, manifest validation, the shipped manifests
and the command line."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
import yaml

from maestro.data.download.cli import main
from maestro.data.download.errors import DownloadError, ExtractError, ManifestError
from maestro.data.download.extract import extract_zip
from maestro.data.download.fetch import RECORD, download
from maestro.data.download.globs import glob_base, glob_regex
from maestro.data.download.manifest import load_manifest, parse_manifest
from maestro.data.download.pin import pin, pin_manifest_file
from tests.data.http_server import (
    FakeHub,
    client_for,
    local_only,  # noqa: F401 (autouse fixture)
    sha,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def make_zip(members: dict[str, bytes], stored: bool = False) -> bytes:
    buf = io.BytesIO()
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


WRAPPED = make_zip({"aerial/": b"", "aerial/x.tif": b"xx" * 500, "aerial/sub/y.tif": b"yy"})


def zip_manifest(data: bytes, **entry: object):
    file = {"path": "aerial.zip", "sha256": sha(data), "size": len(data), "extract": True}
    return parse_manifest(
        {
            "name": "z",
            "sources": [{"repo": "o/r", "revision": "main", "files": [{**file, **entry}]}],
        },
        "z.yaml",
    )


def test_zip_is_extracted_flattened_and_skipped_on_rerun(tmp_path):
    with FakeHub() as hub:
        hub.add_repo("o/r", {"aerial.zip": WRAPPED})
        download(zip_manifest(WRAPPED), tmp_path, client=client_for(hub))
        assert (tmp_path / "aerial/x.tif").read_bytes() == b"xx" * 500
        assert (tmp_path / "aerial/sub/y.tif").read_bytes() == b"yy"
        assert not (tmp_path / ".download/archives/aerial.zip").exists()  # deleted once done
        marker = json.loads((tmp_path / ".download/extracted/aerial.json").read_text())
        assert marker["sha256"] == sha(WRAPPED)
        entry = json.loads((tmp_path / RECORD).read_text())["files"]["aerial"]
        assert entry["extracted"] == {"files": 2, "bytes": 1002, "stripped": "aerial"}
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".aerial")] == []
        hub.requests.clear()
        report = download(zip_manifest(WRAPPED), tmp_path, client=client_for(hub))
        assert hub.requests == [] and report.kept == ["aerial"]
        download(zip_manifest(WRAPPED), tmp_path / "k", client=client_for(hub), keep_archives=True)
        kept = tmp_path / "k/.download/archives/aerial.zip"
        assert kept.read_bytes() == WRAPPED


def test_flattening_rules(tmp_path):
    cases = {
        "flat": ({"a.tif": b"1", "b.tif": b"2"}, 1, {"a.tif", "b.tif"}, ""),
        "two": ({"aerial/60m/a.tif": b"1", "__MACOSX/._a": b"!"}, 2, {"a.tif"}, "aerial/60m"),
        "one": ({"aerial/60m/a.tif": b"1"}, 1, {"60m/a.tif"}, "aerial"),
        "mixed": ({"w/a.tif": b"1", "top.txt": b"2"}, 1, {"w/a.tif", "top.txt"}, ""),
        "none": ({"w/a.tif": b"1"}, 0, {"w/a.tif"}, ""),
    }
    for name, (members, flatten, expected, stripped) in cases.items():
        archive = tmp_path / f"{name}.zip"
        archive.write_bytes(make_zip(members))
        info = extract_zip(archive, tmp_path / name, flatten=flatten)
        files = {p.relative_to(tmp_path / name).as_posix() for p in (tmp_path / name).rglob("*")}
        assert {f for f in files if (tmp_path / name / f).is_file()} == expected, name
        assert info.stripped == stripped, name


def test_a_failed_extraction_leaves_nothing_half_extracted(tmp_path):
    good = make_zip({"w/a.tif": b"A" * 100, "w/b.tif": b"B" * 100}, stored=True)
    bad = bytearray(good)
    bad[bad.index(b"B" * 100)] = ord("C")  # CRC of w/b.tif no longer matches
    target = tmp_path / "folder"
    target.mkdir()
    (target / "previous.tif").write_bytes(b"old")
    archive = tmp_path / "bad.zip"
    archive.write_bytes(bytes(bad))
    with pytest.raises(ExtractError, match=r"bad\.zip: not a readable zip archive .*CRC"):
        extract_zip(archive, target)
    assert [p.name for p in target.iterdir()] == ["previous.tif"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.zip", "folder"]
    evil = tmp_path / "evil.zip"
    evil.write_bytes(make_zip({"../escape.txt": b"x"}))
    with pytest.raises(ExtractError, match="escapes the target folder"):
        extract_zip(evil, tmp_path / "e")
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "e").exists()


def test_a_corrupt_archive_is_kept_for_the_next_run(tmp_path):
    bad = bytearray(make_zip({"w/a.tif": b"A" * 100}, stored=True))
    bad[bad.index(b"A" * 100)] = ord("Z")
    with FakeHub() as hub:
        hub.add_repo("o/r", {"aerial.zip": bytes(bad)})
        with pytest.raises(ExtractError):
            download(zip_manifest(bytes(bad)), tmp_path, client=client_for(hub))
    assert (tmp_path / ".download/archives/aerial.zip").read_bytes() == bytes(bad)
    assert not (tmp_path / "aerial").exists()
    assert not (tmp_path / ".download/extracted/aerial.json").exists()


# --- pin -------------------------------------------------------------------------------------

DATA = {
    "data/D001-2020_AERIAL_RGBI.zip": make_zip({"D001-2020_AERIAL_RGBI/R1/a.tif": b"a"}),
    "data/D002-2021_AERIAL_RGBI.zip": make_zip({"D002-2021_AERIAL_RGBI/R2/b.tif": b"b"}),
    "data/D001-2020_SPOT_RGBI.zip": make_zip({"s.tif": b"s"}),
    "data/GLOBAL_ALL_MTD.zip": make_zip({"GLOBAL_ALL_MTD/x.gpkg": b"g"}),
    "NORM_S2_patch.json": b'{"Fold_1": {}}',
    "DATA_SPOT/SUB/SPOT_1.tif": b"spot",
}
CSVS = {"dataset_splits/X/train.csv": b"id\n1\n", "dataset_splits/X/test.csv": b"id\n2\n"}


def unpinned(tmp_path: Path) -> Path:
    data = {
        "name": "p",
        "sources": [
            {
                "repo": "IGNF/Hub",
                "revision": "main",
                "include": [
                    {"glob": "data/*_AERIAL_RGBI.zip", "extract": True, "target": "{stem}"},
                    "DATA_SPOT/**/*.tif",
                    "NORM_*.json",
                ],
                "files": [
                    {"path": "data/GLOBAL_ALL_MTD.zip", "extract": True, "target": "GLOBAL_ALL_MTD"}
                ],
            },
            {
                "repo": "IGNF/Model",
                "repo_type": "model",
                "revision": "main",
                "include": [{"glob": "dataset_splits/X/*.csv", "target": "{name}"}],
            },
        ],
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def api_hub():
    with FakeHub(page_size=2) as hub:
        hub.add_repo("IGNF/Hub", DATA, lfs={p for p in DATA if p.endswith(".zip")})
        hub.add_repo("IGNF/Model", CSVS, repo_type="model", lfs=set())
        yield hub


def test_pin_resolves_revisions_expands_globs_and_fills_hashes(api_hub, tmp_path):
    out = tmp_path / "pinned.yaml"
    pin_manifest_file(unpinned(tmp_path), out, client=client_for(api_hub))
    m = load_manifest(out)
    hub_src, model_src = m.sources
    assert hub_src.revision == api_hub.repos[("dataset", "IGNF/Hub")].sha
    assert (hub_src.ref, hub_src.expanded_at) == ("main", hub_src.revision)
    files = {f.path: f for f in hub_src.files}
    assert sorted(files) == [
        "DATA_SPOT/SUB/SPOT_1.tif",
        "NORM_S2_patch.json",
        "data/D001-2020_AERIAL_RGBI.zip",
        "data/D002-2021_AERIAL_RGBI.zip",
        "data/GLOBAL_ALL_MTD.zip",
    ]
    for path, f in files.items():
        assert (f.sha256, f.size) == (sha(DATA[path]), len(DATA[path])), path
    assert files["data/D002-2021_AERIAL_RGBI.zip"].dest == "D002-2021_AERIAL_RGBI"
    assert files["data/D002-2021_AERIAL_RGBI.zip"].from_include
    assert not files["data/GLOBAL_ALL_MTD.zip"].from_include
    assert {f.dest: f.sha256 for f in model_src.files} == {
        "test.csv": sha(CSVS["dataset_splits/X/test.csv"]),
        "train.csv": sha(CSVS["dataset_splits/X/train.csv"]),
    }
    tree = [r for r in api_hub.requests if "/tree/" in r.path]
    assert any("cursor" in r.query for r in tree)  # paginated listings were followed
    assert any(r.query.get("recursive") == ["true"] for r in tree)
    api_hub.requests.clear()
    download(m, tmp_path / "root", client=client_for(api_hub))  # pinned: no API calls
    assert not [r for r in api_hub.requests if r.path.startswith("/api/")]
    assert (tmp_path / "root/D001-2020_AERIAL_RGBI/R1/a.tif").read_bytes() == b"a"
    assert (tmp_path / "root/GLOBAL_ALL_MTD/x.gpkg").read_bytes() == b"g"
    assert (tmp_path / "root/train.csv").read_bytes() == b"id\n1\n"
    record = json.loads((tmp_path / "root" / RECORD).read_text())["files"]
    assert all(e["pinned"] for e in record.values()) and len(record) == 7


def test_pin_refuses_a_changed_hash_unless_updating(api_hub, tmp_path):
    path = unpinned(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["sources"][0]["files"][0]["sha256"] = "0" * 64
    path.write_text(yaml.safe_dump(data))
    m = load_manifest(path)
    with pytest.raises(DownloadError, match=r"manifest pins sha256 0{64}, the Hub has"):
        pin(m, client_for(api_hub))
    pinned = pin(m, client_for(api_hub), update=True)
    assert pinned.sources[0].files[0].sha256 == sha(DATA["data/GLOBAL_ALL_MTD.zip"])
    data["sources"][0]["include"].append("nothing/*.zip")
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(DownloadError, match=r"include 'nothing/\*.zip' matched no file"):
        pin(load_manifest(path), client_for(api_hub), update=True)


def test_allow_unpinned_expands_globs_with_the_api_hashes(api_hub, tmp_path):
    download(
        load_manifest(unpinned(tmp_path)),
        tmp_path / "r",
        client=client_for(api_hub),
        allow_unpinned=True,
    )
    record = json.loads((tmp_path / "r" / RECORD).read_text())["files"]
    assert record["D001-2020_AERIAL_RGBI"]["check"] == "api"  # LFS sha256 from the listing
    assert record["train.csv"]["check"] == "tofu"  # git file: hash computed, not checked
    assert record["GLOBAL_ALL_MTD"]["check"] == "tofu"


# --- manifests -------------------------------------------------------------------------------


def test_glob_semantics():
    assert glob_regex("data/*_DEM_ELEV.zip").match("data/D004-2021_DEM_ELEV.zip")
    assert not glob_regex("*.csv").match("sub/a.csv")
    assert glob_regex("DATA_SPOT/**/*.tif").match("DATA_SPOT/A/B/x.tif")
    assert glob_regex("DATA_SPOT/**/*.tif").match("DATA_SPOT/x.tif")
    assert glob_regex("S[12]_?.npy").match("S2_7.npy")
    assert glob_base("DATA_SPOT/**/*.tif") == ("DATA_SPOT", True)
    assert glob_base("dataset_splits/X/*.csv") == ("dataset_splits/X", False)
    assert glob_base("*.csv") == ("", False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": 1}, r"sources\[0\]: unknown key\(s\) \['colour'\]"),
        ({"files": [{"path": "a", "sha256": "xyz"}]}, "sha256 must be 64 hex digits"),
        ({"files": [{"path": "a", "target": "../a"}]}, "relative path inside the root"),
        ({"files": [{"path": "a", "size": True}]}, "size must be int"),
        ({"repo_type": "space"}, "repo_type must be 'dataset' or 'model'"),
        ({"files": [{"path": "a"}, {"path": "b", "target": "a"}]}, "both target 'a'"),
        ({"files": [{"path": "z.zip", "extract": True}, {"path": "z/in"}]}, "inside 'z'"),
        ({"include": [{"glob": "*", "target": "{nope}"}]}, r"uses \['nope'\]"),
    ],
)
def test_bad_manifests_are_refused_with_the_place(change, message):
    source = {"repo": "o/r", "revision": "main", "files": [{"path": "a"}], **change}
    with pytest.raises(ManifestError, match=f"^bad.yaml: .*{message}"):
        parse_manifest({"name": "x", "sources": [source]}, "bad.yaml")


def test_shipped_manifests_carry_the_published_pins():
    found = {p.stem: load_manifest(p) for p in (REPO_ROOT / "config/manifests").glob("*.yaml")}
    assert sorted(found) == ["flair_hub", "pastis_hd", "s2_naip", "treesatai_ts"]
    flair = found["flair_hub"].sources[0]
    assert flair.revision == "e8ed7981d488508aa70bb05c37cf6585432b7d5f"
    pins = {f.path: (f.sha256, f.size) for m in found.values() for s in m.sources for f in s.files}
    assert pins["data/D004-2021_SENTINEL1-DESC_TS.zip"] == (
        "6db928333346cc93235dde582b03d7dc7a385326f66966739623c5f58fbe8f82",
        205_631_504,
    )
    assert pins["metadata.geojson"][0].startswith("be94205b")
    for m in found.values():
        splits = [s for s in m.sources if s.repo == "IGNF/MAESTRO_FLAIR-HUB_base"]
        assert splits and splits[0].repo_type == "model"
        assert splits[0].include[0].target == "{name}"  # split CSVs land in the root
    modalities = {r.glob.split("_", 1)[1] for r in flair.include}
    assert modalities == {
        "AERIAL_RGBI.zip", "DEM_ELEV.zip", "SENTINEL2_TS.zip", "SENTINEL2_MSK-SC.zip",
        "SENTINEL1-ASC_TS.zip", "SENTINEL1-DESC_TS.zip", "AERIAL_LABEL-COSIA.zip",
    }  # fmt: skip


# --- command line ----------------------------------------------------------------------------


def test_cli_pins_then_downloads_from_hf_endpoint(api_hub, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_ENDPOINT", api_hub.url)
    path = unpinned(tmp_path)
    root = tmp_path / "root"
    args = ["download", "--manifest", str(path), "--out", str(root), "--no-progress"]
    assert main(args) == 2
    assert re.search(
        f"download: {re.escape(str(path))}: not pinned .*pin-manifest", capsys.readouterr().err
    )
    assert main(["pin-manifest", "--manifest", str(path)]) == 0
    assert main([*args, "--jobs", "2"]) == 0
    got = hashlib.sha256((root / "NORM_S2_patch.json").read_bytes()).hexdigest()
    assert got == sha(DATA["NORM_S2_patch.json"])
    assert main(["download", "--manifest", str(tmp_path / "none.yaml"), "--out", "x"]) == 2
    assert "none.yaml: manifest file not found" in capsys.readouterr().err
