"""The command line: a bad policy stops the worker before it touches Kafka, naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from handoff.cli import build_parser, main


def test_worker_with_an_invalid_policy_exits_naming_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "policy.toml"
    bad.write_text('no_progress_turns = 3\n\n[intents.refund]\ntier = "extreme"\n')
    code = main(["worker", "--policy", str(bad), "--broker", "kafka://127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code == 2
    assert str(bad) in err
    assert "intents.refund.tier" in err
    assert ":4" in err  # the line of the offending key


def test_every_subcommand_has_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    names = set(sub.choices)  # type: ignore[arg-type]
    assert {"worker", "broker", "replay", "demo", "sandbox"} <= names
    for name in names:
        text = sub.choices[name].format_help()  # type: ignore[index]
        assert "usage: handoff " + name in text
