"""``Study``: what one run of the paper's study is (data root, label sets, preset, seeds, output folder)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ccmct.config.paths import DataRoot
from ccmct.pipeline.layout import Layout
from ccmct.types import VARIANTS

MIN_THRESHOLD = {1: 0.3, 2: 0.2}
"""Lowest threshold of the search per stage: stage 1 from the detector's own score cut (0.3, the paper's
detect threshold), stage 2 from 0.2 as in the authors' ablation evaluation (docs/evaluation.md)."""
MIN_THRESHOLD_FAST = MIN_THRESHOLD[2]
"""Lowest threshold of the fast row's search: its scores are the cell classifier's P(mitotic figure), as in
stage 2, so the same floor (docs/fast_mode.md)."""


@dataclass(frozen=True)
class Study:
    """One study: everything the steps of :mod:`ccmct.pipeline.steps` need.

    Attributes:
        out_dir: the study folder (:class:`ccmct.pipeline.layout.Layout`).
        data_root: the data root (default ``out_dir/data``, where the demo generates its synthetic root).
        preset: training preset of both stages (``smoke``, ``quick``, ``paper``).
        variants: label sets both stages are trained on; a detector's output is re-scored by the classifier
            of the same label set (paper Table 4).
        seed: the first training seed (its models and results live directly in ``out_dir``).
        seeds: every training seed (default: just ``seed``); others live in ``out_dir/seeds/seed-<s>/``.
        workers: reader processes of training and inference (None: the preset's).
        device: ``cuda`` / ``cpu`` (None: cuda when available).
        ablation: also run the ablation study (subsets, one run per subset, Fig. 5, Table 5).
        hpf, wsi: HPF / WSI ablation subset sizes (paper: 5 10 50 and 3 6 12).
        include_complete: the ablation also trains on the complete data root (Fig. 5's last point).
        ablation_variant: label set of the ablation (the paper's: ODAEL).
        fast: also the fast mode per label set: a candidate model trained with the same preset and seed, its
            candidates confirmed by that label set's cell classifier (docs/fast_mode.md), one more Table 4 row.
    """

    out_dir: Path
    data_root: Path | None = None
    preset: str = "quick"
    variants: tuple[str, ...] = VARIANTS
    seed: int = 0
    seeds: tuple[int, ...] = ()
    workers: int | None = None
    device: str | None = None
    ablation: bool = False
    hpf: tuple[float, ...] = (5, 10, 50)
    wsi: tuple[int, ...] = (3, 6, 12)
    include_complete: bool = True
    ablation_variant: str = "ODAEL"
    fast: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        seeds = tuple(int(s) for s in (self.seeds or (self.seed,)))
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"training seeds repeat: {seeds}")
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "variants", tuple(self.variants))

    @property
    def second_stage_combine(self) -> str:
        """How stage 2 scores a detection: the classifier preset's ``combine`` (``replace``: the paper)."""
        from ccmct.config.presets import classifier_preset

        return classifier_preset(self.preset).combine

    @property
    def layout(self) -> Layout:
        return Layout(self.out_dir)

    @property
    def root(self) -> DataRoot:
        return DataRoot(self.data_root or self.layout.data_dir)

    def seed_dir(self, seed: int) -> Path:
        """Folder of one training seed's ``models/`` and ``results/`` (see ``seeds``)."""
        return self.layout.seed_layout(seed, self.seed).out

    def for_seed(self, seed: int):
        """The single-seed study of one training seed: its folders, the shared data root."""
        return replace(self, out_dir=self.seed_dir(seed), seed=seed, seeds=(seed,), data_root=self.root.path)

    # the layout's paths, for the first seed
    @property
    def models_dir(self) -> Path:
        return self.layout.models_dir

    @property
    def results_dir(self) -> Path:
        return self.layout.results_dir

    def detector_dir(self, variant: str) -> Path:
        return self.layout.detector_dir(variant)

    def classifier_dir(self, variant: str) -> Path:
        return self.layout.classifier_dir(variant)

    def candidate_dir(self, variant: str) -> Path:
        return self.layout.candidate_dir(variant)

    def result_path(self, variant: str, split: str, stage: int) -> Path:
        return self.layout.result_path(variant, split, stage)

    def fast_result_path(self, variant: str, split: str) -> Path:
        return self.layout.fast_result_path(variant, split)
