"""kill -9 at random points of each long step, then check that nothing was lost or doubled.

For each step (file import, IMAP sync against a real Dovecot, Gmail sync against the local
stand-in, playback, training, export) the real ``panza`` command runs as a subprocess in a
copy of a prepared Panza home: once uninterrupted (the reference, which also gives the
step's duration), then ``--kills`` times killed with SIGKILL at a uniformly random moment
of that duration. After each kill the store must pass SQLite's integrity check, the same
command (``--resume`` for training) must complete, and the result must equal the
reference: the same emails (content hash, received or not) with no duplicate, retrieval
index keys == the store's own-mail ids with every hash proven, the same playback pairs,
a finished training run and export, and no ``*.tmp`` file left anywhere in the home.

    python bench/faults.py --kills 20 --steps import,imap,gmail
    python bench/faults.py --kills 5 --steps playback,train,export

Prints a table (runs, kills, lost, duplicated, integrity failures, tmp left, recovered) and
writes bench/results/faults.json.
"""

from __future__ import annotations

import argparse
import json
import mailbox
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common import ROOT, SHARED, report

ME = "patchvonbraun@gmail.com"  # the most active member of the usrp-users list
ACCOUNT = "f"


def panza(home: Path, *args: str, timeout: float = 1800) -> subprocess.Popen:
    env = {**os.environ, "PANZA_HOME": str(home), "PANZA_NO_KEYRING": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "panza_tui", *args], env=env, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip


def run_to_end(home: Path, args: list[str]) -> float:
    start = time.perf_counter()
    proc = panza(home, *args)
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"panza {' '.join(args)} failed: {err.decode()[-2000:]}")
    return time.perf_counter() - start


def usrp(messages: int) -> list[bytes]:
    box = mailbox.mbox(SHARED / "mbox" / "usrp-users-800.mbox")
    return [m.as_bytes() for m in list(box)[:messages]]


def mine(raw: bytes) -> bool:
    return ME.encode() in raw.split(b"\n\n", 1)[0].lower()


@dataclass
class State:
    """What a step left in a Panza home, to compare with the reference."""

    emails: Counter  # (content hash, received) -> rows
    index_ok: bool
    pairs: int
    runs: Counter  # (kind, status) -> count
    tmp: list[str]
    integrity: str
    adapter: dict = field(default_factory=dict)  # the last finished training's tensors


def state(home: Path) -> State:
    from panza_core.retrieval import EmailIndex
    from panza_core.store import Store

    db = sqlite3.connect(home / "panza.sqlite3")
    integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    db.close()
    with Store(home / "panza.sqlite3") as store:
        rows = store.messages(ACCOUNT, deleted=True) + store.messages(
            ACCOUNT, received=True, deleted=True
        )
        emails = Counter((m.content_hash, m.received) for m in rows)
        own = {m.id: m.content_hash for m in rows if not m.received}
        index_ok = not own  # own mail must be indexed, every key with its proven hash
        path = home / "accounts" / ACCOUNT / "retrieval.usearch"
        if own and EmailIndex.usable(path):
            index = EmailIndex(path)
            index_ok = set(index.keys()) == set(own) and index.hashes == own
        pairs = store.db.execute("SELECT COUNT(*) FROM pairs").fetchone()[0]
        runs = Counter(
            (r["kind"], r["status"]) for r in store.db.execute("SELECT kind, status FROM runs")
        )
        trained = store.latest_run(ACCOUNT, "train")
    adapter = {}
    if trained is not None and trained.status == "done":
        from safetensors.numpy import load_file

        for file in Path(trained.path).glob("*.safetensors"):
            adapter.update(load_file(file))
    tmp = [str(p.relative_to(home)) for p in home.rglob("*.tmp")]
    return State(emails, index_ok, pairs, runs, tmp, integrity, adapter)


def adapter_diff(got: State, want: State) -> float:
    """Largest absolute difference between the two adapters' weights (inf if they differ
    in shape or names)."""
    import numpy as np

    if got.adapter.keys() != want.adapter.keys():
        return float("inf")
    return max((float(np.max(np.abs(got.adapter[k] - want.adapter[k]))) for k in want.adapter),
               default=0.0)  # fmt: skip


@dataclass
class Step:
    name: str
    args: list[str]
    prepare: Callable[[Path], None]  # fills a fresh home with what the step starts from
    resume_args: list[str] = field(default_factory=list)


