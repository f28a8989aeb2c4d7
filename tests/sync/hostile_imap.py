"""A stand-in IMAP server on 127.0.0.1 that answers as a hostile network path or a broken
server would: NO to STARTTLS (the answer comes before TLS, so anyone on the path can forge
it) or BAD to LIST after a login. Its error text is hostile too: markup, an action tag and
terminal control sequences, which must reach no screen as anything but plain text."""

from __future__ import annotations

import socket
import threading

#: What the server says when it refuses: a stray closing tag, an action link, OSC 52 (write
#: the clipboard), CSI (clear the screen) and a C1 control.
HOSTILE_REASON = (
    "[/] [b @click=app.quit()]go[/b] \x1b]52;c;ZXZpbA==\x07\x1b[2J\u009b31m [EXTERNAL] refused"
)


class HostileImap:
    """Serves ``refuse`` ("starttls": NO to STARTTLS; "list": BAD to LIST) on 127.0.0.1:``port``
    to any number of connections, each in a daemon thread, until ``close()``. Every command
    it reads is kept in ``commands`` (the password of a LOGIN included: the test checks that
    a STARTTLS refusal means no LOGIN was ever sent)."""

    def __init__(self, refuse: str) -> None:
        assert refuse in ("starttls", "list")
        self.refuse = refuse
        self.commands: list[str] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            conn.settimeout(10)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reason = HOSTILE_REASON.encode("utf-8")
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] stand-in ready\r\n")
            try:
                for line in lines:
                    tag, _, rest = line.decode("utf-8", "replace").rstrip("\r\n").partition(" ")
                    command = rest.split(" ", 1)[0].upper()
                    self.commands.append(rest)
                    if command == "CAPABILITY":
                        conn.sendall(b"* CAPABILITY IMAP4rev1 STARTTLS\r\n")
                    if command == "STARTTLS" and self.refuse == "starttls":
                        conn.sendall(tag.encode() + b" NO " + reason + b"\r\n")
                    elif command == "LIST" and self.refuse == "list":
                        conn.sendall(tag.encode() + b" BAD " + reason + b"\r\n")
                    elif command == "LOGOUT":
                        conn.sendall(b"* BYE\r\n" + tag.encode() + b" OK bye\r\n")
                        return
                    else:
                        conn.sendall(tag.encode() + b" OK done\r\n")
            except OSError:
                return

    def close(self) -> None:
        self.listener.close()
