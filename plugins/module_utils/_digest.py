# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Content digests: ``algorithm:encoded`` validation, hashing and verification."""

from __future__ import annotations

import hashlib
import re
from typing import Any, Optional, Tuple

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    IntegrityError,
    InvalidInputError,
)

# Registered algorithms of the OCI image spec and the length of their hex encoding.
ALGORITHMS = {'sha256': 64, 'sha512': 128}
# Used with fullmatch: "$" also matches before a final newline, so "sha256:<hex>\n" would pass.
_HEX = re.compile(r'[a-f0-9]+')
_GENERIC = re.compile(r'[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+')


def validate_digest(digest: Any, what: str = 'digest') -> Tuple[str, str]:
    """Return ``(algorithm, encoded)`` for a valid digest, else raise InvalidInputError."""
    if not isinstance(digest, str) or not digest:
        raise InvalidInputError('Invalid %s %r: expected "algorithm:hex", for example "sha256:<64 hex digits>"' % (what, digest))
    if not _GENERIC.fullmatch(digest):
        raise InvalidInputError('Invalid %s %r: expected "algorithm:hex", for example "sha256:<64 hex digits>"' % (what, digest))
    algorithm, encoded = digest.split(':', 1)
    if algorithm not in ALGORITHMS:
        raise InvalidInputError('Unsupported digest algorithm %r in %s %r: use one of %s'
                                % (algorithm, what, digest, ', '.join(sorted(ALGORITHMS))))
    length = ALGORITHMS[algorithm]
    if len(encoded) != length or not _HEX.fullmatch(encoded):
        raise InvalidInputError('Invalid %s %r: a %s digest is %d lowercase hex digits, got %d characters%s'
                                % (what, digest, algorithm, length, len(encoded),
                                   '' if _HEX.fullmatch(encoded) else ' that are not all lowercase hex'))
    return algorithm, encoded


def new_hasher(algorithm: str = 'sha256') -> Any:
    return hashlib.new(algorithm)


def compute_digest(data: bytes, algorithm: str = 'sha256') -> str:
    return '%s:%s' % (algorithm, hashlib.new(algorithm, data).hexdigest())


def verify_bytes(data: bytes, expected: str, what: str = 'content', url: Optional[str] = None) -> str:
    """Raise IntegrityError unless ``data`` hashes to ``expected``; return the digest."""
    algorithm, dummy = validate_digest(expected)
    actual = compute_digest(data, algorithm)
    if actual != expected:
        raise IntegrityError(
            '%s does not match its digest: expected %s, the %d bytes received hash to %s'
            % (what, expected, len(data), actual),
            url=url, details={'expected_digest': expected, 'actual_digest': actual, 'actual_size': len(data)})
    return actual
