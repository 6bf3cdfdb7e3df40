# -*- coding: utf-8 -*-
# Offline stand-in for the get-pip.py script that ansible-test downloads to
# bootstrap pip into the virtual environments it creates (sanity tests, units
# with --venv, ...). The download host is not reachable from the test
# machines, so `make venv` copies this file to
# ~/.ansible/test/cache/get_pip_<pip version with dots as underscores>.py,
# where ansible-test looks first.
#
# ansible-test runs it as `python quiet_pip.py [pip options] pip==X ...
# --no-setuptools --no-wheel`: bootstrap the bundled pip with ensurepip, then
# let that pip install the requested versions from the package index.
from __future__ import annotations

import subprocess
import sys

DROP = ('--no-setuptools', '--no-wheel')


def run(command):
    """Run quietly; show the output only when the command fails."""
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if result.returncode:
        sys.stdout.write(result.stdout.decode('utf-8', 'replace'))
        sys.exit(result.returncode)


def main():
    args = [arg for arg in sys.argv[1:] if arg not in DROP]
    run([sys.executable, '-m', 'ensurepip', '--upgrade', '--default-pip'])
    if any(not arg.startswith('-') for arg in args):
        run([sys.executable, '-m', 'pip', 'install'] + args)


if __name__ == '__main__':
    main()
