"""RFC 2047 decoding in linear time (issue 30): ``decoding.decode_words`` gives what the
standard library gives, on headers long enough to be decoded in pieces, and a 2 MB Subject
of encoded words decodes correctly (its time is in ``bench/headers.py``, not here)."""

from __future__ import annotations

import base64
from email.header import decode_header, make_header

from hypothesis import given, settings
from hypothesis import strategies as st

from sync import decoding

CHARSETS = ["utf-8", "UTF-8", "iso-8859-1", "windows-1252", "us-ascii", "koi8-r"]


def stdlib(text: str) -> str:
    return str(make_header(decode_header(text)))


@st.composite
def encoded_word(draw) -> str:
    charset = draw(st.sampled_from(CHARSETS))
    alphabet = st.characters(codec="ascii" if charset == "us-ascii" else charset.lower(),
                             exclude_categories=["Cs", "Cc"])  # fmt: skip
    text = draw(st.text(alphabet, min_size=1, max_size=12))
    raw = text.encode(charset)
    if draw(st.booleans()):
        return f"=?{charset}?B?{base64.b64encode(raw).decode()}?="
    q = "".join(chr(b) if chr(b).isalnum() and b < 128 else f"={b:02X}" for b in raw)
    return f"=?{charset}?Q?{q}?="


def header(pieces: list[str]) -> str:
    return "".join(pieces)


TOKENS = st.one_of(
    encoded_word(),
    encoded_word(),
    encoded_word(),  # mostly words, often side by side
    st.sampled_from([" ", "  ", "\t", " plain ", "x", " [EXTERNAL] "]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(TOKENS, min_size=1, max_size=40), st.integers(8, 64))
def test_decoding_in_pieces_equals_the_standard_library(tokens, piece):
    text = header(tokens)
    original = decoding.DECODE_PIECE
    decoding.DECODE_PIECE = piece  # small pieces, so that short headers are cut many times
    try:
        got = decoding.decode_words(text)
    finally:
        decoding.DECODE_PIECE = original
    assert got == stdlib(text)


def test_a_character_split_across_two_words_is_not_cut_apart():
    # RFC 2047 forbids it, but real mailers split a UTF-8 character across encoded words;
    # the standard library joins the bytes of adjacent words, and a cut must not break that
    raw = "é".encode() * 3000
    words = [raw[i : i + 7] for i in range(0, len(raw), 7)]  # 7 bytes: every other splits
    text = " ".join(f"=?utf-8?B?{base64.b64encode(w).decode()}?=" for w in words)
    assert decoding.decode_words(text) == "é" * 3000 == stdlib(text)


def test_a_two_megabyte_subject_of_encoded_words_decodes_whole():
    word = "=?utf-8?q?caf=C3=A9_?="
    count = 2_000_000 // (len(word) + 1)
    text = " ".join([word] * count)
    assert decoding.decode_words(text) == "café " * count


def test_a_header_built_to_defeat_the_cuts_still_decodes_in_pieces():
    # every word half a character, so that no word decodes alone and no clean cut exists:
    # it is cut anyway every DECODE_MOST characters, and the rest still decodes
    lead, tail = "é".encode()
    words = [f"=?utf-8?B?{base64.b64encode(bytes([b])).decode()}?=" for b in (lead, tail)]
    text = " ".join(words * 40_000)
    got = decoding.decode_words(text)
    assert got.count("é") > 0.99 * 40_000
    assert len(got) < len(text)


def test_a_long_header_that_does_not_decode_stays_as_it_came():
    text = " ".join(["=?x-unknown?q?abc?="] * 2000)  # the standard library raises on it
    assert decoding.decode_words(text) == text
