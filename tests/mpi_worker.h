// Tests that run inside mpirun. A worker test (suite "<name>_worker") runs in every rank of
// `mpirun -np N ctrain_tests <suite>.<name>`, each rank a forked test process that joins MPI
// itself; an ordinary test starts it with mpi_worker_run and checks that every rank passed.
// Started any other way (make test runs every suite), a worker test skips.
#pragma once

// First line of a worker test: skips unless mpi_worker_run started it.
void mpi_worker_only(void);
// Runs the worker test `name` ("suite.name", matching one test) in this test binary on np
// ranks under mpirun, killed after timeout_s; `env` ("VAR=value") or NULL is added to each
// rank's environment. Skips when the build has no MPI or mpirun is not on PATH. Returns
// mpirun's exit status; *out gets the output (free()).
int mpi_worker_run(int np, const char *name, const char *env, int timeout_s, char **out);
// 1 when each of the np ranks ran the worker test and it passed.
int mpi_worker_all_passed(const char *out, int np);
