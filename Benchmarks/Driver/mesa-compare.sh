#!/usr/bin/env bash
# Compares two lavapipe drivers on Debian 12 with one kiln binary: bookworm's Mesa (the system
# driver) and bookworm-backports' Mesa, unpacked into a private prefix so the system driver stays
# as it is. BENCHMARKS.md, "Vulkan driver on Debian 12", holds the figures this wrote.
#
#   Benchmarks/Driver/mesa-compare.sh fetch                  # unpack backports' Mesa into $MESA_PREFIX
#   Benchmarks/Driver/mesa-compare.sh with 25 kiln devices   # any command under one driver (22 or 25)
#   Benchmarks/Driver/mesa-compare.sh warm-step 3            # SD1.5 U-Net CFG step, 256x256
#   Benchmarks/Driver/mesa-compare.sh warm-generate 3        # the README's generate, caches filled
#   Benchmarks/Driver/mesa-compare.sh cold-generate 2        # the same with every cache empty
#   Benchmarks/Driver/mesa-compare.sh cold-step 1            # the U-Net bench with every cache empty
#   Benchmarks/Driver/mesa-compare.sh verify 1               # `kiln verify`
#   PACKAGE=DIR Benchmarks/Driver/mesa-compare.sh suite 1    # `swift test --skip-build` in DIR, cold
#   Benchmarks/Driver/mesa-compare.sh one suite 25           # one run under one driver
#   Benchmarks/Driver/mesa-compare.sh summary                # medians and ratios of results.tsv
#
# KILN (default .build-release/release/kiln) is the binary; WORK (default /tmp/kiln-mesa-compare)
# holds each driver's caches, outputs and results.tsv. The numeric argument is how many runs per
# driver; runs alternate 22, 25, 22, 25 ... because this machine's speed drifts by tens of percent
# within minutes, so only runs from the same spell can be compared.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
MESA_PREFIX="${MESA_PREFIX:-/work/mesa25}"
WORK="${WORK:-/tmp/kiln-mesa-compare}"
KILN="${KILN:-$root/.build-release/release/kiln}"
PROMPT="a large red circle on a blue background"
lib="$MESA_PREFIX/usr/lib/x86_64-linux-gnu"
icd="$MESA_PREFIX/usr/share/vulkan/icd.d/lvp_icd.private.json"

