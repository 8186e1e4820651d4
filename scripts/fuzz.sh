#!/usr/bin/env bash
# Coverage-guided fuzzing of Kiln's parsers with libFuzzer (the Fuzz/ package, one executable whose
# target KILN_FUZZ_TARGET chooses). Builds Kiln and Fuzz/ with -sanitize=fuzzer,address, then:
#
#   scripts/fuzz.sh build                       the instrumented build only
#   scripts/fuzz.sh list                        the targets
#   scripts/fuzz.sh smoke [TARGET...]           each target KILN_FUZZ_SMOKE_SECONDS (30) over its corpus,
#                                               KILN_FUZZ_JOBS (cores) at a time; exits non-zero on any
#                                               finding (what CI runs)
#   scripts/fuzz.sh campaign [TARGET|all] [-runs=N] [-max_total_time=S] [LIBFUZZER FLAGS...]
#                                               the long run, 1,000,000 executions or 1800 s per target
#                                               unless given; writes each target's figures (executions,
#                                               exec/s, cov, ft, corpus, slowest input, findings)
#   scripts/fuzz.sh reproduce TARGET FILE...    runs the target on files (a crash-* artifact)
#
# A finding is a crash or trap, a sanitizer report, an input slower than 1 s (-timeout=1), or
# memory past -rss_limit_mb=2048 / one allocation past -malloc_limit_mb=1024. A timeout counts
# only if the input is slow again when rerun: on a loaded machine a whole process can stall.
# Findings and logs go to $KILN_FUZZ_OUT (default /tmp/kiln-fuzz); Fuzz/Corpus/ is only read.
set -euo pipefail
# The whole script is one group, read before it runs: editing the file during a campaign is safe.
{
cd "$(dirname "$0")/.."

out="${KILN_FUZZ_OUT:-/tmp/kiln-fuzz}"
smoke_seconds="${KILN_FUZZ_SMOKE_SECONDS:-30}"
# Smoke targets run side by side, one per core, so that CI's smoke takes minutes, not a quarter hour.
smoke_jobs="${KILN_FUZZ_JOBS:-$(nproc)}"
scratch="Fuzz/.build-fuzz"
limits=(-timeout=1 -rss_limit_mb=2048 -malloc_limit_mb=1024)
# Leaks are not findings: Swift's runtime keeps metadata caches for the life of the process. A
# smaller quarantine than ASan's 256 MB keeps freed-memory recycling from stalling an input.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1:quarantine_size_mb=32}"
# Swift's own crash backtracer reads memory that ASan then reports; libFuzzer prints the stack.
export SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}"

# A debug build: the quickest to compile, and internal parsers stay reachable (-enable-testing).
build() {
    # KILN_FUZZ_BINARY: a kiln-fuzz already built (a campaign that must not rebuild mid-way).
    if [ -n "${KILN_FUZZ_BINARY:-}" ]; then
        binary="$KILN_FUZZ_BINARY"
        return
    fi
    local options=(--package-path Fuzz --scratch-path "$scratch" --sanitize=address -Xswiftc -sanitize=fuzzer)
    swift build "${options[@]}" --product kiln-fuzz >&2
    binary="$(swift build "${options[@]}" --show-bin-path)/kiln-fuzz"
}

targets() {
    # The list is the fuzzer's own: an unknown target makes it print the valid names.
    KILN_FUZZ_TARGET= "$binary" -runs=0 2>&1 | sed -n 's/.*one of: \(.*\) (got.*/\1/p' | tr -d ',' | tr ' ' '\n' | grep .
}

# A libFuzzer log's last status line ("#N DONE cov: C ft: F corp: K/S ...") and final stats.
last_status() { grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$1" | tail -1 || true; }
executed_units() { sed -n 's/^stat::number_of_executed_units: *//p' "$1" | tail -1; }
field() { sed -n "s/.* $1: \\([0-9]*[0-9/]*[a-zA-Z]*\\).*/\\1/p" <<<"$2"; }

figures() {
    local log="$1" status
    status="$(last_status "$log")"
    echo "executions=$(executed_units "$log") exec/s=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)" \
        "cov=$(field cov "$status") ft=$(field ft "$status") corpus=$(field corp "$status")"
}

# What libFuzzer left in an artifacts folder; a timeout is kept only if rerunning the input (three
# times, alone) times out again, otherwise it is renamed *.unconfirmed.
findings_of() {
    local target="$1" folder="$2" artifact
    find "$folder" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' -o -name 'slow-unit-*' \) \
        ! -name '*.unconfirmed' | sort | while read -r artifact; do
        case "$(basename "$artifact")" in
        timeout-* | slow-unit-*)
            mkdir -p "$folder/reruns"
            if KILN_FUZZ_TARGET="$target" "$binary" "${limits[@]}" -runs=3 "$artifact" >"$folder/reruns/$(basename "$artifact").log" 2>&1; then
                mv "$artifact" "$artifact.unconfirmed"
                continue
            fi
            ;;
        esac
        echo "$artifact"
    done
}

