"""Where everything of a study folder goes and what it is called: the one definition (docs/design.md).

::

    STUDY/data/                              synthetic data root (demo; unless a data root is given)
    STUDY/models/RetinaNet-<variant>/        first-stage model directories
    STUDY/models/CellClassifier-<variant>/   second-stage model directories
    STUDY/models/Candidate-<variant>/        fast-mode candidate models (docs/fast_mode.md; --fast)
    STUDY/results/<result file>              ccmct.data.results.result_filename(variant, split, stage)
    STUDY/results/Fast-<variant>-<split>.npz fast-mode results (fast_result_filename; --fast)
    STUDY/figures/                           report figures (Fig. 5: figures/figure5.png)
    STUDY/ablation/<subset>/                 ablation subsets (each a data root)
    STUDY/ablation_runs/<run>/               ablation runs (models, result files, summary.json)
    STUDY/viewer/                            static viewer of the demo
    STUDY/seeds/seed-<s>/{models,results}    training seeds other than the first
    STUDY/report.md, summary.json, timings.json
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ccmct.data.results import result_filename

SEEDS_DIR = "seeds"
REPORT_FILE = "report.md"
SUMMARY_FILE = "summary.json"
TIMINGS_FILE = "timings.json"


def fast_result_filename(variant: str, split: str) -> str:
    """The fast mode's result file of one label set and split (``ccmct infer --mode fast``'s default name).

    Example:
        >>> fast_result_filename("ODAEL", "test")
        'Fast-ODAEL-test.npz'
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return f"Fast-{variant}-{split}.npz"


@dataclass(frozen=True)
class Layout:
    """The paths of one study folder (or of one training seed's folder inside it).

    Args:
        out: the study folder.
    """

    out: Path

    def __init__(self, out):
        object.__setattr__(self, "out", Path(out))

    @property
    def data_dir(self) -> Path:
        return self.out / "data"

    @property
    def models_dir(self) -> Path:
        return self.out / "models"

    @property
    def results_dir(self) -> Path:
        return self.out / "results"

    @property
    def figures_dir(self) -> Path:
        return self.out / "figures"

    @property
    def viewer_dir(self) -> Path:
        return self.out / "viewer"

    @property
    def ablation_subsets_dir(self) -> Path:
        return self.out / "ablation"

    @property
    def ablation_runs_dir(self) -> Path:
        return self.out / "ablation_runs"

    @property
    def figure5(self) -> Path:
        return self.figures_dir / "figure5.png"

    @property
    def report(self) -> Path:
        return self.out / REPORT_FILE

    @property
    def summary(self) -> Path:
        return self.out / SUMMARY_FILE

    @property
    def timings(self) -> Path:
        return self.out / TIMINGS_FILE

    def detector_dir(self, variant: str) -> Path:
        return self.models_dir / f"RetinaNet-{variant}"

    def classifier_dir(self, variant: str) -> Path:
        return self.models_dir / f"CellClassifier-{variant}"

    def candidate_dir(self, variant: str) -> Path:
        return self.models_dir / f"Candidate-{variant}"

    def result_path(self, variant: str, split: str, stage: int = 1) -> Path:
        return self.results_dir / result_filename(variant, split, stage=stage)

    def fast_result_path(self, variant: str, split: str) -> Path:
        return self.results_dir / fast_result_filename(variant, split)

    def seed_layout(self, seed: int, first_seed: int) -> "Layout":
        """The folder of one training seed: the study folder itself for ``first_seed`` (so a single-seed study
        is the first seed of a multi-seed one), else ``seeds/seed-<s>/``."""
        return self if seed == first_seed else Layout(self.out / SEEDS_DIR / f"seed-{seed}")