fetch() {
    # A private apt configuration: the backports index is read into $MESA_PREFIX.apt, never into
    # /etc/apt or /var/lib/apt, so the system's package state does not change.
    local apt="$MESA_PREFIX.apt"
    mkdir -p "$apt"/{lists/partial,cache/archives/partial,debs,sources.list.d,preferences.d} "$MESA_PREFIX"
    cat > "$apt/sources.list" <<'EOF'
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
EOF
    cat > "$apt/apt.conf" <<EOF
Dir::Etc::SourceList "$apt/sources.list";
Dir::Etc::SourceParts "$apt/sources.list.d";
Dir::Etc::PreferencesParts "$apt/preferences.d";
Dir::State::Lists "$apt/lists";
Dir::Cache "$apt/cache";
EOF
    export APT_CONFIG="$apt/apt.conf"
    apt-get update -qq
    local version
    version="$(apt-cache madison mesa-vulkan-drivers | awk '/bookworm-backports/ {print $3; exit}')"
    [ -n "$version" ] || { echo "no mesa-vulkan-drivers in bookworm-backports" >&2; exit 1; }
    # libvulkan_lvp.so needs libdrm2 >= 2.4.121 (bookworm has 2.4.114); its LLVM is bookworm's
    # libLLVM-15, already there. `ldd` on the .so below shows anything else missing.
    (cd "$apt/debs" && apt-get download "mesa-vulkan-drivers=$version" \
        "libdrm2=$(apt-cache madison libdrm2 | awk '/bookworm-backports/ {print $3; exit}')")
    for deb in "$apt"/debs/*.deb; do dpkg -x "$deb" "$MESA_PREFIX"; done
    # The packaged manifest names the library without a path (the loader would find the system's).
    sed "s#\"library_path\": *\"[^\"]*\"#\"library_path\": \"$lib/libvulkan_lvp.so\"#" \
        "$MESA_PREFIX/usr/share/vulkan/icd.d/lvp_icd.json" > "$icd"
    LD_LIBRARY_PATH="$lib" ldd "$lib/libvulkan_lvp.so" | grep -E "not found|libdrm|LLVM" || true
    [ -x "$KILN" ] && with 25 "$KILN" devices | grep -E "driver|Vulkan"
}

# `with D CMD...`: CMD under driver D, its caches in $WORK/cache-D unless the caller set them.
with() (
    driver="$1"; shift
    cache="$WORK/cache-$driver"
    mkdir -p "$cache/kiln" "$cache/mesa"
    export KILN_CACHE_DIR="${KILN_CACHE_DIR:-$cache/kiln}" MESA_SHADER_CACHE_DIR="${MESA_SHADER_CACHE_DIR:-$cache/mesa}"
    case "$driver" in
        22) exec env -u VK_ICD_FILENAMES "$@" ;;
        25) export VK_ICD_FILENAMES="$icd" LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; exec "$@" ;;
        *) echo "driver is 22 or 25, not $driver" >&2; exit 2 ;;
    esac
)

record() { printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%H:%M:%S)" "$1" "$2" "$3" "$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$WORK/results.tsv"; }

# One run of a measurement under one driver; prints nothing but the record.
measure() {
    local kind="$1" driver="$2" run="$3" log="$WORK/logs/$1-$2-$3.log" start end
    mkdir -p "$WORK/logs"
    case "$kind" in
        warm-step|cold-step|first-step)
            local fresh=()
            # cold-*: Mesa's shader cache off and a new Kiln cache, so nothing is reused even within
            # the run; first-* (below): both caches empty but on, as on a fresh machine.
            [ "$kind" = cold-step ] && fresh=(env MESA_SHADER_CACHE_DISABLE=true KILN_CACHE_DIR="$(mktemp -d "$WORK/cold.XXXX")")
            start=$(date +%s.%N)
            with "$driver" "${fresh[@]}" "$KILN" bench --arch sd15 --width 256 --height 256 --batch 2 --stages unet --steps 3 --warmup 1 > "$log" 2>&1
            end=$(date +%s.%N)
            # "unet: median X ms, min Y ms (...), G GFLOP, R GFLOP/s, device memory M, cold start C s"
            local line; line="$(grep '^unet: median' "$log")"
            record "$kind" "$driver" "$(echo "$line" | sed -E 's/.*median ([0-9.]+) ms, min ([0-9.]+) ms.* ([0-9.]+) GFLOP\/s.*cold start ([0-9.]+) s.*/median_ms=\1 min_ms=\2 gflops=\3 cold_start_s=\4/') wall_s=$(echo "$end - $start" | bc)"
            ;;
        warm-generate|cold-generate|first-generate)
            local fresh=()
            [ "$kind" = cold-generate ] && fresh=(env MESA_SHADER_CACHE_DISABLE=true KILN_CACHE_DIR="$(mktemp -d "$WORK/cold.XXXX")")
            start=$(date +%s.%N)
            with "$driver" "${fresh[@]}" "$KILN" generate --prompt "$PROMPT" --seed 1 --output "$WORK/$kind-$driver-$run.png" > "$log" 2>&1
            end=$(date +%s.%N)
            record "$kind" "$driver" "wall_s=$(echo "$end - $start" | bc) sha=$(sha256sum "$WORK/$kind-$driver-$run.png" | cut -c1-12)"
            ;;
        verify)
            # As a new user or a fresh CI machine first runs it: empty caches, Mesa's on.
            local status=0 fresh
            fresh="$(mktemp -d "$WORK/verify.XXXX")"
            start=$(date +%s.%N)
            with "$driver" env KILN_VALIDATE=1 KILN_CACHE_DIR="$fresh/kiln" MESA_SHADER_CACHE_DIR="$fresh/mesa" \
                timeout "${VERIFY_TIMEOUT:-3600}" "$KILN" verify > "$log" 2>&1 || status=$?
            end=$(date +%s.%N)
            record verify "$driver" "exit=$status $(grep -E '^[0-9]+ passed' "$log" | tr '\n' ' ' | tr -s ' ')validation=$(grep -c 'validation messages: 0' "$log") wall_s=$(echo "$end - $start" | bc)"
            ;;
        suite)
            # The tests as CI runs them on a fresh machine: Mesa's cache empty but on (a new
            # machine's cache fills as the run goes, so kernels shared by tests compile once), an
            # empty Kiln cache, the validation layer on. PACKAGE is a checkout with the tests built.
            local status=0 fresh
            fresh="$(mktemp -d "$WORK/suite.XXXX")"
            start=$(date +%s.%N)
            (cd "${PACKAGE:?PACKAGE=checkout with swift build --build-tests done}" &&
                with "$driver" env KILN_VALIDATE=1 KILN_CACHE_DIR="$fresh/kiln" MESA_SHADER_CACHE_DIR="$fresh/mesa" \
                    timeout "${SUITE_TIMEOUT:-5400}" swift test --skip-build) > "$log" 2>&1 || status=$?
            end=$(date +%s.%N)
            record suite "$driver" "exit=$status wall_s=$(echo "$end - $start" | bc) | $(grep -E 'Executed [0-9]+ tests|Test run with' "$log" | tail -n 3 | tr '\n' ' ')"
            ;;
        *) echo "unknown measurement $kind" >&2; exit 2 ;;
    esac
}

