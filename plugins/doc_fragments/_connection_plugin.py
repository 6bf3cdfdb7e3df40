# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.

from __future__ import annotations


class ModuleDocFragment:

    # The overlay of controller-side plugins (lookups), listed AFTER imagelayers.registry._connection:
    # ansible-core merges the option entries of fragments, so this adds only where each option of
    # that fragment may also come from (keyword arguments are always possible): environment
    # variables, ansible.cfg, Ansible variables. Descriptions, types and defaults stay there.
    # password and token have no ini entry on purpose: no secrets in ansible.cfg.
    DOCUMENTATION = r'''
options:
  username:
    env:
      - name: IMAGELAYERS_REGISTRY_USERNAME
    ini:
      - section: imagelayers_registry
        key: username
    vars:
      - name: imagelayers_registry_username
  password:
    env:
      - name: IMAGELAYERS_REGISTRY_PASSWORD
    vars:
      - name: imagelayers_registry_password
  token:
    env:
      - name: IMAGELAYERS_REGISTRY_TOKEN
    vars:
      - name: imagelayers_registry_token
  validate_certs:
    env:
      - name: IMAGELAYERS_REGISTRY_VALIDATE_CERTS
    ini:
      - section: imagelayers_registry
        key: validate_certs
    vars:
      - name: imagelayers_registry_validate_certs
  ca_path:
    env:
      - name: IMAGELAYERS_REGISTRY_CA_PATH
    ini:
      - section: imagelayers_registry
        key: ca_path
    vars:
      - name: imagelayers_registry_ca_path
  client_cert:
    env:
      - name: IMAGELAYERS_REGISTRY_CLIENT_CERT
    ini:
      - section: imagelayers_registry
        key: client_cert
    vars:
      - name: imagelayers_registry_client_cert
  client_key:
    env:
      - name: IMAGELAYERS_REGISTRY_CLIENT_KEY
    ini:
      - section: imagelayers_registry
        key: client_key
    vars:
      - name: imagelayers_registry_client_key
  config_path:
    env:
      - name: IMAGELAYERS_REGISTRY_CONFIG_PATH
    ini:
      - section: imagelayers_registry
        key: config_path
    vars:
      - name: imagelayers_registry_config_path
  timeout:
    env:
      - name: IMAGELAYERS_REGISTRY_TIMEOUT
    ini:
      - section: imagelayers_registry
        key: timeout
    vars:
      - name: imagelayers_registry_timeout
  retries:
    env:
      - name: IMAGELAYERS_REGISTRY_RETRIES
    ini:
      - section: imagelayers_registry
        key: retries
    vars:
      - name: imagelayers_registry_retries
notes:
  - The plugin runs on the controller. Its connection options may be given as keyword arguments, Ansible
    variables, environment variables or C(ansible.cfg) entries (the C(vars), C(env) and C(ini) entries above);
    they are checked with the same rules as the modules' options. Stored credentials are looked up per registry.
  - Prefer the variables or the environment variables of O(password) and O(token) to keyword arguments, which are
    visible in the task's text.
  - Options set as Ansible variables (the C(vars) entries above) may be templates; those variables, and no others,
    are templated on the controller before use, as ansible-core does for connection variables. A variable that
    fails to template fails the lookup naming it, without the value of O(password) or O(token).
'''
