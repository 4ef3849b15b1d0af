/* malloc_count.c - counts heap calls of the whole bench process, for peers that have no
   allocator hook of their own (hiredis 0.14). rsq's own figures come from its
   rsq_allocator hook; this counter only cross-checks them. With glibc, malloc, calloc
   and realloc defined here take precedence over libc's for the program and its shared
   libraries, and forward to glibc's exported __libc_* entry points. Elsewhere the
   counter reports itself unavailable. Single-threaded use only (the bench forks). */
#include "bench.h"
#include <stddef.h>
#include <limits.h> /* defines __GLIBC__ on glibc */

static int mc_on;
static unsigned long long mc_calls;

void bench_mc_enable(int on) { mc_on = on; }
unsigned long long bench_mc_calls(void) { return mc_calls; }

#if defined(__GLIBC__) && !defined(BENCH_NO_MALLOC_COUNT)
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

int bench_mc_available(void) { return 1; }

void *malloc(size_t n) {
    if (mc_on) mc_calls++;
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t size) {
    if (mc_on) mc_calls++;
    return __libc_calloc(n, size);
}
void *realloc(void *p, size_t n) {
    if (mc_on) mc_calls++;
    return __libc_realloc(p, n);
}
void free(void *p) { __libc_free(p); }
#else
int bench_mc_available(void) { return 0; }
#endif
