"""Ablation subsets: HPF geometry, crops as OpenSlide-readable pyramids, subset databases, WSI subsets."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from ccmct.cli import main
from ccmct.config.dataset import MITOTIC_FIGURE, LOOKALIKE, REAL_SLIDES, WSI_SUBSETS
from ccmct.config.paths import DataRoot, write_split
from ccmct.data.sliderunner import AnnotationType, SlideRunnerDB
from ccmct.data.slides import open_slide
from ccmct.data.subsets import (
    CropWindow,
    choose_kept_slides,
    create_hpf_subset,
    create_wsi_subsets,
    find_subsets,
    high_mc_rectangles,
    hpf_crop_size_px,
    place_crop,
    read_manifest,
)
from ccmct.data.svs_writer import write_svs
from ccmct.errors import CcmctError, FileProblem

MPP = 1.0  # coarse µm/px keeps n-HPF crops small: 5 HPF = 1256 x 942 px
SLIDES = {"train_a.svs": ("train", (3072, 2048), (1200, 600, 1800, 1040)),
          "test_b.svs": ("test", (2560, 1792), (2000, 1400, 2400, 1720))}  # near the corner: shifted


def _image(size_wh, seed):
    w, h = size_wh
    yy, xx = np.mgrid[0:h, 0:w]
    noise = np.random.default_rng(seed).integers(0, 40, (h, w, 3))
    return np.stack([(xx * 7 + yy) % 216, (yy * 5) % 216, (xx * 3 + yy * 2) % 216], -1).astype(np.uint8) + noise.astype(np.uint8)


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    """Two slides (zlib, exact pixels), a HighMCAreas DB with a degenerate decoy box, and an ODAEL DB."""
    root = DataRoot(tmp_path_factory.mktemp("small_root"))
    root.wsi_dir.mkdir()
    rng = np.random.default_rng(1)
    with SlideRunnerDB.create(root.high_mc_areas) as hmc, SlideRunnerDB.create(root.database("ODAEL")) as odael:
        hmc.add_class("10hpf selection")
        hmc.add_person("expert")
        for cls, name in ((MITOTIC_FIGURE, "Mitotic figure"), (LOOKALIKE, "Look-alike")):
            odael.add_class(name, uid=cls)
        odael.add_person("expert 1")
        for i, (name, (_, size, rect)) in enumerate(SLIDES.items()):
            write_svs(root.slide_path(name), _image(size, i), mpp=MPP, compression="zlib")
            uid = hmc.add_slide(name)
            hmc.add_annotation(uid, AnnotationType.RECTANGLE, [(5, 5), (12, 5)], 1, [(1, 1)])  # 7x0 decoy
            hmc.add_annotation(uid, AnnotationType.RECTANGLE, [rect[:2], rect[2:]], 1, [(1, 1)])
            uid = odael.add_slide(name)
            xy = rng.integers(0, size, (300, 2))
            odael.add_spots(uid, xy, rng.choice([MITOTIC_FIGURE, LOOKALIKE], 300), [[(1, MITOTIC_FIGURE)]] * 300)
    write_split(root.split_file, [n for n, s in SLIDES.items() if s[0] == "train"],
                [n for n, s in SLIDES.items() if s[0] == "test"])
    return root


@pytest.fixture(scope="module")
def hpf5(small_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("hpf") / "5HPF"
    return out, create_hpf_subset(small_root.path, out, 5, compression="zlib")


def test_hpf_sizes_reproduce_the_paper_at_0_2533_mpp():
    assert hpf_crop_size_px(5, 0.2533) == (4962, 3721)
    assert hpf_crop_size_px(10, 0.2533) == (7017, 5263)
    assert hpf_crop_size_px(50, 0.2533) == (15692, 11769)
    assert hpf_crop_size_px(10, 0.25) == (7110, 5332)
    with pytest.raises(ValueError, match="must be > 0"):
        hpf_crop_size_px(10, 0)


def test_place_crop_centre_top_left_shift_and_cut():
    rect, slide = (1000, 1000, 1400, 1300), (5000, 4000)
    centre = place_crop(rect, (200, 100), slide)
    assert (centre.x_l0, centre.y_l0, centre.shifted) == (1100, 1100, False)
    top_left = place_crop(rect, (200, 100), slide, anchor="top-left")
    assert (top_left.x_l0, top_left.y_l0) == (1000, 1000)
    edge = place_crop((4900, 3900, 4990, 3990), (400, 300), slide)
    assert (edge.x_l0, edge.y_l0, edge.shifted, edge.truncated) == (4600, 3700, True, False)
    big = place_crop(rect, (6000, 1000), slide)
    assert (big.x_l0, big.width_px, big.height_px, big.truncated) == (0, 5000, 1000, True)
    with pytest.raises(ValueError, match="anchor"):
        place_crop(rect, (10, 10), slide, anchor="middle")


def test_window_bounds_are_inclusive():
    window = CropWindow(10, 20, 100, 50)
    points = np.array([[10, 20], [110, 70], [9, 30], [111, 30], [50, 19], [50, 71]])
    assert window.contains(points).tolist() == [True, True, False, False, False, False]


def test_widest_rectangle_is_the_authors_6000px_rule_on_the_real_file(high_mc_db):
    rects = high_mc_rectangles(high_mc_db)
    assert len(rects) == 32 and {s.filename for s in REAL_SLIDES} == set(rects)
    assert all(x2 - x1 > 6000 for x1, _, x2, _ in rects.values())
    assert rects["c91a842257ed2add5134.svs"] == (23245, 40847, 30263, 46098)  # not the 7x0 box
    assert rects["1018715d369dd0df2fc0.svs"] == (47954, 16958, 55052, 22521)


def test_hpf_crops_are_pyramids_with_the_source_pixels(small_root, hpf5):
    out, manifest = hpf5
    for name, entry in manifest["slides"].items():
        win = entry["window"]
        assert (win["width_px"], win["height_px"]) == hpf_crop_size_px(5, MPP) == (1256, 942)
        with open_slide(out / "WSI" / name) as crop, open_slide(small_root.slide_path(entry["source"])) as src:
            assert crop.vendor == "aperio" and crop.level_count >= 2 and crop.mpp == pytest.approx(MPP)
            assert crop.dimensions == (1256, 942)
            expected = src.read_l0(win["x_l0"], win["y_l0"], (1256, 942))
            np.testing.assert_array_equal(crop.read_l0(0, 0, (1256, 942)), expected)
    assert set(manifest["slides"]) == {"train_a.tiff", "test_b.tiff"}


def test_hpf_crop_is_centred_and_clamped(hpf5):
    _, manifest = hpf5
    a, b = manifest["slides"]["train_a.tiff"], manifest["slides"]["test_b.tiff"]
    assert (a["window"]["x_l0"], a["window"]["y_l0"]) == (1500 - 628, 820 - 471)  # centre (1500, 820)
    assert not a["window"]["shifted"]
    assert b["window"]["shifted"] and (b["window"]["x_l0"], b["window"]["y_l0"]) == (2560 - 1256, 1792 - 942)
    assert manifest["adjusted"] == ["test_b.tiff"]


def test_hpf_database_keeps_and_shifts_annotations(small_root, hpf5):
    out, manifest = hpf5
    with SlideRunnerDB.open(small_root.database("ODAEL")) as src, SlideRunnerDB.open(DataRoot(out).database("ODAEL")) as db:
        assert db.classes().equals(src.classes())
        for name, entry in manifest["slides"].items():
            win = CropWindow(**entry["window"])
            spots = src.spots(src.find_slide(entry["source"]))
            inside = spots[win.contains(spots[["x", "y"]].to_numpy())]
            got = db.spots(db.find_slide(name))
            assert len(got) == len(inside) > 0
            np.testing.assert_array_equal(got[["x", "y"]].to_numpy(), inside[["x", "y"]].to_numpy() - [win.x_l0, win.y_l0])
            assert got["agreed_class"].tolist() == inside["agreed_class"].tolist()
            assert len(db.labels(db.find_slide(name))) == len(inside)
            assert entry["counts"]["ODAEL"] == {str(k): int(v) for k, v in inside.groupby("agreed_class").size().items()}
    split = DataRoot(out).split()
    assert split == {"train_a.tiff": "train", "test_b.tiff": "test"}
    train_mf = int(manifest["slides"]["train_a.tiff"]["counts"]["ODAEL"][str(MITOTIC_FIGURE)])
    assert manifest["train_mitoses"] == train_mf and manifest["n_train_slides"] == 1
    assert manifest["train_area_mm2"] == pytest.approx(5 * 0.237, rel=0.01)


def test_hpf_top_left_anchor_and_truncation_via_cli(small_root, tmp_path, capsys):
    code = main(["ablation", "hpf", "--data-root", str(small_root.path), "--hpf", "50", "--anchor", "top-left",
                 "--out", str(tmp_path), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)["50HPF"]
    assert summary["anchor"] == "top-left" and sorted(summary["adjusted"]) == ["test_b.tiff", "train_a.tiff"]
    manifest = read_manifest(tmp_path / "50HPF")
    a = manifest["slides"]["train_a.tiff"]["window"]
    assert a["truncated"] and (a["width_px"], a["height_px"]) == (3072, 2048)  # 3974 x 2980 > the slide
    assert list(find_subsets(tmp_path)) == ["50HPF"]


def test_hpf_resumes_over_complete_crops(small_root, hpf5):
    out, _ = hpf5
    crop = out / "WSI" / "train_a.tiff"
    before = crop.stat().st_mtime_ns
    create_hpf_subset(small_root.path, out, 5, compression="zlib")
    assert crop.stat().st_mtime_ns == before


def test_hpf_rerun_with_another_anchor_rewrites_the_crops(small_root, tmp_path):
    out = tmp_path / "5HPF"
    create_hpf_subset(small_root.path, out, 5, compression="zlib")
    manifest = create_hpf_subset(small_root.path, out, 5, compression="zlib", anchor="top-left")
    win = manifest["slides"]["train_a.tiff"]["window"]
    assert (win["x_l0"], win["y_l0"]) == (1200, 600)  # the rectangle's top-left corner
    with open_slide(out / "WSI" / "train_a.tiff") as crop, open_slide(small_root.slide_path("train_a.svs")) as src:
        np.testing.assert_array_equal(crop.read_l0(0, 0, (64, 64)), src.read_l0(1200, 600, (64, 64)))


def test_hpf_missing_rectangle_names_the_file(small_root, tmp_path):
    root = DataRoot(tmp_path / "root")
    root.databases_dir.mkdir(parents=True)
    os.symlink(small_root.wsi_dir, root.wsi_dir)
    (root.database("ODAEL")).write_bytes(small_root.database("ODAEL").read_bytes())
    root.split_file.write_text(small_root.split_file.read_text())
    with SlideRunnerDB.create(root.high_mc_areas) as db:
        db.add_slide("train_a.svs")
    with pytest.raises(FileProblem, match="HighMCAreas.sqlite: no reference rectangle .*test_b.svs"):
        create_hpf_subset(root.path, tmp_path / "out", 5)
    assert main(["ablation", "hpf", "--data-root", str(root.path), "--out", str(tmp_path / "o2")]) == 2


# ----------------------------------------------------------------------------------------------- WSI subsets
def _db_root(path, split, mitoses):
    root = DataRoot(path)
    root.wsi_dir.mkdir(parents=True)
    with SlideRunnerDB.create(root.database("ODAEL")) as db:
        db.add_class("Mitotic figure", uid=MITOTIC_FIGURE)
        for name in split:
            uid = db.add_slide(name)
            n = mitoses.get(name, 0)
            db.add_spots(uid, np.full((n + 1, 2), 50), [MITOTIC_FIGURE] * n + [LOOKALIKE])
    write_split(root.split_file, [n for n, s in split.items() if s == "train"],
                [n for n, s in split.items() if s == "test"])
    return root


def test_wsi_subsets_on_real_names_are_the_authors(tmp_path):
    split = {s.filename: s.split for s in REAL_SLIDES}
    root = _db_root(tmp_path / "real", split, {s.filename: 1 + s.uid for s in REAL_SLIDES})
    manifests = create_wsi_subsets(root.path, tmp_path / "out", (3, 6, 12))
    for n in (3, 6, 12):
        m = manifests[f"{n}WSI"]
        assert m["rule"] == "paper" and m["train_slides"] == sorted(WSI_SUBSETS[n])
        sub = DataRoot(tmp_path / "out" / f"{n}WSI")
        with SlideRunnerDB.open(sub.database("ODAEL")) as db:
            assert set(db.slides()["filename"]) == set(WSI_SUBSETS[n]) | {s.filename for s in REAL_SLIDES if s.split == "test"}
        assert sub.test_slides() == frozenset(m["test_slides"]) and len(m["test_slides"]) == 11
        assert sub.wsi_dir.is_symlink() and sub.wsi_dir.resolve() == root.wsi_dir.resolve()
    assert manifests["3WSI"]["train_mitoses"] == sum(1 + s.uid for s in REAL_SLIDES if s.filename in WSI_SUBSETS[3])


def test_wsi_subsets_on_synthetic_data_are_nested_and_capped(tmp_path, capsys):
    split = {f"tr{i}.svs": "train" for i in range(7)} | {"te0.svs": "test", "te1.svs": "test"}
    mitoses = {f"tr{i}.svs": (0 if i < 3 else i) for i in range(7)} | {"te0.svs": 4}
    root = _db_root(tmp_path / "syn", split, mitoses)
    assert main(["ablation", "wsi", "--data-root", str(root.path), "--wsi", "1", "3", "6", "12",
                 "--out", str(tmp_path / "out"), "--json"]) == 0
    ms = json.loads(capsys.readouterr().out)
    kept = {n: set(read_manifest(tmp_path / "out" / f"{n}WSI")["train_slides"]) for n in (1, 3, 6, 12)}
    assert kept[1] < kept[3] < kept[6] < kept[12] == {f"tr{i}.svs" for i in range(7)}
    assert kept[3] < {"tr3.svs", "tr4.svs", "tr5.svs", "tr6.svs"}  # slides without mitoses are removed first
    assert ms["12WSI"]["capped"] and ms["12WSI"]["n_train_slides"] == 7 and not ms["6WSI"]["capped"]
    for n in (1, 3, 6, 12):
        assert DataRoot(tmp_path / "out" / f"{n}WSI").test_slides() == {"te0.svs", "te1.svs"}
    again, rule = choose_kept_slides(list(mitoses)[:7], 3, mitoses)
    assert set(again) == kept[3] and rule == "seeded"
    other, _ = choose_kept_slides(list(mitoses)[:7], 3, mitoses, seed=5)
    assert all(mitoses[n] > 0 for n in other)


def test_wsi_subset_refuses_to_replace_a_real_folder(tmp_path):
    root = _db_root(tmp_path / "syn", {"a.svs": "train", "b.svs": "test"}, {"a.svs": 1})
    (tmp_path / "out" / "1WSI" / "WSI").mkdir(parents=True)
    with pytest.raises(CcmctError, match="not a link"):
        create_wsi_subsets(root.path, tmp_path / "out", (1,))


def test_read_manifest_errors(tmp_path):
    with pytest.raises(FileProblem, match="no subset manifest"):
        read_manifest(tmp_path)
    (tmp_path / "subset.json").write_text('{"kind": "other"}')
    with pytest.raises(FileProblem, match="not a subset manifest"):
        read_manifest(tmp_path)


# ----------------------------------------------------------------------------------------------- tiny root
def test_hpf_subset_of_the_synthetic_tiny_root(tiny_root, tmp_path):
    from ccmct.data.stats import table1

    root = DataRoot(tiny_root)
    manifest = create_hpf_subset(root.path, tmp_path / "0.5HPF", 0.5)
    rects = high_mc_rectangles(root.high_mc_areas)
    size = hpf_crop_size_px(0.5, 0.25)
    assert size == (1589, 1192)
    with SlideRunnerDB.open(root.database("ODAEL")) as src:
        for name, entry in manifest["slides"].items():
            win = CropWindow(**entry["window"])
            x1, y1, x2, y2 = rects[entry["source"]]
            assert (win.width_px, win.height_px) == size and not win.shifted
            assert abs(win.x_l0 + size[0] / 2 - (x1 + x2) / 2) <= 1 and abs(win.y_l0 + size[1] / 2 - (y1 + y2) / 2) <= 1
            mitoses = src.spots(src.find_slide(entry["source"]), classes=[MITOTIC_FIGURE])
            assert int(entry["counts"]["ODAEL"][str(MITOTIC_FIGURE)]) == int(win.contains(mitoses[["x", "y"]].to_numpy()).sum())
    # the subset is a data root: pipeline commands run on it unchanged
    table = table1(tmp_path / "0.5HPF")
    assert set(table["filename"]) == set(manifest["slides"])
    assert table.loc[table["split"] == "train", "mitotic_figure_ODAEL"].sum() == manifest["train_mitoses"] > 0


def test_wsi_subsets_of_the_synthetic_tiny_root(tiny_root, tmp_path):
    root = DataRoot(tiny_root)
    train = {n for n, s in root.split().items() if s == "train"}
    manifests = create_wsi_subsets(root.path, tmp_path, (1, 2, 3))
    kept = [set(manifests[f"{n}WSI"]["train_slides"]) for n in (1, 2, 3)]
    assert kept[0] < kept[1] < kept[2] == train
    for n in (1, 2, 3):
        sub = DataRoot(tmp_path / f"{n}WSI")
        assert sub.test_slides() == root.test_slides() and sub.slide_path(next(iter(train))).exists()