alternate() {
    local kind="$1" runs="${2:-3}"
    [ -x "$KILN" ] || { echo "no kiln binary at $KILN (swift build -c release --scratch-path .build-release)" >&2; exit 1; }
    mkdir -p "$WORK"
    if [ "$kind" = warm-step ] || [ "$kind" = warm-generate ]; then
        # Each driver's first run starts from its own empty caches and fills them, so the timed
        # runs after it are all warm; it is recorded too (first-*: empty caches, written on the way).
        for driver in 22 25; do
            [ -e "$WORK/cache-$driver/warmed-$kind" ] && continue
            rm -rf "$WORK/cache-$driver"
            measure "${kind/warm/first}" "$driver" 0
            touch "$WORK/cache-$driver/warmed-$kind"
        done
    fi
    for run in $(seq 1 "$runs"); do
        for driver in 22 25; do measure "$kind" "$driver" "$run"; done
    done
}

summary() {
    # Median per (measurement, driver, field) and the 25/22 ratio of medians.
    awk -F'\t' '{
        n = split($4, fields, " ")
        for (i = 1; i <= n; i++) if (split(fields[i], kv, "=") == 2 && kv[2] ~ /^[0-9.]+$/) {
            key = $2 SUBSEP kv[1]; values[key, $3] = values[key, $3] " " kv[2]; keys[key] = 1
        }
    }
    function median(list,   a, m, i, j, t) {
        m = split(list, a, " ")
        for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    END {
        for (key in keys) {
            split(key, parts, SUBSEP)
            a = values[key, 22]; b = values[key, 25]
            if (a == "" || b == "") continue
            ma = median(a); mb = median(b)
            printf "%-14s %-13s 22: %-10s 25: %-10s 25/22 %.2f   (22:%s | 25:%s)\n", parts[1], parts[2], ma, mb, (ma > 0 ? mb / ma : 0), a, b
        }
    }' "$WORK/results.tsv" | sort
}

command="${1:-}"; shift || true
case "$command" in
    fetch) fetch ;;
    with) with "$@" ;;
    warm-step|warm-generate|cold-generate|cold-step|verify|suite) alternate "$command" "${1:-}" ;;
    # One run of one measurement under one driver, e.g. to run the two test suites side by side
    # in the same spell when there is no time for them one after the other.
    one) mkdir -p "$WORK"; measure "$1" "$2" "${3:-1}" ;;
    summary) summary ;;
    *) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
