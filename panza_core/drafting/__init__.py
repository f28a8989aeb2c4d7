"""Drafting an email: a ``DraftRequest`` built once, past emails retrieved, the prompt
built, the model's answer streamed (``Drafter``), the prompt prepared while typing
(``Preparer``).

One module per job: ``choice`` (which model), ``request`` (what is asked, what came back),
``drafter`` (retrieve, prompt, stream), ``preparer`` (while typing), ``subject``.
"""

from panza_core.drafting.choice import (
    ModelChoice,
    active_export,
    base_choice,
    choose_model,
    export_choice,
)
from panza_core.drafting.drafter import Drafter
from panza_core.drafting.preparer import IDLE_EXIT_S, Preparer, complete_words
from panza_core.drafting.request import Draft, DraftRequest, Retrieved
from panza_core.drafting.subject import clean_subject

__all__ = [
    "IDLE_EXIT_S", "Draft", "DraftRequest", "Drafter", "ModelChoice", "Preparer", "Retrieved",
    "active_export", "base_choice", "choose_model", "clean_subject", "complete_words",
    "export_choice",
]  # fmt: skip
