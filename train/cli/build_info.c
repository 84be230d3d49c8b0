#include "train/cli/build_info.h"

#include <cblas.h>
#include <omp.h>

#include "core/version.h"
#include "kernels/device.h"
#include "kernels/cpu/blas_setup.h"
#include "train/dist/dist_nccl.h"
#ifdef CTRAIN_MPI
#include <mpi.h>
#endif

void ct_print_build_info(FILE *out) {
    fprintf(out, "ctrain %s\n", CTRAIN_VERSION);
    fprintf(out, "  cpu:  %d threads (OpenMP)\n", omp_get_max_threads());
    fprintf(out, "  blas: %s\n", openblas_get_config());
    char line[512];
    ct_blas_describe(line, sizeof line);
    fprintf(out, "  compute: %s\n", line);
    if (ct_cuda_built()) {
        char why[256];
        int n = ct_cuda_device_count(why, sizeof why);
        fprintf(out, "  cuda: built for %s; ", ct_cuda_archs());
        if (n == 0) {
            fprintf(out, "%s\n", why);
        } else {
            fprintf(out, "%d device%s\n", n, n == 1 ? "" : "s");
            for (int i = 0; i < n; i++) {
                char name[256];
                size_t bytes;
                if (ct_cuda_device_describe(i, name, sizeof name, &bytes) == 0)
                    fprintf(out, "        %d: %s, %.1f GiB\n", i, name, (double)bytes / (1 << 30));
            }
        }
    } else {
        fprintf(out, "  cuda: not built (make CUDA=1 where nvcc is installed)\n");
    }
    if (ct_nccl_built()) {
        const int v = ct_nccl_version();  // X·10000 + Y·100 + Z since NCCL 2.9
        fprintf(out, "  nccl: %d.%d.%d (GPU collectives under mpirun, one rank per GPU)\n", v / 10000, v / 100 % 100,
                v % 100);
    } else if (ct_cuda_built()) {
        fprintf(out, "  nccl: not built (install NCCL and rebuild for multi-GPU runs)\n");
    }
#ifdef CTRAIN_MPI
#if defined(OMPI_MAJOR_VERSION)
    fprintf(out, "  mpi:  Open MPI %d.%d.%d (launch with mpirun -np N)\n", OMPI_MAJOR_VERSION, OMPI_MINOR_VERSION,
            OMPI_RELEASE_VERSION);
#else
    fprintf(out, "  mpi:  MPI %d.%d (launch with mpirun -np N)\n", MPI_VERSION, MPI_SUBVERSION);
#endif
#else
    fprintf(out, "  mpi:  not built (single process; install OpenMPI and rebuild for multi-rank runs)\n");
#endif
}
