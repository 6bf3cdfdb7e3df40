# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
name: digest
short_description: Resolve image references to their manifest digests, for pinning images by digest
version_added: 0.1.0
author:
  - imagelayers maintainers (@imagelayers)
description:
  - Returns the manifest digest of each image reference, asking the registry over the Registry HTTP API v2
    on the controller; no container daemon is needed.
  - For a multi-platform image (OCI index or Docker manifest list) this is the digest of the index, which is
    what C(docker pull app@DIGEST) and Kubernetes need to pull the right platform everywhere. With
    O(platform), it is the digest of that platform's image manifest instead.
  - For a tag, the digest comes from a C(HEAD) request (the C(Docker-Content-Digest) header), which registries
    such as Docker Hub do not count as a pull; that header is the registry's word for what the tag points at.
    When the registry sends no digest header (or no content type), the manifest is fetched and its digest
    computed from its bytes.
  - For a reference with a digest (C(repository@sha256:...)), that digest is returned only when the registry
    confirms it - the C(HEAD) answers that same C(Docker-Content-Digest), or, without the header, the manifest
    fetched by that digest hashes to it. A registry that answers another digest fails the lookup with a message
    naming both digests, whatever O(on_missing) says.
  - With O(platform), the manifest is fetched (a C(GET)) and its bytes hashed - against the reference's digest
    when it has one, else against the registry's digest header when it sends one; for an index, the platform's
    image manifest is then fetched by the digest the index lists for it, and its bytes must hash to that digest.
  - A reference that is not in the registry fails the lookup with a message naming it, unless O(on_missing)
    says otherwise; C(errors='ignore') on the lookup call turns every failure into an empty value.
extends_documentation_fragment:
  - imagelayers.registry._connection
  - imagelayers.registry._connection_plugin
options:
  _terms:
    description:
      - Image references, C([registry/]repository[:tag][@digest]).
      - Without a tag or digest, V(latest) is used. A name without a registry host refers to Docker Hub.
      - A reference with a digest is checked to exist, and its digest returned once the registry confirmed it
        (see above).
    type: list
    elements: str
    required: true
  platform:
    description:
      - Return the digest of this platform's image manifest, as C(os/architecture[/variant]), for example
        V(linux/amd64) or V(linux/arm64/v8), instead of the index digest.
      - For an index, the entry is chosen the way skopeo and podman choose it, with the same fallbacks as the
        modules' O(platform) (for example V(linux/arm/v8) falls back to arm/v7, v6, v5; V(linux/arm) prefers the
        entry without a variant); see C(docs/manifest_info.md) in the collection for the whole order.
      - For a single-platform image, the image's platform must match, else the lookup fails.
    type: str
  on_missing:
    description:
      - What to do for a reference whose repository, tag or digest does not exist.
      - V(error) fails the lookup, V(warn) returns an empty string for it with a warning, V(ignore) returns
        an empty string for it silently. The other references are resolved either way.
      - Authentication, TLS and connection errors always fail the lookup.
    type: str
    choices: [error, warn, ignore]
    default: error
notes:
  - The lookup runs once per template evaluation; register the result with M(ansible.builtin.set_fact) when
    several tasks need the same digest.
  - Credentials given as options are sent only to the registry of the references; when they are set, all
    references of one call must name the same registry.
'''

EXAMPLES = r'''
- name: Pin an image by digest in a Kubernetes manifest
  ansible.builtin.set_fact:
    app_image: "registry.example.com/app@{{ lookup('imagelayers.registry.digest', 'registry.example.com/app:1.4.2') }}"

- name: Digests of several images at once, in the order given
  ansible.builtin.debug:
    msg: "{{ query('imagelayers.registry.digest', 'registry.example.com/app:1.4.2', 'registry.example.com/worker:1.4.2') }}"

- name: The arm64 image of a multi-platform image, with credentials from variables
  ansible.builtin.debug:
    msg: "{{ lookup('imagelayers.registry.digest', 'registry.example.com/app:1.4.2', platform='linux/arm64') }}"
  vars:
    imagelayers_registry_username: ci
    imagelayers_registry_password: "{{ registry_password }}"

- name: An empty string instead of a failure when the tag does not exist (yet)
  ansible.builtin.debug:
    msg: "{{ lookup('imagelayers.registry.digest', 'registry.example.com/app:next', on_missing='ignore') or 'not pushed yet' }}"
'''

RETURN = r'''
_raw:
  description:
    - One digest per reference, in the order of the references, as C(algorithm:hex).
    - An empty string for a missing reference when O(on_missing) is V(warn) or V(ignore).
  type: list
  elements: str
  sample:
    - sha256:7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19
