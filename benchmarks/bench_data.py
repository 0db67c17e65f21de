"""Data benchmark: training reads from the Zarr store vs the raw files, and conversion memory.

(a) Samples/s of training items (``MaestroDataset`` with ``train=True``: random crop, random
    date selection, scaling, band reorder, resize, flips) read from the converted Zarr store
    and computed from the raw files through the format readers (``get_reader`` + the same
    ``MaestroDataset`` logic on :class:`RawStore`), same machine and run, for TreeSatAI-TS
    and PASTIS-HD at the paper geometry (``catalog()`` without overrides): demo raw data in
    the real formats, e.g. 40 TreeSatAI-TS tiles (60 m, aerial 300 px) and 6 PASTIS-HD tiles
    (1280 m, SPOT 1280 px, S2 128 px), ~40 S2 acquisitions per series. Items are checked
    equal between the two sources before timing. Each source is timed in its own fresh
    process (a Zarr reader loads what training loads, not rasterio/h5py/geopandas), both
    with the heap settings of ``maestro.store.heap`` (page faults per item are printed: a
    heap that shrinks and regrows at every item would show hundreds).
(b) Peak memory (peak RSS of a subprocess) of converting N and 10 N TreeSatAI-TS tiles, and
    the conversion wall time with 1 and 2 workers.

    python benchmarks/bench_data.py                       # defaults above, in a temp dir
    python benchmarks/bench_data.py --work /tmp/bd --keep # reuse generated raw data

Not a test: numbers depend on the machine. Recorded figures: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from maestro.data.sample import RawReader, RawSample
from maestro.datasets import catalog
from maestro.datasets.spec import StoreSpec
from maestro.store.zarr_store import SPLIT_CODES

# Imported where used: a process that times Zarr reads loads what training loads (torch,
# zarr), not the raw-format libraries (rasterio, h5py, geopandas).

SPLITS = ("train", "val", "test")


class RawStore:
    """The read interface of :class:`maestro.store.zarr_store.Store`, served from raw files.

    Sample ``i`` is the ``i``-th sample of the store order (``validate.order_refs``), so
    indices match a store converted from the same reader. The last sample read is kept, so
    that one item (several modalities, label, reference date) reads its files once. Like
    ``Store``, it fixes glibc's heap thresholds (``maestro.store.heap``) in its process.
    """

    def __init__(self, reader: RawReader) -> None:
        from maestro.store.heap import steady_heap
        from maestro.store.validate import order_refs

        steady_heap()  # as Store does: the same allocator settings on both sides
        self.reader = reader
        self.spec: StoreSpec = reader.store
        self.path = Path(reader.root)
        self.refs = order_refs(list(reader.index()), reader.store, self.path)
        self._last: tuple[int, RawSample] | None = None

    def indices(self, scheme: str, splits: tuple[str, ...] | list[str]) -> np.ndarray:
        """Store indices of the samples in ``splits`` of ``scheme``."""
        keep = {s for s in splits if s in SPLIT_CODES}
        rows = [i for i, r in enumerate(self.refs) if r.splits.get(scheme) in keep]
        return np.asarray(rows, dtype=np.int64)

    def _sample(self, i: int) -> RawSample:
        if self._last is None or self._last[0] != i:
            self._last = (i, self.reader.read(self.refs[i]))
        return self._last[1]

    def read(
        self, i: int, modality: str, window: tuple[slice, slice] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """data ``(T, C, h, w)``, dates ``(T, 3)`` int16, invalid ``(T, h, w)`` or None."""
        s = self._sample(i)
        rows, cols = window or (slice(None), slice(None))
        invalid = s.invalid.get(modality)
        return (
            s.rasters[modality][..., rows, cols],
            np.asarray(s.dates[modality], np.int16),
            None if invalid is None else invalid[..., rows, cols],
        )

    def label(self, i: int, window: tuple[slice, slice] | None = None) -> np.ndarray:
        """Fractions ``(K,)`` or the class raster (cropped to ``window``)."""
        label = self._sample(i).label
        assert label is not None
        return label if window is None else label[window]

    def ref_date(self, i: int) -> np.ndarray:
        """``(3,)`` int16."""
        return np.asarray(self._sample(i).ref_date, np.int16)


def _generate(name: str, root: Path, tiles: int, s2_per_year: int, seed: int = 0) -> None:
    from maestro.data.demo import DemoConfig, generate

    if root.exists():
        return
    n_val = max(1, tiles // 6)
    cfg = DemoConfig(
        n_train=tiles - 2 * n_val,
        n_val=n_val,
        n_test=n_val,
        acquisitions={"s2": s2_per_year, "s1_asc": s2_per_year // 2, "s1_des": s2_per_year // 2},
        seed=seed,
    )
    generate(catalog().store(name), root, cfg)


def _same(a: Any, b: Any) -> bool:
    import torch

    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(torch.equal(a, b))


def _dataset(name: str, zarr_path: Path, raw: Path | None) -> Any:
    """The training dataset over the Zarr store, or over the raw files when ``raw`` is set."""
    from maestro.data.torch_dataset import MaestroDataset

    cat = catalog()
    store = None
    if raw is not None:
        from maestro.data.readers import get_reader

        store = RawStore(get_reader(cat.store(name), raw))
    return MaestroDataset(zarr_path, cat.dataset(name), SPLITS, train=True, store=store)


def check_same_items(name: str, raw: Path, zarr_path: Path, n: int = 8) -> None:
    """The first ``n`` training items are identical from both sources."""
    zarr_ds, raw_ds = _dataset(name, zarr_path, None), _dataset(name, zarr_path, raw)
    assert len(zarr_ds) == len(raw_ds)
    for k in range(min(n, len(zarr_ds))):
        assert _same(zarr_ds[k], raw_ds[k]), f"{name}: item {k} differs between Zarr and raw"


def _reads_child(name: str, zarr_path: str, raw: str, max_items: int, passes: int) -> None:
    """Subprocess body: items/s (median of ``passes``) and page faults per item, as JSON."""
    import torch

    torch.set_num_threads(1)
    ds = _dataset(name, Path(zarr_path), Path(raw) if raw else None)
    items = list(range(min(len(ds), max_items)))
    epochs = -(-max_items // len(items))  # small datasets: several epochs per pass
    for k in items[:4]:  # warm-up: open files, load the small arrays / the split index
        ds[k]
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    rates = []
    for p in range(passes):
        t = time.perf_counter()
        for epoch in range(epochs):
            ds.set_epoch(p * epochs + epoch)
            for k in items:
                ds[k]
        rates.append(epochs * len(items) / (time.perf_counter() - t))
    n = passes * epochs * len(items)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / n
    print(
        json.dumps(
            {"rate": statistics.median(rates), "items": epochs * len(items), "faults": faults}
        )
    )


def _child(*args: Any) -> dict:
    cmd = [sys.executable, __file__, "--child", *(str(a) for a in args)]
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(res.stdout.splitlines()[-1])


def bench_reads(name: str, raw: Path, zarr_path: Path, max_items: int, passes: int) -> dict:
    """Training items/s from the Zarr store and from the raw files, each in a fresh process."""
    z = _child("reads", name, zarr_path, "", max_items, passes)
    r = _child("reads", name, zarr_path, raw, max_items, passes)
    return {
        "zarr": z["rate"],
        "raw": r["rate"],
        "ratio": z["rate"] / r["rate"],
        "items": z["items"],
        "faults": (z["faults"], r["faults"]),
    }


def _status_kib(field: str) -> int:
    """``VmHWM`` (peak RSS of this process image) or ``VmRSS`` from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def _convert_child(raw: str, out: str, workers: int) -> None:
    """Subprocess body: convert; print peak RSS, RSS after imports and wall time as JSON.

    ``VmHWM`` is read rather than ``ru_maxrss``, which keeps the peak of the forking parent
    across ``exec``. With workers, the largest worker's peak (``RUSAGE_CHILDREN``) counts too.
    """
    from maestro.data.readers import get_reader
    from maestro.store.convert import convert

    base = _status_kib("VmRSS")
    reader = get_reader(catalog().store("treesatai_ts"), raw)
    t = time.perf_counter()
    summary = convert(reader, out, shard_samples=32, workers=workers)
    wall = time.perf_counter() - t
    peak = max(_status_kib("VmHWM"), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print(
        json.dumps({"peak_kib": peak, "base_kib": base, "wall_s": wall, "n": summary["n_samples"]})
    )


def bench_memory(work: Path, n: int, s2_per_year: int) -> list[dict]:
    """Convert N and 10 N TreeSatAI-TS tiles, each in a fresh process."""
    rows = []
    for tiles, workers in ((n, 1), (10 * n, 1), (10 * n, 2)):
        raw = work / f"treesatai_mem_{tiles}"
        _generate("treesatai_ts", raw, tiles, s2_per_year, seed=1)
        out = work / f"mem_{tiles}_{workers}.zarr"
        shutil.rmtree(out, ignore_errors=True)
        rows.append({"tiles": tiles, "workers": workers, **_child("convert", raw, out, workers)})
    return rows


def main() -> None:
    """Run (a) and (b) and print the figures."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--treesatai-tiles", type=int, default=40)
    p.add_argument("--pastis-tiles", type=int, default=6)
    p.add_argument("--s2-per-year", type=int, default=30, help="PASTIS series span ~1.3 years")
    p.add_argument("--max-items", type=int, default=400)
    p.add_argument("--passes", type=int, default=3, help="timed passes (median reported)")
    p.add_argument("--memory-n", type=int, default=40, help="N of the memory benchmark")
    p.add_argument("--work", type=Path, default=None, help="work directory (default: temp)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "convert":
            _convert_child(rest[0], rest[1], int(rest[2]))
        else:
            _reads_child(rest[0], rest[1], rest[2], int(rest[3]), int(rest[4]))
        return
    from maestro.data.readers import get_reader
    from maestro.store.convert import convert

    work = args.work or Path(tempfile.mkdtemp(prefix="bench_data_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print("(a) training items/s, Zarr store vs raw files (paper geometry)")
        print(
            "| dataset | tiles | items | Zarr items/s | raw items/s | Zarr / raw "
            "| page faults/item Zarr / raw |"
        )
        print("|---|---|---|---|---|---|---|")
        sizes = {"treesatai_ts": args.treesatai_tiles, "pastis_hd": args.pastis_tiles}
        for name, tiles in sizes.items():
            raw = work / f"{name}_raw"
            s2 = args.s2_per_year + (10 if name == "treesatai_ts" else 0)  # one year of dates
            _generate(name, raw, tiles, s2)
            zarr_path = work / f"{name}.zarr"
            convert(get_reader(catalog().store(name), raw), zarr_path, shard_samples=32)
            check_same_items(name, raw, zarr_path)
            r = bench_reads(name, raw, zarr_path, args.max_items, args.passes)
            print(
                f"| {name} | {tiles} | {r['items']} | {r['zarr']:.1f} | {r['raw']:.1f} "
                f"| {r['ratio']:.2f} | {r['faults'][0]:.0f} / {r['faults'][1]:.0f} |"
            )
        print("\n(b) converting N and 10 N TreeSatAI-TS tiles (32 samples per shard)")
        print("| tiles | workers | peak RSS MiB | after imports MiB | wall s | samples/s |")
        print("|---|---|---|---|---|---|")
        rows = bench_memory(work, args.memory_n, args.s2_per_year + 10)
        for r in rows:
            print(
                f"| {r['tiles']} | {r['workers']} | {r['peak_kib'] / 1024:.0f} "
                f"| {r['base_kib'] / 1024:.0f} | {r['wall_s']:.1f} | {r['n'] / r['wall_s']:.1f} |"
            )
        ratio = rows[1]["peak_kib"] / rows[0]["peak_kib"]
        print(f"peak RSS 10 N / N (1 worker): {ratio:.3f}")
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
