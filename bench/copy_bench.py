#!/usr/bin/env python
"""Benchmark of the copy module between loopback registries (issue 5, "Performance").

Measures, in one run, on the same machine and registries:

1. a cross-repository copy inside one registry: floor: 0 blob bytes transferred
   (every blob mounted); its task time next to ``skopeo copy`` of the same image
   inside the registry;
2. a single-layer image (default 256 MiB) copied between two loopback
   registries, the whole Ansible task (module payload, process start, copy)
   against ``skopeo copy`` of the same image in the same run, alternating, each
   into a fresh repository: floor: best task time <= best skopeo time (skopeo's blob-info
   cache is removed before each of its runs, else it mounts from its previous copy: run as root);
3. a 50-layer image copied with ``workers: 4`` and with ``workers: 1``, each
   into a fresh repository: floor: more workers are faster.

Usage (starts two registries with tests/utils/registry.sh unless --src/--dest are given)::

    bench/copy_bench.py --ports 5300,5301
    bench/copy_bench.py --src 127.0.0.1:5500 --dest 127.0.0.1:5501 --size 256M --repeat 3 --json out.json

Prints a table and exits 1 when a floor is missed. Needs ansible-playbook and skopeo.
"""

from __future__ import annotations

import sys
import os

# This file is named copy.py: keep its directory off sys.path, or it would shadow the standard copy module.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, 'tests', 'utils'))

from synth_image import (  # noqa: E402
    MT_DOCKER_CONFIG,
    MT_DOCKER_LAYER,
    MT_DOCKER_MANIFEST,
    Registry,
    _dumps,
    parse_size,
    push_image,
)

PLAYBOOK = '''
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.set_fact: {t1: "{{ lookup('pipe', 'date +%%s.%%N') }}"}
    - imagelayers.registry.copy:
        src: "%(src)s"
        dest: "%(dest)s"
        workers: %(workers)d
      register: copied
    - ansible.builtin.set_fact: {t2: "{{ lookup('pipe', 'date +%%s.%%N') }}"}
    - ansible.builtin.copy:
        dest: "%(out)s"
        content: "{{ {'task': (t2 | float) - (t1 | float), 'result': copied} | to_json }}"
'''


def push_big(reg, repo, size):
    """A single-layer image whose layer is ``size`` deterministic random bytes (not gzip: no CPU spent)."""
    rnd = random.Random('bench-copy|%d' % size)
    data = b''.join(rnd.randbytes(min(16 << 20, size - offset)) for offset in range(0, size, 16 << 20))
    layer = reg.push_blob(repo, data)
    config = _dumps({'architecture': 'amd64', 'os': 'linux', 'rootfs': {'type': 'layers', 'diff_ids': [layer]}})
    config_digest = reg.push_blob(repo, config)
    manifest = _dumps({'schemaVersion': 2, 'mediaType': MT_DOCKER_MANIFEST,
                       'config': {'mediaType': MT_DOCKER_CONFIG, 'size': len(config), 'digest': config_digest},
                       'layers': [{'mediaType': MT_DOCKER_LAYER, 'size': len(data), 'digest': layer}]})
    reg.push_manifest(repo, 'latest', manifest, MT_DOCKER_MANIFEST)
    return len(data)


