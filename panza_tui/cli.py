"""The ``panza`` command line: import, playback, train, export, eval, draft, tui, demo.

Each command is a thin shell over the pipeline modules; errors derived from ``PanzaError``
are printed as one line naming the cause (exit 2), never as a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from panza_tui.errors import PanzaError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Panza TUI: an email assistant that learns to write like you, on your own machine.",
)  # fmt: skip
console = Console(stderr=True)
AccountOpt = Annotated[str, typer.Option("--account", "-a", help="Account name.")]


def _workspace():  # type: ignore[no-untyped-def]
    from panza_tui.workspace import Workspace

    return Workspace()


def _progress():  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.progress import TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console,
    )  # fmt: skip


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="mbox, maildir, .eml, or Panza JSON-lines file.")],
    account: AccountOpt,
    address: Annotated[
        Optional[list[str]],  # noqa: UP045 - typer needs Optional here
        typer.Option("--address", help="Your address; only mail from it is kept. Repeatable."),
    ] = None,
    min_words: Annotated[int, typer.Option(help="Drop emails shorter than this.")] = -1,
) -> None:
    """Import sent mail into an account (idempotent) and index it for retrieval."""
    from sync.importer import import_path

    ws = _workspace()
    ws.store.add_account(account, address or [])
    words = min_words if min_words >= 0 else ws.config.imports.min_words
    with _progress() as bar:
        task = bar.add_task("import", total=None, info="")
        report = import_path(ws.store, account, path, words, lambda n: bar.advance(task, n))
    print_import_report(report)
    with console.status("indexing for retrieval"):
        added = ws.update_index(account)
    console.print(
        f"{ws.store.count_messages(account)} emails in '{account}', {added} newly indexed"
    )


def print_import_report(report) -> None:  # type: ignore[no-untyped-def]
    """Print the import (or sync) counts by outcome, and the first unparseable messages."""
    table = Table(title="import", show_edge=False)
    table.add_column("outcome")
    table.add_column("emails", justify="right")
    for reason, count in report.counts.most_common():
        table.add_row(reason, str(count))
    table.add_row("[bold]total", f"[bold]{sum(report.counts.values())}")
    console.print(table)
    for source, why in report.errors[:10]:
        console.print(f"  unparseable {source}: {why}")


@app.command()
def playback(
    account: AccountOpt,
    limit: Annotated[int, typer.Option(help="Generate at most this many now (0: all).")] = 0,
) -> None:
    """Data playback: write the instruction behind each sent email (resumable, cached)."""
    from training import playback as pb

    ws = _workspace()
    ws.store.account(account)
    with _progress() as bar:
        task = bar.add_task("playback", total=ws.store.count_messages(account), info="")
        report = pb.run(
            ws.store, account, ws.llm, ws.config.playback, limit=limit,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )  # fmt: skip
    console.print(", ".join(f"{k}: {v}" for k, v in sorted(report.counts.items())))


@app.command()
def train(
    account: AccountOpt,
    epochs: Annotated[int, typer.Option(help="Override [training] epochs.")] = 0,
    max_steps: Annotated[int, typer.Option(help="Stop after this many steps.")] = 0,
    lr: Annotated[float, typer.Option(help="Override [training] lr.")] = 0.0,
    method: Annotated[str, typer.Option(help="lora, rosa or full (default: [training]).")] = "",
    force: Annotated[bool, typer.Option(help="Train even if an identical run exists.")] = False,
    resume: Annotated[
        bool, typer.Option(help="Continue the last killed run from its checkpoint.")
    ] = False,
) -> None:
    """Fine-tune the account's adapter (LoRA, RoSA) or whole model on its playback pairs."""
    ws = _workspace()
    t = ws.config.training
    t.epochs, t.max_steps, t.lr = epochs or t.epochs, max_steps or t.max_steps, lr or t.lr
    t.method = method or t.method
    result = run_training(ws, account, force, resume)
    m = result.metrics
    resumed = f" (resumed at step {m['resumed_at']})" if m.get("resumed_at") is not None else ""
    console.print(
        f"run #{result.run_id}{' (reused)' if result.reused else ''}{resumed}: "
        f"{m.get('method', 'lora')}, {m['steps']} steps, "
        f"loss {m['first_loss']:.3f} -> {m['last_loss']:.3f}, held-out loss {m['test_loss']:.3f}, "
        f"{m['seconds']:.0f} s; adapter in {result.adapter}"
    )


