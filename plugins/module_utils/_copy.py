# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Copying images between repositories and registries, and publishing built images (``push``).

The order is what makes a copy safe: every blob first, then each child
manifest by digest, then the top manifest under the tag, last. Anything that
fails (a blob that does not verify, a registry error) aborts before the tag is
written, so the tag never points at an incomplete image.

:class:`ImagePlan` is what gets published: the top manifest, the child
manifests of an index, and the blob descriptors, with a :class:`BlobSource`
for the bytes. :func:`publish` writes it; :func:`copy_image` builds the plan
from a source registry (with an optional platform subset).
"""

from __future__ import annotations

import json

from ansible_collections.imagelayers.registry.plugins.module_utils._digest import validate_digest
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    IntegrityError,
    InvalidInputError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import (
    INDEX_TYPES,
    MAX_INDEX_DEPTH,
    Manifest,
    Platform,
    accepted_suffix,
    check_config,
    describe_platforms,
    platform_label,
    select_platform,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.transport import deadline_reader
from ansible_collections.imagelayers.registry.plugins.module_utils._tagging import (
    TagSync,
    check_expected_digest,
    plan_put,
    put_tags,
    resolve_source,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._tags import parallel_map
from ansible_collections.imagelayers.registry.plugins.module_utils._upload import BlobSource, TransferStats, ensure_blob

DEFAULT_WORKERS = 4
MAX_WORKERS = 32
# Foreign (non-distributable) layers are not pushed: registries do not expect them.
FOREIGN_MARKERS = ('foreign', 'nondistributable')


class ImagePlan:
    """The manifests and blobs of one image (or index), ready to publish."""

    def __init__(self, top, children=None, blobs=None, images=None):
        self.top = top                      # Manifest
        self.children = children or []      # [Manifest], pushed by digest before the top
        self.blobs = blobs or []            # [descriptor dicts], unique by digest
        self.images = images or []          # per-platform details for the result
        self.layer_compression = None       # how layers were compressed on this host, when they were

    @property
    def digest(self):
        return self.top.digest


def unique_blobs(manifests):
    """Config and layer descriptors of image manifests, each digest once, in order."""
    seen = set()
    result = []
    for manifest in manifests:
        for descriptor in manifest.blob_descriptors():
            if descriptor['digest'] in seen:
                continue
            seen.add(descriptor['digest'])
            media_type = descriptor.get('media_type') or ''
            if descriptor.get('urls') and any(m in media_type for m in FOREIGN_MARKERS):
                continue
            result.append(descriptor)
    return result


def image_details(manifest, platform=None):
    blobs = manifest.blob_descriptors()
    return {
        'platform': platform,
        'digest': manifest.digest,
        'media_type': manifest.media_type,
        'layers': len([b for b in blobs if b['kind'] == 'layer']),
        'size': sum(b.get('size') or 0 for b in blobs),
    }


def _platform_text(entry):
    return platform_label(entry)


def _workers(workers):
    workers = DEFAULT_WORKERS if workers is None else workers
    if workers < 1 or workers > MAX_WORKERS:
        raise InvalidInputError('workers must be between 1 and %d, got %r' % (MAX_WORKERS, workers))
    return workers


# -- publishing --------------------------------------------------------------------
def publish(client, reference, plan, source, overwrite=True, check_mode=False, workers=None, current=None,
            retries=3):
    """Write ``plan`` to the repository of ``reference``: blobs, child manifests, then the top manifest.

    ``reference`` has a tag (the tag is written last, with put_tags) or only a
    digest (the manifest is pushed by digest). Returns ``(sync, stats)``;
    ``sync`` is a TagSync (None for a push by digest).
    """
    workers = _workers(workers)
    repository = reference.repository
    stats = TransferStats()
    digest = plan.digest
    tag = reference.tag
    if reference.digest and reference.digest != digest:
        raise InvalidInputError('The destination %s names digest %s, but the image to write has digest %s'
                                % (reference.name, reference.digest, digest))
    if tag:
        if current is None:
            found = client.resolve(repository, tag)
            current = {tag: found['digest'] if found else None}
        entries = plan_put(current, [tag], digest, overwrite=overwrite, repository_name=reference.repository_name)
        if not entries[0]['changed']:
            return TagSync(reference.repository_name, digest, entries), stats
    elif client.head_manifest(repository, digest) is not None:
        return None, stats
    client.api.http.ensure_pool_size(workers + 2)

    def blob(descriptor):
        return ensure_blob(client, repository, descriptor, source, stats, retries=retries, check_mode=check_mode)

    parallel_map(blob, plan.blobs, workers=workers)

    def child(manifest):
        if client.head_manifest(repository, manifest.digest) is not None:
            return
        stats.add(manifests_pushed=1)
        if check_mode:
            return
        answered = client.put_manifest(repository, manifest.digest, manifest.raw, manifest.media_type)
        if answered and answered != manifest.digest:
            raise IntegrityError('The registry stored the manifest %s in %s as %s'
                                 % (manifest.digest, reference.repository_name, answered))

    # Images in parallel; then the indexes among the children one by one, in the plan's order (an inner index
    # before the ones that list it): a registry refuses an index whose manifests it does not have yet.
    parallel_map(child, [m for m in plan.children if not m.is_index], workers=workers)
    for manifest in plan.children:
        if manifest.is_index:
            child(manifest)
    top = plan.top
    if not tag:
        stats.add(manifests_pushed=1)
        if not check_mode:
            answered = client.put_manifest(repository, digest, top.raw, top.media_type)
            if answered and answered != digest:
                raise IntegrityError('The registry stored the manifest %s in %s as %s'
                                     % (digest, reference.repository_name, answered))
        return None, stats
    sync = put_tags(client, repository, [tag], digest, top.media_type, top.raw, overwrite=overwrite,
                    check_mode=check_mode, current=current, repository_name=reference.repository_name)
    if sync.changed:
        stats.add(manifests_pushed=1)
    return sync, stats


def publish_result(reference, plan, sync, stats, diff_mode=False):
    """The common part of the results of ``copy`` and ``push``."""
    changed = sync.changed if sync is not None else stats.manifests_pushed > 0
    result = {
        'changed': changed,
        'digest': plan.digest,
        'media_type': plan.top.media_type,
        'dest': reference.name,
        'images': plan.images,
    }
    result.update(stats.to_dict())
    if diff_mode:
        if sync is not None:
            result['diff'] = sync.diff()
        else:
            header = '%s manifests' % reference.repository_name
            result['diff'] = {'before': {} if changed else {plan.digest: 'present'},
                              'after': {plan.digest: 'present'}, 'before_header': header, 'after_header': header}
    return result


def add_referrers(result, referrers):
    """Fold the referrer copies into a copy's result: ``referrers``, ``changed`` and the diff's tags."""
    result['referrers'] = referrers
    if any(entry['changed'] for entry in referrers):
        result['changed'] = True
    diff = result.get('diff')
    if diff is not None:
        for entry in referrers:
            if entry['before']:
                diff['before'][entry['tag']] = entry['before']
            diff['after'][entry['tag']] = entry['digest']
    return result


# -- copy from a registry -------------------------------------------------------------
class RegistryBlobSource(BlobSource):
    """Blobs read from a repository of a source registry, streamed as they arrive."""

    def __init__(self, client, repository, mount_from=None):
        self.client = client
        self.repository = repository
        self.mount_from = mount_from
        self.name = '%s/%s' % (client.api_host, repository)

    def open(self, descriptor):
        response = self.client.open_blob(self.repository, descriptor['digest'])
        if response.status_code != 200:
            response.close()
            raise IntegrityError('GET blob %s@%s answered HTTP %d' % (self.repository, descriptor['digest'],
                                                                      response.status_code))
        announced = response.headers.get('Content-Length')
        size = descriptor.get('size')
        if announced and announced.strip().isdigit() and size is not None and int(announced) != size:
            response.close()
            raise IntegrityError(
                'The source registry announced %s bytes for blob %s@%s, its descriptor says %d; not copying it'
                % (announced.strip(), self.repository, descriptor['digest'], size),
                details={'expected_digest': descriptor['digest'], 'expected_size': size,
                         'actual_size': int(announced)})
        return deadline_reader(response, self.client.api.options.timeout, size,
                               'blob %s from %s' % (descriptor['digest'], self.name))


def parse_platforms(platforms):
    if platforms is None:
        return None
    if not platforms:
        raise InvalidInputError('platforms is empty: leave it out to copy every platform')
    return [Platform.parse(p) for p in platforms]


def _filtered_index(index, wanted):
    """``(entries, missing)``: for each ``wanted`` platform the one entry it picks, and those nothing matched.

    Each platform picks its best entry the way ``manifest_info`` does (see ``select_platform``):
    ``linux/arm`` takes one arm image, not every arm variant. The entries are each listed once.
    """
    candidates = index.data.get('manifests') or []
    entries = []
    missing = []
    for platform in wanted:
        entry = select_platform(candidates, platform)
        if entry is None:
            missing.append(platform)
        elif not any(entry is kept for kept in entries):
            entries.append(entry)
    return entries, missing


def subset_index(index, wanted):
    """A new index with the entries of ``index`` for the ``wanted`` platforms, in the index's order.

    Returns ``(manifest, None)`` for a new index, ``(None, entry)`` when one image is left (one
    platform asked for, or several that pick the same image: the caller copies that image
    manifest), or ``(None, None)`` when several platforms keep every entry (the index as it is).
    """
    entries, missing = _filtered_index(index, wanted)
    if missing:
        raise InvalidInputError('The source index has no manifest for platform%s %s; it has: %s'
                                % ('' if len(missing) == 1 else 's',
                                   ', '.join('%s%s' % (p, accepted_suffix(p)) for p in missing),
                                   describe_platforms(index.children())))
    every = index.data['manifests']
    ordered = [c for c in every if any(c is kept for kept in entries)]
    if len(ordered) == 1:
        return None, ordered[0]
    if len(ordered) == len(every):
        return None, None
    document = dict(index.data)
    document['manifests'] = ordered
    raw = json.dumps(document, separators=(',', ':')).encode('utf-8')
    return Manifest(raw, index.media_type), None


def source_plan(client, repository, top, wanted=None, depth=0):
    """An ImagePlan for the manifest ``top`` of ``repository``, reading child manifests by digest.

    Nested indexes are followed down to MAX_INDEX_DEPTH levels, as every walker of this collection does.
    """
    if top.is_schema1:
        raise InvalidInputError('%s@%s is a Docker schema1 manifest, which cannot be copied: its signature embeds '
                                'the repository and tag it was pushed with' % (repository, top.digest))
    if top.is_image:
        if wanted:
            descriptor = top.config_descriptor()
            if descriptor is None:
                raise IntegrityError('The image manifest %s has no config descriptor' % top.digest)
            config = client.get_json_blob(repository, descriptor, what='image config')
            declared = check_config(config, descriptor['digest'])
            if not any(p.matches(declared) for p in wanted):
                raise InvalidInputError('The source is a single-platform image for %s, not for %s'
                                        % (declared, ', '.join(str(p) for p in wanted)))
        return ImagePlan(top, [], unique_blobs([top]), [image_details(top)])
    if not top.is_index:
        raise InvalidInputError('The source manifest has media type %s, which cannot be copied' % top.media_type)
    if depth >= MAX_INDEX_DEPTH:
        raise InvalidInputError('The index %s@%s nests indexes deeper than %d levels, which copy does not follow'
                                % (repository, top.digest, MAX_INDEX_DEPTH))
    children = []
    fetched = parallel_map(lambda entry: client.get_manifest(repository, entry['digest']), top.children())
    images = []
    image_manifests = []
    for entry, manifest in zip(top.children(), fetched):
        if manifest.is_index:
            nested = source_plan(client, repository, manifest, depth=depth + 1)
            children.extend(nested.children)
            image_manifests.extend(nested.children)
        elif manifest.is_image:
            image_manifests.append(manifest)
        else:
            raise InvalidInputError('The index %s lists %s of media type %s, which cannot be copied'
                                    % (top.digest, manifest.digest, manifest.media_type))
        children.append(manifest)
        images.append(image_details(manifest, _platform_text(entry)))
    return ImagePlan(top, children, unique_blobs([m for m in image_manifests if m.is_image]), images)


def copy_image(src_client, src_ref, dest_client, dest_ref, platforms=None, overwrite=True, expected_digest=None,
               check_mode=False, workers=None, retries=3, referrers=False):
    """Copy the image ``src_ref`` names to ``dest_ref``; return the module result (without diff).

    With ``referrers``, the signatures, attestations and SBOMs of the image (see
    :func:`copy_referrers`) are copied too, after every check and before the image
    itself, so they are there when the tag appears; ``result['referrers']`` lists them.
    """
    wanted = parse_platforms(platforms)
    workers = _workers(workers)
    found = resolve_source(src_client, src_ref)
    source_digest = found['digest']
    check_expected_digest(source_digest, expected_digest, src_ref.name)
    dest_tag = dest_ref.tag
    current = None

    def copy_referrers_into(result):
        if referrers:
            result['referrers'] = copy_referrers(src_client, src_ref, dest_client, dest_ref, found, wanted,
                                                 check_mode=check_mode, workers=workers, retries=retries)

    def unchanged(digest, media_type, source=None):
        """The destination has the image already: only its referrers may have something to do."""
        outcome = _unchanged(src_ref, dest_ref, digest, media_type, current, source)
        copy_referrers_into(outcome[0])
        return outcome

    if dest_tag:
        head = dest_client.resolve(dest_ref.repository, dest_tag)
        current = {dest_tag: head['digest'] if head else None}
        if wanted is None and current[dest_tag] == source_digest:
            # Already there: nothing but HEADs.
            return unchanged(source_digest, found['media_type'])
        if wanted is None and current[dest_tag] is not None and not overwrite:
            plan_put(current, [dest_tag], source_digest, overwrite=False, repository_name=dest_ref.repository_name)
    elif wanted is None and dest_ref.digest == source_digest:
        if dest_client.head_manifest(dest_ref.repository, source_digest) is not None:
            return unchanged(source_digest, found['media_type'])

    top = found.get('manifest') or src_client.get_manifest(src_ref.repository, source_digest)
    found['manifest'] = top  # the referrers look at the same source manifest, fetched once
    digest_changed = False
    if wanted and top.is_index:
        new_index, single = subset_index(top, wanted)
        if single is not None:
            top = src_client.get_manifest(src_ref.repository, single['digest'])
            digest_changed = True
        elif new_index is not None:
            top = new_index
            digest_changed = True
    if dest_ref.digest and dest_ref.digest != top.digest:
        raise InvalidInputError('The destination %s names digest %s, but the image to write has digest %s'
                                % (dest_ref.name, dest_ref.digest, top.digest))
    if dest_tag and current[dest_tag] == top.digest:
        return unchanged(top.digest, top.media_type, source_digest)

    # A single-platform source must be one of the platforms asked for (its config says which it is).
    plan = source_plan(src_client, src_ref.repository, top, wanted if wanted and not digest_changed else None)
    same_registry = src_client.api_host == dest_client.api_host
    mount_from = src_ref.repository if same_registry and src_ref.repository != dest_ref.repository else None
    source = RegistryBlobSource(src_client, src_ref.repository, mount_from=mount_from)
    result = {'source_digest': source_digest, 'digest_changed': digest_changed, 'src': src_ref.name}
    copy_referrers_into(result)
    sync, stats = publish(dest_client, dest_ref, plan, source, overwrite=overwrite, check_mode=check_mode,
                          workers=workers, current=current, retries=retries)
    return result, plan, sync, stats


# -- referrers: signatures, attestations, SBOMs ---------------------------------------
# Registries without the OCI 1.1 referrers API keep what refers to a manifest under tags derived
# from its digest: cosign its signatures, attestations and SBOMs under sha256-<hex>.sig, .att and
# .sbom; OCI 1.1 clients an index of the artifacts whose subject it is under sha256-<hex>.
REFERRER_TAG_SUFFIXES = ('', '.sig', '.att', '.sbom')


def referrer_tags(digest):
    """The tags that may hold what refers to the manifest ``digest``."""
    algorithm, encoded = validate_digest(digest)
    return ['%s-%s%s' % (algorithm, encoded, suffix) for suffix in REFERRER_TAG_SUFFIXES]


def referrer_subjects(src_client, src_ref, found, wanted=None):
    """The manifest digests whose referrers go with a copy: those the destination keeps.

    The top manifest, unless a platform subset gives it a new digest; and every child of an
    index, or only those of the platforms ``wanted``.
    """
    subjects = [] if wanted else [found['digest']]
    if found.get('media_type') in INDEX_TYPES:
        index = found.get('manifest') or src_client.get_manifest(src_ref.repository, found['digest'])
        if wanted:
            entries = _filtered_index(index, wanted)[0]
        else:
            entries = [c for c in index.data.get('manifests') or [] if isinstance(c, dict)]
        subjects.extend(c['digest'] for c in entries if c.get('digest') and c['digest'] not in subjects)
    return subjects


def copy_referrers(src_client, src_ref, dest_client, dest_ref, found, wanted=None, check_mode=False, workers=None,
                   retries=3):
    """Copy the referrer tags (see :func:`referrer_tags`) the source has for the image, each like an image.

    Each goes to the same tag in the destination repository, moved when the source's differs (a
    new signature was added): the destination mirrors the source. Returns one entry per tag found:
    ``{'subject', 'tag', 'digest', 'changed', 'blobs_copied', 'blobs_mounted', 'bytes_transferred'}``.
    """
    copies = []
    for subject in referrer_subjects(src_client, src_ref, found, wanted):
        for tag in referrer_tags(subject):
            if src_client.resolve(src_ref.repository, tag) is None:
                continue
            dummy, plan, sync, stats = copy_image(src_client, src_ref.with_tag(tag), dest_client,
                                                  dest_ref.with_tag(tag), check_mode=check_mode, workers=workers,
                                                  retries=retries)
            entry = {'subject': subject, 'tag': tag, 'digest': plan.digest, 'changed': sync.changed,
                     'before': sync.entries[0].get('before')}
            entry.update({key: value for key, value in stats.to_dict().items()
                          if key in ('blobs_copied', 'blobs_mounted', 'bytes_transferred')})
            copies.append(entry)
    return copies


def _unchanged(src_ref, dest_ref, digest, media_type, current, source_digest=None):
    """The result parts of a copy that finds the destination already at the digest."""
    top = _Described(digest, media_type)
    plan = ImagePlan(top, images=[])
    sync = None
    if dest_ref.tag:
        entries = plan_put(current, [dest_ref.tag], digest, repository_name=dest_ref.repository_name)
        sync = TagSync(dest_ref.repository_name, digest, entries)
    result = {'source_digest': source_digest or digest, 'digest_changed': digest != (source_digest or digest),
              'src': src_ref.name}
    return result, plan, sync, TransferStats()


class _Described:
    """Digest and media type of a manifest not fetched (the copy had nothing to do)."""

    def __init__(self, digest, media_type):
        self.digest = digest
        self.media_type = media_type
