"""ccmct — re-implementation of the MITOS_WSI_CCMCT pipeline (Bertram, Aubreville et al., Sci Data 2019).

Layers (each imports only from the layers above it; docs/design.md, checked by tests/test_layers.py)::

    ccmct.config      class ids, slide split, data-root layout, presets, units, the paper's values
    ccmct.data        SlideRunner databases, slides (OpenSlide), download, Table 1, subsets, result files, export
    ccmct.geometry    distance NMS, tile grids (no I/O)
    ccmct.synthetic   the synthetic generator: writes data roots through ccmct.data
    ccmct.sampling    where training patches come from
    ccmct.models      RetinaNet, the cell classifier, fast mode's candidate model
    ccmct.training    fastai training over slides
    ccmct.inference   whole-slide detection, second-stage re-scoring, fast mode
    ccmct.evaluation  F1, threshold search, tables, figures, mitotic count
    ccmct.pipeline    the study: layout, done checks, steps, ``ccmct reproduce``
    ccmct.viewer      the browser viewer
    ccmct.demo, ccmct.notebooks   clients of the pipeline
    ccmct.cli         the ``ccmct`` command line

Shared utilities below every layer: errors, types, atomicio, jsonable, outputs, precision, distributed.

Coordinates are level-0 pixels everywhere unless a name says otherwise.
"""

__version__ = "0.1.0"
