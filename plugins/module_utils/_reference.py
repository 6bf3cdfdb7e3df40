# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Image references: ``[host[:port]/]path[:tag][@digest]``.

Follows the grammar of the distribution project (``reference/regexp.go``) and the
normalisation of Docker's ``ParseNormalizedNamed``: the first path component is a
registry host only when it contains ``.`` or ``:``, is ``localhost`` or an IPv6
literal in brackets; otherwise the image lives on Docker Hub (``docker.io``, API
host ``registry-1.docker.io``) and one-component names get ``library/``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Dict, Optional

from ansible_collections.imagelayers.registry.plugins.module_utils._digest import validate_digest
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import InvalidInputError

DOCKER_HUB = 'docker.io'
DOCKER_HUB_API = 'registry-1.docker.io'
_HUB_ALIASES = ('docker.io', 'index.docker.io', 'registry-1.docker.io')

# Every pattern is used with fullmatch: "$" also matches before a final newline, so "x\n" would pass.
_DOMAIN_COMPONENT = r'(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
_DOMAIN_NAME = re.compile(r'%s(?:\.%s)*' % (_DOMAIN_COMPONENT, _DOMAIN_COMPONENT))
_IPV6 = re.compile(r'\[([^\]]+)\]')
_PORT = re.compile(r'[0-9]+')
PATH_COMPONENT = re.compile(r'[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*')
_TAG = re.compile(r'[A-Za-z0-9_][A-Za-z0-9._-]{0,127}')
# distribution/reference anchoredIdentifierRegexp: what an image ID looks like.
_IMAGE_ID = re.compile(r'[a-f0-9]{64}')
NAME_TOTAL_LENGTH_MAX = 255


def is_tag(value: Any) -> bool:
    """Whether all of ``value`` is a valid tag name (so a trailing newline makes it invalid)."""
    return isinstance(value, str) and _TAG.fullmatch(value) is not None


def validate_tag(tag: Any) -> str:
    if not is_tag(tag):
        hint = ''
        if isinstance(tag, str) and any(c.isspace() for c in tag):
            hint = ' (it contains white space or a line break)'
        raise InvalidInputError(
            'Invalid tag %r: a tag is 1 to 128 characters of letters, digits, "_", "." and "-", '
            'and does not start with "." or "-"%s' % (tag, hint))
    return tag


def split_host_port(domain: str, reference: str) -> str:
    """Validate a registry domain; return it normalised (Hub aliases folded)."""
    host = domain
    port: Optional[str] = None
    ipv6 = None
    if domain.startswith('['):
        end = domain.find(']')
        if end < 0:
            raise InvalidInputError('Invalid registry host %r in %r: unterminated IPv6 literal' % (domain, reference))
        host, rest = domain[:end + 1], domain[end + 1:]
        match = _IPV6.fullmatch(host)
        if not match:
            raise InvalidInputError('Invalid registry host %r in %r' % (domain, reference))
        try:
            ipv6 = ipaddress.IPv6Address(match.group(1))
        except ValueError:
            raise InvalidInputError('Invalid IPv6 address %r in %r' % (host, reference))
        if rest:
            if not rest.startswith(':'):
                raise InvalidInputError('Invalid registry host %r in %r' % (domain, reference))
            port = rest[1:]
    elif ':' in domain:
        host, port = domain.rsplit(':', 1)
    if port is not None and (not _PORT.fullmatch(port) or not 0 < int(port) < 65536):
        raise InvalidInputError('Invalid port %r in registry %r of %r: expected a number from 1 to 65535'
                                % (port, domain, reference))
    if ipv6 is None and not _DOMAIN_NAME.fullmatch(host):
        raise InvalidInputError('Invalid registry host %r in %r: expected a host name, IPv4 address or [IPv6] literal'
                                % (host, reference))
    if ipv6 is None and host.lower() in _HUB_ALIASES and port is None:
        return DOCKER_HUB
    return domain


