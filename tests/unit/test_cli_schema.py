"""`fsmcluster schema check|diagram` run through main() on files in a temporary folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cluster.__main__ import main
from schema_lang import compile_machine, load_example

GOOD = load_example("lock")
BAD = GOOD.replace(
    "release:\n    from: held\n    to: free", "release:\n    from: held\n    to: fre"
)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_check_of_a_valid_file_prints_ok_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(tmp_path, "lock.yaml", GOOD)
    assert main(["schema", "check", file]) == 0
    revision = compile_machine(GOOD).revision
    assert capsys.readouterr().out == f"{file}: ok (3 states, 6 transitions, revision {revision})\n"


def test_check_of_a_bad_file_prints_file_line_column_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "to: fre\n" in BAD
    good = write(tmp_path, "good.yaml", GOOD)
    bad = write(tmp_path, "bad.yaml", BAD)
    assert main(["schema", "check", good, bad]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{good}: ok (")
    line = BAD.splitlines().index("    to: fre") + 1
    assert lines[1] == (
        f"{bad}:{line}:9: transitions.release.to: transition 'release' goes to unknown state"
        " 'fre' (did you mean 'free'?) (states: free, gone, held)"
    )
    assert len(lines) == 2


def test_check_reports_every_problem_one_per_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = BAD.replace("history: 100", "history: 0").replace("  free: {}", "  free: {colour: red}")
    bad = write(tmp_path, "bad.yaml", text)
    assert main(["schema", "check", bad]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    pattern = re.compile(rf"^{re.escape(bad)}:(\d+):(\d+): (\S+): .+$")
    paths = []
    for line in lines:
        match = pattern.match(line)
        assert match, line
        paths.append(match.group(3))
    assert paths == ["history", "states.free.colour", "transitions.release.to"]


def test_file_without_machine_key_is_named_after_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(tmp_path, "mylock.yaml", GOOD.replace("machine: lock ", "# no name "))
    assert main(["schema", "check", file]) == 0
    assert ": ok (3 states" in capsys.readouterr().out


def test_missing_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "missing.yaml")
    assert main(["schema", "check", missing]) == 1
    assert capsys.readouterr().out.startswith(f"{missing}:0:0: : cannot read the file")


@pytest.mark.parametrize(
    "fmt, first", [("mermaid", "stateDiagram-v2"), ("dot", 'digraph "lock" {')]
)
def test_diagram_prints_the_chosen_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str, first: str
) -> None:
    file = write(tmp_path, "lock.yaml", GOOD)
    assert main(["schema", "diagram", file, "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == first
    assert "acquire" in out


def test_diagram_of_a_bad_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, "bad.yaml", BAD)
    assert main(["schema", "diagram", bad]) == 1
    assert "transitions.release.to" in capsys.readouterr().out


def test_schema_without_a_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["schema"])
    assert exited.value.code == 2