# Runs libFuzzer once for one target into $work (corpus kept between runs); the rest are flags.
run_libfuzzer() {
    local target="$1" work="$2" log="$3"
    shift 3
    mkdir -p "$work/corpus" "$work/artifacts"
    local dictionary=()
    [ -f "Fuzz/Dictionaries/$target.dict" ] && dictionary=(-dict="Fuzz/Dictionaries/$target.dict")
    local status=0
    KILN_FUZZ_TARGET="$target" "$binary" "${limits[@]}" "${dictionary[@]}" -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/" "$@" "$work/corpus" "Fuzz/Corpus/$target" >"$log" 2>&1 || status=$?
    return "$status"
}

# The slowest input of a corpus, in milliseconds: libFuzzer times each file it is given.
slowest_input() {
    local target="$1" folder="$2"
    find "$folder" -type f -print0 | xargs -0 -r -n 500 env KILN_FUZZ_TARGET="$target" "$binary" "${limits[@]}" 2>&1 \
        | sed -n 's/^Executed \(.*\) in \([0-9]*\) ms$/\2 \1/p' | sort -n | tail -1
}

# One smoke target; its verdict goes to $work/status, since it runs in the background.
smoke_one() {
    local target="$1" work="$out/smoke/$1" status=0
    rm -rf "$work"
    run_libfuzzer "$target" "$work" "$work/log" -max_total_time="$smoke_seconds" || status=$?
    local found
    found="$(findings_of "$target" "$work/artifacts")"
    # An unconfirmed timeout ended the run early but is no finding.
    if [ -z "$found" ] && { [ "$status" -eq 0 ] || ls "$work/artifacts" | grep -q unconfirmed; }; then
        echo ok >"$work/status"
    else
        echo "exit $status" >"$work/status"
    fi
}

# One campaign target: libFuzzer until the runs or the time are spent or a confirmed finding;
# after an unconfirmed timeout it resumes on the corpus so far, at most five times.
campaign_one() {
    local target="$1" runs="$2" seconds="$3"
    shift 3
    local work="$out/campaign/$target" started=$SECONDS total=0 attempt=0 status found
    rm -rf "$work"
    while :; do
        status=0
        run_libfuzzer "$target" "$work" "$work/log.$attempt" "$@" -runs=$((runs - total)) \
            -max_total_time=$((seconds - (SECONDS - started))) || status=$?
        local units
        units="$(executed_units "$work/log.$attempt")"
        total=$((total + ${units:-0}))
        found="$(findings_of "$target" "$work/artifacts" | tr '\n' ' ')"
        [ "$status" -eq 0 ] || [ -n "$found" ] || [ "$attempt" -ge 5 ] || [ "$total" -ge "$runs" ] \
            || [ $((SECONDS - started)) -ge "$seconds" ] && break
        attempt=$((attempt + 1))
    done
    local elapsed=$((SECONDS - started)) status_line slowest
    status_line="$(last_status "$work/log.$attempt")"
    slowest="$(slowest_input "$target" "$work/corpus")"
    local summary="$target executions=$total seconds=$elapsed exec/s=$((total / (elapsed > 0 ? elapsed : 1)))"
    summary+=" cov=$(field cov "$status_line") ft=$(field ft "$status_line") corpus=$(field corp "$status_line")"
    summary+=" slowest_ms=${slowest%% *} resumed=$attempt unconfirmed_timeouts=$(ls "$work/artifacts" | grep -c unconfirmed || true)"
    summary+=" findings=${found:-none} date=$(date -u +%Y-%m-%dT%H:%MZ)"
    echo "$summary" | tee "$work/summary"
    echo "$summary" >>"$out/campaign/summaries"
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
    started=$SECONDS
    running=0
    for target in "${selected[@]}"; do
        if [ "$running" -ge "$smoke_jobs" ]; then
            wait -n || true
            running=$((running - 1))
        fi
        smoke_one "$target" &
        running=$((running + 1))
    done
    wait || true
    failed=()
    for target in "${selected[@]}"; do
        work="$out/smoke/$target"
        if [ "$(cat "$work/status" 2>/dev/null)" = ok ]; then
            echo "ok   $target $(figures "$work/log")"
        else
            failed+=("$target")
            echo "FAIL $target $(figures "$work/log")" >&2
            tail -40 "$work/log" >&2
            ls "$work/artifacts" >&2
        fi
    done
    echo "smoke: ${#selected[@]} targets of ${smoke_seconds} s, $smoke_jobs at a time, $((SECONDS - started)) s; logs in $out/smoke"
    if [ ${#failed[@]} -gt 0 ]; then
        echo "fuzz smoke found problems in: ${failed[*]} (reproduce: scripts/fuzz.sh reproduce TARGET FILE)" >&2
        exit 1
    fi
    ;;
campaign)
    build
    target="${1:-all}"
    [ $# -gt 0 ] && shift
    runs=1000000
    seconds=1800
    flags=()
    for flag in "$@"; do
        case "$flag" in
        -runs=*) runs="${flag#-runs=}" ;;
        -max_total_time=*) seconds="${flag#-max_total_time=}" ;;
        *) flags+=("$flag") ;;
        esac
    done
    if [ "$target" = all ]; then mapfile -t selected < <(targets); else selected=("$target"); fi
    mkdir -p "$out/campaign"
    for target in "${selected[@]}"; do
        campaign_one "$target" "$runs" "$seconds" "${flags[@]}"
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
exit
}
