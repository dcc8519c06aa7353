"""Build the viewer site: ``index.html``, one page per slide, overlay scripts, thumbnails, tiles.

Layout of ``SITE`` (docs/viewer.md)::

    index.html                  one row per slide (written last: its presence means the site is complete)
    slides/<stem>.html          OpenSeadragon page of one slide
    overlays/<stem>.js          the slide's overlay data (window.CCMCT_SLIDE; pages work from file://)
    thumbs/<stem>.jpg           thumbnail (index page)
    tiles/<stem>_files/...      Deep Zoom JPEG pyramid (static mode; --serve renders them on demand)
    static/                     OpenSeadragon (vendored, pinned) + viewer.js + viewer.css
    ccmct-site.json             manifest: slides, their files, thresholds (``ccmct view --serve`` reads it)

Order of work: every input is checked (slides readable, thresholds in [0, 1], ``--out`` not an input, disk
estimate under ``max_gb``) before anything is written; then tiles, thumbnails, overlays, slide pages,
manifest, and the index page last, each written atomically. A rerun skips complete tiles.
"""

from __future__ import annotations

import html
import json
import os
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template

import numpy as np

from ccmct.config.dataset import DETECTION_RADIUS_L0
from ccmct.errors import CcmctError, FileProblem
from ccmct.viewer import tiles as tiles_mod
from ccmct.viewer.overlays import COLORS, Stage, overlay_script, read_slide_labels, read_zones, slide_overlay
from ccmct.atomicio import atomic_path, atomic_write_text

MANIFEST = "ccmct-site.json"
PARTIAL = ".ccmct-site-partial"
"""Present while a build runs: an interrupted site is completed by the next run, never presented as done."""
SITE_FORMAT = 1


class ViewerInputError(FileProblem):
    """An input of ``ccmct view`` that cannot be used (named file, what is wrong)."""


@dataclass
class ViewerPlan:
    """Arguments of :func:`build_site` (the ``ccmct view`` flags).

    Attributes:
        data_root: data root (WSI/ and databases/).
        results: result files, one per stage (stage 1, stage 2, ...).
        out: site folder.
        db: label database (ground truth); default ``<root>/databases/MITOS_WSI_CCMCT_ODAEL.sqlite``.
        thresholds: one threshold, or one per result file (score > T is kept); None with ``optimize_on``.
        optimize_on: training result files (one per result file) to choose each threshold on, as
            ``ccmct evaluate --optimize`` does.
        min_threshold: lowest threshold of that search.
        slides: show only these slides (file names); default every slide of the result files.
        tiles: "static" (write the Deep Zoom pyramids) or "served" (``--serve`` renders them on demand).
        regions: slide name (or None = every slide) -> level-0 rectangles: static tiles only there.
        max_gb: refuse a static build whose estimated tile size exceeds this many GB.
        workers: tile-writer threads.
        matching, radius_l0: the evaluation's matching ('paper' | 'strict') and radius.
        labels: stage labels (default "stage i: <file stem>").
        ci: add slide-bootstrap 95 % intervals of the overall F1 to the index page.
    """

    data_root: Path
    results: list[Path]
    out: Path
    db: Path | None = None
    thresholds: list[float] | None = None
    optimize_on: list[Path] | None = None
    min_threshold: float = 0.5
    slides: list[str] | None = None
    tiles: str = "static"
    regions: dict = field(default_factory=dict)
    max_gb: float = 10.0
    workers: int = 2
    matching: str = "paper"
    radius_l0: float = DETECTION_RADIUS_L0
    labels: list[str] | None = None
    ci: bool = True
    progress: bool = True


def slide_stem(name: str) -> str:
    """File-system and URL safe stem of a slide file name."""
    stem = Path(name).stem
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem)


# ----------------------------------------------------------------------------------------- checks
def _resolve(path: Path) -> Path:
    return Path(os.path.abspath(Path(path).expanduser()))


