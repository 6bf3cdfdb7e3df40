# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import hashlib

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._digest import (
    compute_digest,
    validate_digest,
    verify_bytes,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import IntegrityError, InvalidInputError


def test_sha256_and_sha512_verify():
    data = b'hello registry'
    for algorithm in ('sha256', 'sha512'):
        digest = '%s:%s' % (algorithm, hashlib.new(algorithm, data).hexdigest())
        assert compute_digest(data, algorithm) == digest
        assert verify_bytes(data, digest) == digest


def test_verify_mismatch_reports_both_digests():
    with pytest.raises(IntegrityError) as excinfo:
        verify_bytes(b'other', compute_digest(b'data'), what='The blob')
    assert excinfo.value.details['expected_digest'] == compute_digest(b'data')
    assert excinfo.value.details['actual_digest'] == compute_digest(b'other')
    assert 'The blob does not match' in excinfo.value.msg


@pytest.mark.parametrize('value', [
    'sha256:' + 'a' * 63, 'sha256:' + 'a' * 65, 'sha256:' + 'g' * 64, 'SHA256:' + 'a' * 64,
    'sha512:' + 'a' * 64, 'sha1:' + 'a' * 40, 'sha256', ':' + 'a' * 64, '', None, 42,
    # A trailing line break (a YAML block scalar, a file read without strip) is not part of a digest.
    'sha256:' + 'a' * 64 + '\n', 'sha256:' + 'a' * 63 + '\n', 'sha512:' + 'b' * 127 + '\n', 'sha256\n:' + 'a' * 64,
])
def test_invalid(value):
    with pytest.raises(InvalidInputError):
        validate_digest(value)


def test_valid_returns_parts():
    assert validate_digest('sha512:' + 'c' * 128) == ('sha512', 'c' * 128)


def test_a_digest_with_a_trailing_line_break_is_refused_with_a_clear_message():
    with pytest.raises(InvalidInputError) as excinfo:
        validate_digest('sha256:' + 'a' * 63 + '\n', what='expected_digest')
    assert "Invalid expected_digest 'sha256:%s\\n'" % ('a' * 63) in excinfo.value.msg
