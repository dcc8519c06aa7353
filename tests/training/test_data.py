"""Patch loading on the synthetic tiny root: halves, targets, workers, no test slide opened."""

import numpy as np
import pytest
import torch

from ccmct.config.dataset import MITOTIC_FIGURE
from ccmct.config.paths import DataRoot
from ccmct.data import slides as slides_module
from ccmct.data.sliderunner import SlideRunnerDB
from ccmct.sampling.patches import CASE_MITOSIS, PatchSampler
from ccmct.sampling.slides import load_training_slides
from ccmct.training.data import Normalise, PatchDataset, collate_patches, make_dataloader


@pytest.fixture(scope="module")
def opened_and_slides(tiny_root):
    opened = []
    original = slides_module.Slide.__init__

    def spy(self, path, *args, **kwargs):
        opened.append(str(path))
        original(self, path, *args, **kwargs)

    slides_module.Slide.__init__ = spy
    try:
        slides = load_training_slides(tiny_root, "ODAEL")
        sampler = PatchSampler(slides, half="train", tile_px=256, box_px=50)
        dataset = PatchDataset(sampler, 24, seed=0, augment=True)
        items = [dataset[i] for i in range(len(dataset))]
    finally:
        slides_module.Slide.__init__ = original
    return opened, slides, dataset, items


def test_only_training_slides_are_opened(tiny_root, opened_and_slides):
    opened, slides, _, _ = opened_and_slides
    root = DataRoot(tiny_root)
    test = root.test_slides()
    assert test and slides
    assert {s.filename for s in slides} == {n for n, s in root.split().items() if s == "train"}
    assert not any(path.endswith(name) for path in opened for name in test)


def test_cells_come_from_the_database(tiny_root, opened_and_slides):
    _, slides, _, _ = opened_and_slides
    with SlideRunnerDB.open(DataRoot(tiny_root).database("ODAEL")) as db:
        uid = dict(zip(db.slides()["filename"], db.slides()["uid"]))[slides[0].filename]
        n_mf = len(db.spots(slide=int(uid), classes=[MITOTIC_FIGURE]))
    assert len(slides[0].mitoses_xy) == n_mf > 0
    assert slides[0].tissue_xy.shape[0] > 0


def test_items_and_targets(opened_and_slides):
    _, _, dataset, items = opened_and_slides
    for i, (image, boxes) in enumerate(items):
        assert image.shape == (3, 256, 256) and image.dtype == torch.uint8
        assert boxes.shape[1] == 4
        if dataset.specs.case[i] == CASE_MITOSIS:
            assert len(boxes) >= 1
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        assert ((centres >= 0) & (centres < 256)).all()
    # the unaugmented patch of a mitosis case shows a dark cell where the box is
    i = int(np.flatnonzero(dataset.specs.case == CASE_MITOSIS)[0])
    image, boxes = dataset.read(i)
    cx, cy = dataset.specs.cell_xy_l0[i] - (dataset.specs.x_l0[i], dataset.specs.y_l0[i])
    cell = image[int(cy) - 8: int(cy) + 8, int(cx) - 8: int(cx) + 8].mean()
    assert cell < image.mean()


def test_epochs_redraw_but_fixed_sets_do_not(opened_and_slides):
    _, _, dataset, _ = opened_and_slides
    before = dataset.specs.x_l0.copy()
    dataset.set_epoch(1)
    assert not np.array_equal(before, dataset.specs.x_l0)
    dataset.set_epoch(0)
    assert np.array_equal(before, dataset.specs.x_l0)
    fixed = PatchDataset(dataset.sampler, 8, seed=3, augment=False, fixed=True)
    first = fixed.specs.x_l0.copy()
    fixed.set_epoch(5)
    assert np.array_equal(first, fixed.specs.x_l0)


def test_collate_pads():
    items = [(torch.zeros(3, 8, 8, dtype=torch.uint8), torch.ones(2, 4)),
             (torch.zeros(3, 8, 8, dtype=torch.uint8), torch.zeros(0, 4))]
    images, boxes, labels = collate_patches(items)
    assert images.shape == (2, 3, 8, 8) and boxes.shape == (2, 2, 4)
    assert labels.tolist() == [[1, 1], [0, 0]]
    _, boxes, labels = collate_patches(items[1:])
    assert boxes.shape == (1, 1, 4) and labels.tolist() == [[0]]


def test_worker_processes_deliver_normalised_batches(opened_and_slides):
    _, _, dataset, _ = opened_and_slides
    dl = make_dataloader(dataset, batch_size=8, num_workers=2, normalise=Normalise((0.5,) * 3, (0.25,) * 3),
                         device="cpu")
    batches = list(dl)
    assert len(batches) == 3
    x, boxes, labels = batches[0]
    assert x.dtype == torch.float32 and x.shape == (8, 3, 256, 256)
    assert x.min() >= -2.0 - 1e-6 and x.max() <= 2.0 + 1e-6
    expected = collate_patches([dataset[i] for i in range(8)])
    assert torch.allclose(x, (expected[0].float() / 255 - 0.5) / 0.25)
    assert torch.equal(boxes, expected[1])
