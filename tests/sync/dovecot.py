"""A real Dovecot IMAP server for tests, rootless on 127.0.0.1, with its own config.

Dovecot refuses to run as root without its system users, so it is started as ``nobody``
through ``setpriv``; every folder above its files must then be traversable by that user
(pytest's 0700 temporary folders are not), so it lives in a 0755 folder of its own.
Readiness is the IMAP greeting, not an open port.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from panza_core.secrets import Secret

CONFIG = """
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
default_login_user = nobody
default_internal_user = nobody
default_internal_group = nogroup
auth_mechanisms = plain login{oauth_mechanisms}
disable_plaintext_auth = no
ssl = {ssl}
{ssl_files}
mail_location = maildir:{root}/mail/%u
first_valid_uid = 0
protocol imap {{
  imap_capability = +CONDSTORE
}}
{oauth_passdb}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Dovecot:
    """A running server: ``port`` (plain/STARTTLS), ``tls_port`` (IMAPS), one user."""

    root: Path
    port: int
    tls_port: int
    user: str
    password: str
    cert: Path | None
    process: subprocess.Popen

    @property
    def secret(self) -> Secret:
        """The password as Panza holds it (``core.secrets.Secret``)."""
        return Secret(self.password)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def restart(self) -> None:
        """Stop, then start again on the same mail folders and ports."""
        self.stop()
        self.process = _launch(self.root)
        _wait_for_greeting(self)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def make_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost (openssl from the base system)."""
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    os.chmod(key, 0o644)  # read by the login process running as nobody
    return key, cert


def start(
    user: str = "maya@okafor.example", password: str = "s3cret", tls: bool = True,
    introspection_url: str = "",
) -> Dovecot:  # fmt: skip
    """Start Dovecot on free loopback ports; raises RuntimeError with its log if it fails.

    ``introspection_url``: also accept XOAUTH2/OAUTHBEARER, checking each bearer token
    with an RFC 7662 introspection endpoint there.
    """
    if shutil.which("dovecot") is None:
        raise FileNotFoundError("dovecot is not installed (Debian package dovecot-imapd)")
    root = Path(tempfile.mkdtemp(prefix="panza-dovecot-"))
    root.chmod(0o755)
    os.chown(root, *_nobody())  # its log file is created here by the server itself
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir()
        os.chown(root / sub, *_nobody())
    (root / "passwd").write_text(f"{user}:{{PLAIN}}{password}::::::\n")
    ssl_files, cert = "", None
    if tls:
        key, cert = make_cert(root)
        ssl_files = f"ssl_cert = <{cert}\nssl_key = <{key}"
    port, tls_port = free_port(), free_port()
    uid, gid = _nobody()
    oauth_mechanisms = oauth_passdb = ""
    if introspection_url:
        (root / "oauth2.conf.ext").write_text(
            f"introspection_mode = post\nintrospection_url = {introspection_url}\n"
            "username_attribute = email\nactive_attribute = active\nactive_value = true\n"
        )
        oauth_mechanisms = " xoauth2 oauthbearer"
        oauth_passdb = (
            "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
            f"  args = {root}/oauth2.conf.ext\n}}\n"
        )
    (root / "dovecot.conf").write_text(
        CONFIG.format(root=root, ssl="yes" if tls else "no", ssl_files=ssl_files, port=port,
                      tls_port=tls_port, uid=uid, gid=gid, oauth_mechanisms=oauth_mechanisms,
                      oauth_passdb=oauth_passdb)
    )  # fmt: skip
    server = Dovecot(root, port, tls_port, user, password, cert, _launch(root))
    _wait_for_greeting(server)
    return server


def _launch(root: Path) -> subprocess.Popen:
    command = ["dovecot", "-F", "-c", str(root / "dovecot.conf")]
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_for_greeting(server: Dovecot) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            output = server.process.stdout.read().decode()  # type: ignore[union-attr]
            raise RuntimeError(f"dovecot exited: {output}\n{server.log()}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1) as sock:
                if sock.recv(200).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"dovecot did not greet within 15 s:\n{server.log()}")


def _nobody() -> tuple[int, int]:
    import grp
    import pwd

    return pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
