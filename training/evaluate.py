"""``panza eval``: how much the account's model writes like its user, on held-out sent mail.

The Panza paper's ablation (arXiv 2407.10994, table 2): four settings drafted from the same
playback instructions of the held-out emails, each scored against the real email with
``training.metrics``:

- ``base``: the base model with the drafting prompt, no retrieved emails;
- ``base+rag``: the same, with the top-k retrieved past emails;
- ``finetuned``: the account's exported model (or the export run given), no retrieval;
- ``finetuned+rag``: the exported model with retrieved emails, as ``panza draft`` uses it.

Replies get more rows, scored on the held-out replies alone (those whose parent is stored or
quoted): each setting again without the parent (the same drafts, rescored on that subset) and
with the parent and the conversation before it in the prompt (``+parent``), as drafting a
reply in the app does. The gap between the two is what the email being answered is worth.

Retrieval only sees training emails: every held-out email is excluded, so no draft is
shown its own answer. Generation is greedy by default (``[evaluation]``), so reruns give the
same drafts; a row whose inputs did not change is reused from an earlier eval run.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from panza_core import prompting, replies
from panza_core.drafting import (
    Draft,
    Drafter,
    ModelChoice,
    active_export,
    base_choice,
    export_choice,
)
from panza_core.errors import PipelineError
from panza_core.workspace import Workspace
from training import export, metrics
from training.examples import training_pairs

SETTINGS = ("base", "base+rag", "finetuned", "finetuned+rag")
REPLIES = " (replies)"  # suffix of the rows scored on held-out replies only
Threads = dict[int, list[replies.Turn]]  # store id -> the conversation a reply answered


@dataclass
class EvalResult:
    """One eval run: ``rows`` (one dict per setting: metrics 0-100, style_sim 0-1, and the
    drafts' ``metrics.shape``), ``real`` (the held-out emails' own shape, to compare with),
    and the folder holding ``eval.json``, ``eval.png`` and ``drafts.jsonl``."""

    run_id: int
    account: str
    n_test: int
    rows: list[dict[str, Any]]
    folder: Path
    real: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``panza eval --json`` object: account, n_test, run, rows, real."""
        return {"account": self.account, "n_test": self.n_test, "run": self.run_id,
                "rows": self.rows, "real": self.real}  # fmt: skip


def test_set(ws: Workspace, account: str) -> list[tuple[Any, str]]:
    """Held-out (message, instruction) pairs, by store id, cut to ``[evaluation] limit``."""
    _, test = training_pairs(ws, account)
    test.sort(key=lambda pair: pair[0].id or 0)
    limit = ws.config.evaluation.limit
    return test[:limit] if limit else test


def base_model(ws: Workspace, account: str) -> ModelChoice:
    """The base model as llama.cpp drafts with it: a GGUF base as it is, a Hugging Face base
    converted to GGUF once (Q8_0, cached as for adapter-only exports)."""
    if ws.llm.kind == "gguf":
        return base_choice(ws, account)
    return ModelChoice(export.base_gguf(ws, "Q8_0"), None, f"{ws.llm.name} (base, Q8_0)")


def _generation(ws: Workspace) -> dict[str, Any]:
    e = ws.config.evaluation
    return {"temperature": e.temperature, "top_p": e.top_p, "max_tokens": e.max_tokens,
            "seed": e.seed, "repeat_penalty": e.repeat_penalty}  # fmt: skip


def _preamble(ws: Workspace, account: str) -> str:
    return ws.store.account(account).user_preamble or ws.config.prompt.user_preamble


def _row_key(
    ws: Workspace, account: str, model_key: Any, rag: bool, test: list,
    threads: Threads | None = None,
) -> str:  # fmt: skip
    preamble = _preamble(ws, account)
    data = [(m.content_hash, instruction) for m, instruction in test]
    retrieval = asdict(ws.config.retrieval) if rag else None
    context = None
    if threads is not None:
        context = [[turn.as_prompt for turn in threads[m.id]] for m, _ in test]
    return prompting.fingerprint(
        model_key, rag, retrieval, _generation(ws), ws.config.prompt.system, preamble,
        ws.chat_template, ws.config.models.embedding, data, *([context] if context else []),
    )  # fmt: skip


