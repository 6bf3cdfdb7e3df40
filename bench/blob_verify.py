#!/usr/bin/env python
"""Benchmark of blob_verify against a loopback registry (issue 3, "Performance").

Measures, in one run, on the same machine and registry:

1. hashlib sha256 speed and loopback download speed (curl to /dev/null, and a
   Python stream without hashing; the faster one counts);
2. blob_verify's own throughput on a 256 MiB layer (its ``elapsed``):
   floor >= 0.65 x min(sha256 speed, loopback speed);
3. the whole task's time minus an ``ansible.builtin.ping`` task's time:
   floor <= 0.8 x the time of ``curl -s URL | openssl dgst -sha256``;
4. the module process's peak RSS while verifying the 256 MiB layer, minus its
   peak RSS verifying a tiny image: floor < 64 MiB;
5. a 30-layer image with ``workers: 1`` and with ``workers: 4``: more workers
   must be faster.

Usage (starts its own registry with tests/utils/registry.sh unless --registry is given)::

    bench/blob_verify.py --port 5300                 # start a registry named bench-blob on 127.0.0.1:5300
    bench/blob_verify.py --registry 127.0.0.1:5300   # use a running registry
    bench/blob_verify.py --size 256M --repeat 5 --json results.json

Prints a table and exits 1 when a floor is missed. Needs ansible-playbook, curl and openssl.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, 'tests', 'utils'))

import requests  # noqa: E402

from synth_image import (  # noqa: E402
    MT_DOCKER_CONFIG,
    MT_DOCKER_LAYER,
    MT_DOCKER_MANIFEST,
    Registry,
    _dumps,
    parse_size,
    push_image,
)

RSS_WRAPPER = '''#!%(python)s
# Runs the real interpreter and records the peak RSS of the module process.
import os, resource, subprocess, sys
code = subprocess.call([%(python)r] + sys.argv[1:])
with open(%(out)r, 'a') as f:
    f.write('%%d\\n' %% resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(code)
'''

PLAYBOOK = '''
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.set_fact: {t0: "{{ lookup('pipe', 'date +%%s.%%N') }}"}
    - ansible.builtin.ping:
    - ansible.builtin.set_fact: {t1: "{{ lookup('pipe', 'date +%%s.%%N') }}"}
    - imagelayers.registry.blob_verify:
        image: "%(image)s"
        workers: %(workers)d
      register: bv
    - ansible.builtin.set_fact: {t2: "{{ lookup('pipe', 'date +%%s.%%N') }}"}
    # The same again, now that the controller has built both module payloads once.
    - ansible.builtin.ping:
    - ansible.builtin.set_fact: {t3: "{{ lookup('pipe', 'date +%%s.%%N') }}"}
    - imagelayers.registry.blob_verify:
        image: "%(image)s"
        workers: %(workers)d
      register: bv2
      when: %(warm)s
    - ansible.builtin.set_fact: {t4: "{{ lookup('pipe', 'date +%%s.%%N') }}"}
    - ansible.builtin.copy:
        dest: "%(out)s"
        content: "{{ {'ping': (t1 | float) - (t0 | float), 'task': (t2 | float) - (t1 | float),
                     'ping_warm': (t3 | float) - (t2 | float), 'task_warm': (t4 | float) - (t3 | float),
                     'elapsed': bv.elapsed, 'bytes': bv.bytes_verified, 'count': bv.verified_count} | to_json }}"
'''


def push_big(reg, repo, size):
    """A single-layer image whose layer is ``size`` deterministic random bytes."""
    rnd = random.Random('bench|%d' % size)
    parts = []
    left = size
    while left:
        n = min(left, 16 << 20)
        parts.append(rnd.randbytes(n))
        left -= n
    data = b''.join(parts)
    del parts
    layer = reg.push_blob(repo, data)
    config = _dumps({'architecture': 'amd64', 'os': 'linux', 'rootfs': {'type': 'layers', 'diff_ids': [layer]}})
    config_digest = reg.push_blob(repo, config)
    manifest = _dumps({'schemaVersion': 2, 'mediaType': MT_DOCKER_MANIFEST,
                       'config': {'mediaType': MT_DOCKER_CONFIG, 'size': len(config), 'digest': config_digest},
                       'layers': [{'mediaType': MT_DOCKER_LAYER, 'size': len(data), 'digest': layer}]})
    reg.push_manifest(repo, 'latest', manifest, MT_DOCKER_MANIFEST)
    return layer, len(data)


def best(samples):
    return min(samples)


def hash_speed(size):
    block = os.urandom(1 << 20)
    times = []
    for dummy in range(3):
        hasher = hashlib.sha256()
        start = time.perf_counter()
        for dummy2 in range(size >> 20):
            hasher.update(block)
        times.append(time.perf_counter() - start)
    return size / best(times)


def timed_shell(command, repeat=1):
    times = []
    for dummy in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, shell=True, check=True, stdout=subprocess.DEVNULL, executable='/bin/bash')
        times.append(time.perf_counter() - start)
    return times


def python_download_speed(url, size, repeat):
    session = requests.Session()
    times = []
    for dummy in range(repeat):
        response = session.get(url, stream=True, headers={'Accept-Encoding': 'identity'})
        start = time.perf_counter()
        read = response.raw.read
        while read(1 << 20, decode_content=False):
            pass
        times.append(time.perf_counter() - start)
        response.close()
    return size / best(times)


class Runner:
    def __init__(self, workdir, python):
        self.workdir = workdir
        self.python = python
        collections = os.path.join(workdir, 'collections', 'ansible_collections', 'imagelayers')
        os.makedirs(collections)
        os.symlink(REPO_ROOT, os.path.join(collections, 'registry'))
        self.rss_file = os.path.join(workdir, 'rss.txt')
        self.wrapper = os.path.join(workdir, 'python-rss')
        with open(self.wrapper, 'w') as handle:
            handle.write(RSS_WRAPPER % {'python': python, 'out': self.rss_file})
        os.chmod(self.wrapper, 0o755)
        self.playbook_bin = os.path.join(os.path.dirname(python), 'ansible-playbook')
        if not os.path.exists(self.playbook_bin):
            self.playbook_bin = shutil.which('ansible-playbook')

    def run(self, image, workers=4, rss=False, warm=False):
        out = os.path.join(self.workdir, 'out.json')
        playbook = os.path.join(self.workdir, 'play.yml')
        with open(playbook, 'w') as handle:
            handle.write(PLAYBOOK % {'image': image, 'workers': workers, 'out': out, 'warm': 'true' if warm else 'false'})
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(self.workdir, 'collections'),
                   ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
                   ANSIBLE_PYTHON_INTERPRETER=self.wrapper if rss else self.python)
        if rss and os.path.exists(self.rss_file):
            os.unlink(self.rss_file)
        proc = subprocess.run([self.playbook_bin, '-i', 'localhost,', '-c', 'local', playbook], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        if proc.returncode != 0:
            sys.exit('ansible-playbook failed:\n' + proc.stdout[-4000:])
        with open(out) as handle:
            result = json.load(handle)
        if rss:
            with open(self.rss_file) as handle:
                # Every module run of the play went through the wrapper: the largest is blob_verify's.
                result['rss_kib'] = max(int(line) for line in handle if line.strip())
        return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--registry', help='host:port of a running registry (default: start one)')
    parser.add_argument('--port', type=int, default=5300, help='port for the registry this script starts')
    parser.add_argument('--size', default='256M', help='size of the big layer (default 256M)')
    parser.add_argument('--repeat', type=int, default=3, help='runs per measurement; the best counts')
    parser.add_argument('--python', default=sys.executable, help='interpreter for the module')
    parser.add_argument('--json', help='also write the figures to this file')
    args = parser.parse_args(argv)
    size = parse_size(args.size)

    started = None
    state = None
    if args.registry:
        host = args.registry
    else:
        state = tempfile.mkdtemp(prefix='bench-blob-state-')
        env = dict(os.environ, IMAGELAYERS_TEST_STATE=state, PYTHON=args.python)
        subprocess.run([os.path.join(REPO_ROOT, 'tests', 'utils', 'registry.sh'), 'start', 'bench-blob',
                        str(args.port)], env=env, check=True)
        started = env
        host = '127.0.0.1:%d' % args.port
    workdir = tempfile.mkdtemp(prefix='bench-blob-')
    try:
        reg = Registry(host)
        layer, size = push_big(reg, 'bench/big', size)
        push_image(reg, 'bench/many', 'latest', kind='schema2', layer_sizes=[256 + 64 * i for i in range(30)])
        push_image(reg, 'bench/tiny', 'latest', kind='schema2', layer_sizes=[1024])
        url = 'http://%s/v2/bench/big/blobs/%s' % (host, layer)
        runner = Runner(workdir, args.python)

        figures = {'size': size, 'repeat': args.repeat, 'loadavg_start': os.getloadavg()[0]}
        # Interleaved rounds, so that every figure sees the same machine load; the best of each counts.
        samples = {'sha256': [], 'curl_dl': [], 'python_dl': [], 'curl_sha': [], 'curl_sha256sum': [], 'big': []}
        for dummy in range(args.repeat):
            samples['sha256'].append(hash_speed(size))
            samples['curl_dl'].append(size / best(timed_shell('curl -s -o /dev/null %s' % url, 1)))
            samples['python_dl'].append(python_download_speed(url, size, 1))
            samples['curl_sha'].append(best(timed_shell('set -o pipefail; curl -s %s | openssl dgst -sha256' % url, 1)))
            samples['curl_sha256sum'].append(best(timed_shell('set -o pipefail; curl -s %s | sha256sum' % url, 1)))
            samples['big'].append(runner.run('%s/bench/big:latest' % host, warm=True))
        figures['sha256_Bps'] = max(samples['sha256'])
        figures['curl_download_Bps'] = max(samples['curl_dl'])
        figures['python_download_Bps'] = max(samples['python_dl'])
        figures['loopback_Bps'] = max(figures['curl_download_Bps'], figures['python_download_Bps'])
        figures['curl_openssl_s'] = best(samples['curl_sha'])
        figures['curl_sha256sum_s'] = best(samples['curl_sha256sum'])
        big = samples['big']
        figures['module_elapsed_s'] = best([r['elapsed'] for r in big])
        figures['module_Bps'] = big[0]['bytes'] / figures['module_elapsed_s']
        figures['task_minus_ping_s'] = best([r['task'] - r['ping'] for r in big])
        figures['task_s'] = best([r['task'] for r in big])
        figures['ping_s'] = best([r['ping'] for r in big])
        figures['warm_task_minus_ping_s'] = best([r['task_warm'] - r['ping_warm'] for r in big])

        rss_big = runner.run('%s/bench/big:latest' % host, rss=True)['rss_kib']
        rss_tiny = runner.run('%s/bench/tiny:latest' % host, rss=True)['rss_kib']
        figures['rss_big_kib'] = rss_big
        figures['rss_tiny_kib'] = rss_tiny

        many = {}
        for workers in (1, 4):
            runs = [runner.run('%s/bench/many:latest' % host, workers=workers) for dummy in range(max(3, args.repeat))]
            assert all(r['count'] == 32 for r in runs)
            many[workers] = statistics.median([r['elapsed'] for r in runs])
        figures['many_workers1_s'] = many[1]
        figures['many_workers4_s'] = many[4]
        figures['loadavg_end'] = os.getloadavg()[0]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if started is not None:
            subprocess.run([os.path.join(REPO_ROOT, 'tests', 'utils', 'registry.sh'), 'stop', 'bench-blob'],
                           env=started, check=False)
            shutil.rmtree(state, ignore_errors=True)

    limit = min(figures['sha256_Bps'], figures['loopback_Bps'])
    checks = [
        ('in-module download+verify >= 0.65 x min(sha256, loopback)',
         '%.2f GB/s vs floor %.2f GB/s (sha256 %.2f, loopback %.2f [curl %.2f, python %.2f])' % (
             figures['module_Bps'] / 1e9, 0.65 * limit / 1e9, figures['sha256_Bps'] / 1e9,
             figures['loopback_Bps'] / 1e9, figures['curl_download_Bps'] / 1e9, figures['python_download_Bps'] / 1e9),
         figures['module_Bps'] >= 0.65 * limit),
        ('task - ping <= 0.8 x (curl | openssl dgst -sha256)',
         '%.3f s (task %.3f - ping %.3f) vs 0.8 x %.3f s = %.3f s' % (
             figures['task_minus_ping_s'], figures['task_s'], figures['ping_s'], figures['curl_openssl_s'],
             0.8 * figures['curl_openssl_s']),
         figures['task_minus_ping_s'] <= 0.8 * figures['curl_openssl_s']),
        ('peak RSS growth < 64 MiB',
         '%.1f MiB (%d MiB layer %.1f MiB, tiny image %.1f MiB)' % (
             (rss_big - rss_tiny) / 1024.0, size >> 20, rss_big / 1024.0, rss_tiny / 1024.0),
         rss_big - rss_tiny < 64 * 1024),
        ('30 layers: workers 4 faster than workers 1',
         'median %.3f s vs %.3f s' % (figures['many_workers4_s'], figures['many_workers1_s']),
         figures['many_workers4_s'] < figures['many_workers1_s']),
    ]
    print('context: curl | sha256sum %.3f s (%.2f GB/s); curl | openssl dgst -sha256 %.3f s (%.2f GB/s); '
          'module elapsed %.3f s; warm (second) task - ping %.3f s'
          % (figures['curl_sha256sum_s'], size / figures['curl_sha256sum_s'] / 1e9, figures['curl_openssl_s'],
             size / figures['curl_openssl_s'] / 1e9, figures['module_elapsed_s'], figures['warm_task_minus_ping_s']))
    width = max(len(c[0]) for c in checks)
    failed = False
    for name, detail, ok in checks:
        print('%-*s  %s  %s' % (width, name, 'PASS' if ok else 'FAIL', detail))
        failed = failed or not ok
    print('load average (1 min) at start %.2f, at end %.2f on %d CPUs; figures are the best of %d interleaved rounds'
          % (figures['loadavg_start'], figures['loadavg_end'], os.cpu_count() or 0, args.repeat))
    figures['passed'] = not failed
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(figures, handle, indent=2, sort_keys=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
