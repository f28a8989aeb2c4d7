"""Commands for mail: ``import``, ``account add``, ``accounts``, ``sync``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from panza_core.errors import AccountError
from panza_core.secrets import Secret
from panza_core.untrusted import json_text, plain
from panza_tui.cli.output import (
    console,
    print_import_report,
    print_reply_counts,
    progress,
    workspace,
)

AccountOpt = Annotated[str, typer.Option("--account", "-a", help="Account name.")]


def import_(
    path: Annotated[
        Path,
        typer.Argument(help="A mail folder of any layout (walked), mbox, .eml, or JSON lines."),
    ],
    account: AccountOpt,
    address: Annotated[
        Optional[list[str]],  # noqa: UP045 - typer needs Optional here
        typer.Option(
            "--address", help="Your address: mail from it is yours, the rest received. Repeatable."
        ),
    ] = None,
    min_words: Annotated[int, typer.Option(help="Drop emails shorter than this.")] = -1,
) -> None:
    """Import mail into an account (idempotent) and index your own for retrieval.

    Mail from your addresses is yours (learned from); all other mail is kept as received
    mail, to read and reply to."""
    from sync.importer import import_path

    ws = workspace()
    ws.store.add_account(account, address or [])
    words = min_words if min_words >= 0 else ws.config.imports.min_words
    with progress() as bar:
        task = bar.add_task("import", total=None, info="")
        report = import_path(ws.store, account, path, words, lambda n: bar.advance(task, n))
    print_import_report(report)
    print_reply_counts(ws.store.reply_counts(account))
    with progress() as bar:  # embedding: minutes for tens of thousands of emails
        task = bar.add_task("index", total=None, info="for retrieval")
        added = ws.update_index(  # a command line job: every core
            account, lambda done, total: bar.update(task, completed=done, total=total), True
        )
    received = ws.store.count_messages(account, received=True)
    console.print(
        f"{ws.store.count_messages(account)} emails in '{account}', {added} newly indexed"
        + (f"; {received} received" if received else "")
    )


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
    inbox: Annotated[
        str, typer.Option(help="Folder of received mail to sync; '' for none.")
    ] = "INBOX",
    drafts: Annotated[str, typer.Option(help="Drafts folder, if not found by SPECIAL-USE.")] = "",
    ca_file: Annotated[str, typer.Option(help="CA certificate(s) to trust for TLS.")] = "",
    insecure: Annotated[bool, typer.Option(help="Allow a plaintext login off loopback.")] = False,
    password_stdin: Annotated[bool, typer.Option(help="Read the secret from stdin.")] = False,
) -> None:
    """Add (or update) an IMAP or Gmail account; the login is tested before anything is
    stored, and secrets go to the keyring (or a 0600 file where there is none)."""
    from sync import accounts
    from sync.imap import ImapServer, security_mode

    if gmail == bool(imap):
        raise AccountError("say either --imap HOST --user NAME, or --gmail --client-secrets FILE")
    ws = workspace()
    if gmail:
        if not client_secrets:
            raise AccountError(
                "--gmail needs --client-secrets FILE (an OAuth 'Desktop app' client)"
            )
        added = accounts.add_gmail(ws, name, Path(client_secrets), api_root, address or [])
        console.print(
            f"account '{name}': {added.found}; refresh token stored in {added.secret_stored_in}"
        )
        return
    auth = "oauthbearer" if oauthbearer else "xoauth2" if oauth else "password"
    security = security_mode(security)
    server = ImapServer(
        host=imap, user=user, port=port, security=security, auth=auth, sent=sent, inbox=inbox,
        drafts=drafts, ca_file=ca_file, insecure=insecure, oauth_token_uri=oauth_token_uri,
        oauth_client_id=oauth_client_id,
    )  # fmt: skip
    what = {"password": "password (or app password)"}.get(
        auth, "refresh token" if oauth_token_uri else "access token"
    )
    secret = Secret(
        sys.stdin.readline().rstrip("\n")
        if password_stdin
        else typer.prompt(f"{what} for {user}", hide_input=True)
    )
    if auth != "password" and oauth_token_uri:
        secret = Secret(json.dumps(
            {"refresh_token": secret.reveal(), "client_secret": oauth_client_secret}
        ))  # fmt: skip
    with console.status(f"logging in to {server.host}:{server.effective_port}"):
        added = accounts.add_imap(ws, name, server, secret, address or [])
    console.print(
        f"account '{name}': logged in, {added.found}; {what} stored in {added.secret_stored_in}"
    )


def sync(account: AccountOpt) -> None:
    """Fetch new sent and received mail from the account's server (incremental, resumable)."""
    from sync import accounts

    ws = workspace()
    with progress() as bar:
        task = bar.add_task("sync", total=None, info="")
        result = accounts.sync(
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
    received = ws.store.count_messages(account, received=True)
    console.print(
        f"'{report.folder}': {report.counts['kept']} new of yours, {report.counts['received']} "
        f"received, {len(report.deleted_ids)} deleted on the server; "
        f"{ws.store.count_messages(account)} emails of yours in '{account}' ({received} "
        f"received), {result.indexed} newly indexed"
    )
    if report.deleted_ids:
        console.print(
            f"{ws.store.count_deleted(account)} emails deleted on the server are kept here and "
            f"still learned from: 'panza mail -a {account} --deleted' lists them, "
            "--purge-deleted removes them"
        )


def list_accounts() -> None:
    """List accounts with their server, email counts and active model."""
    from sync import accounts

    table = Table(show_edge=False)
    for column in ("account", "server", "emails", "addresses", "active export"):
        table.add_column(column)
    for row in accounts.summaries(workspace()):
        cells = (
            row.name, row.server, str(row.emails), ", ".join(row.addresses),
            f"#{row.active_export}" if row.active_export else "-",
        )  # fmt: skip
        table.add_row(*(plain(cell, line=True) for cell in cells))
    console.print(table)


def list_mail(
    account: AccountOpt,
    received: Annotated[
        bool, typer.Option("--received", help="Received mail (default: your own).")
    ] = False,
    search: Annotated[str, typer.Option(help="Only emails whose text or headers hold this.")] = "",
    limit: Annotated[int, typer.Option(help="Show at most this many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    deleted: Annotated[
        bool, typer.Option("--deleted", help="Only mail deleted on the server, kept here.")
    ] = False,
    purge_deleted: Annotated[
        bool,
        typer.Option("--purge-deleted", help="Delete for good the mail the server deleted."),
    ] = False,
) -> None:
    """List stored emails, newest first, with the Message-ID that 'panza draft --reply-to'
    takes. Mail deleted on the server is kept (still learned from) and listed with
    --deleted; --purge-deleted removes it."""
    ws = workspace()
    ws.store.account(account)
    if purge_deleted:
        purged = ws.store.purge_deleted(account)
        console.print(f"{purged} emails deleted on the server removed for good")
        return
    found = ws.store.messages(account, search, received=received, deleted=deleted)
    found = [m for m in found if m.deleted_at is not None] if deleted else found
    found = found[: max(limit, 0)]
    if as_json:
        for m in found:
            record = {"message_id": m.message_id, "date": m.date, "from": m.from_addr,
                      "to": m.to_addrs, "subject": m.subject, "thread_id": m.thread_id,
                      "deleted_on_server": m.deleted_at is not None}  # fmt: skip
            print(json_text(record))
        return
    table = Table(show_edge=False)
    for column in ("date", "from" if received else "to", "subject", "Message-ID"):
        table.add_column(column, overflow="fold")
    for m in found:
        who = m.from_addr if received else m.to_addrs
        cells = ((m.date or "")[:10], who[:40], m.subject[:60], m.message_id or "-")
        table.add_row(*(plain(cell, line=True) for cell in cells))
    console.print(table)
