"""Category 2: every error is one line (exit 2) or a per-slide report; never a traceback."""

from __future__ import annotations

import pytest
from battery import cases_of
from clitools import explain

from ccmct.cli import main


@pytest.mark.parametrize("case", cases_of("errors"), ids=lambda c: c.name)
def test_case(case, battery_outcome):
    outcome = battery_outcome(case)
    assert outcome.passed, explain(outcome)


def test_os_errors_become_one_line_but_bugs_keep_their_traceback(tmp_path, capsys, monkeypatch):
    import ccmct.cli.commands.stats as stats

    def permission(args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x.sqlite"))

    monkeypatch.setattr(stats, "_run", permission)
    assert main(["stats", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"ccmct stats: error: {tmp_path / 'x.sqlite'}: Permission denied"

    def bug(args):
        raise ZeroDivisionError("a genuine bug")

    monkeypatch.setattr(stats, "_run", bug)
    with pytest.raises(ZeroDivisionError):  # not hidden: a bug must stay visible and reportable
        main(["stats", "--data-root", str(tmp_path)])


def test_ccmct_debug_keeps_the_traceback(tmp_path, monkeypatch):
    from ccmct.errors import CcmctError

    monkeypatch.setenv("CCMCT_DEBUG", "1")
    with pytest.raises(CcmctError):
        main(["stats", "--data-root", str(tmp_path / "missing")])


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        main(["evaluate", "--db", "x.sqlite"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "the following arguments are required" in err and "see ccmct evaluate --help" in err
