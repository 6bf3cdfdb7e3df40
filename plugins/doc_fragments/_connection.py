# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.

from __future__ import annotations


class ModuleDocFragment:

    # The connection and authentication options of every module and plugin: exactly the options
    # connection_argument_spec() in plugins/module_utils/_argspec.py builds. Plugins add the
    # imagelayers.registry._connection_plugin overlay after this fragment (env/ini/vars sources).
    DOCUMENTATION = r'''
options:
  username:
    description:
      - User name for the registry (HTTP Basic, or the Basic credentials sent to a Bearer token service).
      - If not set, the value of the E(IMAGELAYERS_REGISTRY_USERNAME) environment variable is used.
      - Requires O(password).
    type: str
  password:
    description:
      - Password for O(username).
      - If not set, the value of the E(IMAGELAYERS_REGISTRY_PASSWORD) environment variable is used.
      - Never returned, logged or put in a URL.
    type: str
  token:
    description:
      - A registry bearer token, sent in an C(Authorization) header (C(Bearer) scheme) to the registry host.
      - Mutually exclusive with O(username) and O(password).
      - If not set, the value of the E(IMAGELAYERS_REGISTRY_TOKEN) environment variable is used.
    type: str
  validate_certs:
    description:
      - Verify the registry's TLS certificate.
      - Registries on a loopback address (an IP literal such as V(127.0.0.1) or V([::1]), or a name whose
        addresses all are loopback ones, such as V(localhost)) may also be reached over plain HTTP, directly
        (never through a proxy), as C(docker) allows; other registries are always reached over HTTPS. With
        O(ca_path), O(client_cert) or O(token), such a registry is reached over HTTPS only.
      - Credentials go only to the scheme, host and port the registry was reached at; a redirect or URL from
        HTTPS to plain HTTP is refused.
      - If not set, the value of the E(IMAGELAYERS_REGISTRY_VALIDATE_CERTS) environment variable is used.
    type: bool
    default: true
  ca_path:
    description:
      - A PEM file with the CA certificate(s) to trust for the registry, for example a private CA.
      - When not set, the system trust store is used, or the bundle named by E(REQUESTS_CA_BUNDLE).
      - If not set, the value of the E(IMAGELAYERS_REGISTRY_CA_PATH) environment variable is used.
    type: path
  client_cert:
    description:
      - A PEM file with the client certificate to present for mutual TLS (a registry that sets C(http.tls.clientcas)).
      - It may also hold the private key; otherwise give O(client_key).
      - If not set, the value of the E(IMAGELAYERS_REGISTRY_CLIENT_CERT) environment variable is used.
    type: path
  client_key:
    description:
      - The unencrypted PEM private key of O(client_cert). Requires O(client_cert).
      - If not set, the value of the E(IMAGELAYERS_REGISTRY_CLIENT_KEY) environment variable is used.
    type: path
  config_path:
    description:
      - A Docker C(config.json) or containers C(auth.json) file to take the registry credentials from, instead of
        the default locations.
      - Used only when neither O(username) nor O(token) is given. Without it, credentials are looked up in
        C($DOCKER_CONFIG/config.json) (else C(~/.docker/config.json)), then in C($REGISTRY_AUTH_FILE) (else
        C($XDG_RUNTIME_DIR/containers/auth.json)); a registry found nowhere is accessed anonymously.
      - In those files C(credHelpers) and C(credsStore) run C(docker-credential-<name> get); C(auths) entries may
        hold C(auth), C(username)/C(password), C(identitytoken) (exchanged with an OAuth2 refresh-token grant) or
        C(registrytoken). See the collection's C(docs/authentication.md).
      - If not set, the value of the E(IMAGELAYERS_REGISTRY_CONFIG_PATH) environment variable is used.
    type: path
  timeout:
    description:
      - Seconds to wait for a connection or for the next bytes of an answer, on every request.
      - Each answer must also arrive in full within O(timeout) seconds plus one second per 64 KiB expected (a
        blob's size, or the most that is read of a manifest, config or error answer), so a server that trickles
        bytes cannot hold a task.
    type: float
    default: 60
  retries:
    description:
      - How many times a request is retried after a connection error or an answer of 408, 429, 500, 502,
        503 or 504, with exponential backoff; C(Retry-After) is honoured up to 30 seconds per wait.
      - V(0) disables retries. At most V(20).
    type: int
    default: 3
notes:
  - Requests go straight to the registry's HTTP API (Registry HTTP API v2 / OCI Distribution); no container
    daemon or CLI is needed.
  - The proxy variables (E(https_proxy), E(http_proxy), E(no_proxy)) are honoured. Credentials in C(~/.netrc)
    are not used; give them with the options above or in a Docker C(config.json) or containers C(auth.json).
  - Credentials are looked up in this order, the first found wins - O(username)/O(password) or O(token), then
    Docker's C(config.json) (C(credHelpers), C(credsStore), C(auths)), then containers C(auth.json), else
    anonymous access.
requirements:
  - requests
'''
