#!/usr/bin/env bash
# Builds Kiln's C library, libkiln.so, with its header beside it:
#
#     scripts/build-libkiln.sh [--release] [--self-contained] [--strip] [--output DIR]   (default DIR: .build/libkiln)
#
# gives DIR/libkiln.so and DIR/kiln.h. SwiftPM builds the KilnC product (libKilnC.so: it names
# the file after the product, and `kiln` is taken by the executable); this installs it under the
# name programs link with (-lkiln) and Python's ctypes looks for.
#
# --self-contained links the Swift standard library, Foundation and Dispatch in statically, so
# the library needs nothing of the Swift toolchain at run time (`ldd` lists no libswift*: only
# libc, libstdc++, libm, libgcc_s and Kiln's own system libraries, libvulkan and libpng), and
# exports only the functions kiln.h declares. SwiftPM does not link dynamic libraries statically
# (--static-swift-stdlib applies to executables), so this relinks SwiftPM's own objects with its
# own link command plus `-static-stdlib` and a version script; nothing in Package.swift changes.
#
# --strip removes the debug information (SwiftPM builds both configurations with -g).
set -euo pipefail
cd "$(dirname "$0")/.."

configuration=debug
self_contained=0
strip_symbols=0
output=.build/libkiln
while [ $# -gt 0 ]; do
    case "$1" in
        --release) configuration=release ;;
        --self-contained) self_contained=1 ;;
        --strip) strip_symbols=1 ;;
        --output) output="$2"; shift ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "build-libkiln.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
mkdir -p "$output"
output="$(cd "$output" && pwd)"

swift build -c "$configuration" --product KilnC
bin="$(swift build -c "$configuration" --show-bin-path)"
built="$bin/libKilnC.so"

if [ "$self_contained" = 0 ]; then
    cp "$built" "$output/libkiln.so"
else
    # The functions kiln.h declares (lines that start with a return type and name a kiln_ function).
    exports="$(sed -nE 's/^(const )?[a-z_]+ \*?(kiln_[a-z0-9_]+)\(.*/\2/p' include/kiln.h | sort -u)"
    [ -n "$exports" ] || { echo "build-libkiln.sh: found no functions in include/kiln.h" >&2; exit 1; }
    version_script="$output/libkiln.version"
    { echo "{"; echo "  global:"; for name in $exports; do echo "    $name;"; done; echo "  local: *;"; echo "};"; } > "$version_script"

    # SwiftPM's own link command for libKilnC.so (objects, libraries, search paths), captured by
    # relinking verbosely, then run again with a static standard library into libkiln.so.
    rm -f "$built"
    link="$(swift build -c "$configuration" --product KilnC -v 2>&1 | grep -F -- '-emit-library' | grep -F "$built" | tail -n 1)"
    [ -n "$link" ] || { echo "build-libkiln.sh: could not find SwiftPM's link command for $built" >&2; exit 1; }
    link="${link//"$built"/"$output/libkiln.so"}"
    link="${link/ -v / }"
    # Objects compiled for the shared runtime name only Foundation's top modules for linking; the
    # static archives also need what those depend on. `-z defs` proves nothing is left undefined.
    static_libraries=""
    for library in Foundation FoundationEssentials FoundationInternationalization CoreFoundation _FoundationICU \
        _FoundationCShims _FoundationCollections swiftSynchronization; do
        static_libraries="$static_libraries -Xlinker -l$library"
    done
    eval "$link -static-stdlib -Xlinker --start-group $static_libraries -Xlinker --end-group -Xlinker -z -Xlinker defs" \
        "-Xlinker --version-script=\"$version_script\"" 2> >(grep -v "the use of \`mktemp' is dangerous" >&2)
    rm -f "$version_script"

    if ldd "$output/libkiln.so" | grep -q 'libswift'; then
        echo "build-libkiln.sh: $output/libkiln.so still needs the Swift runtime:" >&2
        ldd "$output/libkiln.so" >&2
        exit 1
    fi
    exported="$(nm -D --defined-only "$output/libkiln.so" | awk '$2 == "T" { print $3 }' | sort -u)"
    if [ "$exported" != "$exports" ]; then
        echo "build-libkiln.sh: the exported functions differ from kiln.h's:" >&2
        diff <(echo "$exports") <(echo "$exported") >&2 || true
        exit 1
    fi
fi
[ "$strip_symbols" = 0 ] || strip --strip-unneeded "$output/libkiln.so"
cp include/kiln.h "$output/kiln.h"
# kiln_open(NULL, ...) finds Kiln's default model in this folder beside the library.
rm -rf "$output/Kiln_KilnDefaultModel.resources"
cp -R "$bin/Kiln_KilnDefaultModel.resources" "$output/"
echo "$output/libkiln.so ($(du -h "$output/libkiln.so" | cut -f1), $configuration$([ "$self_contained" = 1 ] && echo ", self-contained"))"
