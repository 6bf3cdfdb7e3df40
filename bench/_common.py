# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the benchmark harness (bench/bench.py) needs besides the measurements themselves.

- :func:`run`: a child process in its own process group, bounded by a timeout,
  killed (the whole group) on any exception, SIGINT/SIGTERM included;
- :class:`Registries`: loopback distribution registries started and stopped with
  tests/utils/registry.sh, with a private state directory;
- :func:`push_big`: a deterministic single-layer image of any size, pushed with a
  chunked upload (one 16 MiB piece in memory at a time);
- :class:`AccessLog`: request counts from a registry's access log between two offsets;
- :class:`Runner`: ansible-playbook plays of timed steps, with the registries' log
  offsets recorded between the steps, and optionally the module's peak RSS;
- :func:`summary`, :func:`ratios`: median/min/max and pairwise ratios;
- :func:`machine_info`: what the figures were measured on.

Standard library, ``requests`` and ``pyyaml`` only.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import platform
import queue
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import urljoin

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UTILS = os.path.join(REPO_ROOT, 'tests', 'utils')
if UTILS not in sys.path:
    sys.path.insert(0, UTILS)

from synth_image import (  # noqa: E402  pylint: disable=wrong-import-position
    MT_DOCKER_CONFIG,
    MT_DOCKER_LAYER,
    MT_DOCKER_MANIFEST,
    Registry,
    _dumps,
    parse_size,
    push_image,
)

__all__ = ['AccessLog', 'BenchError', 'Registries', 'Registry', 'Runner', 'machine_info', 'module_constant',
           'parse_size', 'push_big', 'push_image', 'ratios', 'run', 'summary', 'REPO_ROOT']

PIECE = 16 << 20
DEFAULT_TIMEOUT = 900


class BenchError(Exception):
    """Something the harness could not do; the message says what."""


# ----------------------------------------------------------------------------------------------
# processes


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def run(args, timeout=DEFAULT_TIMEOUT, env=None, cwd=None, check=True, shell=False, stdin_data=None):
    """Run ``args`` in a new process group; return ``(returncode, stdout, stderr, seconds)``.

    The time is measured around the child only (start to exit). On a timeout or
    any exception (KeyboardInterrupt, SystemExit from a signal) the whole group is
    killed. ``check``: raise BenchError on a non-zero exit.
    """
    if shell:
        args = ['/bin/bash', '-c', 'set -o pipefail; ' + args]
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd,
                            start_new_session=True)
    try:
        out, err = proc.communicate(stdin_data, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise BenchError('timed out after %d s: %s' % (timeout, ' '.join(args)))
    except BaseException:
        _kill_group(proc)
        raise
    seconds = time.perf_counter() - start
    out = out.decode('utf-8', 'replace')
    err = err.decode('utf-8', 'replace')
    if check and proc.returncode != 0:
        raise BenchError('%s exited with %d:\n%s%s' % (' '.join(args), proc.returncode, out[-3000:], err[-3000:]))
    return proc.returncode, out, err, seconds


def install_signal_handlers():
    """Turn SIGTERM (and SIGINT, SIGHUP) into SystemExit, so every ``finally`` runs."""
    def handler(signum, frame):  # pylint: disable=unused-argument
        raise SystemExit(128 + signum)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, handler)


def tool_version(args, words=None):
    """The first line of ``args``' output (its first ``words`` words)."""
    try:
        dummy, out, err, dummy2 = run(args, timeout=30, check=False)
    except (OSError, BenchError):
        return 'not found'
    text = (out or err).strip().splitlines()
    if not text:
        return 'unknown'
    return ' '.join(text[0].split()[:words]) if words else text[0].strip()


# ----------------------------------------------------------------------------------------------
# registries


