# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.

from __future__ import annotations


class ModuleDocFragment:

    # The connection options of the controller-side plugins (lookups): the same names and
    # defaults as the modules' fragment imagelayers.registry._connection, set as keyword
    # arguments, Ansible variables, environment variables or ansible.cfg entries.
    # Keep in sync with plugins/plugin_utils/_options.py and plugins/module_utils/_module.py.
    DOCUMENTATION = r'''
options:
  username:
    description:
      - User name for the registry (HTTP Basic, or the Basic credentials sent to a Bearer token service).
      - Requires O(password).
      - The same environment variable as the modules' O(username) option.
    type: str
    env:
      - name: IMAGELAYERS_REGISTRY_USERNAME
    ini:
      - section: imagelayers_registry
        key: username
    vars:
      - name: imagelayers_registry_username
  password:
    description:
      - Password for O(username).
      - Never returned, logged or put in a URL. Prefer the variable or the environment variable to a
        keyword argument, which is visible in the task's text.
      - The variable may be a template, for example V({{ vault_registry_password }}); it is templated before use.
    type: str
    env:
      - name: IMAGELAYERS_REGISTRY_PASSWORD
    vars:
      - name: imagelayers_registry_password
  token:
    description:
      - A registry bearer token, sent in an C(Authorization) header (C(Bearer) scheme) to the registry host.
      - Mutually exclusive with O(username) and O(password).
    type: str
    env:
      - name: IMAGELAYERS_REGISTRY_TOKEN
    vars:
      - name: imagelayers_registry_token
  validate_certs:
    description:
      - Verify the registry's TLS certificate.
      - Registries on a loopback address (an IP literal such as V(127.0.0.1) or V([::1]), or a name whose
        addresses all are loopback ones, such as V(localhost)) may also be reached over plain HTTP, directly
        (never through a proxy), as C(docker) allows; other registries are always reached over HTTPS. With
        O(ca_path), O(client_cert) or O(token), such a registry is reached over HTTPS only.
      - Credentials go only to the scheme, host and port the registry was reached at; a redirect or URL from
        HTTPS to plain HTTP is refused.
    type: bool
    default: true
    env:
      - name: IMAGELAYERS_REGISTRY_VALIDATE_CERTS
    ini:
      - section: imagelayers_registry
        key: validate_certs
    vars:
      - name: imagelayers_registry_validate_certs
  ca_path:
    description:
      - A PEM file with the CA certificate(s) to trust for the registry, for example a private CA.
      - When not set, the system trust store is used, or the bundle named by E(REQUESTS_CA_BUNDLE).
    type: path
    env:
      - name: IMAGELAYERS_REGISTRY_CA_PATH
    ini:
      - section: imagelayers_registry
        key: ca_path
    vars:
      - name: imagelayers_registry_ca_path
  client_cert:
    description:
      - A PEM file with the client certificate to present for mutual TLS (a registry that sets C(http.tls.clientcas)).
      - It may also hold the private key; otherwise give O(client_key).
    type: path
    env:
      - name: IMAGELAYERS_REGISTRY_CLIENT_CERT
    ini:
      - section: imagelayers_registry
        key: client_cert
    vars:
      - name: imagelayers_registry_client_cert
  client_key:
    description:
      - The unencrypted PEM private key of O(client_cert). Requires O(client_cert).
    type: path
    env:
      - name: IMAGELAYERS_REGISTRY_CLIENT_KEY
    ini:
      - section: imagelayers_registry
        key: client_key
    vars:
      - name: imagelayers_registry_client_key
  config_path:
    description:
      - A Docker C(config.json) or containers C(auth.json) file to take the registry credentials from, instead of
        the default locations.
      - Used only when neither O(username) nor O(token) is given. Without it, credentials are looked up in
        C($DOCKER_CONFIG/config.json) (else C(~/.docker/config.json)), then in C($REGISTRY_AUTH_FILE) (else
        C($XDG_RUNTIME_DIR/containers/auth.json)), per registry; a registry found nowhere is accessed anonymously.
    type: path
    env:
      - name: IMAGELAYERS_REGISTRY_CONFIG_PATH
    ini:
      - section: imagelayers_registry
        key: config_path
    vars:
      - name: imagelayers_registry_config_path
  timeout:
    description:
      - Seconds to wait for a connection or for the next bytes of an answer, on every request.
      - Each answer must also arrive in full within O(timeout) seconds plus one second per 64 KiB expected (a
        blob's size, or the most that is read of a manifest, config or error answer), so a server that trickles
        bytes cannot hold a task.
    type: float
    default: 60
    env:
      - name: IMAGELAYERS_REGISTRY_TIMEOUT
    ini:
      - section: imagelayers_registry
        key: timeout
    vars:
      - name: imagelayers_registry_timeout
  retries:
    description:
      - How many times a request is retried after a connection error or an answer of 408, 429, 500, 502,
        503 or 504, with exponential backoff; C(Retry-After) is honoured up to 30 seconds per wait.
      - V(0) disables retries. At most V(20).
    type: int
    default: 3
    env:
      - name: IMAGELAYERS_REGISTRY_RETRIES
    ini:
      - section: imagelayers_registry
        key: retries
    vars:
      - name: imagelayers_registry_retries
notes:
  - The plugin runs on the controller and talks straight to the registry's HTTP API (Registry HTTP API v2 /
    OCI Distribution); no container daemon or CLI is needed.
  - Credentials are looked up in this order, the first found wins - O(username)/O(password) or O(token), then
    Docker's C(config.json) (C(credHelpers), C(credsStore), C(auths)), then containers C(auth.json), else
    anonymous access. Stored credentials are looked up per registry.
  - Options set as Ansible variables (the C(vars) entries above) may be templates; those variables, and no others,
    are templated on the controller before use, as ansible-core does for connection variables. A variable that
    fails to template fails the lookup naming it, without the value of O(password) or O(token).
  - Credentials given as options are sent only to the registry of the references; when they are set, all
    references of one call must name the same registry.
  - The proxy variables (E(https_proxy), E(http_proxy), E(no_proxy)) are honoured. Credentials in C(~/.netrc)
    are not used.
requirements:
  - requests (on the controller)
'''