def check_out(out: Path, inputs: list[Path]) -> None:
    """Refuse an ``--out`` that is an input, lies inside one (the data root) or holds one
    (:func:`ccmct.outputs.guard_output`), or is a non-empty folder that is not a viewer site."""
    from ccmct.outputs import guard_output

    guard_output(out, reads=inputs, kind="dir", what="--out")
    out = Path(out)
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).exists() and not (out / PARTIAL).exists():
        raise ViewerInputError(out, "--out is a non-empty folder that is not a ccmct view site; "
                                    "choose a new or empty folder")


def check_threshold(value: float, source: str) -> float:
    if not (isinstance(value, (int, float)) and 0.0 <= float(value) <= 1.0):
        raise CcmctError(f"{source}: threshold {value!r} is outside [0, 1]")
    return float(value)


# ----------------------------------------------------------------------------------------- thresholds
def resolve_thresholds(plan: ViewerPlan, gt_db: Path) -> list[float]:
    """One threshold per result file, given or chosen on training results (``optimize_threshold``)."""
    n = len(plan.results)
    if plan.optimize_on:
        if len(plan.optimize_on) != n:
            raise CcmctError(f"--optimize-on needs one training result file per --results file ({n}), "
                             f"got {len(plan.optimize_on)}")
        if not 0.0 <= plan.min_threshold < 1.0:
            raise CcmctError(f"--min-threshold {plan.min_threshold!r} is outside [0, 1)")
        from ccmct.data.results import read_results
        from ccmct.evaluation.ground_truth import load_ground_truth
        from ccmct.evaluation.threshold import optimize_threshold

        chosen = []
        for train_file in plan.optimize_on:
            train = read_results(train_file)
            gt = load_ground_truth(gt_db, slides=list(train))
            search = optimize_threshold(gt, train, min_threshold=plan.min_threshold, matching=plan.matching,
                                        radius_l0=plan.radius_l0)
            chosen.append(search.best_threshold)
        return chosen
    values = plan.thresholds or []
    if len(values) == 1:
        values = values * n
    if len(values) != n:
        raise CcmctError(f"--threshold needs one value or one per --results file ({n}), got {len(plan.thresholds or [])}")
    return [check_threshold(v, "--threshold") for v in values]


