#include "kernels/cpu/cpu_features.h"

#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long read_xcr0(void) {
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

void ct_cpu_features(CtCpuFeatures *f) {
    memset(f, 0, sizeof *f);
    unsigned int a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return;
    unsigned int max_leaf = a;
    memcpy(f->vendor, &b, 4);
    memcpy(f->vendor + 4, &d, 4);
    memcpy(f->vendor + 8, &c, 4);
    __get_cpuid(1, &a, &b, &c, &d);
    int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx) return;
    unsigned long long xcr0 = read_xcr0();
    int ymm_saved = (xcr0 & 0x6) == 0x6;       // SSE and AVX state
    int zmm_saved = (xcr0 & 0xe6) == 0xe6;     // plus opmask and the upper ZMM registers
    if (!ymm_saved || max_leaf < 7) return;
    f->fma = fma;
    __get_cpuid_count(7, 0, &a, &b, &c, &d);
    f->avx2 = (b >> 5) & 1;
    if (zmm_saved) {
        f->avx512f = (b >> 16) & 1;
        f->avx512dq = (b >> 17) & 1;
        f->avx512bw = (b >> 30) & 1;
        f->avx512vl = (b >> 31) & 1;
    }
}
#else
void ct_cpu_features(CtCpuFeatures *f) { memset(f, 0, sizeof *f); }
#endif

void ct_cpu_features_describe(const CtCpuFeatures *f, char *buf, int size) {
    if (f->avx512f)
        snprintf(buf, (size_t)size, "AVX-512 (F%s%s%s), AVX2, FMA", f->avx512bw ? " BW" : "", f->avx512vl ? " VL" : "",
                 f->avx512dq ? " DQ" : "");
    else if (f->avx2)
        snprintf(buf, (size_t)size, "AVX2%s", f->fma ? ", FMA" : "");
    else
        snprintf(buf, (size_t)size, "no AVX2");
}
