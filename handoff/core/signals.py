"""Pure text signals: does the customer ask for a human, is the customer angry.

Both work on a *normalized* text: Unicode NFKD with combining marks removed (so "alguém"
equals "alguem"), case-folded, every run of non-alphanumerics turned into one space.
English, Spanish and Portuguese lexicons are always all checked: customers switch
languages mid-chat and the ``language`` tag is often the page's, not the customer's.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_NON_WORD = re.compile(r"[^0-9a-z]+")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


@lru_cache(maxsize=4096)
def _normalized(text: str) -> tuple[str, tuple[str, ...], frozenset[str]]:
    """``normalize(text)``, its words, and their set: what every rule below reads.

    Cached: both signals read the same message text. The set lets a rule that needs one
    of a few words skip its scan when none is there (the common case).
    """
    if not text.isascii():
        text = "".join(
            c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
        )
    norm = " " + _NON_WORD.sub(" ", text.casefold()).strip() + " "
    words = tuple(norm.split())
    return norm, words, frozenset(words)


def normalize(text: str) -> str:
    """Accent-free, case-folded words separated by single spaces, padded with one space."""
    return _normalized(text)[0]


def _first_words(phrases: tuple[str, ...]) -> frozenset[str]:
    """The words a match of any of ``phrases`` (`` word word ``) must contain.

    On a normalized text a phrase can only match at word boundaries, so its first word
    is then one of the text's words: a text with none of these words cannot match.
    """
    return frozenset(p.split()[0] for p in phrases)


# --- asks_for_human ------------------------------------------------------------------------

# Verbs of talking: may be followed by a weak target ("talk to someone").
_TALK = _words("talk speak chat hablar habla hable comunicarme comunicar conversar falar fale")
# Verbs of wanting/routing: need a strong target ("I want an agent").
_WANT = _words(
    """want need get give connect transfer put escalate
    quiero necesito pasame pasarme paseme transfiereme transferirme conectame conectarme
    quero preciso passa passe transfere transferir chama chame"""
)
# Words allowed between the verb and its target.
_FILLER = _words(
    """to with a an the me my some one your please real live actual proper
    con a un una el la al alguna algun por favor de
    com um uma o os as ao para pra por favor de"""
)
_STRONG = _words(
    """human humans person agent agents representative rep operator staff supervisor manager
    humano persona agente asesor operador representante ejecutivo supervisor
    atendente pessoa consultor gerente"""
)
_WEAK = _words("someone somebody anyone alguien alguem")
# "human resources" and the like are not a person to talk to.
_NOT_AFTER_HUMAN = _words("resources resource rights error nature")
_NEGATION = _words("not dont don t never no nao nunca")
_CHAIN = _TALK | _WANT | _FILLER
_VERBS = _TALK | _WANT
_TARGETS = _STRONG | _WEAK
# Phrases that are a request on their own, wherever they appear.
_PHRASES = tuple(
    f" {p} "
    for p in (
        "real person",
        "real human",
        "live agent",
        "live person",
        "live chat agent",
        "human agent",
        "actual person",
        "actual human",
        "persona real",
        "ser humano real",
        "agente humano",
        "atencion humana",
        "pessoa real",
        "atendente humano",
        "atendimento humano",
        "pessoa de verdade",
    )
)
_PHRASES_RE = re.compile("|".join(re.escape(p) for p in _PHRASES))
_PHRASES_FIRST = _first_words(_PHRASES)
# A whole message that is nothing but a target ("agent", "human please!").
_ALONE_NOISE = _words("please pls plz now a an un una um uma por favor ya")


def asks_for_human(text: str, language: str | None = None) -> bool:
    """True when the text asks for a human, in English, Spanish or Portuguese.

    Rules, on the normalized text (see module docstring):
    1. It contains a request phrase: "real person", "live agent", "persona real",
       "atendimento humano", ... (``_PHRASES``).
    2. Or a verb of talking ("talk", "hablar", "falar") or wanting/routing ("want",
       "connect", "quiero", "quero", "transfere") is followed, with only filler words
       between (at most 5: "to", "with", "a", "con", "com", "uma", other verbs ...), by a
       target: "human", "agent", "representative", "persona", "atendente", ... After a
       verb of talking, "someone"/"alguien"/"alguém" counts too. "human" followed by
       "resources"/"rights"/"error" is not a target. A negation ("not", "don't", "no",
       "não", "never") right before the chain of verbs and fillers cancels the match
       ("I don't want to talk to a human"; but "No, I want an agent" matches).
    3. Or the whole message is a target, apart from "please"/"now"/articles
       ("agent", "human please!", "atendente").

    ``language`` is accepted as a hint but all lexicons are checked (see module docstring).
    "I am not a human", "are you a bot?" and "human resources" do not match.
    """
    del language  # every lexicon is checked; see the docstring
    norm, words, present = _normalized(text)
    if not present.isdisjoint(_PHRASES_FIRST) and _PHRASES_RE.search(norm):
        return True
    # Rules 2 and 3 both need a target word, and rule 2 a verb: most texts have neither.
    if present.isdisjoint(_TARGETS):
        return False
    if not present.isdisjoint(_STRONG):
        rest = [w for w in words if w not in _ALONE_NOISE]
        if len(rest) == 1 and rest[0] in _STRONG:
            return True
    if present.isdisjoint(_VERBS):
        return False
    n = len(words)
    for i, word in enumerate(words):
        if word not in _TALK and word not in _WANT:
            continue
        start = i
        while start > 0 and words[start - 1] in _CHAIN:
            start -= 1
        if start > 0 and words[start - 1] in _NEGATION:
            continue
        talk = word in _TALK
        j = i + 1
        while j < n and j - i <= 6:
            w = words[j]
            if w in _STRONG or (talk and w in _WEAK):
                if w.startswith("human") and j + 1 < n and words[j + 1] in _NOT_AFTER_HUMAN:
                    break
                return True
            if w in _TALK:
                talk = True
            elif w not in _FILLER and w not in _WANT:
                break
            j += 1
    return False


# --- is_angry ------------------------------------------------------------------------------

SHOUT_MIN_LETTERS = 10
SHOUT_RATIO = 0.8
_REPEATED_PUNCT = re.compile(r"[!?¡¿]{3,}")
_THREATS = tuple(
    f" {p} "
    for p in (
        # English
        "chargeback",
        "charge back",
        "dispute the charge",
        "lawyer",
        "lawyers",
        "attorney",
        "sue you",
        "sue your",
        "lawsuit",
        "legal action",
        "report you",
        "better business bureau",
        "cancel everything",
        "i will cancel",
        "i ll cancel",
        "going to cancel",
        "cancelling my account",
        "canceling my account",
        "my money back",
        "refund or",
        "unacceptable",
        "ridiculous",
        "scam",
        "wtf",
        "worst service",
        # Spanish
        "abogado",
        "abogados",
        "demanda",
        "demandar",
        "denunciar",
        "denuncia",
        "contracargo",
        "profeco",
        "voy a cancelar",
        "mi dinero",
        "inaceptable",
        "ridiculo",
        "estafa",
        "pesimo servicio",
        # Portuguese
        "advogado",
        "advogados",
        "processar",
        "procon",
        "reclame aqui",
        "vou cancelar",
        "meu dinheiro de volta",
        "inaceitavel",
        "absurdo",
        "palhacada",
        "pessimo atendimento",
        "golpe",
    )
)


_THREATS_RE = re.compile("|".join(re.escape(p) for p in _THREATS))
_THREATS_FIRST = _first_words(_THREATS)
# At least this many upper-case letters, or no shout (80% of the minimum 10 letters).
_SHOUT_MIN_UPPER = SHOUT_RATIO * SHOUT_MIN_LETTERS
_ASCII_UPPER = bytes(range(ord("A"), ord("Z") + 1))
_ASCII_LOWER = bytes(range(ord("a"), ord("z") + 1))


def is_shouting(text: str) -> bool:
    """At least 10 cased letters, at least 80% of them upper case, in two or more words."""
    if text.isascii():
        # The same counts as the general path (for ASCII, str.isupper is exactly A-Z),
        # by deleting bytes in C rather than testing characters one by one.
        raw = text.encode("ascii")
        upper = len(raw) - len(raw.translate(None, _ASCII_UPPER))
        if upper < _SHOUT_MIN_UPPER:
            return False
        letters = upper + len(raw) - len(raw.translate(None, _ASCII_LOWER))
    else:
        if text.lower() == text:  # fast path: nothing upper case
            return False
        upper = sum(map(str.isupper, text))
        if upper < _SHOUT_MIN_UPPER:
            return False
        letters = upper + sum(map(str.islower, text))
    return (
        letters >= SHOUT_MIN_LETTERS and upper >= SHOUT_RATIO * letters and len(text.split()) >= 2
    )


def is_angry(text: str) -> bool:
    """True for clear anger; the rules, any one suffices:

    1. Shouting: :func:`is_shouting` ("WHERE IS MY ORDER" yes, "ASAP" or "OK" no).
    2. Repeated punctuation: a run of 3+ of ``! ? ¡ ¿`` containing at least one ``!`` or
       ``¡`` ("!!!", "?!?!"). "???" alone is confusion, not anger.
    3. A threat or an outburst phrase, on the normalized text: chargeback, lawyer,
       attorney, lawsuit, "sue you", "report you", "I will cancel", "my money back",
       "unacceptable", "scam"; abogado, demanda, contracargo, "voy a cancelar",
       "mi dinero", estafa; advogado, processar, Procon, "Reclame Aqui", "vou cancelar",
       absurdo, golpe (``_THREATS``). A plain "I want a refund" is an intent, not anger.
    """
    if is_shouting(text):
        return True
    if "!" in text or "¡" in text:  # a run counts only with one of these in it
        for m in _REPEATED_PUNCT.finditer(text):
            if "!" in m.group(0) or "¡" in m.group(0):
                return True
    norm, _, present = _normalized(text)
    return not present.isdisjoint(_THREATS_FIRST) and _THREATS_RE.search(norm) is not None
