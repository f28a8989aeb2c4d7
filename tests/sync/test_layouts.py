"""``panza import`` takes any mail folder: each real layout is rebuilt in a temporary folder
from the same real messages (the demo mailbox, raw Enron files), and every layout imports
exactly what importing those messages one by one gives, with its non-mail files counted as
``not_mail`` and a count per folder (issue 13)."""

from __future__ import annotations

import mailbox
import plistlib
import shutil
from collections import Counter
from pathlib import Path

import pytest

from panza_core.store import Store
from panza_tui.cli.demo import ADDRESS
from sync import files
from sync.importer import import_path
from tests.conftest import shared
from tests.helpers import demo_messages

MESSAGES = demo_messages()[:24]


def _maildir(root: Path, messages: list[bytes]) -> None:
    root.parent.mkdir(parents=True, exist_ok=True)
    box = mailbox.Maildir(root, create=True)
    for raw in messages:
        box.add(raw)
    box.close()


def enron_cmu(root: Path) -> int:
    """maildir/<user>/<folder>/1., 2., ... (the CMU release): numbered message files."""
    source = sorted(shared("enron", "small-50-users").glob("*_sent_*.txt"))[:30]
    for number, file in enumerate(source, start=1):
        user, _, rest = file.stem.partition("_")
        folder = root / "maildir" / user / rest.rpartition("_")[0].strip("_")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(file, folder / f"{number}.")
    return 0


def mh(root: Path) -> int:
    """MH: Mail/<folder>/1, 2, ... plus .mh_sequences and the context file."""
    for folder, part in (("inbox", MESSAGES[:10]), ("sent", MESSAGES[10:])):
        box = root / "Mail" / folder
        box.mkdir(parents=True)
        for number, raw in enumerate(part, start=1):
            (box / str(number)).write_bytes(raw)
        (box / ".mh_sequences").write_text("unseen: 1-3\n")
    (root / "Mail" / "context").write_text("Current-Folder: inbox\n")
    return 3


def maildir_plus(root: Path) -> int:
    """Maildir++: the INBOX at the root, folders as .Name/ maildirs, Dovecot's files."""
    _maildir(root / "Maildir", MESSAGES[:8])
    _maildir(root / "Maildir" / ".Sent", MESSAGES[8:20])
    _maildir(root / "Maildir" / ".Archive.2024", MESSAGES[20:])
    (root / "Maildir" / ".Sent" / "maildirfolder").write_bytes(b"")
    (root / "Maildir" / "dovecot-uidlist").write_text("3 V1 N25\n1 :abc\n")
    (root / "Maildir" / "subscriptions").write_text("Sent\nArchive.2024\n")
    return 3


def notmuch(root: Path) -> int:
    """A notmuch store: a maildir tree and the Xapian database in .notmuch/ (skipped)."""
    _maildir(root / "mail" / "work", MESSAGES[:12])
    _maildir(root / "mail" / "sent", MESSAGES[12:])
    xapian = root / "mail" / ".notmuch" / "xapian"
    xapian.mkdir(parents=True)
    (xapian / "postlist.glass").write_bytes(bytes(range(256)) * 8)
    return 0


def thunderbird(root: Path) -> int:
    """A Thunderbird profile: mbox files without extension ("From - " separators, mboxo),
    .msf indexes, a .sbd subfolder, settings files."""
    local = root / "Mail" / "Local Folders"
    (local / "Sent.sbd").mkdir(parents=True)
    for path, part in ((local / "Inbox", MESSAGES[:9]), (local / "Sent", MESSAGES[9:18]),
                       (local / "Sent.sbd" / "2024", MESSAGES[18:])):  # fmt: skip
        with path.open("wb") as out:
            for raw in part:
                out.write(b"From - Sat Jan 03 10:00:00 2026\r\n" + raw.replace(b"\n", b"\r\n"))
                out.write(b"\r\n")
        path.with_name(path.name + ".msf").write_text('// <!-- <mdb:mork:z v="1.4"/> -->\n')
    (root / "prefs.js").write_text('user_pref("mail.root.none", "x");\n')
    return 4


