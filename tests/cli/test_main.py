"""The ``ccmct`` dispatcher: every command registers, helps, and turns bad input into one line + exit 2."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from ccmct import __version__
from ccmct.cli import commands, get_parser, main

MODULES = sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_"))
COMMANDS = sorted(get_parser()._subparsers._group_actions[0].choices)


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"ccmct {__version__}"


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: ccmct" in capsys.readouterr().out


def test_foundation_commands_are_registered():
    choices = get_parser()._subparsers._group_actions[0].choices
    assert {"stats", "export"} <= set(choices)
    assert len(choices) == len(MODULES)  # one command per module in ccmct.cli.commands


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: ccmct {command}" in text and "example" in text.lower()


def test_library_error_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"\x00" * 64)
    assert main(["export", "--db", str(bad), "--format", "geojson", "--out", str(tmp_path / "o.geojson")]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert lines == [f"ccmct export: error: {bad}: not a SQLite database (wrong file header; truncated or HTML "
                     "download?)"]
    assert "Traceback" not in captured.err


def test_unknown_argument_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["stats", "--data-root", "x", "--no-such-flag"])
    assert info.value.code == 2 and "unrecognized arguments: --no-such-flag" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["stats"])
    assert "required: --data-root" in capsys.readouterr().err


def test_console_script_entry_point(tmp_path):
    """The console script that ``pip install -e .`` puts beside the interpreter."""
    script = Path(sys.executable).parent / "ccmct"
    assert script.exists(), f"console script missing: {script} (is the package installed?)"
    result = subprocess.run([str(script), "stats", "--data-root", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("ccmct stats: error: ") and len(result.stderr.strip().splitlines()) == 1