'''

from typing import Any

from ansible import constants as C
from ansible.errors import AnsibleLookupError
from ansible.module_utils.basic import missing_required_lib
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

from ansible_collections.imagelayers.registry.plugins.module_utils._context import RunContext
from ansible_collections.imagelayers.registry.plugins.module_utils._credentials import CredentialStore
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    InvalidInputError,
    NotFoundError,
    RegistryError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._inspect import inspect_image
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import Platform
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.client import RegistryClient
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.config import (
    ConnectionConfig,
    has_credentials,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.transport import HAS_REQUESTS, HTTPSession
from ansible_collections.imagelayers.registry.plugins.module_utils._tagging import resolve_source
from ansible_collections.imagelayers.registry.plugins.plugin_utils._options import (
    connection_options,
    templated_variables,
)

display = Display()


def _references(terms: list[Any]) -> list[ImageReference]:
    references = []
    for term in terms:
        if not isinstance(term, str):
            raise InvalidInputError('Invalid image reference %r: expected a string like "registry/repository:tag"'
                                    % (term,))
        references.append(ImageReference.parse(term, default_tag='latest'))
    return references


def verified_digest(client: RegistryClient, reference: ImageReference) -> str | None:
    """The digest of ``reference`` (None when missing), never one the registry did not confirm.

    The same resolution as the ``tag`` and ``copy`` sources: one HEAD (a GET when it has no
    digest header, hashed when asked by digest), and an IntegrityError naming both digests
    when a HEAD answers another digest than the one pinned in the reference.
    """
    try:
        return resolve_source(client, reference)['digest']
    except NotFoundError:
        return None


def resolve_digests(http: HTTPSession, references: list[ImageReference], options: ConnectionConfig, ctx: RunContext,
                    platform: Platform | None = None, config_path: str | None = None) -> list[str | None]:
    """Digest (or None when missing) of each reference, in order; each distinct reference asked once."""
    if has_credentials(options):
        hosts = sorted(set(r.api_host for r in references))
        if len(hosts) > 1:
            raise InvalidInputError(
                'Credentials are set, and the references name %d registries (%s); credentials are only sent to '
                'one registry per lookup, so look up the images of each registry separately'
                % (len(hosts), ', '.join(hosts)))
    clients: dict[tuple[str, str], RegistryClient] = {}
    stored = CredentialStore(config_path)
    found: dict[str, str | None] = {}
    results = []
    for reference in references:
        if reference.name not in found:
            # One client (and auth state) per registry and repository: stored credentials may differ per repository.
            key = (reference.api_host, reference.repository)
            client = clients.get(key)
            if client is None:
                client = clients[key] = RegistryClient.for_reference(http, reference, stored.complete(options, reference))
            if platform is None:
                found[reference.name] = verified_digest(client, reference)
            else:
                found[reference.name] = inspect_image(client, reference, platform=platform, ctx=ctx).image_digest
        results.append(found[reference.name])
    return results


class LookupModule(LookupBase):

    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
        self.set_options(var_options=self._option_variables(variables), direct=kwargs)
        if not HAS_REQUESTS:
            raise AnsibleLookupError(missing_required_lib('requests'))
        on_missing = self.get_option('on_missing')
        http = None
        try:
            options = connection_options(self.get_option, source='lookup options')
            references = _references(self._flatten(terms))
            platform = self.get_option('platform')
            platform = Platform.parse(platform) if platform else None
            http = HTTPSession()
            ctx = RunContext(retries=options.retries, warn=display.warning)
            digests = resolve_digests(http, references, options, ctx, platform=platform,
                                      config_path=self.get_option('config_path'))
        except RegistryError as error:
            raise AnsibleLookupError(error.msg)
        finally:
            if http is not None:
                http.close()
        results = []
        for reference, digest in zip(references, digests):
            if digest is None:
                what = '%s for platform %s' % (reference.name, platform) if platform else reference.name
                message = ('%s does not exist in the registry '
                           '(no such repository, tag or digest)' % what)
                if on_missing == 'error':
                    raise AnsibleLookupError(message)
                if on_missing == 'warn':
                    display.warning(message)
                digest = ''
            results.append(digest)
        return results

    def _option_variables(self, variables: dict[str, Any] | None) -> dict[str, Any]:
        """The variables named in the options' ``vars:``, templated (a lookup receives them raw)."""
        definitions = C.config.get_configuration_definitions(plugin_type=self.plugin_type, name=self._load_name)
        try:
            return templated_variables(self._templar, variables, definitions)
        except InvalidInputError as error:
            raise AnsibleLookupError(error.msg) from None
