"""A docker credential helper for the tests: answers `get` from the JSON map in $IMAGELAYERS_TEST_HELPER_STORE.

The map is {server URL: {"Username": ..., "Secret": ...}}; every call is logged (no secret) to
$IMAGELAYERS_TEST_HELPER_STORE.log.
"""
import json
import os
import sys

store = os.environ.get('IMAGELAYERS_TEST_HELPER_STORE', os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                     'helper_store.json'))
action = sys.argv[1] if len(sys.argv) > 1 else ''
url = sys.stdin.read().strip()
with open(store + '.log', 'a') as log:
    log.write(json.dumps({'action': action, 'url': url}) + '\n')
if action != 'get':
    sys.stderr.write('only get is supported\n')
    sys.exit(2)
with open(store) as handle:
    answers = json.load(handle)
if url not in answers:
    print('credentials not found in native keychain')
    sys.exit(1)
answer = dict(answers[url])
answer['ServerURL'] = url
print(json.dumps(answer))