class Registries:
    """Loopback registries started with tests/utils/registry.sh (REGISTRY_FRESH=1), always stopped."""

    script = os.path.join(UTILS, 'registry.sh')

    def __init__(self, state_dir, python=None):
        self.state_dir = state_dir
        self.env = dict(os.environ, IMAGELAYERS_TEST_STATE=state_dir, REGISTRY_FRESH='1',
                        PYTHON=python or sys.executable)
        self.started = []   # names
        self.hosts = {}     # name -> host:port

    def start(self, name, port):
        os.makedirs(self.state_dir, exist_ok=True)
        self.started.append(name)  # before starting: a half-started one is stopped too
        run([self.script, 'start', name, str(port)], env=self.env, timeout=60)
        self.hosts[name] = '127.0.0.1:%d' % port
        return self.hosts[name]

    def log_path(self, name):
        return os.path.join(self.state_dir, name, 'registry.log')

    def cpu_seconds(self, name):
        """CPU time (user + system) the registry process has used so far, from /proc."""
        with open(os.path.join(self.state_dir, name, 'registry.pid')) as handle:
            pid = int(handle.read().strip())
        with open('/proc/%d/stat' % pid) as handle:
            fields = handle.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / float(os.sysconf('SC_CLK_TCK'))

    def storage(self, name):
        return os.path.join(self.state_dir, name, 'storage')

    def stop_all(self):
        while self.started:
            name = self.started.pop()
            try:
                run([self.script, 'stop', name], env=self.env, timeout=30, check=False)
            except BenchError:
                pass
            shutil.rmtree(self.storage(name), ignore_errors=True)


class DelayLink:
    """A registry farther away: a TCP forwarder on 127.0.0.1 that holds every chunk ``delay`` seconds in each
    direction (a round trip ``2 * delay`` longer), bytes unchanged, so ``Host`` still names the forwarder and
    the registry's ``Location`` headers lead back through it. Each connection has a thread per direction that
    reads and one that sends, in order, once a chunk's time has come. ``close()`` stops it all."""

    def __init__(self, upstream, delay):
        self.upstream = upstream                # 'host:port'
        self.delay = delay
        self.listener = socket.create_server(('127.0.0.1', 0))
        self.host = '127.0.0.1:%d' % self.listener.getsockname()[1]
        self.sockets = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, dummy = self.listener.accept()
            except OSError:
                return
            host, port = self.upstream.rsplit(':', 1)
            try:
                server = socket.create_connection((host, int(port)), timeout=60)
            except OSError:
                client.close()
                continue
            self.sockets.extend([client, server])
            for source, target in ((client, server), (server, client)):
                pending = queue.Queue()
                threading.Thread(target=self._read, args=(source, pending), daemon=True).start()
                threading.Thread(target=self._send, args=(pending, target), daemon=True).start()

    def _read(self, source, pending):
        while True:
            try:
                data = source.recv(1 << 16)
            except OSError:
                data = b''
            pending.put((time.monotonic() + self.delay, data))
            if not data:
                return

    @staticmethod
    def _send(pending, target):
        while True:
            due, data = pending.get()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                if not data:
                    target.shutdown(socket.SHUT_WR)
                    return
                target.sendall(data)
            except OSError:
                return

    def close(self):
        self.closed = True
        for sock in [self.listener] + self.sockets:
            try:
                sock.close()
            except OSError:
                pass


# ----------------------------------------------------------------------------------------------
# images


def big_pieces(size, seed='bench'):
    """The deterministic bytes of the big layer, 16 MiB at a time (each piece seeded on its own)."""
    for index, offset in enumerate(range(0, size, PIECE)):
        yield random.Random('%s|%d|%d' % (seed, size, index)).randbytes(min(PIECE, size - offset))


def big_layer_bytes(size, seed='bench'):
    """The whole big layer in memory (one copy: the pieces are written into one buffer)."""
    buf = bytearray(size)
    view = memoryview(buf)
    offset = 0
    for piece in big_pieces(size, seed):
        view[offset:offset + len(piece)] = piece
        offset += len(piece)
    view.release()
    return buf


