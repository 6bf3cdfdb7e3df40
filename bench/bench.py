#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""make bench: the collection's modules measured against the tools users would pick instead.

One run starts its own two loopback registries (``--ports``, state under
.build/bench/), seeds deterministic images (a big single-layer image, a 50-layer
image, a 30-layer image, a multi-arch OCI index, a small image to sign, 100 small images under 100 tags,
1000 tags over a few images on both registries, 1000 tags over a few dated images and indexes to prune)
and measures, round by round (every tool once per round, so all see the same machine load):

  blob_verify  the module on the big layer (task time minus an ansible.builtin.ping task's time, first
               and second task of a play; in-module throughput) vs curl | openssl dgst -sha256,
               curl | sha256sum, skopeo copy docker:// dir:, and the physical limits (hashlib sha256
               over the same bytes in memory, curl -o /dev/null); the module process's peak RSS
  retag        tag: 1 and 50 tags, changed and unchanged, vs a ping task; request counts
  copy         copy: cross-repository (mount) and cross-registry, big and 50-layer images, vs skopeo copy
               with a cold blob-info cache; bytes transferred and request counts on both registries
  workers      blob_verify of the 30- and 50-layer images and copy of the 50-layer image, workers 1 vs
               the module's default
  index        blob_verify of a 3-platform OCI index, whole, vs skopeo copy --all docker:// dir:
  signatures   copy cross-registry plain vs with verify_signatures (the source signed once with sign) and vs
               with sign (a fresh repository each round), requests added on each registry; signature_verify
               and an unchanged sign, each minus a ping task, vs curl + openssl dgst -sha256 -verify
  sync         sync of 100 small tags to another registry, new then unchanged (each the first sync task of
               its play; the unchanged one also as the second), vs skopeo sync twice; the unchanged sync of
               both again through links that put the registries 10 ms away (round trip); request counts on
               both registries; the module's peak RSS and CPU time planning 1000 unchanged tags (and the 100)
  export       export of the big image to a fresh OCI layout, vs skopeo copy docker:// oci:, and again into
               the same layout (unchanged: no blob fetched)
  prune        prune's plan (check mode) of 1000 tags over 7 dated digests (2 of them indexes), rules that leave
               the build-/pr- tags to their age; then a real run on a fresh copy of the repository (seeded by tag
               PUTs) and a second, unchanged run: the deletion cost per tag; request counts of each

It prints markdown tables (median, min, max, and the median of the ratios taken
round by round), the floors of the blob_verify/tag/copy/signature/sync/retention issues with PASS/FAIL,
the request-count checks, and the machine. Exit 0 when the harness ran (floors
are reported, not asserted) unless --strict. --quick: the smoke test of
``make test``: small sizes, one round, no warm-up; it asserts that every tool ran
and that the request counts (deterministic) hold, never a time.

    bench/bench.py                         # full run (5 rounds after 1 warm-up), about 10 minutes
    bench/bench.py --quick                 # smoke test, under 2 minutes
    bench/bench.py --only blob_verify,retag --rounds 7 --markdown out.md --json out.json
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import hashlib
import json
import os
import re
import shlex
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402  pylint: disable=wrong-import-position
    REPO_ROOT,
    AccessLog,
    BenchError,
    DelayLink,
    Registries,
    Registry,
    Runner,
    format_counts,
    human_bytes,
    install_signal_handlers,
    machine_info,
    make_workdir,
    module_constant,
    parse_size,
    push_big,
    push_image,
    ratios,
    run,
    summary,
)

# tests/utils, on the path once _common is imported: the synthetic images' helper.
from synth_image import (  # noqa: E402  pylint: disable=wrong-import-position,wrong-import-order
    MT_DOCKER_MANIFEST,
    MT_OCI_CONFIG,
    MT_OCI_INDEX,
    MT_OCI_LAYER,
    MT_OCI_MANIFEST,
    make_layer,
    push_single,
)

SECTIONS = ('blob_verify', 'retag', 'copy', 'workers', 'index', 'signatures', 'sync', 'export', 'prune')
SKOPEO_CACHE = '/var/lib/containers/cache/blob-info-cache-v1.boltdb'
INDEX_PLATFORMS = ('linux/amd64', 'linux/arm64/v8', 'linux/arm/v7')
# The 30-layer image of the blob_verify issue (the same shape as the seed's seed/many-layers).
MANY30_SIZES = [256 + 64 * i for i in range(30)]
# sync: a repository of small distinct images, one tag each, and for the memory row a repository of many tags
# that point at a few images (seeded on both registries, so every tag is unchanged).
SYNC_REPO = 'bench/sync'
SYNC_MANY_REPO = 'bench/sync-many'
# sync_far: each way between the tools and the registries (a registry in the same region: 10 ms round trip)
SYNC_FAR_DELAY = 0.005
SYNC_MANY_IMAGES = 5
# prune: one repository of many tags over a few dated images (two of them indexes), planned in check mode every
# round; the real run works on a fresh copy of it. Old images are 2020's, new ones a day old at seeding: with
# newer_than 30d the build-/pr- tags (the candidates, 7 in 10) are decided by age, the others by their name.
PRUNE_REPO = 'bench/prune'
PRUNE_CANDIDATES = '^(build|pr)-'
PRUNE_KEEP = {'semver_latest': 10, 'patterns': ['^stable$', r'^v?\d+\.\d+$'], 'newer_than': '30d'}
# name -> (created of each manifest: one for an image, one per child for an index); an index's age is its
# newest child's, so index-new (one old child, one new) is kept.
PRUNE_IMAGES = {'old-1': ('2020-01-01T00:00:00Z',), 'old-2': ('2020-02-01T00:00:00Z',),
                'old-3': ('2020-03-01T00:00:00Z',), 'new-1': (None,), 'new-2': (None,),
                'index-old': ('2020-04-01T00:00:00Z', '2020-04-02T00:00:00Z'),
                'index-new': ('2020-05-01T00:00:00Z', None)}
PRUNE_ORDER = ('old-1', 'old-2', 'old-3', 'new-1', 'new-2', 'index-old', 'index-new')
PRUNE_PLATFORMS = ({'os': 'linux', 'architecture': 'amd64'}, {'os': 'linux', 'architecture': 'arm64'})

PING = {'ansible.builtin.ping': {}}
# The reference for signature_verify: the bytes with curl, the signature with openssl (no jq: the
# manifest sign writes is compact JSON, its layer's mediaType, digest and annotation in that order).
OPENSSL_VERIFY = r"""
set -e
base=%(base)s; dir=%(dir)s
digest=$(curl -sfI -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "$base/manifests/latest" \
         | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *//p')
manifest=$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$base/manifests/${digest/:/-}.sig")
layer=$(printf '%%s' "$manifest" \
        | grep -o '"application/vnd.dev.cosign.simplesigning.v1+json","digest":"sha256:[0-9a-f]*"' \
        | head -n 1 | sed 's/.*"digest":"//; s/"$//')
printf '%%s' "$manifest" | grep -o '"dev.cosignproject.cosign/signature":"[^"]*"' | head -n 1 \
    | sed 's/.*":"//; s/"$//' | base64 -d > "$dir/signature.bin"
curl -sf -o "$dir/payload.json" "$base/blobs/$layer"
grep -q "\"docker-manifest-digest\":\"$digest\"" "$dir/payload.json"
openssl dgst -sha256 -verify %(pub)s -signature "$dir/signature.bin" "$dir/payload.json"
"""
MIB = float(1 << 20)
SEED_THREADS = 4   # parallel manifest PUTs when seeding a repository of many tags (a requests session each)


def bv_task(image, workers=None):
    args = {'image': image}
    if workers is not None:
        args['workers'] = workers
    return {'imagelayers.registry.blob_verify': args}


def tag_task(image, tags):
    return {'imagelayers.registry.tag': {'image': image, 'tags': tags}}


def copy_task(src, dest, workers=None, **options):
    args = {'src': src, 'dest': dest}
    if workers is not None:
        args['workers'] = workers
    args.update(options)
    return {'imagelayers.registry.copy': args}


def sign_task(image, key):
    return {'imagelayers.registry.sign': {'image': image, 'key': key}}


def verify_task(image, public_key):
    return {'imagelayers.registry.signature_verify': {'image': image, 'keys': [public_key]}}


def sync_task(src, dest):
    return {'imagelayers.registry.sync': {'repositories': [{'src': src, 'dest': dest}]}}


def export_task(images, dest):
    return {'imagelayers.registry.export': {'images': images, 'dest': dest, 'format': 'oci-layout'}}


def prune_task(repository, check_mode):
    """The issue's prune (without keep.tags): check_mode true is the plan an operator reviews."""
    return {'imagelayers.registry.prune': {'repository': repository, 'keep': PRUNE_KEEP,
                                           'candidates': PRUNE_CANDIDATES}, 'check_mode': check_mode}


def prune_layout(count):
    """``{tag: image name}``, ``count`` tags in blocks of 10: a semver tag (the 10 highest kept), a tag the
    patterns keep, ``stable`` once then ``rc-N`` (not candidates), 4 ``build-N`` and 3 ``pr-N``; the image
    cycles through PRUNE_ORDER, shifted every block so that every image gets tags of every kind."""
    layout = {}
    for index in range(count):
        block, kind = divmod(index, 10)
        if kind == 0:
            tag = 'v1.0.%d' % block
        elif kind == 1:
            tag = 'v%d.0' % block
        elif kind == 2:
            tag = 'stable' if block == 0 else 'rc-%d' % index
        else:
            tag = '%s-%d' % ('build' if kind < 7 else 'pr', index)
        layout[tag] = PRUNE_ORDER[(index + block) % len(PRUNE_ORDER)]
    return layout


def prune_doomed(layout):
    """The tags the plan deletes: the candidates on an old image (an index is as old as its newest child)."""
    old = {name for name, dates in PRUNE_IMAGES.items() if None not in dates}
    return sorted(tag for tag, name in layout.items() if re.search(PRUNE_CANDIDATES, tag) and name in old)


def prune_plan_expectations(layout, changed):
    """Requests of prune's plan over ``layout`` (the tags there): the tag list (distribution returns every tag
    in one page); a HEAD per tag its name decides; a manifest GET per tag its age decides (the candidates), then
    once per such digest its config, for an index its children's manifests and configs; with anything to
    delete, the probe DELETE of a digest that cannot exist (404)."""
    by_age = [tag for tag in layout if re.search(PRUNE_CANDIDATES, tag)]
    names = set(layout[tag] for tag in by_age)
    children = sum(len(PRUNE_IMAGES[name]) for name in names if name.startswith('index'))
    configs = sum(len(PRUNE_IMAGES[name]) for name in names)
    expected = {'GET tags': 1, 'HEAD manifests': len(layout) - len(by_age), 'GET manifests': len(by_age) + children,
                'GET blobs': configs}
    if changed:
        expected['DELETE manifests'] = 1
    return expected


def prune_real_expectations(layout, deleted):
    """A real run: the plan, then (distribution 2.8, no tag DELETE) a tag DELETE tried once (400), the empty
    blob checked and uploaded once (HEAD, POST, PUT), and per tag a placeholder manifest PUT under the tag, the
    placeholder's DELETE by digest and a HEAD that finds the tag gone. With delete: tags no manifest DELETE."""
    return merged(prune_plan_expectations(layout, True),
                  {'DELETE manifests': 1 + deleted, 'PUT manifests': deleted, 'HEAD manifests': deleted,
                   'HEAD blobs': 1, 'POST uploads': 1, 'PUT uploads': 1})


def sync_tag(index):
    return '1.0.%d' % index


def merged(*expectations):
    """The sum of several ``{'METHOD kind': n}`` request expectations."""
    total = {}
    for expected in expectations:
        for key, value in expected.items():
            total[key] = total.get(key, 0) + value
    return total


def delta_kinds(counts, baseline):
    """``{'METHOD kind': n}`` that ``counts`` has more than ``baseline`` (the requests a task option added)."""
    got, base = counts['by_method_kind'], baseline['by_method_kind']
    return dict((key, got[key] - base.get(key, 0)) for key in got if got[key] != base.get(key, 0))


def json_bytes(document):
    """Compact JSON, keys sorted: the same bytes, the same digest, on every run."""
    return json.dumps(document, sort_keys=True, separators=(',', ':')).encode('utf-8')


