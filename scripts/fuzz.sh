#!/usr/bin/env bash
# Coverage-guided fuzzing of Kiln's parsers with libFuzzer (the Fuzz/ package, one executable whose
# target KILN_FUZZ_TARGET chooses). Builds Kiln and Fuzz/ with -sanitize=fuzzer,address, then:
#
#   scripts/fuzz.sh build                       the instrumented build only
#   scripts/fuzz.sh list                        the targets
#   scripts/fuzz.sh smoke [TARGET...]           each target KILN_FUZZ_SMOKE_SECONDS (30) over its corpus;
#                                               exits non-zero on any finding (what CI runs)
#   scripts/fuzz.sh campaign [TARGET|all] [LIBFUZZER FLAGS...]
#                                               the long run: -runs=1000000 and -max_total_time=1800
#                                               unless given; writes each target's figures (executions,
#                                               exec/s, cov, ft, corpus size, slowest input, findings)
#   scripts/fuzz.sh reproduce TARGET FILE...    runs the target on files (a crash-* artifact)
#
# A finding is a crash or trap, a sanitizer report, an input slower than 1 s (-timeout=1), or
# memory past -rss_limit_mb=2048 / one allocation past -malloc_limit_mb=1024. Findings and logs go
# to $KILN_FUZZ_OUT (default /tmp/kiln-fuzz); the committed seeds in Fuzz/Corpus/ are only read.
set -euo pipefail
cd "$(dirname "$0")/.."

out="${KILN_FUZZ_OUT:-/tmp/kiln-fuzz}"
smoke_seconds="${KILN_FUZZ_SMOKE_SECONDS:-30}"
scratch="Fuzz/.build-fuzz"
limits=(-timeout=1 -rss_limit_mb=2048 -malloc_limit_mb=1024)
# Leaks are not findings: Swift's runtime keeps metadata caches for the life of the process.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}"
# Swift's own crash backtracer reads memory that ASan then reports; libFuzzer prints the stack.
export SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}"

build() {
    swift build --package-path Fuzz --scratch-path "$scratch" --product kiln-fuzz \
        --sanitize=address -Xswiftc -sanitize=fuzzer >&2
    binary="$(swift build --package-path Fuzz --scratch-path "$scratch" --sanitize=address --show-bin-path)/kiln-fuzz"
}

targets() {
    # The list is the fuzzer's own: an unknown target makes it print the valid names.
    KILN_FUZZ_TARGET= "$binary" -runs=0 2>&1 | sed -n 's/.*one of: \(.*\) (got.*/\1/p' | tr -d ',' | tr ' ' '\n' | grep .
}

# The figures libFuzzer prints last: "#N DONE cov: C ft: F corp: K/S exec/s: E".
figures() {
    local log="$1"
    local done_line
    done_line="$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -1 || true)"
    local runs cov ft corpus speed
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")"
    ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")"
    corpus="$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$done_line")"
    echo "executions=${runs:-?} exec/s=${speed:-?} cov=${cov:-?} ft=${ft:-?} corpus=${corpus:-?}"
}

findings_of() {
    local folder="$1"
    find "$folder" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' -o -name 'slow-unit-*' \) | sort
}

# Runs libFuzzer for one target; $1 target, $2 work folder, the rest libFuzzer flags.
fuzz_target() {
    local target="$1" work="$2"
    shift 2
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/artifacts"
    local dictionary=()
    [ -f "Fuzz/Dictionaries/$target.dict" ] && dictionary=(-dict="Fuzz/Dictionaries/$target.dict")
    local status=0
    KILN_FUZZ_TARGET="$target" "$binary" "${limits[@]}" "${dictionary[@]}" -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/" "$@" "$work/corpus" "Fuzz/Corpus/$target" >"$work/log" 2>&1 || status=$?
    return "$status"
}

# The slowest input of a corpus, in milliseconds: libFuzzer times each file it is given.
slowest_input() {
    local target="$1" folder="$2"
    find "$folder" -type f -print0 | xargs -0 -r -n 500 env KILN_FUZZ_TARGET="$target" "$binary" "${limits[@]}" 2>&1 \
        | sed -n 's/^Executed \(.*\) in \([0-9]*\) ms$/\2 \1/p' | sort -n | tail -1
}

command="${1:-smoke}"
[ $# -gt 0 ] && shift
case "$command" in
build)
    build
    echo "$binary"
    ;;
list)
    build
    targets
    ;;
smoke)
    build
    selected=("$@")
    [ ${#selected[@]} -eq 0 ] && mapfile -t selected < <(targets)
    failed=()
    started=$SECONDS
    for target in "${selected[@]}"; do
        work="$out/smoke/$target"
        status=0
        fuzz_target "$target" "$work" -max_total_time="$smoke_seconds" || status=$?
        found="$(findings_of "$work/artifacts")"
        if [ "$status" -ne 0 ] || [ -n "$found" ]; then
            failed+=("$target")
            echo "FAIL $target (exit $status) $(figures "$work/log")" >&2
            tail -40 "$work/log" >&2
            [ -n "$found" ] && echo "findings: $found" >&2
        else
            echo "ok   $target $(figures "$work/log")"
        fi
    done
    echo "smoke: ${#selected[@]} targets, $((SECONDS - started)) s of fuzzing, logs in $out/smoke"
    if [ ${#failed[@]} -gt 0 ]; then
        echo "fuzz smoke found problems in: ${failed[*]} (reproduce: scripts/fuzz.sh reproduce TARGET FILE)" >&2
        exit 1
    fi
    ;;
campaign)
    build
    target="${1:-all}"
    [ $# -gt 0 ] && shift
    flags=("$@")
    printf '%s\n' "${flags[@]}" | grep -q -- '^-runs=' || flags+=(-runs=1000000)
    printf '%s\n' "${flags[@]}" | grep -q -- '^-max_total_time=' || flags+=(-max_total_time=1800)
    if [ "$target" = all ]; then mapfile -t selected < <(targets); else selected=("$target"); fi
    mkdir -p "$out/campaign"
    for target in "${selected[@]}"; do
        work="$out/campaign/$target"
        started=$SECONDS
        status=0
        fuzz_target "$target" "$work" "${flags[@]}" || status=$?
        found="$(findings_of "$work/artifacts" | tr '\n' ' ')"
        slowest="$(slowest_input "$target" "$work/corpus")"
        summary="$target $(figures "$work/log") seconds=$((SECONDS - started)) exit=$status slowest_ms=${slowest%% *} findings=${found:-none} date=$(date -u +%Y-%m-%dT%H:%MZ)"
        echo "$summary" | tee "$work/summary"
        echo "$summary" >>"$out/campaign/summaries"
    done
    ;;
reproduce)
    build
    target="$1"
    shift
    KILN_FUZZ_TARGET="$target" "$binary" "${limits[@]}" "$@"
    ;;
*)
    sed -n '2,20p' "$0" >&2
    exit 2
    ;;
esac
