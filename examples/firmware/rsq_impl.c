/* rsq_impl.c - rsq.h's implementation for the firmware, in a translation unit of its
   own (so that the link map shows what rsq costs). The switches that change the
   declarations (RSQ_NO_SOCKETS, RSQ_NO_CLUSTER, RSQ_NO_ADMIN, RSQ_MAX_DEPTH_CAP) come
   from the command line and are the same for every file; these only concern the
   implementation. */
#include "board.h"

/* No heap: every allocation goes to the arena given in the client's config. The
   default allocator is never used; were it called, it refuses and the call fails. */
void *fw_no_heap(void);
#define RSQ_MALLOC(sz) ((void)(sz), fw_no_heap())
#define RSQ_REALLOC(p, sz) ((void)(p), (void)(sz), fw_no_heap())
#define RSQ_FREE(p) ((void)(p))

/* A failed internal assertion is reported with its line, and the program ends. */
void fw_assert_failed(int line) __attribute__((noreturn));
#define RSQ_ASSERT(x) ((x) ? (void)0 : fw_assert_failed(__LINE__))

/* Small buffers: the reader asks for 256 free bytes per receive (not 16 KiB), and a
   pipeline is written out once it passes 1 KiB. */
#define RSQ_READ_CHUNK 256
#define RSQ_FLUSH_AT 1024

#define RSQ_IMPLEMENTATION
#include "../../rsq.h"

static unsigned long fw_no_heap_calls;
unsigned long fw_default_alloc_calls(void) { return fw_no_heap_calls; }
void *fw_no_heap(void) {
    fw_no_heap_calls++;
    return NULL;
}

void fw_assert_failed(int line) {
    fw_printf("fw: rsq.h assertion failed at line %d\n", line);
    fw_exit(92);
}
