"""Fast mode: reduced-level screening -> level-0 candidates (exact on planted spots), confirmation, resume,
the CLI, and bad input (wrong model kinds, a slide without the level, a classifier that does not fit)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ccmct.cli import main
from ccmct.config import DataRoot
from ccmct.data.levels import level_plan
from ccmct.data.results import read_metadata, read_results
from ccmct.data.svs_writer import write_svs
from ccmct.errors import ModelError
from ccmct.inference.fast import FastDetector, FastOptions, check_classifier, ownership, run_fast_inference
from ccmct.inference.runner import work_dir_for
from ccmct.models.candidate import CandidateConfig, CandidateNet
from ccmct.models.classifier import ClassifierConfig, build_classifier, save_classifier_dir
from ccmct.models.io import save_model_dir

GREY = 128
BLOCK_L0 = 8
"""Side of a planted grey block, level-0 px: one map cell at downsample 4 / stride 2 and at 2 / stride 4."""
SLIDE_WH = (1100, 900)
SPACING_L0 = 40


class GreyBlockCandidate(CandidateNet):
    """Hand-set candidate model: a map cell fires when all the input pixels it covers are pure grey.

    Logit = 20 x (grey fraction of the cell - 0.5): +10 on a planted block, -10 elsewhere. Peaks and loss
    are the real :class:`CandidateNet`'s.
    """

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.config.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.config.std).view(1, 3, 1, 1)
        rgb = images * std + mean
        grey = ((rgb * 255 - GREY).abs() < 0.5).all(dim=1, keepdim=True).float()
        fraction = F.avg_pool2d(grey, self.config.map_stride)
        return 20 * (fraction - 0.5)


def _planted_origins() -> np.ndarray:
    """Level-0 top-left corners of the grey blocks: a 40 px lattice over the whole slide, margins included."""
    xs = np.arange(0, SLIDE_WH[0] - BLOCK_L0 + 1, SPACING_L0)
    ys = np.arange(0, SLIDE_WH[1] - BLOCK_L0 + 1, SPACING_L0)
    xx, yy = np.meshgrid(xs, ys)
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


def _render(size_wh=SLIDE_WH, origins=None) -> np.ndarray:
    rng = np.random.default_rng(0)
    image = np.empty((size_wh[1], size_wh[0], 3), np.uint8)
    image[...] = np.array([225, 150, 195], np.uint8)
    image += rng.integers(0, 20, size=image.shape, dtype=np.uint8)
    for x, y in (_planted_origins() if origins is None else origins):
        image[y:y + BLOCK_L0, x:x + BLOCK_L0] = GREY
    return image


@pytest.fixture(scope="module")
def block_slide(tmp_path_factory) -> Path:
    return write_svs(tmp_path_factory.mktemp("blocks") / "blocks.svs", _render(), mpp=0.25, compression="zlib")


def _classifier(directory: Path, *, patch_px: int = 128, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)) -> Path:
    torch.manual_seed(0)
    config = ClassifierConfig(class_ids=(2, 7, 1, 3), class_names=("MF", "LA", "Gr", "TC"),
                              class_short=("MF", "LA", "Gr", "TC"), patch_size_px=patch_px, mean=mean, std=std,
                              preset="smoke", variant="ODAEL")
    return save_classifier_dir(directory, build_classifier(4).eval(), config)


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> Path:
    return _classifier(tmp_path_factory.mktemp("cls") / "cls")


def _detector(config: CandidateConfig, classifier_dir: Path, **options) -> FastDetector:
    from ccmct.models.io import load_model_dir

    classifier, cls_config = load_model_dir(classifier_dir, kind="cell_classifier")
    return FastDetector(GreyBlockCandidate(config).eval(), config, classifier, cls_config,
                        options=FastOptions(**options))


def test_ownership_splits_each_overlap_once():
    origins = np.array([0, 48, 96, 100])
    lo, hi = ownership(origins, 64, 164)
    positions = np.arange(-5, 170)
    owners = (positions[:, None] >= lo[None]) & (positions[:, None] < hi[None])
    assert np.all(owners.sum(axis=1) == 1)                       # every position has exactly one owner
    owner = owners.argmax(axis=1)
    inside = positions[(positions >= 0) & (positions < 164)]
    tile_of = owner[(positions >= 0) & (positions < 164)]
    assert np.all(inside - origins[tile_of] >= 0) and np.all(origins[tile_of] + 64 - inside > 0)
    assert lo[1] == (0 + 64 + 48) // 2


@pytest.mark.parametrize("downsample, map_stride, level, factor", [(4, 2, 1, 1), (2, 4, 0, 2)])
def test_candidates_map_exactly_to_level0_incl_tile_edges_and_margins(block_slide, classifier_dir, downsample,
                                                                        map_stride, level, factor, caplog):
    """Small screening tiles (64 reduced px, 8 px margins) so that the 40 px lattice of blocks puts blocks
    on and next to every tile edge and ownership boundary, and in the right / bottom margins. downsample 2:
    the slide has no 2x level (levels 1, 4, 16) -> level 0 reduced 2x, with a note."""
    config = CandidateConfig(downsample=downsample, map_stride=map_stride, threshold=0.5, channels=(4, 8))
    detector = _detector(config, classifier_dir, screen_tile_px=64, margin_px=8, screen_batch=7)
    with caplog.at_level(logging.WARNING, logger="ccmct"):
        screening = detector.screen(block_slide)
    assert (screening.plan.level, screening.plan.factor) == (level, factor)
    assert ("no pyramid level at downsample 2" in caplog.text) == (downsample == 2)
    expected = _planted_origins() + BLOCK_L0 / 2
    found = screening.centres_l0[np.lexsort(screening.centres_l0.T[::-1])]
    expected = expected[np.lexsort(expected.T[::-1])]
    assert found.shape == expected.shape                          # none lost at an edge, none found twice
    np.testing.assert_array_equal(found, expected)                # exact level-0 centres
    grid = detector.grid(SLIDE_WH)
    assert screening.tiles_total == len(grid) and grid.n_cols > 4 and grid.n_rows > 3
    assert np.all(screening.scores > 0.99)


def test_level_plan_prefers_the_level_then_the_coarsest_divisor():
    assert level_plan((1.0, 4.0003, 16.001), 4).factor == 1
    plan = level_plan((1.0, 4.0, 16.0), 8)
    assert (plan.level, plan.factor) == (1, 2) and "reading level 1 and reducing it 2x" in plan.note
    assert (level_plan((1.0,), 4).level, level_plan((1.0,), 4).factor) == (0, 4)


def test_detect_confirms_each_candidate_with_the_classifier(tmp_path, classifier_dir):
    origins = np.array([[96, 96], [400, 304], [640, 520]])
    slide = write_svs(tmp_path / "s.svs", _render((704, 608), origins), mpp=0.25, compression="zlib")
    config = CandidateConfig(threshold=0.5, channels=(4, 8))
    result = _detector(config, classifier_dir).detect(slide)
    centres = (result.boxes[:, :2] + result.boxes[:, 2:4]) / 2
    assert sorted(map(tuple, centres.tolist())) == sorted(map(tuple, (origins + 4.0).tolist()))
    np.testing.assert_array_equal(result.boxes[:, 2] - result.boxes[:, 0], 50)
    assert np.all(np.diff(result.boxes[:, 5]) <= 0) and np.all((result.boxes[:, 5] >= 0) & (result.boxes[:, 5] <= 1))
    from ccmct.inference.second_stage import rescore_slide
    from ccmct.models.io import load_model_dir

    classifier, cls_config = load_model_dir(classifier_dir, kind="cell_classifier")
    direct = rescore_slide(classifier, cls_config, slide, np.column_stack([centres - 25, centres + 25,
                                                                          np.zeros(3), np.ones(3)]))
    np.testing.assert_allclose(np.sort(direct[:, 5]), np.sort(result.boxes[:, 5]), rtol=1e-5)


@pytest.fixture(scope="module")
def block_root(tmp_path_factory) -> Path:
    """Three small test slides with three blocks each."""
    root = tmp_path_factory.mktemp("block_root")
    (root / "WSI").mkdir()
    for k, name in enumerate(["a.svs", "b.svs", "c.svs"]):
        origins = np.array([[96, 96], [400 - 40 * k, 304], [640, 520 - 40 * k]])
        write_svs(root / "WSI" / name, _render((704, 608), origins), mpp=0.25, compression="zlib")
    (root / "split.json").write_text(json.dumps({"train": [], "test": ["a.svs", "b.svs", "c.svs"]}))
    return root


@pytest.fixture(scope="module")
def block_candidate_dir(tmp_path_factory) -> Path:
    config = CandidateConfig(threshold=0.5, channels=(4, 8), variant="ODAEL", preset="hand-set")
    return save_model_dir(tmp_path_factory.mktemp("cand") / "cand", GreyBlockCandidate(config).eval(), config)


def _block_slides(root: Path) -> dict[str, Path]:
    return {name: root / "WSI" / name for name in ("a.svs", "b.svs", "c.svs")}


def test_resume_after_interruption(block_root, block_candidate_dir, classifier_dir, tmp_path, monkeypatch):
    """The loaded model is a plain CandidateNet (random weights) whose threshold would find nothing; a hand-set
    network is put in its place by patching the loader, so the run below is the library's own path."""
    import ccmct.inference.fast as fast

    real_load = fast.load_fast_models

    def load_with_grey_blocks(candidate_dir, classifier_dir_, *, device="cpu"):
        _, config, classifier, cls_config = real_load(candidate_dir, classifier_dir_, device=device)
        return GreyBlockCandidate(config).eval(), config, classifier, cls_config

    monkeypatch.setattr(fast, "load_fast_models", load_with_grey_blocks)
    real_detect = FastDetector.detect
    done = []

    def interrupt_on_second_slide(self, path, **kwargs):
        if len(done) == 1:
            raise KeyboardInterrupt
        done.append(path)
        return real_detect(self, path, **kwargs)

    out = tmp_path / "Fast-ODAEL-test.npz"
    monkeypatch.setattr(FastDetector, "detect", interrupt_on_second_slide)
    with pytest.raises(KeyboardInterrupt):
        run_fast_inference(block_candidate_dir, classifier_dir, _block_slides(block_root), out, progress=False)
    assert not out.exists() and sorted(p.name for p in work_dir_for(out).iterdir()) == ["a.svs.npz"]
    monkeypatch.setattr(FastDetector, "detect", real_detect)
    report, detector = run_fast_inference(block_candidate_dir, classifier_dir, _block_slides(block_root), out,
                                          progress=False)
    assert report.resumed == ["a.svs"] and report.computed == ["b.svs", "c.svs"]
    results = read_results(out)
    assert list(results) == ["a.svs", "b.svs", "c.svs"] and all(len(b) == 3 for b in results.values())
    assert set(detector.timings) == {"b.svs", "c.svs"}
    assert {"reading", "screening", "classifying"} <= set(detector.timings["b.svs"])
    metadata = read_metadata(out)
    assert metadata["mode"] == "fast" and metadata["settings"]["downsample"] == 4
    again, _ = run_fast_inference(block_candidate_dir, classifier_dir, _block_slides(block_root), out, progress=False)
    assert again.resumed == ["a.svs", "b.svs", "c.svs"] and again.computed == []


