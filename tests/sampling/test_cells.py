"""Cell patches: geometry on a slide whose pixels encode their own coordinates, tables on the tiny root."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ccmct.config import AMBIGUOUS, MITOTIC_FIGURE, DataRoot
from ccmct.data.sliderunner import SlideRunnerDB
from ccmct.data.slides import open_slide
from ccmct.data.svs_writer import write_svs
from ccmct.sampling.cells import (
    CELL_CLASS_IDS,
    CELL_CLASSES,
    PATCH_SIZE_PX,
    CellPatchDataset,
    assign_subsets,
    cell_table,
    export_patches,
    patch_origin_l0,
    read_cell_patch,
)

WIDTH, HEIGHT = 520, 390


@pytest.fixture(scope="module")
def coordinate_slide(tmp_path_factory):
    """A lossless slide with R = x mod 256, G = y mod 256, B = 16 * (x // 256) + y // 256 (never 255)."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    image = np.stack([x % 256, y % 256, 16 * (x // 256) + y // 256], axis=2).astype(np.uint8)
    path = tmp_path_factory.mktemp("coords") / "coords.svs"
    write_svs(path, image, compression="zlib", tile=256)
    return path


def _decode(rgb: np.ndarray) -> tuple[int, int]:
    r, g, b = (int(v) for v in rgb)
    return r + 256 * (b // 16), g + 256 * (b % 16)


def test_patch_origin_rounds_the_centre_and_puts_it_at_pixel_64():
    origins = patch_origin_l0(np.array([[100.0, 200.0], [100.49, 200.5], [0.0, 3.0]]))
    assert origins.tolist() == [[36, 136], [36, 137], [-64, -61]]
    assert patch_origin_l0(np.array([10.0, 10.0]), size_px=32).tolist() == [-6, -6]


@pytest.mark.parametrize("centre", [(300, 200), (64, 64), (455, 325), (257.4, 130.6)])
def test_patch_is_128px_and_centred(coordinate_slide, centre):
    with open_slide(coordinate_slide) as slide:
        patch = read_cell_patch(slide, *centre)
    assert patch.shape == (PATCH_SIZE_PX, PATCH_SIZE_PX, 3) and patch.dtype == np.uint8
    expected = (int(np.floor(centre[0] + 0.5)), int(np.floor(centre[1] + 0.5)))
    assert _decode(patch[64, 64]) == expected  # row = y, column = x
    assert _decode(patch[0, 0]) == (expected[0] - 64, expected[1] - 64)
    assert _decode(patch[127, 127]) == (expected[0] + 63, expected[1] + 63)


def test_patch_at_slide_edge_is_white_outside_and_still_centred(coordinate_slide):
    with open_slide(coordinate_slide) as slide:
        corner = read_cell_patch(slide, 10, 20)
        far = read_cell_patch(slide, WIDTH - 5, HEIGHT - 1)
    # top-left corner: origin (-54, -44); rows < 44 and columns < 54 are outside the slide
    assert (corner[:44] == 255).all() and (corner[:, :54] == 255).all()
    assert _decode(corner[64, 64]) == (10, 20)
    assert _decode(corner[44, 54]) == (0, 0)
    # bottom-right: x >= WIDTH from column 64 + 5, y >= HEIGHT from row 64 + 1
    assert (far[:, 69:] == 255).all() and (far[65:] == 255).all()
    assert _decode(far[64, 64]) == (WIDTH - 5, HEIGHT - 1)
    assert (far[:65, :69, 2] != 255).all()


def test_dataset_normalises_and_augments_without_moving_the_centre(coordinate_slide):
    centres = np.array([[300.0, 200.0], [10.0, 20.0]])
    plain = CellPatchDataset([coordinate_slide] * 2, centres, np.array([0, 3]), mean=(0, 0, 0), std=(1, 1, 1))
    image, label = plain[0]
    assert image.shape == (3, 128, 128) and int(label) == 0
    assert np.allclose(image.permute(1, 2, 0).numpy() * 255, plain.patch(0), atol=1e-3)
    normed = CellPatchDataset([coordinate_slide] * 2, centres, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert np.allclose(normed[1][0].numpy(), (image_of(plain, 1) - 0.5) / 0.25, atol=1e-5)
    assert int(normed[1][1]) == -1  # no labels: inference
    augmented = CellPatchDataset([coordinate_slide], centres[:1], augment=True, mean=(0, 0, 0), std=(1, 1, 1))
    assert augmented[0][0].shape == (3, 128, 128)
    assert float(augmented[0][0].min()) >= 0 and float(augmented[0][0].max()) <= 1


def test_jitter_moves_training_centres_within_bounds_and_only_when_augmenting(coordinate_slide):
    centres = np.array([[300.0, 200.0]])
    plain = CellPatchDataset([coordinate_slide], centres, mean=(0, 0, 0), std=(1, 1, 1))
    assert _decode(plain.patch(0, shift_px=(3, -2))[64, 64]) == (303, 198)
    for augment, jitter, expect_moves in ((True, 5, True), (True, 0, False), (False, 5, False)):
        ds = CellPatchDataset([coordinate_slide], centres, augment=augment, jitter_px=jitter)
        shifts = []
        real_patch = ds.patch
        ds.patch = lambda i, shift_px=(0, 0): shifts.append(shift_px) or real_patch(i, shift_px=shift_px)
        torch.manual_seed(0)
        for _ in range(300):
            ds[0]
        shifts = np.array(shifts)
        if expect_moves:
            assert shifts.min() == -5 and shifts.max() == 5 and len({tuple(s) for s in shifts}) > 60
        else:
            assert (shifts == 0).all()
    with pytest.raises(ValueError, match="jitter_px"):
        CellPatchDataset([coordinate_slide], centres, jitter_px=-1)


def image_of(dataset, index):
    return dataset.patch(index).transpose(2, 0, 1).astype(np.float32) / 255.0


def test_dataset_rejects_mismatched_lengths(coordinate_slide):
    with pytest.raises(ValueError, match="2 slide paths but 1 centres"):
        CellPatchDataset([coordinate_slide] * 2, np.array([[1.0, 2.0]]))


# ---------------------------------------------------------------------------------------------- tiny root
@pytest.fixture(scope="module")
def tiny_cells(tiny_root):
    return cell_table(tiny_root, "ODAEL")


def test_cell_table_has_the_four_classes_and_no_ambiguous(tiny_root, tiny_cells):
    with SlideRunnerDB.open(DataRoot(tiny_root).database("ODAEL")) as db:
        spots = db.spots()
    expected = spots[spots["agreed_class"].isin(CELL_CLASS_IDS)]
    assert len(tiny_cells) == len(expected) > 0
    assert set(tiny_cells["anno_id"]) == set(expected["anno_id"])
    assert AMBIGUOUS not in set(tiny_cells["class_id"])
    assert set(tiny_cells["class_id"]) <= set(CELL_CLASS_IDS)
    assert (tiny_cells["class_id"].to_numpy() == np.array(CELL_CLASS_IDS)[tiny_cells["label"]]).all()
    split = DataRoot(tiny_root).split()
    assert (tiny_cells["split"] == tiny_cells["slide"].map(split)).all()
    assert set(tiny_cells["split"]) == {"train", "test"}


def test_assign_subsets_lower_half_with_few_training_slides(tiny_root, tiny_cells):
    table, info = assign_subsets(tiny_cells, tiny_root)
    assert info["rule"] == "lower_half"  # the tiny root has fewer than 4 training slides
    train = table[table["split"] == "train"]
    for name, rows in train.groupby("slide"):
        with open_slide(DataRoot(tiny_root).slide_path(name)) as slide:
            half = slide.dimensions[1] / 2
        assert (rows.loc[rows["subset"] == "valid", "y_l0"] >= half).all()
        assert (rows.loc[rows["subset"] == "train", "y_l0"] < half).all()
    assert (table.loc[table["split"] == "test", "subset"] == "test").all()


def test_assign_subsets_holds_out_whole_slides(tiny_root, tiny_cells):
    table, info = assign_subsets(tiny_cells, tiny_root, min_slides_for_holdout=2, holdout_fraction=0.4, seed=3)
    assert info["rule"] == "slides" and len(info["valid_slides"]) == 1
    valid_slide = info["valid_slides"][0]
    assert (table.loc[table["slide"] == valid_slide, "subset"] == "valid").all()
    assert not (table.loc[table["slide"] != valid_slide, "subset"] == "valid").any()
    assert ((table["slide"] == valid_slide) & (table["class_id"] == MITOTIC_FIGURE)).any()


def test_export_writes_the_authors_layout_and_resumes(tiny_root, tiny_cells, tmp_path):
    rows = tiny_cells.groupby(["split", "label"]).head(2)
    counts = export_patches(rows, tiny_root, tmp_path, progress=False)
    assert sum(counts.values()) == len(rows)
    for row in rows.itertuples():
        png = tmp_path / row.split / CELL_CLASSES[row.label].folder / f"{row.anno_id}.png"
        image = np.asarray(Image.open(png))
        assert image.shape == (128, 128, 3)
        with open_slide(DataRoot(tiny_root).slide_path(row.slide)) as slide:
            assert (image == read_cell_patch(slide, row.x_l0, row.y_l0)).all()
    assert {p.name for p in tmp_path.iterdir()} == {"train", "test"}
    assert {p.name for p in (tmp_path / "train").iterdir()} == {c.folder for c in CELL_CLASSES}
    first = next(tmp_path.rglob("*.png"))
    stamp = first.stat().st_mtime_ns
    export_patches(rows, tiny_root, tmp_path, progress=False)
    assert first.stat().st_mtime_ns == stamp and not list(tmp_path.rglob("*.tmp"))


def test_cell_table_names_a_missing_database(tmp_path):
    with pytest.raises(Exception, match="MITOS_WSI_CCMCT_MEL.sqlite"):
        cell_table(tmp_path, "MEL")


def test_export_script_writes_every_cell_once(tiny_root, tiny_cells, tmp_path, capsys):
    import runpy
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "2nd_stage" / "exportDataset.py"
    argv = sys.argv
    try:
        sys.argv = [str(script), "--variant", "ODAEL", "--data-root", str(tiny_root), "--out", str(tmp_path)]
        with pytest.raises(SystemExit) as exit_info:
            runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv
    assert exit_info.value.code == 0
    pngs = sorted(tmp_path.rglob("*.png"))
    assert len(pngs) == len(tiny_cells)
    assert {int(p.stem) for p in pngs} == set(tiny_cells["anno_id"])
    expected = tiny_cells.groupby(["split", "label"]).size()
    for (split, label), n in expected.items():
        assert len(list((tmp_path / split / CELL_CLASSES[label].folder).glob("*.png"))) == n
    assert "train/Mitosis:" in capsys.readouterr().out
