# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""One exception hierarchy for everything the registry client can go wrong on.

Every error carries a readable ``msg`` plus structured fields (HTTP status,
registry error codes, the URL with credentials and query strings removed, the
number of attempts). Modules catch :class:`RegistryError` once and fail through
:func:`fail_from_error`, so a user mistake or a registry error never produces a
traceback.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional
from urllib.parse import urlsplit, urlunsplit

MASK = '********'
# Shorter secrets are not masked: replacing every "t" of a message helps nobody. The
# Authorization forms built from them (base64, "Basic ...") are long, and masked.
MIN_MASKED_LENGTH = 4


def redact_url(url: Optional[str]) -> Optional[str]:
    """Return ``url`` without user info, query string or fragment.

    Query strings of blob redirects carry pre-signed credentials, and a URL
    may embed ``user:password@``; neither may reach a result or a log.
    """
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return '<unparseable URL>'
    netloc = parts.netloc.rsplit('@', 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, '', ''))


def mask_secrets(value: Any, secrets: Iterable[Optional[str]]) -> Any:
    """``value`` (a string, or lists and dicts of them) with every one of ``secrets`` replaced by ``********``.

    For what a registry or token service answered: one that echoes the ``Authorization``
    header would otherwise put the base64 of ``user:password`` or a token into a result,
    where ``no_log`` (which knows only the raw option values) does not mask it.
    """
    ordered = sorted(set(s for s in secrets if s and len(s) >= MIN_MASKED_LENGTH), key=len, reverse=True)
    if not ordered:
        return value
    if isinstance(value, str):
        for secret in ordered:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return dict((mask_secrets(k, ordered), mask_secrets(v, ordered)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [mask_secrets(v, ordered) for v in value]
    return value


class RegistryError(Exception):
    """Base class: ``msg`` for people, the other attributes for playbooks."""

    def __init__(self, msg: str, status: Optional[int] = None, url: Optional[str] = None,
                 codes: Optional[Iterable[str]] = None, errors: Optional[Iterable[Any]] = None,
                 attempts: Optional[int] = None, details: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.status = status
        self.url = redact_url(url)
        self.codes = list(codes or [])
        self.errors = list(errors or [])
        self.attempts = attempts
        self.details = dict(details or {})

    def __str__(self) -> str:
        return self.msg

    def to_result(self) -> Dict[str, Any]:
        """Structured fields for ``fail_json``; empty ones are left out."""
        result: Dict[str, Any] = {}
        if self.status is not None:
            result['status'] = self.status
        if self.url:
            result['url'] = self.url
        if self.codes:
            result['registry_error_codes'] = self.codes
        if self.errors:
            result['registry_errors'] = self.errors
        if self.attempts is not None:
            result['attempts'] = self.attempts
        result.update(self.details)
        return result


class InvalidInputError(RegistryError):
    """A malformed reference, digest, platform or option combination."""


class RegistryHTTPError(RegistryError):
    """The registry answered with an error status."""


class NotFoundError(RegistryHTTPError):
    """404 or a ``*_UNKNOWN`` error code: the repository, tag or blob is not there."""


class AuthenticationError(RegistryHTTPError):
    """401/403, or a token endpoint that refused the credentials."""


class UnsupportedError(RegistryHTTPError):
    """The registry does not support the operation (405, ``UNSUPPORTED``)."""


class TransportError(RegistryError):
    """Connection, TLS or timeout failure, after the retries were spent."""


class IntegrityError(RegistryError):
    """Content whose digest or size is not what it must be."""


class MissingLibraryError(RegistryError):
    """An option needs a Python library that is not installed on the host running the module."""

    def __init__(self, library: str, reason: str, import_error: Optional[str] = None) -> None:
        super().__init__('The Python library %s is required to %s' % (library, reason),
                         details={'missing_library': library})
        self.library = library
        self.reason = reason
        self.import_error = import_error


def fail_from_error(module: Any, error: RegistryError, **result: Any) -> None:
    """The single failure path of every module."""
    fields = error.to_result()
    fields.update(result)
    if isinstance(error, MissingLibraryError):
        from ansible.module_utils.basic import missing_required_lib  # modules only: plugins never get here
        module.fail_json(msg=missing_required_lib(error.library, reason=error.reason),
                         exception=error.import_error, **fields)
    module.fail_json(msg=error.msg, **fields)
