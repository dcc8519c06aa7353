"""The wide, tissue-sparse test slide of the synthetic ``demo`` preset (issue: a hotspot map needs a slide
larger than the 10-HPF window)."""

from __future__ import annotations

import dataclasses

import numpy as np

from ccmct.config.paths import DataRoot
from ccmct.data.slides import open_slide
from ccmct.synthetic import dataset as synth
from ccmct.synthetic.presets import get_preset
from ccmct.evaluation.mitotic_count import hpf_window_l0


def test_demo_preset_has_a_test_slide_several_10hpf_windows_large():
    spec = get_preset("demo")
    window_w, window_h = hpf_window_l0(0.25)
    assert spec.wide_test_slides >= 1 and spec.wide_mitoses > 0
    width_px, height_px = (4 * um for um in spec.wide_size_um)  # 0.25 µm/px
    assert width_px >= 2 * window_w and height_px >= 2 * window_h
    assert spec.width_um * 4 < window_w  # the regular slides alone could not carry a hotspot map


def _tissue_share(path) -> float:
    """Share of non-glass pixels in the slide's thumbnail."""
    with open_slide(path) as slide:
        thumb = slide.thumbnail(256)
    return float((np.asarray(thumb, np.float32).mean(axis=-1) < 220).mean())


def test_wide_slides_come_last_as_sparse_test_slides_and_leave_the_others_unchanged(tmp_path, monkeypatch):
    small = dataclasses.replace(get_preset("tiny"), name="tiny", n_train=1, n_test=1)
    wide = dataclasses.replace(small, wide_test_slides=1, wide_size_um=(1600.0, 1200.0), wide_mitoses=60)
    monkeypatch.setattr(synth, "get_preset", lambda name: small)
    plain = synth.generate_dataset(tmp_path / "plain", preset="tiny", progress=False)
    monkeypatch.setattr(synth, "get_preset", lambda name: wide)
    both = synth.generate_dataset(tmp_path / "wide", preset="tiny", progress=False)
    names = list(both["slides"])
    assert names[:2] == list(plain["slides"])
    for name in names[:2]:  # the regular slides: the same labels and pixels with or without the wide one
        assert both["slides"][name]["counts"] == plain["slides"][name]["counts"]
        a = (tmp_path / "plain" / "WSI" / name).read_bytes()
        assert a == (tmp_path / "wide" / "WSI" / name).read_bytes()
    info = both["slides"][names[2]]
    assert (info["width"], info["height"], info["split"]) == (6400, 4800, "test")
    assert info["mitoses_truth"] == 60
    assert DataRoot(tmp_path / "wide").split()[names[2]] == "test"
    sparse = _tissue_share(tmp_path / "wide" / "WSI" / names[2])
    dense = _tissue_share(tmp_path / "wide" / "WSI" / names[1])
    assert sparse < 0.3 < dense