def push_big(reg, repo, size, tag='latest', seed='bench'):
    """Push a single-layer schema2 image whose layer is ``size`` deterministic random bytes.

    Chunked upload: POST, one PATCH per 16 MiB piece (hashed on the way), then
    PUT ?digest=. Same bytes, same digests on every run. Returns
    ``{'digest', 'layer', 'config', 'size', 'config_size', 'blob_sizes'}``.
    """
    start_url = reg.url('/v2/%s/blobs/uploads/' % repo)
    response = reg.request('POST', start_url, headers={'Content-Length': '0'})
    if response.status_code != 202 or 'Location' not in response.headers:
        raise BenchError('POST %s: HTTP %d %s' % (start_url, response.status_code, response.text[:300]))
    location = urljoin(start_url, response.headers['Location'])
    hasher = hashlib.sha256()
    offset = 0
    for piece in big_pieces(size, seed):
        hasher.update(piece)
        response = reg.request('PATCH', location, data=piece, headers={
            'Content-Type': 'application/octet-stream', 'Content-Length': str(len(piece)),
            'Content-Range': '%d-%d' % (offset, offset + len(piece) - 1)})
        if response.status_code != 202:
            raise BenchError('PATCH %s: HTTP %d %s' % (location, response.status_code, response.text[:300]))
        location = urljoin(location, response.headers['Location'])
        offset += len(piece)
    layer = 'sha256:' + hasher.hexdigest()
    response = reg.request('PUT', Registry._with_digest(location, layer),  # pylint: disable=protected-access
                           headers={'Content-Length': '0'})
    if response.status_code != 201:
        raise BenchError('PUT %s: HTTP %d %s' % (location, response.status_code, response.text[:300]))
    config = _dumps({'architecture': 'amd64', 'os': 'linux', 'rootfs': {'type': 'layers', 'diff_ids': [layer]}})
    config_digest = reg.push_blob(repo, config)
    manifest = _dumps({'schemaVersion': 2, 'mediaType': MT_DOCKER_MANIFEST,
                       'config': {'mediaType': MT_DOCKER_CONFIG, 'size': len(config), 'digest': config_digest},
                       'layers': [{'mediaType': MT_DOCKER_LAYER, 'size': size, 'digest': layer}]})
    digest = reg.push_manifest(repo, tag, manifest, MT_DOCKER_MANIFEST)
    return {'digest': digest, 'layer': layer, 'config': config_digest, 'size': size, 'config_size': len(config),
            'blob_sizes': [len(config), size]}


def module_constant(module_utils_file, name):
    """A module-level constant of plugins/module_utils/<file>.py, read without importing it."""
    path = os.path.join(REPO_ROOT, 'plugins', 'module_utils', module_utils_file)
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise BenchError('%s not found in %s' % (name, path))


# ----------------------------------------------------------------------------------------------
# access logs

_LINE = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (/v2/\S*) HTTP/[0-9.]+" (\d{3}) (\d+|-)')


def path_kind(path):
    """manifests, blobs, uploads, tags, base (/v2/) or other."""
    path = path.split('?', 1)[0]
    if path in ('/v2/', '/v2'):
        return 'base'
    if '/blobs/uploads' in path:
        return 'uploads'
    if '/blobs/' in path:
        return 'blobs'
    if '/manifests/' in path:
        return 'manifests'
    if path.endswith('/tags/list'):
        return 'tags'
    return 'other'


class AccessLog:
    """Requests a registry logged between two byte offsets of its log."""

    def __init__(self, path):
        self.path = path

    def size(self):
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0

    def settled(self, quiet=0.05, limit=2.0):
        """The log size once it stopped growing for ``quiet`` seconds (at most ``limit`` seconds).

        The registry writes an access-log line after it has sent the response, so the
        client may have finished a moment before the line is there.
        """
        deadline = time.monotonic() + limit
        size = self.size()
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = self.size()
            if now == size:
                return size
            size = now
        return size

    def requests(self, start, end=None):
        """``[(method, path, status, bytes_sent)]`` logged between byte ``start`` and ``end``."""
        with open(self.path, 'rb') as handle:
            handle.seek(start)
            data = handle.read(-1 if end is None else max(0, end - start))
        found = []
        for line in data.decode('utf-8', 'replace').splitlines():
            match = _LINE.search(line)
            if match:
                sent = match.group(4)
                found.append((match.group(1), match.group(2), int(match.group(3)), int(sent) if sent.isdigit() else 0))
        return found

    def count(self, start, end=None):
        return count_requests(self.requests(start, end))


def count_requests(requests_):
    """``{'total', 'by_method', 'by_kind', 'by_method_kind' ('GET blobs': n), 'bytes_sent'}``."""
    by_method = {}
    by_kind = {}
    by_both = {}
    sent = 0
    for method, path, dummy, size in requests_:
        kind = path_kind(path)
        by_method[method] = by_method.get(method, 0) + 1
        by_kind[kind] = by_kind.get(kind, 0) + 1
        key = '%s %s' % (method, kind)
        by_both[key] = by_both.get(key, 0) + 1
        sent += size
    return {'total': len(requests_), 'by_method': by_method, 'by_kind': by_kind, 'by_method_kind': by_both,
            'bytes_sent': sent}