def _earlier_rows(ws: Workspace, account: str) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for run in reversed(ws.store.runs(account, "eval")):
        if run.status == "done":
            rows.update({row["key"]: row for row in run.metrics.get("rows", []) if "key" in row})
    return rows


def draft_all(
    ws: Workspace, account: str, choice: ModelChoice, rag: bool, test: list,
    progress: Callable[[str], None] | None = None, threads: Threads | None = None,
) -> list[Draft]:  # fmt: skip
    """One draft per held-out instruction with ``choice`` (greedy by default); retrieval
    never returns a held-out email. ``threads``: put each reply's conversation in its
    prompt, as drafting a reply does."""
    e = ws.config.evaluation
    settings = replace(
        ws.config.drafting, temperature=e.temperature, top_p=e.top_p, max_tokens=e.max_tokens,
        repeat_penalty=e.repeat_penalty,
        seed=e.seed, threads=e.threads or os.cpu_count() or 1,
    )  # fmt: skip
    drafter = Drafter(ws, account, use_rag=rag, choice=choice, settings=settings)
    held_out = [message.id for message, _ in test]
    drafts = []
    for message, instruction in test:
        thread = threads.get(message.id) if threads is not None else None
        to = replies.first_address(message.to_addrs) if thread else None
        request = drafter.request(instruction, thread=thread, correspondent=to, exclude=held_out)
        drafts.append(drafter.draft(request))
        if progress:
            progress(instruction)
    return drafts


