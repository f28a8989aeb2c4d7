"""RFC 2047 header decoding time against header size: the standard library's
``str(make_header(decode_header(h)))`` against ``sync.decoding.decode_words`` in the same
run, for three shapes of Subject a hostile sender can write:

- ``words``: adjacent UTF-8 encoded words (the stdlib's quadratic case),
- ``split``: every word half a character, so that no clean cut exists (decode_words's
  worst case),
- ``unknown``: adjacent words of an unknown charset.

    python bench/headers.py --sizes 0.25,0.5,1,2 --stdlib-max 1

Sizes are in MB of header text. The stdlib runs only up to ``--stdlib-max`` MB (its time
grows as the square of the size: 2 MB takes most of a minute). Each cell is the best of
``--runs``. Prints a table and writes bench/results/headers.json.
"""

from __future__ import annotations

import argparse
import base64
import os
import platform
import time
from email.header import decode_header, make_header

from common import report

from sync import decoding

LEAD, TAIL = "é".encode()
SHAPES = {
    "words": "=?utf-8?q?caf=C3=A9_?=",
    "split": " ".join(f"=?utf-8?B?{base64.b64encode(bytes([b])).decode()}?=" for b in (LEAD, TAIL)),
    "unknown": "=?x-unknown?q?abc?=",
}


def subject(shape: str, megabytes: float) -> str:
    """A header of about ``megabytes`` MB made of ``shape``'s unit, space-separated."""
    unit = SHAPES[shape]
    return " ".join([unit] * max(1, int(megabytes * 1e6) // (len(unit) + 1)))


def stdlib(text: str) -> str:
    """The standard library's decoding, kept as it came where it raises (as Panza does)."""
    try:
        return str(make_header(decode_header(text)))
    except (LookupError, UnicodeError):
        return text


def best(decode, text: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        decode(text)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="0.25,0.5,1,2", help="MB of header, comma-separated")
    parser.add_argument("--stdlib-max", type=float, default=1.0, help="largest MB for stdlib")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for shape in args.shapes.split(","):
        for megabytes in (float(s) for s in args.sizes.split(",")):
            text = subject(shape, megabytes)
            ours = best(decoding.decode_words, text, args.runs)
            theirs = best(stdlib, text, 1) if megabytes <= args.stdlib_max else None
            same = decoding.decode_words(text) == stdlib(text) if theirs is not None else None
            rows.append([
                shape, megabytes, len(text), round(ours, 4),
                round(theirs, 4) if theirs is not None else "-",
                round(theirs / ours, 1) if theirs is not None else "-",
                {True: "yes", False: "no", None: "-"}[same],
            ])  # fmt: skip
    report(
        "headers",
        ["shape", "MB", "chars", "decode_words s", "stdlib s", "stdlib / ours", "same text"],
        rows,
        {
            "host": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "piece": decoding.DECODE_PIECE,
            "most": decoding.DECODE_MOST,
        },  # fmt: skip
    )


if __name__ == "__main__":
    main()
