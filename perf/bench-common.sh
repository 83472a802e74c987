# Shell helpers shared by the comparison benchmarks (sourced, not run).

# Iterations per size: enough calls for a stable mean, few enough for large sizes.
iters_for() {
    case $1 in
    8) echo "-n 5000 -w 500" ;;
    1048576) echo "-n 200 -w 20" ;;
    16777216) echo "-n 30 -w 5" ;;
    *) echo "-n 10 -w 3" ;;
    esac
}

# A size in bytes, for people.
human() {
    case $1 in
    8) echo "8 B" ;;
    1048576) echo "1 MiB" ;;
    16777216) echo "16 MiB" ;;
    67108864) echo "64 MiB" ;;
    *) echo "$1 B" ;;
    esac
}

# The median of the numbers on standard input, one a line.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# The out-of-place "time_us busbw" of a tutti-perf or mpi-perf table on standard input.
table_row() { awk '!/^#/ && NF == 13 { print $6, $8; found = 1 } END { exit !found }'; }
