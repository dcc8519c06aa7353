"""The synthetic data root (``ccmct synth``): slides, databases, label simulation, difficulty, determinism.

Most tests read the session's ``tiny_root`` (tests/conftest.py: preset tiny, seed 0). One test regenerates
it through the CLI to prove determinism and resumption.
"""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from matplotlib.path import Path as MplPath
from scipy import ndimage
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ccmct.cli import main as cli_main
from ccmct.config.dataset import (
    AMBIGUOUS,
    CELL_CLASS_NAMES,
    GRANULOCYTE,
    LOOKALIKE,
    MITOTIC_FIGURE,
    TUMOR_CELL,
)
from ccmct.config.paths import DataRoot
from ccmct.data.sliderunner import REQUIRED_TABLES, AnnotationType, SlideRunnerDB
from ccmct.data.slides import open_slide, tissue_mask
from ccmct.synthetic import generate_dataset, read_report
from ccmct.synthetic.gallery import draw_gallery, gallery_patches
from ccmct.errors import CcmctError

VARIANTS = ("MEL", "HEAEL", "ODAEL")
PATCH = 64


@pytest.fixture(scope="module")
def report(tiny_root):
    return read_report(tiny_root)


def _spots(root, variant, classes=None):
    with SlideRunnerDB.open(DataRoot(root).database(variant)) as db:
        names = db.slides().set_index("uid")["filename"].to_dict()
        spots = db.spots(classes=classes)
    spots["filename"] = spots["slide"].map(names)
    return spots


def test_slides_are_aperio_with_mpp_and_levels(tiny_root, report):
    root = DataRoot(tiny_root)
    names = sorted(p.name for p in root.wsi_dir.iterdir())
    assert names == sorted(report["slides"])
    for name in names:
        assert re.fullmatch(r"[0-9a-f]{20}\.svs", name)
        with open_slide(root.slide_path(name)) as slide:
            info = report["slides"][name]
            assert slide.vendor == "aperio"
            assert slide.mpp == pytest.approx(0.25)
            assert slide.dimensions == (info["width"], info["height"])
            assert slide.level_count >= 2
            assert slide.level_downsamples[1] == pytest.approx(4.0, rel=0.01)


def test_split_file_read_through_data_root(tiny_root, report):
    split = DataRoot(tiny_root).split()
    assert split == {name: info["split"] for name, info in report["slides"].items()}
    assert sorted(split.values()) == ["test", "train", "train", "train"]


