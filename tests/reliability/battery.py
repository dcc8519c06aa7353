"""The reliability battery: every kind of bad input and fault, run through the real command line.

Each :class:`Case` builds its inputs in a scratch folder of a :class:`Workspace` (a tiny synthetic data root,
random-init detector and classifier model directories, a valid result file and an earlier "good" result),
runs ``python -m ccmct.cli ...`` in a new process, and is judged:

- ``clean``: the expected refusal: exit code 2, at most 3 lines on stderr, no traceback;
- ``ok`` / ``report``: the expected success (exit 0, plus the case's own check, e.g. strict JSON) or the
  documented per-file report (exit 1, e.g. ``ccmct setup`` naming the files it could not complete);
- ``traceback``: a Python traceback on stderr;
- ``silent``: exit 0 (or a wrong exit code) where an error was due, or a success whose output is wrong;
- ``lost``: an input or an earlier result changed (checked byte for byte after every case).

``python tests/reliability/battery.py [--root TINY_ROOT] [--only CATEGORY ...]`` prints the table
"cases tried / clean errors / tracebacks / silent / data lost" (docs/reliability.md); the tests in this
folder run the same cases (one module per category) and require the expected outcome of each.
"""

from __future__ import annotations

import argparse
import bz2
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from clitools import MAX_ERROR_LINES, assert_unchanged, run_cli, snapshot  # noqa: E402

CATEGORIES = {
    "outputs": "1. outputs never clobber inputs or foreign files",
    "errors": "2. every error one line (exit 2) or a per-slide report",
    "options": "3. options validated at the boundary; strict JSON",
    "results": "4. result-file content checked (results part)",
    "unpickler": "5. the safe unpickler admits numbers only",
    "setup": "6. setup: manifest checks, synthetic roots named",
}


# ---------------------------------------------------------------------------------------------- workspace
@dataclass
class Workspace:
    """Shared, read-only inputs of every case (snapshotted around each one) plus a scratch folder per case."""

    base: Path
    root: Path
    detector: Path
    classifier: Path
    results: Path
    good: Path
    test_slide: str

    @classmethod
    def create(cls, base: Path, *, tiny_root: Path | None = None) -> "Workspace":
        from ccmct.config.paths import DataRoot
        from ccmct.data.results import write_results

        base = Path(base)
        root = base / "root"
        if tiny_root is not None:
            shutil.copytree(tiny_root, root)
        else:
            from ccmct.synthetic import generate_dataset

            generate_dataset(root, preset="tiny", seed=0, progress=False)
        detector, classifier = _model_dirs(base / "models")
        split = DataRoot(root).split()
        test = sorted(n for n, s in split.items() if s == "test")
        rng = np.random.default_rng(0)
        results = {}
        for name in test:
            centres = rng.uniform(200, 2400, (6, 2))
            results[name] = np.column_stack([centres - 25, centres + 25, np.zeros(6), rng.uniform(0.1, 0.99, 6)])
        res = write_results(base / "results" / "RetinaNet-ODAEL-test.npz", results)
        good = write_results(base / "results" / "good.npz", results, metadata={"note": "an earlier good result"})
        return cls(base, root, detector, classifier, res, good, test[0])

    def inputs(self) -> list[Path]:
        return [self.root, self.detector, self.classifier, self.results, self.good]

    def scratch(self, name: str) -> Path:
        path = self.base / "cases" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def odael(self) -> Path:
        return self.root / "databases" / "MITOS_WSI_CCMCT_ODAEL.sqlite"


def _model_dirs(folder: Path) -> tuple[Path, Path]:
    import torch

    from ccmct.models.classifier import ClassifierConfig, build_classifier, save_classifier_dir
    from ccmct.models.io import save_model_dir
    from ccmct.models.retinanet import DetectorConfig, RetinaNet
    from ccmct.sampling.cells import CELL_CLASSES

    torch.manual_seed(0)
    config = DetectorConfig(fpn_channels=16, head_convs=1, prior_prob=0.5, variant="ODAEL", preset="smoke")
    detector = save_model_dir(folder / "RetinaNet-ODAEL", RetinaNet(config).eval(), config)
    cls_config = ClassifierConfig(class_ids=tuple(c.class_id for c in CELL_CLASSES),
                                  class_names=tuple(c.name for c in CELL_CLASSES),
                                  class_short=tuple(c.short for c in CELL_CLASSES), patch_size_px=128,
                                  mean=(0.7, 0.55, 0.7), std=(0.15, 0.2, 0.15), preset="smoke", variant="ODAEL")
    classifier = save_classifier_dir(folder / "CellClassifier-ODAEL", build_classifier(len(CELL_CLASSES)).eval(),
                                     cls_config)
    return detector, classifier