def sha256(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def read_text(path):
    with open(path) as handle:
        return handle.read()


class Bench:
    """One run of the harness: registries, images, rounds, samples, checks."""

    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.python = args.python
        self.sections = args.only
        self.rounds = args.rounds if args.rounds is not None else (1 if self.quick else 5)
        self.warmup = args.warmup if args.warmup is not None else (0 if self.quick else 1)
        self.big_size = parse_size(args.size or ('8M' if self.quick else '256M'))
        self.many_layers = args.layers or (10 if self.quick else 50)
        self.many_size = parse_size(args.layer_size or ('64k' if self.quick else '2M'))
        self.index_sizes = [parse_size('16k'), parse_size('32k')] if self.quick else [1 << 20, 2 << 20]
        self.sync_tags = 10 if self.quick else 100
        self.sync_memory_tags = 50 if self.quick else 1000
        self.prune_tags = 100 if self.quick else 1000
        self.bv_workers = module_constant('_context.py', 'DEFAULT_WORKERS')
        self.copy_workers = module_constant('_context.py', 'DEFAULT_WORKERS')
        self.samples = {}     # section -> key -> [value per measured round]
        self.counts = []      # request-count checks: {'section', 'case', 'ok', 'measured', 'expected'}
        self.problems = []    # failed checks (tools that did not do their job, counts that did not hold)
        self.info = {}        # section -> facts for the headings
        self.skopeo_cache_removed = 0
        self.run_id = time.strftime('%Y%m%d%H%M%S')
        self.registries = None
        self.runner = None
        self.src = self.dest = None
        self.src_log = self.dest_log = None
        self.images = {}
        self.workdir = None
        self.machine = {}
        self.started_at = None
        self.section_seconds = {}
        self.seed_seconds = 0.0
        self.total_seconds = 0.0

    # -- helpers ---------------------------------------------------------------------------
    def add(self, section, key, value, measured):
        if measured:
            self.samples.setdefault(section, {}).setdefault(key, []).append(value)

    def check(self, section, case, ok, measured, expected):
        self.counts.append({'section': section, 'case': case, 'ok': bool(ok), 'measured': measured,
                            'expected': expected})
        if not ok:
            self.problems.append('%s, %s: got %s, expected %s' % (section, case, measured, expected))

    def expect_counts(self, section, case, counts, expected, exact=True):
        """``expected``: {'METHOD kind': n}; with ``exact`` no other request may appear."""
        got = counts['by_method_kind']
        if exact:
            ok = got == {k: v for k, v in expected.items() if v}
        else:
            ok = all(got.get(k, 0) == v for k, v in expected.items())
        wanted = ', '.join('%s %d' % (k, v) for k, v in sorted(expected.items()))
        self.check(section, case, ok, format_counts(counts), ('exactly ' if exact else '') + wanted)

    def fail(self, message):
        raise BenchError(message)

    def log_mark(self):
        return [self.src_log.settled(), self.dest_log.settled()]

    def log_counts(self, before):
        after = self.log_mark()
        return (self.src_log.count(before[0], after[0]), self.dest_log.count(before[1], after[1]))

    def step_counts(self, step):
        (s0, s1), (d0, d1) = step['logs']
        return self.src_log.count(s0, s1), self.dest_log.count(d0, d1)

    def tool(self, command, shell=False, timeout=600):
        code, out, err, seconds = run(command, shell=shell, timeout=timeout, check=False)
        if code != 0:
            self.fail('%s exited with %d: %s' % (command if shell else ' '.join(command), code,
                                                 (err or out).strip()[-1500:]))
        return out, seconds

    def skopeo(self, src, dest, extra=(), cold=True):
        """``skopeo copy`` docker:// -> ``dest``; returns seconds. The blob-info cache removed first."""
        if cold:
            self.drop_skopeo_cache()
        command = ['skopeo', 'copy', '-q', '--src-tls-verify=false'] + list(extra)
        if dest.startswith('docker://'):
            command.append('--dest-tls-verify=false')
        dummy, seconds = self.tool(command + ['docker://' + src, dest])
        return seconds

    def drop_skopeo_cache(self):
        """Remove skopeo's blob-info cache: a cold run, as on a fresh CI runner."""
        if os.path.exists(SKOPEO_CACHE):
            try:
                os.unlink(SKOPEO_CACHE)
                self.skopeo_cache_removed += 1
            except OSError as error:
                self.fail('cannot remove skopeo blob-info cache %s (run as root): %s' % (SKOPEO_CACHE, error))

    def rounds_iter(self):
        for number in range(self.warmup + self.rounds):
            yield number, number >= self.warmup

    # -- setup -------------------------------------------------------------------------------
    def setup(self):
        ports = self.args.ports
        # One state directory per pair of ports: two runs on other ports never share a registry's storage.
        state = os.path.join(REPO_ROOT, '.build', 'bench', 'state', 'ports-%d-%d' % tuple(ports))
        self.registries = Registries(state, python=self.python)
        self.src = self.registries.start('bench-src', ports[0])
        self.dest = self.registries.start('bench-dest', ports[1])
        self.src_log = AccessLog(self.registries.log_path('bench-src'))
        self.dest_log = AccessLog(self.registries.log_path('bench-dest'))
        self.workdir = make_workdir(os.path.join(REPO_ROOT, '.build', 'bench', 'work'))
        self.runner = Runner(self.workdir, self.python, [self.src_log, self.dest_log])
        self.seed()

    def seed(self):
        reg = Registry(self.src, timeout=600)
        need = set(self.sections)
        started = time.perf_counter()
        if need & {'blob_verify', 'copy', 'export'}:
            self.images['big'] = push_big(reg, 'bench/big', self.big_size)
        if need & {'blob_verify', 'retag', 'workers', 'signatures'}:
            result = push_image(reg, 'bench/tiny', 'latest', kind='schema2', layer_sizes=[1024])
            self.images['tiny'] = result
            push_image(reg, 'bench/app', 'src', kind='schema2', layer_sizes=[1024])
        if need & {'copy', 'workers'}:
            result = push_image(reg, 'bench/many', 'latest', kind='schema2',
                                layer_sizes=[self.many_size] * self.many_layers)
            self.images['many'] = result
        if 'workers' in need:
            self.images['many30'] = push_image(reg, 'bench/many30', 'latest', kind='schema2',
                                               layer_sizes=MANY30_SIZES)
        if 'index' in need:
            self.images['index'] = push_image(reg, 'bench/index', 'latest', kind='oci-index',
                                              layer_sizes=self.index_sizes, platforms=INDEX_PLATFORMS)
        if 'signatures' in need:
            # The small image: a signature's cost shows against a copy that costs little itself.
            self.images['signed'] = push_image(reg, 'bench/signed', 'latest', kind='schema2', layer_sizes=[1024])
        if 'sync' in need:
            self.seed_sync(reg, Registry(self.dest, timeout=600))
        if 'prune' in need:
            self.seed_prune(reg)
        self.seed_seconds = time.perf_counter() - started

    def seed_sync(self, reg, dest):
        """The sync rows' source: distinct small images (1 layer of 1 KiB each), one per tag. The memory row's
        repository: many tags over a few images, on both registries (the same bytes, the same digests), so a
        sync plans every tag and finds it unchanged without a first sync to wait for."""
        for index in range(self.sync_tags):
            push_single(reg, SYNC_REPO, sync_tag(index), False, [1024], seed='bench-sync|%d' % index)
        for target in (reg, dest):
            bodies = []
            for index in range(SYNC_MANY_IMAGES):
                digest = push_single(target, SYNC_MANY_REPO, None, False, [1024],
                                     seed='bench-sync-many|%d' % index)['digest']
                response = target.request('GET', target.url('/v2/%s/manifests/%s' % (SYNC_MANY_REPO, digest)),
                                          headers={'Accept': MT_DOCKER_MANIFEST})
                if response.status_code != 200:
                    self.fail('GET %s@%s: HTTP %d' % (SYNC_MANY_REPO, digest, response.status_code))
                bodies.append(response.content)
            for index in range(self.sync_memory_tags):
                target.push_manifest(SYNC_MANY_REPO, sync_tag(index), bodies[index % len(bodies)], MT_DOCKER_MANIFEST)

    def seed_prune(self, reg):
        """prune's repository: one shared 1 KiB layer, an OCI image per date (config ``created``), the indexes'
        children by digest, then every tag of the layout (a manifest PUT each, no blob moved)."""
        layer, diff_id = make_layer('bench-prune', 0, 1024)
        layer_digest = reg.push_blob(PRUNE_REPO, layer)
        layer_desc = {'mediaType': MT_OCI_LAYER, 'size': len(layer), 'digest': layer_digest}
        fresh = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)).strftime(
            '%Y-%m-%dT%H:%M:%SZ')
        images, children, blobs = {}, [], [layer_digest]
        for name in PRUNE_ORDER:
            built = []
            for number, created in enumerate(PRUNE_IMAGES[name]):
                platform = PRUNE_PLATFORMS[number]
                config = json_bytes(dict(platform, created=created or fresh, rootfs={'type': 'layers',
                                                                                     'diff_ids': [diff_id]},
                                         config={'Labels': {'bench': '%s/%d' % (name, number)}}))
                blobs.append(reg.push_blob(PRUNE_REPO, config))
                body = json_bytes({'schemaVersion': 2, 'mediaType': MT_OCI_MANIFEST, 'layers': [layer_desc],
                                   'config': {'mediaType': MT_OCI_CONFIG, 'size': len(config), 'digest': blobs[-1]}})
                built.append((body, platform))
            if not name.startswith('index'):
                images[name] = (built[0][0], MT_OCI_MANIFEST)
                continue
            entries = []
            for body, platform in built:
                children.append(body)
                entries.append({'mediaType': MT_OCI_MANIFEST, 'size': len(body), 'platform': platform,
                                'digest': reg.push_manifest(PRUNE_REPO, sha256(body), body, MT_OCI_MANIFEST)})
            images[name] = (json_bytes({'schemaVersion': 2, 'mediaType': MT_OCI_INDEX, 'manifests': entries}),
                            MT_OCI_INDEX)
        self.images['prune'] = {'images': images, 'children': children, 'blobs': blobs,
                                'layout': prune_layout(self.prune_tags)}
        self.prune_tag_all(reg, PRUNE_REPO)

    def prune_tag_all(self, reg, repo):
        """Every tag of prune's layout in ``repo``, whose children and blobs are there: one manifest PUT a tag,
        SEED_THREADS at a time (each thread its own session), since seeding is not what is measured."""
        seeded = self.images['prune']
        items = list(seeded['layout'].items())
        shares = [items[i::SEED_THREADS] for i in range(SEED_THREADS)]

        def put(share):
            session = Registry(reg.base, timeout=600)
            for tag, name in share:
                body, media_type = seeded['images'][name]
                session.push_manifest(repo, tag, body, media_type)

        with concurrent.futures.ThreadPoolExecutor(SEED_THREADS) as pool:
            for future in [pool.submit(put, share) for share in shares]:
                future.result()

    def prune_copy(self, repo):
        """A fresh copy of prune's repository: its blobs mounted, the indexes' children PUT by digest, then every
        tag PUT. Returns seconds."""
        started = time.perf_counter()
        reg = Registry(self.src, timeout=600)
        seeded = self.images['prune']
        for digest in seeded['blobs']:
            mount = '/v2/%s/blobs/uploads/?mount=%s&from=%s' % (repo, digest, PRUNE_REPO)
            response = reg.request('POST', reg.url(mount), headers={'Content-Length': '0'})
            if response.status_code != 201:
                self.fail('mount of %s into %s: HTTP %d' % (digest, repo, response.status_code))
        for body in seeded['children']:
            reg.push_manifest(repo, sha256(body), body, MT_OCI_MANIFEST)
        self.prune_tag_all(reg, repo)
        return time.perf_counter() - started

    def ref(self, name, host=None):
        return '%s/bench/%s:latest' % (host or self.src, name)

    # -- blob_verify ---------------------------------------------------------------------------
    def section_blob_verify(self):
        big = self.images['big']
        size = big['size']
        hexdigest = big['layer'].split(':', 1)[1]
        url = 'http://%s/v2/bench/big/blobs/%s' % (self.src, big['layer'])
        image = self.ref('big')
        self.info['blob_verify'] = '%s single-layer image, one layer of %s' % (human_bytes(size), human_bytes(size))
        from _common import big_layer_bytes  # pylint: disable=import-outside-toplevel
        data = big_layer_bytes(size)
        if 'sha256:' + hashlib.sha256(data).hexdigest() != big['layer']:
            self.fail('the big layer regenerated in memory does not hash to its digest %s' % big['layer'])
        section = 'blob_verify'
        for number, measured in self.rounds_iter():
            # The physical limits: sha256 over the same bytes in memory, loopback download.
            start = time.perf_counter()
            digest = hashlib.sha256(data).hexdigest()
            hash_speed = size / (time.perf_counter() - start)
            self.add(section, 'hashlib_Bps', hash_speed, measured)
            if digest != hexdigest:
                self.fail('hashlib sha256 gave %s, expected %s' % (digest, hexdigest))
            out, seconds = self.tool(['curl', '-s', '--fail', '-o', '/dev/null', '-w', '%{size_download}', url])
            if out.strip() != str(size):
                self.fail('curl -o /dev/null downloaded %s bytes, expected %d' % (out.strip(), size))
            download_speed = size / seconds
            self.add(section, 'curl_dl_Bps', download_speed, measured)
            out, seconds = self.tool('curl -s --fail %s | openssl dgst -sha256' % shlex.quote(url), shell=True)
            if hexdigest not in out:
                self.fail('curl | openssl dgst -sha256 printed %r, not the digest %s' % (out.strip(), hexdigest))
            self.add(section, 'curl_openssl_s', seconds, measured)
            out, seconds = self.tool('curl -s --fail %s | sha256sum' % shlex.quote(url), shell=True)
            if hexdigest not in out:
                self.fail('curl | sha256sum printed %r, not the digest %s' % (out.strip(), hexdigest))
            self.add(section, 'curl_sha256sum_s', seconds, measured)
            target = os.path.join(self.workdir, 'skopeo-dir')
            shutil.rmtree(target, ignore_errors=True)
            seconds = self.skopeo('%s/bench/big:latest' % self.src, 'dir:' + target, cold=False)
            copied = os.path.join(target, hexdigest)
            if not os.path.isfile(copied) or os.path.getsize(copied) != size:
                self.fail('skopeo copy to dir: did not leave the %d-byte layer at %s' % (size, copied))
            shutil.rmtree(target, ignore_errors=True)
            self.add(section, 'skopeo_dir_s', seconds, measured)

            steps, dummy = self.runner.play([('ping', PING), ('blob_verify', bv_task(image)),
                                             ('ping again', PING), ('blob_verify again', bv_task(image))])
            ping, task, ping2, task2 = steps
            result = task['result']
            # The manifest, the config and the layer.
            if result.get('failed') or result.get('verified_count') != 3 or result.get('bytes_verified', 0) < size:
                self.fail('blob_verify did not verify the big image: %s' % json.dumps(result)[:2000])
            self.add(section, 'ping_s', ping['seconds'], measured)
            self.add(section, 'task_s', task['seconds'], measured)
            self.add(section, 'task_minus_ping_s', task['seconds'] - ping['seconds'], measured)
            self.add(section, 'warm_task_minus_ping_s', task2['seconds'] - ping2['seconds'], measured)
            self.add(section, 'module_elapsed_s', result['elapsed'], measured)
            self.add(section, 'module_Bps', result['bytes_verified'] / result['elapsed'], measured)
            self.add(section, 'limit_Bps', min(hash_speed, download_speed), measured)
            src_counts, dummy = self.step_counts(task)
            # One GET of the manifest (by tag), then one GET per blob: the config and the layer.
            self.expect_counts(section, 'blob_verify, round %d' % (number + 1), src_counts,
                               {'GET manifests': 1, 'GET blobs': 2})

            # Peak RSS and CPU time of the module process, and the registry's CPU time, for the big
            # image, then a tiny one: the differences are what the big layer's transfer costs.
            rss, cpu, registry_cpu = {}, {}, {}
            for name in ('big', 'tiny'):
                before = self.registries.cpu_seconds('bench-src')
                dummy, peaks = self.runner.play([('blob_verify', bv_task(self.ref(name)))], rss=True)
                registry_cpu[name] = self.registries.cpu_seconds('bench-src') - before
                mine = [peak for peak in peaks if 'blob_verify' in peak[1]] or peaks
                rss[name] = max(peak[0] for peak in mine) / 1024.0
                cpu[name] = max(peak[2] for peak in mine)
            self.add(section, 'rss_big_mib', rss['big'], measured)
            self.add(section, 'rss_tiny_mib', rss['tiny'], measured)
            self.add(section, 'rss_growth_mib', rss['big'] - rss['tiny'], measured)
            module_cpu = cpu['big'] - cpu['tiny']
            serving_cpu = registry_cpu['big'] - registry_cpu['tiny']
            self.add(section, 'module_cpu_transfer_s', module_cpu, measured)
            self.add(section, 'registry_cpu_transfer_s', serving_cpu, measured)
            # Both processes' CPU time spread over every core: no client can move and hash the
            # layer faster on this machine while this registry serves it.
            self.add(section, 'transfer_cpu_floor_s', (module_cpu + serving_cpu) / (os.cpu_count() or 1), measured)
        del data

    # -- retag -------------------------------------------------------------------------------
    def section_retag(self):
        section = 'retag'
        source = '%s/bench/app:src' % self.src
        self.info[section] = 'tag module on a schema2 image in one registry, fresh tag names every round'
        for number, measured in self.rounds_iter():
            prefix = 'r%s-%d' % (self.run_id, number)
            one = ['%s-one' % prefix]
            fifty = ['%s-fifty-%02d' % (prefix, i) for i in range(50)]
            steps, dummy = self.runner.play([
                ('warm-up (not measured)', tag_task(source, ['%s-warm' % prefix])),
                ('ping', PING),
                ('1 tag, new', tag_task(source, one)), ('1 tag, unchanged', tag_task(source, one)),
                ('50 tags, new', tag_task(source, fifty)), ('50 tags, unchanged', tag_task(source, fifty))])
            ping = steps[1]['seconds']
            self.add(section, 'ping_s', ping, measured)
            # Requests (the tag integration test's accounting): one HEAD for the source, one HEAD per
            # destination tag; a changed tag adds one GET of the source manifest (once per task) and one
            # PUT per changed tag. The registry answers the source HEAD with its digest, so no GET there.
            for step, key, tags, changed in ((steps[2], 'one_new', 1, True), (steps[3], 'one_same', 1, False),
                                             (steps[4], 'fifty_new', 50, True), (steps[5], 'fifty_same', 50, False)):
                result = step['result']
                if result.get('failed') or bool(result.get('changed')) != changed:
                    self.fail('tag (%s) reported changed=%s: %s'
                              % (step['name'], result.get('changed'), json.dumps(result)[:1500]))
                self.add(section, key + '_s', step['seconds'], measured)
                counts, dummy = self.step_counts(step)
                expected = {'HEAD manifests': 1 + tags}
                if changed:
                    expected.update({'GET manifests': 1, 'PUT manifests': tags})
                self.expect_counts(section, '%s, round %d' % (step['name'], number + 1), counts, expected)
                self.add(section, key + '_requests', counts['total'], measured)

    # -- copy --------------------------------------------------------------------------------
    def copy_expectations(self, blobs, mount):
        """Requests of a copy of a single image with ``blobs`` blobs into a fresh repository.

        Source: a HEAD of the tag (the registry gives the digest), one GET of the manifest, and for a
        copy to another registry one GET per blob. Destination: a HEAD of the tag (absent), a HEAD per
        blob (absent), then per blob a mount (POST ?mount=, 201) or an upload (POST, then one PUT with
        the streamed body), and the manifest PUT under the tag, last.
        """
        if mount:
            # Both sides are the same registry and log.
            return ({'HEAD manifests': 2, 'GET manifests': 1, 'HEAD blobs': blobs, 'POST uploads': blobs,
                     'PUT manifests': 1}, None)
        return ({'HEAD manifests': 1, 'GET manifests': 1, 'GET blobs': blobs},
                {'HEAD manifests': 1, 'HEAD blobs': blobs, 'POST uploads': blobs, 'PUT uploads': blobs,
                 'PUT manifests': 1})

    def section_copy(self):
        section = 'copy'
        images = {'big': self.images['big'], 'many': self.images['many']}
        shapes = {'big': 1, 'many': self.many_layers}
        self.info[section] = ('big: %s in 1 layer; many: %d layers of %s; each copy into a fresh repository; '
                              'skopeo with its blob-info cache removed before each run'
                              % (human_bytes(self.big_size), self.many_layers, human_bytes(self.many_size)))
        for number, measured in self.rounds_iter():
            for name in ('big', 'many'):
                blobs = shapes[name] + 1      # the layers and the config
                total = sum(images[name]['blob_sizes'] if name == 'big' else [])
                for case, host in (('mount', self.src), ('cross', self.dest)):
                    key = '%s_%s' % (name, case)
                    dest_repo = 'bench/copy-%s/r%d/%s-%s' % (self.run_id, number, name, case)
                    # A ping task first in the same play: task - ping is the copy without Ansible's
                    # per-task cost, the figure to hold against one skopeo process.
                    steps, dummy = self.runner.play([('ping', PING), ('copy', copy_task(
                        self.ref(name), '%s/%s:latest' % (host, dest_repo)))])
                    ping, step = steps
                    result = step['result']
                    if result.get('failed') or not result.get('changed'):
                        self.fail('copy %s failed: %s' % (key, json.dumps(result)[:1500]))
                    self.add(section, key + '_s', step['seconds'], measured)
                    self.add(section, key + '_minus_ping_s', step['seconds'] - ping['seconds'], measured)
                    self.add(section, key + '_bytes', result.get('bytes_transferred'), measured)
                    src_counts, dest_counts = self.step_counts(step)
                    expected_src, expected_dest = self.copy_expectations(blobs, case == 'mount')
                    label = 'copy %s %s, round %d' % (name, 'mount' if case == 'mount' else 'cross-registry',
                                                      number + 1)
                    if case == 'mount':
                        self.check(section, label + ': bytes transferred', result.get('bytes_transferred') == 0
                                   and result.get('blobs_mounted') == blobs, 'bytes_transferred %s, blobs_mounted %s'
                                   % (result.get('bytes_transferred'), result.get('blobs_mounted')),
                                   'bytes_transferred 0, blobs_mounted %d' % blobs)
                        self.expect_counts(section, label, src_counts, expected_src)
                        self.check(section, label + ': other registry', dest_counts['total'] == 0,
                                   format_counts(dest_counts), '0')
                    else:
                        if name == 'big':
                            self.check(section, label + ': bytes transferred', result.get('bytes_transferred') == total,
                                       str(result.get('bytes_transferred')), str(total))
                        self.expect_counts(section, label + ' (source)', src_counts, expected_src)
                        self.expect_counts(section, label + ' (destination)', dest_counts, expected_dest)
                    self.add(section, key + '_requests', src_counts['total'] + dest_counts['total'], measured)

                    before = self.log_mark()
                    seconds = self.skopeo('%s/bench/%s:latest' % (self.src, name),
                                          'docker://%s/%s-skopeo:latest' % (host, dest_repo))
                    src_counts, dest_counts = self.log_counts(before)
                    self.add(section, key + '_skopeo_s', seconds, measured)
                    self.add(section, key + '_skopeo_requests', src_counts['total'] + dest_counts['total'], measured)
                    self.add(section, key + '_skopeo_sent', src_counts['bytes_sent'], measured)
                    if self.quick or number == 0:
                        self.counts.append({'section': section, 'case': 'skopeo copy %s %s, round %d (not checked)'
                                            % (name, case, number + 1), 'ok': True,
                                            'measured': 'source %s; destination %s' % (format_counts(src_counts),
                                                                                       format_counts(dest_counts)),
                                            'expected': '-'})

    # -- workers -----------------------------------------------------------------------------
    def section_workers(self):
        section = 'workers'
        self.info[section] = ('blob_verify default workers %d, copy default workers %d (read from '
                              'plugins/module_utils); a warm-up task of each module first'
                              % (self.bv_workers, self.copy_workers))
        many = self.ref('many')
        many30 = self.ref('many30')
        for number, measured in self.rounds_iter():
            base = 'bench/workers-%s/r%d' % (self.run_id, number)
            order = [1, None] if number % 2 == 0 else [None, 1]   # alternate which goes first
            plan = [('warm-up blob_verify (not measured)', bv_task(self.ref('tiny')), None),
                    ('warm-up copy (not measured)', copy_task(self.ref('tiny'), '%s/%s/warm:latest'
                                                              % (self.dest, base)), None)]
            for kind, image, layers in (('bv30', many30, 30), ('bv50', many, self.many_layers)):
                for workers in order:
                    plan.append(('%s w%s' % (kind, workers or 'default'), bv_task(image, workers),
                                 (kind, workers, layers)))
            for workers in order:
                plan.append(('copy50 w%s' % (workers or 'default'),
                             copy_task(many, '%s/%s/many-w%s:latest' % (self.dest, base, workers or 'd'), workers),
                             ('copy50', workers, self.many_layers)))
            steps, dummy = self.runner.play([(name, task) for name, task, dummy2 in plan])
            for step, (name, _task, what) in zip(steps, plan):
                if what is None:
                    continue
                kind, workers, layers = what
                key = '%s_w%s' % (kind, 'd' if workers is None else workers)
                result = step['result']
                if result.get('failed'):
                    self.fail('%s failed: %s' % (name, json.dumps(result)[:1500]))
                self.add(section, key + '_s', step['seconds'], measured)
                src_counts, dest_counts = self.step_counts(step)
                label = '%s, round %d' % (name, number + 1)
                if kind.startswith('bv'):
                    if result.get('verified_count') != layers + 2:
                        self.fail('%s verified %s items, expected %d' % (name, result.get('verified_count'),
                                                                         layers + 2))
                    self.add(section, key + '_elapsed_s', result['elapsed'], measured)
                    # One GET of the manifest, one GET per blob (the layers and the config).
                    self.expect_counts(section, label, src_counts, {'GET manifests': 1, 'GET blobs': layers + 1})
                else:
                    expected_src, expected_dest = self.copy_expectations(layers + 1, mount=False)
                    self.expect_counts(section, label + ' (source)', src_counts, expected_src)
                    self.expect_counts(section, label + ' (destination)', dest_counts, expected_dest)

    # -- index -------------------------------------------------------------------------------
    def section_index(self):
        section = 'index'
        platforms = len(INDEX_PLATFORMS)
        layers = len(self.index_sizes)
        self.info[section] = ('OCI index of %d platforms, %d layers each (%s); blob_verify of the whole index vs '
                              'skopeo copy --all to dir:'
                              % (platforms, layers, ', '.join(human_bytes(s) for s in self.index_sizes)))
        image = self.ref('index')
        for number, measured in self.rounds_iter():
            steps, dummy = self.runner.play([('ping', PING), ('blob_verify index', bv_task(image))])
            ping, task = steps
            result = task['result']
            # Every platform: its manifest, its config and its layers (synth_image seeds each platform
            # differently, so no blob is shared), plus the index itself.
            items = 1 + platforms * (1 + 1 + layers)
            if result.get('failed') or result.get('verified_count') != items:
                self.fail('blob_verify of the index verified %s items, expected %d: %s'
                          % (result.get('verified_count'), items, json.dumps(result)[:1500]))
            self.add(section, 'task_s', task['seconds'], measured)
            self.add(section, 'task_minus_ping_s', task['seconds'] - ping['seconds'], measured)
            self.add(section, 'elapsed_s', result['elapsed'], measured)
            counts, dummy = self.step_counts(task)
            # One GET of the index, one GET per child manifest, one GET per blob.
            self.expect_counts(section, 'blob_verify index, round %d' % (number + 1), counts,
                               {'GET manifests': 1 + platforms, 'GET blobs': platforms * (1 + layers)})
            target = os.path.join(self.workdir, 'skopeo-index')
            shutil.rmtree(target, ignore_errors=True)
            seconds = self.skopeo('%s/bench/index:latest' % self.src, 'dir:' + target, extra=['--all'], cold=False)
            shutil.rmtree(target, ignore_errors=True)
            self.add(section, 'skopeo_s', seconds, measured)

    # -- signatures ----------------------------------------------------------------------------
    def signing_keys(self):
        """An ECDSA P-256 key pair made with openssl in the work dir: ``(private PEM path, public PEM path)``.

        The tasks get the PEM text itself (a throw-away key, in playbooks of the same work dir): a
        ``lookup('file', ...)`` would add the controller's templating to the times measured here.
        """
        private = os.path.join(self.workdir, 'bench-signing.key')
        public = os.path.join(self.workdir, 'bench-signing.pub')
        self.tool(['openssl', 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', private])
        self.tool(['openssl', 'pkey', '-in', private, '-pubout', '-out', public])
        return private, public

    def sign_source(self, image, private):
        """Sign the source image once (not measured): what the verifying copies and signature_verify read."""
        steps, dummy = self.runner.play([('sign the source', sign_task(image, private))])
        result = steps[0]['result']
        if result.get('failed') or not result.get('changed') or result.get('signature', {}).get('format') != \
                'simplesigning':
            self.fail('sign did not sign %s: %s' % (image, json.dumps(result)[:1500]))
        return result

    def openssl_verify(self, repo, public):
        """The reference tool: what users shell out to, curl for the bytes and openssl for the signature.

        Three requests, as few as the task can make: HEAD the tag (its digest), GET the manifest under
        ``sha256-<hex>.sig``, GET the payload; then check that the payload names the digest and
        ``openssl dgst -sha256 -verify`` the base64 signature of the layer's annotation. Returns seconds.
        """
        folder = os.path.join(self.workdir, 'openssl-verify')
        os.makedirs(folder, exist_ok=True)
        script = OPENSSL_VERIFY % {'base': shlex.quote('http://%s/v2/%s' % (self.src, repo)),
                                   'pub': shlex.quote(public), 'dir': shlex.quote(folder)}
        out, seconds = self.tool(script, shell=True)
        if 'Verified OK' not in out:
            self.fail('curl + openssl dgst -verify did not verify the signature: %r' % out.strip()[-500:])
        return seconds

    def expect_both(self, section, label, step, expected_src, expected_dest):
        src_counts, dest_counts = self.step_counts(step)
        self.expect_counts(section, label + ' (source)', src_counts, expected_src)
        if expected_dest:
            self.expect_counts(section, label + ' (destination)', dest_counts, expected_dest)
        else:
            self.check(section, label + ': other registry', dest_counts['total'] == 0, format_counts(dest_counts), '0')
        return src_counts, dest_counts

    def section_signatures(self):
        section = 'signatures'
        image = self.ref('signed')
        private_path, public_path = self.signing_keys()
        private, public = read_text(private_path), read_text(public_path)
        signed = self.sign_source(image, private)
        digest = signed['digest']
        self.info[section] = ('the small image (1 layer of 1 KiB and its config) signed once with sign (ECDSA P-256 '
                              'key made with openssl genpkey); copies cross-registry, each into a fresh '
                              'repository; deltas taken task minus task in the same play')
        for number, measured in self.rounds_iter():
            self.signature_copies(section, number, measured, image, private, public)
            self.signature_tasks(section, number, measured, image, digest, private, public)
            self.signature_reference(section, number, measured, public_path)

    def signature_copies(self, section, number, measured, image, private, public):
        """copy plain vs ``verify_signatures`` vs ``sign``, and the signing copy run again (unchanged).

        Plain cross-registry copy of 2 blobs: see ``copy_expectations``. The gate adds, on the source
        and before any write, the manifest under ``sha256-<hex>.sig`` and its one payload (it stops at
        the first signature that verifies): 2 GETs. Signing (simple signing) adds on the destination a
        GET of that tag (absent: 404), then for the payload a HEAD (absent), a POST and one PUT with the
        bytes, a HEAD of the empty config (there: the repository has a signature of another image, made
        by a warm-up copy, as a prod repository has), and the signature manifest's PUT under the tag.
        Run again: the copy is a HEAD on each registry (the tag holds the digest), the signing
        reads the signature back (the tag's manifest, the payload) to find it verifies: unchanged.
        """
        base = '%s/bench/signatures-%s/r%d' % (self.dest, self.run_id, number)
        plain = ('copy plain', copy_task(image, base + '/plain:latest'))
        gate = {'keys': [public]}
        verified = ('copy verify_signatures', copy_task(image, base + '/verified:latest', verify_signatures=gate))
        signing = copy_task(image, base + '/signed:latest', sign={'key': private})
        order = [plain, verified] if number % 2 == 0 else [verified, plain]   # alternate which goes first
        steps, dummy = self.runner.play(
            [('warm-up copy (not measured)', copy_task(image, base + '/warm:latest', verify_signatures=gate)),
             ('warm-up signed copy of another image (not measured)',
              copy_task(self.ref('tiny'), base + '/signed:tiny', sign={'key': private}))]
            + order + [('copy sign', signing), ('copy sign again', signing)])
        named = dict((step['name'], step) for step in steps[2:])
        for name, step in named.items():
            result = step['result']
            if result.get('failed') or bool(result.get('changed')) != (name != 'copy sign again'):
                self.fail('%s reported changed=%s: %s' % (name, result.get('changed'), json.dumps(result)[:1500]))
        plain_src, plain_dest = self.copy_expectations(2, mount=False)
        reads = {'GET manifests': 1, 'GET blobs': 1}     # the .sig manifest and its one payload
        writes = {'GET manifests': 1, 'HEAD blobs': 2, 'POST uploads': 1, 'PUT uploads': 1, 'PUT manifests': 1}
        round_ = ', round %d' % (number + 1)
        counts = {}
        for name, expected_src, expected_dest in (
                ('copy plain', plain_src, plain_dest),
                ('copy verify_signatures', merged(plain_src, reads), plain_dest),
                ('copy sign', plain_src, merged(plain_dest, writes)),
                ('copy sign again', {'HEAD manifests': 1}, merged({'HEAD manifests': 1}, reads))):
            counts[name] = self.expect_both(section, name + round_, named[name], expected_src, expected_dest)
        self.add(section, 'copy_plain_s', named['copy plain']['seconds'], measured)
        self.add(section, 'copy_verify_s', named['copy verify_signatures']['seconds'], measured)
        self.add(section, 'copy_sign_s', named['copy sign']['seconds'], measured)
        self.add(section, 'copy_sign_again_s', named['copy sign again']['seconds'], measured)
        self.add(section, 'verify_delta_s', named['copy verify_signatures']['seconds'] - named['copy plain']['seconds'],
                 measured)
        self.add(section, 'sign_delta_s', named['copy sign']['seconds'] - named['copy plain']['seconds'], measured)
        self.add(section, 'verify_src_delta_requests',
                 counts['copy verify_signatures'][0]['total'] - counts['copy plain'][0]['total'], measured)
        self.add(section, 'verify_dest_delta_requests',
                 counts['copy verify_signatures'][1]['total'] - counts['copy plain'][1]['total'], measured)
        self.add(section, 'sign_dest_delta_requests',
                 counts['copy sign'][1]['total'] - counts['copy plain'][1]['total'], measured)
        self.add(section, 'sign_again_requests', sum(c['total'] for c in counts['copy sign again']), measured)
        added = delta_kinds(counts['copy sign'][1], counts['copy plain'][1])
        # A blob upload is a POST (the upload session) and the PUT that carries the bytes.
        self.add(section, 'sign_dest_blob_uploads', added.get('POST uploads', 0), measured)
        self.add(section, 'sign_dest_manifest_puts', added.get('PUT manifests', 0), measured)

    def signature_tasks(self, section, number, measured, image, digest, private, public):
        """signature_verify and an unchanged sign, each minus a ping task, vs curl + openssl.

        signature_verify lists every signature (full discovery): a HEAD of the tag (its digest); the
        referrers API (404 on this registry); the fallback index ``sha256-<hex>`` (404); the cosign tags
        ``.sig``, ``.att``, ``.sbom`` (a GET each, two 404); then the payload of the one signature found
        (its manifest was read under the ``.sig`` tag). sign, unchanged: the HEAD, the ``.sig`` manifest, the payload.
        """
        steps, dummy = self.runner.play([('ping', PING), ('signature_verify', verify_task(image, public)),
                                         ('sign, unchanged', sign_task(image, private)),
                                         ('signature_verify again', verify_task(image, public)),
                                         ('sign, unchanged, again', sign_task(image, private))])
        ping = steps[0]
        round_ = ', round %d' % (number + 1)
        for step in steps[1:]:
            result = step['result']
            if step['name'].startswith('signature_verify'):
                if result.get('failed') or not result.get('verified') or result.get('digest') != digest or \
                        [s.get('verified') for s in result.get('signatures', [])] != [True]:
                    self.fail('signature_verify did not verify the one signature: %s' % json.dumps(result)[:1500])
                expected = {'HEAD manifests': 1, 'GET other': 1, 'GET manifests': 4, 'GET blobs': 1}
            else:
                if result.get('failed') or result.get('changed'):
                    self.fail('sign of an already signed image reported changed=%s: %s'
                              % (result.get('changed'), json.dumps(result)[:1500]))
                expected = {'HEAD manifests': 1, 'GET manifests': 1, 'GET blobs': 1}
            src_counts, dummy = self.expect_both(section, step['name'] + round_, step, expected, None)
            # The first task of each module in the play includes building its payload on the
            # controller (cached for the rest of the play): the second is the module's own cost.
            key = ('verify' if step['name'].startswith('signature_verify') else 'sign_same') + \
                ('_warm' if 'again' in step['name'] else '')
            self.add(section, key + '_minus_ping_s', step['seconds'] - ping['seconds'], measured)
            self.add(section, key + '_requests', src_counts['total'], measured)
        self.add(section, 'ping_s', ping['seconds'], measured)

    def signature_reference(self, section, number, measured, public_path):
        """curl + openssl over the same signature; its three requests checked like the module's."""
        before = self.log_mark()
        seconds = self.openssl_verify('bench/signed', public_path)
        src_counts, dummy = self.log_counts(before)
        self.expect_counts(section, 'curl + openssl dgst -verify, round %d' % (number + 1), src_counts,
                           {'HEAD manifests': 1, 'GET manifests': 1, 'GET blobs': 1})
        self.add(section, 'openssl_s', seconds, measured)
        self.add(section, 'openssl_requests', src_counts['total'], measured)

    # -- sync --------------------------------------------------------------------------------
    def skopeo_sync(self, repo, prefix, cold, src=None, dest=None):
        """``skopeo sync`` of every tag of ``repo`` (source registry) to ``prefix/<last part of repo>`` (destination
        registry); returns seconds. ``cold``: the blob-info cache removed first, as before every first copy.
        ``src``/``dest``: other addresses of the two registries (DelayLinks)."""
        if cold:
            self.drop_skopeo_cache()
        dummy, seconds = self.tool(['skopeo', 'sync', '--src', 'docker', '--dest', 'docker', '--src-tls-verify=false',
                                    '--dest-tls-verify=false', '%s/%s' % (src or self.src, repo),
                                    '%s/%s' % (dest or self.dest, prefix)])
        return seconds

    def dest_tags(self, repo):
        """The destination repository's tags (read after the requests of a step were counted)."""
        response = Registry(self.dest).request('GET', 'http://%s/v2/%s/tags/list' % (self.dest, repo))
        if response.status_code != 200:
            return []
        return sorted(response.json().get('tags') or [])

    @staticmethod
    def sync_expectations(tags, new):
        """Requests of a sync of ``tags`` single-layer tags (all new, or all unchanged) to another registry.

        Plan: the source's tag list (one page), one HEAD per tag on each side. New tags (each its own image,
        nothing shared): at the source a GET of the manifest and of both blobs; at the destination a HEAD per
        blob (absent), a POST and one PUT with the bytes each, a HEAD of the manifest by digest (absent) and its
        PUT by digest, then, in the tag phase, the PUT by tag.
        """
        src, dest = {'GET tags': 1, 'HEAD manifests': tags}, {'HEAD manifests': tags}
        if new:
            src = merged(src, {'GET manifests': tags, 'GET blobs': 2 * tags})
            dest = merged(dest, {'HEAD manifests': tags, 'HEAD blobs': 2 * tags, 'POST uploads': 2 * tags,
                                 'PUT uploads': 2 * tags, 'PUT manifests': 2 * tags})
        return src, dest

    def section_sync(self):
        section = 'sync'
        tags = self.sync_tags
        self.info[section] = ('%d distinct small images (1 layer of 1 KiB and a config each), one tag each, synced '
                              'to a fresh repository of the other registry each round, by the module and by skopeo '
                              'sync (its blob-info cache removed before the first); the second run of each finds '
                              'every tag unchanged; memory: %d unchanged tags over %d images'
                              % (tags, self.sync_memory_tags, SYNC_MANY_IMAGES))
        wanted = sorted(sync_tag(i) for i in range(tags))
        for number, measured in self.rounds_iter():
            base = 'bench/sync-%s/r%d' % (self.run_id, number)
            # Alternate which goes first: both write to the same registries.
            order = (self.sync_module, self.sync_skopeo) if number % 2 == 0 else (self.sync_skopeo, self.sync_module)
            for step in order:
                step(section, number, measured, base, wanted)
            self.sync_far(section, number, measured, base, wanted)
            self.sync_memory(section, number, measured, base)

    def sync_module(self, section, number, measured, base, wanted):
        """The module's first and second sync, each the first sync task of its own play (as in two pipeline
        runs), after a ping task; the second play runs the unchanged sync once more, as the second sync task of
        the play: without the payload Ansible builds once per module and play, the module's own cost."""
        tags = len(wanted)
        task = sync_task('%s/%s' % (self.src, SYNC_REPO), '%s/%s/module' % (self.dest, base))
        for key, new in (('first', True), ('again', False)):
            plan = [('ping', PING), ('sync', task)] + ([] if new else [('sync, second task of the play', task)])
            steps, dummy = self.runner.play(plan)
            ping = steps[0]
            self.add(section, 'ping_s', ping['seconds'], measured and new)
            for step in steps[1:]:
                name = key if step is steps[1] else key + '_warm'
                self.sync_step(section, number, measured, step, name, tags, new)
                self.add(section, name + '_minus_ping_s', step['seconds'] - ping['seconds'], measured)
        if self.dest_tags('%s/module' % base) != wanted:
            self.fail('sync left %s at the destination, expected the %d tags' % (self.dest_tags(base + '/module'), tags))

    def sync_step(self, section, number, measured, step, key, tags, new):
        """One sync task: its result, its requests on both registries (checked), its time."""
        result = step['result']
        if result.get('failed') or bool(result.get('changed')) != new or result.get('tags_selected') != tags \
                or result.get('tags_changed' if new else 'tags_unchanged') != tags:
            self.fail('sync (%s) did not do its job: %s' % (step['name'], json.dumps(result)[:1500]))
        self.add(section, key + '_s', step['seconds'], measured)
        src_counts, dest_counts = self.step_counts(step)
        expected_src, expected_dest = self.sync_expectations(tags, new)
        label = 'sync %d tags, %s%s%s, round %d' % (tags, 'new' if new else 'unchanged',
                                                    ', second task of the play' if key.endswith('_warm') else '',
                                                    ', through the delaying links' if key == 'far' else '', number + 1)
        self.expect_counts(section, label + ' (source)', src_counts, expected_src)
        self.expect_counts(section, label + ' (destination)', dest_counts, expected_dest)
        self.add(section, key + '_requests', src_counts['total'] + dest_counts['total'], measured)
        self.add(section, key + '_list_requests', src_counts['by_kind'].get('tags', 0)
                 + dest_counts['by_kind'].get('tags', 0), measured)

    def sync_skopeo(self, section, number, measured, base, wanted):
        """skopeo sync of the same tags to another fresh repository, twice; its requests reported, not checked."""
        prefix = '%s/skopeo' % base
        for key, cold in (('skopeo_first', True), ('skopeo_again', False)):
            before = self.log_mark()
            seconds = self.skopeo_sync(SYNC_REPO, prefix, cold)
            src_counts, dest_counts = self.log_counts(before)
            self.add(section, key + '_s', seconds, measured)
            self.add(section, key + '_requests', src_counts['total'] + dest_counts['total'], measured)
            if self.quick or number == 0:
                self.counts.append({'section': section, 'case': 'skopeo sync %d tags, %s, round %d (not checked)'
                                    % (len(wanted), 'new' if cold else 'unchanged', number + 1), 'ok': True,
                                    'measured': 'source %s; destination %s' % (format_counts(src_counts),
                                                                               format_counts(dest_counts)),
                                    'expected': '-'})
        copied = self.dest_tags('%s/%s' % (prefix, SYNC_REPO.rsplit('/', 1)[-1]))
        if copied != wanted:
            self.fail('skopeo sync left %d tags at the destination, expected %d' % (len(copied), len(wanted)))

    def sync_far(self, section, number, measured, base, wanted):
        """The unchanged syncs again, both tools through DelayLinks that put the registries SYNC_FAR_DELAY away
        each way: the module's sync (first sync task of its play, after ping) and skopeo sync, in turn."""
        links = [DelayLink(self.src, SYNC_FAR_DELAY), DelayLink(self.dest, SYNC_FAR_DELAY)]
        try:
            src, dest = links[0].host, links[1].host
            steps, dummy = self.runner.play([('ping', PING), ('sync', sync_task(
                '%s/%s' % (src, SYNC_REPO), '%s/%s/module' % (dest, base)))])
            ping, step = steps
            self.sync_step(section, number, measured, step, 'far', len(wanted), False)
            self.add(section, 'far_minus_ping_s', step['seconds'] - ping['seconds'], measured)
            seconds = self.skopeo_sync(SYNC_REPO, '%s/skopeo' % base, False, src, dest)
            self.add(section, 'skopeo_far_s', seconds, measured)
        finally:
            for link in links:
                link.close()

    def sync_memory(self, section, number, measured, base):
        """The module's peak RSS and CPU time planning many unchanged tags, and the round's tags (unchanged by
        now); the task's time too, though the wrapper that reads the RSS adds a process start to it."""
        round_ = ', round %d' % (number + 1)
        for key, src, dest, tags in (
                ('tags', SYNC_REPO, '%s/module' % base, self.sync_tags),
                ('many', SYNC_MANY_REPO, SYNC_MANY_REPO, self.sync_memory_tags)):
            steps, peaks = self.runner.play([('sync', sync_task('%s/%s' % (self.src, src),
                                                                '%s/%s' % (self.dest, dest)))], rss=True)
            result = steps[0]['result']
            if result.get('failed') or result.get('changed') or result.get('tags_unchanged') != tags:
                self.fail('sync of %d unchanged tags did not find them unchanged: %s' % (tags, json.dumps(result)[:1500]))
            mine = [peak for peak in peaks if 'sync' in peak[1]] or peaks
            self.add(section, 'rss_%s_mib' % key, max(peak[0] for peak in mine) / 1024.0, measured)
            self.add(section, 'cpu_%s_s' % key, max(peak[2] for peak in mine), measured)
            self.add(section, 'rss_task_%s_s' % key, steps[0]['seconds'], measured)
            src_counts, dest_counts = self.step_counts(steps[0])
            expected_src, expected_dest = self.sync_expectations(tags, False)
            label = 'sync %d tags, unchanged, peak RSS%s' % (tags, round_)
            self.expect_counts(section, label + ' (source)', src_counts, expected_src)
            self.expect_counts(section, label + ' (destination)', dest_counts, expected_dest)
        samples = self.samples.get(section, {})
        if measured:
            self.add(section, 'rss_growth_mib', samples['rss_many_mib'][-1] - samples['rss_tags_mib'][-1], measured)

    # -- export ------------------------------------------------------------------------------
    def section_export(self):
        section = 'export'
        big = self.images['big']
        image = self.ref('big')
        self.info[section] = ('the big image (%s in 1 layer) to a fresh OCI layout directory each round, by the '
                              'module and by skopeo copy docker:// oci: and dir: (its blob-info cache removed first); then '
                              'the module again into the same directory' % human_bytes(big['size']))
        for number, measured in self.rounds_iter():
            target = os.path.join(self.workdir, 'export-r%d' % number)
            order = (self.export_module, self.export_skopeo) if number % 2 == 0 else \
                (self.export_skopeo, self.export_module)
            for step in order:
                step(section, number, measured, image, target)

    def export_module(self, section, number, measured, image, target):
        """Two exports into ``target``, each the first export task of its play after a ping task: the first
        fetches both blobs, the second finds them there (hashed on disk) and fetches none."""
        big = self.images['big']
        layout = target + '-module'
        round_ = ', round %d' % (number + 1)
        for key, new in (('first', True), ('again', False)):
            steps, dummy = self.runner.play([('ping', PING), ('export', export_task([image], layout))])
            ping, step = steps
            result = step['result']
            fetched = 2 if new else 0
            if result.get('failed') or bool(result.get('changed')) != new or result.get('blobs_fetched') != fetched \
                    or result.get('bytes_transferred') != (sum(big['blob_sizes']) if new else 0):
                self.fail('export (%s) did not do its job: %s' % (key, json.dumps(result)[:1500]))
            self.add(section, key + '_s', step['seconds'], measured)
            self.add(section, key + '_minus_ping_s', step['seconds'] - ping['seconds'], measured)
            src_counts, dummy = self.step_counts(step)
            # The manifest (a GET by tag), then with an empty layout one GET per blob; none once they are there.
            expected = {'GET manifests': 1, 'GET blobs': fetched}
            self.expect_counts(section, 'export, %s%s' % ('fresh layout' if new else 'same layout again', round_),
                               src_counts, expected)
            self.add(section, key + '_requests', src_counts['total'], measured)
            self.add(section, key + '_blob_gets', src_counts['by_method_kind'].get('GET blobs', 0), measured)
        self.check_layout(layout, 'export')
        shutil.rmtree(layout, ignore_errors=True)

    def export_skopeo(self, section, number, measured, image, target):
        layout = target + '-skopeo'
        before = self.log_mark()
        seconds = self.skopeo(image, 'oci:%s:latest' % layout)
        src_counts, dummy = self.log_counts(before)
        self.add(section, 'skopeo_s', seconds, measured)
        self.add(section, 'skopeo_requests', src_counts['total'], measured)
        if self.quick or number == 0:
            self.counts.append({'section': section, 'case': 'skopeo copy docker:// oci:, round %d (not checked)'
                                % (number + 1), 'ok': True, 'measured': format_counts(src_counts), 'expected': '-'})
        self.check_layout(layout, 'skopeo copy docker:// oci:')
        shutil.rmtree(layout, ignore_errors=True)
        # The same bytes written unchanged (skopeo's dir: destination does not compress): the reference that
        # does the module's work, no more.
        folder = target + '-skopeo-dir'
        seconds = self.skopeo(image, 'dir:' + folder)
        copied = os.path.join(folder, self.images['big']['layer'].split(':', 1)[1])
        if not os.path.isfile(copied) or os.path.getsize(copied) != self.images['big']['size']:
            self.fail('skopeo copy to dir: did not leave the layer at %s' % copied)
        shutil.rmtree(folder, ignore_errors=True)
        self.add(section, 'skopeo_dir_s', seconds, measured)

    def check_layout(self, layout, who):
        """The layout lists one image whose one layer file is there, at least the big layer's size: skopeo's OCI
        destination gzips a layer it finds uncompressed (the bench's is random bytes), so its digest differs."""
        size = self.images['big']['size']
        try:
            with open(os.path.join(layout, 'index.json')) as handle:
                entry = json.load(handle)['manifests'][0]
            with open(self.layout_blob(layout, entry['digest'])) as handle:
                layer = json.load(handle)['layers'][0]
            ok = layer['size'] >= size and os.path.getsize(self.layout_blob(layout, layer['digest'])) == layer['size']
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            ok = False
        if not ok:
            self.fail('%s did not leave an OCI layout with a layer of %d bytes or more in %s' % (who, size, layout))

    @staticmethod
    def layout_blob(layout, digest):
        return os.path.join(layout, 'blobs', *digest.split(':', 1))

    # -- prune -------------------------------------------------------------------------------
    def section_prune(self):
        section = 'prune'
        layout = self.images['prune']['layout']
        doomed = prune_doomed(layout)
        by_age = [tag for tag in layout if re.search(PRUNE_CANDIDATES, tag)]
        self.info[section] = ('%d tags over 7 digests (5 OCI images, 2 two-platform OCI indexes, one config '
                              '`created` each, 2020 or a day before the run), keep %s, candidates %s: %d tags decided '
                              'by age, %d of them deleted; the real run on a fresh copy (blobs mounted, tags PUT) '
                              'each round' % (len(layout), json.dumps(PRUNE_KEEP), PRUNE_CANDIDATES, len(by_age),
                                              len(doomed)))
        for number, measured in self.rounds_iter():
            copy = 'bench/prune-%s/r%d' % (self.run_id, number)
            self.add(section, 'copy_seed_s', self.prune_copy(copy), measured)
            steps, dummy = self.runner.play([
                ('ping', PING), ('plan', prune_task('%s/%s' % (self.src, PRUNE_REPO), True)),
                ('plan, second task', prune_task('%s/%s' % (self.src, PRUNE_REPO), True)),
                ('plan of the copy', prune_task('%s/%s' % (self.src, copy), True)),
                ('real run on the copy', prune_task('%s/%s' % (self.src, copy), False)),
                ('second real run', prune_task('%s/%s' % (self.src, copy), False))])
            named = dict((step['name'], step) for step in steps)
            self.prune_results(named, layout, doomed)
            left = self.src_tags(copy)
            if left != sorted(set(layout) - set(doomed)):
                self.fail('prune left %d tags in %s, expected %d' % (len(left), copy, len(layout) - len(doomed)))
            self.prune_counts(section, number, measured, named, layout, doomed)
            ping = named['ping']['seconds']
            self.add(section, 'ping_s', ping, measured)
            self.add(section, 'plan_s', named['plan']['seconds'], measured)
            self.add(section, 'plan_minus_ping_s', named['plan']['seconds'] - ping, measured)
            self.add(section, 'plan_warm_minus_ping_s', named['plan, second task']['seconds'] - ping, measured)
            self.add(section, 'copy_plan_s', named['plan of the copy']['seconds'], measured)
            self.add(section, 'real_s', named['real run on the copy']['seconds'], measured)
            self.add(section, 'again_s', named['second real run']['seconds'], measured)
            self.add(section, 'delete_per_tag_s', (named['real run on the copy']['seconds']
                                                   - named['plan of the copy']['seconds']) / len(doomed), measured)
            self.prune_cpu(section, measured)

    def prune_cpu(self, section, measured):
        """Where the plan's time goes: the module process's CPU time (the bench's wrapper) and the registry's
        (from /proc) for one more check-mode plan, and both over the machine's cores."""
        before = self.registries.cpu_seconds('bench-src')
        steps, peaks = self.runner.play([('plan', prune_task('%s/%s' % (self.src, PRUNE_REPO), True))], rss=True)
        serving = self.registries.cpu_seconds('bench-src') - before
        if steps[0]['result'].get('failed'):
            self.fail('prune (plan, CPU time) failed: %s' % json.dumps(steps[0]['result'])[:1500])
        module = max(peak[2] for peak in ([p for p in peaks if 'prune' in p[1]] or peaks))
        self.add(section, 'plan_module_cpu_s', module, measured)
        self.add(section, 'plan_registry_cpu_s', serving, measured)
        self.add(section, 'plan_cpu_floor_s', (module + serving) / (os.cpu_count() or 1), measured)

    def prune_results(self, named, layout, doomed):
        """Each step did its job: the same plan in check mode and in the real run, then nothing left to do."""
        plans = {}
        for name, step in named.items():
            if name == 'ping':
                continue
            result = step['result']
            again = name == 'second real run'
            plans[name] = [(e.get('tag'), e.get('digest'), e.get('action'), e.get('rule'))
                           for e in result.get('plan') or []]
            if result.get('failed') or bool(result.get('changed')) == again or result.get('deleted_manifests') or \
                    sorted(result.get('deleted_tags') or []) != ([] if again else doomed) or \
                    len(plans[name]) != len(layout) - (len(doomed) if again else 0):
                self.fail('prune (%s) did not do its job: %s' % (name, json.dumps(result)[:1500]))
        if plans['plan'] != plans['plan, second task']:
            self.fail('two check-mode plans of the same repository differ')
        if plans['plan of the copy'] != plans['real run on the copy']:
            self.fail('the real run did not carry out the check-mode plan: %s'
                      % json.dumps(named['real run on the copy']['result'])[:1500])

    def prune_counts(self, section, number, measured, named, layout, doomed):
        """Every step's requests, checked: the plan (twice, and on the copy), the real run, the second run."""
        kept = dict((tag, name) for tag, name in layout.items() if tag not in doomed)
        round_ = ', round %d' % (number + 1)
        totals = {}
        for name, expected in (('plan', prune_plan_expectations(layout, True)),
                               ('plan, second task', prune_plan_expectations(layout, True)),
                               ('plan of the copy', prune_plan_expectations(layout, True)),
                               ('real run on the copy', prune_real_expectations(layout, len(doomed))),
                               ('second real run', prune_plan_expectations(kept, False))):
            src_counts, dummy = self.expect_both(section, 'prune %d tags, %s%s' % (len(layout), name, round_),
                                                 named[name], expected, None)
            totals[name] = src_counts
        self.add(section, 'plan_requests', totals['plan']['total'], measured)
        self.add(section, 'plan_lists', totals['plan']['by_kind'].get('tags', 0), measured)
        self.add(section, 'plan_tag_requests', totals['plan']['by_method_kind'].get('HEAD manifests', 0)
                 + len([t for t in layout if re.search(PRUNE_CANDIDATES, t)]), measured)
        self.add(section, 'plan_blob_gets', totals['plan']['by_method_kind'].get('GET blobs', 0), measured)
        self.add(section, 'real_requests', totals['real run on the copy']['total'], measured)
        self.add(section, 'delete_requests_per_tag', (totals['real run on the copy']['total']
                                                      - totals['plan of the copy']['total']) / float(len(doomed)),
                 measured)
        self.add(section, 'again_requests', totals['second real run']['total'], measured)

    def src_tags(self, repo):
        response = Registry(self.src).request('GET', 'http://%s/v2/%s/tags/list' % (self.src, repo))
        if response.status_code != 200:
            return []
        return sorted(response.json().get('tags') or [])

    # -- running -------------------------------------------------------------------------------
    def run(self):
        self.machine = machine_info(self.python)
        self.started_at = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        start = time.perf_counter()
        self.section_seconds = {}
        try:
            self.setup()
            for section in SECTIONS:
                if section in self.sections:
                    began = time.perf_counter()
                    print('bench: %s ...' % section, file=sys.stderr, flush=True)
                    getattr(self, 'section_' + section)()
                    self.section_seconds[section] = round(time.perf_counter() - began, 1)
        finally:
            if self.registries is not None:
                self.registries.stop_all()
            if self.workdir and not self.args.keep:
                shutil.rmtree(self.workdir, ignore_errors=True)
        self.machine['loadavg_end'] = list(os.getloadavg())
        self.total_seconds = time.perf_counter() - start


# ----------------------------------------------------------------------------------------------
# report


def cell(text):
    """A markdown table cell: pipes escaped (also inside code spans, which GitHub renders)."""
    return str(text).replace('|', '\\|')


def row(*cells):
    return '| %s |' % ' | '.join(cell(c) for c in cells)


def fmt(value, unit):
    if value is None:
        return 'n/a'
    if unit == 's':
        return '%.3f s' % value
    if unit == 'GB/s':
        return '%.2f GB/s' % (value / 1e9)
    if unit == 'MiB':
        return '%.1f MiB' % value
    if unit == 'bytes':
        return human_bytes(int(value)) if value else '0 B'
    if unit == 'n':
        return '%d' % value
    if unit == 'n.nn':
        return '%.2f' % value
    return '%s' % value


def table(samples, rows):
    """rows: (label, key, unit, ratio) with ratio None or (ref_key, ref_label) or (ref_key, ref_label, invert)."""
    lines = ['| measurement | median | min | max | vs … (median ratio) |', '|---|---|---|---|---|']
    for label, key, unit, ratio in rows:
        values = samples.get(key)
        if not values:
            continue
        median, low, high = summary(values)
        text = ''
        if ratio and samples.get(ratio[0]):
            pairs = ratios(values, samples[ratio[0]])
            if pairs:
                text = '%.2fx %s' % (summary(pairs)[0], ratio[1])
        lines.append(row(label, fmt(median, unit), fmt(low, unit), fmt(high, unit), text))
    return lines


def median_ratio(samples, key, ref):
    """The median of the round-by-round ratios key/ref; NaN (every comparison false) when there are none."""
    if not samples.get(key) or not samples.get(ref):
        return float('nan')
    value = summary(ratios(samples[key], samples[ref]))[0]
    return float('nan') if value is None else value


def floors(bench):
    """``[(issue, floor, measured text, ok)]`` for the sections that ran."""
    out = []
    s = bench.samples
    bv = s.get('blob_verify', {})
    if bv:
        value = median_ratio(bv, 'module_Bps', 'limit_Bps')
        out.append(('3', 'in-module download + verify >= 0.65 x min(hashlib sha256, loopback curl)',
                    '%s = %.2fx (limit median %s)' % (fmt(summary(bv['module_Bps'])[0], 'GB/s'), value,
                                                      fmt(summary(bv['limit_Bps'])[0], 'GB/s')), value >= 0.65))
        for key, label in (('task_minus_ping_s', 'first'), ('warm_task_minus_ping_s', 'second')):
            value = median_ratio(bv, key, 'curl_openssl_s')
            out.append(('3', 'task - ping <= 0.8 x curl | openssl dgst -sha256 (%s blob_verify task of the play)'
                        % label, '%s = %.2fx %s' % (fmt(summary(bv[key])[0], 's'), value,
                                                    fmt(summary(bv['curl_openssl_s'])[0], 's')), value <= 0.8))
        growth = max(bv['rss_growth_mib'])
        out.append(('3', 'module peak RSS growth < 64 MiB (%s layer vs tiny image, worst round)'
                    % human_bytes(bench.big_size), '%.1f MiB (%.1f vs %.1f MiB)'
                    % (growth, summary(bv['rss_big_mib'])[0], summary(bv['rss_tiny_mib'])[0]), growth < 64))
    wk = s.get('workers', {})
    if wk:
        value = median_ratio(wk, 'bv30_wd_elapsed_s', 'bv30_w1_elapsed_s')
        out.append(('3', '30 layers: blob_verify workers %d faster than workers 1 (in-module elapsed)'
                    % bench.bv_workers,
                    '%.2fx (%s vs %s)' % (value, fmt(summary(wk['bv30_wd_elapsed_s'])[0], 's'),
                                          fmt(summary(wk['bv30_w1_elapsed_s'])[0], 's')), value < 1))
        value = median_ratio(wk, 'copy50_wd_s', 'copy50_w1_s')
        out.append(('5', '%d layers: copy workers %d faster than workers 1 (task time)'
                    % (bench.many_layers, bench.copy_workers), '%.2fx (%s vs %s)'
                    % (value, fmt(summary(wk['copy50_wd_s'])[0], 's'), fmt(summary(wk['copy50_w1_s'])[0], 's')),
                    value < 1))
    rt = s.get('retag', {})
    if rt:
        for key, ref, label in (('fifty_new_s', 'one_new_s', 'changed'), ('fifty_same_s', 'one_same_s', 'unchanged')):
            value = median_ratio(rt, key, ref)
            out.append(('4', '50 tags < 1.5 x one tag (%s)' % label, '%.2fx (%s vs %s)'
                        % (value, fmt(summary(rt[key])[0], 's'), fmt(summary(rt[ref])[0], 's')), value < 1.5))
    cp = s.get('copy', {})
    if cp:
        transferred = cp['big_mount_bytes'] + cp['many_mount_bytes']
        out.append(('5', 'cross-repository copy (mount) transfers 0 bytes', 'max %d bytes over %d copies'
                    % (max(transferred), len(transferred)), max(transferred) == 0))
        value = median_ratio(cp, 'big_cross_s', 'big_cross_skopeo_s')
        out.append(('5', '%s copy between registries, whole task <= skopeo copy' % human_bytes(bench.big_size),
                    '%.2fx (%s vs %s)' % (value, fmt(summary(cp['big_cross_s'])[0], 's'),
                                          fmt(summary(cp['big_cross_skopeo_s'])[0], 's')), value <= 1))
    out.extend(signature_floors(s.get('signatures', {})))
    out.extend(sync_floors(bench, s.get('sync', {})))
    out.extend(export_floors(bench, s.get('export', {})))
    out.extend(prune_floors(bench, s.get('prune', {})))
    return out


def signature_floors(sg):
    """Issue 15: what verifying one key-based signature and signing add to a copy."""
    if not sg.get('verify_delta_s'):
        return []
    delta = [a + b for a, b in zip(sg['verify_src_delta_requests'], sg['verify_dest_delta_requests'])]
    value = summary(sg['verify_delta_s'])[0]
    uploads, puts = max(sg['sign_dest_blob_uploads']), max(sg['sign_dest_manifest_puts'])
    return [
        ('15', 'copy verify_signatures (1 key-based signature): at most 3 more requests',
         'max %d more (source), max %d more (destination)' % (max(sg['verify_src_delta_requests']),
                                                              max(sg['verify_dest_delta_requests'])),
         max(delta) <= 3 and max(sg['verify_dest_delta_requests']) == 0),
        ('15', 'copy verify_signatures: under 50 ms more on loopback (task - task, median)',
         '%s (min %s, max %s)' % (fmt(value, 's'), fmt(min(sg['verify_delta_s']), 's'),
                                  fmt(max(sg['verify_delta_s']), 's')), value < 0.05),
        ('15', 'copy sign: one blob upload and one manifest PUT more on the destination',
         '%d blob upload%s (POST + PUT each: the payload; the empty config is there), %d manifest PUT, '
         '%d requests more in all' % (uploads, '' if uploads == 1 else 's', puts, max(sg['sign_dest_delta_requests'])),
         uploads <= 1 and puts == 1),
    ]


def sync_rows(tags, many):
    far_ms = int(round(SYNC_FAR_DELAY * 2000))
    return [
        ('ansible.builtin.ping task', 'ping_s', 's', None),
        ('sync %d new tags, task' % tags, 'first_s', 's', ('skopeo_first_s', 'skopeo sync')),
        ('sync %d new tags, task - ping' % tags, 'first_minus_ping_s', 's', ('skopeo_first_s', 'skopeo sync')),
        ('`skopeo sync --src docker --dest docker`, %d new tags' % tags, 'skopeo_first_s', 's', None),
        ('sync %d unchanged tags (second run), task' % tags, 'again_s', 's', ('skopeo_again_s', 'skopeo sync')),
        ('sync %d unchanged tags, task - ping' % tags, 'again_minus_ping_s', 's', ('skopeo_again_s', 'skopeo sync')),
        ('sync %d unchanged tags, second sync task of the play, task - ping' % tags, 'again_warm_minus_ping_s', 's',
         ('skopeo_again_s', 'skopeo sync')),
        ('`skopeo sync`, second run, %d unchanged tags' % tags, 'skopeo_again_s', 's', None),
        ('sync %d unchanged tags, %d ms round trip to each registry, task' % (tags, far_ms), 'far_s', 's',
         ('skopeo_far_s', 'skopeo sync')),
        ('... task - ping', 'far_minus_ping_s', 's', ('skopeo_far_s', 'skopeo sync')),
        ('`skopeo sync`, %d unchanged tags, %d ms round trip' % (tags, far_ms), 'skopeo_far_s', 's', None),
        ('sync %d new tags, requests (both registries)' % tags, 'first_requests', 'n',
         ('skopeo_first_requests', 'skopeo')),
        ('skopeo sync %d new tags, requests (both registries)' % tags, 'skopeo_first_requests', 'n', None),
        ('sync %d unchanged tags, requests (both registries)' % tags, 'again_requests', 'n',
         ('skopeo_again_requests', 'skopeo')),
        ('... of which tag lists', 'again_list_requests', 'n', None),
        ('skopeo sync %d unchanged tags, requests (both registries)' % tags, 'skopeo_again_requests', 'n', None),
        ('module peak RSS, sync of %d unchanged tags' % tags, 'rss_tags_mib', 'MiB', None),
        ('module peak RSS, sync of %d unchanged tags' % many, 'rss_many_mib', 'MiB', None),
        ('module peak RSS growth, %d tags vs %d' % (many, tags), 'rss_growth_mib', 'MiB', None),
        ('module process CPU time, sync of %d unchanged tags' % tags, 'cpu_tags_s', 's', None),
        ('module process CPU time, sync of %d unchanged tags' % many, 'cpu_many_s', 's', ('cpu_tags_s', '%d tags' % tags)),
        ('sync of %d unchanged tags, task (with the peak-RSS wrapper)' % tags, 'rss_task_tags_s', 's', None),
        ('sync of %d unchanged tags, task (with the peak-RSS wrapper)' % many, 'rss_task_many_s', 's',
         ('rss_task_tags_s', '%d tags' % tags))]


def sync_floors(bench, sy):
    """Issue 16: sync against skopeo sync, the requests of unchanged tags, memory in the number of tags."""
    if not sy.get('first_s'):
        return []
    tags = bench.sync_tags
    first = median_ratio(sy, 'first_minus_ping_s', 'skopeo_first_s')
    again = median_ratio(sy, 'again_s', 'skopeo_again_s')
    again_minus_ping = median_ratio(sy, 'again_minus_ping_s', 'skopeo_again_s')
    again_warm = median_ratio(sy, 'again_warm_minus_ping_s', 'skopeo_again_s')
    far = median_ratio(sy, 'far_s', 'skopeo_far_s')
    far_ms = int(round(SYNC_FAR_DELAY * 2000))
    per_tag = max(r - lists for r, lists in zip(sy['again_requests'], sy['again_list_requests'])) / float(tags)
    rss = max(sy['rss_many_mib'])
    return [
        ('16', '%d new small tags: sync task - ping <= 1.0x skopeo sync' % tags, '%.2fx (%s vs %s)'
         % (first, fmt(summary(sy['first_minus_ping_s'])[0], 's'), fmt(summary(sy['skopeo_first_s'])[0], 's')),
         first <= 1.0),
        ('16', '%d unchanged tags: sync task <= 0.3x a second skopeo sync' % tags, '%.2fx (%s vs %s; task - ping '
         '%.2fx, second sync task of the play - ping %.2fx)'
         % (again, fmt(summary(sy['again_s'])[0], 's'), fmt(summary(sy['skopeo_again_s'])[0], 's'), again_minus_ping,
            again_warm), again <= 0.3),
        ('16', '... with the registries %d ms away (round trip; the floor itself is on loopback): sync task <= 0.3x'
         % far_ms,
         '%.2fx (%s vs %s)' % (far, fmt(summary(sy['far_s'])[0], 's'), fmt(summary(sy['skopeo_far_s'])[0], 's')),
         far <= 0.3),
        ('16', '%d unchanged tags: at most 2 requests per tag plus the tag lists' % tags,
         'max %d requests: %.2f per tag plus %d tag list%s (skopeo: %d)'
         % (max(sy['again_requests']), per_tag, max(sy['again_list_requests']),
            '' if max(sy['again_list_requests']) == 1 else 's', summary(sy['skopeo_again_requests'])[0]),
         per_tag <= 2),
        ('16', 'sync planning %d unchanged tags: module peak RSS under 100 MiB (worst round)' % bench.sync_memory_tags,
         '%.1f MiB (%d tags: %.1f MiB)' % (rss, tags, max(sy['rss_tags_mib'])), rss < 100),
    ]


def export_floors(bench, ex):
    """Issue 16: export to an OCI layout against skopeo copy, and a second export that fetches no blob."""
    if not ex.get('first_s'):
        return []
    value = median_ratio(ex, 'first_minus_ping_s', 'skopeo_s')
    dir_value = median_ratio(ex, 'first_minus_ping_s', 'skopeo_dir_s')
    gets = max(ex['again_blob_gets'])
    return [
        ('16', '%s export to an OCI layout: task - ping <= 1.0x skopeo copy docker:// oci:' % human_bytes(bench.big_size),
         '%.2fx (%s vs %s)' % (value, fmt(summary(ex['first_minus_ping_s'])[0], 's'),
                               fmt(summary(ex['skopeo_s'])[0], 's')), value <= 1.0),
        ('16', '... and <= 1.0x skopeo copy docker:// dir: (which, unlike oci:, does not gzip the uncompressed layer)',
         '%.2fx (%s vs %s)' % (dir_value, fmt(summary(ex['first_minus_ping_s'])[0], 's'),
                               fmt(summary(ex['skopeo_dir_s'])[0], 's')), dir_value <= 1.0),
        ('16', 'export again into the same layout: no blob GET', 'max %d blob GETs, %d requests'
         % (gets, max(ex['again_requests'])), gets == 0),
    ]


def prune_rows(tags):
    return [
        ('ansible.builtin.ping task', 'ping_s', 's', None),
        ('prune plan of %d tags (check mode), task, first prune task of the play' % tags, 'plan_s', 's', None),
        ('... task - ping', 'plan_minus_ping_s', 's', None),
        ('... second prune task of the play, task - ping', 'plan_warm_minus_ping_s', 's', None),
        ('plan, requests', 'plan_requests', 'n', None),
        ('... of which tag lists', 'plan_lists', 'n', None),
        ('... of which one HEAD or manifest GET per tag', 'plan_tag_requests', 'n', None),
        ('... of which config GETs (the age-dependent digests; an index: its children\'s)', 'plan_blob_gets', 'n',
         None),
        ('plan, module process CPU time (a separate play, with the peak-RSS wrapper)', 'plan_module_cpu_s', 's', None),
        ('plan, registry process CPU time serving it', 'plan_registry_cpu_s', 's', None),
        ('both CPU times over %d cores: the plan\'s floor here' % (os.cpu_count() or 1), 'plan_cpu_floor_s', 's',
         ('plan_minus_ping_s', 'plan task - ping')),
        ('fresh copy of the repository (blobs mounted, children and %d tags PUT, %d at a time)'
         % (tags, SEED_THREADS),
         'copy_seed_s', 's', None),
        ('plan of the copy (check mode), task', 'copy_plan_s', 's', None),
        ('real run on the copy, task', 'real_s', 's', ('copy_plan_s', 'its plan')),
        ('real run - plan, per deleted tag', 'delete_per_tag_s', 's', None),
        ('real run, requests', 'real_requests', 'n', None),
        ('real run - plan, requests per deleted tag', 'delete_requests_per_tag', 'n.nn', None),
        ('second real run (nothing to delete), task', 'again_s', 's', ('copy_plan_s', 'the first plan')),
        ('second real run, requests', 'again_requests', 'n', None)]


def prune_floors(bench, pr):
    """Issue 17: the plan of 1000 tags under 3 s, and its requests (one list, one per tag, configs by age)."""
    if not pr.get('plan_s'):
        return []
    layout = bench.images['prune']['layout']
    tags = len(layout)
    by_age = [tag for tag in layout if re.search(PRUNE_CANDIDATES, tag)]
    value = summary(pr['plan_minus_ping_s'])[0]
    worst = max(pr['plan_requests'])
    lists, per_tag, configs = max(pr['plan_lists']), max(pr['plan_tag_requests']), max(pr['plan_blob_gets'])
    # What is left besides the probe DELETE: the manifests of the age-dependent indexes' children.
    children = worst - lists - per_tag - configs - 1
    text = ('max %d requests: %d tag list, %d HEAD or manifest GET for the %d tags, %d config GETs, %d child '
            'manifest GETs, 1 probe DELETE' % (worst, lists, per_tag, tags, configs, children))
    return [
        ('17', 'prune plan of %d tags (check mode): task - ping under 3 s on loopback (first prune task of the play)'
         % tags, '%s (min %s, max %s; second task of the play %s)'
         % (fmt(value, 's'), fmt(min(pr['plan_minus_ping_s']), 's'), fmt(max(pr['plan_minus_ping_s']), 's'),
            fmt(summary(pr['plan_warm_minus_ping_s'])[0], 's')), value < 3),
        ('17', 'plan requests <= one tag list + one HEAD per tag + one config GET per age-dependent tag (%d tags, '
         '%d by age: %d)' % (tags, len(by_age), 1 + tags + len(by_age)), text, worst <= 1 + tags + len(by_age)),
    ]


def report(bench, argv):
    s = bench.samples
    lines = ['# make bench: %s' % bench.started_at.isoformat(), '',
             'Command: `%s`  ' % ' '.join(shlex.quote(a) for a in ['bench/bench.py'] + argv),
             'Mode: %s; %d measured round%s after %d warm-up round%s; every tool once per round; median, min and '
             'max over the rounds; ratios taken round by round, then their median. Harness time %.0f s (seeding '
             '%.0f s).' % ('quick (smoke test)' if bench.quick else 'full', bench.rounds,
                           '' if bench.rounds == 1 else 's', bench.warmup, '' if bench.warmup == 1 else 's',
                           bench.total_seconds, bench.seed_seconds)]
    bvw, cpw = bench.bv_workers, bench.copy_workers
    sections = {
        'blob_verify': [
            ('blob_verify task - ping (first blob_verify task of the play)', 'task_minus_ping_s', 's',
             ('curl_openssl_s', 'curl | openssl')),
            ('blob_verify task - ping (second task, warm)', 'warm_task_minus_ping_s', 's',
             ('curl_openssl_s', 'curl | openssl')),
            ('blob_verify whole task (first)', 'task_s', 's', None),
            ('ansible.builtin.ping task', 'ping_s', 's', None),
            ('blob_verify in-module elapsed', 'module_elapsed_s', 's', None),
            ('blob_verify in-module throughput', 'module_Bps', 'GB/s', ('limit_Bps', 'min(hashlib, curl -o)')),
            ('`curl -s URL | openssl dgst -sha256`', 'curl_openssl_s', 's', ('task_minus_ping_s', 'module task - ping')),
            ('`curl -s URL | sha256sum`', 'curl_sha256sum_s', 's', ('task_minus_ping_s', 'module task - ping')),
            ('`skopeo copy docker:// dir:`', 'skopeo_dir_s', 's', ('task_minus_ping_s', 'module task - ping')),
            ('hashlib sha256, same bytes in memory', 'hashlib_Bps', 'GB/s', None),
            ('loopback download, `curl -s -o /dev/null`', 'curl_dl_Bps', 'GB/s', None),
            ('module peak RSS, big image', 'rss_big_mib', 'MiB', None),
            ('module peak RSS, tiny image', 'rss_tiny_mib', 'MiB', None),
            ('module peak RSS growth', 'rss_growth_mib', 'MiB', None),
            ('module process CPU time for the big layer (big image - tiny image)', 'module_cpu_transfer_s', 's', None),
            ('registry process CPU time serving the big layer (big image - tiny image)', 'registry_cpu_transfer_s', 's',
             None),
            ('both CPU times over %d cores: the transfer\'s floor here' % (os.cpu_count() or 1), 'transfer_cpu_floor_s',
             's', ('module_elapsed_s', 'in-module elapsed'))],
        'retag': [
            ('ansible.builtin.ping task', 'ping_s', 's', None),
            ('tag, 1 tag, new', 'one_new_s', 's', ('ping_s', 'ping')),
            ('tag, 1 tag, unchanged', 'one_same_s', 's', ('ping_s', 'ping')),
            ('tag, 50 tags, new', 'fifty_new_s', 's', ('one_new_s', '1 tag new')),
            ('tag, 50 tags, unchanged', 'fifty_same_s', 's', ('one_same_s', '1 tag unchanged')),
            ('requests, 1 tag new', 'one_new_requests', 'n', None),
            ('requests, 1 tag unchanged', 'one_same_requests', 'n', None),
            ('requests, 50 tags new', 'fifty_new_requests', 'n', None),
            ('requests, 50 tags unchanged', 'fifty_same_requests', 'n', None)],
        'copy': [],
        'workers': [
            ('blob_verify 30 layers, workers 1, in-module', 'bv30_w1_elapsed_s', 's', None),
            ('blob_verify 30 layers, workers %d, in-module' % bvw, 'bv30_wd_elapsed_s', 's',
             ('bv30_w1_elapsed_s', 'workers 1')),
            ('blob_verify 30 layers, workers 1, task', 'bv30_w1_s', 's', None),
            ('blob_verify 30 layers, workers %d, task' % bvw, 'bv30_wd_s', 's', ('bv30_w1_s', 'workers 1')),
            ('blob_verify %d layers, workers 1, in-module' % bench.many_layers, 'bv50_w1_elapsed_s', 's', None),
            ('blob_verify %d layers, workers %d, in-module' % (bench.many_layers, bvw), 'bv50_wd_elapsed_s', 's',
             ('bv50_w1_elapsed_s', 'workers 1')),
            ('copy %d layers cross-registry, workers 1, task' % bench.many_layers, 'copy50_w1_s', 's', None),
            ('copy %d layers cross-registry, workers %d, task' % (bench.many_layers, cpw), 'copy50_wd_s', 's',
             ('copy50_w1_s', 'workers 1'))],
        'index': [
            ('blob_verify whole index, task', 'task_s', 's', ('skopeo_s', 'skopeo --all')),
            ('blob_verify whole index, task - ping', 'task_minus_ping_s', 's', ('skopeo_s', 'skopeo --all')),
            ('blob_verify whole index, in-module', 'elapsed_s', 's', None),
            ('`skopeo copy --all docker:// dir:`', 'skopeo_s', 's', None)],
        'signatures': [
            ('copy cross-registry, plain, task', 'copy_plain_s', 's', None),
            ('copy cross-registry, verify_signatures (1 key), task', 'copy_verify_s', 's', ('copy_plain_s', 'plain')),
            ('verify_signatures: added time (task - task)', 'verify_delta_s', 's', None),
            ('verify_signatures: added requests, source', 'verify_src_delta_requests', 'n', None),
            ('verify_signatures: added requests, destination', 'verify_dest_delta_requests', 'n', None),
            ('copy cross-registry, sign (simplesigning), task', 'copy_sign_s', 's', ('copy_plain_s', 'plain')),
            ('sign: added time (task - task)', 'sign_delta_s', 's', None),
            ('sign: added requests, destination', 'sign_dest_delta_requests', 'n', None),
            ('sign: added blob uploads (POST + PUT each), destination', 'sign_dest_blob_uploads', 'n', None),
            ('sign: added manifest PUTs, destination', 'sign_dest_manifest_puts', 'n', None),
            ('copy with sign run again (unchanged), task', 'copy_sign_again_s', 's', ('copy_plain_s', 'plain')),
            ('copy with sign run again (unchanged), requests (both registries)', 'sign_again_requests', 'n', None),
            ('ansible.builtin.ping task', 'ping_s', 's', None),
            ('signature_verify (1 key, 1 signature), task - ping', 'verify_minus_ping_s', 's',
             ('openssl_s', 'curl + openssl')),
            ('signature_verify, second task of the play, task - ping', 'verify_warm_minus_ping_s', 's',
             ('openssl_s', 'curl + openssl')),
            ('signature_verify, requests', 'verify_requests', 'n', ('openssl_requests', 'curl + openssl')),
            ('sign, unchanged (already signed), task - ping', 'sign_same_minus_ping_s', 's',
             ('openssl_s', 'curl + openssl')),
            ('sign, unchanged, second task of the play, task - ping', 'sign_same_warm_minus_ping_s', 's',
             ('openssl_s', 'curl + openssl')),
            ('sign, unchanged, requests', 'sign_same_requests', 'n', None),
            ('`curl` (HEAD, .sig manifest, payload) + `openssl dgst -sha256 -verify`', 'openssl_s', 's', None),
            ('curl + openssl, requests', 'openssl_requests', 'n', None)],
        'sync': sync_rows(bench.sync_tags, bench.sync_memory_tags),
        'prune': prune_rows(bench.prune_tags),
        'export': [
            ('export to a fresh OCI layout, task', 'first_s', 's', ('skopeo_s', 'skopeo copy')),
            ('export to a fresh OCI layout, task - ping', 'first_minus_ping_s', 's', ('skopeo_s', 'skopeo copy')),
            ('`skopeo copy docker:// oci:DIR:TAG` (gzips the layer: see the floors)', 'skopeo_s', 's', None),
            ('`skopeo copy docker:// dir:DIR` (the same bytes, unchanged)', 'skopeo_dir_s', 's',
             ('first_minus_ping_s', 'export task - ping')),
            ('export again into the same layout (unchanged), task', 'again_s', 's', ('first_s', 'first export')),
            ('export again, task - ping', 'again_minus_ping_s', 's', ('skopeo_s', 'skopeo copy')),
            ('export to a fresh layout, requests', 'first_requests', 'n', ('skopeo_requests', 'skopeo copy')),
            ('export again, requests', 'again_requests', 'n', None),
            ('export again, blob GETs', 'again_blob_gets', 'n', None),
            ('skopeo copy docker:// oci:, requests', 'skopeo_requests', 'n', None)],
    }
    for name, label in (('big', human_bytes(bench.big_size)), ('many', '%d layers' % bench.many_layers)):
        for case, text in (('mount', 'cross-repository (mount)'), ('cross', 'cross-registry')):
            key = '%s_%s' % (name, case)
            sections['copy'].extend([
                ('copy %s, %s, task' % (label, text), key + '_s', 's', (key + '_skopeo_s', 'skopeo')),
                ('copy %s, %s, task - ping' % (label, text), key + '_minus_ping_s', 's', (key + '_skopeo_s', 'skopeo')),
                ('skopeo copy %s, %s' % (label, text), key + '_skopeo_s', 's', None),
                ('copy %s, %s, bytes transferred' % (label, text), key + '_bytes', 'bytes', None),
                ('copy %s, %s, requests (both registries)' % (label, text), key + '_requests', 'n',
                 (key + '_skopeo_requests', 'skopeo')),
                ('skopeo copy %s, %s, requests' % (label, text), key + '_skopeo_requests', 'n', None)])
    for section in SECTIONS:
        if section not in s:
            continue
        heading = '%s (%s s).' % (bench.info.get(section, ''), bench.section_seconds.get(section))
        lines += ['', '## %s' % section, '', heading, '']
        lines += table(s[section], sections[section])
    lines += ['', '## Floors (issues 3, 4, 5, 15, 16, 17)', '']
    if bench.quick:
        lines += ['Quick mode: the sizes are too small for the floors to mean anything; they are shown to prove '
                  'that every figure is computed. Use a full run to judge them.', '']
    lines += ['| issue | floor | measured | result |', '|---|---|---|---|']
    for issue, floor, measured, ok in floors(bench):
        lines.append(row(issue, floor, measured.replace('nanx', 'n/a'), 'PASS' if ok else '**FAIL**'))
    failed_counts = [c for c in bench.counts if not c['ok']]
    lines += ['', '## Request counts (registry access logs)', '',
              '%d checks, %d failed; expected counts derived from the image shapes.' % (
                  len([c for c in bench.counts if c['expected'] != '-']), len(failed_counts)), '',
              '| case | measured | expected | |', '|---|---|---|---|']
    shown = set()
    for count in bench.counts:
        # One line per case (the first round's), and every failure.
        case = re.sub(r', round \d+', '', count['case'])
        if count['ok'] and case in shown:
            continue
        shown.add(case)
        lines.append(row(count['case'], count['measured'], count['expected'],
                         ('ok' if count['expected'] != '-' else '') if count['ok'] else '**MISMATCH**'))
    m = bench.machine
    lines += ['', '## Machine', '',
              '- CPU: %s, %s cores; RAM %s GiB; %s, %s' % (m['cpu'], m['cores'], m['ram_gib'], m['os'], m['kernel']),
              '- Python %s, ansible-core %s, %s, %s'
              % (m['python'], m['ansible_core'], m['docker_registry'], m['skopeo']),
              '- %s; %s' % (m['curl'], m['openssl']),
              '- load average (1, 5, 15 min) at start %s, at end %s' % (
                  ' '.join('%.2f' % v for v in m['loadavg_start']), ' '.join('%.2f' % v for v in m['loadavg_end'])),
              '- registries: distribution on 127.0.0.1:%d and 127.0.0.1:%d, filesystem storage under .build/bench/'
              % tuple(bench.args.ports[:2]), '']
    return '\n'.join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('--quick', action='store_true',
                        help='smoke test: small sizes, 1 round, no warm-up; asserts the request counts')
    parser.add_argument('--only', default=','.join(SECTIONS),
                        help='comma-separated sections (default: all): %s' % ', '.join(SECTIONS))
    parser.add_argument('--rounds', type=int, help='measured rounds (default 5; 1 with --quick)')
    parser.add_argument('--warmup', type=int, help='warm-up rounds, not measured (default 1; 0 with --quick)')
    parser.add_argument('--size', help='size of the big layer (default 256M; 8M with --quick)')
    parser.add_argument('--layers', type=int, help='layers of the many-layer image (default 50; 10 with --quick)')
    parser.add_argument('--layer-size', help='size of each of those layers (default 2M; 64k with --quick)')
    parser.add_argument('--ports', default='5300,5301', help='loopback ports of the two registries (default 5300,5301)')
    parser.add_argument('--python', default=sys.executable, help='interpreter for ansible-playbook and the modules')
    parser.add_argument('--markdown', help='also write the report to this file')
    parser.add_argument('--json', help='write the raw samples and checks to this file')
    parser.add_argument('--strict', action='store_true', help='exit 1 when a floor or a request count fails')
    parser.add_argument('--keep', action='store_true', help='keep the work directory (playbooks, outputs)')
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(',') if s.strip()]
    unknown = [s for s in args.only if s not in SECTIONS]
    if unknown:
        parser.error('unknown section(s) %s; choose from %s' % (', '.join(unknown), ', '.join(SECTIONS)))
    try:
        args.ports = [int(p) for p in args.ports.split(',')]
    except ValueError:
        parser.error('--ports takes two port numbers, e.g. 5300,5301')
    if len(args.ports) != 2 or len(set(args.ports)) != 2:
        parser.error('--ports takes two different port numbers, e.g. 5300,5301')
    if (args.rounds is not None and args.rounds < 1) or (args.warmup is not None and args.warmup < 0):
        parser.error('--rounds must be at least 1 and --warmup at least 0')
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    install_signal_handlers()
    bench = Bench(args)
    try:
        bench.run()
    except BenchError as error:
        print('bench: error: %s' % error, file=sys.stderr)
        return 1
    except (KeyboardInterrupt, SystemExit) as stop:
        print('bench: interrupted; the registries were stopped', file=sys.stderr)
        return stop.code if isinstance(stop, SystemExit) and isinstance(stop.code, int) else 130
    text = report(bench, argv)
    print(text)
    if args.markdown:
        directory = os.path.dirname(os.path.abspath(args.markdown))
        os.makedirs(directory, exist_ok=True)
        with open(args.markdown, 'w') as handle:
            handle.write(text)
    results = floors(bench)
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump({'argv': argv, 'started_at': bench.started_at.isoformat(), 'quick': bench.quick,
                       'rounds': bench.rounds, 'warmup': bench.warmup, 'big_size': bench.big_size,
                       'many_layers': bench.many_layers, 'many_layer_size': bench.many_size,
                       'default_workers': {'blob_verify': bench.bv_workers, 'copy': bench.copy_workers},
                       'samples': bench.samples, 'request_checks': bench.counts,
                       'floors': [{'issue': i, 'floor': f, 'measured': m, 'ok': ok} for i, f, m, ok in results],
                       'machine': bench.machine, 'skopeo_cache_removed': bench.skopeo_cache_removed,
                       'seconds': bench.total_seconds}, handle, indent=1, sort_keys=True)
    status = 0
    if bench.problems and (args.quick or args.strict):
        print('bench: FAILED: %d request-count check(s) did not hold:' % len(bench.problems), file=sys.stderr)
        for problem in bench.problems:
            print('  - ' + problem, file=sys.stderr)
        status = 1
    elif bench.problems:
        print('bench: warning: %d request-count check(s) did not hold (see the table)' % len(bench.problems),
              file=sys.stderr)
    missed = [f for i, f, m, ok in results if not ok]
    if missed and args.strict:
        print('bench: FAILED (--strict): floor(s) missed: %s' % '; '.join(missed), file=sys.stderr)
        status = 1
    if args.quick and status == 0:
        print('bench: quick: every section ran, every tool ran, %d request-count checks held (%.0f s)'
              % (len([c for c in bench.counts if c['expected'] != '-']), bench.total_seconds), file=sys.stderr)
    return status


if __name__ == '__main__':
    sys.exit(main())