def run_training(ws, account: str, force: bool = False, resume: bool = False):  # type: ignore[no-untyped-def]
    """Train with a progress bar (steps, loss); returns the ``TrainResult``."""
    from training import finetune

    with _progress() as bar:
        task = bar.add_task("train", total=None, info="loading model")

        def step(done: int, total: int, loss: float) -> None:
            bar.update(task, completed=done, total=total, info=f"loss {loss:.3f}")

        return finetune.train(ws, account, progress=step, force=force, resume=resume)


@app.command()
def export(
    account: AccountOpt,
    quant: Annotated[str, typer.Option(help="Q8_0, Q4_K_M, Q5_K_M, Q4_0, F16 or F32.")] = "Q8_0",
    adapter_only: Annotated[bool, typer.Option(help="Write a GGUF LoRA adapter only.")] = False,
    force: Annotated[bool, typer.Option(help="Export even if an identical one exists.")] = False,
    run: Annotated[int, typer.Option(help="Training run to export (default: the latest).")] = 0,
) -> None:
    """Export the fine-tuned model as a quantized GGUF for llama.cpp; it becomes active."""
    from training import export as ex

    ws = _workspace()
    with console.status(f"exporting {'adapter' if adapter_only else quant}"):
        result = ex.export(ws, account, quant.upper(), adapter_only, run or None, force=force)
    check = result.metrics["check"]
    console.print(
        f"run #{result.run_id}{' (reused)' if result.reused else ''}: {result.path} "
        f"({result.metrics['bytes'] / 2**20:.1f} MiB); llama.cpp vs torch logits: max |diff| "
        f"{check['max_abs_diff']:.3f}, top-1 agreement {check['top1_agreement']:.1%}"
    )


