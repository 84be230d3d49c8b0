// Choosing OpenBLAS's kernels for this CPU. Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) can take an
// AVX-512 Xeon for a "Prescott" and run sgemm ~7x slower. The library picks its core in a
// constructor, before main runs, from cpuid or from $OPENBLAS_CORETYPE; so when its choice is
// weaker than what cpuid shows, ctrain sets OPENBLAS_CORETYPE and re-executes itself, once.
#pragma once

// Call first thing in main. Returns only when the core is right (or cannot be fixed); may
// re-exec the process with the same arguments. A user's OPENBLAS_CORETYPE is always respected.
void ct_blas_select_core(char **argv);

// One line for logs: "cpu AVX-512 (F BW VL DQ), AVX2, FMA; OpenBLAS 0.3.21 core SkylakeX
// (set by ctrain: the library chose Prescott); 2 threads".
void ct_blas_describe(char *buf, int size);
