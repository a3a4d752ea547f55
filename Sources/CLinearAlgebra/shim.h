// The C interface of OpenBLAS (CBLAS) and LAPACKE, as Debian ships them
// (apt-get install libopenblas-dev liblapacke-dev). Both libraries are linked: Debian's
// OpenBLAS is built without LAPACKE.
#ifndef QUANTKIT_CLINEARALGEBRA_SHIM_H
#define QUANTKIT_CLINEARALGEBRA_SHIM_H
#include <cblas.h>
#include <lapacke.h>
// OpenBLAS's thread control and build information, declared by cblas.h of OpenBLAS only;
// declared here so the shim works with either cblas.h.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_corename(void);
char *openblas_get_config(void);
#endif
