"""How the three label sets arose, simulated from the generator's truth, and the databases written from them.

Paper, Methods (and Table 1): **MEL** = two experts screened the slides blinded; a few percent of the
mitoses were missed (some as ambiguous after disagreement, some not at all), disagreements were settled by
consensus, and cells that looked mitotic but were rejected stayed *ambiguous/other* (class 4, no class 7).
**HEAEL** = MEL plus a re-review of the hard cases of a classifier: most rejected look-alikes in MEL become
class 7, a few missed mitoses are recovered. **ODAEL** = HEAEL plus the proposals of a detector reviewed by
both experts: every mitosis, many more look-alikes (including the lymphocytes and dark fibroblasts the detector
flagged — the paper's ODAEL look-alikes are all non-mitotic cells its detector scored > 0.5) and more tumour
cells. Every label is stored in the order
given, with the person who gave it; ``agreedClass`` is the final class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ccmct.config.dataset import (
    AMBIGUOUS,
    CELL_CLASS_NAMES,
    GRANULOCYTE,
    LOOKALIKE,
    MITOTIC_FIGURE,
    TUMOR_CELL,
)
from ccmct.data.sliderunner import AnnotationType, SlideRunnerDB
from ccmct.synthetic.layout import KIND, CellLayout
from ccmct.synthetic.tissue import TUMORZONE_CLASS_NAMES

VARIANT_NAMES = ("MEL", "HEAEL", "ODAEL")
EXPERT_1, EXPERT_2, CONSENSUS, ALGORITHM = 1, 2, 3, 4
PERSON_NAMES = {EXPERT_1: "expert 1", EXPERT_2: "expert 2", CONSENSUS: "consensus (both experts)",
                ALGORITHM: "algorithm (object detection proposals)"}
TRUTH_CLASS = {KIND["mitosis"]: MITOTIC_FIGURE, KIND["lookalike"]: LOOKALIKE, KIND["eosinophil"]: GRANULOCYTE,
               KIND["tumor"]: TUMOR_CELL, KIND["ambiguous"]: AMBIGUOUS}
HIGH_MC_CLASS_NAME = "10hpf selection"


@dataclass
class SpotSet:
    """Point annotations of one slide in one variant: level-0 centres, agreed classes, labels in order."""

    xy_l0: list[tuple[int, int]] = field(default_factory=list)
    agreed: list[int] = field(default_factory=list)
    labels: list[list[tuple[int, int]]] = field(default_factory=list)

    def add(self, xy: tuple[int, int], agreed: int, labels: list[tuple[int, int]]) -> None:
        self.xy_l0.append(xy)
        self.agreed.append(int(agreed))
        self.labels.append(list(labels))

    def counts(self) -> dict[int, int]:
        """agreedClass -> number of spots (classes 1, 2, 3, 4, 7 always present)."""
        values, n = np.unique(np.asarray(self.agreed, int), return_counts=True)
        out = {c: 0 for c in sorted(CELL_CLASS_NAMES)}
        out.update({int(v): int(k) for v, k in zip(values, n)})
        return out


def _screening(rng, truth: int) -> list[tuple[int, int]]:
    """Blinded two-expert screening labels for a cell both experts finally agree is ``truth``."""
    if rng.random() < 0.85:
        return [(EXPERT_1, truth), (EXPERT_2, truth)]
    other = AMBIGUOUS if truth == MITOTIC_FIGURE else MITOTIC_FIGURE
    first, second = (truth, other) if rng.random() < 0.5 else (other, truth)
    return [(EXPERT_1, first), (EXPERT_2, second), (CONSENSUS, truth)]


def _mitosis(rng, p_miss: float, out: dict[str, SpotSet], xy) -> None:
    if rng.random() >= p_miss:
        labels = _screening(rng, MITOTIC_FIGURE)
        for v in VARIANT_NAMES:
            out[v].add(xy, MITOTIC_FIGURE, labels)
        return
    mel = [(EXPERT_1, MITOTIC_FIGURE), (EXPERT_2, AMBIGUOUS), (CONSENSUS, AMBIGUOUS)] if rng.random() < 0.5 else []
    if mel:
        out["MEL"].add(xy, AMBIGUOUS, mel)
    if rng.random() < 0.1:  # recovered by the re-review that produced HEAEL
        heael = mel + [(EXPERT_1, MITOTIC_FIGURE), (EXPERT_2, MITOTIC_FIGURE)]
        out["HEAEL"].add(xy, MITOTIC_FIGURE, heael)
    elif mel:
        heael = mel
        out["HEAEL"].add(xy, AMBIGUOUS, mel)
    else:
        heael = []
    odael = heael if heael[-1:] == [(EXPERT_2, MITOTIC_FIGURE)] else heael + [
        (ALGORITHM, MITOTIC_FIGURE), (EXPERT_1, MITOTIC_FIGURE), (EXPERT_2, MITOTIC_FIGURE)]
    out["ODAEL"].add(xy, MITOTIC_FIGURE, odael)


def _lookalike(rng, p_mel: float, out: dict[str, SpotSet], xy) -> None:
    if rng.random() < p_mel:  # flagged in the screening, rejected: ambiguous in MEL
        mel = ([(EXPERT_1, MITOTIC_FIGURE), (EXPERT_2, AMBIGUOUS), (CONSENSUS, AMBIGUOUS)]
               if rng.random() < 0.6 else [(EXPERT_1, AMBIGUOUS), (EXPERT_2, AMBIGUOUS)])
        out["MEL"].add(xy, AMBIGUOUS, mel)
        if rng.random() < 0.75:  # split out as look-alike in the re-review (HEAEL)
            heael = mel + [(EXPERT_1, LOOKALIKE), (EXPERT_2, LOOKALIKE)]
            out["HEAEL"].add(xy, LOOKALIKE, heael)
            out["ODAEL"].add(xy, LOOKALIKE, heael)
        else:
            out["HEAEL"].add(xy, AMBIGUOUS, mel)
            out["ODAEL"].add(xy, LOOKALIKE, mel + [(EXPERT_1, LOOKALIKE), (EXPERT_2, LOOKALIKE)])
        return
    out["ODAEL"].add(xy, LOOKALIKE, [(ALGORITHM, MITOTIC_FIGURE), (EXPERT_1, LOOKALIKE), (EXPERT_2, LOOKALIKE)])


def simulate_labels(rng: np.random.Generator, layout: CellLayout) -> dict[str, SpotSet]:
    """Label sets MEL / HEAEL / ODAEL of one slide from the truth of its annotated cells."""
    out = {v: SpotSet() for v in VARIANT_NAMES}
    p_miss = rng.uniform(0.03, 0.10)   # paper: MEL has 94.6 % of ODAEL's mitoses
    p_mel = rng.uniform(0.15, 0.45)    # look-alikes flagged (and rejected) in the MEL screening
    p_odael_tumor = rng.uniform(0.1, 0.25)
    for i in np.flatnonzero(layout.annotated):
        xy = (int(layout.x_l0[i]), int(layout.y_l0[i]))
        kind = int(layout.kind[i])
        if kind == KIND["mitosis"]:
            _mitosis(rng, p_miss, out, xy)
        elif kind == KIND["lookalike"]:
            _lookalike(rng, p_mel, out, xy)
        elif kind in (KIND["lymphocyte"], KIND["fibroblast"]):  # detector proposals, rejected as look-alikes
            out["ODAEL"].add(xy, LOOKALIKE, [(ALGORITHM, MITOTIC_FIGURE), (EXPERT_1, LOOKALIKE),
                                             (EXPERT_2, LOOKALIKE)])
        elif kind == KIND["tumor"] and rng.random() < p_odael_tumor:  # detector proposals, rejected
            out["ODAEL"].add(xy, TUMOR_CELL, [(ALGORITHM, MITOTIC_FIGURE), (EXPERT_1, TUMOR_CELL),
                                              (EXPERT_2, TUMOR_CELL)])
        else:
            truth = TRUTH_CLASS[kind]
            labels = _screening(rng, truth) if truth == AMBIGUOUS else [(EXPERT_1, truth), (EXPERT_2, truth)]
            for v in VARIANT_NAMES:
                out[v].add(xy, truth, labels)
    return out


@dataclass(frozen=True)
class SlideRecord:
    """What the databases need to know about one synthetic slide."""

    filename: str
    width: int
    height: int
    spots: dict[str, SpotSet]
    polygons: list[tuple[int, np.ndarray]]
    high_mc_box_l0: tuple[int, int, int, int]


def write_cell_databases(paths: dict[str, Path], slides: list[SlideRecord]) -> None:
    """Write MITOS_WSI_CCMCT_{MEL,HEAEL,ODAEL}.sqlite (real schema, class ids, persons)."""
    for variant, path in paths.items():
        with SlideRunnerDB.create(path, overwrite=True) as db:
            for cid, name in sorted(CELL_CLASS_NAMES.items()):
                db.add_class(name, uid=cid)
            for pid, name in PERSON_NAMES.items():
                db.add_person(name, uid=pid)
            for uid, rec in enumerate(slides, start=1):
                db.add_slide(rec.filename, rec.width, rec.height, uid=uid)
                spots = rec.spots[variant]
                if spots.agreed:
                    db.add_spots(uid, np.asarray(spots.xy_l0), spots.agreed, spots.labels)


def write_tumorzone_database(path: Path, slides: list[SlideRecord]) -> None:
    """Write MITOS_WSI_CCMCT_Tumorzone.sqlite: tumour polygons plus necrosis / exclusion polygons."""
    with SlideRunnerDB.create(path, overwrite=True) as db:
        for cid, name in TUMORZONE_CLASS_NAMES.items():
            db.add_class(name, uid=cid)
        db.add_person("tumour-zone annotator (synthetic)", uid=1)
        for uid, rec in enumerate(slides, start=1):
            db.add_slide(rec.filename, rec.width, rec.height, uid=uid)
            for cid, poly in rec.polygons:
                db.add_annotation(uid, AnnotationType.POLYGON, np.round(poly), cid, [(1, cid)])


def write_high_mc_database(path: Path, slides: list[SlideRecord]) -> None:
    """Write HighMCAreas.sqlite: one rectangle (type 2, class '10hpf selection') per slide."""
    with SlideRunnerDB.create(path, overwrite=True) as db:
        db.add_class(HIGH_MC_CLASS_NAME, uid=1)
        db.add_person("senior pathologist (synthetic)", uid=1)
        for uid, rec in enumerate(slides, start=1):
            db.add_slide(rec.filename, rec.width, rec.height, uid=uid)
            x1, y1, x2, y2 = rec.high_mc_box_l0
            db.add_annotation(uid, AnnotationType.RECTANGLE, [(x1, y1), (x2, y2)], 1, [(1, 1)])
