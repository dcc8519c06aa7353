"""Where training patches come from.

- :mod:`ccmct.sampling.patches`: the detector's 50 / 40 / 10 sampler over slide halves (pseudo-epochs).
- :mod:`ccmct.sampling.slides`: the training slides of a data root as the sampler sees them.
- :mod:`ccmct.sampling.cells`: 128 px cell patches of the second stage.
"""
