#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: signature_verify
short_description: Fail unless a cosign signature of an image verifies, with a key or keyless
version_added: 0.2.0
description:
  - A gate for promotion pipelines, like C(cosign verify) without cosign and without network access to
    Rekor or Fulcio. Resolves O(image) once; the digest it resolves to is what is verified.
  - Finds every signature of that digest the registry holds, in the formats cosign writes. Cosign simple
    signing manifests under the tag C(sha256-<hex>.sig) or as OCI 1.1 referrers, and the sigstore bundles
    (C(application/vnd.dev.sigstore.bundle.v0.3+json)) cosign 3 stores as referrers. Referrers are read
    through the OCI 1.1 referrers API, or, on a registry without it, from the C(sha256-<hex>) fallback index.
  - Checks each one. The signed payload must name this digest. The signature must verify with one of O(keys),
    or (keyless) with a certificate that chains to O(trusted_roots), whose identity and issuer match, and that
    was valid when the Rekor signed entry timestamp, verified with O(rekor_public_key), says it signed.
  - Fails unless at least one signature verifies, listing each signature found with the reason it was refused.
    Never changes anything.
author:
  - imagelayers maintainers (@imagelayers)
extends_documentation_fragment:
  - imagelayers.registry._connection
  - imagelayers.registry._attributes.INFO_MODULE
options:
  image:
    description:
      - The image, C([registry/]repository:tag) or C([registry/]repository@digest). Without a tag or digest,
        V(latest) is used.
    type: str
    required: true
  keys:
    description:
      - PEM public keys (ECDSA P-256 or P-384, RSA, Ed25519); a signature made with any of them verifies.
      - Give O(keys), or the keyless options (O(certificate_identity) or O(certificate_identity_regexp),
        O(certificate_oidc_issuer) or O(certificate_oidc_issuer_regexp), O(trusted_roots) and
        O(rekor_public_key)), or both.
    type: list
    elements: str
  certificate_identity:
    description: Keyless. The identity (a URI or e-mail subject alternative name) the signing certificate must have.
    type: str
  certificate_identity_regexp:
    description: Keyless. A Python regular expression the certificate's identity must match (C(re.fullmatch)).
    type: str
  certificate_oidc_issuer:
    description:
      - Keyless. The OIDC issuer the certificate must name, in the Fulcio extension (the current
        C(1.3.6.1.4.1.57264.1.8) or the older C(1.3.6.1.4.1.57264.1.1)).
    type: str
  certificate_oidc_issuer_regexp:
    description: Keyless. A Python regular expression the certificate's issuer must match (C(re.fullmatch)).
    type: str
  trusted_roots:
    description:
      - Keyless. The certificates (PEM) the signing certificate must chain to, the Fulcio root and
        intermediates, as PEM text or as the path of a file on the managed host.
    type: str
  rekor_public_key:
    description:
      - Keyless. The Rekor public key (PEM) that signed the entry timestamps, as PEM text or as the path of a
        file on the managed host.
    type: str
requirements:
  - cryptography (on the managed host)
notes:
  - Everything is checked offline from what the registry holds plus the given roots and keys.
  - Every signature payload is read with a size limit (1 MiB, a bundle 16 MiB) and checked against its digest.
  - Attestations, SBOMs and other referrers are not signatures of the image and are not listed.
seealso:
  - module: imagelayers.registry.sign
  - module: imagelayers.registry.copy
'''

EXAMPLES = r'''
- name: Gate a promotion on the CI's signature
  imagelayers.registry.signature_verify:
    image: registry.example.com/app@{{ tested_digest }}
    keys:
      - "{{ lookup('file', 'ci-signing.pub') }}"

- name: Keyless, a Fulcio certificate and a Rekor entry timestamp
  imagelayers.registry.signature_verify:
    image: registry.example.com/app:1.4.2
    certificate_identity_regexp: '^https://ci\.example\.com/release/.*$'
    certificate_oidc_issuer: https://issuer.example.com
    trusted_roots: /etc/pki/sigstore/fulcio-chain.pem
    rekor_public_key: /etc/pki/sigstore/rekor.pub
  register: verified

- name: Copy exactly the digest that was verified
  imagelayers.registry.copy:
    src: registry.example.com/app@{{ verified.digest }}
    dest: prod.example.com/app:1.4.2
'''

RETURN = r'''
image:
  description: The normalised reference of O(image).
  returned: always
  type: str
  sample: registry.example.com/app:1.4.2
digest:
  description: The digest O(image) resolved to, the one whose signatures were verified.
  returned: always
  type: str
  sample: sha256:7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19
verified:
  description: Always V(true) when the module succeeds; on failure, the signatures are returned with the reasons.
  returned: always
  type: bool
signatures:
  description:
    - Every signature found, in the order found, with the verdict on each. A simple signing manifest with
      several layers gives one entry per layer. Also returned when the task fails.
  returned: always
  type: list
  elements: dict
  contains:
    digest:
      description: The digest of the signature manifest.
      type: str
    format:
      description: V(simplesigning) or V(bundle).
      type: str
    found_in:
      description: V(api) (the referrers API), V(fallback) (the C(sha256-<hex>) index) or V(tag) (a cosign tag).
      type: str
    tag:
      description: The tag it was found under, when it was.
      type: str
      returned: when found under a tag
    key_fingerprint:
      description: The SHA-256 fingerprint of the public key that verified it (key-based), or null.
      type: str
    identity:
      description: The certificate's identity (keyless), or null.
      type: str
    issuer:
      description: The certificate's OIDC issuer (keyless), or null.
      type: str
    verified:
      description: Whether this signature verified.
      type: bool
    reason:
      description: Why it did not verify, or null.
      type: str
  sample:
    - digest: sha256:45b23dee08af5e43a7fea6c4cf9c25ccf269ee113168c19722f87876677c5cb2
      format: simplesigning
      found_in: tag
      tag: sha256-7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19.sig
      key_fingerprint: SHA256:3Cj6oB8mQ6uY0pTfK3x8q5oH1w0Jc9aZ8vP9w7kFh2E
      identity: null
      issuer: null
      verified: true
      reason: null
'''

from ansible_collections.imagelayers.registry.plugins.module_utils._argspec import verification_argument_spec
from ansible_collections.imagelayers.registry.plugins.module_utils._module import RegistryModule
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference
from ansible_collections.imagelayers.registry.plugins.module_utils._signatures import (
    verifier_from_params,
    verify_image,
)


def run(rm: RegistryModule) -> dict:
    reference = ImageReference.parse(rm.params['image'], default_tag='latest')
    verifier = verifier_from_params(rm.params)
    return verify_image(rm.client(reference), reference, verifier).to_result()


def main() -> None:
    spec = verification_argument_spec()
    spec.argument_spec['image'] = {'type': 'str', 'required': True}
    rm = RegistryModule(argument_spec=spec.argument_spec, mutually_exclusive=spec.mutually_exclusive)
    rm.run(run)


if __name__ == '__main__':
    main()
