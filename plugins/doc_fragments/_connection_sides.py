# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.

from __future__ import annotations


class ModuleDocFragment:

    # The per-side connection options of a module that talks to a source and a destination registry
    # (copy): exactly the options side_argument_spec('src_') and side_argument_spec('dest_') in
    # plugins/module_utils/_argspec.py build. Listed with imagelayers.registry._connection.
    DOCUMENTATION = r'''
options:
  src_username:
    description:
      - Username for the source registry. Defaults to O(username).
    type: str
  src_password:
    description:
      - Password for the source registry. Defaults to O(password).
    type: str
  src_token:
    description:
      - Bearer token for the source registry. Defaults to O(token).
    type: str
  dest_username:
    description:
      - Username for the destination registry. Defaults to O(username).
    type: str
  dest_password:
    description:
      - Password for the destination registry. Defaults to O(password).
    type: str
  dest_token:
    description:
      - Bearer token for the destination registry. Defaults to O(token).
    type: str
  src_validate_certs:
    description:
      - Verify the source registry's TLS certificate. Defaults to O(validate_certs).
    type: bool
  src_ca_path:
    description:
      - CA certificate(s) to trust for the source registry. Defaults to O(ca_path).
    type: path
  src_client_cert:
    description:
      - Client certificate for mutual TLS with the source registry.
      - O(src_client_cert) and O(src_client_key) replace O(client_cert) and O(client_key) together, as a pair.
    type: path
  src_client_key:
    description:
      - Private key of O(src_client_cert). Requires O(src_client_cert).
    type: path
  dest_validate_certs:
    description:
      - Verify the destination registry's TLS certificate. Defaults to O(validate_certs).
    type: bool
  dest_ca_path:
    description:
      - CA certificate(s) to trust for the destination registry. Defaults to O(ca_path).
    type: path
  dest_client_cert:
    description:
      - Client certificate for mutual TLS with the destination registry.
      - O(dest_client_cert) and O(dest_client_key) replace O(client_cert) and O(client_key) together, as a pair.
    type: path
  dest_client_key:
    description:
      - Private key of O(dest_client_cert). Requires O(dest_client_cert).
    type: path
notes:
  - The shared connection options (and their environment variables) apply to both sides; the C(src_*) and
    C(dest_*) options replace them for one side. Credentials go together (any of O(src_username), O(src_password),
    O(src_token) replaces all three shared ones for the source), so do the client certificate and its key;
    O(src_validate_certs) and O(src_ca_path) each replace one shared option. O(timeout), O(retries) and
    O(config_path) always apply to both sides.
'''
