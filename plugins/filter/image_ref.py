# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from ansible.errors import AnsibleFilterError

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import InvalidInputError
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import (
    DOCKER_HUB,
    ImageReference,
    validate_tag,
)


def _familiar_name(reference: ImageReference) -> str:
    """The short name ``docker`` shows: Docker Hub's host and ``library/`` left out."""
    if reference.registry != DOCKER_HUB:
        return reference.repository_name
    repository = reference.repository
    if repository.startswith('library/') and repository.count('/') == 1:
        return repository[len('library/'):]
    return repository


def image_ref(value: Any, default_tag: Optional[str] = 'latest') -> Dict[str, Optional[str]]:
    """Parse and normalise an image reference into a dict."""
    if not isinstance(value, str):
        raise AnsibleFilterError('expected an image reference string like "registry/repository:tag", '
                                 'got %s %r' % (type(value).__name__, value))
    if default_tag is not None and not isinstance(default_tag, str):
        raise AnsibleFilterError('default_tag must be a string or none, got %r' % (default_tag,))
    try:
        if default_tag:
            validate_tag(default_tag)
        reference = ImageReference.parse(value, default_tag=default_tag or None)
    except InvalidInputError as error:
        raise AnsibleFilterError(error.msg)
    result = reference.to_dict()
    result.update({
        'api_host': reference.api_host,
        'familiar_name': _familiar_name(reference),
        'repository_name': reference.repository_name,
    })
    return result


class FilterModule:

    def filters(self) -> Dict[str, Callable[..., Any]]:
        return {'image_ref': image_ref}
