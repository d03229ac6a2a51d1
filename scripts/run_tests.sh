#!/usr/bin/env bash
# Runs the Boost.Test binary and prints the project's closing line "N passed, N failed".
# Extra arguments go to the binary (e.g. --run_test=params). Exit status is non-zero on any failure.
set -u
bin=${1:?usage: run_tests.sh BUILD/duo-tests [boost args...]}
shift
report=$(mktemp) log=$(mktemp)
trap 'rm -f "$report" "$log"' EXIT
"$bin" --color_output=false --log_level=test_suite --report_level=detailed --report_format=XML --report_sink="$report" "$@" \
  | tee "$log"
rc=${PIPESTATUS[0]}
# Time per suite, slowest first (from the log's "Leaving test suite" lines).
echo "time per suite:"
sed -nE 's/.*Leaving test suite "([^"]+)"; testing time: ([0-9]+)(us|ms).*/\1 \2 \3/p' "$log" |
  awk '{ s = ($3 == "ms") ? $2 / 1e3 : $2 / 1e6; printf "%10.2f s  %s\n", s, $1 }' | sort -rn
# The module's own counts (the first TestSuite element): test cases that did not run (a failed global fixture)
# are "passed" in their own elements but counted nowhere here.
module=$(grep -o '<TestSuite [^>]*>' "$report" | head -1)
count() { echo "$module" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*' || echo 0; }
passed=$(($(count test_cases_passed) + $(count test_cases_passed_with_warnings)))
failed=$(count test_cases_failed)  # aborted and timed-out cases are counted in it too
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi  # a crash outside any test case still fails
echo "$passed passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
