"""Atomic outputs: nothing half-written at the final path."""

import pytest

from maestro.utils.atomic import atomic_path, write_json


def test_success_renames_and_replaces(tmp_path):
    target = tmp_path / "out" / "x.txt"
    with atomic_path(target) as tmp:
        assert tmp != target and tmp.parent == target.parent
        tmp.write_text("one")
    assert target.read_text() == "one"
    with atomic_path(target) as tmp:
        tmp.write_text("two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.txt"]


def test_failure_leaves_previous_output_and_no_temp(tmp_path):
    target = tmp_path / "store"
    target.mkdir()
    (target / "keep").write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "half").write_text("partial")
        raise RuntimeError("boom")
    assert (target / "keep").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["store"]


def test_nothing_written_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "y"):
        pass
    assert not (tmp_path / "y").exists()
    write_json(tmp_path / "j.json", {"b": 1, "a": 2})
    assert (tmp_path / "j.json").read_text().startswith('{\n  "a": 2')
