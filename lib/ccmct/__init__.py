"""ccmct — re-implementation of the MITOS_WSI_CCMCT pipeline (Bertram, Aubreville et al., Sci Data 2019).

Layers (each imports only from the layers above it)::

    ccmct.config      class ids, slide split, data-root layout, presets
    ccmct.data        SlideRunner databases, slides (OpenSlide), download, synthetic data, Table 1, export
    ccmct.sampling    where training patches come from
    ccmct.models      RetinaNet and the cell classifier
    ccmct.training    fastai training over slides
    ccmct.inference   whole-slide detection, second-stage re-scoring, result files
    ccmct.evaluation  distance NMS, F1, threshold search, mitotic count
    ccmct.cli         the ``ccmct`` command line

Coordinates are level-0 pixels everywhere unless a name says otherwise.
"""

__version__ = "0.1.0"
