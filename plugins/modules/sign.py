#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: sign
short_description: Sign an image in a registry with a key, as cosign does, idempotently
version_added: 0.2.0
description:
  - Signs the digest O(image) resolves to with O(key), like C(cosign sign --key), without cosign and without a
    transparency log upload. The tag is resolved once; the digest is what is signed.
  - With O(format=simplesigning) (the default), writes a cosign simple signing signature. The payload names the
    digest and the repository, and the signature sits in the C(dev.cosignproject.cosign/signature) annotation of
    a layer. The layer is appended to the manifest under the tag C(sha256-<hex>.sig), as cosign 2 does, where
    cosign 2 and the admission controllers that use it read it.
  - With O(format=bundle), writes the sigstore bundle (C(application/vnd.dev.sigstore.bundle.v0.3+json)) cosign 3
    stores, as an OCI 1.1 referrer of the image (C(subject)). On a registry without the referrers API, it is
    also added to the C(sha256-<hex>) fallback index.
  - Idempotent. When a signature of this digest by the same key already verifies, nothing is written and the
    task is unchanged.
author:
  - imagelayers maintainers (@imagelayers)
extends_documentation_fragment:
  - imagelayers.registry._connection
attributes:
  check_mode:
    support: full
    description:
      - Reads the existing signatures and reports whether a signature would be written; writes nothing. The
        digest of a signature that would be written is not known (an ECDSA signature differs each time), so
        RV(signature.digest) is null.
  diff_mode:
    support: full
    description:
      - C(before) and C(after) are the signature set of the format as this key sees it. C(signatures) is how many
        there are; C(key_fingerprints) the fingerprints of the keys known to sign the digest. Only the signer's
        key can be checked, so at most its own.
options:
  image:
    description:
      - The image to sign, C([registry/]repository:tag) or C([registry/]repository@digest). Without a tag or
        digest, V(latest) is used.
    type: str
    required: true
  key:
    description:
      - The private key, as PEM text. PKCS#8 (optionally encrypted with O(passphrase)), or cosign's own
        encrypted key format (C(ENCRYPTED SIGSTORE PRIVATE KEY), which needs PyNaCl). ECDSA P-256 or P-384,
        RSA or Ed25519.
      - Never returned or logged.
    type: str
    required: true
  passphrase:
    description: The passphrase of an encrypted O(key). Never returned or logged.
    type: str
  format:
    description:
      - V(simplesigning) writes cosign's simple signing under the C(sha256-<hex>.sig) tag.
      - V(bundle) writes a sigstore bundle v0.3 as an OCI 1.1 referrer.
    type: str
    choices: [simplesigning, bundle]
    default: simplesigning
requirements:
  - cryptography (on the managed host)
  - PyNaCl, only for a key in cosign's own encrypted format
notes:
  - The signature is not uploaded to a transparency log; verify it with the public key (C(cosign verify --key
    ... --insecure-ignore-tlog) or M(imagelayers.registry.signature_verify)).
  - Two tasks signing the same digest at the same time under the C(.sig) tag may each write their layer, and the
    last write wins; run signing for one digest from one place.
seealso:
  - module: imagelayers.registry.signature_verify
  - module: imagelayers.registry.copy
'''

EXAMPLES = r'''
- name: Sign the tested digest
  imagelayers.registry.sign:
    image: registry.example.com/app@{{ tested_digest }}
    key: "{{ lookup('file', 'promote.key') }}"
    passphrase: "{{ vault_promote_key_pass }}"

- name: Sign as cosign 3 does, a sigstore bundle stored as a referrer
  imagelayers.registry.sign:
    image: registry.example.com/app:1.4.2
    key: "{{ lookup('file', 'promote.key') }}"
    format: bundle
  register: signed

- name: Show the signature
  ansible.builtin.debug:
    var: signed.signature
'''

RETURN = r'''
digest:
  description: The digest O(image) resolved to, the one signed.
  returned: always
  type: str
  sample: sha256:7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19
signature:
  description: The signature manifest written, or the one found that already verifies with the key.
  returned: always
  type: dict
  contains:
    digest:
      description:
        - The digest of the signature manifest. With O(format=simplesigning), the manifest under the tag, which
          holds every signature layer. Null in check mode when a signature would be written.
      type: str
    format:
      description: V(simplesigning) or V(bundle).
      type: str
    tag:
      description: The tag the signature manifest is under (O(format=simplesigning)).
      type: str
      returned: when there is one
  sample:
    digest: sha256:45b23dee08af5e43a7fea6c4cf9c25ccf269ee113168c19722f87876677c5cb2
    format: simplesigning
    tag: sha256-7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19.sig
'''

from ansible_collections.imagelayers.registry.plugins.module_utils._argspec import signing_argument_spec
from ansible_collections.imagelayers.registry.plugins.module_utils._module import RegistryModule
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference
from ansible_collections.imagelayers.registry.plugins.module_utils._signatures import sign_reference
from ansible_collections.imagelayers.registry.plugins.module_utils._sigstore import Signer


def run(rm: RegistryModule) -> dict:
    params = rm.params
    reference = ImageReference.parse(params['image'], default_tag='latest')
    signer = Signer(params['key'], params['passphrase'])
    return sign_reference(rm.client(reference), reference, signer, params['format'], rm.context()).to_result()


def main() -> None:
    spec = signing_argument_spec()
    spec.argument_spec['image'] = {'type': 'str', 'required': True}
    rm = RegistryModule(argument_spec=spec.argument_spec)
    rm.run(run)


if __name__ == '__main__':
    main()
