#!/usr/bin/env bash
# `make test-asan`: the test binary built with AddressSanitizer + UndefinedBehaviorSanitizer (build/asan), run
# through run_tests.sh. Any sanitizer report aborts the binary, which run_tests.sh counts as a failure.
#   scripts/run_asan_tests.sh build/asan/duo-tests [boost args...]
set -u
bin=${1:?usage: run_asan_tests.sh BUILD/asan/duo-tests [boost args...]}
shift
# detect_leaks: LeakSanitizer at exit. print_stacktrace: UBSan reports with the call stack.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$(dirname "$0")/run_tests.sh" "$bin" "$@"
