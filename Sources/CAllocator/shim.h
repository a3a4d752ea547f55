// glibc extensions QuantKit uses: the allocator tuning (mallopt, see ProcessTuning.swift) and
// renameat2 (atomic exchange of two paths, see AtomicRename.swift).
#ifndef QUANTKIT_CALLOCATOR_SHIM_H
#define QUANTKIT_CALLOCATOR_SHIM_H
#if defined(__linux__)
#include <malloc.h>
#include <fcntl.h>
int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags);
#define QUANTKIT_RENAME_EXCHANGE (1 << 1)
#endif
#endif