def test_databases_have_real_schema_classes_and_persons(tiny_root):
    root = DataRoot(tiny_root)
    for variant in VARIANTS:
        with SlideRunnerDB.open(root.database(variant)) as db:
            assert db.class_names() == dict(CELL_CLASS_NAMES)
            persons = set(db.persons()["name"])
            assert {"expert 1", "expert 2"} <= persons and any("consensus" in p for p in persons)
            assert any("algorithm" in p for p in persons)
            assert set(db.annotations()["type"]) == {int(AnnotationType.SPOT)}
    for path in (root.database("Tumorzone"), root.high_mc_areas):
        with SlideRunnerDB.open(path) as db:
            tables = {r[0] for r in db._con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            assert set(REQUIRED_TABLES) <= tables


def test_counts_equal_the_generators_report(tiny_root, report):
    for variant in VARIANTS:
        spots = _spots(tiny_root, variant)
        for name, info in report["slides"].items():
            got = spots[spots["filename"] == name]["agreed_class"].value_counts().to_dict()
            want = {c: n for c, n in info["counts"][variant].items() if n}
            assert got == want, (variant, name)


def test_label_variants_follow_the_papers_story(tiny_root, report):
    odael, mel, heael = (_spots(tiny_root, v) for v in ("ODAEL", "MEL", "HEAEL"))

    def mitoses(df):
        return set(map(tuple, df.loc[df["agreed_class"] == MITOTIC_FIGURE, ["filename", "x", "y"]].to_numpy()))

    assert mitoses(mel) <= mitoses(heael) <= mitoses(odael)
    assert 0.8 * len(mitoses(odael)) < len(mitoses(mel)) < len(mitoses(odael))   # MEL misses a few percent
    assert (mel["agreed_class"] == LOOKALIKE).sum() == 0 and (mel["agreed_class"] == AMBIGUOUS).sum() > 0
    n_look = [(df["agreed_class"] == LOOKALIKE).sum() for df in (heael, odael)]
    assert 0 < n_look[0] < 0.6 * n_look[1]
    for c in (GRANULOCYTE, TUMOR_CELL):
        assert (odael["agreed_class"] == c).sum() >= (mel["agreed_class"] == c).sum() > 0
    per_slide = [info["counts"]["ODAEL"][MITOTIC_FIGURE] for info in report["slides"].values()]
    assert max(per_slide) >= 1.8 * min(per_slide) and min(per_slide) >= 25


def test_labels_are_ordered_votes_ending_in_the_agreed_class(tiny_root):
    root = DataRoot(tiny_root)
    for variant in VARIANTS:
        with SlideRunnerDB.open(root.database(variant)) as db:
            persons = db.persons().set_index("name")["uid"].to_dict()
            algorithm = next(uid for name, uid in persons.items() if "algorithm" in name)
            for slide in db.slides()["uid"]:
                annos = db.slide_annotations(int(slide))
                assert annos
                for anno in annos:
                    assert len(anno.labels) >= 2
                    assert [lab.order for lab in anno.labels] == list(range(1, len(anno.labels) + 1))
                    assert anno.labels[-1].class_id == anno.agreed_class
                    if variant == "MEL":
                        assert all(lab.person != algorithm for lab in anno.labels)


def test_every_annotation_is_inside_slide_tissue_and_tumour_zone(tiny_root, report):
    root = DataRoot(tiny_root)
    zones = _polygons(root.database("Tumorzone"))
    spots = _spots(tiny_root, "ODAEL")
    for name, info in report["slides"].items():
        pts = spots.loc[spots["filename"] == name, ["x", "y"]].to_numpy()
        assert len(pts)
        assert (pts >= 0).all() and (pts[:, 0] < info["width"]).all() and (pts[:, 1] < info["height"]).all()
        with open_slide(root.slide_path(name)) as slide:
            level = 1
            f = int(slide.level_downsamples[level])
            w, h = slide.level_dimensions[level]
            mask = tissue_mask(slide.read_region(0, 0, (w, h), level=level))
        assert 0.3 < mask.mean() < 0.8
        mask = ndimage.binary_fill_holes(ndimage.binary_closing(mask, iterations=2))  # the tissue region
        assert mask[np.minimum(pts[:, 1] // f, h - 1), np.minimum(pts[:, 0] // f, w - 1)].all()
        polys = zones[name]
        inside = np.zeros(len(pts), bool)
        for p in polys[1]:
            inside |= MplPath(p).contains_points(pts)
        for cls in (2, 4):
            for p in polys.get(cls, []):
                inside &= ~MplPath(p).contains_points(pts)
        assert inside.all()


def _polygons(db_path) -> dict[str, dict[int, list[np.ndarray]]]:
    out: dict[str, dict[int, list[np.ndarray]]] = {}
    with SlideRunnerDB.open(db_path) as db:
        assert db.class_names()[1] == "Tumorzone"
        for uid, name in db.slides()[["uid", "filename"]].to_numpy():
            polys = out.setdefault(name, {})
            for anno in db.slide_annotations(int(uid)):
                assert anno.type == AnnotationType.POLYGON
                polys.setdefault(anno.agreed_class, []).append(anno.vertices_l0)
    return out


def test_high_mc_rectangle_sits_on_the_densest_mitotic_region(tiny_root, report):
    root = DataRoot(tiny_root)
    spots = _spots(tiny_root, "ODAEL", classes=[MITOTIC_FIGURE])
    rng = np.random.default_rng(0)
    with SlideRunnerDB.open(root.high_mc_areas) as db:
        assert db.class_names() == {1: "10hpf selection"}
        names = db.slides().set_index("uid")["filename"].to_dict()
        annos = db.annotations()
        coords = db.coordinates()
    assert len(annos) == len(report["slides"]) and set(annos["type"]) == {int(AnnotationType.RECTANGLE)}
    for anno_id, slide in annos[["uid", "slide"]].to_numpy():
        name = names[slide]
        (x1, y1), (x2, y2) = coords.loc[coords["anno_id"] == anno_id, ["x", "y"]].to_numpy()
        info = report["slides"][name]
        assert 0 <= x1 < x2 <= info["width"] and 0 <= y1 < y2 <= info["height"]
        assert (x2 - x1) / (y2 - y1) == pytest.approx(4 / 3, rel=0.02)
        pts = spots.loc[spots["filename"] == name, ["x", "y"]].to_numpy()

        def count(x, y):
            return int(((pts[:, 0] >= x) & (pts[:, 0] < x + x2 - x1) & (pts[:, 1] >= y) & (pts[:, 1] < y + y2 - y1)).sum())

        others = [count(rng.integers(0, info["width"] - (x2 - x1)), rng.integers(0, info["height"] - (y2 - y1)))
                  for _ in range(200)]
        assert count(x1, y1) >= max(others)
        assert count(x1, y1) > 1.5 * np.mean(others)


def _cell_patches(root, classes):
    spots = _spots(root, "ODAEL", classes=classes)
    patches, labels = [], []
    for name, group in spots.groupby("filename"):
        with open_slide(DataRoot(root).slide_path(name)) as slide:
            for x, y, c in group[["x", "y", "agreed_class"]].to_numpy():
                patches.append(slide.read_l0(int(x) - PATCH // 2, int(y) - PATCH // 2, (PATCH, PATCH)))
                labels.append(c == MITOTIC_FIGURE)
    return np.asarray(patches, np.float32).mean(axis=3), np.asarray(labels)


def _darkness_features(grey: np.ndarray) -> list[float]:
    """Mean grey within 3 µm of the centre and dark area (grey < 120) within 6.25 µm (25 px)."""
    yy, xx = np.mgrid[0:PATCH, 0:PATCH] - (PATCH - 1) / 2
    r = np.hypot(yy, xx)
    return [grey[r <= 12].mean(), (grey[r <= 25] < 120).sum()]


def _shape_features(grey: np.ndarray) -> list[float]:
    """Roughness of the dark chromatin: perimeter / sqrt(area), share lost to an opening, pieces, edge energy."""
    yy, xx = np.mgrid[0:PATCH, 0:PATCH] - (PATCH - 1) / 2
    dark = (grey < 120) & (np.hypot(yy, xx) <= 25)
    labels, n = ndimage.label(dark)
    if n == 0:
        return [0.0, 0.0, 0.0, 0.0]
    main = labels == 1 + int(np.argmax(ndimage.sum(dark, labels, range(1, n + 1))))
    area = main.sum()
    perimeter = (main & ~ndimage.binary_erosion(main)).sum()
    opened = ndimage.binary_opening(main, iterations=2).sum()
    edges = np.abs(ndimage.laplace(ndimage.gaussian_filter(grey, 0.7)))
    return [perimeter / np.sqrt(area), 1 - opened / area, float(n), edges[main].mean()]


def test_darkness_and_size_do_not_separate_mitoses_from_lookalikes_but_shape_does(tiny_root):
    grey, is_mitosis = _cell_patches(tiny_root, [MITOTIC_FIGURE, LOOKALIKE])
    assert 100 < is_mitosis.sum() and 100 < (~is_mitosis).sum()
    simple = np.array([_darkness_features(g) for g in grey])
    shape = np.array([_shape_features(g) for g in grey])
    linear = make_pipeline(StandardScaler(), LogisticRegression())
    acc_simple = cross_val_score(linear, simple, is_mitosis, cv=5).mean()
    majority = max(is_mitosis.mean(), 1 - is_mitosis.mean())
    assert acc_simple < min(0.75, majority + 0.12)
    forest = RandomForestClassifier(n_estimators=150, min_samples_leaf=3, random_state=0)
    acc_shape = cross_val_score(forest, np.c_[simple, shape], is_mitosis, cv=5).mean()
    assert acc_shape > 0.85 and acc_shape > acc_simple + 0.2


def test_gallery_draws_every_class(tiny_root, tmp_path):
    patches = gallery_patches(tiny_root, per_class=3, patch_px=96)
    assert set(patches) == {MITOTIC_FIGURE, LOOKALIKE, GRANULOCYTE, TUMOR_CELL, AMBIGUOUS}
    assert all(len(v) == 3 and v[0].shape == (96, 96, 3) for v in patches.values())
    fig = draw_gallery(tiny_root, per_class=3, patch_px=96, out=tmp_path / "gallery.png")
    assert len(fig.axes) == 15 and (tmp_path / "gallery.png").stat().st_size > 10_000


def test_cli_regenerates_identically_and_resumes(tiny_root, tmp_path, capsys):
    from ccmct.synthetic.dataset import _cached_library

    _cached_library.cache_clear()  # draw the stamps again, as a fresh process would
    out = tmp_path / "again"
    assert cli_main(["synth", "--out", str(out), "--preset", "tiny", "--seed", "0", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["slides"].keys() == read_report(tiny_root)["slides"].keys()
    files = sorted(p.relative_to(tiny_root) for p in tiny_root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    for rel in files:
        if rel.suffix in (".svs", ".json"):
            assert (out / rel).read_bytes() == (tiny_root / rel).read_bytes(), rel
    for variant in ("MEL", "ODAEL", "Tumorzone"):
        assert _table_dump(DataRoot(out).database(variant)) == _table_dump(DataRoot(tiny_root).database(variant))
    # resume: a lost slide and lost databases come back, finished slides are not rewritten
    slides = sorted((out / "WSI").iterdir())
    kept_mtime = slides[1].stat().st_mtime_ns
    slides[0].unlink()
    shutil.rmtree(out / "databases")
    generate_dataset(out, preset="tiny", seed=0, progress=False)
    assert slides[0].read_bytes() == (tiny_root / "WSI" / slides[0].name).read_bytes()
    assert slides[1].stat().st_mtime_ns == kept_mtime
    assert _table_dump(DataRoot(out).database("HEAEL")) == _table_dump(DataRoot(tiny_root).database("HEAEL"))


def _table_dump(path):
    with SlideRunnerDB.open(path) as db:
        return [db._con.execute(f"SELECT * FROM {t} ORDER BY uid").fetchall() for t in REQUIRED_TABLES]


def test_refuses_a_folder_holding_another_root_and_bad_options(tiny_root, tmp_path, capsys):
    with pytest.raises(CcmctError, match="seed"):
        generate_dataset(tiny_root, preset="tiny", seed=1, progress=False)
    with pytest.raises(CcmctError, match="unknown synthetic preset"):
        generate_dataset(tmp_path / "x", preset="huge", progress=False)
    with pytest.raises(CcmctError, match="mpp"):
        generate_dataset(tmp_path / "y", preset="tiny", mpp=0.0, progress=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(CcmctError, match="is a file"):
        generate_dataset(tmp_path / "file", preset="tiny", progress=False)
    real = tmp_path / "real"
    (real / "WSI").mkdir(parents=True)
    (real / "WSI" / "be10fa37ad6e88e1f406.svs").write_bytes(b"x")
    assert cli_main(["synth", "--out", str(real)]) == 2
    assert "choose an empty folder" in capsys.readouterr().err


def _small_renderer(px_per_um: float):
    from ccmct.synthetic.layout import make_layout
    from ccmct.synthetic.library import build_library
    from ccmct.synthetic.render import SlideRenderer
    from ccmct.synthetic.stain import random_stain
    from ccmct.synthetic.tissue import make_tissue_map

    rng = np.random.default_rng(5)
    library = build_library(rng, px_per_um, 8)
    tmap = make_tissue_map(rng, (2300, 1400), factor_px=max(int(round(8 * px_per_um)), 4), hotspot_sigma_cells=4.0,
                           blur_probability=1.0, stripe_px=400)
    assert len(tmap.blur_boxes_l0) == 1
    layout = make_layout(rng, tmap, px_per_um=px_per_um, n_mitoses=20, n_lookalikes=20,
                         stamp_counts={k: len(v) for k, v in library.stamps.items()})
    return SlideRenderer(tmap, layout, library, random_stain(rng), seed=1), layout


@pytest.mark.parametrize("px_per_um", [4.0, 1 / 0.3])
def test_strips_of_any_height_give_the_same_pixels(px_per_um):
    renderer, layout = _small_renderer(px_per_um)
    whole = renderer(0, 1400)
    assert whole.shape == (1400, 2300, 3) and whole.dtype == np.uint8
    pieces = np.concatenate([renderer(y0, min(77, 1400 - y0)) for y0 in range(0, 1400, 77)])
    assert np.array_equal(whole, pieces)
    # the glass is bright, the cells are darker than their surroundings
    assert whole[:8, :8].mean() > 200
    grey = whole.mean(axis=2)
    inside = (layout.y_l0 > 10) & (layout.y_l0 < 1390)
    centres = grey[layout.y_l0[inside], layout.x_l0[inside]]
    assert np.median(centres) < np.median(grey[grey < 215])


def test_other_mpp_scales_pixels_not_tissue(tmp_path):
    report = generate_dataset(tmp_path / "mpp05", preset="tiny", seed=2, mpp=0.5, progress=False)
    for name, info in report["slides"].items():
        assert (info["width"], info["height"]) == (1600, 1280)
        with open_slide(tmp_path / "mpp05" / "WSI" / name) as slide:
            assert slide.mpp == pytest.approx(0.5)
        assert info["counts"]["ODAEL"][MITOTIC_FIGURE] >= 25


def test_odael_proposals_label_small_dark_cells_as_lookalikes_in_odael_only():
    """ODAEL's detector proposals: most lymphocytes (some fibroblasts) inside the tumour zone become look-alikes
    there, and only there; MEL / HEAEL never label them."""
    from ccmct.synthetic.annotations import simulate_labels
    from ccmct.synthetic.layout import KIND, PROPOSED_SHARE

    _, layout = _small_renderer(4.0)
    rng = np.random.default_rng(3)
    spots = simulate_labels(rng, layout)
    for name in ("lymphocyte", "fibroblast"):
        labelled = layout.of_kind(name)
        everywhere = layout.of_kind(name, annotated_only=False)
        assert len(everywhere) > 0 and len(labelled) <= len(everywhere)
        xy = set(zip(layout.x_l0[labelled].tolist(), layout.y_l0[labelled].tolist()))
        for variant, want in (("MEL", set()), ("HEAEL", set()), ("ODAEL", {LOOKALIKE} if len(labelled) else set())):
            got = {c for p, c in zip(spots[variant].xy_l0, spots[variant].agreed) if tuple(p) in xy}
            assert got == want, (name, variant)
    lymph = layout.of_kind("lymphocyte")
    assert len(lymph) > 0 and PROPOSED_SHARE["lymphocyte"] > PROPOSED_SHARE["fibroblast"]