# ----------------------------------------------------------------------------------------- writing
def _write_text(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def _template(name: str) -> Template:
    return Template(resources.files("ccmct.viewer").joinpath("templates", name).read_text(encoding="utf-8"))


def copy_static(site: Path) -> None:
    """Copy the vendored OpenSeadragon and the viewer's script and style into ``site/static``."""
    source = resources.files("ccmct.viewer").joinpath("static")
    with resources.as_file(source) as folder:
        for file in Path(folder).rglob("*"):
            if file.is_file():
                target = site / "static" / file.relative_to(folder)
                if target.exists() and target.stat().st_size == file.stat().st_size \
                        and target.read_bytes() == file.read_bytes():
                    continue
                with atomic_path(target) as tmp:
                    shutil.copyfile(file, tmp)


def write_thumbnail(slide_path: Path, target: Path, max_px: int = 240) -> None:
    from PIL import Image

    from ccmct.data.slides import open_slide

    if target.exists():
        return
    with open_slide(slide_path) as slide:
        image = Image.fromarray(slide.thumbnail(max_px))
    with atomic_path(target) as tmp:
        image.save(tmp, "JPEG", quality=85)


# ----------------------------------------------------------------------------------------- build
@dataclass
class _SlideInfo:
    name: str
    stem: str
    path: Path
    width: int
    height: int
    mpp: float
    split: str


def _inspect_slides(plan: ViewerPlan, stages: list[Stage]) -> list[_SlideInfo]:
    from ccmct.config.paths import DataRoot
    from ccmct.data.slides import open_slide

    root = DataRoot(plan.data_root)
    names: list[str] = []
    for stage in stages:
        names += [n for n in stage.results if n not in names]
    if plan.slides:
        unknown = [s for s in plan.slides if s not in names]
        if unknown:
            raise ViewerInputError(plan.results[0], f"--slides {unknown[0]!r} is not in the result file(s) "
                                                    f"(they hold {len(names)} slides, e.g. {names[:3]})")
        names = [n for n in names if n in plan.slides]
    if not names:
        raise ViewerInputError(plan.results[0], "the result file(s) hold no slides")
    out = []
    for name in names:
        path = root.slide_path(Path(name).name)
        if not path.exists():
            holder = next(s.path for s in stages if name in s.results)
            raise ViewerInputError(holder, f"slide {name!r} is not in the data root ({root.wsi_dir} has no such file)")
        with open_slide(path) as slide:
            width, height = slide.dimensions
            mpp = slide.mpp
            slide.thumbnail(64)  # a slide whose pixels cannot be read fails here, before any output
        out.append(_SlideInfo(name, slide_stem(name), path, int(width), int(height), float(mpp),
                              root.split_of(Path(name).name)))
    return out


def _regions_for(plan: ViewerPlan, name: str):
    regions = list(plan.regions.get(None, [])) + list(plan.regions.get(name, []))
    return regions or None


def build_site(plan: ViewerPlan) -> dict:
    """Build (or complete) the viewer site described by ``plan``; returns the manifest.

    Raises:
        CcmctError: bad input (see the module docstring); nothing is written then.
    """
    from ccmct.config.paths import DataRoot
    from ccmct.data.results import read_results

    root = DataRoot(plan.data_root)
    if not root.wsi_dir.is_dir():
        raise ViewerInputError(plan.data_root, "not a data root (no WSI/ folder)")
    db = Path(plan.db) if plan.db is not None else root.database("ODAEL")
    if not db.exists():
        raise ViewerInputError(db, "label database does not exist (pass --db)")
    if plan.tiles not in ("static", "served"):
        raise ValueError(f"tiles must be 'static' or 'served', got {plan.tiles!r}")
    if not plan.results:
        raise CcmctError("ccmct view needs at least one --results file")
    inputs = [Path(plan.data_root), db, *plan.results, *(plan.optimize_on or [])]
    check_out(plan.out, inputs)
    thresholds = resolve_thresholds(plan, db)
    labels = plan.labels or [f"stage {i + 1}: {Path(p).name.split('.')[0]}" for i, p in enumerate(plan.results)]
    stages = [Stage(label, Path(p), read_results(p), t) for label, p, t in zip(labels, plan.results, thresholds)]
    slides = _inspect_slides(plan, stages)
    stems = [s.stem for s in slides]
    if len(set(stems)) != len(stems):
        twice = next(s for s in slides if stems.count(s.stem) > 1)
        raise ViewerInputError(twice.path, f"two slides share the page name {twice.stem!r}; show them with "
                                           "separate --slides runs")
    unknown = [name for name in plan.regions if name is not None and name not in {s.name for s in slides}]
    if unknown:
        raise CcmctError(f"--region names slide {unknown[0]!r}, which is not among the slides shown")
    from ccmct.evaluation.ground_truth import load_ground_truth

    load_ground_truth(db, slides=[s.name for s in slides])  # every slide must be in the label database

    site = Path(plan.out)
    todo = _check_disk(plan, site, slides) if plan.tiles == "static" else []
    site.mkdir(parents=True, exist_ok=True)
    partial = site / PARTIAL
    partial.touch()
    for info in todo:
        tiles_mod.write_pyramid(info.path, site, info.stem, regions=_regions_for(plan, info.name),
                                workers=plan.workers, progress=plan.progress)
    zone_db = root.database("Tumorzone")
    rows = []
    per_stage_counts: list[list] = [[] for _ in stages]
    for info in slides:
        write_thumbnail(info.path, site / "thumbs" / f"{info.stem}.jpg")
        regions = _regions_for(plan, info.name)
        document, marks = slide_overlay(
            info.name, stem=info.stem, width=info.width, height=info.height, mpp=info.mpp, split=info.split,
            labels=read_slide_labels(db, info.name), zones=read_zones(zone_db, info.name), stages=stages,
            matching=plan.matching, radius_l0=plan.radius_l0,
            region=regions[0].as_list() if regions else None)
        document["tiles"] = {"url": f"../tiles/{info.stem}_files/", "format": tiles_mod.TILE_FORMAT,
                             "tile_px": tiles_mod.TILE_PX, "overlap_px": tiles_mod.OVERLAP_PX}
        _write_text(site / "overlays" / f"{info.stem}.js", overlay_script(document))
        _write_text(site / "slides" / f"{info.stem}.html", _slide_page(info, document))
        for i, mark in enumerate(marks):
            per_stage_counts[i].append(mark.counts)
        rows.append(_index_row(info, document))
    copy_static(site)
    overall = [_overall(stage, [s.name for s in slides], counts, plan.ci)
               for stage, counts in zip(stages, per_stage_counts)]
    manifest = {
        "format": "ccmct-view-site", "version": SITE_FORMAT, "tiles": plan.tiles,
        "data_root": str(_resolve(plan.data_root)), "db": str(_resolve(db)), "matching": plan.matching,
        "radius_l0": plan.radius_l0,
        "stages": [{"label": s.label, "results": str(_resolve(s.path)), "threshold": s.threshold} for s in stages],
        "overall": overall,
        "slides": [{"name": s.name, "stem": s.stem, "path": str(_resolve(s.path)), "width": s.width,
                    "height": s.height, "mpp": s.mpp, "split": s.split} for s in slides],
        "rows": rows,
    }
    _write_text(site / MANIFEST, json.dumps(manifest, indent=1))
    _write_text(site / "index.html", _index_page(manifest))
    partial.unlink(missing_ok=True)
    return manifest


def _check_disk(plan: ViewerPlan, site: Path, slides: list[_SlideInfo]) -> list[_SlideInfo]:
    """Slides whose pyramid is still to write; refuses (before any write) when they exceed ``max_gb``."""
    todo = [s for s in slides if not tiles_mod.pyramid_complete(site, s.stem, _regions_for(plan, s.name))]
    if not todo:
        return todo
    estimates = {s.name: tiles_mod.estimate_bytes(s.path, _regions_for(plan, s.name)) for s in todo}
    total = sum(e["bytes"] for e in estimates.values())
    if total > plan.max_gb * 1e9:
        tiles = sum(e["tiles"] for e in estimates.values())
        raise tiles_mod.DiskLimitError(
            f"static tiles for {len(todo)} slide(s) would take about {total / 1e9:.3g} GB ({tiles} tiles) > "
            f"--max-gb {plan.max_gb:g}; use --serve (tiles on demand), --region, fewer --slides or a larger --max-gb")
    return todo


def _overall(stage: Stage, names: list[str], counts: list, want_ci: bool) -> dict:
    tp, fp, fn = (int(sum(getattr(c, k) for c in counts)) for k in ("tp", "fp", "fn"))
    denominator = 2 * tp + fp + fn
    out = {"label": stage.label, "threshold": stage.threshold, "tp": tp, "fp": fp, "fn": fn,
           "f1": round(2 * tp / denominator, 4) if denominator else None, "f1_ci": None}
    if want_ci and len(names) >= 2:
        from ccmct.evaluation.bootstrap import SlideCounts, bootstrap_f1

        boot = bootstrap_f1(SlideCounts(tuple(names), np.array([c.tp for c in counts]),
                                        np.array([c.fp for c in counts]), np.array([c.fn for c in counts])))
        out["f1_ci"] = [None if v is None else round(v, 4) for v in boot["f1_ci"]]
    return out


def _index_row(info: _SlideInfo, document: dict) -> dict:
    return {"name": info.name, "stem": info.stem, "split": info.split,
            "gt": len(document["gt"]["2"]) // 2, "true_mc": document["hotspot_true"]["count"],
            "stages": [{"detections": len(s["det"]) // 2, **s["counts"], "f1": s["f1"],
                        "predicted_mc": s["hotspot"]["count"]} for s in document["stages"]]}


def _fmt_f1(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _index_page(manifest: dict) -> str:
    stages = manifest["stages"]
    head = ["<th data-type='text'>slide</th>", "<th data-type='text'>split</th>", "<th data-type='num'>GT mitoses</th>",
            "<th data-type='num'>true MC</th>"]
    for i, _stage in enumerate(stages):
        tag = f"S{i + 1} " if len(stages) > 1 else ""
        head += [f"<th data-type='num'>{tag}detections</th>", f"<th data-type='num'>{tag}TP</th>",
                 f"<th data-type='num'>{tag}FP</th>", f"<th data-type='num'>{tag}FN</th>",
                 f"<th data-type='num'>{tag}F1</th>", f"<th data-type='num'>{tag}predicted MC</th>"]
    body = []
    for row in manifest["rows"]:
        cells = [f"<td data-value='{html.escape(row['name'])}'><a href='slides/{row['stem']}.html'>"
                 f"<img class='thumb' src='thumbs/{row['stem']}.jpg' alt=''>{html.escape(row['name'])}</a></td>",
                 f"<td>{html.escape(row['split'])}</td>", f"<td>{row['gt']}</td>", f"<td>{row['true_mc']}</td>"]
        for s in row["stages"]:
            f1 = -1 if s["f1"] is None else s["f1"]
            cells += [f"<td>{s['detections']}</td>", f"<td>{s['tp']}</td>", f"<td>{s['fp']}</td>",
                      f"<td>{s['fn']}</td>", f"<td data-value='{f1}'>{_fmt_f1(s['f1'])}</td>",
                      f"<td>{s['predicted_mc']}</td>"]
        body.append(f"<tr data-slide='{html.escape(row['name'])}'>" + "".join(cells) + "</tr>")
    summary = []
    for o in manifest["overall"]:
        ci = "" if not o["f1_ci"] or None in o["f1_ci"] else \
            f" (95 % slide-bootstrap interval {o['f1_ci'][0]:.3f}–{o['f1_ci'][1]:.3f})"
        summary.append(f"<li><b>{html.escape(o['label'])}</b>: threshold {o['threshold']:.2f}, "
                       f"TP {o['tp']}, FP {o['fp']}, FN {o['fn']}, F1 <span class='f1'>{_fmt_f1(o['f1'])}</span>{ci}</li>")
    return _template("index.html").substitute(
        title="ccmct view", head="".join(head), body="\n".join(body), summary="\n".join(summary),
        matching=html.escape(manifest["matching"]), radius=f"{manifest['radius_l0']:g}",
        mode="served" if manifest["tiles"] == "served" else "static")


def _slide_page(info: _SlideInfo, document: dict) -> str:
    legend = "".join(
        f"<label><input type='checkbox' data-layer='gt{c['id']}' checked>"
        f"<span class='swatch dot' style='background:{COLORS['gt' + str(c['id'])]}'></span>{html.escape(c['name'])}"
        f" <small>({len(document['gt'][str(c['id'])]) // 2})</small></label>"
        for c in document["classes"])
    options = "".join(f"<option value='{i}'>{html.escape(s['label'])} (T={s['threshold']:.2f})</option>"
                      for i, s in enumerate(document["stages"]))
    return _template("slide.html").substitute(
        title=html.escape(info.name), stem=info.stem, legend=legend, options=options,
        tp=COLORS["tp"], fp=COLORS["fp"], fn=COLORS["fn"], hot_true=COLORS["hotspot_true"],
        hot_pred=COLORS["hotspot_pred"], zone=COLORS["zone"])
