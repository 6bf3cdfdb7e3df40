# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lifecycle and logging every loopback test server under tests/utils shares.

Private to the test harness. The servers (fault_proxy, scheme_trap, slow_server, paginating_proxy,
token_server, lying_registry) and auth_servers import it as ``_daemon``: they run as scripts, so
their own directory is first on ``sys.path``.

A server started with ``start`` runs detached in its own session (a test's ``command`` task
returns at once, and the server survives it) and tells its port through a file in its state
directory; ``stop`` ends it by the pid recorded there, politely first and within a bound.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

PIDFILE = 'pid'
PORTFILE = 'port'


def publish(path: str, text: str) -> None:
    """Write a file in one rename, so that a reader polling for it never sees it half written."""
    with open(path + '.tmp', 'w') as handle:
        handle.write(text)
    os.replace(path + '.tmp', path)


class AppendLog:
    """A request log: one line per request, appended under a lock (handlers run in threads,
    and the tests read the file while the server still runs)."""

    def __init__(self, path: str, create: bool = False) -> None:
        self.path = path
        self.lock = threading.Lock()
        if create:
            open(path, 'a').close()

    def line(self, text: str) -> None:
        with self.lock, open(self.path, 'a') as handle:
            handle.write(text + '\n')

    def entry(self, entry: dict, sort_keys: bool = True) -> None:
        self.line(json.dumps(entry, sort_keys=sort_keys))


def respond(handler, status: int, headers: dict, payload: bytes = b'') -> None:
    """Answer a request of a ``BaseHTTPRequestHandler`` with a body of known length (a HEAD gets
    the headers only, Content-Length included)."""
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, str(value))
    handler.send_header('Content-Length', str(len(payload)))
    handler.end_headers()
    if handler.command != 'HEAD':
        handler.wfile.write(payload)


def read_entries(path: str) -> list:
    """The JSON lines of a request log as one list; empty when nothing was logged yet."""
    try:
        with open(path) as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except FileNotFoundError:
        return []


def serve(server, lifetime: float | None = None, poll_interval: float = 0.2) -> None:
    """Serve until SIGTERM or until ``lifetime`` seconds have passed, should a test run be killed
    before it stops the server. ``shutdown`` blocks until ``serve_forever`` returns, so it runs in
    a thread of its own (a signal handler runs in the serving thread)."""
    signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=server.shutdown, daemon=True).start())
    if lifetime is not None:
        timer = threading.Timer(lifetime, server.shutdown)
        timer.daemon = True
        timer.start()
    server.serve_forever(poll_interval=poll_interval)
    server.server_close()


def spawn(argv: list, output: str, pidfile: str, append: bool = False) -> subprocess.Popen:
    """Start ``argv`` in a session of its own, its output in ``output``, its pid in ``pidfile``."""
    with open(output, 'ab' if append else 'wb') as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    with open(pidfile, 'w') as handle:
        handle.write(str(process.pid))
    return process


def _read_int(path: str) -> int | None:
    try:
        with open(path) as handle:
            return int(handle.read())
    except (OSError, ValueError):
        return None


def _wait_for_port(process: subprocess.Popen, portfile: str, seconds: float) -> int | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        port = _read_int(portfile)
        if port is not None:
            return port
        time.sleep(0.05)
    return None


def start(tool: str, state: str, argv: list, output: str, fresh: tuple = (), seconds: float = 15,
          append: bool = False, failure: str | None = None) -> tuple[int, int]:
    """Start a server (``argv``: its ``serve`` command, which writes STATE/port once it listens)
    after stopping the one a previous run left, and return ``(port, pid)``.

    ``fresh`` names files of the state directory removed first. When the server does not start,
    it is ended and the tool exits with ``failure``, or a message with the server's output."""
    os.makedirs(state, exist_ok=True)
    stop(state)
    for name in (PORTFILE,) + tuple(fresh):
        try:
            os.unlink(os.path.join(state, name))
        except FileNotFoundError:
            pass
    out_path = os.path.join(state, output)
    process = spawn(argv, out_path, os.path.join(state, PIDFILE), append=append)
    port = _wait_for_port(process, os.path.join(state, PORTFILE), seconds)
    if port is not None:
        return port, process.pid
    exited = process.poll() is not None
    stop(state)
    if failure is None and exited:
        with open(out_path) as handle:
            failure = '%s: exited early: %s' % (tool, handle.read())
    raise SystemExit(failure or '%s: did not start within %d s' % (tool, seconds))


def _end(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
        for dummy in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
            _reap(pid)
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass  # gone (or, after a reboot, no longer ours)


def _reap(pid: int) -> None:
    """Collect a child of this process that has exited, which would otherwise stay a zombie
    that answers ``kill(pid, 0)``; a server started by another process is not ours to reap."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(state: str, pidfile: str = PIDFILE) -> int | None:
    """End the server whose pid STATE/``pidfile`` records: SIGTERM, up to 5 s, then SIGKILL.
    Return its pid, or None when none was recorded."""
    path = os.path.join(state, pidfile)
    pid = _read_int(path)
    if pid is None:
        return None
    _end(pid)
    os.unlink(path)
    return pid
