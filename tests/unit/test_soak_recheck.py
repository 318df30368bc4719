"""A history a failed soak round kept reads back as the checker saw it, and
`scripts/soak --recheck` decides it again with its workload's model and the search
budget it is given (a round's verdict "unknown" means the budget ran out)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.faults.history import History
from tests.faults.soak import load_history, main, save_history
from tests.faults.workloads import RegisterWorkload


def kept_round(directory: Path) -> tuple[RegisterWorkload, Path]:
    """A register round: created, then ten writes that timed out, each expecting a version
    (the first sent the last to fit), then a read that saw all ten applied: the checker has
    to search which of them applied, and in which order."""
    workload = RegisterWorkload(keys=1, seed=5)
    clock = itertools.count()
    workload.history = h = History(clock=lambda: float(next(clock)))
    key = workload.keys[0]
    h.complete(h.invoke("p0", key, "transition", ("create", None, "a", None)), ("ok", 1))
    for i in range(10):
        h.timeout(h.invoke(f"p{i}", key, "transition", ("write", 10 - i, "b", {"n": i})))
    h.complete(h.invoke("r", key, "read"), ("b", 11))
    return workload, save_history(workload, directory / "round0-reg.jsonl")


def test_a_kept_history_reads_back_as_the_operations_the_checker_saw(tmp_path: Path) -> None:
    workload, path = kept_round(tmp_path)
    assert load_history(path) == workload.history.operations()


def test_recheck_decides_a_kept_round_with_its_model_and_the_budget_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = kept_round(tmp_path)
    assert main(["--recheck", str(path), "--max-steps", "20"]) == 1
    assert "checker unknown" in capsys.readouterr().out
    assert main(["--recheck", str(path)]) == 0
    assert "checker linearizable (12 ops" in capsys.readouterr().out


def test_recheck_says_which_files_it_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stray = tmp_path / "history.json"
    stray.write_text("")
    with pytest.raises(SystemExit) as exited:
        main(["--recheck", str(stray)])
    assert exited.value.code == 2
    assert "round<N>-<reg|lock|msg>.jsonl" in capsys.readouterr().err
