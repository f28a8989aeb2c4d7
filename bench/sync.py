"""IMAP sync speed: a full sync of 10,000 messages from a local Dovecot, by Panza and by
mbsync (isync) into a maildir, in the same run; then Panza's incremental sync with nothing
new. Each side runs in its own process, so peak RSS is its own.

The messages are the real mail of ../shared/data (mailing list, Enron, the demo mailbox),
repeated with fresh Message-IDs until there are 10,000.
"""

from __future__ import annotations

import argparse
import mailbox
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, SHARED, report, temp_home

sys.path.insert(0, str(ROOT))
from tests.sync import dovecot  # noqa: E402

PANZA = """
import json, resource, sys, time
from panza_core.store import Store
from panza_core.secrets import Secret
from sync import imap
store = Store()
store.add_account("bench")
store.set_server("bench", imap.ImapServer(host="127.0.0.1", user=sys.argv[1], port=int(sys.argv[2]),
                                          security="plain").to_json())
start = time.perf_counter()
report = imap.sync(store, "bench", Secret(sys.argv[3]), batch=500)
full = time.perf_counter() - start
start = time.perf_counter()
again = imap.sync(store, "bench", Secret(sys.argv[3]))
incremental = time.perf_counter() - start
rss = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
       "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}
print(json.dumps({"full_s": full, "incremental_s": incremental, **rss,
                  "fetched": sum(report.counts.values()), "kept": report.counts["kept"],
                  "again": sum(again.counts.values())}))
"""

MBSYNC = """IMAPAccount bench
Host 127.0.0.1
Port {port}
User {user}
Pass {password}
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account bench

MaildirStore local
Path {local}/
Inbox {local}/INBOX

Channel sent
Far :remote:Sent
Near :local:Sent
Create Near
Sync Pull
SyncState *
"""


def corpus(n: int) -> list[bytes]:
    from panza_tui.cli import demo
    from sync import files

    base = [item for _, item in files.read(SHARED / "mbox" / "usrp-users-800.mbox")]
    base += [p.read_bytes() for p in sorted((SHARED / "enron" / "small-50-users").glob("*.txt"))]
    base += [bytes(m) for m in mailbox.mbox(demo.mailbox())]
    out = []
    for i in range(n):
        raw = base[i % len(base)]
        out.append(b"Message-ID: <bench-%d@panza.test>\r\n" % i + raw)
    return out


def fill(server: dovecot.Dovecot, messages: list[bytes]) -> None:
    """Write the messages straight into the server's maildir (far faster than APPEND)."""
    path = server.root / "mail" / server.user / ".Sent"
    path.parent.mkdir(parents=True, exist_ok=True)
    box = mailbox.Maildir(path, create=True)
    for raw in messages:
        box.add(mailbox.MaildirMessage(raw))
    uid, gid = dovecot._nobody()
    for folder, _, names in os.walk(server.root / "mail"):
        os.chown(folder, uid, gid)
        for name in names:
            os.chown(os.path.join(folder, name), uid, gid)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    if shutil.which("dovecot") is None or shutil.which("mbsync") is None:
        sys.exit("needs Debian packages dovecot-imapd and isync")
    home = temp_home("sync")
    server = dovecot.start(tls=False)
    try:
        fill(server, corpus(args.messages))
        # let Dovecot index the folder once, so neither side pays for that
        subprocess.run([sys.executable, "-c",
                        "import sys; from imapclient import IMAPClient as C; c=C('127.0.0.1', "
                        "port=int(sys.argv[1]), ssl=False); c.login(sys.argv[2], sys.argv[3]); "
                        "print(c.select_folder('Sent')[b'EXISTS'])",
                        str(server.port), server.user, server.password], check=True)  # fmt: skip

        local = Path(tempfile.mkdtemp(prefix="panza-mbsync-"))
        config = local / "mbsyncrc"
        config.write_text(MBSYNC.format(port=server.port, user=server.user,
                                        password=server.password, local=local))  # fmt: skip
        start = time.perf_counter()
        process = subprocess.Popen(["mbsync", "-q", "-c", str(config), "sent"])
        _, status, usage = os.wait4(process.pid, 0)  # this child's own peak RSS
        mbsync_s = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit("mbsync failed")
        mbsync_rss = usage.ru_maxrss / 1024
        mbsync_count = len(list((local / "Sent" / "cur").iterdir())) + len(
            list((local / "Sent" / "new").iterdir())
        )

        out = subprocess.run(
            [sys.executable, "-c", PANZA, server.user, str(server.port), server.password],
            check=True, capture_output=True, text=True, cwd=ROOT,
            env={**os.environ, "PANZA_HOME": str(home)},
        )  # fmt: skip
        import json

        ours = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        server.stop()
    rows = [
        ["mbsync (isync) -> maildir", mbsync_count, mbsync_s, "-", mbsync_rss],
        [
            "panza full sync -> store",
            ours["fetched"],
            ours["full_s"],
            ours["kept"],
            ours["peak_rss_mb"],
        ],
        ["ratio (panza / mbsync)", "-", ours["full_s"] / mbsync_s, "-", "-"],
        ["panza incremental, nothing new", ours["again"], ours["incremental_s"], "-", "-"],
    ]
    report("sync", ["sync", "messages", "seconds", "kept", "peak_rss_mb"], rows,
           {"messages": args.messages,
            "panza_extract_worker_peak_rss_mb": ours["worker_peak_rss_mb"]})  # fmt: skip


if __name__ == "__main__":
    main()
