"""A synthetic miniature of MITOS_WSI_CCMCT: slides, databases and split, laid out like the real data root.

Entry point: :func:`generate_dataset` (``ccmct synth``). Modules: :mod:`.presets` (sizes), :mod:`.stain`
(H&E colour), :mod:`.shapes` / :mod:`.cells` / :mod:`.mitoses` (cell stamps), :mod:`.library` (stamps with
mitoses and look-alikes matched in darkness and size), :mod:`.tissue` (tissue, tumour zone, hot spots),
:mod:`.layout` (cell positions), :mod:`.render` (strip renderer), :mod:`.annotations` (label simulation,
databases), :mod:`.gallery` (example patches per class), :mod:`.dataset` (orchestration).
"""

from ccmct.synthetic.dataset import generate_dataset, read_report, slide_name
from ccmct.synthetic.presets import SYNTH_PRESETS, SynthPreset, get_preset

__all__ = ["generate_dataset", "read_report", "slide_name", "SYNTH_PRESETS", "SynthPreset", "get_preset",
           "draw_gallery", "gallery_patches"]


def __getattr__(name: str):
    """The gallery reads slides (OpenSlide): imported on first use, so generating data does not need it."""
    if name in ("draw_gallery", "gallery_patches"):
        from ccmct.synthetic import gallery

        return getattr(gallery, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
