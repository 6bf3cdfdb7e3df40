#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: copy
short_description: Copy an image between repositories and registries, verified, with the tag written last
version_added: 0.1.0
description:
  - Copies the image O(src) names to O(dest), across repositories or registries, over the Registry HTTP API v2,
    without a container daemon and without touching the disk, like C(skopeo copy --all) or C(crane copy).
  - "Order: every blob, then each child manifest of an index by digest, then the top manifest under the tag of
    O(dest), last. Anything that fails (a blob that does not hash to its digest or has the wrong size, a registry
    error) aborts the task before the tag is written, so the tag never points at an incomplete image."
  - "Blobs: a C(HEAD) on the destination first, and what is there is skipped. Within one registry, blobs are
    mounted from the source repository (nothing is transferred); between registries they are streamed from the
    source C(GET) into the destination upload, hashed and counted on the way."
  - Idempotent. When the destination tag already points at the source digest, only C(HEAD) requests are made and
    the task reports no change. Manifests are copied byte for byte, so the digest is preserved.
  - With O(platforms), only those platforms of a multi-platform source are copied; that writes a new index (or,
    for a single platform, that platform's image manifest) with a new digest, and RV(digest_changed) is true.
    Without O(platforms), every platform is copied; platforms are never dropped silently.
author:
  - imagelayers maintainers (@imagelayers)
extends_documentation_fragment:
  - imagelayers.registry._connection_sides
  - imagelayers.registry._connection
attributes:
  check_mode:
    support: full
    description: Reads the source manifests and C(HEAD)s the destination blobs and tag; reports what a real run
      would copy, mount and write, and writes nothing.
  diff_mode:
    support: full
    description: C(before) and C(after) map the destination tag to its digest; a tag that does not exist is left out.
options:
  src:
    description:
      - The source image, C([registry/]repository:tag) or C([registry/]repository@digest). Without a tag or digest,
        V(latest) is used.
      - Give a digest (for example the one that was tested) to copy exactly that image.
    type: str
    required: true
  dest:
    description:
      - The destination, C([registry/]repository:tag). Without a tag, the tag of O(src) is used (V(latest) when O(src)
        is given by digest).
      - C([registry/]repository@digest) pushes by digest only, without a tag; the digest must be the one the copy
        produces.
    type: str
    required: true
  platforms:
    description:
      - Copy only these platforms (C(os/architecture[/variant]), for example V(linux/amd64) or V(linux/arm64/v8)) of a
        multi-platform source. Every platform listed must exist in the source, else the task fails.
      - Each platform picks one entry of the index, the image M(imagelayers.registry.manifest_info) describes for
        it. The pick is made the way C(skopeo) and C(podman) make it. A variant falls back to older ones, then to
        no variant (V(linux/arm/v8) takes C(arm/v7) when there is no C(arm/v8)). A platform without a variant
        prefers the entry without one, then the newest variant (V(linux/arm) takes C(arm/v7) over C(arm/v6)).
        See the O(imagelayers.registry.manifest_info#module:platform) option for the whole order.
      - One platform gives that platform's image manifest, never an index. Several platforms give a new index
        with their entries, each once, in the source's order; if they all pick the same entry, that image
        manifest. Either way the digest differs from the source's (RV(digest_changed)), unless several
        platforms keep every entry of the index.
      - A single-platform source is copied unchanged when one of the listed platforms accepts it (V(linux/arm/v7)
        accepts an C(arm/v6) image), and refused otherwise.
      - Default is every platform.
    type: list
    elements: str
  overwrite:
    description:
      - Whether the destination tag may be moved when it exists and points at another digest.
      - With V(false), such a tag fails the task before anything is copied (immutable release tags); a tag that
        already points at the image is fine and reported unchanged.
    type: bool
    default: true
  expected_digest:
    description:
      - The digest O(src) must resolve to, for example the digest that was tested; if it moved since, the task fails
        before anything is copied.
    type: str
  workers:
    description:
      - How many blobs (and child manifests) are transferred at once.
    type: int
    default: 4
  referrers:
    description:
      - Also copy what refers to the image (signatures, attestations, SBOMs). For each manifest whose digest
        the destination keeps (the top one, unless O(platforms) makes a new one, and each platform's) the
        source is asked, in this order, through the OCI 1.1 referrers API (C(GET /v2/<name>/referrers/<digest>),
        every page), or where the source has no such API through the OCI 1.1 fallback index under the tag
        C(sha256-<hex>); then under the tags cosign uses, C(sha256-<hex>.sig) (signatures),
        C(sha256-<hex>.att) (attestations) and C(sha256-<hex>.sbom) (SBOMs). A referrer found in more than
        one place is copied once.
      - Each is copied like an image, before the image itself, so the signatures are there when the tag
        appears. One found under a cosign tag goes to the same tag in the destination repository; a tag the
        source moved (a signature added) is moved at the destination too, whatever O(overwrite) says.
      - One found through the API or the fallback index is written by digest and listed at the destination. A
        destination with the referrers API lists it itself; for one without it the module adds it to the
        destination's own C(sha256-<hex>) index, merged with what that index already lists.
    type: bool
    default: false
  verify_signatures:
    description:
      - A gate. Before anything is written, a cosign signature of the digest O(src) resolves to must verify,
        as M(imagelayers.registry.signature_verify) checks it, or the task fails and writes nothing.
      - The source's C(sha256-<hex>.sig) tag is read first, and the gate stops at the first signature that
        verifies; only when none does there are the referrers discovered. RV(signatures) lists those examined.
    type: dict
    suboptions:
      keys:
        description: PEM public keys (ECDSA P-256 or P-384, RSA, Ed25519); a signature made with any of them verifies.
        type: list
        elements: str
      certificate_identity:
        description: Keyless. The identity (URI or e-mail subject alternative name) the signing certificate must have.
        type: str
      certificate_identity_regexp:
        description: Keyless. A Python regular expression the certificate's identity must match (C(re.fullmatch)).
        type: str
      certificate_oidc_issuer:
        description: Keyless. The OIDC issuer the certificate must name in its Fulcio extension.
        type: str
      certificate_oidc_issuer_regexp:
        description: Keyless. A Python regular expression the certificate's issuer must match (C(re.fullmatch)).
        type: str
      trusted_roots:
        description: Keyless. The Fulcio root and intermediates (PEM text, or a file on the managed host).
        type: str
      rekor_public_key:
        description: Keyless. The Rekor public key (PEM text, or a file on the managed host).
        type: str
  require_artifact_types:
    description:
      - A gate. Before anything is written, the source image must have a referrer (found as O(referrers)
        finds them) of each of these artifact types, for example V(application/spdx+json) for an SBOM, or the
        task fails and writes nothing.
    type: list
    elements: str
  sign:
    description:
      - After the copy, sign the digest the destination holds, as M(imagelayers.registry.sign) does, and as
        idempotently, unchanged when the key's signature is there already. RV(signature) says what was
        written. In check mode nothing is written.
    type: dict
    suboptions:
      key:
        description: The private key, PEM text (PKCS#8, optionally encrypted, or cosign's encrypted format).
        type: str
        required: true
      passphrase:
        description: The passphrase of an encrypted O(sign.key).
        type: str
      format:
        description: V(simplesigning) (the C(sha256-<hex>.sig) tag) or V(bundle) (a sigstore bundle referrer).
        type: str
        choices: [simplesigning, bundle]
        default: simplesigning
requirements:
  - cryptography (on the managed host), only with O(verify_signatures) or O(sign)
notes:
  - Within one registry, blobs are mounted with C(POST /v2/<dest>/blobs/uploads/?mount=<digest>&from=<src>); a
    registry that answers 202 (no mount) gets an upload instead.
  - Docker schema1 images are refused; convert them first.
  - Foreign (non-distributable) layers are not copied.
seealso:
  - module: imagelayers.registry.tag
  - module: imagelayers.registry.push
  - module: imagelayers.registry.manifest_info
'''

EXAMPLES = r'''
- name: Promote the tested build from dev to prod, never moving an existing release
  imagelayers.registry.copy:
    src: registry.dev.example.com/app@{{ tested_digest }}
    dest: registry.prod.example.com/app:1.4.2
    overwrite: false
    src_username: ci
    src_password: "{{ dev_password }}"
    dest_username: release
    dest_password: "{{ prod_password }}"

- name: Mirror from a registry with a private CA to one that wants a client certificate
  imagelayers.registry.copy:
    src: registry.internal.example.com/app:1.4.2
    dest: mirror.example.com/app:1.4.2
    src_ca_path: /etc/pki/internal-ca.pem
    dest_client_cert: /etc/pki/mirror-client.pem
    dest_client_key: /etc/pki/mirror-client.key

- name: Promote an image with its cosign signatures and attestations
  imagelayers.registry.copy:
    src: registry.dev.example.com/app@{{ tested_digest }}
    dest: registry.prod.example.com/app:1.4.2
    referrers: true

- name: Promote only what CI signed, and sign it as promoted
  imagelayers.registry.copy:
    src: dev.example.com/app@{{ tested_digest }}
    dest: prod.example.com/app:1.4.2
    referrers: true
    verify_signatures:
      keys: ["{{ lookup('file', 'ci-signing.pub') }}"]
    require_artifact_types: [application/spdx+json]
    sign:
      key: "{{ lookup('file', 'promote.key') }}"
      passphrase: "{{ vault_promote_key_pass }}"

- name: Copy into another repository of the same registry (blobs are mounted, not transferred)
  imagelayers.registry.copy:
    src: registry.example.com/builds/app:build-812
    dest: registry.example.com/releases/app:1.4.2
    expected_digest: "{{ tested_digest }}"

- name: Copy only the amd64 and arm64 images of a multi-platform image
  imagelayers.registry.copy:
    src: registry.example.com/app:1.4.2
    dest: mirror.example.com/app:1.4.2
    platforms: [linux/amd64, linux/arm64]
  register: copied

- name: The subset has its own digest
  ansible.builtin.debug:
    msg: "{{ copied.digest }} (source {{ copied.source_digest }})"
'''

RETURN = r'''
signatures:
  description:
    - With O(verify_signatures), the source's signatures the gate examined, as
      M(imagelayers.registry.signature_verify) lists them (C(digest), C(format), C(found_in), C(tag),
      C(key_fingerprint), C(identity), C(issuer), C(verified), C(reason)).
  returned: when O(verify_signatures) or O(require_artifact_types) is set
  type: list
  elements: dict
signature:
  description: With O(sign), the signature of the destination's digest, as M(imagelayers.registry.sign) returns it.
  returned: when O(sign) is set
  type: dict
  contains:
    digest:
      description: The digest of the signature manifest; null in check mode when one would be written.
      type: str
    format:
      description: V(simplesigning) or V(bundle).
      type: str
    tag:
      description: The tag of the signature manifest (simple signing).
      type: str
src:
  description: The normalised reference of O(src).
  returned: always
  type: str
  sample: registry.dev.example.com/app@sha256:7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19
dest:
  description: The normalised reference of the destination.
  returned: always
  type: str
  sample: registry.prod.example.com/app:1.4.2
digest:
  description: The digest of the manifest written (in check mode, to be written) to the destination.
  returned: always
  type: str
  sample: sha256:7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19
source_digest:
  description: The digest O(src) resolves to.
  returned: always
  type: str
  sample: sha256:7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19
digest_changed:
  description: Whether RV(digest) differs from RV(source_digest) (only with O(platforms)).
  returned: always
  type: bool
  sample: false
media_type:
  description: Media type of the manifest written.
  returned: always
  type: str
  sample: application/vnd.oci.image.index.v1+json
blobs_copied:
  description: Blobs uploaded to the destination (in check mode, to be uploaded).
  returned: always
  type: int
  sample: 3
blobs_mounted:
  description: Blobs mounted from the source repository (same registry).
  returned: always
  type: int
  sample: 0
blobs_skipped:
  description: Blobs the destination already had.
  returned: always
  type: int
  sample: 1
bytes_transferred:
  description: Blob bytes uploaded to the destination (in check mode, the size of the blobs to upload).
  returned: always
  type: int
  sample: 31457280
manifests_pushed:
  description: Manifests written (child manifests by digest, and the top manifest under the tag).
  returned: always
  type: int
  sample: 4
images:
  description:
    - One entry per image manifest copied (one per platform of an index). Empty when the destination already
      had the image, since then nothing but C(HEAD) requests are made.
  returned: always
  type: list
  elements: dict
  contains:
    platform:
      description: C(os/architecture[/variant]) from the index entry; null for a single-platform source.
      type: str
    digest:
      description: Digest of the image manifest.
      type: str
    media_type:
      description: Media type of the image manifest.
      type: str
    layers:
      description: Number of layers.
      type: int
    size:
      description: Total size of the config and layers, in bytes.
      type: int
  sample:
    - platform: linux/amd64
      digest: sha256:0a1bd8ed6f8b4d1e6a1ea7d4f8a18a0d6e1c5f7b3c3c2b6b1f4a9f0c9d7e6a5b
      media_type: application/vnd.oci.image.manifest.v1+json
      layers: 3
      size: 31457280
referrers:
  description:
    - With O(referrers=true), what refers to the image, found in the source and copied, in the order copied.
    - C(subject) is the digest it refers to; C(source) where it was found (C(api) the referrers API,
      C(fallback) the fallback index, C(tag) a cosign tag); C(artifact_type) its kind (the manifest's
      C(artifactType), else its config's or layers' media type); C(tag) the cosign tag it was copied to (null
      for the others); C(before) the digest the destination had (the tag's, or for the others the digest
      itself when it was there and listed already; null when new).
  returned: when O(referrers=true)
  type: list
  elements: dict
  sample:
    - subject: sha256:7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19
      source: api
      artifact_type: application/vnd.dev.sigstore.bundle.v0.3+json
      tag: null
      digest: sha256:5b1e0f3a7c9d2e4f6a8b0c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a3b5c7d9e1f
      before: null
      changed: true
      blobs_copied: 2
      blobs_mounted: 0
      bytes_transferred: 2310
    - subject: sha256:7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19
      source: tag
      artifact_type: application/vnd.dev.cosign.simplesigning.v1+json
      tag: sha256-7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19.sig
      digest: sha256:0c5e7a61cbd7bd8c3f2a38c62f0f4b6a6e0f3d1a2b4c6d8e0f1a3b5c7d9e1f30
      before: null
      changed: true
      blobs_copied: 2
      blobs_mounted: 0
      bytes_transferred: 1523
tags:
  description: The destination tag, with the digest it pointed at before and after (empty for a push by digest).
  returned: always
  type: list
  elements: dict
  sample:
    - tag: "1.4.2"
      before: null
      after: sha256:7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19
      changed: true
'''

from ansible_collections.imagelayers.registry.plugins.module_utils._argspec import (
    signing_argument_spec,
    suboptions,
    verification_argument_spec,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._context import DEFAULT_WORKERS
from ansible_collections.imagelayers.registry.plugins.module_utils._copy import copy_image
from ansible_collections.imagelayers.registry.plugins.module_utils._module import RegistryModule
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference


def destination(src_ref, dest):
    dest_ref = ImageReference.parse(dest)
    if dest_ref.tag or dest_ref.digest:
        return dest_ref
    return dest_ref.with_tag(src_ref.tag or 'latest')


def run(rm):
    params = rm.params
    src_ref = ImageReference.parse(params['src'], default_tag='latest')
    dest_ref = destination(src_ref, params['dest'])
    outcome = copy_image(
        rm.client(src_ref, 'src_'), src_ref, rm.client(dest_ref, 'dest_'), dest_ref,
        rm.context(workers=params['workers']), platforms=params['platforms'], overwrite=params['overwrite'],
        expected_digest=params['expected_digest'], referrers=params['referrers'],
        verify_signatures=params['verify_signatures'], require_artifact_types=params['require_artifact_types'],
        sign=params['sign'])
    return outcome.to_result()


def main() -> None:
    rm = RegistryModule(argument_spec={
        'src': {'type': 'str', 'required': True},
        'dest': {'type': 'str', 'required': True},
        'platforms': {'type': 'list', 'elements': 'str'},
        'overwrite': {'type': 'bool', 'default': True},
        'expected_digest': {'type': 'str'},
        'workers': {'type': 'int', 'default': DEFAULT_WORKERS},
        'referrers': {'type': 'bool', 'default': False},
        'verify_signatures': suboptions(verification_argument_spec()),
        'require_artifact_types': {'type': 'list', 'elements': 'str'},
        'sign': suboptions(signing_argument_spec(), no_log=False),
    }, sides=('src_', 'dest_'))
    rm.run(run)


if __name__ == '__main__':
    main()
