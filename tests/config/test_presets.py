import dataclasses

import pytest

from ccmct.config.presets import DETECTOR_PRESETS, detector_preset
from ccmct.errors import CcmctError


def test_paper_schedule_is_the_papers():
    paper = detector_preset("paper")
    assert paper.patches_per_epoch == 5000
    first, heads, unfrozen = paper.stages
    assert (first.cycles, first.epochs, first.frozen) == (1, 1, True)
    assert (heads.cycles, heads.epochs, heads.lr_max, heads.frozen) == (3, 10, 1e-4, True)
    assert (unfrozen.cycles, unfrozen.epochs, unfrozen.frozen, unfrozen.early_stopping) == (2, 30, False, True)
    assert (paper.p_mitosis, paper.p_negative, paper.p_random) == (0.5, 0.4, 0.1)


def test_presets_are_frozen_and_ordered_by_cost():
    with pytest.raises(dataclasses.FrozenInstanceError):
        detector_preset("quick").batch_size = 1
    cost = [p.patches_per_epoch * p.total_epochs for p in DETECTOR_PRESETS.values()]
    assert cost == sorted(cost)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(CcmctError, match="smoke, quick, paper"):
        detector_preset("fast")


def test_classifier_presets_live_beside_the_detector_presets_with_the_same_error():
    from ccmct.config.presets import CLASSIFIER_PRESETS, UnknownPreset, classifier_preset, detector_preset
    from ccmct.errors import CcmctError
    from ccmct.training import classifier as training_classifier

    assert training_classifier.classifier_preset is classifier_preset  # one definition, imported by training
    assert set(CLASSIFIER_PRESETS) == {"smoke", "quick", "paper"}
    for lookup, kind in ((detector_preset, "detector"), (classifier_preset, "classifier")):
        with pytest.raises(UnknownPreset, match=f"unknown {kind} preset 'fast'.*paper") as info:
            lookup("fast")
        assert isinstance(info.value, CcmctError) and isinstance(info.value, ValueError)
