#!/bin/sh
# Renders throughput versus maxWorkers from the benchmark's CSV as a PNG (gnuplot).
#
# usage: tests/benchmarks/plot.sh [results.csv] [docs/benchmark.png]
# The CSV comes from: taskpool_bench --csv results.csv
# One panel per workload (trivial, hop, map, pending), at the largest N the CSV holds for it; the unbounded
# bare-QCoro baseline is drawn as a flat dashed line.
set -eu

CSV=${1:-benchmark.csv}
PNG=${2:-docs/benchmark.png}
command -v gnuplot >/dev/null || { echo "gnuplot is not installed (Debian: apt-get install gnuplot-nox)" >&2; exit 1; }
[ -r "$CSV" ] || { echo "no CSV at $CSV (run taskpool_bench --csv $CSV)" >&2; exit 1; }

DATA=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$DATA"' EXIT

# One file per workload and implementation: "maxWorkers tasks/s", at the workload's largest N.
awk -F, -v dir="$DATA" '
    NR == 1 { next }
    { rows[NR] = $0; if ($3 + 0 > maxn[$1]) maxn[$1] = $3 + 0
      if ($4 + 0 > 0) { if (!($1 in lo) || $4 + 0 < lo[$1]) lo[$1] = $4 + 0; if ($4 + 0 > hi[$1]) hi[$1] = $4 + 0 } }
    END {
        for (i in rows) {
            split(rows[i], f, ",")
            if (f[3] + 0 != maxn[f[1]]) continue
            file = dir "/" f[1] "." f[2] ".dat"
            if (f[4] + 0 == 0) { print lo[f[1]], f[7] > file; print hi[f[1]], f[7] > file }
            else print f[4], f[7] > file
        }
        for (w in maxn) print maxn[w] > (dir "/" w ".n")
    }' "$CSV"
for f in "$DATA"/*.dat; do sort -n -o "$f" "$f"; done

panel() { # workload title
    [ -f "$DATA/$1.n" ] || return 0
    n=$(cat "$DATA/$1.n")
    plots=""
    for spec in "taskpool|TaskPoolExecutor|1|1" "taskpool-window|TaskPool, submit window by hand|1|6" \
                "handwritten|hand-written minimal pool|1|2" "qtconcurrent|QtConcurrent::run|1|4" \
                "bare-qcoro|bare QCoro (unbounded)|2|3"; do
        impl=${spec%%|*}; rest=${spec#*|}; label=${rest%%|*}; rest=${rest#*|}; dash=${rest%%|*}; color=${rest#*|}
        file="$DATA/$1.$impl.dat"
        [ -f "$file" ] || continue
        plots="$plots${plots:+, }'$file' using 1:2 with linespoints dt $dash lc $color lw 2 pt 7 title '$label'"
    done
    echo "set title '$2, N = $n'"
    echo "plot $plots"
}

{
    echo "set terminal pngcairo size 1500,1000 font 'DejaVu Sans,10'"
    echo "set output '$PNG'"
    echo "set multiplot layout 2,2 title 'TaskPool throughput versus maxWorkers (tasks/s, higher is better)'"
    echo "set logscale xy"
    echo "set yrange [1000:*]"
    echo "set xrange [0.7:1500]"
    echo "set xtics (1, 8, 64, 1024)"
    echo "set format y '10^{%L}'"
    echo "set xlabel 'maxWorkers'"
    echo "set ylabel 'tasks/s'"
    echo "set grid"
    echo "set key bottom left opaque font ',9'"
    panel trivial 'trivial task: submit all, await all'
    panel hop 'one event-loop hop per task'
    panel map 'ordered map, bufferSize 64'
    panel pending 'each result awaited while still pending'
    echo "unset multiplot"
} > "$DATA/plot.gp"
mkdir -p "$(dirname "$PNG")"
gnuplot "$DATA/plot.gp"
echo "wrote $PNG"