def evaluate(
    ws: Workspace, account: str, export_run: int | None = None,
    progress: Callable[[str, int, int], None] | None = None, force: bool = False,
) -> EvalResult:  # fmt: skip
    """Draft and score the held-out emails of ``account`` in the four settings.

    ``export_run``: the fine-tuned model to evaluate (default: the account's active export;
    without one only the base rows are produced). ``progress(setting, done, total)`` after
    each draft. Rows with unchanged inputs are reused from earlier evals unless ``force``.
    Raises ``PipelineError`` without playback pairs or held-out emails.
    """
    test = test_set(ws, account)
    if not test:
        raise PipelineError(
            f"account {account!r} has no held-out emails: import more mail or raise "
            "[training] test_fraction"
        )
    run = ws.store.run(export_run) if export_run else active_export(ws, account)
    plans: list[tuple[str, ModelChoice, Any, str]] = [
        ("base", base_model(ws, account), ws.llm.fingerprint, "none")
    ]
    if run is not None:
        method = ws.store.run(run.parent).config.get("method", "lora") if run.parent else "?"
        plans.append(("finetuned", export_choice(ws, run), (run.id, run.input_hash), method))
    ws.update_index(account)
    earlier = {} if force else _earlier_rows(ws, account)
    run_id = ws.store.start_run(
        account, "eval", prompting.fingerprint([p[2] for p in plans], _generation(ws)),
        {"generation": _generation(ws), "export_run": run.id if run else None},
        parent=run.id if run else None,
    )  # fmt: skip
    folder = ws.run_path(account, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    threads = {m.id: replies.context_of(ws.store, account, m) for m, _ in test}
    reply_test = [(m, i) for m, i in test if threads[m.id]]
    rows: list[dict[str, Any]] = []
    try:
        with (folder / "drafts.jsonl").open("w") as log:
            for name, choice, model_key, method in plans:
                for rag in (False, True):
                    setting = f"{name}+rag" if rag else name
                    key = _row_key(ws, account, model_key, rag, test)
                    row = Row(ws, account, method, choice, rag, log, progress)
                    drafts = None
                    if key in earlier:
                        rows.append({**earlier[key], "reused": True})
                    else:
                        drafts = row.draft(setting, test)
                        rows.append(row.score(setting, test, drafts, key))
                    if not reply_test:
                        continue
                    # The same drafts on the replies alone, then the replies with parents.
                    subset = {m.id for m, _ in reply_test}
                    key = _row_key(ws, account, model_key, rag, reply_test)
                    if key in earlier:
                        rows.append({**earlier[key], "reused": True})
                    else:
                        if drafts is None:
                            drafts = row.draft(setting, test)
                        mine = [d for (m, _), d in zip(test, drafts, strict=True) if m.id in subset]
                        rows.append(row.score(setting + REPLIES, reply_test, mine, key))
                    key = _row_key(ws, account, model_key, rag, reply_test, threads)
                    if key in earlier:
                        rows.append({**earlier[key], "reused": True})
                    else:
                        with_parent = f"{setting}+parent{REPLIES}"
                        drafts = row.draft(with_parent, reply_test, threads)
                        rows.append(row.score(with_parent, reply_test, drafts, key))
        real = metrics.shape([m.text.strip() for m, _ in test])
        # The real emails against their played-back instructions: the ceiling playback allows.
        real.update(metrics.fidelity(
            [i for _, i in test], [m.text.strip() for m, _ in test],
            threads=[[t.text for t in threads[m.id]] for m, _ in test],
            own=[_preamble(ws, account)],
        ))  # fmt: skip
        result = EvalResult(run_id, account, len(test), rows, folder, real)
        (folder / "eval.json").write_text(json.dumps(result.to_json(), indent=2))
        write_chart(result, folder / "eval.png")
    except BaseException:
        ws.store.finish_run(run_id, "failed")
        raise
    ws.store.finish_run(run_id, "done", str(folder), result.to_json())
    return result


@dataclass
class Row:
    """Drafting and scoring of one model and retrieval setting, logged to drafts.jsonl."""

    ws: Workspace
    account: str
    method: str
    choice: ModelChoice
    rag: bool
    log: Any
    progress: Callable[[str, int, int], None] | None
    seconds: float = 0.0  # drafting time of the last ``draft``

    def draft(self, setting: str, test: list, threads: Threads | None = None) -> list[Draft]:
        """Draft ``test`` (with ``threads`` in the prompts) and log every draft."""
        done = 0

        def step(_: str) -> None:
            nonlocal done
            done += 1
            if self.progress:
                self.progress(setting, done, len(test))

        started = time.perf_counter()
        drafts = draft_all(self.ws, self.account, self.choice, self.rag, test, step, threads)
        self.seconds = time.perf_counter() - started
        for (message, instruction), draft in zip(test, drafts, strict=True):
            self.log.write(json.dumps({
                "setting": setting, "id": message.id, "instruction": instruction,
                "draft": draft.draft, "email": message.text,
                "retrieved": [r.id for r in draft.retrieved],
                **({"thread": draft.thread} if draft.thread else {}),
            }) + "\n")  # fmt: skip
        return drafts

    def score(self, setting: str, test: list, drafts: list[Draft], key: str) -> dict[str, Any]:
        """The row: metrics of ``drafts`` against the real emails of ``test``."""
        texts = [d.draft for d in drafts]
        scores = metrics.score(texts, [m.text.strip() for m, _ in test], self.ws.embedder)
        scores.update(metrics.shape(texts))
        scores.update(metrics.fidelity(
            [instruction for _, instruction in test], texts,
            [[r.text for r in d.retrieved] for d in drafts],
            [[text for _, text in d.thread] for d in drafts], [_preamble(self.ws, self.account)],
        ))  # fmt: skip
        return {
            "setting": setting, "method": self.method,
            **{name: round(value, 4) for name, value in scores.items()},
            "model": self.choice.label, "generation": _generation(self.ws),
            "seconds": round(self.seconds, 1), "n": len(test), "key": key,
        }  # fmt: skip


def latest(ws: Workspace, account: str) -> EvalResult | None:
    """The account's newest finished eval, or None."""
    run = ws.store.latest_run(account, "eval")
    if run is None:
        return None
    m = run.metrics
    return EvalResult(
        run.id, account, m.get("n_test", 0), m.get("rows", []), Path(run.path), m.get("real", {})
    )


def write_chart(result: EvalResult, path: Path) -> Path:
    """A grouped bar chart (PNG) of every metric by setting; style_sim drawn x100."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(metrics.METRICS)
    fig, ax = plt.subplots(figsize=(9, 4), dpi=120)
    width = 0.8 / max(1, len(result.rows))
    for i, row in enumerate(result.rows):
        values = [row[n] * (100 if n == "style_sim" else 1) for n in names]
        ax.bar([x + i * width for x in range(len(names))], values, width, label=row["setting"])
    ax.set_xticks([x + width * (len(result.rows) - 1) / 2 for x in range(len(names))])
    ax.set_xticklabels([n if n != "style_sim" else "style_sim x100" for n in names])
    ax.set_ylabel("score (0-100)")
    ax.set_title(f"{result.account}: {result.n_test} held-out emails (eval run #{result.run_id})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
