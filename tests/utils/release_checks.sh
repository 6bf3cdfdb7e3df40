#!/usr/bin/env bash
# Release checks (make release-checks; part of make test):
#   1. ansible-lint --profile production on roles/ and playbooks/ (when they hold files)
#   2. yamllint on the repository's YAML (.yamllint)
#   3. antsibull-docs lint-collection-docs --plugin-docs on the layout copy
#   4. ansible-galaxy collection build into BUILD/release, and the tarball holds no test output,
#      virtualenvs, build state, VCS data or caches
#   5. the tarball installed into an empty collections path: every module, plugin and role renders
#      with ansible-doc, and tests/release/installed.yml runs from it against REGISTRY_HOST
#   6. ansible-builder introspect on the installed tarball finds the execution-environment
#      dependencies of meta/execution-environment.yml (requests, CA certificates)
#
# Environment: REPO_ROOT, COLLECTION_DIR (the layout copy), BUILD, REGISTRY_HOST (a seeded registry),
# NAMESPACE, COLLECTION. The tools come from PATH (the Makefile puts .venv/bin first).
set -uo pipefail

REPO_ROOT="${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
BUILD="${BUILD:-$REPO_ROOT/.build}"
COLLECTION_DIR="${COLLECTION_DIR:-$BUILD/ansible_collections/imagelayers/registry}"
REGISTRY_HOST="${REGISTRY_HOST:-127.0.0.1:5100}"
NAMESPACE="${NAMESPACE:-imagelayers}"
COLLECTION="${COLLECTION:-registry}"
FQCN="$NAMESPACE.$COLLECTION"
RELEASE="$BUILD/release"

failed=()
step() {
    local name="$1" start=$SECONDS rc=0
    shift
    echo "--- release-checks: $name"
    "$@" || rc=$?
    echo "--- release-checks: $name: exit $rc after $((SECONDS - start))s"
    [ "$rc" -eq 0 ] || failed+=("$name")
}

ansible_lint() {
    local targets=()
    for dir in roles playbooks; do
        if [ -n "$(find "$COLLECTION_DIR/$dir" -type f 2>/dev/null | head -n 1)" ]; then
            targets+=("$dir")
        fi
    done
    if [ "${#targets[@]}" -eq 0 ]; then
        echo "no roles/ or playbooks/ content: nothing to lint"
        return 0
    fi
    # In the layout copy, so ansible-lint's caches (.ansible/) never land in the repository.
    (cd "$COLLECTION_DIR" && ANSIBLE_COLLECTIONS_PATH="$BUILD" ansible-lint --offline --profile production \
        --nocolor "${targets[@]}")
}

yaml_lint() {
    (cd "$REPO_ROOT" && yamllint -c .yamllint -f parsable .) | tee "$BUILD/yamllint.log" | grep -v '\[warning\]'
    local errors
    errors=$(grep -c '\[error\]' "$BUILD/yamllint.log")
    echo "yamllint: $errors error(s), $(grep -c '\[warning\]' "$BUILD/yamllint.log") warning(s) (see $BUILD/yamllint.log)"
    [ "$errors" -eq 0 ]
}

docs_lint() {
    (cd "$COLLECTION_DIR" && ANSIBLE_COLLECTIONS_PATH="$BUILD" antsibull-docs lint-collection-docs --plugin-docs .)
}

