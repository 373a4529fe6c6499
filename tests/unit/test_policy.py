"""Policy loading: the shipped policy, lookups, and errors that name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from handoff.core.policy import (
    Policy,
    default_policy,
    default_policy_text,
    load_policy,
    locate,
    parse_policy,
)
from handoff.exceptions import PolicyError

BASE = """\
no_progress_turns = 3

[tiers.low]
threshold = 0.6

[tiers.high]
threshold = 0.8

[intents.refund]
tier = "high"
always_escalate = true
"""


def test_default_policy_loads_with_required_intents() -> None:
    policy = default_policy()
    for name in (
        "order_status",
        "shipping_delay",
        "product_question",
        "password_reset",
        "billing_invoice",
        "refund",
        "chargeback",
        "cancellation",
        "account_access",
        "security",
        "technical_issue",
        "change_address",
        "greeting",
        "thanks",
    ):
        assert name in policy.intents
    for risky in ("refund", "chargeback", "cancellation", "account_access", "security"):
        assert policy.intents[risky].always_escalate
        assert policy.intents[risky].tier == "high"
    assert policy.intents["refund"].required_entities == ("order_id",)
    assert policy.intents["thanks"].smalltalk


def test_default_policy_file_loads_from_path(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(default_policy_text(), encoding="utf-8")
    assert load_policy(path) == default_policy()


def test_defaults_for_globals() -> None:
    policy = parse_policy("")
    assert policy.no_progress_turns == 3
    assert policy.sentiment_threshold == -0.5
    assert policy.sentiment_streak == 2
    assert policy.max_entity_asks == 2
    assert policy.dedupe_window_minutes == 60
    assert policy.threshold("anything") == 0.6


def test_threshold_per_intent_overrides_tier() -> None:
    policy = parse_policy(BASE + '\n[intents.faq]\nthreshold = 0.42\n[intents.hi]\ntier = "high"\n')
    assert policy.threshold("faq") == 0.42
    assert policy.threshold("hi") == 0.8
    assert policy.threshold("refund") == 0.8


def test_unknown_intent_uses_default_section() -> None:
    policy = parse_policy(BASE + '\n[default]\ntier = "high"\npriority = "high"\n')
    assert policy.intent("never_heard_of").priority == "high"
    assert policy.threshold("never_heard_of") == 0.8
    assert policy.intent(None) is policy.default


@pytest.mark.parametrize(
    ("text", "line", "field", "reason"),
    [
        (BASE.replace("threshold = 0.6", "threshold = 1.6"), 4, "tiers.low.threshold", "less"),
        (BASE + "threshold = -0.1\n", 12, "intents.refund.threshold", "greater"),
        (
            BASE.replace('tier = "high"\nalways', 'tier = "mid"\nalways'),
            10,
            "intents.refund.tier",
            "'low' or 'high'",
        ),
        (BASE + "colour = 1\n", 12, "intents.refund.colour", "unknown field"),
        ("no_progress_turns = 0\n", 1, "no_progress_turns", "greater"),
        (
            BASE.replace("no_progress_turns = 3", 'no_progress_turns = "x"'),
            1,
            "no_progress_turns",
            "integer",
        ),
        ("[tiers.low]\nthreshold = 0.6\n", 1, "tiers", "'high' is missing"),
        (BASE + "\n[intents.Bad-Name]\ntier = 'low'\n", 13, "intents.Bad-Name", "lower case"),
        (
            BASE + 'required_entities = ["order_id", 7]\n',
            12,
            "intents.refund.required_entities",
            "string",
        ),
        (
            BASE + 'required_entities = ["a", "a"]\n',
            12,
            "intents.refund.required_entities",
            "unique",
        ),
        (BASE + 'priority = "asap"\n', 12, "intents.refund.priority", "urgent"),
        (BASE + "\n[intents.x]\nticket_type = 'bug'\n", 14, "intents.x.ticket_type", "problem"),
    ],
)
def test_invalid_policy_names_file_line_field(
    text: str, line: int, field: str, reason: str
) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="pol.toml")
    message = str(info.value)
    assert message.startswith(f"pol.toml:{line}: field '{field}'"), message
    assert reason in message


def test_toml_syntax_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("a = 1\n\n[tiers.low\nthreshold = 1\n", encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert str(info.value).startswith(f"{path}:3: invalid TOML")


def test_missing_file_names_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"nope\.toml"):
        load_policy(tmp_path / "nope.toml")


def test_locate_handles_dotted_keys_and_parents() -> None:
    text = 'a = 1\n[intents]\nrefund.tier = "x"\n[intents.other]\nk = 2\n'
    assert locate(text, ("intents", "refund", "tier")) == 3
    assert locate(text, ("intents", "other", "missing")) == 4
    assert locate(text, ("a",)) == 1
    assert locate(text, ("zzz",)) is None


def test_policy_is_frozen() -> None:
    policy = Policy()
    with pytest.raises(ValueError):
        policy.no_progress_turns = 5  # type: ignore[misc]