def format_counts(counts):
    """``12 (GET blobs 10, HEAD manifests 1, ...)``, the bytes when any."""
    if counts is None:
        return 'n/a'
    parts = ', '.join('%s %d' % (k, v) for k, v in sorted(counts['by_method_kind'].items()))
    text = '%d (%s)' % (counts['total'], parts) if parts else '0'
    if counts['bytes_sent']:
        text += ', %s sent' % human_bytes(counts['bytes_sent'])
    return text


def human_bytes(count):
    for unit, scale in (('GiB', 1 << 30), ('MiB', 1 << 20), ('KiB', 1 << 10)):
        if count >= scale:
            return '%.1f %s' % (count / float(scale), unit)
    return '%d B' % count


# ----------------------------------------------------------------------------------------------
# ansible-playbook

RSS_WRAPPER = '''#!%(python)s
# Runs the real interpreter and records the peak RSS and the CPU time (user + system) of the module
# process, and which module it was.
import os, resource, subprocess, sys
code = subprocess.call([%(python)r] + sys.argv[1:])
label = os.path.basename(sys.argv[1]) if len(sys.argv) > 1 else '-'
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(%(out)r, 'a') as f:
    f.write('%%d %%s %%.4f\\n' %% (usage.ru_maxrss, label, usage.ru_utime + usage.ru_stime))
sys.exit(code)
'''


