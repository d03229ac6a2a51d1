// DUO_SIMD_CLONES: compile a hot function three times -- for x86-64-v4 (AVX-512), x86-64-v3 (AVX2) and the
// x86-64 baseline (SSE2) -- and let the dynamic loader pick the one this CPU runs (gcc's function
// multi-versioning, an ifunc resolved once at start). The build targets the baseline, so without this the
// elementwise loops of a function vectorise only 2 doubles or 4 floats wide.
//
// Every version computes the same IEEE operations on each element in the same order: the build contracts no
// a*b + c into an FMA (-ffp-contract=off) and never reorders sums (no -ffast-math; gcc does not vectorise a float
// reduction it would have to reorder). So the versions give the same bits, which the tests rely on.
// Put it only on functions whose loops are elementwise over long rows; clang builds (the fuzzers) get one version.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DUO_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DUO_SIMD_CLONES
#endif

// For the row helpers that such a function calls: inlined into each version, they vectorise at its width too
// (called out of line, they would run the baseline version).
#if defined(__GNUC__)
#define DUO_INLINE_INTO_CLONES __attribute__((always_inline)) inline
#else
#define DUO_INLINE_INTO_CLONES inline
#endif
