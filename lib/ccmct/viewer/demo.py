"""The viewer site of ``ccmct demo``: its test slides with both stages of one detector (``OUT/viewer/``)."""

from __future__ import annotations

from pathlib import Path

from ccmct.viewer.site import ViewerPlan, build_site


def write_demo_site(data_root: Path, results: dict[int, Path], thresholds: dict[int, float], out: Path, *,
                    db: Path | None = None, progress: bool = True) -> dict:
    """Build the demo's static viewer site (test-slide result files of stage 1 and stage 2).

    Args:
        data_root: the demo's data root.
        results: stage (1, 2) -> test result file (``RetinaNet-ODAEL-test.npz``,
            ``2ndstage_RetinaNet-ODAEL-test.npz``); stages whose file is missing are left out.
        thresholds: stage -> the threshold chosen on the training slides (the report's Table 4 search).
        out: site folder (``OUT/viewer``).
        db: ground-truth database (default: the data root's ODAEL labels).

    Returns:
        The site manifest (:func:`ccmct.viewer.build_site`); ``{}`` when no result file exists yet.
    """
    stages = [s for s in sorted(results) if Path(results[s]).exists() and s in thresholds]
    if not stages:
        return {}
    labels = [f"stage {s}: {'RetinaNet' if s == 1 else 'RetinaNet + cell classifier'}" for s in stages]
    plan = ViewerPlan(data_root=Path(data_root), results=[Path(results[s]) for s in stages], out=Path(out),
                      db=db, thresholds=[float(thresholds[s]) for s in stages], labels=labels, progress=progress)
    return build_site(plan)
