"""Getting the user's sent mail into the store: files (mbox, maildir, .eml, JSON lines) now;
IMAP and the Gmail API later. Never imports textual."""
