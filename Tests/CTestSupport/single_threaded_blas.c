// Test processes run OpenBLAS on one thread, set before any test starts.
//
// OpenBLAS's threaded and single-threaded sgemm round differently, and the thread count is
// process-wide: the attention switches it to one thread while its per-core tasks run. Tests run
// in parallel, so with two threads a test's results would depend on whether another test's
// attention overlapped it (docs/design.md, "Determinism"). With one thread from the start those
// switches change nothing and every test is exact. The command-line end-to-end checks in .ci/run
// cover threaded OpenBLAS.
#include "CTestSupport.h"

void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

static int initial = 0;

__attribute__((constructor)) static void quantkit_tests_use_one_blas_thread(void) {
    openblas_set_num_threads(1);
    initial = openblas_get_num_threads();
}

int quantkit_tests_initial_blas_threads(void) { return initial; }
