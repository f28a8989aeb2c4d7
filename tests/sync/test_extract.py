"""Extraction rules on hand-made messages and on real mail (../shared/data)."""

from collections import Counter

import pytest

from sync import extract, files
from tests.conftest import shared
from tests.helpers import raw_email

ME = ["me@example.org"]


raw = raw_email


LONG = "Could you send me the minutes of yesterday's meeting before the end of the week please"


def test_keeps_own_mail_with_headers_decoded():
    m = extract.extract(raw(LONG + "\n\nThanks,\nMe", subject="Grüße — Minutes"), ME)
    assert isinstance(m, extract.Message)
    assert m.subject == "Grüße — Minutes"
    assert m.message_id == "<1@example.org>"
    assert m.date == "2026-03-03T09:00:00Z"
    assert m.text.startswith("Could you send") and m.text.endswith("Me")


def test_mail_from_someone_else_is_skipped():
    result = extract.extract(raw(LONG, sender="Tom <tom@example.org>"), ME)
    assert result == extract.Skip("not_from_account", "Tom <tom@example.org>")


@pytest.mark.parametrize(
    "quoted",
    [
        "On Mon, 2 Mar 2026 at 09:00, Tom <tom@example.org> wrote:\n> Are the minutes ready?\n> T",
        "On Mon, 2 Mar 2026 at 09:00, Tom Jones\n<tom@example.org> wrote:\n\n"
        "Are the minutes ready?",
        "-----Original Message-----\nFrom: Tom\nSent: Monday\nAre the minutes ready?",
        "________________________________\nFrom: Tom <tom@example.org>\nSent: Monday\nAre they?",
        "From: Tom <tom@example.org>\nSent: Monday, 2 March 2026\nTo: Me\nAre they ready?",
    ],
)
def test_top_posted_reply_keeps_own_text_and_the_quoted_original_apart(quoted):
    m = extract.extract(raw(f"{LONG}\n\nMe\n\n{quoted}"), ME)
    assert m.text == f"{LONG}\n\nMe"
    assert m.quoted.startswith("Are") and "?" in m.quoted
    assert "wrote:" not in m.quoted and ">" not in m.quoted


def test_bottom_posted_reply_keeps_text_after_the_quote():
    body = f"On Mon, 2 Mar 2026, Tom <tom@example.org> wrote:\n> Are the minutes ready?\n\n{LONG}"
    m = extract.extract(raw(body), ME)
    assert (m.text, m.quoted) == (LONG, "Are the minutes ready?")


def test_quoted_original_drops_its_own_quotes_and_never_comes_from_footers_or_forwards():
    nested = f"{LONG}\n\nOn Mon, 2 Mar 2026, Tom <t@x.org> wrote:\n> Yes.\n> > Ready?\n"
    assert extract.extract(raw(nested), ME).quoted == "Yes."
    footer = f"{LONG}\n\n_______________________________________________\nList -- l@x.org\n"
    assert extract.extract(raw(footer), ME).quoted is None
    fwd = f"{LONG}\n\n---------- Forwarded message ---------\nFrom: Tom\n\nAre they?"
    assert extract.extract(raw(fwd), ME).quoted is None
    signed = f"{LONG}\n-- \nMe\n\nOn Mon, 2 Mar 2026, Tom <t@x.org> wrote:\n> Ready?\n"
    assert extract.extract(raw(signed), ME).quoted == "Ready?"
    deep = LONG + "\n" + "\n".join(">" * n + " x" for n in range(1, 3000))
    assert extract.extract(raw(deep), ME).text == LONG  # no recursion per quote level


def test_received_mail_is_kept_when_asked_whatever_its_length():
    short = raw("Can you come?", sender="Tom <tom@example.org>")
    assert extract.extract(short, ME).reason == "not_from_account"
    m = extract.extract(short, ME, keep_received=True)
    assert (m.received, m.text, m.from_addr) == (True, "Can you come?", "Tom <tom@example.org>")
    assert extract.extract(raw(LONG), ME, keep_received=True).received is False


def test_forwarded_only_and_short_and_empty():
    fwd = "FYI\n\n---------- Forwarded message ---------\nFrom: Tom\n\n" + LONG
    assert extract.extract(raw(fwd, subject="Fwd: minutes"), ME).reason == "forwarded"
    assert extract.extract(raw("ok, thanks!"), ME).reason == "too_short"
    assert extract.extract(raw("> only a quote\n> nothing else"), ME).reason == "empty"
    assert extract.extract(raw("ok, thanks!"), ME, min_words=2).text == "ok, thanks!"


def test_html_only_is_converted_and_legacy_charsets_decode():
    html = f"<html><body><p>{LONG}</p><p>Cheers,<br>Me &amp; co</p></body></html>"
    m = extract.extract(raw(html, subtype="html"), ME)
    assert "<p>" not in m.text and LONG in m.text and "Me & co" in m.text
    m = extract.extract(raw(LONG + " café", charset="windows-1252"), ME)
    assert m.text.endswith("café")


def test_broken_bytes_never_raise():
    for junk in (b"", b"\x00\xff" * 50, b"Content-Type: multipart/mixed; boundary=\n\n--x\n"):
        assert isinstance(extract.extract(junk, None), extract.Skip)