class Runner:
    """Runs plays of timed steps with ansible-playbook against this checkout of the collection.

    A temporary ANSIBLE_COLLECTIONS_PATH holds ansible_collections/imagelayers/registry -> the
    repository. Between every two steps a ``set_fact`` records the time and the size of each
    registry access log, so each step gets its duration and its own requests.
    """

    def __init__(self, workdir, python, logs, playbook_bin=None, timeout=DEFAULT_TIMEOUT):
        self.workdir = workdir
        self.python = python
        self.logs = logs            # [AccessLog], in a fixed order
        self.timeout = timeout
        collections = os.path.join(workdir, 'collections', 'ansible_collections', 'imagelayers')
        os.makedirs(collections, exist_ok=True)
        link = os.path.join(collections, 'registry')
        if not os.path.islink(link):
            os.symlink(REPO_ROOT, link)
        self.rss_file = os.path.join(workdir, 'rss.txt')
        self.wrapper = os.path.join(workdir, 'python-rss')
        with open(self.wrapper, 'w') as handle:
            handle.write(RSS_WRAPPER % {'python': python, 'out': self.rss_file})
        os.chmod(self.wrapper, 0o755)
        self.playbook_bin = playbook_bin or os.path.join(os.path.dirname(python), 'ansible-playbook')
        if not os.path.exists(self.playbook_bin):
            self.playbook_bin = shutil.which('ansible-playbook')
        if not self.playbook_bin:
            raise BenchError('ansible-playbook not found next to %s nor on PATH' % python)
        self.plays = 0

    def _mark(self, index):
        files = ' '.join("'%s'" % log.path for log in self.logs)
        command = 'date +%%s.%%N; stat -c %%s %s' % files if files else 'date +%s.%N'
        return {'name': 'mark %d' % index,
                'ansible.builtin.set_fact': {'_m%d' % index: "{{ lookup('pipe', %s) }}" % json.dumps(command)}}

    def play(self, steps, rss=False):
        """Run ``steps`` (``[(name, {module: args})]``) as one play.

        Returns ``[{'name', 'seconds', 'result', 'logs': [(start, end) per log]}]`` and, with
        ``rss``, a list ``[(kib, module_file, cpu_seconds)]``: every module process's peak RSS and
        CPU time.
        """
        self.plays += 1
        out = os.path.join(self.workdir, 'out-%d.json' % self.plays)
        tasks = [self._mark(0)]
        for index, (name, task) in enumerate(steps, 1):
            entry = {'name': name}
            entry.update(task)
            entry['register'] = '_r%d' % index
            tasks.append(entry)
            tasks.append(self._mark(index))
        marks = ', '.join('_m%d' % i for i in range(len(steps) + 1))
        results = ', '.join('_r%d' % i for i in range(1, len(steps) + 1))
        tasks.append({'name': 'write the results', 'ansible.builtin.copy': {
            'dest': out, 'mode': '0600',
            'content': '{{ {"marks": [%s], "results": [%s]} | to_json }}' % (marks, results)}})
        playbook = os.path.join(self.workdir, 'play-%d.yml' % self.plays)
        with open(playbook, 'w') as handle:
            json.dump([{'name': 'bench', 'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}], handle,
                      indent=1)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(self.workdir, 'collections'),
                   ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
                   ANSIBLE_NOCOLOR='1', ANSIBLE_RETRY_FILES_ENABLED='false',
                   ANSIBLE_PYTHON_INTERPRETER=self.wrapper if rss else self.python)
        env.pop('ANSIBLE_CONFIG', None)
        if os.path.exists(self.rss_file):
            os.unlink(self.rss_file)
        code, stdout, stderr, dummy = run([self.playbook_bin, '-i', 'localhost,', '-c', 'local', playbook],
                                          env=env, cwd=self.workdir, timeout=self.timeout, check=False)
        if code != 0:
            raise BenchError('ansible-playbook failed (%s):\n%s%s'
                             % (', '.join(n for n, t in steps), stdout[-4000:], stderr[-2000:]))
        with open(out) as handle:
            data = json.load(handle)
        ends = [log.settled() for log in self.logs]
        marks = []
        for text in data['marks']:
            fields = str(text).split()
            marks.append((float(fields[0]), [int(f) for f in fields[1:]]))
        outcome = []
        for index, (name, dummy) in enumerate(steps):
            start, stop = marks[index], marks[index + 1]
            last = index == len(steps) - 1
            spans = [(start[1][i], ends[i] if last else stop[1][i]) for i in range(len(self.logs))]
            outcome.append({'name': name, 'seconds': stop[0] - start[0], 'result': data['results'][index],
                            'logs': spans})
        if not rss:
            return outcome, None
        peaks = []
        with open(self.rss_file) as handle:
            for line in handle:
                fields = line.split()
                if fields:
                    peaks.append((int(fields[0]), fields[1], float(fields[2])))
        return outcome, peaks


# ----------------------------------------------------------------------------------------------
# statistics


def summary(samples):
    """``(median, min, max)`` of the samples, or Nones."""
    values = [s for s in samples if s is not None]
    if not values:
        return None, None, None
    return statistics.median(values), min(values), max(values)


def ratios(numerators, denominators):
    """Pairwise ratios, round by round (rounds where either is missing are skipped)."""
    return [a / b for a, b in zip(numerators, denominators) if a is not None and b]


# ----------------------------------------------------------------------------------------------
# machine


def _first_match(path, pattern):
    try:
        with open(path) as handle:
            for line in handle:
                match = re.match(pattern, line)
                if match:
                    return match.group(1).strip()
    except OSError:
        pass
    return None


def machine_info(python):
    mem_kib = _first_match('/proc/meminfo', r'MemTotal:\s+(\d+)')
    try:
        dummy, ansible_version, dummy2, dummy3 = run(
            [python, '-c', 'from ansible.release import __version__; print(__version__)'], timeout=60)
        ansible_version = ansible_version.strip()
    except (OSError, BenchError):
        ansible_version = 'unknown'
    try:
        dummy, py_version, dummy2, dummy3 = run([python, '-c', 'import platform; print(platform.python_version())'],
                                                timeout=60)
        py_version = py_version.strip()
    except (OSError, BenchError):
        py_version = 'unknown'
    return {
        'cpu': _first_match('/proc/cpuinfo', r'model name\s*:\s*(.*)') or platform.processor() or 'unknown',
        'cores': os.cpu_count(),
        'ram_gib': round(int(mem_kib) / 1024.0 / 1024.0, 1) if mem_kib else None,
        'kernel': '%s %s' % (platform.system(), platform.release()),
        'os': (_first_match('/etc/os-release', r'PRETTY_NAME="?([^"]*)"?') or 'unknown'),
        'python': py_version,
        'ansible_core': ansible_version,
        'docker_registry': tool_version(['docker-registry', '--version']),
        'skopeo': tool_version(['skopeo', '--version']),
        'curl': tool_version(['curl', '--version'], words=2),
        'openssl': tool_version(['openssl', 'version'], words=2),
        'loadavg_start': list(os.getloadavg()),
    }


def make_workdir(base):
    os.makedirs(base, exist_ok=True)
    return tempfile.mkdtemp(prefix='run-', dir=base)
