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


def test_check_replaceable_refuses_what_it_did_not_write(tmp_path):
    from maestro.utils.atomic import RefusedOutputError, check_replaceable

    def ours(p):
        return (p / "mark").is_file()

    check_replaceable(tmp_path / "absent", ours, "store")  # nothing there
    (tmp_path / "empty").mkdir()
    check_replaceable(tmp_path / "empty", ours, "store")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "mark").write_text("")
    check_replaceable(tmp_path / "old", ours, "store")  # a previous output
    user = tmp_path / "user"
    user.mkdir()
    (user / "thesis.tex").write_text("years of work")
    with pytest.raises(RefusedOutputError, match=r"user: expected an empty directory or a store"):
        check_replaceable(user, ours, "store")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(RefusedOutputError, match="found a file"):
        check_replaceable(tmp_path / "f.txt", ours, "store")
    # never the input, nor a folder holding it, even when it looks like a previous output
    with pytest.raises(RefusedOutputError, match="would replace the input"):
        check_replaceable(tmp_path / "old", ours, "store", inputs=[tmp_path / "old"])
    with pytest.raises(RefusedOutputError, match="would replace the input"):
        check_replaceable(tmp_path, ours, "store", inputs=[tmp_path / "old" / "sub"])
    assert (user / "thesis.tex").read_text() == "years of work"
