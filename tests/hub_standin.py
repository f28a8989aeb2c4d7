"""A local stand-in for the Hugging Face Hub's HTTP API, enough for ``snapshot_download``:
repository info, the file tree, and ``resolve`` downloads (HEAD and ranged GET).

``HubStandIn(repos)`` serves ``{"owner/name": folder}`` at one commit each on 127.0.0.1; a
repository named in ``gated`` answers 403 GatedRepo as the Hub does, any other unknown one
404 RepoNotFound. ``downloads`` counts the file bodies sent, so a test can tell a cache hit
from a second download; ``ranges`` lists (file, first byte) of ranged requests. A file named
in ``cut_once`` is sent half and the connection dropped, once, as a flaky network would.
Point ``HF_ENDPOINT`` at ``url``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_INFO = re.compile(r"/api/models/(?P<repo>[^/]+/[^/]+)/revision/(?P<rev>[^/?]+)")
_TREE = re.compile(r"/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/?]+)")
_FILE = re.compile(r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>[^?]+)")


class HubStandIn:
    """A threaded HTTP server on a free port; use as a context manager."""

    def __init__(
        self, repos: dict[str, Path], gated: tuple[str, ...] = (), cut_once: tuple[str, ...] = ()
    ) -> None:
        self.repos = repos
        self.gated = gated
        self.cut_once = set(cut_once)
        self.ranges: list[tuple[str, int]] = []
        self.commits = {r: hashlib.sha1(r.encode()).hexdigest() for r in repos}
        self.downloads: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> HubStandIn:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _files(self, repo: str) -> list[Path]:
        root = self.repos[repo]
        return sorted(p for p in root.rglob("*") if p.is_file())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _error(self, status: int, code: str, message: str) -> None:
                body = json.dumps({"error": message}).encode()
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", message)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _json(self, data: object) -> None:
                body = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _repo(self, repo: str, rev: str) -> bool:
                if repo in hub.gated:
                    self._error(403, "GatedRepo", f"Access to model {repo} is restricted.")
                elif repo not in hub.repos:
                    self._error(404, "RepoNotFound", "Repository not found")
                elif rev not in ("main", hub.commits[repo]):
                    self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
                else:
                    return True
                return False

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = self.path.split("?", 1)[0]
                if (m := _INFO.fullmatch(path)) and self._repo(m["repo"], m["rev"]):
                    root = hub.repos[m["repo"]]
                    self._json({
                        "id": m["repo"], "modelId": m["repo"], "sha": hub.commits[m["repo"]],
                        "private": False, "gated": False,
                        "siblings": [{"rfilename": str(p.relative_to(root))}
                                     for p in hub._files(m["repo"])],
                    })  # fmt: skip
                elif (m := _TREE.fullmatch(path)) and self._repo(m["repo"], m["rev"]):
                    root = hub.repos[m["repo"]]
                    self._json([
                        {"type": "file", "path": str(p.relative_to(root)), "size": p.stat().st_size,
                         "oid": hashlib.sha1(p.read_bytes()).hexdigest()}
                        for p in hub._files(m["repo"])
                    ])  # fmt: skip
                elif (m := _FILE.fullmatch(path)) and self._repo(m["repo"], m["rev"]):
                    self._file(m["repo"], m["file"], body=True)
                elif not (_INFO.fullmatch(path) or _TREE.fullmatch(path) or _FILE.fullmatch(path)):
                    self._error(404, "EntryNotFound", f"no route {path}")

            def do_HEAD(self) -> None:  # noqa: N802
                m = _FILE.fullmatch(self.path.split("?", 1)[0])
                if m is None:
                    self._error(404, "EntryNotFound", "no route")
                elif self._repo(m["repo"], m["rev"]):
                    self._file(m["repo"], m["file"], body=False)

            def _file(self, repo: str, name: str, body: bool) -> None:
                file = hub.repos[repo] / name
                if not file.is_file():
                    self._error(404, "EntryNotFound", f"{name} not found")
                    return
                data = file.read_bytes()
                start = 0
                if r := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", "")):
                    start = int(r[1])
                    hub.ranges.append((name, start))
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", hub.commits[repo])
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if not body:
                    return
                hub.downloads.append(name)
                if name in hub.cut_once:
                    hub.cut_once.discard(name)
                    self.wfile.write(data[start : start + (len(data) - start) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)  # mid-body: the client sees a dropped link
                    return
                self.wfile.write(data[start:])

        return Handler
