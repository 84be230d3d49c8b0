// What the CPU can do, from cpuid (and xgetbv: the OS must save the wide registers too).
#pragma once

typedef struct {
    int avx2, fma, avx512f, avx512bw, avx512vl, avx512dq;
    char vendor[13];
} CtCpuFeatures;

void ct_cpu_features(CtCpuFeatures *out);
// "AVX-512 (F BW VL DQ), AVX2, FMA" or "SSE only"
void ct_cpu_features_describe(const CtCpuFeatures *f, char *buf, int size);