# ---------------------------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    """One bad input or fault.

    Attributes:
        name: unique id (also the test id).
        category: key of :data:`CATEGORIES`.
        build: ``(workspace, scratch) -> (argv, extra paths to keep unchanged)``.
        expect: ``"error"`` (exit 2, one line), ``"ok"`` (exit 0) or ``"report"`` (exit 1, per-file report).
        contains: text the error line must contain.
        check: for ``ok``: ``(proc, workspace, scratch) -> problem or None``.
        cwd_scratch: run in the scratch folder (commands with a default output path).
    """

    name: str
    category: str
    build: Callable
    expect: str = "error"
    contains: str | None = None
    check: Callable | None = None
    cwd_scratch: bool = False


@dataclass
class Outcome:
    case: Case
    verdict: str  # clean | ok | report | traceback | silent | lost | wrong
    returncode: int
    stderr: str
    stdout: str
    detail: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.verdict in ("clean", "ok", "report")


def run_case(case: Case, ws: Workspace) -> Outcome:
    """Build, run and judge one case."""
    scratch = ws.scratch(case.name)
    argv, keep = case.build(ws, scratch)
    before = snapshot(*ws.inputs(), *keep)
    start = time.perf_counter()
    proc = run_cli(*argv, cwd=scratch if case.cwd_scratch else None, timeout=900)
    seconds = time.perf_counter() - start
    try:
        assert_unchanged(before)
        lost = ""
    except AssertionError as err:
        lost = str(err)
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    out = Outcome(case, "", proc.returncode, proc.stderr, proc.stdout, seconds=seconds)
    if "Traceback" in proc.stderr:
        out.verdict, out.detail = "traceback", lines[-1] if lines else ""
    elif lost:
        out.verdict, out.detail = "lost", lost
    elif case.expect == "error":
        if proc.returncode == 2 and 1 <= len(lines) <= MAX_ERROR_LINES and (
                case.contains is None or case.contains in proc.stderr):
            out.verdict = "clean"
        elif proc.returncode == 0:
            out.verdict, out.detail = "silent", "exit 0 where an error was due"
        else:
            out.verdict = "wrong"
            out.detail = f"exit {proc.returncode}, {len(lines)} stderr line(s); expected {case.contains!r}"
    else:
        wanted = 0 if case.expect == "ok" else 1
        problem = case.check(proc, ws, scratch) if case.check and proc.returncode == wanted else None
        if proc.returncode != wanted:
            out.verdict, out.detail = "wrong", f"exit {proc.returncode}, expected {wanted}"
        elif problem:
            out.verdict, out.detail = "silent", problem
        else:
            out.verdict = case.expect
    return out


# -- small builders ------------------------------------------------------------------------------------
def _copy_model(src: Path, dst: Path, *, config_edit=None, weights: bytes | None = None) -> Path:
    shutil.copytree(src, dst)
    if config_edit is not None:
        document = json.loads((dst / "config.json").read_text())
        config_edit(document)
        (dst / "config.json").write_text(json.dumps(document))
    if weights is not None:
        (dst / "weights.pt").write_bytes(weights)
    return dst


def _npz_bytes(**arrays) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _results_with(ws: Workspace, scratch: Path, row, *, name: str = "bad.npz") -> Path:
    """A primary-format result file written without the writer's checks (to test the reader's)."""
    boxes = np.asarray([row], np.float64)
    path = scratch / name
    path.write_bytes(_npz_bytes(format=np.array("ccmct-results"), version=np.array(1, np.int64),
                                slides=np.array([ws.test_slide]), offsets=np.array([0, 1], np.int64),
                                boxes=boxes, metadata=np.array("{}")))
    return path


def _object_npz(ws: Workspace, path: Path) -> Path:
    """A complete result archive whose boxes are an object (pickled) array."""
    return _write(path, _npz_bytes(format=np.array("ccmct-results"), version=np.array(1, np.int64),
                                   slides=np.array([ws.test_slide]), offsets=np.array([0, 1], np.int64),
                                   boxes=np.array([[{"a": 1}] * 6], dtype=object), metadata=np.array("{}")))


def _pickle_file(scratch: Path, payload: bytes, name: str = "evil.p.bz2") -> Path:
    path = scratch / name
    path.write_bytes(bz2.compress(payload))
    return path


class _Reduce:
    """Pickles as ``callable(*args)`` (+ ``state`` for BUILD): the way a hostile pickle is made."""

    def __init__(self, callable_, args, state=None):
        self.callable, self.args, self.state = callable_, args, state

    def __reduce__(self):
        return (self.callable, self.args) if self.state is None else (self.callable, self.args, self.state)


def _object_array_reduce() -> bytes:
    """{'s.svs': numpy.ndarray((2,), 'O')} (GLOBAL numpy.ndarray + REDUCE)."""
    return pickle.dumps({"s.svs": _Reduce(np.ndarray, ((2,), "O"))}, protocol=2)


def _object_array_setstate() -> bytes:
    """_reconstruct(ndarray, (0,), b'b') then BUILD (``__setstate__``) with an object dtype and Python objects."""
    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]
    state = (1, (2,), np.dtype(object), False, [print, 2])
    return pickle.dumps({"s.svs": _Reduce(reconstruct, (np.ndarray, (0,), b"b"), state)}, protocol=2)


def _os_system() -> bytes:
    return pickle.dumps({"s.svs": _Reduce(os.system, ("echo owned",))}, protocol=2)


def _huge_array() -> bytes:
    """numpy.ndarray((2**40,), 'f8') via REDUCE: would allocate 8 TiB."""
    return pickle.dumps({"s.svs": _Reduce(np.ndarray, ((2 ** 40,), "f8"))}, protocol=2)


def _strict_json(proc, ws, scratch, path: Path | None = None) -> str | None:
    text = path.read_text() if path is not None else proc.stdout

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    try:
        json.loads(text, parse_constant=refuse)
    except ValueError as err:
        return f"not strict JSON: {err}"
    return None


def _infer_recomputed(proc, ws, scratch) -> str | None:
    from ccmct.data.results import read_results

    out = scratch / "r.npz"
    if not out.is_file():
        return "no result file written"
    if ws.test_slide not in read_results(out):
        return "the slide with the damaged part file is missing from the result"
    if "damaged part file" not in proc.stderr:
        return "the damaged part file was not reported"
    return None


def _setup_report(proc, ws, scratch) -> str | None:
    if "left untouched" not in proc.stdout:
        return "the foreign database was not named in the report"
    return None


def _foreign_db_root(ws: Workspace, scratch: Path) -> Path:
    """A folder holding a database that is not the data set's (the synthetic one, without synthetic.json)."""
    root = scratch / "realish"
    (root / "databases").mkdir(parents=True)
    shutil.copy(ws.odael, root / "databases" / ws.odael.name)
    return root


