"""The SQLite schema of the store, one migration per version (``PRAGMA user_version``).

Append a new script to ``MIGRATIONS`` to change the schema; never edit a published one:
databases already at that version would never see the change.
"""

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE accounts (
        name TEXT PRIMARY KEY,
        addresses TEXT NOT NULL DEFAULT '[]',      -- JSON list, lower-case
        user_preamble TEXT NOT NULL DEFAULT '',
        active_adapter INTEGER,                     -- runs.id of the export in use
        created_at REAL NOT NULL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL REFERENCES accounts(name) ON DELETE CASCADE,
        message_id TEXT,
        content_hash TEXT NOT NULL,
        folder TEXT NOT NULL DEFAULT '',
        date TEXT,                                  -- ISO 8601, UTC
        from_addr TEXT NOT NULL DEFAULT '',
        to_addrs TEXT NOT NULL DEFAULT '',
        cc_addrs TEXT NOT NULL DEFAULT '',
        subject TEXT NOT NULL DEFAULT '',
        text TEXT NOT NULL,
        in_reply_to TEXT,
        refs TEXT,
        source TEXT NOT NULL DEFAULT '',
        imported_at REAL NOT NULL,
        UNIQUE (account, content_hash)
    );
    CREATE UNIQUE INDEX messages_message_id ON messages(account, message_id)
        WHERE message_id IS NOT NULL;
    CREATE INDEX messages_date ON messages(account, date);
    CREATE TABLE pairs (
        content_hash TEXT NOT NULL,
        model TEXT NOT NULL,
        prompt_hash TEXT NOT NULL,
        instruction TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (content_hash, model, prompt_hash)
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL REFERENCES accounts(name) ON DELETE CASCADE,
        kind TEXT NOT NULL,                         -- train | export | eval
        status TEXT NOT NULL,                       -- running | done | failed
        input_hash TEXT NOT NULL,
        config TEXT NOT NULL DEFAULT '{}',
        metrics TEXT NOT NULL DEFAULT '{}',
        path TEXT NOT NULL DEFAULT '',
        parent INTEGER REFERENCES runs(id),
        started_at REAL NOT NULL,
        finished_at REAL
    );
    CREATE INDEX runs_lookup ON runs(account, kind, input_hash, status);
    CREATE TABLE drafts (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL REFERENCES accounts(name) ON DELETE CASCADE,
        instruction TEXT NOT NULL,
        text TEXT NOT NULL,
        retrieved TEXT NOT NULL DEFAULT '[]',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
    # 2: server sync (IMAP UIDs, per-folder state) and drafts that go back to the server
    """
    ALTER TABLE accounts ADD COLUMN server TEXT NOT NULL DEFAULT '{}';  -- JSON settings
    ALTER TABLE messages ADD COLUMN uid INTEGER;          -- IMAP UID within folder
    CREATE INDEX messages_uid ON messages(account, folder, uid);
    CREATE TABLE sync_state (
        account TEXT NOT NULL REFERENCES accounts(name) ON DELETE CASCADE,
        folder TEXT NOT NULL,
        uidvalidity INTEGER,
        last_uid INTEGER NOT NULL DEFAULT 0,
        highestmodseq INTEGER,
        history_id TEXT,                                  -- Gmail
        synced_at REAL,
        PRIMARY KEY (account, folder)
    );
    ALTER TABLE drafts ADD COLUMN to_addrs TEXT NOT NULL DEFAULT '';
    ALTER TABLE drafts ADD COLUMN cc_addrs TEXT NOT NULL DEFAULT '';
    ALTER TABLE drafts ADD COLUMN subject TEXT NOT NULL DEFAULT '';
    ALTER TABLE drafts ADD COLUMN in_reply_to TEXT;
    ALTER TABLE drafts ADD COLUMN refs TEXT;
    ALTER TABLE drafts ADD COLUMN message_id TEXT;
    ALTER TABLE drafts ADD COLUMN server_ref TEXT;        -- IMAP UID or Gmail draft id
    ALTER TABLE drafts ADD COLUMN server_error TEXT;      -- last failed save, kept to retry
    """,
    # 3: received mail and threads. Received mail is read and put in prompts as the email
    # being answered, never learned from as the user's style.
    """
    ALTER TABLE messages ADD COLUMN received INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN quoted TEXT;          -- the quoted original of a reply
    ALTER TABLE messages ADD COLUMN thread_id TEXT;       -- Gmail threadId, else root Message-ID
    CREATE INDEX messages_thread ON messages(account, thread_id);
    CREATE INDEX messages_parent ON messages(account, in_reply_to);
    CREATE INDEX messages_box ON messages(account, received, date);
    UPDATE messages SET thread_id = CASE
        WHEN refs IS NOT NULL AND refs != '' THEN substr(refs, 1, instr(refs || ' ', ' ') - 1)
        ELSE COALESCE(in_reply_to, message_id) END;
    """,
    # 4: ids are never reused (AUTOINCREMENT: the retrieval index keys vectors by id, so a
    # reused id would pair an old vector with new text), and server deletions leave a
    # tombstone (deleted_at) instead of deleting the user's mail. SQLite cannot add
    # AUTOINCREMENT to a table, so it is rebuilt; no table references messages.
    """
    CREATE TABLE messages_v4 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account TEXT NOT NULL REFERENCES accounts(name) ON DELETE CASCADE,
        message_id TEXT,
        content_hash TEXT NOT NULL,
        folder TEXT NOT NULL DEFAULT '',
        date TEXT,
        from_addr TEXT NOT NULL DEFAULT '',
        to_addrs TEXT NOT NULL DEFAULT '',
        cc_addrs TEXT NOT NULL DEFAULT '',
        subject TEXT NOT NULL DEFAULT '',
        text TEXT NOT NULL,
        in_reply_to TEXT,
        refs TEXT,
        source TEXT NOT NULL DEFAULT '',
        imported_at REAL NOT NULL,
        uid INTEGER,
        received INTEGER NOT NULL DEFAULT 0,
        quoted TEXT,
        thread_id TEXT,
        deleted_at REAL,                            -- deleted on the server: a tombstone
        UNIQUE (account, content_hash)
    );
    INSERT INTO messages_v4 (id, account, message_id, content_hash, folder, date, from_addr,
        to_addrs, cc_addrs, subject, text, in_reply_to, refs, source, imported_at, uid,
        received, quoted, thread_id)
    SELECT id, account, message_id, content_hash, folder, date, from_addr, to_addrs,
        cc_addrs, subject, text, in_reply_to, refs, source, imported_at, uid, received,
        quoted, thread_id FROM messages;
    DROP TABLE messages;
    ALTER TABLE messages_v4 RENAME TO messages;
    CREATE UNIQUE INDEX messages_message_id ON messages(account, message_id)
        WHERE message_id IS NOT NULL;
    CREATE INDEX messages_date ON messages(account, date);
    CREATE INDEX messages_uid ON messages(account, folder, uid);
    CREATE INDEX messages_thread ON messages(account, thread_id);
    CREATE INDEX messages_parent ON messages(account, in_reply_to);
    CREATE INDEX messages_box ON messages(account, received, date);
    """,
    # 5: one word for one thing. The account's model is an export run (adapter-only or
    # merged), so the column says "export", as the rest of the code does.
    """
    ALTER TABLE accounts RENAME COLUMN active_adapter TO active_export;
    """,
]