def steps(messages: int, pipeline_emails: int, work: Path, servers: dict) -> dict[str, Step]:
    sys.path.insert(0, str(ROOT))
    raws = usrp(messages)
    mbox_file = work / "usrp.mbox"
    box = mailbox.mbox(mbox_file)
    for raw in raws:
        box.add(raw)
    box.close()

    def account(home: Path, server: dict, secret: str, kind: str) -> None:
        env_home = os.environ.get("PANZA_HOME")
        os.environ["PANZA_HOME"] = str(home)
        os.environ["PANZA_NO_KEYRING"] = "1"
        try:
            from panza_core import secrets
            from panza_core.store import Store

            with Store(home / "panza.sqlite3") as store:
                store.add_account(ACCOUNT, [ME])
                store.set_server(ACCOUNT, server)
            secrets.set_secret(f"{ACCOUNT}:{kind}", secret)
        finally:
            if env_home is not None:
                os.environ["PANZA_HOME"] = env_home

    def imap_home(home: Path) -> None:
        from sync import imap
        from tests.sync import dovecot
        from tests.sync.conftest import append_all

        if "imap" not in servers:
            server = dovecot.start(user=ME, tls=False)
            append_all(server, "Sent", [r for r in raws if mine(r)])
            append_all(server, "INBOX", [r for r in raws if not mine(r)])
            servers["imap"] = server
        server = servers["imap"]
        settings = imap.ImapServer(host="127.0.0.1", user=ME, port=server.port, security="plain")
        account(home, settings.to_json(), server.password, "imap")

    def gmail_home(home: Path) -> None:
        from sync import gmail
        from tests.sync.fake_gmail import FakeGmail

        if "gmail" not in servers:
            fake = FakeGmail()
            for raw in raws:
                fake.add(raw, labels=("SENT",) if mine(raw) else ("INBOX",))
            servers["gmail"] = fake
        fake = servers["gmail"]
        token = {"token": "valid-token", "refresh_token": "refresh-1", "client_id": "cid",
                 "client_secret": "csecret", "token_uri": f"{fake.url}/token"}  # fmt: skip
        account(home, gmail.settings(ME, fake.url), json.dumps(token), "gmail")

    david = work / "david.jsonl"
    lines = (SHARED / "panza" / "david.jsonl").read_text().splitlines()[:pipeline_emails]
    david.write_text("\n".join(lines) + "\n")

    def imported(home: Path) -> None:
        run_to_end(home, ["import", str(david), "-a", ACCOUNT])

    def played(home: Path) -> None:
        imported(home)
        run_to_end(home, ["playback", "-a", ACCOUNT])

    def trained(home: Path) -> None:
        played(home)
        run_to_end(home, ["train", "-a", ACCOUNT])

    return {
        "import": Step("import", ["import", str(mbox_file), "-a", ACCOUNT, "--address", ME],
                       lambda home: None),
        "imap": Step("imap", ["sync", "-a", ACCOUNT], imap_home),
        "gmail": Step("gmail", ["sync", "-a", ACCOUNT], gmail_home),
        "playback": Step("playback", ["playback", "-a", ACCOUNT], imported),
        "train": Step("train", ["train", "-a", ACCOUNT], played,
                      ["train", "-a", ACCOUNT, "--resume"]),
        "export": Step("export", ["export", "-a", ACCOUNT], trained),
    }  # fmt: skip


def compare(got: State, want: State) -> tuple[int, int]:
    """(emails lost, emails duplicated) against the reference."""
    lost = sum((want.emails - got.emails).values())
    duplicated = sum(n - 1 for n in got.emails.values() if n > 1)
    duplicated += sum((got.emails - want.emails).values()) - duplicated
    return lost, max(duplicated, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--steps", default="import,imap,gmail,playback,train,export")
    parser.add_argument("--messages", type=int, default=300, help="usrp-users messages")
    parser.add_argument("--pipeline-emails", type=int, default=10, help="David's, to train on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="faults", help="results file name")
    args = parser.parse_args()
    os.environ.setdefault("PANZA_TRAINING__MAX_STEPS", "4")
    os.environ.setdefault("PANZA_TRAINING__BATCH_SIZE", "2")
    os.environ.setdefault("PANZA_TRAINING__CHECKPOINT_EVERY", "1")
    os.environ.setdefault("PANZA_TRAINING__TEST_FRACTION", "0.2")
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="panza-faults-"))
    table = []
    servers: dict = {}  # Dovecot and the Gmail stand-in, started on first use
    known = steps(args.messages, args.pipeline_emails, work, servers)
    for name in args.steps.split(","):
        step = known[name]
        base = work / f"{name}-base"
        base.mkdir()
        step.prepare(base)
        reference_home = work / f"{name}-reference"
        shutil.copytree(base, reference_home)
        seconds = run_to_end(reference_home, step.args)
        want = state(reference_home)
        lost = duplicated = broken = leftover = recovered = 0
        worst = 0.0
        for kill in range(args.kills):
            home = work / f"{name}-{kill}"
            shutil.copytree(base, home)
            proc = panza(home, *step.args)
            time.sleep(rng.uniform(0.05, 0.95) * seconds)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            broken += state(home).integrity != "ok"
            try:
                run_to_end(home, step.resume_args or step.args)
            except RuntimeError as exc:  # killed before training started: nothing to resume
                if "no interrupted" not in str(exc):
                    raise
                run_to_end(home, step.args)
            got = state(home)
            missing, doubled = compare(got, want)
            lost += missing
            duplicated += doubled
            leftover += len(got.tmp)
            same_runs = {k for k, v in got.runs.items() if k[1] == "done"} == {
                k for k, v in want.runs.items() if k[1] == "done"
            }
            ok = (not missing and not doubled and got.index_ok and not got.tmp
                  and got.pairs == want.pairs and same_runs and got.integrity == "ok")  # fmt: skip
            if want.adapter:
                worst = max(worst, adapter_diff(got, want))
            recovered += ok
            shutil.rmtree(home)
        table.append([name, args.kills + 1, args.kills, round(seconds, 1), lost, duplicated,
                      broken, leftover, f"{recovered}/{args.kills}",
                      f"{worst:.2g}" if want.adapter else "-"])  # fmt: skip
    report(args.name, ["step", "runs", "kills", "uninterrupted s", "emails lost", "duplicated",
                      "integrity failures", "tmp left", "recovered",
                      "adapter max |diff|"], table,
           {"messages": args.messages, "pipeline_emails": args.pipeline_emails,
            "seed": args.seed})  # fmt: skip
    if "imap" in servers:
        servers["imap"].stop()
    if "gmail" in servers:
        servers["gmail"].close()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
