#!/bin/sh
# Instructions per task, counted by callgrind (deterministic, unlike times on a busy machine).
#
# usage: tests/benchmarks/callgrind.sh [taskpool_bench] [workloads] [implementations]
#   defaults: build/tests/benchmarks/taskpool_bench, "trivial map", "taskpool handwritten bare-qcoro"
#   (for map, taskpool-window is added: the same pattern written by hand on submit()).
# environment: N (items per run, default 100000), WORKERS (maxWorkers, default 8),
#   OUT (directory for callgrind.out.* files, default a temporary one),
#   PROFILE=1 also prints callgrind_annotate's top functions (inclusive and exclusive) per run.
#
# Each run does an uncounted warm-up with 1,000 items, then counts one run of N items between
# CALLGRIND_TOGGLE_COLLECT markers (valgrind --collect-atstart=no): everything from the pool's
# construction to its shutdown, submit to result, with start-up left out. Instructions per task is
# that total divided by N.
set -eu

BENCH=${1:-build/tests/benchmarks/taskpool_bench}
WORKLOADS=${2:-"trivial map"}
IMPLS=${3:-"taskpool handwritten bare-qcoro"}
N=${N:-100000}
WORKERS=${WORKERS:-8}
OUT=${OUT:-$(mktemp -d)}
PROFILE=${PROFILE:-0}

if [ ! -x "$BENCH" ]; then
    echo "no benchmark program at $BENCH (configure with -DTASKPOOL_BUILD_BENCHMARKS=ON and build taskpool_bench)" >&2
    exit 1
fi
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }

printf '%-8s %-16s %8s %8s %16s %14s\n' workload implementation workers N instructions 'instr/task'
for workload in $WORKLOADS; do
    impls=$IMPLS
    [ "$workload" = map ] && impls="$IMPLS taskpool-window"
    for impl in $impls; do
        file="$OUT/callgrind.out.$workload.$impl"
        if ! valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file="$file" \
                "$BENCH" --callgrind "$workload" --impl "$impl" --n "$N" --workers "$WORKERS" \
                >"$file.log" 2>&1; then
            printf '%-8s %-16s (not applicable or failed, see %s)\n' "$workload" "$impl" "$file.log"
            continue
        fi
        total=$(sed -n 's/^\(summary\|totals\): *\([0-9]*\).*/\2/p' "$file" | head -n 1)
        printf '%-8s %-16s %8s %8s %16s %14.0f\n' "$workload" "$impl" "$WORKERS" "$N" "$total" \
            "$(echo "$total / $N" | bc -l)"
        if [ "$PROFILE" = 1 ]; then
            echo "--- $workload/$impl: inclusive"
            callgrind_annotate --inclusive=yes "$file" 2>/dev/null | sed -n '/^Ir/,$p' | head -n 40
            echo "--- $workload/$impl: exclusive"
            callgrind_annotate "$file" 2>/dev/null | sed -n '/^Ir/,$p' | head -n 40
        fi
    done
done
echo "callgrind output: $OUT"
