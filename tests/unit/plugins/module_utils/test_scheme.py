# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TLS failures told apart by exception type and OpenSSL reason code, not by what the message happens to say."""

from __future__ import annotations

import ssl

import requests.exceptions
import urllib3.exceptions

from ansible_collections.imagelayers.registry.plugins.module_utils._registry.config import ConnectionConfig
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.scheme import (
    is_certificate_problem,
    is_client_certificate_problem,
    tls_error,
)


def _as_requests_raises_it(inner):
    """requests' SSLError around urllib3's MaxRetryError around urllib3's SSLError around the ssl module's."""
    return requests.exceptions.SSLError(
        urllib3.exceptions.MaxRetryError(None, '/v2/', urllib3.exceptions.SSLError(inner)))


def _ssl_error(cls, reason, text):
    error = cls(1, text)
    error.reason = reason  # what OpenSSL sets on a real one
    return error


VERIFY = _ssl_error(ssl.SSLCertVerificationError, 'CERTIFICATE_VERIFY_FAILED',
                    '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate')
CERT_REQUIRED = _ssl_error(ssl.SSLError, 'TLSV13_ALERT_CERTIFICATE_REQUIRED',
                           '[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required')
UNKNOWN_CA = _ssl_error(ssl.SSLError, 'TLSV1_ALERT_UNKNOWN_CA', '[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca')
WRONG_VERSION = _ssl_error(ssl.SSLError, 'WRONG_VERSION_NUMBER', '[SSL: WRONG_VERSION_NUMBER] wrong version number')


def test_a_certificate_that_does_not_verify_is_known_by_its_type():
    error = _as_requests_raises_it(VERIFY)
    assert is_certificate_problem(error) and not is_client_certificate_problem(error)
    # a host name mismatch is the same type
    mismatch = _ssl_error(ssl.SSLCertVerificationError, 'CERTIFICATE_VERIFY_FAILED',
                          "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch")
    assert is_certificate_problem(_as_requests_raises_it(mismatch))


def test_words_alone_do_not_make_a_verification_failure():
    assert not is_certificate_problem(requests.exceptions.SSLError('certificate verify failed for hostname x'))
    assert not is_certificate_problem(_as_requests_raises_it(WRONG_VERSION))


def test_a_refused_client_certificate_is_known_by_openssl_reason():
    for inner in (CERT_REQUIRED, UNKNOWN_CA):
        error = _as_requests_raises_it(inner)
        assert is_client_certificate_problem(error) and not is_certificate_problem(error)
    assert not is_client_certificate_problem(_as_requests_raises_it(WRONG_VERSION))
    # also when it arrives while the answer is read: ('Connection aborted.', SSLError(...))
    aborted = requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError('Connection aborted.', CERT_REQUIRED))
    assert is_client_certificate_problem(aborted)


def test_without_an_ssl_error_in_the_chain_the_alert_text_is_recognised():
    assert is_client_certificate_problem(requests.exceptions.ConnectionError('tlsv13 alert certificate required'))
    assert not is_client_certificate_problem(requests.exceptions.ConnectionError('Connection refused'))


def test_messages_say_what_to_change():
    verify = tls_error(_as_requests_raises_it(VERIFY), 'https://registry.example/v2/', 'registry.example',
                       ConnectionConfig())
    assert verify.msg.startswith('TLS certificate verification failed for registry.example: ')
    assert 'ca_path' in verify.msg and 'validate_certs' in verify.msg
    wanted = tls_error(_as_requests_raises_it(CERT_REQUIRED), 'https://registry.example/v2/', 'registry.example',
                       ConnectionConfig())
    assert wanted.msg.endswith('The server wants a client certificate: give client_cert and client_key')
    refused = tls_error(_as_requests_raises_it(UNKNOWN_CA), 'https://registry.example/v2/', 'registry.example',
                        ConnectionConfig(client_cert='/c.pem'))
    assert 'accepts the client certificate given with client_cert' in refused.msg
