"""A network guard for the processes a test starts: put this folder on ``PYTHONPATH`` and
every Python process in the tree (the CLI, llama.cpp's converters) imports it at start-up.

Connections and name lookups other than loopback are refused (``OSError`` ENETUNREACH, as
on a machine with no network) and each is appended to the file ``PANZA_NETGUARD_LOG``
names, as is, at exit, each watched module the process imported (``bitsandbytes``, and
``kernels``, which fetches kernels from the Hugging Face Hub).
"""

import atexit
import errno
import ipaddress
import os
import socket
import sys

_LOG = os.environ.get("PANZA_NETGUARD_LOG", "")
_WATCHED = ("bitsandbytes", "kernels")


def _record(line: str) -> None:
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(f"{os.getpid()} {line}\n")


def _loopback(host) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name other than localhost: a lookup would leave the machine


def _refused(what: str) -> OSError:
    _record(what)
    return OSError(errno.ENETUNREACH, f"network refused by the test's guard: {what}")


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_getaddrinfo = socket.getaddrinfo


def _checked(sock, address) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
        raise _refused(f"connect {address[0]}:{address[1]}")


def connect(self, address):
    _checked(self, address)
    return _connect(self, address)


def connect_ex(self, address):
    _checked(self, address)
    return _connect_ex(self, address)


def getaddrinfo(host, *args, **kwargs):
    if not _loopback(host.decode() if isinstance(host, bytes) else host):
        raise socket.gaierror(socket.EAI_NONAME, str(_refused(f"lookup {host}")))
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
socket.getaddrinfo = getaddrinfo


@atexit.register
def _imported() -> None:
    for name in _WATCHED:
        if sys.modules.get(name) is not None:
            _record(f"imported {name}")
