"""Text signals: requests for a human (en/es/pt) and anger."""

from __future__ import annotations

import pytest

from handoff.core.signals import asks_for_human, is_angry, is_shouting, normalize


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("talk to a human", "en"),
        ("Can I speak to an agent?", "en"),
        ("I want a real person", "en"),
        ("I need a human please", "en"),
        ("connect me with a representative", "en"),
        ("Please transfer me to an operator", "en"),
        ("can I chat with someone", "en"),
        ("live agent", "en"),
        ("AGENT!!", "en"),
        ("human", "en"),
        ("No, I want an agent", "en"),
        ("Quiero hablar con un agente", "es"),
        ("necesito hablar con alguien", "es"),
        ("una persona real por favor", "es"),
        ("pásame con un asesor", "es"),
        ("HABLAR CON UN HUMANO", "es"),
        ("quero falar com uma pessoa", "pt-BR"),
        ("Quero falar com um atendente", "pt-BR"),
        ("falar com alguém", "pt"),
        ("me transfere para um atendente", "pt-BR"),
        ("atendimento humano", "pt-BR"),
        ("preciso de um atendente humano", "pt-BR"),
        # every lexicon is checked, whatever the language tag says
        ("quero falar com uma pessoa", "en"),
    ],
)
def test_asks_for_human(text: str, language: str) -> None:
    assert asks_for_human(text, language)


@pytest.mark.parametrize(
    "text",
    [
        "I am not a human",
        "are you a bot?",
        "I have a question about human resources",
        "Can I talk to human resources?",
        "I don't want to talk to a human",
        "I do not need an agent",
        "no quiero hablar con un agente",
        "não quero falar com um atendente",
        "where is my order",
        "the agent field in my profile is wrong",
        "my travel agent booked this",
        "someone stole my card",
        "",
    ],
)
def test_not_a_request_for_a_human(text: str) -> None:
    assert not asks_for_human(text, "en")


def test_normalize_strips_accents_case_and_punctuation() -> None:
    assert normalize("Alguém, PÁSAME!!") == " alguem pasame "


@pytest.mark.parametrize(
    "text",
    [
        "WHERE IS MY ORDER",
        "THIS IS UNACCEPTABLE",
        "why?!?",
        "hello!!!",
        "¡¡¡ya!!!",
        "I will call my lawyer",
        "I'll file a chargeback",
        "I'm going to sue you",
        "give me my money back",
        "voy a llamar a mi abogado",
        "quiero mi dinero",
        "vou reclamar no Reclame Aqui",
        "vou processar vocês",
        "isso é um absurdo",
    ],
)
def test_angry(text: str) -> None:
    assert is_angry(text)


@pytest.mark.parametrize(
    "text",
    [
        "I want a refund",
        "ok",
        "ASAP",
        "OK THX",
        "where is my order?",
        "???",
        "hi!",
        "wow!!",
        "I need to cancel an order",
        "NASA",
    ],
)
def test_not_angry(text: str) -> None:
    assert not is_angry(text)


def test_shouting_needs_ten_letters_and_two_words() -> None:
    assert not is_shouting("ABCDEFGHIJKLMNOP")  # one word
    assert not is_shouting("ABC DEF")  # 6 letters
    assert is_shouting("ABCDE FGHIJ")  # 10 letters
    assert is_shouting("WHERE IS my ORDER NOW")  # 15 of 17 upper: over 80%
    assert not is_shouting("Where Is My Order Now")
