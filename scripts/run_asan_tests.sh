#!/usr/bin/env bash
# `make test-asan`: the test binary built with AddressSanitizer + UndefinedBehaviorSanitizer (build/asan), run
# through run_tests.sh. Any sanitizer report fails the binary, which run_tests.sh counts as a failure.
#   scripts/run_asan_tests.sh build/asan/duo-tests [boost args...]
#
# Excluded: the suite cuda_emu (the CUDA kernels under the SIMT emulator). The emulator runs each GPU thread as a
# Boost.Context fiber, and Debian's Boost.Context switches stacks without telling ASan (no
# __sanitizer_start_switch_fiber annotations in its fcontext build): when a kernel error abandons fibers (a
# divergent barrier), ASan sees the unwinding on a stack it does not know and reports a false stack-buffer-overflow,
# after which the emulator's later tests fail in turn. Annotating the emulator's own switches would lift this.
set -u
bin=${1:?usage: run_asan_tests.sh BUILD/asan/duo-tests [boost args...]}
shift
# detect_leaks: LeakSanitizer at exit. print_stacktrace: UBSan reports with the call stack.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
[ $# -eq 0 ] && set -- '--run_test=!cuda_emu'
exec "$(dirname "$0")/run_tests.sh" "$bin" "$@"
