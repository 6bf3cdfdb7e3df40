#!/usr/bin/env bash
# Build and push the seed images used by the integration tests.
#
#   seed_images.sh REGISTRY_HOST:PORT
#
# - seed/hello-v2s2:latest   podman build of tests/utils/seed/Containerfile, pushed as Docker schema2
# - seed/hello-oci:latest    the same image pushed as OCI
# - seed/multi-list:latest   synthetic Docker manifest list (tests/utils/synth_image.py)
# - seed/multi-index:latest  synthetic OCI index
# - seed/many-layers:latest  synthetic schema2 image with 30 layers
#
# Writes ${SEED_OUT:-<state>/seed.json}: {"seed/hello-oci:latest": "sha256:...", ...}
# (digest = sha256 of the raw manifest as skopeo reads it back) and
# <state>/seed-details.json (synth_image.py output: children per platform,
# config and layer digests). Prints seed.json to stdout.
#
# No base image can be pulled, so the image is built FROM scratch around the
# statically linked busybox of Debian's busybox-static package (BUSYBOX=path
# overrides). Builds use --timestamp 0, so seeding twice gives the same digests.
# Environment: IMAGELAYERS_TEST_STATE, PYTHON, PODMAN_STORAGE_DRIVER (vfs),
# PODMAN_ISOLATION (chroot), SEED_BIG_SIZE (e.g. 64M: also push seed/big:latest,
# one random layer of that size; not seeded by default).
set -euo pipefail

UTILS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$UTILS/../.." && pwd)"
STATE="${IMAGELAYERS_TEST_STATE:-$REPO_ROOT/.build/state}"
PYTHON="${PYTHON:-python3}"
BUSYBOX="${BUSYBOX:-/bin/busybox}"
SEED_OUT="${SEED_OUT:-$STATE/seed.json}"

[[ $# -eq 1 ]] || { sed -n '2,4p' "$0" >&2; exit 2; }
REGISTRY="$1"

die() { echo "seed_images.sh: $*" >&2; exit 1; }

for tool in podman skopeo; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
[[ -x "$BUSYBOX" ]] || die "$BUSYBOX not found (apt-get install busybox-static)"
if LC_ALL=C ldd "$BUSYBOX" 2>&1 | grep -q '=>'; then
    die "$BUSYBOX is dynamically linked; install busybox-static (or set BUSYBOX=)"
fi

mkdir -p "$STATE"
PODMAN=(podman
    --root "$STATE/podman/root"
    --runroot "$STATE/podman/run"
    --storage-driver "${PODMAN_STORAGE_DRIVER:-vfs}"
    --cgroup-manager cgroupfs
    --events-backend file)

# Build context: the Containerfile plus a copy of busybox.
ctx="$STATE/seed-context"
rm -rf "$ctx"
mkdir -p "$ctx"
cp "$UTILS/seed/Containerfile" "$ctx/Containerfile"
cp "$BUSYBOX" "$ctx/busybox"
chmod 0755 "$ctx/busybox"
touch -d @0 "$ctx/busybox" "$ctx/Containerfile"

local_image=localhost/imagelayers-seed/hello:latest
echo "seed_images.sh: building $local_image" >&2
"${PODMAN[@]}" build \
    --isolation "${PODMAN_ISOLATION:-chroot}" \
    --timestamp 0 \
    --identity-label=false \
    --build-arg SUFFIX=seed \
    -f "$ctx/Containerfile" \
    -t "$local_image" \
    "$ctx" >&2

echo "seed_images.sh: pushing to $REGISTRY" >&2
"${PODMAN[@]}" push --tls-verify=false --format v2s2 "$local_image" "docker://$REGISTRY/seed/hello-v2s2:latest" >&2
"${PODMAN[@]}" push --tls-verify=false --format oci "$local_image" "docker://$REGISTRY/seed/hello-oci:latest" >&2

images=(seed/hello-v2s2:latest seed/hello-oci:latest seed/multi-list:latest seed/multi-index:latest seed/many-layers:latest)
synth_args=(--registry "$REGISTRY" --seed)
if [[ -n "${SEED_BIG_SIZE:-}" ]]; then
    synth_args+=(--with-big --big-size "$SEED_BIG_SIZE")
    images+=(seed/big:latest)
fi
"$PYTHON" "$UTILS/synth_image.py" "${synth_args[@]}" > "$STATE/seed-details.json"

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
for image in "${images[@]}"; do
    digest="sha256:$(skopeo inspect --tls-verify=false --raw "docker://$REGISTRY/$image" | sha256sum | cut -d' ' -f1)"
    printf '%s %s\n' "$image" "$digest" >> "$tmp"
done

"$PYTHON" - "$tmp" "$STATE/seed-details.json" "$SEED_OUT" <<'PYEOF'
import json
import sys

pairs_path, details_path, out_path = sys.argv[1:4]
digests = {}
with open(pairs_path) as f:
    for line in f:
        image, digest = line.split()
        digests[image] = digest
with open(details_path) as f:
    details = json.load(f)
for image, result in details.items():
    if digests.get(image) != result['digest']:
        sys.exit('seed_images.sh: %s: registry returned %s, synth_image.py pushed %s'
                 % (image, digests.get(image), result['digest']))
with open(out_path, 'w') as f:
    json.dump(digests, f, indent=2, sort_keys=True)
    f.write('\n')
print(json.dumps(digests, indent=2, sort_keys=True))
PYEOF
