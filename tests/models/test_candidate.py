"""The fast mode's candidate model: config, heat-map targets, loss, peaks, model directory, training + resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ccmct.errors import CcmctError, ModelError
from ccmct.models.candidate import CandidateConfig, CandidateNet, cells_to_input_px, heat_maps
from ccmct.models.io import load_model_dir, save_model_dir
from ccmct.training import candidate as training
from ccmct.training.candidate import CandidatePreset, choose_threshold, train_candidate

TINY = CandidatePreset("test", input_px=64, patches_per_epoch=16, val_patches=8, batch_size=8, epochs=2, lr_max=3e-3,
                       channels=(4, 8))


def test_forward_gives_one_logit_per_map_cell():
    for stride in (1, 2, 4):
        net = CandidateNet(CandidateConfig(map_stride=stride, channels=(4, 8))).eval()
        assert net(torch.zeros(2, 3, 64, 48)).shape == (2, 1, 64 // stride, 48 // stride)


def test_config_validation():
    with pytest.raises(ValueError, match="threshold"):
        CandidateConfig(threshold=0.0)
    with pytest.raises(ValueError, match="map_stride"):
        CandidateConfig(map_stride=3)
    config = CandidateConfig(downsample=4, map_stride=2)
    assert config.cell_l0 == 8 and config.peak_radius_cells == 3  # 25 px / 8 px per cell


def test_heat_map_is_one_at_each_centre_cell_and_gaussian_around():
    config = CandidateConfig(downsample=4, map_stride=2, heat_sigma_l0=8.0)
    centres = [np.array([[9.0, 5.0], [30.5, 30.5]]), np.zeros((0, 2))]  # input px
    heat = heat_maps(centres, (16, 16), config)
    assert heat.shape == (2, 1, 16, 16)
    assert heat[0, 0, 2, 4] == 1.0 and heat[0, 0, 15, 15] == 1.0          # floor(centre / stride)
    assert int((heat[0] == 1.0).sum()) == 2 and float(heat[1].abs().sum()) == 0.0
    sigma_cells = 8.0 / 8
    # cell (row 2, col 6): its centre is at cell units (6, 2); the figure at (9 / 2 - 0.5, 5 / 2 - 0.5) = (4, 2)
    assert float(heat[0, 0, 2, 6]) == pytest.approx(np.exp(-4 / (2 * sigma_cells**2)), rel=1e-5)
    assert float(heat[0, 0, 9, 9]) < 1e-6


def test_peaks_are_local_maxima_above_threshold_mapped_to_cell_centres():
    config = CandidateConfig(downsample=4, map_stride=2, threshold=0.3)
    net = CandidateNet(config)
    logits = torch.full((1, 1, 20, 20), -8.0)
    logits[0, 0, 5, 3] = 2.0      # a peak
    logits[0, 0, 5, 4] = 1.0      # its neighbour: not a maximum of its window
    logits[0, 0, 15, 15] = 0.0    # p = 0.5 > 0.3: a second peak
    logits[0, 0, 10, 18] = -2.0   # p = 0.12 < 0.3: below the threshold
    (cells, scores), = net.peaks(logits)
    assert sorted(map(tuple, cells.tolist())) == [(3, 5), (15, 15)]
    np.testing.assert_allclose(sorted(scores), sorted(torch.sigmoid(torch.tensor([2.0, 0.0])).tolist()), rtol=1e-6)
    np.testing.assert_array_equal(cells_to_input_px(np.array([[3, 5]]), 2), [[7.0, 11.0]])
    (cells, _), = net.peaks(logits, threshold=0.1)
    assert (18, 10) in map(tuple, cells.tolist())


def test_loss_falls_when_fitting_one_batch():
    torch.manual_seed(0)
    config = CandidateConfig(channels=(4, 8), map_stride=2)
    net = CandidateNet(config)
    images = torch.randn(2, 3, 32, 32)
    images[0, :, 10:14, 10:14] = 3.0          # a bright blob where the target is
    heat = heat_maps([np.array([[12.0, 12.0]]), np.zeros((0, 2))], (16, 16), config)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = net.loss(net(images), heat)["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_model_directory_round_trip_and_kind_checks(tmp_path):
    config = CandidateConfig(downsample=2, input_mpp=0.5, channels=(4, 8), threshold=0.07, variant="ODAEL",
                             preset="smoke")
    net = CandidateNet(config).eval()
    save_model_dir(tmp_path / "cand", net, config)
    document = json.loads((tmp_path / "cand" / "config.json").read_text())
    assert document["kind"] == "candidate"
    assert document["config"]["input_mpp"] == 0.5 and document["config"]["threshold"] == 0.07
    model, loaded = load_model_dir(tmp_path / "cand", kind="candidate")
    assert loaded == config
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(model(x), net(x))
    with pytest.raises(ModelError, match="candidate model .* needs a RetinaNet detector"):
        load_model_dir(tmp_path / "cand", kind="retinanet")


def test_choose_threshold_keeps_the_target_recall():
    assert choose_threshold(np.array([0.9, 0.8, 0.3, 0.05]), 0.75) == 0.3
    assert choose_threshold(np.array([0.9, 0.8, 0.3, 0.05]), 1.0) == 0.05
    assert choose_threshold(np.array([0.9, 0.0]), 1.0) == training.MIN_THRESHOLD     # a missed figure
    assert choose_threshold(np.array([0.99, 0.98]), 0.5) == training.MAX_THRESHOLD   # recall-first cap
    assert choose_threshold(np.zeros(0), 0.95) == training.MAX_THRESHOLD


def test_unknown_preset_is_refused():
    with pytest.raises(CcmctError, match="smoke, quick, paper"):
        training.candidate_preset("fast")


def test_training_writes_a_model_directory_and_an_interrupted_run_resumes(tiny_root, tmp_path, monkeypatch):
    out = tmp_path / "cand"
    real_validate = training._validate
    calls = {"n": 0}

    def interrupt_in_second_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_validate(*args, **kwargs)

    monkeypatch.setattr(training, "_validate", interrupt_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_candidate(tiny_root, "ODAEL", TINY, out, progress=False)
    state = torch.load(out / "checkpoint" / "state.pt", weights_only=True)
    assert state["epoch"] == 1 and len(state["history"]) == 1
    assert not (out / "weights.pt").exists()
    monkeypatch.setattr(training, "_validate", real_validate)

    summary = train_candidate(tiny_root, "ODAEL", TINY, out, progress=False)
    assert [row["epoch"] for row in summary["history"]] == [0, 1]
    assert summary["history"][0] == state["history"][0]            # epoch 0 not trained again
    assert not (out / "checkpoint").exists()
    model, config = load_model_dir(out, kind="candidate")
    assert config.threshold == summary["threshold"] and training.MIN_THRESHOLD <= config.threshold <= 0.5
    assert config.input_mpp == pytest.approx(0.25 * 4) and config.variant == "ODAEL"
    assert summary["valid_mitoses"] > 0
    weights_mtime = (out / "weights.pt").stat().st_mtime_ns
    assert train_candidate(tiny_root, "ODAEL", TINY, out, progress=False)["seconds"] == summary["seconds"]
    assert (out / "weights.pt").stat().st_mtime_ns == weights_mtime   # finished: not trained again
