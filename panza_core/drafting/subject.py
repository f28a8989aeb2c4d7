"""The subject line of a drafted email: asked of the base model, then cleaned."""

from __future__ import annotations

import re

SUBJECT_SYSTEM = "You write short, plain email subject lines."
SUBJECT_ASK = (
    "Write the subject line for this email: at most eight words, no quotes. Answer with the "
    "subject line only.\n\n{email}"
)
_SUBJECT_LABEL = re.compile(r"^\s*\**\s*(subject( line)?)\s*:?\s*\**\s*", re.I)
_GREETING = re.compile(r"^(hi|hello|hey|dear|good (morning|afternoon|evening))\b", re.I)


def clean_subject(raw: str, instruction: str = "") -> str:
    """A subject line from the model's answer: first line, labels and quotes dropped, at
    most 12 words, not a greeting (a fine-tuned model may start the email instead); else
    the instruction (its first ten words); else ""."""
    line = next((part for part in raw.strip().splitlines() if part.strip()), "")
    line = _SUBJECT_LABEL.sub("", line).strip().strip("\"'`*").strip()
    words = line.split()
    if 1 <= len(words) <= 12 and not _GREETING.match(line) and not line.endswith(","):
        return line
    words = instruction.split()[:10]
    return " ".join(words).rstrip(".,;:") if words else ""
