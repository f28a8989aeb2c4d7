"""The style metrics on real emails: identical text scores top marks, unrelated text low."""

from __future__ import annotations

import pytest

from tests.conftest import shared


@pytest.fixture(scope="module")
def embedder():
    from panza_tui.core.models import resolve_embedding
    from panza_tui.core.retrieval import Embedder

    return Embedder(resolve_embedding("embedded"))


def _emails(n: int) -> list[str]:
    import json

    lines = shared("panza", "isabel.jsonl").read_text().splitlines()
    return [json.loads(line)["email"] for line in lines[:n]]


def test_identical_drafts_score_top_marks(embedder):
    from training import metrics

    emails = _emails(5)
    scores = metrics.score(emails, emails, embedder)
    assert set(scores) == set(metrics.METRICS)
    assert scores["bleu"] == pytest.approx(100.0)
    assert scores["chrf"] == pytest.approx(100.0)
    assert scores["rouge1"] == scores["rougeL"] == pytest.approx(100.0)
    assert scores["style_sim"] == pytest.approx(1.0, abs=1e-4)


def test_unrelated_drafts_score_lower_than_near_copies(embedder):
    from training import metrics

    emails = _emails(6)
    shifted = emails[1:] + emails[:1]  # every draft paired with another real email
    near = [e.replace("Best,", "Cheers,").replace("Thank you", "Thanks") for e in emails]
    far, close = metrics.score(shifted, emails, embedder), metrics.score(near, emails, embedder)
    for name in metrics.METRICS:
        assert far[name] < close[name], name
    assert 0 <= far["bleu"] < 30 and 0 < far["style_sim"] < 0.9


def test_mismatched_lists_are_refused(embedder):
    from training import metrics

    with pytest.raises(ValueError, match="equal"):
        metrics.score(["a"], ["a", "b"], embedder)
