/* Counts heap allocations of a process, for scripts/bench-proxy: LD_PRELOAD it with
 * MALLOC_COUNT_FILE=path and the process writes its running count (malloc, calloc, realloc,
 * memalign calls) to that file every 100 ms. The bench reads it before and after a load and
 * divides by the requests served: allocations per proxied request, measured the same way for
 * every peer. Built by the bench with `cc -O2 -shared -fPIC`. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static atomic_ulong allocations;

void *malloc(size_t n) { atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed); return __libc_malloc(n); }
void *calloc(size_t c, size_t n) { atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed); return __libc_calloc(c, n); }
void *realloc(void *p, size_t n) { atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed); return __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { return memalign(a, n); }
int posix_memalign(void **out, size_t a, size_t n) {
    void *p = memalign(a, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

static void *reporter(void *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", (const char *)path);
    struct timespec pause = {0, 100 * 1000 * 1000};
    for (;;) {
        FILE *f = fopen(tmp, "w");
        if (f) {
            fprintf(f, "%lu\n", atomic_load(&allocations));
            fclose(f);
            rename(tmp, (const char *)path);
        }
        nanosleep(&pause, NULL);
    }
    return NULL;
}

__attribute__((constructor)) static void start(void) {
    const char *path = getenv("MALLOC_COUNT_FILE");
    if (!path || !*path) return;
    pthread_t t;
    if (pthread_create(&t, NULL, reporter, strdup(path)) == 0) pthread_detach(t);
}