def _no_test_slides_root(ws: Workspace, scratch: Path) -> Path:
    root = scratch / "root_no_test"
    (root / "WSI").mkdir(parents=True)
    train = sorted(p for p in (ws.root / "WSI").glob("*.svs") if p.name != ws.test_slide)[0]
    shutil.copy(train, root / "WSI" / train.name)
    (root / "split.json").write_text(json.dumps({"train": [train.name], "test": ["not-there.svs"]}))
    return root


def _cases() -> list[Case]:
    C = Case
    db = lambda ws: ws.odael  # noqa: E731
    cases = [
        # ---- 1. outputs
        C("export_out_is_its_db", "outputs",
          lambda ws, s: (["export", "--db", db(ws), "--format", "coco", "--out", db(ws)], []),
          contains="also an input"),
        C("export_out_is_a_device", "outputs",
          lambda ws, s: (["export", "--db", db(ws), "--format", "geojson", "--out", "/dev/null"], []),
          contains="device"),
        C("export_out_is_a_folder", "outputs",
          lambda ws, s: (["export", "--db", db(ws), "--format", "coco", "--out", s], [s]), contains="folder"),
        C("export_out_is_a_symlink_to_a_result", "outputs",
          lambda ws, s: (["export", "--db", db(ws), "--format", "coco", "--out", _link(s / "o.json", ws.good)],
                         []), contains="symbolic link"),
        C("export_out_is_a_dangling_symlink", "outputs",
          lambda ws, s: (["export", "--db", db(ws), "--format", "coco",
                          "--out", _link(s / "o.json", s / "nowhere" / "x.json")], [s]), contains="symbolic link"),
        C("export_out_under_a_file", "outputs",
          lambda ws, s: (["export", "--db", db(ws), "--format", "coco", "--out", ws.good / "x.json"], []),
          contains="is a file, not a folder"),
        C("export_out_unwritable_folder", "outputs",
          lambda ws, s: (["export", "--db", db(ws), "--format", "coco", "--out", "/proc/ccmct-export.json"], []),
          contains="cannot be written"),
        C("infer_out_inside_model_dir", "outputs",
          lambda ws, s: (["infer", "--model", ws.detector, "--data-root", ws.root, "--split", "test",
                          "--out", ws.detector / "r.npz"], []), contains="lies inside"),
        C("infer_out_is_the_weights", "outputs",
          lambda ws, s: (["infer", "--model", ws.detector, "--data-root", ws.root, "--split", "test",
                          "--out", ws.detector / "weights.pt"], []), contains="lies inside"),
        C("infer_out_inside_data_root", "outputs",
          lambda ws, s: (["infer", "--model", ws.detector, "--data-root", ws.root, "--split", "test",
                          "--out", ws.root / "WSI" / "r.npz"], []), contains="lies inside"),
        C("infer_mistyped_root_keeps_result", "outputs",
          lambda ws, s: (["infer", "--model", ws.detector, "--data-root", ws.root.with_name("rooot"),
                          "--split", "test", "--out", ws.good], []), contains="no such folder"),
        C("infer_split_without_slides_keeps_result", "outputs",
          lambda ws, s: (["infer", "--model", ws.detector, "--data-root", _no_test_slides_root(ws, s),
                          "--split", "test", "--out", ws.good], []), contains="none of the"),
        C("infer_out_is_a_foreign_file", "outputs",
          lambda ws, s: (["infer", "--model", ws.detector, "--data-root", ws.root, "--split", "test",
                          "--out", _write(s / "notes.npz", b"my notes, not results\n")], [s]),
          contains="not a ccmct result file"),
        C("classify_out_is_a_foreign_file", "outputs",
          lambda ws, s: (["classify", "--model", ws.classifier, "--results", ws.results, "--data-root", ws.root,
                          "--out", _write(s / "o.p.bz2", b"BZh9 not a pickle")], [s]),
          contains="refusing to replace it"),
        C("classify_results_is_a_folder", "outputs",
          lambda ws, s: (["classify", "--model", ws.classifier, "--results", s, "--data-root", ws.root,
                          "--out", s / "o.npz"], [s]), contains="is a folder"),
        C("classify_out_is_its_results", "outputs",
          lambda ws, s: (["classify", "--model", ws.classifier, "--results", ws.results, "--data-root", ws.root,
                          "--out", ws.results], []), contains="also an input"),
        C("classify_out_inside_model_dir", "outputs",
          lambda ws, s: (["classify", "--model", ws.classifier, "--results", ws.results, "--data-root", ws.root,
                          "--out", ws.classifier / "r.npz"], []), contains="lies inside"),
        C("train_out_is_the_data_root", "outputs",
          lambda ws, s: (["train", "--data-root", ws.root, "--variant", "ODAEL", "--preset", "smoke",
                          "--out", ws.root], []), contains="also an input"),
        C("train_out_inside_data_root", "outputs",
          lambda ws, s: (["train", "--data-root", ws.root, "--variant", "ODAEL", "--preset", "smoke",
                          "--out", ws.root / "models" / "m"], []), contains="lies inside"),
        C("train_out_is_a_file", "outputs",
          lambda ws, s: (["train", "--data-root", ws.root, "--variant", "ODAEL", "--preset", "smoke",
                          "--out", ws.good], []), contains="not a folder"),
        C("train_mistyped_root", "outputs",
          lambda ws, s: (["train", "--data-root", s / "nope", "--variant", "ODAEL", "--preset", "smoke",
                          "--out", s / "m"], [s]), contains="no such folder"),
        C("train_classifier_out_is_its_start_model", "outputs",
          lambda ws, s: (["train-classifier", "--data-root", ws.root, "--variant", "ODAEL", "--preset", "smoke",
                          "--weights", ws.detector, "--out", ws.detector], []), contains="also an input"),
        C("synth_out_is_a_file", "outputs",
          lambda ws, s: (["synth", "--out", ws.good], []), contains="not a folder"),
        C("synth_over_a_real_root", "outputs",
          lambda ws, s: (["synth", "--out", _foreign_db_root(ws, s)], [s]), contains="did not write"),
        C("setup_synthetic_over_a_real_root", "outputs",
          lambda ws, s: (["setup", "--data-root", _foreign_db_root(ws, s), "--synthetic", "tiny"], [s]),
          contains="did not write"),
        C("ablation_hpf_out_inside_data_root", "outputs",
          lambda ws, s: (["ablation", "hpf", "--data-root", ws.root, "--hpf", "1", "--out", ws.root / "abl"], []),
          contains="lies inside"),
        C("ablation_wsi_out_is_the_data_root", "outputs",
          lambda ws, s: (["ablation", "wsi", "--data-root", ws.root, "--wsi", "1", "--out", ws.root], []),
          contains="also an input"),
        C("demo_out_inside_its_data_root", "outputs",
          lambda ws, s: (["demo", "--data-root", ws.root, "--preset", "smoke", "--out", ws.root / "demo"], []),
          contains="lies inside"),
        C("notebooks_out_inside_data_root", "outputs",
          lambda ws, s: (["notebooks", "--data-root", ws.root, "--out", ws.root / "nb"], []),
          contains="lies inside"),
        C("notebooks_synthetic_over_a_real_root", "outputs",
          lambda ws, s: (["notebooks", "--data-root", _foreign_db_root(ws, s), "--synthetic", "tiny", "--out",
                          s / "nb"], [s]), contains="did not write"),
        C("demo_out_is_a_file", "outputs",
          lambda ws, s: (["demo", "--preset", "smoke", "--out", ws.good], []), contains="not a folder"),
        C("ablation_run_missing_subsets_dir", "outputs",
          lambda ws, s: (["ablation", "run", "--subsets-dir", s / "nope", "--data-root", ws.root, "--out",
                          s / "runs"], [s]), contains="no such folder"),
        C("stats_mistyped_root", "outputs",
          lambda ws, s: (["stats", "--data-root", s / "nope"], [s]), contains="no such folder"),
        # ---- 2. one error path
        C("evaluate_truncated_npz", "errors",
          lambda ws, s: (["evaluate", "--db", db(ws), "--results", _truncated(ws.results, s / "t.npz"),
                          "--threshold", "0.5"], [s]), contains="not a ccmct result file"),
        C("evaluate_non_zip_npz", "errors",
          lambda ws, s: (["evaluate", "--db", db(ws), "--results", _write(s / "t.npz", b"hello, not a zip\n"),
                          "--threshold", "0.5"], [s]), contains="not a zip archive"),
        C("evaluate_empty_npz", "errors",
          lambda ws, s: (["evaluate", "--db", db(ws), "--results", _write(s / "t.npz", b""),
                          "--threshold", "0.5"], [s]), contains="empty file"),
        C("evaluate_object_dtype_npz", "errors",
          lambda ws, s: (["evaluate", "--db", db(ws), "--results",
                          _object_npz(ws, s / "t.npz"),
                          "--threshold", "0.5"], [s]), contains="object (pickled) array"),
        C("evaluate_npz_missing_arrays", "errors",
          lambda ws, s: (["evaluate", "--db", db(ws), "--results",
                          _write(s / "t.npz", _npz_bytes(boxes=np.zeros((1, 6)))), "--threshold", "0.5"], [s]),
          contains="not a ccmct result file"),
        C("evaluate_db_not_a_database", "errors",
          lambda ws, s: (["evaluate", "--db", _write(s / "x.sqlite", b"<html>nope</html>"), "--results",
                          ws.results, "--threshold", "0.5"], [s]), contains="x.sqlite"),
        C("infer_given_a_classifier", "errors",
          lambda ws, s: (["infer", "--model", ws.classifier, "--data-root", ws.root, "--split", "test",
                          "--out", s / "r.npz"], [s]), contains="needs a RetinaNet detector"),
        C("classify_given_a_detector", "errors",
          lambda ws, s: (["classify", "--model", ws.detector, "--results", ws.results, "--data-root", ws.root,
                          "--out", s / "r.npz"], [s]), contains="cell classifier"),
        C("infer_model_dir_missing", "errors",
          lambda ws, s: (["infer", "--model", s / "nope", "--data-root", ws.root, "--split", "test",
                          "--out", s / "r.npz"], [s]), contains="not found"),
        C("infer_config_missing_key", "errors",
          lambda ws, s: (["infer", "--model", _copy_model(ws.detector, s / "m",
                                                          config_edit=lambda d: d["config"].pop("tile_px")),
                          "--data-root", ws.root, "--split", "test", "--out", s / "r.npz"], [s]),
          contains="'tile_px' is missing"),
        C("infer_config_not_json", "errors",
          lambda ws, s: (["infer", "--model", _broken_config(ws.detector, s / "m"), "--data-root", ws.root,
                          "--split", "test", "--out", s / "r.npz"], [s]), contains="not valid JSON"),
        C("infer_weights_do_not_fit", "errors",
          lambda ws, s: (["infer", "--model", _copy_model(ws.detector, s / "m",
                                                          config_edit=lambda d: d["config"].update(head_convs=3)),
                          "--data-root", ws.root, "--split", "test", "--out", s / "r.npz"], [s]),
          contains="weights do not fit"),
        C("infer_empty_weights", "errors",
          lambda ws, s: (["infer", "--model", _copy_model(ws.detector, s / "m", weights=b""), "--data-root",
                          ws.root, "--split", "test", "--out", s / "r.npz"], [s]), contains="empty file"),
        C("infer_junk_weights", "errors",
          lambda ws, s: (["infer", "--model", _copy_model(ws.detector, s / "m", weights=b"PK\x03\x04junk" * 20),
                          "--data-root", ws.root, "--split", "test", "--out", s / "r.npz"], [s]),
          contains="not a loadable state dict"),
        C("classify_damaged_pickle", "errors",
          lambda ws, s: (["classify", "--model", ws.classifier, "--results", _write(s / "r.p.bz2", b"BZh91AY&junk"),
                          "--data-root", ws.root, "--out", s / "o.npz"], [s]), contains="not a readable"),
        C("infer_damaged_part_file_is_recomputed", "errors",
          lambda ws, s: (["infer", "--model", ws.detector, "--data-root", ws.root, "--split", "test",
                          "--out", _damaged_part(s, ws.test_slide), "--workers", "0", "--no-progress"], []),
          expect="ok", check=_infer_recomputed),
        # ---- 3. options
        C("evaluate_threshold_above_1", "options",
          lambda ws, s: (["evaluate", "--db", db(ws), "--results", ws.results, "--threshold", "1.5"], []),
          contains="[0, 1]"),
        C("evaluate_threshold_infinite", "options",
          lambda ws, s: (["evaluate", "--db", db(ws), "--results", ws.results, "--threshold", "inf"], []),
          contains="finite"),
        C("evaluate_min_threshold_1", "options",
          lambda ws, s: (["evaluate", "--db", db(ws), "--results", ws.results, "--optimize", "--min-threshold",
                          "1"], []), contains="must be below 1"),
        C("evaluate_radius_zero", "options",
          lambda ws, s: (["evaluate", "--db", db(ws), "--results", ws.results, "--threshold", "0.5", "--radius",
                          "0"], []), contains="> 0"),
        C("evaluate_radius_nan", "options",
          lambda ws, s: (["evaluate", "--db", db(ws), "--results", ws.results, "--threshold", "0.5", "--radius",
                          "nan"], []), contains="finite"),
        C("evaluate_min_threshold_leaves_nothing_to_try", "options",
          lambda ws, s: (["evaluate", "--db", db(ws), "--results", ws.results, "--optimize", "--min-threshold",
                          "0.995"], []), contains="leave thresholds to try"),
        C("classify_radius_negative", "options",
          lambda ws, s: (["classify", "--model", ws.classifier, "--results", ws.results, "--data-root", ws.root,
                          "--radius", "-25", "--out", s / "o.npz"], [s]), contains="> 0"),
        C("train_classifier_device_unknown", "options",
          lambda ws, s: (["train-classifier", "--data-root", ws.root, "--variant", "ODAEL", "--preset", "smoke",
                          "--device", "tpu", "--out", s / "m"], [s]), contains="cpu, cuda"),
        C("infer_batch_size_zero", "options",
          lambda ws, s: (["infer", "--model", ws.detector, "--data-root", ws.root, "--split", "test",
                          "--batch-size", "0", "--out", s / "r.npz"], [s]), contains="at least 1"),
        C("infer_workers_negative", "options",
          lambda ws, s: (["infer", "--model", ws.detector, "--data-root", ws.root, "--split", "test",
                          "--workers", "-1", "--out", s / "r.npz"], [s]), contains="at least 0"),
        C("infer_device_unknown", "options",
          lambda ws, s: (["infer", "--model", ws.detector, "--data-root", ws.root, "--split", "test",
                          "--device", "gpu", "--out", s / "r.npz"], [s]), contains="cpu, cuda"),
        C("classify_batch_size_text", "options",
          lambda ws, s: (["classify", "--model", ws.classifier, "--results", ws.results, "--data-root", ws.root,
                          "--batch-size", "many", "--out", s / "o.npz"], [s]), contains="whole number"),
        C("ablation_hpf_zero", "options",
          lambda ws, s: (["ablation", "hpf", "--data-root", ws.root, "--hpf", "0", "--out", s / "a"], [s]),
          contains="> 0"),
        C("ablation_wsi_zero", "options",
          lambda ws, s: (["ablation", "wsi", "--data-root", ws.root, "--wsi", "0", "--out", s / "a"], [s]),
          contains="at least 1"),
        C("synth_mpp_zero", "options",
          lambda ws, s: (["synth", "--out", s / "syn", "--mpp", "0"], [s]), contains="> 0"),
        C("synth_seed_negative", "options",
          lambda ws, s: (["synth", "--out", s / "syn", "--seed", "-1"], [s]), contains="at least 0"),
        C("stats_mpp_infinite", "options",
          lambda ws, s: (["stats", "--data-root", ws.root, "--mpp", "inf"], []), contains="finite"),
        C("export_box_size_nan", "options",
          lambda ws, s: (["export", "--db", db(ws), "--format", "coco", "--box-size", "nan", "--out",
                          s / "o.json"], [s]), contains="finite"),
        C("setup_workers_zero", "options",
          lambda ws, s: (["setup", "--data-root", s / "d", "--workers", "0"], [s]), contains="at least 1"),
        C("evaluate_json_without_detections_is_strict", "options",
          lambda ws, s: (["evaluate", "--db", db(ws), "--results", _empty_results(ws, s), "--threshold", "0.5",
                          "--json"], [s]), expect="ok", check=_strict_json),
        C("export_geojson_is_strict", "options",
          lambda ws, s: (["export", "--db", db(ws), "--format", "geojson", "--out", s / "o.geojson"], []),
          expect="ok", check=lambda proc, ws, s: _strict_json(proc, ws, s, s / "o.geojson")),
        # ---- 4. result content
        C("evaluate_results_with_nan", "results",
          lambda ws, s: (["evaluate", "--db", db(ws), "--results",
                          _results_with(ws, s, [10, 10, 60, 60, 0, float("nan")]), "--threshold", "0.5"], [s]),
          contains="non-finite"),
        C("evaluate_results_score_above_1", "results",
          lambda ws, s: (["evaluate", "--db", db(ws), "--results", _results_with(ws, s, [10, 10, 60, 60, 0, 1.5]),
                          "--threshold", "0.5"], [s]), contains="score outside [0, 1]"),
        C("evaluate_results_negative_box", "results",
          lambda ws, s: (["evaluate", "--db", db(ws), "--results", _results_with(ws, s, [60, 60, 10, 10, 0, 0.5]),
                          "--threshold", "0.5"], [s]), contains="x2 < x1"),
        C("classify_results_outside_slide", "results",
          lambda ws, s: (["classify", "--model", ws.classifier, "--results",
                          _results_with(ws, s, [1e6, 1e6, 1e6 + 50, 1e6 + 50, 0, 0.9]), "--data-root", ws.root,
                          "--out", s / "o.npz"], [s]), contains="outside the slide"),
        C("evaluate_pickle_results_score_negative", "results",
          lambda ws, s: (["evaluate", "--db", db(ws), "--results",
                          _pickle_file(s, pickle.dumps({ws.test_slide: [np.array([1.0, 1, 50, 50, 0, -0.2])]}),
                                       "r.p.bz2"), "--threshold", "0.5"], [s]), contains="score outside"),
        # ---- 5. unpickler
        C("pickle_object_array_by_reduce", "unpickler",
          lambda ws, s: (["evaluate", "--db", db(ws), "--results", _pickle_file(s, _object_array_reduce()),
                          "--threshold", "0.5"], [s]), contains="refused to load"),
        C("pickle_object_array_by_setstate", "unpickler",
          lambda ws, s: (["evaluate", "--db", db(ws), "--results", _pickle_file(s, _object_array_setstate()),
                          "--threshold", "0.5"], [s]), contains="refused to load"),
        C("pickle_os_system", "unpickler",
          lambda ws, s: (["evaluate", "--db", db(ws), "--results", _pickle_file(s, _os_system()),
                          "--threshold", "0.5"], [s]), contains="only NumPy arrays"),
        C("pickle_huge_array", "unpickler",
          lambda ws, s: (["evaluate", "--db", db(ws), "--results", _pickle_file(s, _huge_array()),
                          "--threshold", "0.5"], [s]), contains="larger than"),
        # ---- 6. setup
        C("setup_download_into_synthetic_root", "setup",
          lambda ws, s: (["setup", "--data-root", ws.root, "--only", "databases"], []), contains="synthetic"),
        C("setup_verify_synthetic_root", "setup",
          lambda ws, s: (["setup", "--data-root", ws.root, "--verify"], []), contains="synthetic data root"),
        C("setup_verify_missing_root", "setup",
          lambda ws, s: (["setup", "--data-root", s / "nope", "--verify"], [s]), contains="no such folder"),
        C("setup_unknown_synthetic_preset", "setup",
          lambda ws, s: (["setup", "--data-root", s / "d", "--synthetic", "huge"], [s]), contains="invalid choice"),
        C("setup_foreign_database_is_not_taken_as_present", "setup",
          lambda ws, s: (["setup", "--data-root", _foreign_db_root(ws, s), "--only", "databases", "--base-url",
                          "http://127.0.0.1:9", "--attempts", "1", "--backoff", "0.01", "--timeout", "2",
                          "--no-progress"], [s / "realish" / "databases" / ws.odael.name]),
          expect="report", check=_setup_report),
    ]
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), "case names must be unique"
    return cases


