"""Fetching a folder's new messages: batches bounded in count and bytes (``RFC822.SIZE``
asked first), huge messages cut to their header and the start of their body, the next
batch fetched while this one is parsed, and parsing in worker processes for a large sync."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from panza_core import threads
from sync import extract

MAX_FETCH_BYTES = 25 * 2**20  # larger messages are fetched as header + start of body
HEADER_BYTES = 2**20  # of such a message's header
PARTIAL_BODY_BYTES = 256 * 2**10
BATCH_BYTES = 32 * 2**20  # raw bytes of one fetched batch (by RFC822.SIZE, known beforehand)
SIZE_QUERY = 1000  # UIDs whose RFC822.SIZE is asked in one FETCH


PARALLEL_FROM = 2000  # messages; below this, starting worker processes costs more than it saves


def _extract_job(job: tuple) -> extract.Message | extract.Skip | None:
    raw, addresses, min_words, source, folder, received = job
    if raw is None:
        return None
    return extract.extract(
        raw, addresses, min_words, source=source, folder=folder, keep_received=received
    )


@contextlib.contextmanager
def extractor(count: int) -> Iterator[Callable[[list[tuple]], list]]:
    """A function that extracts a batch of messages: in worker processes for a large sync
    (parsing is CPU-bound Python: the stdlib parser even compiles a regex per multipart
    boundary), in this process otherwise. Workers are spawned, not forked, so a sync started
    from the TUI's threads cannot inherit a held lock."""
    cores = threads.available_cores()
    if count < PARALLEL_FROM or cores < 2:
        yield lambda jobs: [_extract_job(job) for job in jobs]
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(cores, 4), mp_context=context) as pool:
        yield lambda jobs: list(pool.map(_extract_job, jobs, chunksize=32))


def _fetch(client: Any, batch: list[tuple[int, int]]) -> dict:
    """``{uid: {b"BODY[]": raw}}`` for ``batch`` (``(uid, RFC822.SIZE)`` pairs). A message
    larger than ``MAX_FETCH_BYTES`` (attachments) comes as the first ``HEADER_BYTES`` of its
    header and the first ``PARTIAL_BODY_BYTES`` of its body, where the text part is: one huge
    message cannot stall every sync or fill the memory, and its text is kept."""
    big = sorted(uid for uid, size in batch if size > MAX_FETCH_BYTES)
    small = [uid for uid, size in batch if size <= MAX_FETCH_BYTES]
    data = dict(client.fetch(small, ["BODY.PEEK[]"])) if small else {}
    if big:
        parts = [f"BODY.PEEK[HEADER]<0.{HEADER_BYTES}>", f"BODY.PEEK[TEXT]<0.{PARTIAL_BODY_BYTES}>"]
        for uid, item in client.fetch(big, parts).items():
            header = next((v for k, v in item.items() if k.startswith(b"BODY[HEADER]")), b"")
            body = next((v for k, v in item.items() if k.startswith(b"BODY[TEXT]")), b"")
            header = header or b""
            if not header.endswith(b"\r\n\r\n"):  # cut short: end the header block
                header = header.rpartition(b"\n")[0] + b"\r\n\r\n"
            data[uid] = {b"BODY[]": header + (body or b"")}
    return data


def batches(
    sizes: list[tuple[int, int]], count: int, limit: int | None = None
) -> Iterator[list[tuple[int, int]]]:
    """``(uid, size)`` pairs in order, in batches of at most ``count`` messages whose
    fetched bytes add up to at most ``limit`` (default ``BATCH_BYTES``; a message counts as
    what ``_fetch`` asks for: its size, or ``HEADER_BYTES + PARTIAL_BODY_BYTES`` above
    ``MAX_FETCH_BYTES``). A message larger than ``limit`` is a batch of its own."""
    limit = BATCH_BYTES if limit is None else limit
    batch: list[tuple[int, int]] = []
    used = 0
    for uid, size in sizes:
        cost = size if size <= MAX_FETCH_BYTES else HEADER_BYTES + PARTIAL_BODY_BYTES
        if batch and (len(batch) >= count or used + cost > limit):
            yield batch
            batch, used = [], 0
        batch.append((uid, size))
        used += cost
    if batch:
        yield batch


def _sizes(client: Any, uids: list[int]) -> Iterator[tuple[int, int]]:
    """``(uid, RFC822.SIZE)`` for ``uids`` in order, asked ``SIZE_QUERY`` UIDs at a time
    (a UID the server no longer has is left out)."""
    for start in range(0, len(uids), SIZE_QUERY):
        chunk = uids[start : start + SIZE_QUERY]
        answer = client.fetch(chunk, ["RFC822.SIZE"])
        for uid in chunk:
            if uid in answer:
                yield uid, int(answer[uid].get(b"RFC822.SIZE", 0))


def prefetched(client: Any, uids: list[int], batch: int) -> Iterator[tuple[list[int], dict]]:
    """(UIDs, fetched data) batch by batch (``batches``: at most ``batch`` messages and
    ``BATCH_BYTES``), fetching the next batch while the caller parses this one: the server
    and the network work while we parse. At most three batches are in memory at once (one
    parsed, one waiting, one arriving): raw mail is bounded by ``3 * BATCH_BYTES`` whatever
    the folder holds. Only the fetching thread touches the connection; its errors are raised
    here."""
    chunks: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def fetch() -> None:
        try:
            for chunk in batches(list(_sizes(client, uids)), batch):
                if stop.is_set():
                    return
                chunks.put(([uid for uid, _ in chunk], _fetch(client, chunk)))
            chunks.put(None)
        except BaseException as exc:  # handed to the consumer, which raises it
            chunks.put(exc)

    worker = threading.Thread(target=fetch, daemon=True, name="imap-fetch")
    worker.start()
    try:
        while (item := chunks.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # let a pending put finish, so the thread can end
            try:
                chunks.get(timeout=0.1)
            except queue.Empty:
                pass
