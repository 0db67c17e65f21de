"""Downloads against a fake Hub on 127.0.0.1: verification, resume, retries, errors, record."""

from __future__ import annotations

import errno
import json
import random
from pathlib import Path

import pytest

from maestro.data.download import transfer
from maestro.data.download.errors import (
    AuthError,
    ChecksumError,
    DiskFullError,
    NotFoundError,
    SizeAnnouncedError,
    TransferError,
    UnpinnedError,
)
from maestro.data.download.fetch import PARTIAL_RECORD, RECORD, download
from maestro.data.download.manifest import parse_manifest
from tests.data.http_server import (
    FakeHub,
    Fault,
    client_for,
    local_only,  # noqa: F401 (autouse fixture)
    sha,
)

REPO = "IGNF/Fake-Dataset"
MODEL = "IGNF/FAKE_model"


def blob(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


FILES = {
    "a.bin": blob(1, 300_000),
    "sub/b.bin": blob(2, 2_500_000),
    "metadata.geojson": b'{"type": "FeatureCollection", "features": []}\n',
}
SPLITS = {"dataset_splits/Fake/train.csv": b"name\nx\ny\n"}


@pytest.fixture
def hub() -> FakeHub:
    with FakeHub() as h:
        h.add_repo(REPO, FILES)
        h.add_repo(MODEL, SPLITS, repo_type="model", lfs=set())
        yield h


def manifest_for(files: dict[str, bytes], *, pinned: bool = True, **entry: object):
    return parse_manifest(
        {
            "name": "fake",
            "sources": [
                {
                    "repo": REPO,
                    "revision": "main",
                    "files": [
                        {"path": p, "sha256": sha(d) if pinned else None, "size": len(d), **entry}
                        for p, d in files.items()
                    ],
                },
                {
                    "repo": MODEL,
                    "repo_type": "model",
                    "revision": "main",
                    "files": [
                        {"path": p, "sha256": sha(d), "size": len(d), "target": p.rsplit("/")[-1]}
                        for p, d in SPLITS.items()
                    ],
                },
            ],
        },
        "fake.yaml",
    )


def test_full_download_checks_bytes_and_writes_the_record(hub: FakeHub, tmp_path: Path):
    report = download(manifest_for(FILES), tmp_path, client=client_for(hub), jobs=2)
    for path, data in FILES.items():
        assert (tmp_path / path).read_bytes() == data
    assert (tmp_path / "train.csv").read_bytes() == SPLITS["dataset_splits/Fake/train.csv"]
    assert sorted(report.downloaded) == sorted([*FILES, "train.csv"])
    assert report.bytes == sum(map(len, FILES.values())) + len(
        SPLITS["dataset_splits/Fake/train.csv"]
    )
    assert not list(tmp_path.rglob("*.part")) and not list(tmp_path.rglob("*.corrupt"))
    record = json.loads((tmp_path / RECORD).read_text())
    entry = record["files"]["sub/b.bin"]
    assert entry["url"] == f"{hub.url}/datasets/{REPO}/resolve/main/sub/b.bin"
    assert (entry["repo"], entry["revision"], entry["path"]) == (REPO, "main", "sub/b.bin")
    assert (entry["sha256"], entry["size"]) == (sha(FILES["sub/b.bin"]), 2_500_000)
    assert entry["pinned"] is True and entry["check"] == "pinned" and entry["time"]
    split = record["files"]["train.csv"]
    assert split["url"] == f"{hub.url}/{MODEL}/resolve/main/dataset_splits/Fake/train.csv"


def test_rerun_downloads_nothing_and_hashes_nothing(hub, tmp_path, monkeypatch):
    download(manifest_for(FILES), tmp_path, client=client_for(hub))
    hub.requests.clear()

    def no_hashing(path: Path) -> str:
        raise AssertionError(f"{path} re-hashed")

    monkeypatch.setattr("maestro.data.download.fetch.sha256_file", no_hashing)
    report = download(manifest_for(FILES), tmp_path, client=client_for(hub))
    assert hub.requests == []
    assert report.downloaded == [] and len(report.kept) == 4


def test_a_modified_file_is_downloaded_again(hub, tmp_path):
    download(manifest_for(FILES), tmp_path, client=client_for(hub))
    (tmp_path / "a.bin").write_bytes(blob(9, 300_000))
    hub.requests.clear()
    report = download(manifest_for(FILES), tmp_path, client=client_for(hub))
    assert report.downloaded == ["a.bin"]
    assert (tmp_path / "a.bin").read_bytes() == FILES["a.bin"]
    assert [r.path for r in hub.requests] == [f"/datasets/{REPO}/resolve/main/a.bin"]


def test_a_cut_transfer_resumes_with_a_range_request(hub, tmp_path):
    hub.faults["sub/b.bin"] = Fault(cut_after=700_000)
    sleeps: list[float] = []
    download(manifest_for(FILES), tmp_path, client=client_for(hub, sleeps))
    reqs = hub.requests_for("/sub/b.bin")
    assert len(reqs) == 2
    assert "range" not in reqs[0].headers
    assert reqs[1].headers["range"] == "bytes=700000-"
    assert (tmp_path / "sub/b.bin").read_bytes() == FILES["sub/b.bin"]
    assert sleeps == [0.5]


def test_keyboard_interrupt_keeps_the_part_file_and_a_rerun_resumes(hub, tmp_path, monkeypatch):
    calls = []
    original = transfer.write_chunk

    def interrupted(f, data):
        calls.append(len(data))
        if len(calls) == 2:
            raise KeyboardInterrupt
        original(f, data)

    monkeypatch.setattr(transfer, "write_chunk", interrupted)
    one = {"sub/b.bin": FILES["sub/b.bin"]}
    with pytest.raises(KeyboardInterrupt):
        download(manifest_for(one), tmp_path, client=client_for(hub))
    part = tmp_path / "sub/b.bin.part"
    assert part.read_bytes() == FILES["sub/b.bin"][: calls[0]]
    assert not (tmp_path / "sub/b.bin").exists()
    monkeypatch.setattr(transfer, "write_chunk", original)
    hub.requests.clear()
    download(manifest_for(one), tmp_path, client=client_for(hub))
    assert hub.requests_for("/sub/b.bin")[0].headers["range"] == f"bytes={calls[0]}-"
    assert (tmp_path / "sub/b.bin").read_bytes() == FILES["sub/b.bin"]
    assert not part.exists()


def test_a_server_ignoring_range_restarts_from_zero(hub, tmp_path):
    data = FILES["a.bin"]
    (tmp_path / "a.bin.part").write_bytes(data[:1000])
    hub.faults["a.bin"] = Fault(ignore_range=True)
    download(manifest_for({"a.bin": data}), tmp_path, client=client_for(hub))
    assert hub.requests_for("/a.bin")[0].headers["range"] == "bytes=1000-"
    assert (tmp_path / "a.bin").read_bytes() == data


def test_corrupt_bytes_are_moved_aside_and_never_reused(hub, tmp_path):
    data, bad = FILES["a.bin"], blob(5, 300_000)
    hub.faults["a.bin"] = Fault(body=bad)
    with pytest.raises(ChecksumError) as err:
        download(manifest_for({"a.bin": data}), tmp_path, client=client_for(hub))
    msg = str(err.value)
    assert f"{hub.url}/datasets/{REPO}/resolve/main/a.bin" in msg
    assert f"expected sha256 {sha(data)}, found {sha(bad)}" in msg
    assert (tmp_path / "a.bin.corrupt").read_bytes() == bad
    assert not (tmp_path / "a.bin").exists() and not (tmp_path / "a.bin.part").exists()
    assert not (tmp_path / RECORD).exists()  # the rule's output: only on success
    assert json.loads((tmp_path / PARTIAL_RECORD).read_text())["files"] == {}
    hub.requests.clear()
    download(manifest_for({"a.bin": data}), tmp_path, client=client_for(hub))
    assert "range" not in hub.requests_for("/a.bin")[0].headers
    assert (tmp_path / "a.bin").read_bytes() == data
    assert "a.bin" in json.loads((tmp_path / RECORD).read_text())["files"]
    assert not (tmp_path / PARTIAL_RECORD).exists()


def test_404_names_the_repository_revision_and_path(hub, tmp_path):
    with pytest.raises(NotFoundError) as err:
        download(manifest_for({"missing.bin": b"x"}), tmp_path, client=client_for(hub))
    msg = str(err.value)
    assert f"{hub.url}/datasets/{REPO}/resolve/main/missing.bin" in msg
    assert f"dataset {REPO}, revision main, path missing.bin" in msg
    assert "HTTP 404" in msg and "EntryNotFound" in msg and "HF_TOKEN" in msg
    assert not (tmp_path / "missing.bin").exists()
    assert not (tmp_path / RECORD).exists()


def test_a_failed_file_leaves_no_record_and_the_verified_ones_in_the_partial(hub, tmp_path):
    files = {"a.bin": FILES["a.bin"], "missing.bin": b"x"}
    with pytest.raises(NotFoundError):
        download(manifest_for(files), tmp_path, client=client_for(hub))
    assert not (tmp_path / RECORD).exists()
    partial = json.loads((tmp_path / PARTIAL_RECORD).read_text())["files"]
    assert "missing.bin" not in partial and partial["a.bin"]["sha256"] == sha(FILES["a.bin"])


def test_token_missing_refused_and_sent(tmp_path, monkeypatch):
    with FakeHub(token="secret", cdn=True) as hub:
        hub.add_repo(REPO, FILES, lfs={"sub/b.bin"})
        hub.add_repo(MODEL, SPLITS, repo_type="model", lfs=set())
        m = manifest_for(FILES)
        with pytest.raises(AuthError, match=r"HTTP 401.*HF_TOKEN is not set"):
            download(m, tmp_path, client=client_for(hub))
        monkeypatch.setenv("HF_TOKEN", "wrong")
        with pytest.raises(AuthError, match=r"HF_TOKEN was refused \(HTTP 403\)"):
            download(m, tmp_path, client=client_for(hub))
        monkeypatch.setenv("HF_TOKEN", "secret")
        hub.requests.clear()
        download(m, tmp_path, client=client_for(hub))
        on_hub = [r for r in hub.requests if r.server == "hub"]
        on_cdn = [r for r in hub.requests if r.server == "cdn"]
        assert len(on_hub) == 4 and len(on_cdn) == 1  # sub/b.bin redirects to the CDN (LFS)
        assert all(r.headers["authorization"] == "Bearer secret" for r in on_hub)
        assert "authorization" not in on_cdn[0].headers  # not leaked to another host
        assert (tmp_path / "sub/b.bin").read_bytes() == FILES["sub/b.bin"]


def test_5xx_is_retried_with_exponential_backoff_then_given_up(hub, tmp_path):
    sleeps: list[float] = []
    hub.faults["a.bin"] = Fault(status=503, times=2)
    download(manifest_for({"a.bin": FILES["a.bin"]}), tmp_path, client=client_for(hub, sleeps))
    assert sleeps == [0.5, 1.0]
    assert (tmp_path / "a.bin").read_bytes() == FILES["a.bin"]
    hub.faults["sub/b.bin"] = Fault(status=500, times=10)
    one = {"sub/b.bin": FILES["sub/b.bin"]}
    with pytest.raises(TransferError, match="giving up after 3 attempts"):
        download(manifest_for(one), tmp_path, client=client_for(hub))


def test_unpinned_files_are_refused_unless_allowed(hub, tmp_path):
    m = manifest_for({"a.bin": FILES["a.bin"]}, pinned=False)
    with pytest.raises(UnpinnedError) as err:
        download(m, tmp_path, client=client_for(hub))
    assert "maestro pin-manifest --manifest fake.yaml" in str(err.value)
    assert f"{REPO}: a.bin" in str(err.value) and hub.requests == []
    download(m, tmp_path, client=client_for(hub), allow_unpinned=True)
    entry = json.loads((tmp_path / RECORD).read_text())["files"]["a.bin"]
    assert (entry["check"], entry["pinned"]) == ("tofu", False)
    assert entry["sha256"] == sha(FILES["a.bin"])


def test_disk_full_names_the_file_and_the_bytes_needed(hub, tmp_path, monkeypatch):
    def full(f, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(transfer, "write_chunk", full)
    with pytest.raises(DiskFullError) as err:
        download(manifest_for({"a.bin": FILES["a.bin"]}), tmp_path, client=client_for(hub))
    assert f"{tmp_path / 'a.bin.part'}" in str(err.value)
    assert "300000 (293.0 KiB) more bytes needed" in str(err.value)
    assert hub.requests_for("/a.bin") and len(hub.requests_for("/a.bin")) == 1  # not retried


def test_too_little_free_space_is_refused_before_writing(hub, tmp_path, monkeypatch):
    class Usage:
        free = 1000

    monkeypatch.setattr(transfer.shutil, "disk_usage", lambda path: Usage())
    with pytest.raises(DiskFullError, match=r"300000 more bytes needed .* 1000 bytes free"):
        download(manifest_for({"a.bin": FILES["a.bin"]}), tmp_path, client=client_for(hub))
    assert not (tmp_path / "a.bin.part").exists()


def test_a_size_announced_differently_stops_before_writing(hub, tmp_path):
    m = manifest_for({"a.bin": FILES["a.bin"]})
    m.sources[0].files[0].__dict__["size"] = 299_999  # frozen dataclass: test-only edit
    with pytest.raises(SizeAnnouncedError, match="announces 300000 bytes, the manifest expects"):
        download(m, tmp_path, client=client_for(hub))
    assert not (tmp_path / "a.bin.part").exists() and not (tmp_path / "a.bin").exists()


def test_an_empty_file_is_created_without_a_request(tmp_path):
    with FakeHub() as hub:
        hub.add_repo(REPO, {"empty.txt": b""})
        hub.add_repo(MODEL, SPLITS, repo_type="model", lfs=set())
        download(manifest_for({"empty.txt": b""}), tmp_path, client=client_for(hub))
        assert (tmp_path / "empty.txt").read_bytes() == b""
        assert hub.requests_for("/empty.txt") == []