@app.command("eval")
def eval_(
    account: AccountOpt,
    run: Annotated[int, typer.Option(help="Export run to evaluate (default: the active one).")] = 0,
    limit: Annotated[int, typer.Option(help="Only the first N held-out emails.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    force: Annotated[bool, typer.Option(help="Redo rows even if identical ones exist.")] = False,
) -> None:
    """Score drafts against held-out sent mail: base, base+RAG, fine-tuned, fine-tuned+RAG."""
    from training import evaluate

    ws = _workspace()
    ws.config.evaluation.limit = limit or ws.config.evaluation.limit
    with _progress() as bar:
        task = bar.add_task("eval", total=None, info="loading models")

        def step(setting: str, done: int, total: int) -> None:
            bar.update(task, description=setting, completed=done, total=total, info="")

        result = evaluate.evaluate(ws, account, run or None, progress=step, force=force)
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
        return
    print_eval(result)


def print_eval(result) -> None:  # type: ignore[no-untyped-def]
    """The eval table (metrics 0-100, style similarity 0-1) and where its files are."""
    table = Table(title=f"{result.account}: {result.n_test} held-out emails")
    for column in ("setting", "method", "BLEU", "chrF", "ROUGE-1", "ROUGE-2", "ROUGE-L",
                   "style sim"):  # fmt: skip
        left = column in ("setting", "method")
        table.add_column(column, justify="left" if left else "right", no_wrap=left)
    for row in result.rows:
        table.add_row(
            row["setting"], row["method"],
            *(f"{row[k]:.2f}" for k in ("bleu", "chrf", "rouge1", "rouge2", "rougeL")),
            f"{row['style_sim']:.3f}",
        )  # fmt: skip
    Console().print(table)
    console.print(
        f"eval run #{result.run_id}: {result.folder / 'eval.json'}, eval.png, drafts.jsonl"
    )


@app.command()
def draft(
    instruction: Annotated[str, typer.Argument(help="What the email should say.")],
    account: AccountOpt,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
    no_rag: Annotated[
        bool, typer.Option("--no-rag", help="Put no past emails in the prompt.")
    ] = False,
    base: Annotated[
        bool, typer.Option("--base", help="Use the base model, not the adapter.")
    ] = False,
) -> None:
    """Write a draft in the account's style (streams to the terminal)."""
    from panza_tui.drafting import Drafter

    ws = _workspace()
    drafter = Drafter(ws, account, use_adapter=not base, use_rag=not no_rag)
    with console.status(f"loading {drafter.choice.label}"):
        drafter.load()
    stream = None if as_json else (lambda piece: (sys.stdout.write(piece), sys.stdout.flush()))
    result = drafter.draft(instruction, on_token=stream)
    if as_json:
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
        return
    t = result.timings
    print()
    console.print(
        f"[dim]{result.model}; {len(result.retrieved)} past emails; retrieval "
        f"{t['retrieval_ms']:.0f} ms, first token {t['ttft_ms']:.0f} ms, "
        f"{t['tokens_per_s']:.1f} tokens/s"
    )


@app.command()
def tui(account: Annotated[Optional[str], typer.Option("--account", "-a")] = None) -> None:  # noqa: UP045
    """Open the terminal app."""
    from panza_tui.app import PanzaApp

    check_llama_once(_workspace())
    PanzaApp(account=account).run()


def _base_gguf(ws) -> Path:  # type: ignore[no-untyped-def]
    """The base model llama.cpp can load: the configured GGUF, or the embedded one where the
    base is a Hugging Face folder (llama.cpp reads it only once exported)."""
    from panza_tui.models import resolve_llm

    return (ws.llm if ws.llm.kind == "gguf" else resolve_llm("embedded")).path


def check_llama_once(ws) -> None:  # type: ignore[no-untyped-def]
    """Before the first llama.cpp load of a fresh install: decode a few tokens in a child
    process, so a build that cannot run here is one line (BackendError), not a crash."""
    from panza_tui import selfcheck

    with console.status("checking that llama.cpp runs on this machine (once per install)"):
        selfcheck.ensure(_base_gguf(ws))


@app.command()
def doctor(
    account: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--account", "-a", help="Check this account's active model."),
    ] = None,
) -> None:
    """Check this machine: llama.cpp's CPU backend (a real decode in a child process), threads,
    GPU, keyring, PANZA_HOME, disk, embedded models. Exit 1 if anything fails."""
    from rich.text import Text

    from panza_tui import doctor as doctor_mod

    ws = _workspace()
    model, lora = _base_gguf(ws), None
    if account:
        from panza_tui.drafting import choose_model

        choice = choose_model(ws, account)
        model, lora = choice.path, choice.lora
    style = {"ok": "green", "warn": "yellow", "fail": "bold red"}
    failed = False
    for finding in doctor_mod.report(model, lora):
        failed |= finding.status == "fail"
        line = Text(f"{finding.status:>4}", style=style[finding.status])
        line.append(f" {finding.topic:<19} {finding.detail}")
        console.print(line, highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)


adapters_app = typer.Typer(help="Model versions of an account (one active).", no_args_is_help=True)
app.add_typer(adapters_app, name="adapters")


@adapters_app.command("list")
def adapters_list(account: AccountOpt) -> None:
    """List the account's exported models, newest first; * marks the active one."""
    from panza_tui.adapters import versions

    ws = _workspace()
    table = Table(show_edge=False)
    for column in ("", "export run", "train run", "method", "quant", "form", "file"):
        table.add_column(column)
    for v in versions(ws.store, account):
        table.add_row(
            "*" if v.active else "", f"#{v.run}", f"#{v.train_run}" if v.train_run else "-",
            v.method, v.quant, "adapter" if v.adapter_only else "merged", v.path,
        )  # fmt: skip
    Console().print(table)


@adapters_app.command("activate")
def adapters_activate(
    account: AccountOpt, run: Annotated[int, typer.Argument(help="Export run id.")]
) -> None:
    """Draft with export ``RUN`` from now on."""
    from panza_tui.adapters import activate

    v = activate(_workspace().store, account, run)
    console.print(f"account {account!r} drafts with export #{v.run} ({v.method}, {v.quant})")


@adapters_app.command("rollback")
def adapters_rollback(account: AccountOpt) -> None:
    """Go back to the model exported before the active one."""
    from panza_tui.adapters import rollback

    v = rollback(_workspace().store, account)
    console.print(f"account {account!r} rolled back to export #{v.run} ({v.method}, {v.quant})")


account_app = typer.Typer(help="Mail accounts on a server (IMAP).", no_args_is_help=True)
app.add_typer(account_app, name="account")


@account_app.command("add")
def account_add(
    name: Annotated[str, typer.Argument(help="Account name.")],
    imap: Annotated[str, typer.Option("--imap", help="IMAP server host name.")] = "",
    user: Annotated[str, typer.Option(help="Login name, usually your address.")] = "",
    gmail: Annotated[bool, typer.Option("--gmail", help="Use the Gmail API (OAuth).")] = False,
    client_secrets: Annotated[str, typer.Option(help="Gmail: OAuth client JSON file.")] = "",
    api_root: Annotated[str, typer.Option(hidden=True, help="Gmail API endpoint.")] = "",
    port: Annotated[int, typer.Option(help="0: 993 for ssl, 143 otherwise.")] = 0,
    security: Annotated[str, typer.Option(help="ssl, starttls or plain.")] = "ssl",
    oauth: Annotated[bool, typer.Option(help="IMAP XOAUTH2 instead of a password.")] = False,
    oauthbearer: Annotated[bool, typer.Option(help="IMAP OAUTHBEARER (RFC 7628).")] = False,
    oauth_token_uri: Annotated[
        str, typer.Option(help="OAuth token endpoint: store a refresh token.")
    ] = "",
    oauth_client_id: Annotated[str, typer.Option(help="OAuth client id.")] = "",
    oauth_client_secret: Annotated[str, typer.Option(help="OAuth client secret.")] = "",
    address: Annotated[
        Optional[list[str]],  # noqa: UP045 - typer needs Optional here
        typer.Option("--address", help="Your sending address (default: --user). Repeatable."),
    ] = None,
    sent: Annotated[str, typer.Option(help="Sent folder, if not found by SPECIAL-USE.")] = "",
    drafts: Annotated[str, typer.Option(help="Drafts folder, if not found by SPECIAL-USE.")] = "",
    ca_file: Annotated[str, typer.Option(help="CA certificate(s) to trust for TLS.")] = "",
    insecure: Annotated[bool, typer.Option(help="Allow a plaintext login off loopback.")] = False,
    password_stdin: Annotated[bool, typer.Option(help="Read the secret from stdin.")] = False,
) -> None:
    """Add (or update) an IMAP or Gmail account; the login is tested before anything is
    stored, and secrets go to the keyring (or a 0600 file where there is none)."""
    from panza_tui.errors import AccountError

    if gmail == bool(imap):
        raise AccountError("say either --imap HOST --user NAME, or --gmail --client-secrets FILE")
    if gmail:
        _add_gmail(name, client_secrets, api_root, address or [])
    else:
        auth = "oauthbearer" if oauthbearer else "xoauth2" if oauth else "password"
        oauth_settings = (oauth_token_uri, oauth_client_id, oauth_client_secret)
        _add_imap(name, imap, user, port, security, auth, address or [], sent, drafts, ca_file,
                  insecure, password_stdin, oauth_settings)  # fmt: skip


def _store_secret(key: str, value: str) -> str:
    from panza_tui import secrets

    where = secrets.set_secret(key, value)
    return "the system keyring" if where == "keyring" else f"{where} (no keyring here; mode 0600)"


def _add_imap(name, host, user, port, security, auth, addresses, sent, drafts, ca_file,
              insecure, password_stdin, oauth_settings) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    from sync import imap as imap_mod

    token_uri, client_id, client_secret = oauth_settings
    server = imap_mod.ImapServer(
        host=host, user=user, port=port, security=security, auth=auth, sent=sent,
        drafts=drafts, ca_file=ca_file, insecure=insecure, oauth_token_uri=token_uri,
        oauth_client_id=client_id,
    )  # fmt: skip
    what = {"password": "password (or app password)"}.get(
        auth, "refresh token" if token_uri else "access token"
    )
    secret = (
        sys.stdin.readline().rstrip("\n")
        if password_stdin
        else typer.prompt(f"{what} for {user}", hide_input=True)
    )
    if auth != "password" and token_uri:
        secret = json.dumps({"refresh_token": secret, "client_secret": client_secret})
    with console.status(f"logging in to {server.host}:{server.effective_port}"):
        client = imap_mod.connect(server, secret)
        folder = imap_mod.find_folder(client, b"\\Sent", imap_mod.SENT_NAMES, sent)
        client.logout()
    ws = _workspace()
    ws.store.add_account(name, addresses or ([user] if "@" in user else []))
    ws.store.set_server(name, server.to_json())
    note = _store_secret(f"{name}:imap", secret)
    console.print(f"account '{name}': logged in, sent folder '{folder}'; {what} stored in {note}")


def _add_gmail(name: str, client_secrets: str, api_root: str, addresses: list[str]) -> None:
    from panza_tui.errors import AccountError
    from sync import gmail as gmail_mod
    from sync import oauth

    if not client_secrets:
        raise AccountError("--gmail needs --client-secrets FILE (an OAuth 'Desktop app' client)")
    try:
        config = json.loads(Path(client_secrets).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AccountError(f"{client_secrets}: not a readable client secrets file ({exc})") from exc
    creds = oauth.authorize_installed_app(config)
    profile = gmail_mod.service(creds, api_root).users().getProfile(userId="me").execute()
    ws = _workspace()
    ws.store.add_account(name, addresses or [profile["emailAddress"]])
    ws.store.set_server(
        name, {"kind": "gmail", "root_url": api_root, "email": profile["emailAddress"]}
    )
    note = _store_secret(f"{name}:gmail", json.dumps(gmail_mod.token_json(creds)))
    console.print(
        f"account '{name}': Gmail {profile['emailAddress']}; refresh token stored in {note}"
    )


@app.command()
def sync(account: AccountOpt) -> None:
    """Fetch new sent mail from the account's server (incremental, resumable)."""
    from sync.runner import sync_account

    ws = _workspace()
    with _progress() as bar:
        task = bar.add_task("sync", total=None, info="")
        result = sync_account(
            ws, account, lambda done, total: bar.update(task, completed=done, total=total)
        )
    report = result.report
    print_import_report(report)
    if result.drafts_saved or result.drafts_failing:
        console.print(
            f"drafts waiting for the server: {result.drafts_saved} saved now, "
            f"{result.drafts_failing} still failing"
        )
    if report.resynced:
        console.print(f"'{report.folder}' was read again from the start (server state changed)")
    console.print(
        f"'{report.folder}': {report.counts['kept']} new, {len(report.deleted_ids)} removed; "
        f"{ws.store.count_messages(account)} emails in '{account}', {result.indexed} newly indexed"
    )


@app.command()
def accounts() -> None:
    """List accounts with their email counts and active model."""
    ws = _workspace()
    table = Table(show_edge=False)
    for column in ("account", "emails", "addresses", "active export"):
        table.add_column(column)
    for name in ws.store.accounts():
        row = ws.store.account(name)
        table.add_row(
            name, str(ws.store.count_messages(name)), ", ".join(ws.store.addresses(name)),
            f"#{row['active_adapter']}" if row["active_adapter"] else "-",
        )  # fmt: skip
    console.print(table)


@app.command()
def demo(
    no_tui: Annotated[
        bool, typer.Option("--no-tui", help="Print a draft instead of the app.")
    ] = False,
) -> None:
    """The whole pipeline on a shipped demo mailbox, then the app. Reruns reuse finished work."""
    from panza_tui import demo as demo_mod

    demo_mod.run(open_tui=not no_tui)


def main() -> None:
    """Entry point: run the app, turning Panza errors into one clear line."""
    try:
        app()
    except PanzaError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise SystemExit(2) from None
    except OSError as exc:  # a full disk, a read-only folder, a vanished file
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        console.print(f"[bold red]error:[/] {exc.strerror or exc}{where}; finished work is kept")
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        console.print("interrupted; finished work is saved and the next run continues from it")
        raise SystemExit(130) from None