def test_every_mime_edge_case_is_kept_or_counted():
    """The Ruby mail library's fixtures: bad encodings, illegal boundaries, UTF-7, bounces."""
    folder = shared("mime", "mikel-mail")
    outcomes = Counter()
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".md")
    for path in paths:
        result = extract.extract(path.read_bytes(), None, min_words=3, source=path.name)
        outcomes["kept" if isinstance(result, extract.Message) else result.reason] += 1
    assert sum(outcomes.values()) == len(paths) >= 100
    assert outcomes["kept"] >= 60  # most have a readable body
    assert outcomes["unparseable"] == 0


def test_multi_charset_fixtures_decode_to_real_text():
    folder = shared("mime", "mikel-mail", "multi_charset")
    texts = []
    for path in sorted(folder.iterdir()):
        result = extract.extract(path.read_bytes(), None, min_words=1)
        if isinstance(result, extract.Message):
            texts.append(result.subject + result.text)
    assert texts, "no multi-charset fixture decoded"
    assert any(any(ord(c) > 0x3000 for c in t) for t in texts)  # CJK came through decoded


def test_mailing_list_mbox():
    counts = Counter()
    for source, item in files.read(shared("mbox", "usrp-users-800.mbox")):
        result = extract.extract(item, None, source=source)
        counts["kept" if isinstance(result, extract.Message) else result.reason] += 1
        if isinstance(result, extract.Message):
            assert not any(line.startswith(">") for line in result.text.splitlines())
            assert "USRP-users mailing list -- usrp-users" not in result.text  # list footer
    assert sum(counts.values()) == 800
    assert counts["kept"] > 700 and counts["unparseable"] == 0


def test_enron_sent_mail_drops_lotus_forwards_and_keeps_quoted_originals():
    folder = shared("enron", "small-50-users")
    counts = Counter()
    for path in sorted(folder.glob("*sent*")):
        result = extract.extract(path.read_bytes(), None)
        counts["kept" if isinstance(result, extract.Message) else result.reason] += 1
        if isinstance(result, extract.Message):
            assert "---------------------- Forwarded by" not in result.text
            counts["quoted"] += bool(result.quoted)
    assert counts["forwarded"] > 10 and counts["kept"] > 80
    assert counts["quoted"] >= 12  # 14 of the 111 kept quote the email they answer


def test_usrp_replies_quote_their_parent():
    """patchvonbraun@gmail.com's replies: the quoted original is the parent's own text."""
    me = ["patchvonbraun@gmail.com"]
    kept = {}
    for _, item in files.read(shared("mbox", "usrp-users-800.mbox")):
        result = extract.extract(item, me, keep_received=True)
        if isinstance(result, extract.Message):
            kept[result.message_id] = result
            own = extract.extract(item, me)
            # Keeping received mail changes nothing about the user's own mail.
            assert result.received or (own.text, own.quoted) == (result.text, result.quoted)
    mine = [m for m in kept.values() if not m.received]
    assert len(mine) == 162 and sum(bool(m.quoted) for m in mine) >= 85
    matches = []
    for m in mine:
        parent = kept.get(m.in_reply_to)
        if parent is not None and m.quoted:
            words, real = set(m.quoted.split()), set(parent.text.split())
            matches.append(len(words & real) / len(words | real) > 0.5)
    # Mismatches are HTML quotes whose Outlook header is bold ("*From:*"), kept as quoted.
    assert len(matches) >= 70 and sum(matches) >= 0.85 * len(matches)


def test_an_attached_email_never_becomes_the_senders_body():
    """A forward as attachment: the sender wrote HTML only, the attached email (message/
    rfc822, inline or attachment) has plain text; the body is the sender's HTML."""
    from email.message import EmailMessage

    for disposition in ("attachment", "inline"):
        attached = EmailMessage()
        attached["Subject"] = "Quarterly numbers"
        attached.set_content("These are someone else's words about the quarterly numbers.")
        outer = EmailMessage()
        outer["From"], outer["Subject"] = "maya@okafor.example", "Fwd: Quarterly numbers"
        outer.set_content("<p>Tom, see the numbers below, I think we should talk tomorrow "
                          "about the budget before the meeting.</p>", subtype="html")  # fmt: skip
        outer.add_attachment(attached, disposition=disposition)
        text = extract.body_text(extract.parse(bytes(outer)))
        assert "we should talk tomorrow" in text and "someone else" not in text


def test_eight_bit_headers_and_odd_charsets_decode_without_a_crash():
    head = b"From: Jos\xe9 <jose@x.es>\r\nSubject: Caf\xe9 tomorrow?\r\n"
    raw = (
        head
        + b"Content-Type: text/plain; charset=x-klingon\r\n\r\n"
        + b"x" * 80
        + b" long line\r\n"
    )
    message = extract.extract(raw, None, 0)
    assert message.subject == "Café tomorrow?" and message.from_addr.startswith("José")
    assert message.text.endswith("long line")
    assert set(message.notes) == {"8bit_header", "charset_fallback"}  # counted by the import
    utf8 = "Subject: Grüße aus Köln\r\n\r\nhi there\r\n".encode()
    assert extract.extract(utf8, None, 0).subject == "Grüße aus Köln"