def _infer(*args):
    return main(["infer", "--split", "test", "--workers", "0", "--no-progress", *map(str, args)])


def test_fast_inference_on_the_tiny_set_with_smoke_models(tiny_root, tmp_path, classifier_dir, capsys):
    """``ccmct train --model candidate --preset smoke`` then ``ccmct infer --mode fast`` write a valid result
    file; the threshold is set just below the 30th-highest candidate so the run stays small."""
    model = tmp_path / "Candidate-ODAEL"
    assert main(["train", "--model", "candidate", "--data-root", str(tiny_root), "--variant", "ODAEL",
                 "--preset", "smoke", "--out", str(model), "--no-progress", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "candidate" and summary["model_dir"] == str(model)
    from ccmct.models.io import load_model_dir

    candidate, config = load_model_dir(model, kind="candidate")
    classifier, cls_config = load_model_dir(classifier_dir, kind="cell_classifier")
    slides = {name: DataRoot(tiny_root).slide_path(name) for name, s in DataRoot(tiny_root).split().items()
              if s == "test"}
    probe = FastDetector(candidate, config, classifier, cls_config, options=FastOptions(threshold=1e-6))
    scores = np.sort(np.concatenate([probe.screen(p).scores for p in slides.values()]))[::-1]
    threshold = float(scores[min(29, len(scores) - 1)])

    out = tmp_path / "fast.npz"
    import ccmct.inference.fast as fast

    options = FastOptions(threshold=threshold, workers=0)
    report, detector = fast.run_fast_inference(model, classifier_dir, slides, out, options=options, progress=False)
    results = read_results(out)
    assert list(results) == sorted(slides) and report.failed == {}
    boxes = np.concatenate(list(results.values()))
    assert 0 < len(boxes) <= 30
    np.testing.assert_array_equal(boxes[:, 2] - boxes[:, 0], 50)
    assert np.all((boxes[:, 5] >= 0) & (boxes[:, 5] <= 1)) and np.all(boxes[:, 4] == 0)
    width, height = 3200, 2560
    centres = (boxes[:, :2] + boxes[:, 2:4]) / 2
    assert np.all((centres >= 0) & (centres < [width, height]))
    # the result file is what `ccmct evaluate` reads
    assert main(["evaluate", "--db", str(DataRoot(tiny_root).database("ODAEL")), "--results", str(out),
                 "--threshold", "0.0", "--json"]) == 0
    evaluation = json.loads(capsys.readouterr().out)
    assert evaluation["tp"] + evaluation["fp"] > 0


def test_cli_fast_mode_writes_and_resumes(block_root, block_candidate_dir, classifier_dir, tmp_path, capsys,
                                          monkeypatch):
    import ccmct.inference.fast as fast

    real_load = fast.load_fast_models
    monkeypatch.setattr(fast, "load_fast_models", lambda c, k, *, device="cpu": (
        lambda loaded: (GreyBlockCandidate(loaded[1]).eval(), *loaded[1:]))(real_load(c, k, device=device)))
    out = tmp_path / "fast.npz"
    assert _infer("--mode", "fast", "--model", block_candidate_dir, "--classifier", classifier_dir,
                  "--data-root", block_root, "--out", out, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["computed"] == ["a.svs", "b.svs", "c.svs"] and report["n_detections"]["a.svs"] == 3
    assert _infer("--mode", "fast", "--model", block_candidate_dir, "--classifier", classifier_dir,
                  "--data-root", block_root, "--out", out, "--json") == 0
    assert json.loads(capsys.readouterr().out)["resumed"] == ["a.svs", "b.svs", "c.svs"]


# ------------------------------------------------------------------------------------------------ bad input
def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def test_candidate_model_given_to_paper_mode_is_one_line(block_root, block_candidate_dir, tmp_path, capsys):
    assert _infer("--model", block_candidate_dir, "--data-root", block_root, "--out", tmp_path / "r.npz") == 2
    _one_line_error(capsys, "fast-mode candidate model", "needs a RetinaNet detector")
    assert not (tmp_path / "r.npz").exists()


def test_detector_given_as_candidate_model_is_one_line(block_root, tiny_model_dir, classifier_dir, tmp_path, capsys):
    assert _infer("--mode", "fast", "--model", tiny_model_dir, "--classifier", classifier_dir,
                  "--data-root", block_root, "--out", tmp_path / "r.npz") == 2
    _one_line_error(capsys, "RetinaNet detector", "needs a fast-mode candidate model")


def test_candidate_given_as_classifier_is_one_line(block_root, block_candidate_dir, tmp_path, capsys):
    assert _infer("--mode", "fast", "--model", block_candidate_dir, "--classifier", block_candidate_dir,
                  "--data-root", block_root, "--out", tmp_path / "r.npz") == 2
    _one_line_error(capsys, "candidate model", "needs a cell classifier")


def test_fast_mode_without_classifier_and_classifier_in_paper_mode(block_root, block_candidate_dir, tiny_model_dir,
                                                                    classifier_dir, tmp_path, capsys):
    assert _infer("--mode", "fast", "--model", block_candidate_dir, "--data-root", block_root) == 2
    _one_line_error(capsys, "--mode fast needs --classifier")
    assert _infer("--model", tiny_model_dir, "--classifier", classifier_dir, "--data-root", block_root) == 2
    _one_line_error(capsys, "only with --mode fast")


@pytest.mark.parametrize("kind, settings, needle", [
    ("patch size", {"patch_px": 64}, "takes 64 px patches"),
    ("0-255 normalisation", {"mean": (123.7, 116.3, 103.5), "std": (58.4, 57.1, 57.4)}, "0-255 values?"),
    ("zero std", {"std": (0.25, 0.0, 0.25)}, "std in (0, 1]"),
])
def test_classifier_that_does_not_fit_is_one_line(block_root, block_candidate_dir, tmp_path, capsys, kind, settings,
                                                 needle):
    bad = _classifier(tmp_path / "bad", **settings)
    assert _infer("--mode", "fast", "--model", block_candidate_dir, "--classifier", bad, "--data-root", block_root,
                  "--out", tmp_path / "r.npz") == 2
    _one_line_error(capsys, str(bad / "config.json"), needle)
    with pytest.raises(ModelError, match=needle.replace("?", r"\?").replace("(", r"\(").replace("]", r"\]")):
        from ccmct.models.io import load_model_dir

        check_classifier(load_model_dir(bad)[1], bad, CandidateConfig())


# ------------------------------------------------------------------------------------------------ evaluation
def _rows(xy, scores):
    xy = np.asarray(xy, float).reshape(-1, 2)
    return np.column_stack([xy - 25, xy + 25, np.zeros(len(xy)), np.full(len(xy), scores)])


def test_compare_fast_to_paper_and_candidate_recall():
    from ccmct.evaluation.fast_vs_paper import candidate_recall, compare_fast_to_paper

    rng = np.random.default_rng(0)
    gt = {f"s{i}.svs": rng.uniform(0, 5000, size=(10, 2)) + 200 * np.arange(10)[:, None] for i in range(6)}
    # fast: every figure (score 0.9) + 2 low-scored false candidates per slide; paper: 7 of 10 figures
    fast = {n: np.concatenate([_rows(p, 0.9), _rows(p[:2] + 300, 0.2)]) for n, p in gt.items()}
    paper = {n: _rows(p[:7], 0.9) for n, p in gt.items()}
    out = compare_fast_to_paper(gt, fast, paper, threshold_fast=0.5, threshold_paper=0.5, n_resamples=500)
    assert out["f1_fast"] == 1.0 and out["f1_paper"] == pytest.approx(2 * 0.7 / 1.7)
    assert out["delta_f1"] == pytest.approx(1.0 - 2 * 0.7 / 1.7)
    lo, hi = out["delta_f1_ci"]
    assert lo == hi == pytest.approx(out["delta_f1"])          # every slide has the same counts
    assert out["fast_wins"] == 1.0 and out["n_slides"] == 6
    assert out["candidate_recall"] == {"recall": 1.0, "found": 60, "total": 60, "candidates": 72}
    same = compare_fast_to_paper(gt, paper, paper, fast_train=paper, paper_train=paper, n_resamples=200)
    assert same["delta_f1"] == 0.0 and same["delta_f1_ci"] == [0.0, 0.0]
    half = candidate_recall(gt, {n: r[:5] for n, r in paper.items()})
    assert half["recall"] == 0.5 and half["total"] == 60
