#!/usr/bin/env bash
# Runs the Boost.Test binary and prints the project's closing line "N passed, N failed".
# Extra arguments go to the binary (e.g. --run_test=params). Exit status is non-zero on any failure.
set -u
bin=${1:?usage: run_tests.sh BUILD/duo-tests [boost args...]}
shift
report=$(mktemp)
trap 'rm -f "$report"' EXIT
"$bin" --color_output=false --log_level=test_suite --report_level=detailed --report_format=XML --report_sink="$report" "$@"
rc=$?
passed=$(grep -o '<TestCase [^>]*result="passed"' "$report" | wc -l)
failed=$(grep -o '<TestCase [^>]*result="\(failed\|aborted\)"' "$report" | wc -l)
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi  # a crash outside any test case still fails
echo "$passed passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
