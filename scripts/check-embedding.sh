#!/usr/bin/env bash
# Checks Kiln's embedding interfaces end to end, as CI runs them after `swift test`:
#   1. builds libkiln.so self-contained (scripts/build-libkiln.sh; debug, so after `swift test`
#      this only relinks) and proves `ldd` lists no libswift*;
#   2. compiles Examples/C/generate.c as C99 and Examples/C/header-check.cpp as C++17, both with
#      -Wall -Wextra -Werror -pedantic;
#   3. runs the example on a tiny model on the CPU backend and compares its PNG with the one
#      `kiln generate` writes for the same settings, byte for byte;
#   4. runs the example under valgrind for 5 generations: 0 bytes definitely lost, no memory errors;
#   5. installs bindings/python into a fresh venv (pip, from PyPI: pytest, Pillow, numpy) and runs
#      its pytest suite against that library and the `kiln` CLI.
# Needs: the Swift toolchain, cc and c++, valgrind, python3 with venv (scripts/install-system-packages.sh
# installs them). KILN_EMBEDDING_SKIP_VALGRIND=1 leaves step 4 out (for quick local runs).
set -euo pipefail
cd "$(dirname "$0")/.."
repository="$(pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
started=$SECONDS
step() { echo "== check-embedding [$((SECONDS - started)) s]: $*"; }

step "building libkiln.so (self-contained) and the kiln CLI"
scripts/build-libkiln.sh --self-contained --output "$work/lib"
swift build --product kiln
cli="$(swift build --show-bin-path)/kiln"
ldd "$work/lib/libkiln.so"

step "compiling the C example (C99) and the header check (C++17)"
strict=(-Wall -Wextra -Werror -pedantic -I "$work/lib")
cc -std=c99 "${strict[@]}" Examples/C/generate.c -L "$work/lib" -lkiln -Wl,-rpath,"$work/lib" -o "$work/kiln-example"
c++ -std=c++17 "${strict[@]}" Examples/C/header-check.cpp -L "$work/lib" -lkiln -Wl,-rpath,"$work/lib" -o "$work/header-check"
"$work/header-check" > /dev/null

step "the C example's PNG against kiln generate's"
python3 scripts/tiny-model.py "$work/tiny-sd1"
settings=(--prompt "a lighthouse at dusk" --backend cpu --width 64 --height 64 --steps 2 --seed 42)
"$work/kiln-example" --model "$work/tiny-sd1" "${settings[@]}" --output "$work/example-%d.png"
"$cli" generate --model "$work/tiny-sd1" "${settings[@]}" --quiet --output "$work/cli.png"
cmp "$work/example-0.png" "$work/cli.png"
echo "identical: $(wc -c < "$work/cli.png") bytes"

if [ "${KILN_EMBEDDING_SKIP_VALGRIND:-0}" != 1 ]; then
    step "valgrind: 5 generations on the CPU backend"
    # No suppressions: what Swift's runtime allocates once (type metadata caches, the thread
    # pool's stacks) is reported as "possibly lost" or "still reachable", never "definitely lost",
    # so only definite leaks and memory errors fail the run.
    status=0
    valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=97 --log-file="$work/valgrind.log" \
        "$work/kiln-example" --model "$work/tiny-sd1" --prompt "a red car" --backend cpu --width 32 --height 32 --steps 1 \
        --sampler euler --seed 7 --generations 5 --output "$work/valgrind-%d.png" || status=$?
    grep -E "ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|still reachable" "$work/valgrind.log" | sed 's/^==[0-9]*== *//'
    if [ "$status" != 0 ] || ! grep -q "definitely lost: 0 bytes in 0 blocks" "$work/valgrind.log"; then
        echo "check-embedding: valgrind found leaks or memory errors (exit $status):" >&2
        cat "$work/valgrind.log" >&2
        exit 1
    fi
    [ "$(ls "$work"/valgrind-*.png | wc -l)" = 5 ] || { echo "check-embedding: valgrind run made no 5 images" >&2; exit 1; }
fi

step "the Python package's tests"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check ./bindings/python pytest Pillow numpy
status=0
(cd "$work" && KILN_LIBRARY="$work/lib/libkiln.so" KILN_CLI="$cli" \
    "$work/venv/bin/python" -m pytest -q -p no:cacheprovider "$repository/bindings/python/tests") || status=$?
if [ "$status" = 5 ]; then
    echo "check-embedding: pytest collected no tests from bindings/python/tests" >&2
    exit 1
fi
[ "$status" = 0 ] || exit "$status"
step "all embedding checks passed"