def _link(link: Path, target: Path) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(target)
    return link


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncated(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    return _write(dst, data[: len(data) // 2])


def _broken_config(src: Path, dst: Path) -> Path:
    _copy_model(src, dst)
    (dst / "config.json").write_text('{"format_version": 1, "kind": "retinanet", "config": {')
    return dst


def _damaged_part(scratch: Path, slide: str) -> Path:
    out = scratch / "r.npz"
    parts = scratch / "r.npz.parts"
    parts.mkdir(exist_ok=True)
    (parts / f"{slide}.npz").write_bytes(b"PK\x03\x04 truncated part file")
    return out


def _empty_results(ws: Workspace, scratch: Path) -> Path:
    from ccmct.data.results import write_results

    return write_results(scratch / "empty.npz", {ws.test_slide: np.zeros((0, 6))})


CASES: list[Case] = _cases()


def cases_of(category: str) -> list[Case]:
    return [c for c in CASES if c.category == category]


def all_cases() -> list[Case]:
    """This module's cases plus the content cases of ``content_cases.py`` (database / slide content, 14B)."""
    try:
        import content_cases
    except ImportError:
        return list(CASES)
    if content_cases.CATEGORY not in CATEGORIES:  # its row goes after the results row of category 4
        items = list(CATEGORIES.items())
        at = [k for k, _ in items].index("results") + 1
        CATEGORIES.clear()
        CATEGORIES.update(items[:at] + [(content_cases.CATEGORY, content_cases.TITLE)] + items[at:])
    return list(CASES) + list(content_cases.content_cases())


# ---------------------------------------------------------------------------------------------- table
def table(outcomes: list[Outcome]) -> str:
    """The markdown table "cases tried / clean errors / tracebacks / silent / data lost" (+ per category)."""
    header = ("| category | cases tried | clean errors | expected successes / reports | tracebacks | silent | "
              "data lost | other |")
    rows = [header, "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def row(label, items):
        count = lambda *v: sum(o.verdict in v for o in items)  # noqa: E731
        return (f"| {label} | {len(items)} | {count('clean')} | {count('ok', 'report')} | {count('traceback')} | "
                f"{count('silent')} | {count('lost')} | {count('wrong')} |")

    for key, title in CATEGORIES.items():
        items = [o for o in outcomes if o.case.category == key]
        if items:
            rows.append(row(title, items))
    rows.append(row("**all**", outcomes))
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=None, help="an existing tiny synthetic root to copy")
    cases = all_cases()
    parser.add_argument("--only", nargs="+", choices=sorted(CATEGORIES), default=None)
    parser.add_argument("--keep", type=Path, default=None, help="workspace folder to keep (default: temporary)")
    args = parser.parse_args(argv)
    base = args.keep or Path(tempfile.mkdtemp(prefix="ccmct-battery-"))
    try:
        ws = Workspace.create(base, tiny_root=args.root)
        outcomes = []
        for case in cases:
            if args.only and case.category not in args.only:
                continue
            outcome = run_case(case, ws)
            outcomes.append(outcome)
            flag = "  " if outcome.passed else "!!"
            first = (outcome.stderr.strip().splitlines() or [""])[-1][:150]
            print(f"{flag} {outcome.verdict:9s} {case.category:9s} {case.name:48s} {outcome.seconds:5.1f} s  "
                  f"{outcome.detail or first}", flush=True)
        print()
        print(table(outcomes))
        return 0 if all(o.passed for o in outcomes) else 1
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
