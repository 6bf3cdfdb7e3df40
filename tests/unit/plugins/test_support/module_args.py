# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running a module's ``main()`` in a unit test, with its arguments, on every supported ansible-core.

ansible-core 2.19 added ``ansible.module_utils.testing.patch_module_args``; older releases read the
arguments from ``ansible.module_utils.basic._ANSIBLE_ARGS`` (JSON bytes under ``ANSIBLE_MODULE_ARGS``).
"""

from __future__ import annotations

import contextlib
import io
import json

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19
    from ansible.module_utils import basic
    from ansible.module_utils.common.text.converters import to_bytes

    @contextlib.contextmanager
    def patch_module_args(args=None):
        """Make ``args`` the arguments the next AnsibleModule reads, as ansible-core 2.19's helper does."""
        arguments = dict(args or {})
        arguments.setdefault('_ansible_remote_tmp', '/tmp')
        arguments.setdefault('_ansible_keep_remote_files', False)
        previous = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': arguments}))
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = previous


def run_module(module, args):
    """Run ``module.main()`` with ``args``: ``(exit code, the JSON it printed)``, as Ansible would read them."""
    output = io.StringIO()
    with patch_module_args(args), contextlib.redirect_stdout(output):
        try:
            module.main()
        except SystemExit as exit_:
            return exit_.code, json.loads(output.getvalue())
    raise AssertionError('%s.main() returned without exit_json or fail_json' % module.__name__)


__all__ = ['patch_module_args', 'run_module']