class ImageReference:
    """A parsed, normalised image reference."""

    def __init__(self, registry: str, repository: str, tag: Optional[str] = None, digest: Optional[str] = None) -> None:
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest

    @classmethod
    def parse(cls, reference: Any, default_tag: Optional[str] = None) -> ImageReference:
        """Parse ``reference``; raise InvalidInputError naming the bad part."""
        if not isinstance(reference, str) or not reference.strip():
            raise InvalidInputError('Invalid image reference %r: it is empty' % (reference,))
        if reference != reference.strip() or any(c.isspace() for c in reference):
            raise InvalidInputError('Invalid image reference %r: it contains white space' % (reference,))
        if _IMAGE_ID.fullmatch(reference):
            # As distribution/reference ParseNormalizedNamed (Docker, containers/image): the whole reference,
            # so "registry/<hex>", "ns/<hex>" or "<hex>:tag" remain names.
            raise InvalidInputError(
                'Invalid image reference %r: a repository name cannot be 64 hexadecimal digits, which Docker and '
                'containers/image refuse as ambiguous with an image ID (to name an image by its digest, write '
                'repository@sha256:<hex>)' % (reference,))
        remainder = reference
        digest = None
        if '@' in remainder:
            remainder, digest = remainder.split('@', 1)
            try:
                validate_digest(digest)
            except InvalidInputError as error:
                raise InvalidInputError('%s, in image reference %r' % (error.msg, reference))
        tag = None
        last_slash = remainder.rfind('/')
        colon = remainder.rfind(':')
        if colon > last_slash and not remainder[colon:].endswith(']'):
            remainder, tag = remainder[:colon], remainder[colon + 1:]
            if not is_tag(tag):
                raise InvalidInputError(
                    'Invalid tag %r in image reference %r: a tag is 1 to 128 characters of letters, digits, '
                    '"_", "." and "-", and does not start with "." or "-"' % (tag, reference))
        if not remainder:
            raise InvalidInputError('Invalid image reference %r: the repository name is missing' % (reference,))
        components = remainder.split('/')
        first = components[0]
        if len(components) > 1 and ('.' in first or ':' in first or first == 'localhost' or first.startswith('[')):
            registry = split_host_port(first, reference)
            path = components[1:]
        else:
            registry = DOCKER_HUB
            path = components
        if registry == DOCKER_HUB and len(path) == 1:
            path = ['library'] + path
        for component in path:
            if not component:
                raise InvalidInputError('Invalid image reference %r: empty path component (a "//" or a trailing "/")'
                                        % (reference,))
            if not PATH_COMPONENT.fullmatch(component):
                hint = ' (repository names are lowercase)' if component.lower() != component else ''
                raise InvalidInputError(
                    'Invalid repository path component %r in image reference %r: expected lowercase letters and '
                    'digits separated by ".", "_", "__" or dashes%s' % (component, reference, hint))
        repository = '/'.join(path)
        name_length = len(repository) if registry == DOCKER_HUB else len(registry) + 1 + len(repository)
        if name_length > NAME_TOTAL_LENGTH_MAX:
            raise InvalidInputError('Invalid image reference %r: the name is %d characters, the limit is %d'
                                    % (reference, name_length, NAME_TOTAL_LENGTH_MAX))
        if tag is None and digest is None:
            tag = default_tag
        return cls(registry, repository, tag, digest)

    @property
    def api_host(self) -> str:
        """The host:port that serves the HTTP API."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def hostname(self) -> str:
        """The bare host name or IP address, without port or brackets."""
        host = self.api_host
        if host.startswith('['):
            return host[1:host.index(']')]
        return host.rsplit(':', 1)[0] if ':' in host else host

    @property
    def reference(self) -> Optional[str]:
        """What goes after ``/manifests/``: the digest when there is one, else the tag."""
        return self.digest or self.tag

    @property
    def repository_name(self) -> str:
        """``registry/repository``, the familiar name without tag or digest."""
        return '%s/%s' % (self.registry, self.repository)

    @property
    def name(self) -> str:
        """The canonical, fully qualified reference."""
        value = self.repository_name
        if self.tag:
            value += ':' + self.tag
        if self.digest:
            value += '@' + self.digest
        return value

    def with_tag(self, tag: str) -> ImageReference:
        return ImageReference(self.registry, self.repository, validate_tag(tag), None)

    def with_digest(self, digest: str) -> ImageReference:
        validate_digest(digest)
        return ImageReference(self.registry, self.repository, None, digest)

    def to_dict(self) -> Dict[str, Optional[str]]:
        return {
            'registry': self.registry,
            'repository': self.repository,
            'tag': self.tag,
            'digest': self.digest,
            'name': self.name,
            'domain': self.registry,
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ImageReference) and self.name == other.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return 'ImageReference(%r)' % self.name

    def __str__(self) -> str:
        return self.name
