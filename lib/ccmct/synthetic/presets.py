"""Named sizes of the synthetic data set (``tiny`` for CI, ``demo`` for the CPU demo, ``large`` for benchmarks).

Sizes are physical (µm) so that ``--mpp`` changes the pixel count, not the tissue shown. Counts of mitotic
figures are per slide and drawn log-uniformly between ``mitoses_range`` so that slides differ widely (the
paper's Table 1 spans 3 to 10,984 per slide); small presets are enriched far above real densities so that a
few minutes of training see enough examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from ccmct.errors import CcmctError


@dataclass(frozen=True)
class SynthPreset:
    """One size of synthetic data root.

    Attributes:
        name: preset name.
        n_train: training slides.
        n_test: test slides.
        width_um: slide width in µm (0.25 µm/px -> px = 4 x µm).
        height_um: slide height in µm.
        mitoses_range: (min, max) mitotic figures per slide, drawn log-uniformly and spread over slides.
        lookalikes_per_mitosis: (min, max) look-alikes per mitotic figure (per slide, log-uniform).
        min_lookalikes: at least this many look-alikes per slide.
        stamp_variants: candidate stamps generated per cell kind (more = more variety, slower start).
        tile_px: TIFF tile side (and strip height) in px.
        jpeg_quality: JPEG quality of the tiles.
        blur_probability: chance per slide of an out-of-focus scanner stripe (Tumorzone class 3).
        wide_test_slides: extra test slides of ``wide_size_um`` (after the regular ones), several 10-HPF
            windows large (a window is ~1778 x 1333 µm, docs/evaluation.md) so that the
            mitotic-count hotspot, its location error and the count correlation carry information.
        wide_size_um: (width, height) of a wide test slide, µm.
        wide_tissue_fraction: (min, max) share of a wide slide covered by tissue (sparse keeps rendering and
            inference cheap: the inference skips glass).
        wide_mitoses: mitotic figures on a wide slide.
    """

    name: str
    n_train: int
    n_test: int
    width_um: float
    height_um: float
    mitoses_range: tuple[int, int]
    lookalikes_per_mitosis: tuple[float, float]
    min_lookalikes: int
    stamp_variants: int
    tile_px: int = 240
    jpeg_quality: int = 80
    blur_probability: float = 0.4
    wide_test_slides: int = 0
    wide_size_um: tuple[float, float] = (0.0, 0.0)
    wide_tissue_fraction: tuple[float, float] = (0.15, 0.2)
    wide_mitoses: int = 0

    @property
    def n_slides(self) -> int:
        """Regular slides (train + test), without the wide test slides."""
        return self.n_train + self.n_test


SYNTH_PRESETS = MappingProxyType({
    "tiny": SynthPreset("tiny", n_train=3, n_test=1, width_um=800.0, height_um=640.0,
                        mitoses_range=(30, 80), lookalikes_per_mitosis=(0.8, 1.6), min_lookalikes=30,
                        stamp_variants=64),
    "demo": SynthPreset("demo", n_train=5, n_test=3, width_um=1600.0, height_um=1200.0,
                        mitoses_range=(25, 450), lookalikes_per_mitosis=(0.6, 2.5), min_lookalikes=40,
                        stamp_variants=240, wide_test_slides=1, wide_size_um=(4400.0, 3300.0),
                        wide_mitoses=400),
    "large": SynthPreset("large", n_train=2, n_test=1, width_um=10000.0, height_um=7500.0,
                         mitoses_range=(150, 3000), lookalikes_per_mitosis=(0.5, 2.0), min_lookalikes=100,
                         stamp_variants=320),
})
"""Preset name -> :class:`SynthPreset`."""


def get_preset(name: str) -> SynthPreset:
    """The preset called ``name``.

    Raises:
        CcmctError: unknown name (the message lists the known ones).
    """
    try:
        return SYNTH_PRESETS[name]
    except KeyError:
        raise CcmctError(f"unknown synthetic preset {name!r}; choose one of {', '.join(SYNTH_PRESETS)}") from None
