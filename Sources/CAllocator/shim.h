// glibc's allocator tuning (mallopt); see ProcessTuning.swift.
#ifndef QUANTKIT_CALLOCATOR_SHIM_H
#define QUANTKIT_CALLOCATOR_SHIM_H
#if defined(__linux__)
#include <malloc.h>
#endif
#endif
