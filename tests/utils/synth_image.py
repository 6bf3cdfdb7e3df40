#!/usr/bin/env python
"""Push deterministic synthetic container images to a registry (HTTP API v2).

Test helper for the imagelayers.registry collection. Needs only the standard
library and ``requests``. Every byte is derived from the repository name, the
layer index and the options, so pushing the same image twice gives the same
digests.

CLI examples::

    synth_image.py --registry 127.0.0.1:5100 --repo seed/multi-index --tag latest --kind oci-index
    synth_image.py --registry 127.0.0.1:5100 --repo seed/many-layers --layers 30 --layer-size 512
    synth_image.py --registry 127.0.0.1:5100 --seed               # the default seed set
    synth_image.py --registry 127.0.0.1:5100 --seed --with-big --big-size 50M

Library use::

    from synth_image import Registry, push_image
    result = push_image(Registry('127.0.0.1:5100'), 'demo/app', 'v1', kind='oci', layer_sizes=[1024, 2048])
    result['digest']

Output (stdout) is JSON: one result object, or with ``--seed`` a mapping
``"repo:tag" -> result``. A result has ``digest``, ``media_type``, ``repo``,
``tag``, ``size`` and, for single images, ``config`` and ``layers``; for lists
and indexes ``children``: ``{"linux/amd64": {...result...}, ...}``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import random
import sys
import tarfile
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests

MT_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
MT_DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
MT_DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json'
MT_DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip'
MT_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
MT_OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
MT_OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
MT_OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip'

KINDS = ('schema2', 'oci', 'docker-list', 'oci-index')
DEFAULT_PLATFORMS = ('linux/amd64', 'linux/arm64/v8', 'linux/arm/v7')
EPOCH = '1970-01-01T00:00:00Z'


class RegistryError(Exception):
    """An unexpected answer from the registry."""

    def __init__(self, what, response):
        self.status = response.status_code
        body = response.text[:500] if response.content else ''
        super().__init__('%s: HTTP %s %s %s' % (what, response.status_code, response.request.method, body))


def sha256_digest(data: bytes) -> str:
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def parse_size(text) -> int:
    """'512', '4k', '2M', '1G' -> bytes."""
    if isinstance(text, int):
        return text
    text = str(text).strip().lower()
    units = {'k': 1024, 'm': 1024 ** 2, 'g': 1024 ** 3}
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


class Registry:
    """Minimal Registry API v2 client (basic auth only)."""

    def __init__(self, host: str, scheme: str = 'http', username: str | None = None,
                 password: str | None = None, verify=True, timeout: float = 60.0):
        if '://' in host:
            scheme, host = host.split('://', 1)
        self.base = '%s://%s' % (scheme, host.rstrip('/'))
        self.session = requests.Session()
        self.session.verify = verify
        if username is not None:
            self.session.auth = (username, password or '')
        self.timeout = timeout

    def url(self, path: str) -> str:
        return self.base + path

    def request(self, method, url, **kwargs):
        kwargs.setdefault('timeout', self.timeout)
        return self.session.request(method, url, **kwargs)

    def blob_exists(self, repo: str, digest: str) -> bool:
        r = self.request('HEAD', self.url('/v2/%s/blobs/%s' % (repo, digest)))
        if r.status_code == 200:
            return True
        if r.status_code == 404:
            return False
        raise RegistryError('HEAD blob %s' % digest, r)

    @staticmethod
    def _with_digest(location_url: str, digest: str) -> str:
        """Add digest=... to an upload URL that may already carry a query."""
        parts = urlsplit(location_url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        query.append(('digest', digest))
        return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))

    def push_blob(self, repo: str, data: bytes, digest: str | None = None) -> str:
        """Monolithic upload: POST to start, PUT ?digest= with the whole body."""
        digest = digest or sha256_digest(data)
        if self.blob_exists(repo, digest):
            return digest
        start_url = self.url('/v2/%s/blobs/uploads/' % repo)
        r = self.request('POST', start_url, headers={'Content-Length': '0'})
        if r.status_code != 202 or 'Location' not in r.headers:
            raise RegistryError('POST blob upload for %s' % repo, r)
        location = urljoin(start_url, r.headers['Location'])
        put_url = self._with_digest(location, digest)
        r = self.request('PUT', put_url, data=data, headers={
            'Content-Type': 'application/octet-stream',
            'Content-Length': str(len(data)),
        })
        if r.status_code != 201:
            raise RegistryError('PUT blob %s' % digest, r)
        returned = r.headers.get('Docker-Content-Digest')
        if returned and returned != digest:
            raise RuntimeError('registry stored blob as %s, expected %s' % (returned, digest))
        return digest

    def push_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        digest = sha256_digest(body)
        r = self.request('PUT', self.url('/v2/%s/manifests/%s' % (repo, reference)), data=body,
                         headers={'Content-Type': media_type})
        if r.status_code != 201:
            raise RegistryError('PUT manifest %s:%s' % (repo, reference), r)
        returned = r.headers.get('Docker-Content-Digest')
        if returned and returned != digest:
            raise RuntimeError('registry stored manifest as %s, expected %s' % (returned, digest))
        return digest


# ---------------------------------------------------------------------------
# deterministic content


def layer_payload(seed: str, size: int, fill: str) -> bytes:
    if fill == 'zero':
        return bytes(size)
    return random.Random(seed).randbytes(size)


def make_layer(seed: str, index: int, size: int, fill: str = 'random') -> tuple[bytes, str]:
    """A gzipped tar with one file of ``size`` bytes. Returns (blob, diff_id)."""
    payload = layer_payload('%s/layer/%d' % (seed, index), size, fill)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode='w', format=tarfile.USTAR_FORMAT) as tar:
        directory = tarfile.TarInfo('data')
        directory.type = tarfile.DIRTYPE
        directory.mode = 0o755
        directory.mtime = 0
        tar.addfile(directory)
        info = tarfile.TarInfo('data/layer-%03d.bin' % index)
        info.size = len(payload)
        info.mode = 0o644
        info.mtime = 0
        tar.addfile(info, io.BytesIO(payload))
    tar_bytes = raw.getvalue()
    diff_id = sha256_digest(tar_bytes)
    out = io.BytesIO()
    with gzip.GzipFile(filename='', mode='wb', fileobj=out, mtime=0, compresslevel=6) as gz:
        gz.write(tar_bytes)
    return out.getvalue(), diff_id


def parse_platform(text: str) -> dict:
    parts = text.split('/')
    if len(parts) < 2 or len(parts) > 3:
        raise ValueError('platform must be os/arch[/variant]: %r' % text)
    platform = {'architecture': parts[1], 'os': parts[0]}
    if len(parts) == 3:
        platform['variant'] = parts[2]
    return platform


def _dumps(obj) -> bytes:
    return json.dumps(obj, indent=3, sort_keys=False).encode('utf-8')


def push_single(reg: Registry, repo: str, reference: str | None, oci: bool, layer_sizes,
                platform: str = 'linux/amd64', fill: str = 'random', seed: str | None = None,
                labels: dict | None = None) -> dict:
    """Push one single-platform image; ``reference`` None pushes it by digest only."""
    seed = seed or '%s|%s|%s' % (repo, platform, 'oci' if oci else 'schema2')
    plat = parse_platform(platform)
    layers = []
    diff_ids = []
    history = [{'created': EPOCH, 'created_by': '/bin/sh -c #(nop) ARG SUFFIX=synthetic', 'empty_layer': True}]
    for index, size in enumerate(layer_sizes):
        blob, diff_id = make_layer(seed, index, size, fill)
        digest = reg.push_blob(repo, blob)
        layers.append({
            'mediaType': MT_OCI_LAYER if oci else MT_DOCKER_LAYER,
            'size': len(blob),
            'digest': digest,
        })
        diff_ids.append(diff_id)
        history.append({'created': EPOCH,
                        'created_by': '/bin/sh -c synth layer %d (%d bytes, %s)' % (index, size, fill)})
    history.extend([
        {'created': EPOCH, 'created_by': '/bin/sh -c #(nop) LABEL synth=true', 'empty_layer': True},
        {'created': EPOCH, 'created_by': '/bin/sh -c #(nop) ENV SYNTH_SEED=%s' % seed, 'empty_layer': True},
        {'created': EPOCH, 'created_by': '/bin/sh -c #(nop) CMD ["/bin/true"]', 'empty_layer': True},
    ])
    config = dict(plat)
    config.update({
        'created': EPOCH,
        'config': {
            'Env': ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'SYNTH_SEED=%s' % seed],
            'Cmd': ['/bin/true'],
            'Labels': dict(sorted({'synth': 'true', **(labels or {})}.items())),
        },
        'rootfs': {'type': 'layers', 'diff_ids': diff_ids},
        'history': history,
    })
    config_blob = _dumps(config)
    config_digest = reg.push_blob(repo, config_blob)
    manifest = {'schemaVersion': 2}
    manifest['mediaType'] = MT_OCI_MANIFEST if oci else MT_DOCKER_MANIFEST
    manifest['config'] = {
        'mediaType': MT_OCI_CONFIG if oci else MT_DOCKER_CONFIG,
        'size': len(config_blob),
        'digest': config_digest,
    }
    manifest['layers'] = layers
    body = _dumps(manifest)
    digest = sha256_digest(body)
    reg.push_manifest(repo, reference or digest, body, manifest['mediaType'])
    return {
        'repo': repo,
        'tag': reference,
        'digest': digest,
        'media_type': manifest['mediaType'],
        'size': len(body),
        'platform': platform,
        'config': config_digest,
        'layers': [layer['digest'] for layer in layers],
    }


def push_multi(reg: Registry, repo: str, tag: str | None, oci: bool, platforms=DEFAULT_PLATFORMS,
               layer_sizes=(1024, 2048), fill: str = 'random') -> dict:
    """Push children by digest, then a Docker manifest list or OCI index."""
    children = {}
    entries = []
    for platform in platforms:
        child = push_single(reg, repo, None, oci, layer_sizes, platform=platform, fill=fill)
        children[platform] = child
        entries.append({
            'mediaType': child['media_type'],
            'size': child['size'],
            'digest': child['digest'],
            'platform': parse_platform(platform),
        })
    media_type = MT_OCI_INDEX if oci else MT_DOCKER_LIST
    body = _dumps({'schemaVersion': 2, 'mediaType': media_type, 'manifests': entries})
    digest = sha256_digest(body)
    reg.push_manifest(repo, tag or digest, body, media_type)
    return {'repo': repo, 'tag': tag, 'digest': digest, 'media_type': media_type, 'size': len(body),
            'children': children}


def push_image(reg: Registry, repo: str, tag: str | None, kind: str = 'schema2', layer_sizes=(1024,),
               platforms=DEFAULT_PLATFORMS, platform: str = 'linux/amd64', fill: str = 'random') -> dict:
    if kind not in KINDS:
        raise ValueError('kind must be one of %s' % ', '.join(KINDS))
    if kind in ('docker-list', 'oci-index'):
        return push_multi(reg, repo, tag, kind == 'oci-index', platforms, layer_sizes, fill)
    return push_single(reg, repo, tag, kind == 'oci', layer_sizes, platform=platform, fill=fill)


def seed(reg: Registry, with_big: bool = False, big_size: int = 64 * 1024 ** 2) -> dict:
    """The default seed set used by the integration tests."""
    results = {}

    def add(result):
        results['%s:%s' % (result['repo'], result['tag'])] = result

    add(push_image(reg, 'seed/multi-list', 'latest', kind='docker-list', layer_sizes=(1024, 2048)))
    add(push_image(reg, 'seed/multi-index', 'latest', kind='oci-index', layer_sizes=(1024, 2048)))
    add(push_image(reg, 'seed/many-layers', 'latest', kind='schema2',
                   layer_sizes=[256 + 64 * i for i in range(30)]))
    if with_big:
        add(push_image(reg, 'seed/big', 'latest', kind='schema2', layer_sizes=[big_size]))
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--registry', required=True, help='host:port, or a URL with scheme')
    parser.add_argument('--scheme', default='http', choices=('http', 'https'))
    parser.add_argument('--user', help='user:password for basic auth')
    parser.add_argument('--insecure', action='store_true', help='do not verify TLS certificates')
    parser.add_argument('--ca-cert', help='CA bundle to verify TLS with')
    parser.add_argument('--seed', action='store_true', help='push the default seed set')
    parser.add_argument('--with-big', action='store_true', help='with --seed: also push seed/big:latest')
    parser.add_argument('--big-size', default='64M', help='size of seed/big layer (default 64M)')
    parser.add_argument('--repo', help='repository name, e.g. seed/multi-index')
    parser.add_argument('--tag', default='latest', help='tag; empty string pushes by digest only')
    parser.add_argument('--kind', default='schema2', choices=KINDS)
    parser.add_argument('--layers', type=int, default=None, help='number of layers (default 1)')
    parser.add_argument('--layer-size', default='1k', help='size of each layer, or comma separated sizes')
    parser.add_argument('--fill', default='random', choices=('random', 'zero'))
    parser.add_argument('--platform', default='linux/amd64', help='for single images')
    parser.add_argument('--platforms', default=','.join(DEFAULT_PLATFORMS), help='for lists and indexes')
    args = parser.parse_args(argv)

    verify = False if args.insecure else (args.ca_cert or True)
    username = password = None
    if args.user:
        username, dummy, password = args.user.partition(':')
    reg = Registry(args.registry, scheme=args.scheme, username=username, password=password, verify=verify)

    if args.seed:
        result = seed(reg, with_big=args.with_big, big_size=parse_size(args.big_size))
    else:
        if not args.repo:
            parser.error('--repo is required unless --seed is given')
        sizes = [parse_size(s) for s in args.layer_size.split(',') if s.strip()]
        if args.layers is not None:
            if len(sizes) == 1:
                sizes = sizes * args.layers
            elif len(sizes) != args.layers:
                parser.error('--layers does not match the number of --layer-size values')
        result = push_image(reg, args.repo, args.tag or None, kind=args.kind, layer_sizes=sizes,
                            platforms=[p for p in args.platforms.split(',') if p], platform=args.platform,
                            fill=args.fill)
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (RegistryError, requests.RequestException, RuntimeError, ValueError) as exc:
        print('synth_image.py: error: %s' % exc, file=sys.stderr)
        sys.exit(1)
