#include "train/loop/mfu_peak.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/device.h"

// The number a one-line file in /sys holds; `otherwise` when it is absent or unreadable.
static double read_number(const char *path, double otherwise) {
    FILE *f = fopen(path, "r");
    if (!f) return otherwise;
    double v;
    if (fscanf(f, "%lf", &v) != 1) v = otherwise;
    fclose(f);
    return v;
}

double ct_cpu_max_clock_ghz(const char *sys_cpu0_cpufreq, const char *proc_cpuinfo, char *source, int size) {
    char path[512];
    snprintf(path, sizeof path, "%s/cpuinfo_max_freq", sys_cpu0_cpufreq);
    double khz = read_number(path, 0);
    if (khz > 0) {
        snprintf(source, (size_t)size, "%s", path);
        return khz * 1e-6;
    }
    // No cpufreq (a VM, a container): the kernel's "cpu MHz", which may be the base clock.
    FILE *f = fopen(proc_cpuinfo, "r");
    double mhz = 0, model_ghz = 0;
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            double v;
            const char *at;
            if (strncmp(line, "cpu MHz", 7) == 0 && sscanf(strchr(line, ':') ? strchr(line, ':') + 1 : "", "%lf", &v) == 1 &&
                v > mhz)
                mhz = v;
            if (strncmp(line, "model name", 10) == 0 && (at = strstr(line, "@ ")) && sscanf(at + 2, "%lfGHz", &v) == 1 &&
                v > model_ghz)
                model_ghz = v;
        }
        fclose(f);
    }
    if (mhz <= 0 && model_ghz <= 0) {
        snprintf(source, (size_t)size, "unknown: no %s, no clock in %s", path, proc_cpuinfo);
        return 0;
    }
    int from_mhz = mhz * 1e-3 >= model_ghz;
    snprintf(source, (size_t)size, "%s %s", proc_cpuinfo, from_mhz ? "cpu MHz" : "model name");
    return from_mhz ? mhz * 1e-3 : model_ghz;
}

// The distinct physical cores among the CPUs this process may run on (hyperthreads share one
// core's FMA units); the logical CPUs when the topology is not in /sys.
static int physical_cores(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
    int logical = CPU_COUNT(&set), cores = 0;
    double *seen = ct_calloc((size_t)logical + 1, sizeof(double));
    for (int cpu = 0; cpu < CPU_SETSIZE && cores < logical; cpu++) {
        if (!CPU_ISSET(cpu, &set)) continue;
        char path[160];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", cpu);
        double core = read_number(path, -1 - cpu);  // no topology: every logical CPU counts
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", cpu);
        double key = read_number(path, 0) * 1e6 + core;
        int known = 0;
        for (int i = 0; i < cores; i++) known |= seen[i] == key;
        if (!known) seen[cores++] = key;
    }
    ct_free(seen);
    return cores > 0 ? cores : logical > 0 ? logical : 1;
}

void ct_cpu_peak(int threads, CtCpuPeak *p) {
    memset(p, 0, sizeof *p);
    CtCpuFeatures f;
    ct_cpu_features(&f);
    int cores = physical_cores();
    p->cores = threads > 0 && threads < cores ? threads : cores;
    // Two FMA pipes per core is the most any x86 core has (Skylake-SP Gold/Platinum, Ice Lake,
    // Zen 2-5; some Xeons and Zen 4, which splits 512-bit operations, do half): an upper bound.
    p->fma_units = 2;
    p->flops_per_lane = 2;  // an FMA is a multiply and an add (without FMA: one add and one multiply pipe)
    p->lanes = f.avx512f ? 16 : 8;  // AVX-512; AVX2 or AVX (SSE alone has 4: 8 stays an upper bound)
    p->isa = f.avx512f ? "AVX-512" : f.avx2 ? "AVX2" : "no AVX2";
    p->ghz = ct_cpu_max_clock_ghz("/sys/devices/system/cpu/cpu0/cpufreq", "/proc/cpuinfo", p->clock_source,
                                  sizeof p->clock_source);
}

double ct_cpu_peak_flops(const CtCpuPeak *p) {
    return (double)p->cores * p->fma_units * p->lanes * p->flops_per_lane * p->ghz * 1e9;
}

double ct_mfu_peak_flops(double peak_tflops, const CtOps *ops, int gpu, int threads, char *how, int size) {
    if (peak_tflops > 0) {
        snprintf(how, (size_t)size, "MFU against train.peak_tflops = %g TFLOP/s", peak_tflops);
        return peak_tflops * 1e12;
    }
    if (!ops->host_memory) {
        double peak = ct_cuda_peak_flops(gpu, ct_ops_products_bf16(ops));
        if (peak > 0)
            snprintf(how, (size_t)size, "MFU against the GPU's published dense %s peak, %.0f TFLOP/s (train.peak_tflops "
                     "sets another)", ct_ops_products_bf16(ops) ? "bf16" : "fp32", peak * 1e-12);
        else
            snprintf(how, (size_t)size, "no MFU: this GPU's peak is not known (set train.peak_tflops)");
        return peak;
    }
    CtCpuPeak p;
    ct_cpu_peak(threads, &p);
    double peak = ct_cpu_peak_flops(&p);
    if (peak <= 0) {
        snprintf(how, (size_t)size, "no MFU: the CPU clock is %s (set train.peak_tflops)", p.clock_source);
        return 0;
    }
    snprintf(how, (size_t)size, "MFU against the cpu peak %.1f GFLOP/s = %d core%s x %d FMA units x %d fp32 lanes (%s) "
             "x %d FLOP x %.3f GHz (%s); train.peak_tflops sets another", peak * 1e-9, p.cores, p.cores == 1 ? "" : "s",
             p.fma_units, p.lanes, p.isa, p.flops_per_lane, p.ghz, p.clock_source);
    return peak;
}
