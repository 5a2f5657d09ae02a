from __future__ import annotations

import csv
import multiprocessing as mp
import os

import pytest
from omegaconf import OmegaConf

from facezoo.utils import (
    FacezooError,
    append_csv_row,
    apply_gpus_alias,
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    check_devices,
)


@pytest.mark.parametrize(
    ("gpus", "expected"),
    [
        (4, ("gpu", 4, "ddp_find_unused_parameters_true")),
        (1, ("gpu", 1, "auto")),
        (0, ("cpu", 1, "auto")),
        ([0, 2], ("gpu", [0, 2], "ddp_find_unused_parameters_true")),
        (-1, ("gpu", -1, "ddp_find_unused_parameters_true")),
    ],
)
def test_gpus_alias(gpus, expected):
    cfg = OmegaConf.create({"accelerator": "auto", "devices": 1, "strategy": "auto", "num_nodes": 1, "gpus": gpus})
    apply_gpus_alias(cfg)
    got = (cfg.accelerator, OmegaConf.to_object(cfg.devices) if OmegaConf.is_list(cfg.devices) else cfg.devices,
           cfg.strategy)
    assert got == expected and "gpus" not in cfg


def test_gpus_alias_keeps_an_explicit_strategy_and_multinode():
    cfg = OmegaConf.create({"accelerator": "auto", "devices": 1, "strategy": "fsdp", "num_nodes": 1, "gpus": 8})
    apply_gpus_alias(cfg)
    assert cfg.strategy == "fsdp"
    cfg = OmegaConf.create({"accelerator": "auto", "devices": 1, "strategy": "auto", "num_nodes": 2, "gpus": 1})
    apply_gpus_alias(cfg)
    assert cfg.strategy == "ddp_find_unused_parameters_true"


def test_check_devices():
    check_devices(OmegaConf.create({"accelerator": "gpu", "devices": 2}), available_gpus=2)
    check_devices(OmegaConf.create({"accelerator": "cpu", "devices": 8}), available_gpus=0)
    with pytest.raises(FacezooError, match="asked for 3 GPUs .* but found 1 on this machine"):
        check_devices(OmegaConf.create({"accelerator": "gpu", "devices": 3}), available_gpus=1)


def test_atomic_write_json_replaces_whole_files(tmp_path):
    path = tmp_path / "m.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_json(path, {"b": 2})
    assert path.read_text() == '{\n  "b": 2\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temporary files left behind


def test_atomic_write_gives_the_permissions_of_a_plain_open(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        (tmp_path / "b.txt").write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o644


def test_atomic_write_syncs_before_the_rename_and_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    import os

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append("replace") or real_replace(a, b))
    path = tmp_path / "sub" / "f.bin"
    assert atomic_write_bytes(path, b"\x00\x01") == path          # creates the folder
    assert path.read_bytes() == b"\x00\x01" and events == ["fsync", "replace"]
    atomic_write_text(path, "text")
    assert path.read_text() == "text"

    def half_then_fail(f):
        f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert path.read_text() == "text"                               # the old file, whole
    assert [p.name for p in path.parent.iterdir()] == ["f.bin"]      # and no temporary file


@pytest.mark.parametrize("exists", [True, False])
def test_a_full_disk_is_one_line_naming_the_file_and_keeps_the_old_one(tmp_path, exists):
    import errno

    path = tmp_path / "out.png"
    if exists:
        path.write_bytes(b"old")

    def no_space(f):
        f.write(b"\0" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(FacezooError) as info:
        atomic_write(path, no_space)
    kept = "the previous file is unchanged" if exists else "nothing was written"
    assert str(info.value) == (f"{path}: No space left on device while writing it; {kept} "
                               "(free some space and run again)")
    assert [p.name for p in tmp_path.iterdir()] == (["out.png"] if exists else [])
    assert not exists or path.read_bytes() == b"old"


def _append(args):
    path, i = args
    append_csv_row(path, {"job": i, f"col{i % 3}": i})


def test_append_csv_row_from_parallel_processes(tmp_path):
    path = tmp_path / "summary.csv"
    with mp.get_context("fork").Pool(4) as pool:
        pool.map(_append, [(path, i) for i in range(12)])
    rows = list(csv.DictReader(open(path)))
    assert sorted(int(r["job"]) for r in rows) == list(range(12))
    assert set(rows[0]) == {"job", "col0", "col1", "col2"}
