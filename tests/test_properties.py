"""Property-based tests (Hypothesis): extraction on generated MIME trees never crashes and
never takes an attached email or an attachment for the sender's own words; the store keeps
its invariants under any sequence of adds, duplicates, server deletions and purges."""

from __future__ import annotations

from email.message import EmailMessage

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panza_core.store import Message, Store
from sync import decoding, extract

WORDS = st.lists(st.sampled_from(
    "the quick brown fox jumps over lazy dog café Grüße naïve façade € 日本 — ok".split()
), min_size=1, max_size=30).map(" ".join)  # fmt: skip
CHARSETS = st.sampled_from(["utf-8", "iso-8859-1", "cp1252", "us-ascii", "utf-16"])
ENCODINGS = st.sampled_from(["7bit", "8bit", "quoted-printable", "base64"])
OWN = "OWNWORDS"  # marks the sender's own text
FOREIGN = "FOREIGNWORDS"  # marks text that must never become the body


def _text_part(text: str, subtype: str, charset: str, cte: str) -> EmailMessage:
    part = EmailMessage()
    body = f"<p>{text}</p>" if subtype == "html" else text
    try:
        body.encode(charset)
    except UnicodeEncodeError:
        charset = "utf-8"
    if charset == "utf-16":
        cte = "base64"
    elif cte == "7bit" and not body.isascii():
        cte = "quoted-printable"
    part.set_content(body, subtype=subtype, charset=charset, cte=cte)
    return part


@st.composite
def trees(draw: st.DrawFn, depth: int = 0, own: bool = True) -> EmailMessage:
    """A MIME tree; text of the sender's own parts carries OWN, text inside attached emails
    and attachments carries FOREIGN."""
    kind = draw(st.sampled_from(["leaf", "leaf", "multipart", "rfc822", "attachment"])
                if depth < 3 else st.just("leaf"))  # fmt: skip
    if kind == "leaf":
        mark = OWN if own else FOREIGN
        text = f"{mark} {draw(WORDS)}"
        return _text_part(text, draw(st.sampled_from(["plain", "html"])), draw(CHARSETS),
                          draw(ENCODINGS))  # fmt: skip
    if kind == "rfc822":
        inner = draw(trees(depth=depth + 1, own=False))
        inner["Subject"] = "attached"
        part = EmailMessage()
        part.set_content(inner, disposition=draw(st.sampled_from(["inline", "attachment"])))
        return part
    if kind == "attachment":
        part = _text_part(f"{FOREIGN} {draw(WORDS)}", "plain", "utf-8", "base64")
        part.add_header("Content-Disposition", "attachment", filename="notes.txt")
        return part
    outer = EmailMessage()
    outer.make_mixed() if draw(st.booleans()) else outer.make_alternative()
    for child in draw(st.lists(trees(depth=depth + 1, own=own), min_size=1, max_size=3)):
        outer.attach(child)
    return outer


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees(), st.binary(max_size=40))
def test_extraction_never_crashes_nor_takes_foreign_text(tree, junk):
    tree["From"], tree["Subject"] = "maya@okafor.example", "Generated"
    raw = bytes(tree)
    for data in (raw, raw[: len(raw) // 2], raw + junk, junk + raw):  # cut and dirtied too
        result = extract.extract(data, ["maya@okafor.example"], 0)
        assert isinstance(result, extract.Message | extract.Skip)
    body = extract.body_text(extract.parse(raw))
    assert FOREIGN not in body, raw[:3000]
    if OWN not in body:  # only when the sender wrote no text part of their own
        own_leaves = [
            p for p in decoding._own_leaves(decoding.parse(raw))
            if p.get_content_maintype() == "text"
            and not str(p.get("Content-Disposition", "")).startswith("attachment")
        ]  # fmt: skip
        assert not own_leaves, (body, raw[:3000])


OPS = st.lists(st.tuples(st.sampled_from(["add", "add", "dup", "delete", "purge"]),
                         st.integers(0, 30)), max_size=40)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(OPS)
def test_store_invariants_under_adds_deletions_and_purges(tmp_path_factory, ops):
    path = tmp_path_factory.mktemp("store") / "p.sqlite3"
    with Store(path) as store:
        store.add_account("me")
        issued: list[int] = []
        for op, n in ops:
            text = f"email number {n} with enough words in it"
            if op in ("add", "dup"):
                row = store.add_message("me", Message(text=text, subject=f"s{n}",
                                                      message_id=f"<{n}@x>"))  # fmt: skip
                if row is not None and row not in issued:
                    assert not issued or row > max(issued)  # ids never reused
                    issued.append(row)
            elif op == "delete":
                live = [m.id for m in store.messages("me")]
                store.mark_deleted(live[: n % 3])
            else:
                store.purge_deleted("me")
            everyone = store.messages("me", deleted=True)
            hashes = [m.content_hash for m in everyone]
            assert len(hashes) == len(set(hashes))  # one row per content
            assert store.count_messages("me") + store.count_deleted("me") == len(everyone)
            assert {m.id for m in store.messages("me")} == {
                m.id for m in everyone if m.deleted_at is None
            }