build_tarball() {
    rm -rf "$RELEASE"
    mkdir -p "$RELEASE"
    ansible-galaxy collection build --force --output-path "$RELEASE" "$REPO_ROOT" || return 1
    local tarball
    tarball=$(ls "$RELEASE"/"$NAMESPACE-$COLLECTION"-*.tar.gz) || return 1
    tar -tzf "$tarball" | sed 's|^\./||' | sort > "$RELEASE/contents.txt"
    echo "$(wc -l < "$RELEASE/contents.txt") entries in $(basename "$tarball") ($(du -k "$tarball" | cut -f1) KiB)"
    local forbidden='^(tests/output|\.venv|venv|\.build|\.git|\.ansible|\.cache|\.tox|\.pytest_cache|\.mypy_cache|bench/results)(/|$)'
    forbidden="$forbidden"'|(^|/)(__pycache__|\.pytest_cache|\.mypy_cache|\.ruff_cache)(/|$)|\.pyc$|\.tar\.gz$|^tests/integration/integration_config\.yml$'
    if grep -E "$forbidden" "$RELEASE/contents.txt"; then
        echo "the tarball holds the files above, which must not ship (galaxy.yml build_ignore)"
        return 1
    fi
    local required=(MANIFEST.json FILES.json README.md COPYING meta/runtime.yml changelogs/changelog.yaml
                    plugins/modules/manifest_info.py plugins/lookup/digest.py plugins/filter/image_ref.py
                    plugins/filter/image_ref.yml plugins/doc_fragments/_connection.py
                    meta/execution-environment.yml meta/requirements.txt meta/bindep.txt)
    local missing=0 path
    for path in "${required[@]}"; do
        grep -qxF "$path" "$RELEASE/contents.txt" || { echo "missing from the tarball: $path"; missing=1; }
    done
    return "$missing"
}

installed_collection() {
    local tarball collections="$RELEASE/collections"
    tarball=$(ls "$RELEASE"/"$NAMESPACE-$COLLECTION"-*.tar.gz) || return 1
    rm -rf "$collections"
    mkdir -p "$collections"
    ansible-galaxy collection install --offline --force -p "$collections" "$tarball" || return 1
    export ANSIBLE_COLLECTIONS_PATH="$collections" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
    local listed
    listed=$(ansible-galaxy collection list "$FQCN" 2>/dev/null | grep -F "$collections" || true)
    [ -n "$listed" ] || { echo "$FQCN is not listed under $collections"; return 1; }
    local rc=0 type names name count=0
    for type in module lookup filter role; do
        names=$(ansible-doc -t "$type" -l "$FQCN" 2>/dev/null | awk '{print $1}' | sed 's/:$//' | grep "^$FQCN\." || true)
        for name in $names; do
            count=$((count + 1))
            if ! ansible-doc -t "$type" "$name" > "$RELEASE/doc-$type-$name.txt" 2>&1 \
                    || grep -qiE '^\[?(ERROR|WARNING)' "$RELEASE/doc-$type-$name.txt"; then
                echo "ansible-doc -t $type $name does not render cleanly:"; cat "$RELEASE/doc-$type-$name.txt"; rc=1
            fi
        done
    done
    echo "ansible-doc rendered $count modules, plugins and roles from the installed tarball"
    [ "$count" -gt 0 ] || rc=1
    cp "$REPO_ROOT/tests/release/installed.yml" "$RELEASE/installed.yml"
    (cd "$RELEASE" && ansible-playbook -i localhost, -c local -e "registry_host=$REGISTRY_HOST" \
        -e "ansible_python_interpreter=$(command -v python)" installed.yml) || rc=1
    return "$rc"
}

# What an execution environment build would install for the collection, read from the installed tarball.
ee_introspect() {
    local collections="$RELEASE/collections" report="$RELEASE/introspect.yml"
    ansible-builder introspect --sanitize "$collections" > "$report" || return 1
    cat "$report"
    grep -qE "^- 'requests[^']*# from collection $FQCN'" "$report" \
        || { echo "ansible-builder introspect does not list requests for $FQCN"; return 1; }
    grep -qE "^- 'ca-certificates[^']*# from collection $FQCN'" "$report" \
        || { echo "ansible-builder introspect does not list ca-certificates for $FQCN"; return 1; }
}

mkdir -p "$BUILD"
step ansible-lint ansible_lint
step yamllint yaml_lint
step antsibull-docs docs_lint
step build build_tarball
if [[ " ${failed[*]} " == *" build "* ]]; then
    echo "--- release-checks: installed-collection skipped (no tarball)"
    failed+=("installed-collection")
else
    step installed-collection installed_collection
    step ee-introspect ee_introspect
fi
if [ "${#failed[@]}" -gt 0 ]; then
    echo "--- release-checks FAILED: ${failed[*]}"
    exit 1
fi
echo "--- release-checks: all passed"
