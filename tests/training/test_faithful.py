"""Playback instructions checked against their email's facts (``training.faithful``):
kept, repaired with the facts they missed, or rewritten when they invent one."""

from __future__ import annotations

from panza_core.store import Message
from training.faithful import Verdict, faithful, key_facts

BILLING = Message(
    "Hi Mary,\n\nFrom 1 March the invoices go out on the 5th, and the rate is €120 an "
    "hour.\n\nBest regards,\nDavid",
    subject="Billing changes",
)


def test_an_instruction_with_every_fact_is_kept():
    instruction = "Tell Mary that from 1 March invoices go out on the 5th at €120 an hour"
    assert faithful(BILLING, instruction) == (instruction, Verdict.KEPT)


def test_missing_facts_are_appended_in_the_emails_order():
    fixed, verdict = faithful(BILLING, "Write an email to Mary about the billing changes")
    assert verdict is Verdict.REPAIRED
    assert fixed == ("Write an email to Mary about the billing changes. "
                     "Mention 1 March, 5th and €120.")  # fmt: skip


def test_an_invented_fact_rewrites_the_instruction_from_the_email():
    # What the 135M model wrote for a real email like this one.
    fixed, verdict = faithful(BILLING, "Write an email to Mum asking for a meeting")
    assert verdict is Verdict.REWRITTEN
    assert fixed == 'Write an email about "Billing changes". Mention Mary, 1 March, 5th and €120.'
    reply = Message("Yes, Tuesday works.\n\nCheers,\nDavid", subject="Re: Re: Lunch")
    assert faithful(reply, "Write a reply to Omar") == (
        'Write a reply about "Lunch". Mention Tuesday.', Verdict.REWRITTEN)  # fmt: skip


def test_the_signature_is_no_key_fact():
    assert [f.key for f in key_facts(BILLING)] == ["mary", "03-01", "5", "120eur"]
    plain = Message("Thanks Omar, see you then.\n\nCheers,\nMaya Okafor", subject="Re: visit")
    assert [f.key for f in key_facts(plain)] == ["omar"]
