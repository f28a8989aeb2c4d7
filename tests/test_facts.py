"""The fact extractor (``panza_core.facts``) on real mail and real instructions, its facts
checked by hand; and ``check``: carried, missing, invented and copied facts."""

from __future__ import annotations

import json

import pytest

from panza_core.facts import Kind, check, facts
from tests.conftest import shared

N, D, M, W, T, E, U, NUM = (Kind.NAME, Kind.DATE, Kind.MONTH, Kind.WEEKDAY, Kind.TIME,
                            Kind.EMAIL, Kind.URL, Kind.NUMBER)  # fmt: skip

# (user, the email's subject in the Panza release, its facts as a reader finds them).
REAL_EMAILS = [
    ("david", "Re: Check-out notification for Peter Kaczynski", {(N, "tom"), (N, "peter")}),
    (
        "david",
        None,
        {(N, "stephan"), (N, "paris"), (N, "new"), (N, "york"), (M, "december"), (D, "12-09")},
    ),  # fmt: skip
    ("isabel", None, {(N, "rachel"), (N, "maria"), (N, "anna")}),
    ("isabel", None, {(N, "rosalie"), (N, "jack")}),
]
# The Stephan and Rachel emails have no unique subject: found by their first words.
FIRST_WORDS = {1: "Dear Stephan,", 2: "Dear Rachel, Maria, and Anna,", 3: "Hi Rosalie and Jack"}

INSTRUCTIONS = [
    (
        "Ask the neighbours if anyone can water my plants and feed my cat Spike the last week "
        "in March",
        {(N, "spike"), (M, "march")},
    ),
    (
        "Tell Priya I can't make the Thursday meeting and ask to move it to Friday at 2pm",
        {(N, "priya"), (W, "thursday"), (W, "friday"), (T, "14:00")},
    ),
    (
        "Thank Tom for lending me the drill and say I will return it on Sunday",
        {(N, "tom"), (W, "sunday")},
    ),
    (
        "Remind Jonas that the invoice of $1,250 is due on 3 April 2026; send it to "
        "billing@acme.example or see https://acme.example/pay",
        {
            (N, "jonas"),
            (NUM, "1250usd"),
            (D, "2026-04-03"),
            (M, "april"),
            (E, "billing@acme.example"),
            (U, "acme.example/pay"),
        },
    ),
    (
        "Write an email to Mum asking for a meeting at noon with two friends, 8 mm bolts",
        {(N, "mum"), (T, "12:00"), (NUM, "2"), (NUM, "8mm")},
    ),
    ("Decline politely: I may be busy", set()),  # "may", the verb; no names, no dates
]


def _keys(text: str) -> set[tuple[Kind, str]]:
    return {(fact.kind, fact.key) for fact in facts(text)}


@pytest.mark.parametrize("row", range(len(REAL_EMAILS)))
def test_facts_of_real_emails(row):
    user, subject, expected = REAL_EMAILS[row]
    lines = shared("panza", f"{user}.jsonl").read_text(encoding="utf-8").splitlines()
    emails = [json.loads(line) for line in lines]
    if subject is not None:
        (email,) = [e for e in emails if e["subject"] == subject]
    else:
        (email,) = [e for e in emails if e["email"].startswith(FIRST_WORDS[row])]
    assert _keys(email["email"]) == expected


@pytest.mark.parametrize(("instruction", "expected"), INSTRUCTIONS)
def test_facts_of_instructions(instruction, expected):
    assert _keys(instruction) == expected


def test_sentence_starts_greetings_and_contractions_are_no_names():
    assert _keys("Hi all,\n\nI'll be there. Costs are fine. Best regards") == set()
    assert _keys("Priya, can you come? Priya said yes.") == {(N, "priya")}
    assert _keys("we sat by the sun on a wed") == set()  # abbreviations count capitalised


def test_dates_times_and_numbers_are_normalised():
    assert _keys("March 23") == _keys("23rd of March") == {(D, "03-23"), (M, "march")}
    assert _keys("at 3:30 p.m.") == _keys("at 15:30") == {(T, "15:30")}
    assert _keys("€ 1,200") == {(NUM, "1200eur")}
    assert _keys("the 31/02 party") == {(NUM, "31"), (NUM, "02")}  # no such date
    assert _keys("on 23/3, not 2026-03-24") == {(D, "03-23"), (D, "2026-03-24"), (M, "march")}


def test_check_finds_carried_missing_invented_and_copied_facts():
    result = check(
        "Ask the neighbours if anyone can water my plants and feed my cat Spike the last "
        "week in March",
        "Hi all, I'll be away from March 23. Could someone feed Spike? I'd love to plant "
        "bulbs with Ingrid.\n\nCheers, Maya",
        retrieved=["Dear Ingrid, the bulbs are in."],
        own=["I am Maya, I live on Elm Street."],
    )
    assert {f.key for f in result.carried} == {"spike", "march"} and result.recall == 1.0
    assert {f.key for f in result.invented} == {"03-23"}  # a date nobody gave
    assert {f.key for f in result.copied} == {"ingrid"}  # from an unrelated past email
    assert not result.missing
    lost = check("Feed my cat Spike in March", "Hi all, can anyone water the plants?")
    assert lost.recall == 0.0 and {f.key for f in lost.missing} == {"spike", "march"}
    assert check("Say thanks", "Thanks!").recall is None  # nothing asked, nothing to carry
