"""Figures: loss curves, reconstruction panels, the rule graph drawing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from maestro.report.figures import downstream_curves, loss_curves
from maestro.report.maps import MASK_RGB, _display, display_scale, reconstruction_figure
from maestro.report.rulegraph import layers, parse_dot

PNG = b"\x89PNG\r\n\x1a\n"


def test_loss_curves_from_histories(tmp_path):
    paths = []
    for ds in ("treesatai_ts", "pastis_hd"):
        d = tmp_path / ds
        d.mkdir()
        (d / "history.csv").write_text("epoch,loss,loss_s2\n0,0.9,0.8\n1,0.7,0.6\n")
        (d / "metrics.json").write_text(
            json.dumps({"dataset": ds, "seed": 0, "cell": {"fusion": "group"}})
        )
        paths.append(d / "history.csv")
    loss_curves(paths, tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes()[:8] == PNG


def test_reconstruction_figure(tmp_path):
    rng = np.random.default_rng(0)
    target = rng.random((2, 4, 8, 8)).astype(np.float32)
    masked = target.copy()
    masked[:, :, :4] = np.nan
    arrays = {
        "aerial__target": target, "aerial__reconstruction": target, "aerial__masked_input": masked,
        "aerial__bands": np.array(["NIR", "R", "G", "B"]),
    }  # fmt: skip
    np.savez(tmp_path / "r.npz", **arrays)
    reconstruction_figure(tmp_path / "r.npz", tmp_path / "r.png", title="t")
    assert (tmp_path / "r.png").read_bytes()[:8] == PNG


def test_display_picks_rgb_and_marks_masked_patches():
    img = np.stack([np.full((2, 2), v) for v in (0.0, 1.0, 2.0, 3.0)])
    img[:, 0, 0] = np.nan
    out = _display(img, ["NIR", "R", "G", "B"], np.nan_to_num(img))
    assert out.shape == (2, 2, 3)
    np.testing.assert_allclose(out[0, 0], MASK_RGB)  # masked -> magenta, not a data grey
    assert out[1, 1, 0] < out[1, 1, 2]  # R (1.0) darker than B (3.0)


def test_single_band_displays_have_a_colour_map_and_elevation_is_not_clipped():
    rng = np.random.default_rng(0)
    dem = np.linspace(100.0, 300.0, 64).reshape(1, 8, 8)  # a smooth slope, metres
    idx, lo, hi, cmap = display_scale(["DEM"], dem, "dem")
    assert (idx, lo, hi, cmap) == ([0], 100.0, 300.0, "terrain")  # whole range: no saturation
    shown = _display(dem, ["DEM"], dem, "dem")
    assert shown.shape == (8, 8, 3) and len({tuple(p) for p in shown.reshape(-1, 3)}) > 50
    s1 = rng.normal(size=(2, 8, 8))
    s1[:, :4] = np.nan
    _, lo, hi, cmap = display_scale(["VV", "VH"], s1, "s1_asc")
    assert cmap == "gray" and lo < hi
    out = _display(s1, ["VV", "VH"], s1, "s1_asc")
    np.testing.assert_allclose(out[:4].reshape(-1, 3), np.tile(MASK_RGB, (32, 1)))
    assert not np.isclose(out[4:], MASK_RGB).all(-1).any()  # no data pixel in the mask colour


def test_downstream_curves(tmp_path):
    paths = []
    for ds, mode in (
        ("pastis_hd", "finetune"),
        ("pastis_hd", "scratch"),
        ("treesatai_ts", "probe"),
    ):
        d = tmp_path / ds / mode
        d.mkdir(parents=True)
        metric = "miou" if ds == "pastis_hd" else "weighted_f1"
        (d / "history.csv").write_text(f"epoch,train_loss,val_{metric}\n0,1.0,0.2\n1,0.8,0.4\n")
        (d / "metrics.json").write_text(
            json.dumps({"dataset": ds, "mode": mode, "metric": metric, "seed": 0})
        )
        paths.append(d / "history.csv")
    downstream_curves(paths, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="no downstream history"):
        downstream_curves([], tmp_path / "none.png")


def test_rulegraph_parsing_and_layers():
    lines = ["digraph {", '0[label = "all", color = "x"];', '1[label = "convert"];']
    lines += ['2[label = "train"];', "1 -> 2", "2 -> 0", "1 -> 0", "}"]
    dot = "\n".join(lines)
    nodes, edges = parse_dot(dot)
    assert nodes == {"0": "all", "1": "convert", "2": "train"}
    assert layers(nodes, edges) == {"1": 0, "2": 1, "0": 2}
    with pytest.raises(ValueError, match="no rule found"):
        parse_dot("digraph {}")


def test_rulegraph_mermaid_is_deterministic_and_replaces_only_its_block():
    from maestro.report.rulegraph import BEGIN, END, mermaid, replace_block

    one = ["digraph {", '0[label = "all"];', '1[label = "convert"];', '2[label = "train"];']
    one += ["1 -> 2", "2 -> 0", "1 -> 0", "}"]
    # the same graph, numbered and ordered differently (as Snakemake does from call to call)
    two = ["digraph {", '5[label = "train"];', '7[label = "all"];', '9[label = "convert"];']
    two += ["5 -> 7", "9 -> 7", "9 -> 5", "}"]
    text = mermaid("\n".join(one))
    assert text == mermaid("\n".join(two))
    assert (
        text == "flowchart LR\n    convert([convert])\n    train([train])\n    convert --> train\n"
    )
    doc = f"# Title\n\n{BEGIN}\nold\n{END}\n\nafter\n"
    new = replace_block(doc, "\n".join(one))
    assert new.startswith("# Title\n\n") and new.endswith(f"{END}\n\nafter\n")
    assert "```mermaid\nflowchart LR\n" in new and "old" not in new
    with pytest.raises(ValueError, match="no rule graph block"):
        replace_block("# no markers\n", "\n".join(one))


def test_ablation_bars_and_segmentation_maps(tmp_path):
    from maestro.report.figures import ablation_bars
    from maestro.report.maps import segmentation_maps

    rows = [
        {
            "Variant": v,
            "dataset": d,
            "title": d.upper(),
            "metric": "mIoU",
            "mean": m,
            "ci_low": m - 2,
            "ci_high": m + 2,
        }
        for v, m in (("ref", 40.0), ("none", 35.0))
        for d in ("a", "b")
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "ablation_norm.csv", index=False)
    ablation_bars([tmp_path / "ablation_norm.csv"], tmp_path / "ab.png")
    assert (tmp_path / "ab.png").read_bytes()[:8] == PNG
    rng = np.random.default_rng(0)
    label = rng.integers(-1, 5, size=(2, 8, 8)).astype(np.int16)
    arrays = {
        "label": label,
        "prediction": np.clip(label, 0, None),
        "image": rng.random((2, 3, 8, 8)),
    }
    arrays |= {"bands": np.array(["R", "G", "B"]), "classes": np.array([f"c{i}" for i in range(5)])}
    np.savez(tmp_path / "p.npz", **arrays)
    segmentation_maps(tmp_path / "p.npz", tmp_path / "seg.png", title="t")
    assert (tmp_path / "seg.png").read_bytes()[:8] == PNG
    arrays["colours"] = np.array(["#db0e9a", "#9999ff", "#3de6eb", "#f80c00", "#938e7b"])
    np.savez(tmp_path / "c.npz", **arrays)  # with the dataset's legend colours
    segmentation_maps(tmp_path / "c.npz", tmp_path / "seg_c.png", title="t")
    assert (tmp_path / "seg_c.png").read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="no ablation results"):
        pd.DataFrame(columns=["Variant", "dataset"]).to_csv(
            tmp_path / "ablation_x.csv", index=False
        )
        ablation_bars([tmp_path / "ablation_x.csv"], tmp_path / "none.png")


def test_loss_curve_labels_name_what_differs_and_colours_are_distinct():
    from matplotlib.colors import to_rgb

    from maestro.report.figures import _tags
    from maestro.report.maps import class_colours

    ref = {"fusion": "group", "inter": "2", "norm": "patchgroup", "length": "1", "groups": "spec"}
    cells = [ref, ref | {"length": "2"}, ref | {"groups": "analysis"}, ref | {"norm": "none"}]
    assert _tags(cells) == ["reference cell", "length=2", "groups=analysis", "norm=none"]
    assert len(set(_tags(cells))) == len(cells)  # three TreeSatAI-TS lines had one label
    rgb = [np.array(to_rgb(c)) for c in class_colours(15)]
    closest = min(np.abs(a - b).sum() for i, a in enumerate(rgb) for b in rgb[i + 1 :])
    assert closest > 0.15  # no two classes in near-identical colours
    assert all(np.abs(rgb[i] - rgb[i + 1]).sum() > 0.4 for i in range(14))  # neighbours differ


def test_table1_bars_one_panel_per_dataset(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from maestro.report import figures

    rows = []
    for d, title, metric in (
        ("treesatai_ts", "TreeSatAI-TS", "wF1"),
        ("pastis_hd", "PASTIS", "mIoU"),
    ):
        for model, fusion, mean in (
            ("MAESTRO", "inter-group", 70.0),
            ("Trivial predictor", "–", 5.0),
        ):
            rows.append({"Model": model, "Size": "Tiny", "Fusion mode": fusion, "dataset": d,
                         "title": title, "metric": metric, "mean": mean, "std": 1.0,
                         "n_seeds": 3, "ci_low": mean - 2, "ci_high": mean + 2})  # fmt: skip
    pd.DataFrame(rows).to_csv(tmp_path / "table1.csv", index=False)
    drawn = {}
    monkeypatch.setattr(figures, "_save", lambda fig, out: drawn.update(fig=fig))
    figures.table1_bars(tmp_path / "table1.csv", tmp_path / "t.png")
    axes = drawn["fig"].axes
    assert [ax.get_title() for ax in axes] == ["TreeSatAI-TS (wF1, %)", "PASTIS (mIoU, %)"]
    widths = [[p.get_width() for p in ax.patches] for ax in axes]
    assert widths == [[70.0, 5.0], [70.0, 5.0]]  # each dataset's own values, never summed
    plt.close(drawn["fig"])
