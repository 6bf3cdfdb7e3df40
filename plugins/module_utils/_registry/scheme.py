# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Which scheme a registry speaks, and what a TLS failure means.

A registry is spoken to over HTTPS. Only a loopback registry (every address of
its host a loopback one: :func:`is_loopback_host`) may speak plain HTTP, as
docker allows; :func:`discover_scheme` finds out on its first request. TLS
failures are told apart by exception type where Python has one (a certificate
that does not verify) and by OpenSSL's reason code where it has not (the alert
of a server that refuses the client certificate): :func:`tls_error` turns them
into a message that says what to change.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from typing import TYPE_CHECKING, Any, Iterator
from urllib.parse import urlsplit

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import TransportError
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.transport import (
    describe_exception,
    read_with_deadline,
)

_VERIFY_ERRORS: tuple[type[BaseException], ...] = (ssl.SSLCertVerificationError,)
try:
    import requests.exceptions
except ImportError:  # the module reports missing_required_lib('requests')
    pass
try:
    # urllib3's own host name check (used where the ssl module's is off) raises this.
    from urllib3.util.ssl_match_hostname import CertificateError as _Urllib3CertificateError
    _VERIFY_ERRORS += (_Urllib3CertificateError,)
except ImportError:  # no urllib3, or an older one, whose check raises the ssl module's error
    pass

if TYPE_CHECKING:
    import requests

    from ansible_collections.imagelayers.registry.plugins.module_utils._registry.api import RegistryAPI
    from ansible_collections.imagelayers.registry.plugins.module_utils._registry.config import ConnectionConfig

# OpenSSL's reason codes (ssl.SSLError.reason) for the alerts of a server that does not accept
# the client's certificate: none sent (TLS 1.3), one it cannot use, one from a CA it does not trust.
_CLIENT_CERTIFICATE_REASONS = frozenset(('TLSV13_ALERT_CERTIFICATE_REQUIRED', 'SSLV3_ALERT_BAD_CERTIFICATE',
                                         'TLSV1_ALERT_UNKNOWN_CA'))
# Only where no ssl.SSLError is left in the chain (a library that kept the text, not the
# exception): OpenSSL's texts of the same alerts, lowercase.
_CLIENT_CERTIFICATE_TEXTS = (
    'certificate required',          # "tlsv13 alert certificate required"
    'certificate_required',          # "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED]"
    'bad certificate',               # "sslv3 alert bad certificate"
    'unknown ca',                    # "tlsv1 alert unknown ca"
)
_MAX_CHAIN = 12


# -- loopback hosts -------------------------------------------------------------------------
def is_loopback_host(hostname: str | None) -> bool:
    """True when every address ``hostname`` stands for is a loopback address.

    Only such a registry may be spoken to over plain HTTP. An IP literal decides
    by itself; a name is resolved, and counts only when all its addresses are
    loopback ones: ``registry.localhost`` that does not resolve, or resolves
    anywhere else, is an ordinary HTTPS registry, whatever its name says.
    """
    host = (hostname or '').strip('[]')
    try:
        return ipaddress.ip_address(host.split('%', 1)[0]).is_loopback
    except ValueError:
        pass
    if not host:
        return False
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = set(str(info[4][0]).split('%', 1)[0] for info in infos)
    try:
        return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)
    except ValueError:
        return False


# -- scheme discovery ------------------------------------------------------------------------
def discover_scheme(api: RegistryAPI, method: str, path: str, headers: dict[str, str],
                    data: Any) -> 'requests.Response':
    """First request to a loopback registry: find out whether it speaks TLS, and set ``api.scheme``.

    With a token, a CA or a client certificate, TLS is expected and it is the
    only way: a token must not go out unencrypted, and a server that does not
    speak TLS is an error to report, not a reason to repeat the request in
    clear. Otherwise plain HTTP is tried first: a TLS handshake against a
    plain server costs tens of milliseconds, mostly loading the CA store,
    which is most of a small task's run time. A TLS server answers plain HTTP
    with a non-JSON 400 that says so, or drops it. The first plain request
    carries no credentials: the scheme is settled before any challenge is met.
    """
    https_url = 'https://%s%s' % (api.api_host, path)
    http_url = 'http://%s%s' % (api.api_host, path)
    required = _tls_required(api)
    if required:
        return _discover_tls_only(api, method, https_url, headers, data, required)
    try:
        response = api.send(method, http_url, headers, data, scheme='http')
    except requests.exceptions.ConnectionError:
        kind = 'tls'  # dropped: a TLS server does that to plain HTTP
    else:
        kind = plain_answer_kind(method, response, api.options.timeout)
    if kind == 'plain':
        api.scheme = 'http'
        return response
    if kind == 'unknown':
        return _settle_unknown(api, method, https_url, headers, data, response)
    api.scheme = 'https'
    return api.send(method, https_url, headers, data)


def _discover_tls_only(api: RegistryAPI, method: str, https_url: str, headers: dict[str, str], data: Any,
                       required: str) -> 'requests.Response':
    """TLS or nothing (``required`` names the option that says so)."""
    response, error = _send_tls(api, method, https_url, headers, data)
    api.scheme = 'https'
    if response is not None:
        return response
    if _answers_like_tls(api):
        raise error  # a TLS server that refused the handshake (a client certificate, say)
    raise TransportError(
        'TLS connection to %s failed: %s. The registry does not seem to speak TLS; it is not asked '
        'again over plain HTTP because %s is given (a token must not travel unencrypted, and a CA or '
        'client certificate means TLS is meant). Use the registry\'s TLS address, or leave out %s '
        'for a plain-HTTP registry on this host'
        % (api.api_host, describe_exception(error), required, required),
        url=https_url, attempts=1)