class Runner:
    def __init__(self, workdir, python):
        self.workdir = workdir
        self.python = python
        collections = os.path.join(workdir, 'collections', 'ansible_collections', 'imagelayers')
        os.makedirs(collections)
        os.symlink(REPO_ROOT, os.path.join(collections, 'registry'))
        self.playbook_bin = os.path.join(os.path.dirname(python), 'ansible-playbook')
        if not os.path.exists(self.playbook_bin):
            self.playbook_bin = shutil.which('ansible-playbook')

    def copy(self, src, dest, workers=4):
        out = os.path.join(self.workdir, 'out.json')
        playbook = os.path.join(self.workdir, 'play.yml')
        with open(playbook, 'w') as handle:
            handle.write(PLAYBOOK % {'src': src, 'dest': dest, 'workers': workers, 'out': out})
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(self.workdir, 'collections'),
                   ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
                   ANSIBLE_PYTHON_INTERPRETER=self.python)
        proc = subprocess.run([self.playbook_bin, '-i', 'localhost,', '-c', 'local', playbook], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        if proc.returncode != 0:
            sys.exit('ansible-playbook failed:\n' + proc.stdout[-4000:])
        with open(out) as handle:
            return json.load(handle)


# skopeo remembers where it has seen blobs and then mounts them from another repository of the
# destination registry; with that cache warm, "copying" a blob costs nothing. Every skopeo run
# here starts cold, as the copy module does (it keeps no state between runs).
SKOPEO_CACHE = '/var/lib/containers/cache/blob-info-cache-v1.boltdb'


def skopeo_copy(src, dest, cold=True):
    if cold and os.geteuid() == 0 and os.path.exists(SKOPEO_CACHE):
        os.unlink(SKOPEO_CACHE)
    start = time.perf_counter()
    subprocess.run(['skopeo', 'copy', '-q', '--src-tls-verify=false', '--dest-tls-verify=false',
                    'docker://' + src, 'docker://' + dest], check=True)
    return time.perf_counter() - start


def start_registries(ports):
    script = os.path.join(REPO_ROOT, 'tests', 'utils', 'registry.sh')
    names = []
    for index, port in enumerate(ports):
        name = 'bench-copy-%d' % index
        subprocess.run([script, 'start', name, str(port)], check=True, env=dict(os.environ, REGISTRY_FRESH='1'))
        names.append(name)
    return ['127.0.0.1:%d' % p for p in ports], names


def stop_registries(names):
    script = os.path.join(REPO_ROOT, 'tests', 'utils', 'registry.sh')
    for name in names:
        subprocess.run([script, 'stop', name], check=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--src', help='host:port of a running source registry')
    parser.add_argument('--dest', help='host:port of a running destination registry')
    parser.add_argument('--ports', default='5300,5301', help='ports for the two registries this script starts')
    parser.add_argument('--size', default='256M', help='size of the big layer (default 256M)')
    parser.add_argument('--layers', type=int, default=50, help='layers of the many-layer image (default 50)')
    parser.add_argument('--layer-size', default='2M', help='size of each of those layers (default 2M)')
    parser.add_argument('--repeat', type=int, default=3, help='runs per measurement; the best counts')
    parser.add_argument('--python', default=sys.executable, help='interpreter for the module')
    parser.add_argument('--json', help='also write the figures to this file')
    args = parser.parse_args(argv)

    started = []
    if args.src and args.dest:
        src_host, dest_host = args.src, args.dest
    else:
        (src_host, dest_host), started = start_registries([int(p) for p in args.ports.split(',')])
    workdir = tempfile.mkdtemp(prefix='bench-copy-')
    run_id = '%d' % time.time()
    figures = {}
    failures = []
    try:
        runner = Runner(workdir, args.python)
        reg = Registry(src_host)
        size = parse_size(args.size)
        big = 'bench-copy/%s/big' % run_id
        print('pushing a %d-byte single-layer image to %s/%s ...' % (size, src_host, big), flush=True)
        push_big(reg, big, size)
        many = 'bench-copy/%s/many' % run_id
        print('pushing a %d-layer image to %s/%s ...' % (args.layers, src_host, many), flush=True)
        push_image(reg, many, 'latest', kind='schema2',
                   layer_sizes=[parse_size(args.layer_size)] * args.layers)

        # 1. Cross-repository copy inside one registry.
        mount = runner.copy('%s/%s:latest' % (src_host, big), '%s/%s-mounted:latest' % (src_host, big))
        skopeo_same = skopeo_copy('%s/%s:latest' % (src_host, big), '%s/%s-skopeo:latest' % (src_host, big))
        figures['mount'] = {'task_s': mount['task'], 'bytes_transferred': mount['result']['bytes_transferred'],
                            'blobs_mounted': mount['result']['blobs_mounted'], 'skopeo_s': skopeo_same}
        if mount['result']['bytes_transferred'] != 0:
            failures.append('cross-repository copy transferred %d bytes' % mount['result']['bytes_transferred'])

        # 2. Big single layer between two registries, alternating with skopeo.
        tasks, skopeos = [], []
        for number in range(args.repeat):
            result = runner.copy('%s/%s:latest' % (src_host, big), '%s/%s-copy%d:latest' % (dest_host, big, number))
            if result['result']['bytes_transferred'] < size:
                sys.exit('the copy did not transfer the layer: %r' % result['result'])
            tasks.append(result['task'])
            skopeos.append(skopeo_copy('%s/%s:latest' % (src_host, big), '%s/%s-skopeo%d:latest'
                                       % (dest_host, big, number)))
        figures['cross_registry'] = {'size': size, 'task_s': tasks, 'skopeo_s': skopeos,
                                     'task_best_s': min(tasks), 'skopeo_best_s': min(skopeos),
                                     'task_mb_s': size / min(tasks) / 1e6}
        if min(tasks) > min(skopeos):
            failures.append('the copy task (%.2f s) is slower than skopeo copy (%.2f s)' % (min(tasks), min(skopeos)))

        # 3. Many layers: workers 4 against workers 1.
        timings = {1: [], 4: []}
        for number in range(args.repeat):
            for workers in (1, 4):
                result = runner.copy('%s/%s:latest' % (src_host, many),
                                     '%s/%s-w%d-%d:latest' % (dest_host, many, workers, number), workers=workers)
                timings[workers].append(result['task'])
        figures['many_layers'] = {'layers': args.layers, 'workers_1_s': timings[1], 'workers_4_s': timings[4],
                                  'best_1_s': min(timings[1]), 'best_4_s': min(timings[4])}
        if min(timings[4]) >= min(timings[1]):
            failures.append('workers: 4 (%.2f s) is not faster than workers: 1 (%.2f s)'
                            % (min(timings[4]), min(timings[1])))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        stop_registries(started)

    print('')
    print('cross-repository copy (mount), %d bytes: %d bytes transferred, %d blobs mounted, task %.2f s '
          '(skopeo copy in the same registry: %.2f s)'
          % (size, figures['mount']['bytes_transferred'], figures['mount']['blobs_mounted'],
             figures['mount']['task_s'], figures['mount']['skopeo_s']))
    cross = figures['cross_registry']
    print('single %d-byte layer between registries: task best %.2f s (%.0f MB/s), skopeo best %.2f s; '
          'runs: task %s, skopeo %s' % (size, cross['task_best_s'], cross['task_mb_s'], cross['skopeo_best_s'],
                                        ' '.join('%.2f' % t for t in cross['task_s']),
                                        ' '.join('%.2f' % t for t in cross['skopeo_s'])))
    many_f = figures['many_layers']
    print('%d layers between registries: workers 4 best %.2f s, workers 1 best %.2f s (speed-up x%.2f)'
          % (many_f['layers'], many_f['best_4_s'], many_f['best_1_s'], many_f['best_1_s'] / many_f['best_4_s']))
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(figures, handle, indent=2)
    for failure in failures:
        print('FLOOR MISSED: ' + failure)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
