// Process-wide settings for the test processes; see single_threaded_blas.c.
#ifndef QUANTKIT_CTESTSUPPORT_H
#define QUANTKIT_CTESTSUPPORT_H
/// The OpenBLAS thread count the test process started with (always 1).
int quantkit_tests_initial_blas_threads(void);
#endif