def apple_mail(root: Path) -> int:
    """Apple Mail: Messages/<n>.emlx (length line, message, property list)."""
    messages = root / "Mail" / "V10" / "Sent Messages.mbox" / "Data" / "Messages"
    messages.mkdir(parents=True)
    for number, raw in enumerate(MESSAGES, start=1):
        plist = plistlib.dumps({"flags": 8590195713, "date-received": 1767435600})
        (messages / f"{number}.emlx").write_bytes(b"%d\n" % len(raw) + raw + plist)
    (messages.parent.parent / "Info.plist").write_bytes(plistlib.dumps({"name": "Sent"}))
    return 1


LAYOUTS = [enron_cmu, mh, maildir_plus, notmuch, thunderbird, apple_mail]


def _one_by_one(tmp_path: Path, messages: list[bytes]) -> Counter:
    """What importing each message as its own file gives: the reference."""
    folder = tmp_path / "reference"
    folder.mkdir()
    for number, raw in enumerate(messages):
        (folder / f"{number:04}.eml").write_bytes(raw)
    with Store(tmp_path / "reference.sqlite3") as store:
        store.add_account("me", [ADDRESS])
        counts = import_path(store, "me", folder).counts
        return Counter({k: v for k, v in counts.items() if k != "not_mail"})


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda f: f.__name__)
def test_every_real_folder_layout_imports_like_its_messages_one_by_one(layout, tmp_path):
    root = tmp_path / "layout"
    junk = layout(root)
    messages = [raw for _, raw in files.read(root)]
    if layout is enron_cmu:
        expected_n = 30
    else:
        expected_n = len(MESSAGES)
    assert len(messages) == expected_n, layout.__name__
    with Store(tmp_path / "p.sqlite3") as store:
        store.add_account("me", [ADDRESS])
        report = import_path(store, "me", root)
    mail = Counter({k: v for k, v in report.counts.items() if k != "not_mail"})
    assert report.counts["not_mail"] == junk
    assert mail == _one_by_one(tmp_path, messages)
    assert sum(sum(c.values()) for c in report.folders.values()) == report.total
    assert len(report.folders) >= 2  # reported folder by folder


def test_mbox_quoting_is_chosen_per_file(tmp_path):
    body = b"Subject: quoting\r\n\r\n>From the start\r\n>>From a quote\r\nend\r\n"
    (tmp_path / "mboxrd.mbox").write_bytes(b"From maya@x Sat Jan 3 10:00:00 2026\r\n" + body)
    (tmp_path / "Thunderbird").write_bytes(b"From - Sat Jan 03 10:00:00 2026\r\n" + body)
    rd = next(files.read(tmp_path / "mboxrd.mbox"))[1]
    mboxo = next(files.read(tmp_path / "Thunderbird"))[1]
    assert b"\nFrom the start" in rd and b"\n>From a quote" in rd  # one ">" less each
    assert b"\nFrom the start" in mboxo and b"\n>>From a quote" in mboxo  # only >From quoted


def test_sniffing_tells_mail_from_other_files(tmp_path):
    cases = {
        "1.": b"Message-ID: <1@x>\r\nDate: Mon, 1 Jan 2001 00:00:00 -0800\r\n\r\nhi\r\n",
        "Sent": b"From - Sat Jan 03 10:00:00 2026\r\nSubject: x\r\n\r\nhi\r\n",
        "a.emlx": b"12\nSubject: x\n\nhi",
        "d.jsonl": b'{"email": "hi", "subject": "x"}\n',
        "Sent.msf": b'// <!-- <mdb:mork:z v="1.4"/> -->\n',
        "notes.txt": b"Remember: milk\nand eggs\n",
        "photo.jpg": bytes(range(256)),
        "session.json": b'{"windows": []}\n',
        "empty": b"",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    kinds = {name: files.sniff(tmp_path / name) for name in cases}
    assert kinds == {"1.": "eml", "Sent": "mbox", "a.emlx": "emlx", "d.jsonl": "jsonl",
                     "Sent.msf": None, "notes.txt": None, "photo.jpg": None,
                     "session.json": None, "empty": None}  # fmt: skip


def test_the_shared_mime_corpus_imports_without_a_crash(tmp_path):
    corpus = shared("mime", "mikel-mail")
    with Store(tmp_path / "p.sqlite3") as store:
        store.add_account("me", [ADDRESS])
        report = import_path(store, "me", corpus)
    assert report.total >= 104 and report.counts["received"] > 50
    assert report.counts["not_mail"] == 2  # .gitattributes and an empty file
    assert len(report.folders) >= 5