def _settle_unknown(api: RegistryAPI, method: str, https_url: str, headers: dict[str, str], data: Any,
                    plain_response: 'requests.Response') -> 'requests.Response':
    """Ask over TLS, and keep the plain answer if the server does not speak TLS after all."""
    try:
        tls_response = _send_tls(api, method, https_url, headers, data)[0]
    except requests.exceptions.SSLError:
        raise  # a certificate problem: the server does speak TLS
    except requests.exceptions.ConnectionError:
        tls_response = None
    if tls_response is None:
        api.scheme = 'http'
        return plain_response
    plain_response.close()
    api.scheme = 'https'
    return tls_response


def _tls_required(api: RegistryAPI) -> str | None:
    """Why TLS is the only way to this loopback registry (an option name), or None."""
    if api.auth.credentials and api.auth.credentials.token:
        return 'token'
    if api.options.ca_path:
        return 'ca_path'
    if getattr(api.options, 'client_cert', None):
        return 'client_cert'
    return None


def _answers_like_tls(api: RegistryAPI) -> bool:
    """Whether a TLS server listens: a plain ``GET /v2/`` without any credentials, whose answer
    (or dropped connection) tells a TLS server from a plain one. Nothing secret goes out."""
    try:
        probe = api.http.send('GET', 'http://%s/v2/' % api.api_host, {}, api.options, allow_plain=True, direct=True)
    except requests.exceptions.RequestException:
        return True
    kind = plain_answer_kind('GET', probe, api.options.timeout)
    probe.close()
    return kind == 'tls'


def _send_tls(api: RegistryAPI, method: str, url: str, headers: dict[str, str], data: Any) -> tuple[Any, Any]:
    """One request over TLS: ``(response, None)``, or ``(None, error)`` when the server does not
    speak TLS. A certificate problem means it does: that is raised, with the scheme settled."""
    try:
        return api.send(method, url, headers, data, scheme='https'), None
    except requests.exceptions.SSLError as exc:
        if is_certificate_problem(exc) or is_client_certificate_problem(exc):
            api.scheme = 'https'
            raise
        return None, exc


def plain_answer_kind(method: str, response: 'requests.Response', timeout: float) -> str:
    """Who answered a plain HTTP request to a loopback port.

    ``'tls'``: a TLS server, with the 400 that says so, recognised by "https" in its body
    (Go: "Client sent an HTTP request to an HTTPS server."; nginx: "The plain HTTP request
    was sent to HTTPS port"). ``'unknown'``: a non-JSON 400 to a HEAD, whose answer has no
    body to tell. ``'plain'``: anything else (a registry's own 400s are JSON).
    """
    if response.status_code != 400 or 'json' in response.headers.get('Content-Type', ''):
        return 'plain'
    if method == 'HEAD':
        return 'unknown'
    body = read_with_deadline(response, 1024, timeout, 'the answer of a plain HTTP request') if response.raw else b''
    response.close()
    return 'tls' if b'https' in body.lower() else 'plain'


# -- TLS failures ---------------------------------------------------------------------------
def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps: requests wraps urllib3's, which wraps the ssl module's
    (in ``args``, a ``reason`` or as the explicit cause)."""
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending and len(seen) < _MAX_CHAIN:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [getattr(current, 'reason', None), current.__cause__]
        inner.extend(getattr(current, 'args', None) or ())
        pending.extend(e for e in inner if isinstance(e, BaseException))


def is_certificate_problem(exc: BaseException) -> bool:
    """The server's certificate did not verify (unknown CA, expired, wrong host name)."""
    return any(isinstance(e, _VERIFY_ERRORS) for e in _chain(exc))


def is_client_certificate_problem(exc: BaseException) -> bool:
    """The server refused the handshake over the client certificate (none, or one it does not accept)."""
    ssl_errors = [e for e in _chain(exc) if isinstance(e, ssl.SSLError)]
    if ssl_errors:
        return any(getattr(e, 'reason', None) in _CLIENT_CERTIFICATE_REASONS for e in ssl_errors)
    text = str(exc).lower()
    return any(marker in text for marker in _CLIENT_CERTIFICATE_TEXTS)


def tls_error(exc: BaseException, url: str, registry_host: str, options: ConnectionConfig) -> TransportError:
    """The TransportError for a failed TLS connection to ``url`` (of ``registry_host``), saying what to change."""
    host = urlsplit(url).netloc or registry_host
    if is_certificate_problem(exc):
        msg = ('TLS certificate verification failed for %s: %s. Give the CA that signed the registry certificate '
               'with ca_path (or the REQUESTS_CA_BUNDLE environment variable), or set validate_certs to false '
               'for a registry you trust' % (host, describe_exception(exc)))
    else:
        msg = 'TLS connection to %s failed: %s' % (host, describe_exception(exc))
        if getattr(options, 'client_cert', None):
            msg += ('. Check that the server accepts the client certificate given with client_cert '
                    '(signed by a CA it trusts for clients) and that client_key is its key')
        elif is_client_certificate_problem(exc):
            msg += '. The server wants a client certificate: give client_cert and client_key'
    return TransportError(msg, url=url, attempts=1)
