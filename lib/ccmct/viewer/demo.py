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


def write_demo_viewer(plan, summary: dict, *, variant: str = "ODAEL", progress: bool = True) -> str | None:
    """``ccmct demo``'s viewer: ``OUT/viewer/`` for the test slides of the ``variant`` detector, both stages,
    at the thresholds the report chose on the training slides (``summary["thresholds"]``).

    Args:
        plan: the demo's ``DemoPlan`` (``root``, ``out_dir``, ``result_path(variant, split, stage)``).
        summary: the report's summary (``thresholds``: ``{"stage1": {variant: T}, "stage2": {...}}``).

    Returns:
        ``"viewer/index.html"`` (relative to ``OUT``), or None when no result file of ``variant`` exists.
    """
    chosen = summary.get("thresholds", {})
    thresholds = {stage: chosen[f"stage{stage}"][variant] for stage in (1, 2)
                  if variant in chosen.get(f"stage{stage}", {})}
    results = {stage: plan.result_path(variant, "test", stage) for stage in (1, 2)}
    manifest = write_demo_site(plan.root.path, results, thresholds, Path(plan.out_dir) / "viewer", progress=progress)
    return "viewer/index.html" if manifest else None
