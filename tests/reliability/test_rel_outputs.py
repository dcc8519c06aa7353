"""Category 1: outputs never clobber inputs or foreign files; the guard runs before any work."""

from __future__ import annotations

import os

import pytest
from battery import cases_of
from clitools import explain

from ccmct.outputs import OutputError, guard_output


@pytest.mark.parametrize("case", cases_of("outputs"), ids=lambda c: c.name)
def test_case(case, battery_outcome):
    outcome = battery_outcome(case)
    assert outcome.passed, explain(outcome)


def test_guard_refuses_inputs_and_paths_inside_input_folders(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.pt").write_bytes(b"w")
    with pytest.raises(OutputError, match="also an input"):
        guard_output(model / "weights.pt", reads=[model / "weights.pt"])
    with pytest.raises(OutputError, match="lies inside"):
        guard_output(model / "sub" / "r.npz", reads=[model])
    with pytest.raises(OutputError, match="also an input"):  # the same file by another spelling
        guard_output(tmp_path / "model" / ".." / "model" / "weights.pt", reads=[model / "weights.pt"])
    with pytest.raises(OutputError, match="holds the input file"):  # a folder output over an input file
        guard_output(model, reads=[model / "weights.pt"], kind="dir")
    assert guard_output(tmp_path / "r.npz", reads=[model]) == tmp_path / "r.npz"
    assert (model / "weights.pt").read_bytes() == b"w"


def test_guard_refuses_links_devices_and_wrong_kinds(tmp_path):
    target = tmp_path / "real.npz"
    target.write_bytes(b"keep")
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    with pytest.raises(OutputError, match="symbolic link"):
        guard_output(link)
    with pytest.raises(OutputError, match="device"):
        guard_output("/dev/null")
    with pytest.raises(OutputError, match="is a folder, not a file"):
        guard_output(tmp_path)
    with pytest.raises(OutputError, match="is a file, not a folder"):
        guard_output(target, kind="dir")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="FIFO"):
        guard_output(fifo)
    folder_link = tmp_path / "folder_link"
    folder_link.symlink_to(tmp_path / "sub", target_is_directory=True)
    with pytest.raises(OutputError, match="symbolic link"):  # dangling folder link
        guard_output(folder_link, kind="dir")
    (tmp_path / "sub").mkdir()
    assert guard_output(folder_link, kind="dir") == folder_link  # a link to a folder is followed
    assert target.read_bytes() == b"keep"


def test_guard_checks_the_folder_is_writable_before_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        guard_output(blocker / "deeper" / "r.npz")
    with pytest.raises(OutputError, match="cannot be written"):
        guard_output("/proc/ccmct-test/r.npz")
    guard_output(tmp_path / "new" / "deeper" / "r.npz")  # missing folders are fine (created later)
    assert not (tmp_path / "new").exists()  # the guard itself creates nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # and leaves no probe file behind
