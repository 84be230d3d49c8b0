// The peak FLOP/s that MFU divides by: train.peak_tflops when set; on a GPU its published
// dense peak; on the CPU the cores' vector FMA peak, derived from what the hardware says
// (never a speed measured at start, which a busy machine makes too low and MFU above 100%).
#pragma once
#include "kernels/ops.h"

typedef struct {
    int cores;           // the cores this process's threads can run on at once
    int fma_units;       // FMA pipes per core, at most 2 on any x86 core today (an upper bound)
    int lanes;           // fp32 lanes of the widest vector unit (cpuid): 16 with AVX-512, else 8
    int flops_per_lane;  // 2: an FMA is a multiply and an add
    const char *isa;     // "AVX-512", "AVX2", "no AVX2"
    double ghz;          // the clock; 0 when unknown
    char clock_source[96];
} CtCpuPeak;

// The highest clock in GHz: cpuinfo_max_freq (kHz) in sys_cpu0_cpufreq when the kernel has
// cpufreq, else the highest "cpu MHz" (or a "@ 2.90GHz" model name) in proc_cpuinfo. 0 when
// neither says; `source` gets where it came from.
double ct_cpu_max_clock_ghz(const char *sys_cpu0_cpufreq, const char *proc_cpuinfo, char *source, int size);
// This machine's vector FMA peak for `threads` threads (from cpuid, the CPU topology and the
// clock). The peak is cores × fma_units × lanes × flops_per_lane × ghz × 1e9.
void ct_cpu_peak(int threads, CtCpuPeak *out);
double ct_cpu_peak_flops(const CtCpuPeak *p);
// What MFU divides by for this run, one rank's share (0: unknown, no MFU); `how` gets a line
// saying how it was derived.
double ct_mfu_peak_flops(double peak_tflops, const CtOps *ops, int gpu, int threads, char *how, int size);
