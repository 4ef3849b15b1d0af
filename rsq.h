/* rsq.h - v0.1.0 - reliable queues and event buses on Redis Streams, in one C header.
   MIT licence (full text at the end of this file).

   QUICK START
   ===========
   In exactly one C or C++ file:

       #define RSQ_IMPLEMENTATION
       #include "rsq.h"

   Everywhere else, include "rsq.h" without the define. Build with plain `cc`; the
   library needs libc and, unless RSQ_NO_SOCKETS is defined, POSIX sockets.
   Strict modes (-std=c99) hide POSIX names: include rsq.h before any system header
   in the implementation file, or compile with -D_DEFAULT_SOURCE.

   Publish (a queue is a stream; the body goes in the field "payload"):

       rsq_client c; rsq_producer p; rsq_producer_config pc; rsq_id id;
       rsq_client_init(&c, NULL);                       // redis://127.0.0.1:6379
       rsq_producer_config_init(&pc); pc.queue = "jobs";
       rsq_producer_init(&p, &c, &pc);
       if (rsq_publish(&p, "hello", 5, &id) != RSQ_OK) puts(rsq_errstr(&c));

   Consume in a group (at-least-once; handled messages are acked in batches):

       static rsq_action handle(void *user, rsq_consumer *k, const rsq_message *m) {
           printf("%.*s\n", (int)m->payload_len, m->payload);
           return RSQ_ACTION_ACK;                   // or RETRY, RETRY_LATER, DEAD_LETTER
       }
       rsq_consumer k; rsq_consumer_config cc;
       rsq_consumer_config_init(&cc); cc.queue = "jobs"; cc.group = "workers";
       rsq_consumer_init(&k, &c, &cc);
       rsq_consumer_run(&k, handle, NULL);          // until rsq_consumer_stop()

   Any other command: rsq_command(&c, &reply, "XLEN", "jobs", (char *)0).

   CONTENTS (search for the anchors: each names a section of the declarations, and
   "// >>name (implementation)" the same section of the implementation, in the same
   order; the consumer's rooms exist in the implementation only, as "// >>room:"; a
   section calls only the sections above it)
   ========
     // >>results      rsq_result, rsq_result_str
     // >>memory       rsq_allocator, rsq_arena (no-malloc mode)
     // >>logging      rsq_logger, log items
     // >>codec        the decoder: rsq_reader (RESP2/RESP3, limits); rsq_encode_argv;
                       reply helpers
     // >>transport    rsq_transport (the contract for firmware and TLS); the built-in
                       socket transport
     // >>url          rsq_url_parse
     // >>ids          rsq_id
     // >>keys         rsq_queue_key: a queue's streams, dead letters, shards
     // >>connection   rsq_client: config, connect and handshake, errors, event-loop fd;
                       the socket writes and reads (rsq__node_flush, rsq__node_read)
     // >>cluster      Redis Cluster: slot map, routing, redirects
     // >>commands     the command path: rsq_command, pipelines (rsq_append, rsq_flush,
                       rsq_read_reply), transactions, rsq_server_version
     // >>metrics      rsq_stream_stats, rsq_group_consumers, "falling behind"
     // >>admin        safe trimming, groups, streams
     // >>producer     rsq_publish, batches, async publishing, trimming options, WAIT
     // >>consumer     rsq_consumer: config and state; in the implementation, rooms:
         // >>acks          rsq_ack, rsq_consumer_flush (acks ride with the next read)
         // >>batch         fetched entries, hand-out, rsq_consumer_release
         // >>deadletters   rsq_dead_letter, rsq_dead_letter_replay
         // >>nack          rsq_nack, rsq_extend
         // >>reclaim       taking over the entries of stalled consumers
         // >>fetch         one round of the consumer loop: group setup, reclaim,
                            resume, reads: the one fetch state machine (rsq__fetch)
                            behind rsq_consumer_next and _step
         // >>run           the loop itself: rsq_consumer_next, rsq_consumer_step,
                            rsq_consumer_run, rsq_consumer_stop
     // >>impl         the implementation, from // >>platform on
     Versions and licence: at the end.

   DELIVERY, IN SHORT
   ==================
   At-least-once: an entry leaves the group's pending list only when acked. Duplicates
   come from: a crash or lost connection after handling and before the ack went out
   (acks are batched and sent at the latest ack_interval_ms, default 1 s, after
   handling); a publish resent after its confirmation was lost; a handler that runs
   longer than visibility_ms without rsq_extend (another consumer reclaims it); a
   group lost and recreated (FLUSHALL, DEL, XGROUP DESTROY: it is made again at the
   last entry this consumer read, so entries other consumers had read come again).
   Consumers re-read their own pending entries after a (re)start or reconnect, one at
   a time, reclaim entries idle longer than visibility_ms on other consumers (a pass
   follows the pending list to its end, within a time budget), and keep the lease of
   prefetched messages they have not handed out yet. A handler never sees a message
   without its fields: an error in the middle of a read or reclaim drops the partial
   batch (its entries stay pending and come again through resume). The delivery
   count is the server's and counts deliveries to a handler, never one that did not
   reach a handler: entries come back one at a time after a crash, and the entries of
   a fresh batch after its first have their count reset until handed out. The price:
   after a crash, a message of that batch that was handed out but not acked may come
   again counted one delivery short (so a poison message that crashes its consumer may
   be delivered max_deliveries + 1 times). An entry whose count has
   reached max_deliveries goes to the dead-letter stream (with that count) instead of
   a handler. Pending entries deleted from the stream are acked away and counted; an
   entry too large for the client's reply limits is dead-lettered by ID (its fields
   stay in the stream). On Redis Cluster, a failover can lose writes not yet
   replicated (replication is asynchronous); rsq_producer_config.wait_replicas makes
   publishing wait for them.

   OVERVIEW AND CONVENTIONS
   ========================
   - Every fallible function returns an rsq_result: RSQ_OK (0), a positive non-error
     outcome (RSQ_EMPTY, RSQ_AGAIN, RSQ_STOPPED), or a negative error grouped by range
     (arguments -1.., memory -10.., network -20.., protocol -30.., server -40..).
     rsq_result_str() names a code; rsq_errstr(client) gives the text of the last error
     on that client, including the server's own error line (e.g. "WRONGPASS ...").
   - Objects are caller-allocated (`rsq_client c;` on the stack, in a struct, static).
     Their fields are private: use the functions.
   - Config structs: a zeroed struct means "all defaults". Every field documents its
     default beside it. The *_config_init() helpers zero a struct for C++ callers.
   - No global state: two clients never share anything. A client is not thread-safe;
     use one client per thread (different clients may be used from different threads).
   - Replies are zero-copy views into the client's read buffer, valid until the next
     call on the same client. Strings in replies are NUL-terminated for convenience
     (the terminator replaces the protocol's CR) but may contain NUL bytes: use len.
   - Nothing is allocated per message once buffers have grown to the working size.
   - Names: rsq_<object>_<verb> for an object's life and accessors (rsq_client_init,
     rsq_consumer_next, rsq_group_create, rsq_group_consumers); plain verbs for the
     command path of a client (rsq_connect, rsq_command, rsq_append, rsq_flush,
     rsq_read_reply) and for publishing (rsq_publish*), acking (rsq_ack, rsq_nack).
   - Each function's comment says what it does (times in ms, sizes in bytes), then,
     where they differ from the defaults below, in this order:
       Blocks:  how long it may wait at most (see "Time bounds" under >>connection);
       Errors:  the results it returns besides RSQ_OK, and what holds after them;
       Threads: who may call it at the same time;
       Memory:  who owns what it returns, and until when;
       Redis:   the commands it sends (documented at redis.io/commands).
     Defaults: a function without I/O never blocks; a function with I/O blocks up to
     io_timeout_ms per attempt and returns RSQ_ERR_ARG for bad arguments, the server's
     error class (text in rsq_errstr) or a link error; objects and their client are
     used by one thread at a time (functions taking no object are thread-safe);
     returned pointers are views owned by the object, valid until the next call on it;
     the caller frees nothing it did not allocate.

   CONFIGURATION MACROS (define before including the implementation)
   =================================================================
     RSQ_IMPLEMENTATION   compile the implementation into this translation unit
     RSQ_STATIC           make every function static (private copy per translation unit)
     RSQDEF               linkage of public functions (default: extern, or static)
     RSQ_NO_SOCKETS       leave out the BSD-socket transport (firmware: plug your own)
     RSQ_NO_CLUSTER       leave out Redis Cluster (slot map, routing, redirects): once
                          a MOVED reply showed a cluster node (that reply is returned
                          as RSQ_ERR_MOVED), commands get RSQ_ERR_UNSUPPORTED
     RSQ_NO_ADMIN         leave out the >>metrics and >>admin sections (stats, safe
                          trimming, groups and streams by hand); the producer's
                          safe_trim_every is then refused with RSQ_ERR_UNSUPPORTED
     RSQ_SHORT_ERRORS     leave out the error and log texts: rsq_errstr gives the
                          result's text (rsq_result_str), or the server's own error
                          line where one was copied; loggers get the item's text
     (Footprint of each set and stack depths on a Cortex-M4: make size, and the
     README's firmware section. The four switches combine freely.)
     RSQ_MALLOC/RSQ_REALLOC/RSQ_FREE
                          default allocator when the config's allocator is zeroed;
                          define all three or none (default: malloc/realloc/free)
     RSQ_ASSERT(x)        internal assertions (default: assert from <assert.h>)
     RSQ_MAX_DEPTH_CAP    hard upper bound for rsq_limits.max_depth (default 64)
     RSQ_MAX_LINE         longest protocol line accepted, in bytes (default 65536)
     RSQ_READ_CHUNK       minimum free space per socket read, bytes (default 16384)
     RSQ_FLUSH_AT         append flushes the pipeline past this many bytes (default 65536)
*/
#if defined(RSQ_IMPLEMENTATION) && !defined(RSQ_NO_SOCKETS) && defined(__linux__) && \
    !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _DEFAULT_SOURCE 1 /* getaddrinfo, clock_gettime, TCP_KEEPIDLE under -std=c99 */
#endif

#ifndef RSQ_H
#define RSQ_H

#include <stddef.h>
#include <stdint.h>

#define RSQ_VERSION_MAJOR 0
#define RSQ_VERSION_MINOR 1
#define RSQ_VERSION_PATCH 0
#define RSQ_VERSION "0.1.0"

#ifndef RSQDEF
#ifdef RSQ_STATIC
#if defined(__GNUC__) || defined(__clang__)
#define RSQDEF static __attribute__((unused))
#else
#define RSQDEF static
#endif
#else
#define RSQDEF extern
#endif
#endif

#ifndef RSQ_MAX_DEPTH_CAP
#define RSQ_MAX_DEPTH_CAP 64
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Timeouts in milliseconds. Functions taking a timeout accept these too. */
#define RSQ_TIMEOUT_DEFAULT (-1)      /* the client's io_timeout_ms */
#define RSQ_TIMEOUT_NONBLOCK 0        /* never wait: RSQ_AGAIN when it would block */
#define RSQ_TIMEOUT_FOREVER 0x7fffffff

/* ------------------------------------------------------------------------------------ */
// >>results
/* One table gives the enum, the names and the descriptions. Ranges: 0 success,
   1..9 non-error outcomes, -1..-9 arguments and state, -10..-19 memory and limits,
   -20..-29 network, -30..-39 protocol, -40..-59 errors sent by the server. */
#define RSQ_RESULT_LIST(X) \
    X(RSQ_OK,               0, "ok") \
    X(RSQ_EMPTY,            1, "nothing available yet") \
    X(RSQ_AGAIN,            2, "would block: call again when the connection is ready") \
    X(RSQ_STOPPED,          3, "stopped on request") \
    X(RSQ_ERR_ARG,         -1, "invalid argument") \
    X(RSQ_ERR_URL,         -2, "malformed URL") \
    X(RSQ_ERR_TOO_LARGE,   -3, "payload larger than the configured limit") \
    X(RSQ_ERR_UNSUPPORTED, -4, "not supported by this build, transport or server") \
    X(RSQ_ERR_STATE,       -5, "call not valid in the current state") \
    X(RSQ_ERR_NOMEM,      -10, "out of memory") \
    X(RSQ_ERR_CONNECT,    -20, "could not connect") \
    X(RSQ_ERR_TIMEOUT,    -21, "timed out") \
    X(RSQ_ERR_IO,         -22, "connection lost") \
    X(RSQ_ERR_RESOLVE,    -23, "could not resolve host name") \
    X(RSQ_ERR_TLS,        -24, "TLS handshake or certificate verification failed") \
    X(RSQ_ERR_REPLICAS,   -25, "fewer replicas acknowledged the writes than asked (WAIT)") \
    X(RSQ_ERR_PROTOCOL,   -30, "protocol error in the server's reply") \
    X(RSQ_ERR_LIMIT,      -31, "server reply exceeds a configured limit") \
    X(RSQ_ERR_REPLY,      -32, "reply of an unexpected type or shape") \
    X(RSQ_ERR_SERVER,     -40, "server error") \
    X(RSQ_ERR_AUTH,       -41, "authentication failed") \
    X(RSQ_ERR_NOPERM,     -42, "no permission (ACL)") \
    X(RSQ_ERR_WRONGTYPE,  -43, "key holds a value of the wrong type") \
    X(RSQ_ERR_NOGROUP,    -44, "no such stream or consumer group") \
    X(RSQ_ERR_RETRY,      -45, "server temporarily unavailable (LOADING, BUSY, TRYAGAIN...)") \
    X(RSQ_ERR_MOVED,      -46, "key served by another cluster node (MOVED/ASK)")

typedef enum rsq_result {
#define RSQ__X(name, value, text) name = value,
    RSQ_RESULT_LIST(RSQ__X)
#undef RSQ__X
    RSQ__RESULT_END = -99
} rsq_result;

/* Static text for a result code ("ok", "connection lost", ...). Never NULL. Thread-safe. */
RSQDEF const char *rsq_result_str(rsq_result r);
/* The enum name ("RSQ_ERR_IO"). Never NULL. Thread-safe. */
RSQDEF const char *rsq_result_name(rsq_result r);
/* 1 when r is an error the server sent (the connection is still usable), else 0. */
RSQDEF int rsq_result_is_server_error(rsq_result r);

/* ------------------------------------------------------------------------------------ */
// >>memory
/* All memory goes through this struct. Zeroed: RSQ_MALLOC/RSQ_REALLOC/RSQ_FREE.
   Set either all three functions or none. `user` is passed back untouched.
   realloc_fn(NULL, n) must behave as malloc; free_fn(NULL) must be harmless. */
typedef struct rsq_allocator {
    void *(*malloc_fn)(size_t size, void *user);
    void *(*realloc_fn)(void *ptr, size_t size, void *user);
    void (*free_fn)(void *ptr, void *user);
    void *user;
} rsq_allocator;

/* No-malloc mode: an allocator that serves everything from one caller-provided buffer
   (first fit with coalescing; blocks aligned to 16 bytes, 16 bytes of overhead each).
   A request that does not fit fails cleanly: the call that needed it returns
   RSQ_ERR_NOMEM. Size it for the client's buffers: about 2 x RSQ_READ_CHUNK plus the
   largest reply and pipeline you expect, plus the consumer's batch. One arena serves
   one client (and its producer/consumer); it is not thread-safe. */
typedef struct rsq_arena {
    unsigned char *base;
    size_t size;
    size_t used;     /* bytes in live blocks, overhead included */
    size_t peak;     /* highest `used` seen */
    size_t failures; /* requests refused for lack of room */
} rsq_arena;

/* Prepares an arena over buf[0..size). buf must outlive every object using it. */
RSQDEF void rsq_arena_init(rsq_arena *a, void *buf, size_t size);
/* An allocator drawing from the arena, for rsq_client_config.allocator. */
RSQDEF rsq_allocator rsq_arena_allocator(rsq_arena *a);

/* ------------------------------------------------------------------------------------ */
// >>logging
typedef enum rsq_log_level {
    RSQ_LOG_ERROR = 0,
    RSQ_LOG_WARN = 1,
    RSQ_LOG_INFO = 2,
    RSQ_LOG_DEBUG = 3
} rsq_log_level;

/* Every message the library logs has an item from this table. */
#define RSQ_LOG_ITEMS(X) \
    X(RSQ_LOGI_CONNECTED, "connected") \
    X(RSQ_LOGI_DISCONNECTED, "connection dropped") \
    X(RSQ_LOGI_RECONNECT_WAIT, "reconnect attempt failed; backing off") \
    X(RSQ_LOGI_SERVER_RETRY, "server temporarily unavailable; backing off") \
    X(RSQ_LOGI_PROTOCOL, "protocol error; connection closed") \
    X(RSQ_LOGI_PUSH_IGNORED, "out-of-band push message ignored") \
    X(RSQ_LOGI_GROUP_RECREATED, "consumer group missing (stream deleted?); recreated") \
    X(RSQ_LOGI_DELETED_ENTRY, "pending entry was deleted from the stream; acked away") \
    X(RSQ_LOGI_DEAD_LETTER, "message moved to the dead-letter stream") \
    X(RSQ_LOGI_RECLAIMED, "reclaimed messages from a stalled consumer") \
    X(RSQ_LOGI_RESENT, "resent publishes not confirmed before a connection loss") \
    X(RSQ_LOGI_AFTER_STEP, "a step after publishing (WAIT, safe trim) failed; the messages are published") \
    X(RSQ_LOGI_NAME_SKIPPED, "CLIENT SETNAME refused (ACL or renamed command); the name is cosmetic: skipped") \
    X(RSQ_LOGI_DELAYED, "delayed entries need scripting (EVAL): a long retry was cut to visibility_ms, or due entries are not moved")

typedef enum rsq_log_item {
#define RSQ__X(name, text) name,
    RSQ_LOG_ITEMS(RSQ__X)
#undef RSQ__X
    RSQ__LOGI_COUNT
} rsq_log_item;

/* Log hook. Zeroed: nothing is logged (every failure still reaches the caller as a
   result code). `message` is valid during the call only and never holds credentials. */
typedef struct rsq_logger {
    void (*func)(void *user, rsq_log_level level, rsq_log_item item, const char *message);
    void *user;
    rsq_log_level level; /* most verbose level passed to func; default RSQ_LOG_ERROR (0) */
} rsq_logger;

/* Short text for a log item. Never NULL. */
RSQDEF const char *rsq_log_item_str(rsq_log_item item);

/* ------------------------------------------------------------------------------------ */
// >>codec
/* RESP2 and RESP3 decoding. The reader does no I/O: bytes go in (rsq_reader_feed, or
   rsq_reader_space + rsq_reader_commit to receive straight into its buffer), complete
   replies come out (rsq_reader_next). Any split of the byte stream gives the same
   replies. Parsing uses an explicit stack (no recursion). Errors are sticky. */

typedef enum rsq_reply_type {
    RSQ_REPLY_STRING = 1, /* $ bulk string                                         */
    RSQ_REPLY_STATUS,     /* + simple string                                       */
    RSQ_REPLY_ERROR,      /* - simple error, ! bulk error (str is the message)     */
    RSQ_REPLY_INTEGER,    /* : integer                                             */
    RSQ_REPLY_NIL,        /* _ null, and RESP2's $-1 / *-1                         */
    RSQ_REPLY_ARRAY,      /* * array                                               */
    RSQ_REPLY_MAP,        /* % map: element[] alternates key, value; len = 2*pairs */
    RSQ_REPLY_SET,        /* ~ set                                                 */
    RSQ_REPLY_PUSH,       /* > out-of-band push                                    */
    RSQ_REPLY_DOUBLE,     /* , double: dbl, and its text in str                    */
    RSQ_REPLY_BOOL,       /* # boolean: integer is 0 or 1                          */
    RSQ_REPLY_BIGNUM,     /* ( big number: its decimal text in str                 */
    RSQ_REPLY_VERBATIM    /* = verbatim string: str is the text after "fmt:", the
                                three-letter format is at str - 4                  */
} rsq_reply_type;
/* RESP3 attributes (|) are parsed, checked against the limits and skipped. */

typedef struct rsq_reply {
    rsq_reply_type type;
    size_t len;                      /* bytes at str; for aggregates, element count  */
    const char *str;                 /* string types; NUL-terminated; else NULL      */
    long long integer;               /* INTEGER, BOOL                                */
    double dbl;                      /* DOUBLE                                       */
    const struct rsq_reply *element; /* aggregates: `len` elements; else NULL        */
} rsq_reply;

/* Limits on what the server may send. Zero fields take the defaults shown. Exceeding
   one is RSQ_ERR_LIMIT: the reply is rejected before it is buffered in full. */
typedef struct rsq_limits {
    size_t max_bulk;     /* longest bulk string, bytes            (default 16 MiB)      */
    size_t max_elements; /* elements in one reply, all levels     (default 1048576)     */
    size_t max_reply;    /* bytes of one reply on the wire        (default 32 MiB)      */
    int max_depth;       /* nesting depth of aggregates           (default 16, at most
                            RSQ_MAX_DEPTH_CAP)                                           */
} rsq_limits;

/* Reader state. Private fields. Memory use is bounded by about max_reply +
   RSQ_READ_CHUNK for the buffer plus max_elements * sizeof(rsq_reply) for nodes. */
typedef struct rsq_reader {
    rsq_allocator alloc;
    rsq_limits lim;
    char *buf;
    size_t cap, len, pos, scan;
    size_t nodes, node_cap;
    rsq_reply *node;
    int depth, attr_depth;
    size_t stk_rem[RSQ_MAX_DEPTH_CAP];         /* the scan's stack, reused by the build's */
    unsigned char stk_attr[RSQ_MAX_DEPTH_CAP];
    rsq_reply *stk_next[RSQ_MAX_DEPTH_CAP];
    rsq_result err;
    char errmsg[96];
} rsq_reader;

/* Prepares a reader. `limits` and `alloc` may be NULL (defaults). Allocates nothing
   until bytes arrive. Returns RSQ_OK or RSQ_ERR_ARG. */
RSQDEF rsq_result rsq_reader_init(rsq_reader *r, const rsq_limits *limits, const rsq_allocator *alloc);
/* Releases the reader's memory. Safe on a zeroed or already freed reader. */
RSQDEF void rsq_reader_free(rsq_reader *r);
/* Drops buffered bytes and any sticky error; keeps the memory for reuse. */
RSQDEF void rsq_reader_reset(rsq_reader *r);
/* Copies `len` bytes into the reader. RSQ_OK, RSQ_ERR_NOMEM, or the sticky error.
   The reader holds at most max_reply + 2 * RSQ_READ_CHUNK bytes that were not yet
   returned as replies: feed large inputs in pieces and drain with rsq_reader_next in
   between (more at once is RSQ_ERR_LIMIT, as a reply that large would be). */
RSQDEF rsq_result rsq_reader_feed(rsq_reader *r, const void *data, size_t len);
/* Zero-copy input: *buf receives at least `want` writable bytes (*avail says how many);
   write received bytes there, then call rsq_reader_commit(r, n). */
RSQDEF rsq_result rsq_reader_space(rsq_reader *r, size_t want, char **buf, size_t *avail);
RSQDEF void rsq_reader_commit(rsq_reader *r, size_t n);
/* Next complete reply. RSQ_OK: *out points to it, valid until the next call on this
   reader. RSQ_EMPTY: no complete reply yet (*out = NULL), not an error.
   RSQ_ERR_PROTOCOL / RSQ_ERR_LIMIT / RSQ_ERR_NOMEM: sticky until rsq_reader_reset;
   rsq_reader_errstr() says why. */
RSQDEF rsq_result rsq_reader_next(rsq_reader *r, const rsq_reply **out);
/* Text for the reader's sticky error, or "" when there is none. */
RSQDEF const char *rsq_reader_errstr(const rsq_reader *r);
/* Bytes buffered and not yet returned as replies. */
RSQDEF size_t rsq_reader_buffered(const rsq_reader *r);

/* Encodes one command (RESP array of bulk strings) into out[0..cap). Binary-safe.
   `lens` may be NULL (then every argv[i] is a C string). Returns the number of bytes
   the encoding needs; when that is more than cap, nothing useful was written. */
RSQDEF size_t rsq_encode_argv(char *out, size_t cap, int argc, const char *const *argv, const size_t *lens);

/* Reply helpers. Each accepts NULL and returns 0/NULL for a non-match. */
/* 1 if r is a string-like reply (STRING, STATUS, VERBATIM) equal to the C string s. */
RSQDEF int rsq_reply_is(const rsq_reply *r, const char *s);
/* In a MAP, or a RESP2 flat array of key/value pairs, the value for key, else NULL. */
RSQDEF const rsq_reply *rsq_reply_get(const rsq_reply *r, const char *key);
/* Integer value of an INTEGER reply, or of a string holding a decimal integer. Returns
   1 and sets *out on success, else 0. */
RSQDEF int rsq_reply_int(const rsq_reply *r, long long *out);

/* ------------------------------------------------------------------------------------ */
// >>transport
/* Where to connect: filled by the client from its URL and passed to open(). */
typedef struct rsq_endpoint {
    const char *host; /* TCP host name or address (IPv6 without brackets); NULL for unix */
    int port;         /* TCP port                                                         */
    const char *path; /* unix socket path, else NULL                                      */
    int tls;          /* 1 for rediss:// URLs: the transport must speak TLS               */
} rsq_endpoint;

#define RSQ_WANT_READ 1
#define RSQ_WANT_WRITE 2

/* The byte pipe under a client. The built-in one uses BSD sockets (non-blocking, with
   poll); firmware and TLS users supply their own. The client copies the struct.

   Call order, per connection:  open -> { send | recv | wait }* -> close.
   close is called exactly once for every handle open returned with RSQ_OK.

   open(user, ep, timeout_ms, &handle, err, errlen)
       Connect within timeout_ms. RSQ_OK with *handle set to a non-NULL value (use
       any non-NULL token if the transport keeps no per-connection state), or an error
       with a one-line reason in err (never a password). May block up to timeout_ms.
       The client retries RSQ_ERR_CONNECT, RSQ_ERR_TIMEOUT, RSQ_ERR_IO and
       RSQ_ERR_RESOLVE with backoff; RSQ_ERR_TLS, RSQ_ERR_UNSUPPORTED and RSQ_ERR_ARG
       are final (a certificate will not become valid by retrying).
   send(user, handle, buf, len) / recv(user, handle, buf, len)
       Move up to len bytes. Return the count moved (> 0), 0 when the call would block,
       or a negative rsq_result (RSQ_ERR_IO; for recv also when the peer closed).
       RSQ_ERR_TLS when the server ended the TLS session with an alert (a server that
       requires client certificates does so after the handshake when none, or one it
       does not trust, was presented): the client says so and does not retry.
       A blocking transport may block instead of returning 0: it then holds the client's
       deadlines only as far as it enforces timeouts itself.
   wait(user, handle, events, timeout_ms)
       Wait until the handle is ready for `events` (RSQ_WANT_READ | RSQ_WANT_WRITE) or
       timeout_ms passes. RSQ_OK when ready (or on a signal: spurious wake-ups are fine),
       RSQ_ERR_TIMEOUT, or an error. May be NULL for a blocking transport; then calls
       with RSQ_TIMEOUT_NONBLOCK still block inside recv/send.
   fd(user, handle)       descriptor for poll/epoll integration, or -1. May be NULL.
   now_ms(user)           monotonic clock in ms. NULL: the built-in clock (required
                          when RSQ_NO_SOCKETS is defined).
   sleep_ms(user, ms)     pause for backoff. NULL: built-in (with RSQ_NO_SOCKETS: none,
                          retries are then immediate).  */
typedef struct rsq_transport {
    rsq_result (*open)(void *user, const rsq_endpoint *ep, int timeout_ms, void **handle, char *err, size_t errlen);
    long (*send)(void *user, void *handle, const void *buf, size_t len);
    long (*recv)(void *user, void *handle, void *buf, size_t len);
    rsq_result (*wait)(void *user, void *handle, int events, int timeout_ms);
    void (*close)(void *user, void *handle);
    int (*fd)(void *user, void *handle);
    uint64_t (*now_ms)(void *user);
    void (*sleep_ms)(void *user, int ms);
    void *user;
} rsq_transport;

#ifndef RSQ_NO_SOCKETS
/* The built-in transport: TCP (IPv4/IPv6 via getaddrinfo, TCP_NODELAY, keepalive) and
   unix sockets, non-blocking with poll. Returns a pointer to a constant struct. */
RSQDEF const rsq_transport *rsq_socket_transport(void);
#endif

/* ------------------------------------------------------------------------------------ */
// >>url
#define RSQ_HOST_MAX 256
#define RSQ_PATH_MAX 108
#define RSQ_USER_MAX 128
#define RSQ_PASSWORD_MAX 256

/* A parsed URL. Forms:
     redis://[user:password@]host[:port][/db]      host may be [IPv6]; port 6379
     rediss://...                                   the same, over TLS
     unix://[user:password@]/path/to/sock[?db=N][&password=P][&user=U]
   user and password are percent-decoded. An empty user with a password
   (redis://:secret@host) means the default user. The scheme may be in any letter
   case (REDIS://); an IPv6 address needs its brackets (redis://[::1]:6379: without
   them the error says so). */
typedef struct rsq_url {
    int tls;
    int is_unix;
    char host[RSQ_HOST_MAX];
    int port;
    char path[RSQ_PATH_MAX];
    char user[RSQ_USER_MAX];
    char password[RSQ_PASSWORD_MAX];
    int has_password;
    long db;
} rsq_url;

/* Parses `url` into *out. RSQ_OK, or RSQ_ERR_URL with a one-line reason in err (err
   may be NULL; the reason never repeats a password). Thread-safe, allocates nothing. */
RSQDEF rsq_result rsq_url_parse(rsq_url *out, const char *url, char *err, size_t errlen);

/* ------------------------------------------------------------------------------------ */
// >>ids
/* A stream entry ID: milliseconds and sequence ("1700000000000-3"). */
typedef struct rsq_id {
    uint64_t ms;
    uint64_t seq;
} rsq_id;
#define RSQ_ID_STRLEN 42 /* "18446744073709551615-18446744073709551615" + NUL */

/* Parses "MS-SEQ" or "MS" (SEQ 0) from s[0..n). 1 on success, 0 on malformed input. */
RSQDEF int rsq_id_parse(const char *s, size_t n, rsq_id *out);
/* Writes the ID as text into buf (at least RSQ_ID_STRLEN bytes); returns its length. */
RSQDEF size_t rsq_id_format(rsq_id id, char *buf);
/* <0, 0, >0 as a sorts before, equal to, after b. */
RSQDEF int rsq_id_cmp(rsq_id a, rsq_id b);

/* ------------------------------------------------------------------------------------ */
// >>keys
/* The keys of one logical queue share one Redis Cluster hash slot (per shard), so that
   multi-key commands and scripts work on a cluster. Redis hashes only a key's hash
   tag when it has one: the text between the first '{' and the first '}' after it,
   if that text is not empty; otherwise the whole key. For a queue named Q:
     shard 0, level 0 (the default stream) ... Q (exactly the name given, so that any
                                               client can XADD to it)
     priority level k > 0 .................... {Q}:p<k>
     dead letters ............................ {Q}:dlq
     reserved for delayed delivery ........... {Q}:delayed (RSQ_KEY_DELAYED: nothing
                                               writes it yet; rsq_nack with a delay
                                               parks the entry in its own stream, on
                                               the pseudo-consumer "rsq:delayed")
     shard s > 0 (its own tag) ............... {Q:s<s>}, then {Q:s<s>}:p<k>, ...
   If Q already holds a hash tag ("{orders}.eu"), it is kept: {orders}.eu:p1, and
   shards become {orders:s1}.eu. Higher priority levels are more urgent.
   A name without a hash tag that holds a '}' ("}{", "{}x", "a}b") is refused: no tag
   could hold the whole name (a tag ends at its first '}'), so its derived keys could
   not share its slot. Give such a name a tag ("{a}b" -> tag "a"). */
typedef enum rsq_key_kind {
    RSQ_KEY_STREAM = 0,
    RSQ_KEY_DEAD_LETTER,
    RSQ_KEY_DELAYED    /* reserved (see above); rsq_producer_init checks that it fits  */
} rsq_key_kind;
#define RSQ_KEY_MAX 512
#define RSQ_MAX_PRIORITIES 16
#define RSQ_MAX_SHARDS 1024

/* Writes the key of `kind` for (shard, level) of queue into out (cap bytes). Returns
   the key length, or 0 when the arguments are out of range, the name is refused (see
   above) or the key is longer than cap - 1. Thread-safe; allocates nothing. */
RSQDEF size_t rsq_queue_key(char *out, size_t cap, const char *queue, int shard, int level, rsq_key_kind kind);

/* ------------------------------------------------------------------------------------ */
// >>connection
#define RSQ_RETRY_FOREVER (-1)
#define RSQ_NAME_MAX 128
#define RSQ_ERR_MAX 256

/* Time bounds. Every wait for the network has a limit, a frozen server included:
   connect_timeout_ms for a TCP connect and again for the handshake's replies,
   io_timeout_ms for writing a command and reading its reply (a blocking read: its
   BLOCK time + block_margin_ms), the call's own timeout where it takes one (rsq_flush,
   rsq_read_reply; rsq_consumer_next: timeout + block_margin_ms for the whole call).
   Retry loops pause at most retry_max_ms between at most retry_attempts attempts and
   never start over because a reconnect inside them gave up: a call that must connect
   to a server that does not answer returns within
   retry_attempts * (2 * connect_timeout_ms + retry_max_ms). */

/* Client configuration. Zero means default for every field. Strings are copied. */
typedef struct rsq_client_config {
    const char *url;            /* server; default "redis://127.0.0.1:6379"               */
    const char *name;           /* CLIENT SETNAME on every connect; default none. Refused
                                   (ACL, renamed): skipped, logged once (cosmetic)         */
    int protocol;               /* 2 (default) or 3 (HELLO 3: RESP3 replies)              */
    int connect_timeout_ms;     /* per connect attempt; default 5000                      */
    int io_timeout_ms;          /* deadline of one command's write + read; default 10000  */
    int block_margin_ms;        /* added to a BLOCK time for the read deadline; 2000      */
    int retry_base_ms;          /* first reconnect/backoff delay; default 50              */
    int retry_max_ms;           /* backoff cap; default 5000                              */
    int retry_attempts;         /* attempts per operation; default 10; RSQ_RETRY_FOREVER  */
    rsq_limits limits;          /* reply limits; see rsq_limits                           */
    rsq_allocator allocator;    /* default RSQ_MALLOC/RSQ_REALLOC/RSQ_FREE                */
    rsq_logger logger;          /* default: no logging                                    */
    const rsq_transport *transport; /* default rsq_socket_transport(); required with
                                       RSQ_NO_SOCKETS                                      */
} rsq_client_config;

/* Counters, for metrics and tests. */
typedef struct rsq_client_stats {
    uint64_t connects;       /* successful connects, including the first            */
    uint64_t reconnects;     /* successful connects after a lost connection          */
    uint64_t commands;       /* commands written                                     */
    uint64_t replies;        /* replies read                                         */
    uint64_t bytes_out, bytes_in;
    uint64_t server_retries; /* backoffs on LOADING/BUSY/TRYAGAIN/MASTERDOWN/READONLY */
} rsq_client_stats;

/* One connection to a server (private). */
typedef struct rsq__node {
    void *handle;
    int connected, written, port;
    rsq_reader rd;
    char *wbuf;
    size_t wlen, wcap, wsent;
    size_t pending;            /* replies owed by the server */
    int stale;                 /* it said READONLY/MASTERDOWN: reconnect before writing */
    char host[RSQ_HOST_MAX];   /* cluster nodes; the first connection uses the URL */
} rsq__node;

/* A client: one logical connection with reconnect. Private fields. */
typedef struct rsq_client {
    rsq_url url;
    char name[RSQ_NAME_MAX];
    int protocol, connect_timeout_ms, io_timeout_ms, block_margin_ms;
    int retry_base_ms, retry_max_ms, retry_attempts;
    rsq_limits limits;
    rsq_allocator alloc;
    rsq_logger log;
    rsq_transport tp;
    rsq__node node;          /* the connection, or in a cluster the first contact */
    /* Redis Cluster, entered when the server redirects (MOVED/ASK/CROSSSLOT) */
    int cluster, cluster_seen, map_stale, nnodes;
    rsq__node *nodes;        /* one connection per master */
    size_t nodes_cap;
    uint16_t *slots;         /* slot -> index into nodes + 1; 0 unknown */
    uint16_t *order;         /* the node of each reply owed, oldest first (a ring) */
    size_t order_head, order_len, order_cap;
    int initialized, ever_connected;
    int name_refused;        /* CLIENT SETNAME was refused: not sent again (cosmetic) */
    uint32_t epoch;          /* bumps on every lost connection */
    int written_lost;        /* a connection written to closed before a WAIT covered it */
    int connect_failed;      /* the last rsq_connect gave up: its retries are spent      */
    long server_version;     /* major*10000 + minor*100 + patch; 0 = unknown */
    uint64_t rng;
    rsq_client_stats stats;
    volatile int *intr;      /* a consumer's stop flag: reconnects and backoffs give up */
    int intr_wait;           /* ... and so does the current wait (a BLOCK read)       */
    uint64_t call_deadline;  /* set by a call with a timeout: no wait goes past it; 0 none */
    char err[RSQ_ERR_MAX];
    char why[RSQ_ERR_MAX];      /* scratch: an error text being wrapped in another      */
} rsq_client;

/* Zeroes *cfg (all defaults). */
RSQDEF void rsq_client_config_init(rsq_client_config *cfg);

/* Prepares a client: applies defaults, parses the URL, copies strings. Does not
   connect (the first command does, or rsq_connect). `cfg` may be NULL (defaults).
   Returns RSQ_OK, RSQ_ERR_URL or RSQ_ERR_ARG with the reason in rsq_errstr(c).
   Even on failure, rsq_errstr(c) works and rsq_client_free(c) is safe.
   Blocks: never (no I/O). Memory: allocates nothing until the first command. */
RSQDEF rsq_result rsq_client_init(rsq_client *c, const rsq_client_config *cfg);

/* Closes the connection and releases all memory. Safe on a zeroed client.
   Blocks: never (closing does not wait). */
RSQDEF void rsq_client_free(rsq_client *c);

/* Connects now (if not connected), with the configured retries and backoff, and runs
   the handshake: HELLO 3 (protocol 3), AUTH, CLIENT SETNAME, SELECT. Blocks up to the
   connect timeout per attempt. Authentication and permission errors are not retried;
   a refused CLIENT SETNAME (ACL, or CLIENT renamed away) is skipped and logged once
   (RSQ_LOGI_NAME_SKIPPED): the name is cosmetic.
   Returns RSQ_OK or the last attempt's error (text in rsq_errstr).
   Blocks: up to retry_attempts * (2 * connect_timeout_ms + retry_max_ms).
   Errors: RSQ_ERR_CONNECT/TIMEOUT/RESOLVE/IO after the retries, RSQ_ERR_AUTH,
   RSQ_ERR_NOPERM, RSQ_ERR_TLS, RSQ_ERR_UNSUPPORTED (no HELLO 3), RSQ_STOPPED.
   Redis: HELLO, AUTH, CLIENT SETNAME, SELECT. */
RSQDEF rsq_result rsq_connect(rsq_client *c);

/* Closes the connection; the next command reconnects. Discards unread replies. */
RSQDEF void rsq_disconnect(rsq_client *c);

/* 1 when a connection is up (as far as the client knows), else 0. */
RSQDEF int rsq_is_connected(const rsq_client *c);

/* Text of the error of the last call on this client that failed, or "" once a later
   call has succeeded (or returned RSQ_EMPTY): every command (rsq_command...) and the
   first append of a pipeline start from "". In a pipeline, each failing
   rsq_read_reply sets it and a succeeding one leaves it. Valid until the next call.
   Memory: the client's buffer, never NULL (or a static text for a NULL client). */
RSQDEF const char *rsq_errstr(const rsq_client *c);

/* Event-loop integration: the connection's descriptor (-1 when not connected or when
   the transport has none) and what the client waits for (RSQ_WANT_READ/WRITE bits).
   Blocks: never. */
RSQDEF int rsq_client_fd(const rsq_client *c);
RSQDEF int rsq_client_wants(const rsq_client *c);

/* Copies the client's counters. */
RSQDEF void rsq_client_get_stats(const rsq_client *c, rsq_client_stats *out);

/* ------------------------------------------------------------------------------------ */
// >>cluster
/* Redis Cluster. The client needs no setting for it: the first MOVED, ASK or
   CROSSSLOT reply switches it to cluster mode, where it loads the slot map (CLUSTER
   SLOTS), keeps one connection per master, sends each command to the master of its
   key's slot (pipelines may span masters; replies still come back in order), follows
   MOVED (updating the map) and ASK (ASKING, then the command), backs off on
   TRYAGAIN/CLUSTERDOWN, and reloads the map after a lost connection (failover).
   Commands without a key go to any master. Multi-key commands must stay within one
   slot: the keys of one queue share a hash tag (see rsq_queue_key). The event-loop
   calls (rsq_client_fd, rsq_consumer_step, rsq_publish_async) serve one connection
   and are for standalone servers. */
/* 1 once the client runs in cluster mode, else 0. */
RSQDEF int rsq_client_is_cluster(const rsq_client *c);
/* The cluster hash slot (0..16383) of a key: CRC16 of the key or of its {hash tag}.
   Blocks: never. Threads: thread-safe. */
RSQDEF int rsq_key_slot(const char *key, size_t len);

/* ------------------------------------------------------------------------------------ */
// >>commands
/* Runs one command and waits for its reply. `argv` holds argc arguments of the given
   lengths (`lens` may be NULL for C strings); binary-safe. On RSQ_OK *reply points to
   the reply (valid until the next call on c). A server error reply returns its class
   (RSQ_ERR_SERVER, RSQ_ERR_WRONGTYPE, ...) with *reply set to it and the text in
   rsq_errstr; the connection stays usable. Connects first if needed. Retry-class
   errors (LOADING, BUSY, TRYAGAIN, MASTERDOWN, READONLY), which the server sends
   instead of running a command, back off and retry within retry_attempts. Not for
   scripts (EVAL, EVALSHA, FCALL and their _RO forms): a script's error reply may be
   its own (redis.error_reply), after it ran, whatever its first word; it is final,
   RSQ_ERR_SERVER, never sent again. After READONLY or MASTERDOWN (the node changed
   role: a failover) the retry goes over a new connection, to the address looked up
   again. A connection the server closed while idle (its timeout, CLIENT KILL) is
   noticed before writing: the command goes once, over a new connection. A connection
   lost after the command was written is not retried (it may have run): RSQ_ERR_IO,
   and the next call reconnects. "ERR max number of clients reached", whenever it
   comes (the server sends it on accept, reads nothing and closes), is a refused
   connection: back off, reconnect, send again; RSQ_ERR_CONNECT once the retries are
   spent. Must not be called while pipelined replies are unread (RSQ_ERR_STATE).
   Blocks up to io_timeout_ms per attempt (see "Time bounds" above).
   Memory: *reply lives in the client's read buffer until the next call on c.
   Redis: whatever argv says; redis.io/commands for its reply. */
RSQDEF rsq_result rsq_command_argv(rsq_client *c, const rsq_reply **reply, int argc,
                                   const char *const *argv, const size_t *lens);

/* rsq_command_argv with C-string arguments, ended by a null pointer: (char *)0.
   At most 64 arguments. */
RSQDEF rsq_result rsq_command(rsq_client *c, const rsq_reply **reply, const char *arg0, ...);

/* Pipelining: append commands (nothing is sent until the buffer passes RSQ_FLUSH_AT
   bytes or rsq_flush), then read their replies in order with rsq_read_reply.
   Appending connects first if needed. Returns RSQ_OK, RSQ_ERR_ARG, RSQ_ERR_NOMEM, or
   a connect error. Allocation-free once the buffer has grown.
   Blocks: only to connect, or to write once the buffer passes RSQ_FLUSH_AT (up to
   io_timeout_ms). Memory: arguments are copied; they may be freed on return. */
RSQDEF rsq_result rsq_append_argv(rsq_client *c, int argc, const char *const *argv, const size_t *lens);
RSQDEF rsq_result rsq_append(rsq_client *c, const char *arg0, ...);

/* Writes everything appended. timeout_ms: RSQ_TIMEOUT_DEFAULT, RSQ_TIMEOUT_NONBLOCK
   (returns RSQ_AGAIN if bytes remain), a number of ms, or RSQ_TIMEOUT_FOREVER.
   Blocks: up to timeout_ms. Errors: RSQ_ERR_IO/TIMEOUT (the connection is closed). */
RSQDEF rsq_result rsq_flush(rsq_client *c, int timeout_ms);

/* Reads the next pipelined reply (flushing first). Results as for rsq_command_argv,
   plus RSQ_AGAIN in non-blocking use and RSQ_ERR_STATE when no reply is owed.
   A timeout or transport error with replies still owed closes the connection (the
   stream would be out of step) and returns RSQ_ERR_TIMEOUT / RSQ_ERR_IO; a protocol
   or limit error does the same.
   Blocks: up to timeout_ms (RSQ_TIMEOUT_DEFAULT: io_timeout_ms).
   Memory: *reply lives in the client's read buffer until the next call on c. */
RSQDEF rsq_result rsq_read_reply(rsq_client *c, const rsq_reply **reply, int timeout_ms);

/* Replies owed by the server for commands appended so far. */
RSQDEF size_t rsq_pending_replies(const rsq_client *c);

/* Server version as major*10000 + minor*100 + patch (70015 for 7.0.15), fetched with
   INFO server (its redis_version) once per connection; when INFO is refused, from
   HELLO's "version". The Redis version the server is compatible with, which is what
   rsq's feature checks need: Valkey reports redis_version 7.2.4 in INFO (70204; its
   own release, 9.1.2 say, is INFO's valkey_version and HELLO's version).
   Returns RSQ_OK and sets *version, or an error.
   Blocks: one round trip when not known for this connection (two when INFO is
   refused), each within io_timeout_ms.
   Errors: RSQ_ERR_UNSUPPORTED when INFO and HELLO are both refused; link errors.
   Redis: INFO server, else HELLO. */
RSQDEF rsq_result rsq_server_version(rsq_client *c, long *version);

/* ------------------------------------------------------------------------------------ */
/* Where a new consumer group starts (rsq_group_create, rsq_consumer_config.start). */
#define RSQ_START_NEW "$"   /* only entries added after the group is created           */
#define RSQ_START_ALL "0"   /* the whole history (default: nothing published before the
                               first consumer is lost)                                   */

#ifndef RSQ_NO_ADMIN
// >>metrics
typedef struct rsq_consumer_info {
    char name[RSQ_NAME_MAX];
    long long pending;  /* entries it holds */
    long long idle_ms;  /* since its last attempted interaction */
} rsq_consumer_info;

/* Pending entries looked at for rsq_group_info.oldest_pending_age_ms. */
#define RSQ_AGE_SAMPLE 32

typedef struct rsq_group_info {
    char name[RSQ_NAME_MAX];     /* cut to RSQ_NAME_MAX - 1 bytes if longer               */
    long long consumers;
    long long pending;           /* delivered, not yet acknowledged                      */
    long long lag;               /* entries after last_delivered: what the group has yet
                                    to read (0: its next read is empty). Counted by rsq,
                                    not taken from the server (whose figure counts
                                    deleted entries). -1 when unknown (see
                                    rsq_stream_stats)                                    */
    int lag_exact;               /* 0: lag is a lower bound (counting stops past 10000)
                                    or unknown                                           */
    rsq_id last_delivered;
    rsq_id oldest_pending;       /* lowest pending ID; 0-0 when nothing is pending        */
    long long oldest_pending_age_ms; /* the longest idle time, in ms since its last
                                    delivery (XPENDING's idle), among the group's
                                    RSQ_AGE_SAMPLE lowest-ID pending entries: exact when
                                    pending <= RSQ_AGE_SAMPLE, else a lower bound (later
                                    entries are usually delivered later). 0 when nothing
                                    is pending                                           */
} rsq_group_info;

typedef struct rsq_stream_info {
    int exists;
    long long length;
    rsq_id first_id, last_id;    /* 0-0 when empty */
    rsq_id last_generated_id;
    long long groups;            /* number of groups (may exceed what fit in the array) */
    int ends_known;              /* 1: first_id, last_id and last_generated_id are known.
                                    0 only without scripting, when an entry at an end of
                                    the stream exceeds the client's reply limits        */
} rsq_stream_info;

/* Stream metrics and, in groups[0..cap), per-group metrics (*ngroups receives how many
   were written; groups may be NULL with cap 0). A missing stream gives RSQ_OK with
   info->exists = 0. Entry bodies never cross the network (an entry may exceed this
   client's reply limits): a short read-only script (EVAL) reads the stream's ends and
   counts lag on the server. Without scripting (disabled, renamed, denied) XINFO
   STREAM and XRANGE are used instead; an entry over the reply limits then leaves what
   it hides unknown (ends_known 0, lag -1), never wrong. Cost: two round trips (the
   script, XINFO GROUPS) and one pipelined batch: per group an XPENDING of up to
   RSQ_AGE_SAMPLE entries when it has pending entries, and a count script when it lags
   and the count is not evident; it grows with groups, not with entries. Blocks.
   Errors: RSQ_ERR_WRONGTYPE, RSQ_ERR_NOPERM, link errors; info is zeroed first.
   Memory: everything is copied into info and groups. Redis: EVAL (a read-only
   script), XINFO GROUPS, XPENDING; without scripting XINFO STREAM, XLEN, XRANGE. */
RSQDEF rsq_result rsq_stream_stats(rsq_client *c, const char *stream, rsq_stream_info *info,
                                   rsq_group_info *groups, size_t cap, size_t *ngroups);
/* Consumers of a group: *n receives how many the group has, and the first
   min(*n, cap) of them are written to out (call with cap 0 to learn the count). A
   name longer than RSQ_NAME_MAX - 1 bytes is cut to fit.
   Blocks: one round trip. Errors: RSQ_ERR_NOGROUP (no such stream or group).
   Memory: copied into out. Redis: XINFO CONSUMERS. */
RSQDEF rsq_result rsq_group_consumers(rsq_client *c, const char *stream, const char *group,
                                      rsq_consumer_info *out, size_t cap, size_t *n);
/* Deletes consumers idle for at least min_idle_ms that hold nothing, any number of
   them, in one short server-side script (atomic: a consumer that picks up entries is
   never deleted with them). Needs scripting (EVAL): without it RSQ_ERR_UNSUPPORTED
   (RSQ_ERR_NOPERM when an ACL denies EVAL) with a text that says so. *retired (may
   be NULL) receives how many were deleted.
   Blocks: one round trip; never sent twice (its count is not idempotent).
   Redis: EVAL (XINFO CONSUMERS, XGROUP DELCONSUMER). */
RSQDEF rsq_result rsq_retire_idle_consumers(rsq_client *c, const char *stream, const char *group,
                                            long long min_idle_ms, int *retired);
/* 1 when the group is falling behind: pending > max_pending, or lag > max_lag, or
   oldest_pending_age_ms > max_age_ms. A threshold <= 0 is not checked.
   Blocks: never (no I/O). Threads: thread-safe. */
RSQDEF int rsq_group_behind(const rsq_group_info *g, long long max_pending, long long max_lag, long long max_age_ms);

/* ------------------------------------------------------------------------------------ */
// >>admin
/* Safe retention: trims from `stream` only entries that every consumer group has
   delivered and acknowledged. Per group the bound is its oldest pending entry, or,
   with nothing pending, the entry after its last-delivered ID; a group that has never
   read holds everything; a stream without groups is not trimmed. Applied with XTRIM
   MINID (exact when `exact`). *trimmed (may be NULL) receives the number of entries
   removed. Caveat: a group created at an older ID while this runs may miss entries.
   Blocks: two round trips plus one pipelined batch (io_timeout_ms each).
   Errors: RSQ_ERR_UNSUPPORTED before Redis 6.2 (no XTRIM MINID), nothing trimmed.
   Redis: XINFO GROUPS, XPENDING, XTRIM ... MINID. */
RSQDEF rsq_result rsq_trim_safe(rsq_client *c, const char *stream, int exact, long long *trimmed);
/* Lossy trims, on demand.
   Blocks: one round trip. rsq_trim_maxlen(c, stream, 0, 1, NULL) empties a stream,
   keeping it and its groups. Errors: RSQ_ERR_UNSUPPORTED for MINID before Redis 6.2.
   Redis: XTRIM ... MAXLEN / MINID. */
RSQDEF rsq_result rsq_trim_maxlen(rsq_client *c, const char *stream, long long maxlen, int exact, long long *trimmed);
RSQDEF rsq_result rsq_trim_minid(rsq_client *c, const char *stream, rsq_id minid, int exact, long long *trimmed);

/* Group start positions. */

/* Creates group on stream (and the stream, empty, if missing) starting at `start`
   (RSQ_START_ALL, RSQ_START_NEW or an entry ID; NULL = RSQ_START_ALL). Idempotent: an
   existing group (BUSYGROUP) is success and keeps its position.
   Blocks: one round trip. Redis: XGROUP CREATE ... MKSTREAM. */
RSQDEF rsq_result rsq_group_create(rsq_client *c, const char *stream, const char *group, const char *start);
/* Destroys a group and its pending list. *existed (may be NULL) is 1 if it existed.
   Blocks: one round trip. Redis: XGROUP DESTROY. */
RSQDEF rsq_result rsq_group_destroy(rsq_client *c, const char *stream, const char *group, int *existed);
/* Creates an empty stream if it does not exist.
   Blocks: two round trips. Redis: XGROUP CREATE ... MKSTREAM, XGROUP DESTROY. */
RSQDEF rsq_result rsq_stream_create(rsq_client *c, const char *stream);
/* Deletes the stream with its groups.
   Blocks: one round trip. Redis: DEL. */
RSQDEF rsq_result rsq_stream_delete(rsq_client *c, const char *stream);
/* *exists = 1 when the key holds a stream, 0 when missing; RSQ_ERR_WRONGTYPE if the
   key holds another type.
   Blocks: one round trip. Redis: TYPE. */
RSQDEF rsq_result rsq_stream_exists(rsq_client *c, const char *stream, int *exists);
/* Number of entries (0 for a missing stream).
   Blocks: one round trip. Redis: XLEN. */
RSQDEF rsq_result rsq_stream_length(rsq_client *c, const char *stream, long long *length);

#endif /* RSQ_NO_ADMIN */
/* ------------------------------------------------------------------------------------ */
// >>producer
/* A header: one more field/value pair of the entry beside `payload`. Lengths of 0
   mean strlen(). Names must be 1..255 printable bytes and not "payload". */
typedef struct rsq_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} rsq_field;
#define RSQ_MAX_HEADERS 64

/* Retention applied on publish. Lossy modes drop entries whether or not a group has
   read them: use them only when losing old entries is acceptable. */
typedef enum rsq_trim_mode {
    RSQ_TRIM_NONE = 0, /* keep everything (default)                                    */
    RSQ_TRIM_MAXLEN,   /* LOSSY: keep about the newest `maxlen` entries                 */
    RSQ_TRIM_MINID     /* LOSSY: drop entries with an ID below `minid`                  */
} rsq_trim_mode;

typedef struct rsq_trim {
    rsq_trim_mode mode;
    int exact;         /* 1: exact trim ("="); 0 (default): "~", cheaper, trims less   */
    long long maxlen;  /* RSQ_TRIM_MAXLEN threshold                                    */
    rsq_id minid;      /* RSQ_TRIM_MINID threshold                                     */
    long long limit;   /* LIMIT for "~" trims; 0: the server's default                 */
} rsq_trim;

/* One message to publish. */
typedef struct rsq_outgoing {
    const void *payload;      /* body, stored in the field "payload"; may be NULL if len 0 */
    size_t payload_len;
    const rsq_field *headers; /* further field/value pairs; may be NULL                   */
    size_t header_count;      /* at most RSQ_MAX_HEADERS                                  */
    const char *id;           /* explicit entry ID ("MS-SEQ" or "MS-*"); NULL: "*" (auto) */
    int priority;             /* 0 (default) .. priority_levels-1; higher is more urgent  */
    const char *shard_key;    /* with shards > 1: messages with equal keys share a shard
                                 (per-key order); NULL: round robin                       */
    size_t shard_key_len;     /* 0: strlen(shard_key)                                     */
    const char *idempotency_key; /* publish at most once per key within the producer's
                                 dedup_window_ms: a second publish with the same key adds
                                 nothing and returns the first one's entry ID. NULL: none
                                 (or, with rsq_producer_config.idempotent, a generated
                                 one). At most RSQ_IDEMPOTENCY_KEY_MAX bytes. With shards
                                 > 1 and no shard_key, the key picks the shard.         */
    size_t idempotency_key_len;  /* 0: strlen(idempotency_key)                            */
    long long delay_ms;       /* > 0: scheduled: the entry reaches the stream (every group)
                                 this long from now, by the server's clock               */
    long long deliver_at_ms;  /* > 0: scheduled for this Unix time in ms (server's clock).
                                 A scheduled message waits in the queue's delayed set
                                 ({Q}:delayed) until a consumer's housekeeping adds it;
                                 the publish returns entry ID 0-0; the producer's cap
                                 does not apply; no explicit id or idempotency key      */
} rsq_outgoing;
#define RSQ_IDEMPOTENCY_KEY_MAX 200

typedef struct rsq_producer_config {
    const char *queue;        /* queue name = the stream key of level 0. Required.        */
    int priority_levels;      /* streams per shard, default 1, at most RSQ_MAX_PRIORITIES */
    int shards;               /* default 1, at most RSQ_MAX_SHARDS                        */
    size_t max_payload;       /* default 1 MiB; larger payloads get RSQ_ERR_TOO_LARGE     */
    rsq_trim cap;             /* lossy cap applied by every XADD; default none            */
    int safe_trim_every;      /* run rsq_trim_safe on every stream of the queue after this
                                 many publishes (an after-step, see
                                 rsq_producer_after_step); default 0 (never)              */
    int idempotent;           /* 1: messages without an idempotency_key get one made by
                                 the producer (its number from INCR {Q}:idem:producers
                                 with a random part, then a sequence), so its own resend
                                 after a lost connection never stores a message twice.
                                 Costs about 4x per message (a script, a mark). Default 0 */
    long dedup_window_ms;     /* how long an idempotency key is remembered on the server
                                 (its mark {Q}:idem:k:KEY, or g:... for generated keys,
                                 expires then); default 3,600,000, at most a year         */
    int no_resend;            /* 1: after a lost connection, report unconfirmed publishes
                                 as RSQ_ERR_IO instead of resending them (default 0)      */
    int wait_replicas;        /* after each publish call, WAIT until this many replicas
                                 have the writes (each master written to); fewer within
                                 wait_timeout_ms is an after-step failure: the call still
                                 returns RSQ_OK, rsq_producer_after_step gives
                                 RSQ_ERR_REPLICAS (the messages are published, but a
                                 failover now could lose them). WAIT covers only its own
                                 connection's writes: when a connection written to since
                                 the last WAIT was lost (mid-batch, say, with the rest
                                 resent on a new one), RSQ_ERR_REPLICAS too. 0: off     */
    int wait_timeout_ms;      /* default 1000                                           */
} rsq_producer_config;

/* Counters of a producer (rsq_producer_get_stats). */
typedef struct rsq_producer_stats {
    uint64_t published;       /* messages confirmed: stored with an entry ID, found stored
                                 before (deduplicated) or scheduled (ID 0-0)              */
    uint64_t resent;          /* publishes sent again after a lost connection (each may be
                                 stored twice: at-least-once)                             */
    size_t inflight;          /* confirmations outstanding from rsq_publish_async         */
    uint64_t after_failures;  /* after-steps (WAIT, safe trim) failed since init          */
    uint64_t deduplicated;    /* publishes with an idempotency key seen before: nothing
                                 was added, the first entry's ID was returned            */
    uint64_t scheduled;       /* messages put in the delayed set (delay_ms, deliver_at_ms) */
} rsq_producer_stats;

/* Producer state (private fields). Uses the client; one producer per client at a time
   is the simple rule, though several may share one as long as calls do not overlap. */
typedef struct rsq_producer {
    rsq_client *c;
    char queue[RSQ_KEY_MAX];
    int levels, shards;
    size_t max_payload;
    rsq_trim cap;
    int safe_trim_every, resend, wait_replicas, wait_timeout_ms;
    char key[RSQ_KEY_MAX];       /* scratch for derived keys (keeps stack frames small) */
    const char *argv[20 + 2 * RSQ_MAX_HEADERS]; /* scratch for one XADD's arguments    */
    size_t lens[20 + 2 * RSQ_MAX_HEADERS];
    char idem[RSQ_KEY_MAX];      /* scratch: the idempotency key on the server            */
    char ik[RSQ_IDEMPOTENCY_KEY_MAX + 48]; /* scratch: a message's idempotency key       */
    uint64_t since_trim;
    uint32_t rr;
    uint64_t published, resent, deduplicated, scheduled;
    int idempotent;
    long dedup_window_ms;
    char idem_prefix[32];        /* generated keys: this prefix, then a sequence number    */
    uint64_t idem_seq;
    size_t inflight;
    rsq_result async_first;      /* the first refusal since the last after-steps (async)  */
    uint64_t after_failures;     /* after-steps failed since init                         */
    rsq_result after_rc;         /* the last publish call's after-steps                   */
    char after_err[RSQ_ERR_MAX];
} rsq_producer;

/* Zeroes *cfg. */
RSQDEF void rsq_producer_config_init(rsq_producer_config *cfg);
/* Prepares a producer on client c (which it uses but does not own). Validates the
   config: RSQ_OK or RSQ_ERR_ARG with the reason in rsq_errstr(c). No I/O.
   Blocks: never. Memory: the queue name is copied. */
RSQDEF rsq_result rsq_producer_init(rsq_producer *p, rsq_client *c, const rsq_producer_config *cfg);

/* Publishes one payload at level 0 with an automatic ID. *id_out (may be NULL)
   receives the entry ID. Blocks up to the client's io timeout per attempt; after a lost
   connection it reconnects and resends (at-least-once: if the first write did reach
   the server, the message is stored twice). Results: RSQ_OK; RSQ_ERR_TOO_LARGE or
   RSQ_ERR_ARG (nothing sent); a server error (WRONGTYPE, NOPERM...); a network error
   once the retries are spent.
   Redis: XADD (WAIT, and the safe trim's commands, as after-steps). */
RSQDEF rsq_result rsq_publish(rsq_producer *p, const void *payload, size_t len, rsq_id *id_out);
/* After-steps. Once a publish call's messages are all written, the producer may WAIT
   for replicas (wait_replicas) and trim safely (safe_trim_every). Their failure does
   not change the call's result (RSQ_OK with the IDs: the messages are published); it
   is logged (RSQ_LOGI_AFTER_STEP, level WARN), counted, and kept until the next
   publish call. Returns the result of the last publish call's after-steps: RSQ_OK
   when they succeeded or none ran, else the first failure (RSQ_ERR_REPLICAS, or the
   trim's error); *text (may be NULL) receives its text ("" with RSQ_OK), *failures
   (may be NULL) the number of failed after-steps since rsq_producer_init.
   Blocks: never. Memory: *text lives in the producer until its next publish call. */
RSQDEF rsq_result rsq_producer_after_step(const rsq_producer *p, const char **text, uint64_t *failures);
/* Publishes one message with headers, explicit ID, priority, shard key or idempotency
   key. With an idempotency key (or a generated one: rsq_producer_config.idempotent)
   the message is stored at most once per key within dedup_window_ms: a repeat returns
   the first entry's ID with RSQ_OK and adds nothing (rsq_producer_stats.deduplicated).
   The first publish of an idempotent producer asks the server for the producer's
   number (one round trip, once).
   Blocks and errors: as rsq_publish; RSQ_ERR_ARG for a key of 0 or more than
   RSQ_IDEMPOTENCY_KEY_MAX bytes; RSQ_ERR_NOPERM when EVAL is denied.
   Redis: XADD; with a key EVAL (GET, XADD, SET ... PX in one script) and, once, INCR. */
RSQDEF rsq_result rsq_publish_msg(rsq_producer *p, const rsq_outgoing *m, rsq_id *id_out);
/* Publishes n messages in one pipelined write. ids[i] and results[i] (each array may
   be NULL) receive each message's ID and result; one message's server error does not
   stop the others. All messages are validated before anything is sent. After a lost
   connection the unconfirmed tail is resent (see rsq_publish). Returns RSQ_OK when all
   succeeded, else the first failure. Allocation-free once the client is warm.
   Blocks: one write and the confirmations (io_timeout_ms per attempt), the retry pass
   and the after-steps. Redis: XADD per message, pipelined. */
RSQDEF rsq_result rsq_publish_batch(rsq_producer *p, const rsq_outgoing *msgs, size_t n, rsq_id *ids, rsq_result *results);

/* Event loops (poll, epoll, a firmware superloop): publishing without waiting.
   rsq_publish_async validates the messages, queues their XADDs and writes what the
   socket takes now; wait on rsq_client_fd() for rsq_client_wants() and collect the
   confirmations with rsq_publish_poll, which never waits. Connecting, when needed,
   still blocks. One asynchronous user per client: do not mix with blocking calls on
   the same client while confirmations are outstanding.
   Blocks: only to connect. Errors: as rsq_publish_batch's validation (nothing is
   sent), a connect error, or a link error while writing. Redis: XADD, pipelined. */
RSQDEF rsq_result rsq_publish_async(rsq_producer *p, const rsq_outgoing *msgs, size_t n);
/* Confirmations that have arrived, oldest first: up to cap into ids/results (either
   may be NULL); *got receives how many. RSQ_OK (possibly with *got = 0). On a link
   error (RSQ_ERR_IO, RSQ_ERR_TIMEOUT...) the confirmations still outstanding are lost
   with the connection: rsq_producer_get_stats's inflight told how many before the
   call; publish those messages again (at-least-once).
   Once it has collected the last confirmation outstanding, and all since the last
   after-steps were RSQ_OK, it runs the after-steps as rsq_publish_batch does (WAIT
   for wait_replicas, the safe trim every safe_trim_every messages): those block (WAIT
   up to wait_timeout_ms) and their failure is kept for rsq_producer_after_step.
   Blocks: never otherwise. */
RSQDEF rsq_result rsq_publish_poll(rsq_producer *p, rsq_id *ids, rsq_result *results, size_t cap, size_t *got);
/* Copies the producer's counters: published, resent, confirmations outstanding from
   rsq_publish_async (publish those again after a link error: at-least-once), failed
   after-steps. Never blocks; allocates nothing. */
RSQDEF void rsq_producer_get_stats(const rsq_producer *p, rsq_producer_stats *out);

/* ------------------------------------------------------------------------------------ */
// >>consumer
/* A delivered message. Views into the consumer's batch buffer: valid until the batch
   is refilled, which is never before the next rsq_consumer_next call returns (and, in
   rsq_consumer_run, until the handler returns). Strings are NUL-terminated. */
typedef struct rsq_message {
    rsq_id id;
    char id_str[RSQ_ID_STRLEN];
    const char *stream;          /* the stream key it came from                        */
    size_t stream_len;
    int priority, shard;         /* which of the queue's streams                        */
    const rsq_field *fields;     /* every field of the entry, in order                  */
    size_t field_count;
    const char *payload;         /* the "payload" field's value, or NULL if absent      */
    size_t payload_len;
    long long deliveries;        /* times delivered to a handler, this one included: the
                                    server's delivery count (XPENDING), the same number a
                                    dead letter records. Never counts a delivery that did
                                    not reach a handler; after a crash it may count one
                                    short (see DELIVERY, IN SHORT)                        */
    /* private */
    int sidx, skip;
    size_t f0, payload_field;
    long long carried;           /* a retry's deliveries before its entry (rsq-deliveries) */
} rsq_message;

/* What a handler asks for. */
typedef enum rsq_action {
    RSQ_ACTION_ACK = 0,          /* done: acknowledge                                   */
    RSQ_ACTION_RETRY,            /* redeliver now (to this consumer, delivery count + 1) */
    RSQ_ACTION_RETRY_LATER,      /* redeliver after the retry delay, to any consumer    */
    RSQ_ACTION_DEAD_LETTER       /* move to the dead-letter stream now                  */
} rsq_action;

typedef struct rsq_consumer rsq_consumer;
/* Handler for rsq_consumer_run. It may call rsq_extend (long work),
   rsq_consumer_set_error (text kept with a dead letter) and rsq_consumer_retry_delay
   (for RSQ_ACTION_RETRY_LATER) on `cons`, and rsq_consumer_stop. */
typedef rsq_action (*rsq_handler)(void *user, rsq_consumer *cons, const rsq_message *m);

typedef enum rsq_reclaim_mode {
    RSQ_RECLAIM_AUTO = 0,        /* XAUTOCLAIM on Redis >= 6.2, else XPENDING + XCLAIM  */
    RSQ_RECLAIM_AUTOCLAIM,
    RSQ_RECLAIM_PENDING_CLAIM,
    RSQ_RECLAIM_OFF              /* never take over other consumers' entries (entries
                                    nacked with a delay still come back: XPENDING of the
                                    pseudo-consumer "rsq:delayed" + XCLAIM)             */
} rsq_reclaim_mode;

typedef struct rsq_consumer_config {
    const char *queue;           /* queue name (see rsq_queue_key). Required.           */
    const char *group;           /* consumer group. Required.                           */
    const char *name;            /* consumer name; default "<hostname>-<pid>", the same
                                    for every consumer of a process: give each consumer
                                    of one group in one process its own name. Give a
                                    stable name to resume own pending entries on restart.
                                    With RSQ_NO_SOCKETS the default is "rsq-" and a
                                    number from the tick count and the client's address:
                                    the same on every unit of one firmware image, so
                                    firmware must name its consumers (a unique ID)      */
    int count;                   /* prefetch per read, default 16                       */
    int block_ms;                /* longest wait in one blocking read, default 5000     */
    int visibility_ms;           /* entries idle this long on another consumer are
                                    reclaimed; default 30000                            */
    int reclaim_interval_ms;     /* how often to look for them; default visibility/2,
                                    at least 100                                        */
    int max_deliveries;          /* more deliveries than this -> dead letter; default 10;
                                    -1: never dead-letter                               */
    int retry_delay_ms;          /* first delay of RSQ_ACTION_RETRY_LATER (the backoff's
                                    base), default 1000. Delivery n waits retry_delay_ms
                                    * retry_factor^(n-1), at most retry_max_ms, give or
                                    take retry_jitter_pct percent (see rsq_nack for
                                    delays longer than visibility_ms)                   */
    double retry_factor;         /* default 2.0; 1.0: the same delay every time          */
    int retry_max_ms;            /* default 3,600,000 (an hour)                          */
    int retry_jitter_pct;        /* default 10; -1: none                                 */
    int due_check_ms;            /* how often this consumer moves due delayed entries
                                    (retries longer than visibility_ms, scheduled
                                    publishes) back to their streams; default 1000      */
    int ack_interval_ms;         /* acks of handled messages go out at the latest this
                                    long after handling (with the next read, or on their
                                    own); default 1000, at most visibility_ms / 4. Also:
                                    prefetched messages not yet handed out have their
                                    lease renewed once they wait visibility_ms / 2       */
    const char *dead_letter;     /* dead-letter stream; default {queue}:dlq (per shard)  */
    const char *start;           /* where a new group starts: RSQ_START_ALL ("0", the
                                    default: nothing published before the first consumer
                                    is lost), RSQ_START_NEW ("$") or an entry ID. A group
                                    lost later (FLUSHALL, DEL, XGROUP DESTROY) is made
                                    again at the last entry ID this consumer read from
                                    that stream, or at "0" (nothing written after the
                                    loss is skipped)                                     */
    int priority_levels;         /* default 1 (see rsq_producer_config)                 */
    int shards;                  /* default 1                                           */
    rsq_reclaim_mode reclaim;    /* default RSQ_RECLAIM_AUTO                            */
} rsq_consumer_config;

typedef struct rsq_consumer_stats {
    uint64_t delivered;          /* messages handed out                                  */
    uint64_t acked, nacked, dead_lettered;
    uint64_t reclaimed;          /* taken over from stalled consumers                    */
    uint64_t resumed;            /* entries handed out from this consumer's own pending
                                    list: after a (re)start or reconnect, and every
                                    reclaimed entry (reclaim moves them there first)    */
    uint64_t deleted;            /* pending entries found deleted from the stream        */
    uint64_t groups_recreated;
    uint64_t delayed;            /* retries sent to the delayed set (longer than the lease) */
    uint64_t promoted;           /* due delayed entries this consumer moved back         */
} rsq_consumer_stats;

/* private per-stream state */
typedef struct rsq__cstream {
    size_t key_off, dlq_off, delayed_off; /* keys: the stream, its dead letters, its
                                    shard's delayed set                                 */
    int level, shard, resuming;
    int retry;                   /* the group's retry stream of this shard               */
    rsq_id cursor;               /* resume cursor (own pending entries)                  */
    rsq_id claim;                /* reclaim scan cursor (XAUTOCLAIM, or XPENDING pages)  */
    rsq_id seen;                 /* last entry ID read as new (">") from this stream     */
    rsq_id xr_from;              /* the last read's start (seen then), moved up as its
                                    entries are handed out                              */
    int unseen;                  /* own pending entries after xr_from came from a read
                                    no handler saw (lost link, dropped batch): their
                                    count is set back to 0 before they are handed out   */
} rsq__cstream;

/* Consumer state. Private fields. */
struct rsq_consumer {
    rsq_client *c;
    char group[RSQ_NAME_MAX], name[RSQ_NAME_MAX], start[RSQ_ID_STRLEN];
    int count, block_ms, visibility_ms, reclaim_interval_ms, max_deliveries, retry_delay_ms;
    int ack_interval_ms, retry_max_ms, retry_jitter_pct, due_check_ms, due_off;
    double retry_factor;
    uint64_t next_due;                   /* when the delayed sets are looked at next     */
    uint64_t parked_due;                 /* the earliest retry this consumer parked (0: none):
                                            a reclaim pass then                          */
    int no_retry;                        /* no rights on the retry streams: not read     */
    int levels, shards, nstreams, reclaim, ready, lost;
    uint64_t batch_ms, ack_ms;           /* when the batch was read; when acks last went */
    uint32_t epoch;
    uint64_t next_reclaim;
    rsq__cstream *st;
    char *keys;                          /* stream and dead-letter keys, NUL-separated */
    /* batch */
    rsq_message *msg;
    size_t nmsg, msg_cap, bpos;
    rsq_field *fld;
    size_t nfld, fld_cap;
    size_t *foff;                        /* 2 per field: name and value offsets */
    size_t foff_cap;
    char *arena;
    size_t alen, acap;
    size_t *requeue;
    size_t nrequeue, requeue_cap;
    /* acknowledgements not yet confirmed by the server */
    rsq_id *ack;
    int *ack_stream;
    size_t nack, ack_cap;
    /* argument scratch */
    char *idtxt;
    size_t idtxt_cap;
    char *acktxt;                        /* text of each queued ack, RSQ_ID_STRLEN apart */
    size_t acktxt_cap;
    const char **argv;
    size_t *lens;
    size_t argv_cap;
    volatile int stop;
    int said_nogroup, retry_delay_next;
    int pending_ok;                           /* XPENDING answered: resume pipelines */
    int ack_replies, xr_inflight, xr_history; /* replies owed for a sent read      */
    int uncount_replies;                      /* replies owed for count resets     */
    uint32_t uncount_epoch;
    int xr_cmds, poll_ms;                     /* XREADGROUPs sent; cluster polling  */
    int xr_timeout;                           /* how long its reply may take (ms)  */
    int xr_open, xr_first, xr_n;              /* a read whose entries are not all
                                                 handed out yet, and its streams     */
    size_t acks_sent;                         /* queued acks included in that write */
    char error[RSQ_ERR_MAX];
    rsq_result ack_fail;                 /* acks refused with a read, not yet reported */
    char ack_err[RSQ_ERR_MAX];
    char why[RSQ_ERR_MAX];               /* scratch: a dead letter's reason being made    */
    rsq_consumer_stats stats;
};

/* Zeroes *cfg. */
RSQDEF void rsq_consumer_config_init(rsq_consumer_config *cfg);
/* Prepares a consumer on client c (used, not owned). Validates the config and
   allocates its per-stream state. No I/O: the group is created (MKSTREAM, at `start`)
   on first use. RSQ_OK, RSQ_ERR_ARG (reason in rsq_errstr(c)) or RSQ_ERR_NOMEM.
   Blocks: never. Memory: names are copied; the per-stream state is the consumer's
   until rsq_consumer_free. */
RSQDEF rsq_result rsq_consumer_init(rsq_consumer *cons, rsq_client *c, const rsq_consumer_config *cfg);
/* Releases the consumer's memory (unconfirmed acks are dropped: call
   rsq_consumer_flush first). Safe on a zeroed consumer. A step's read still in
   flight is given up by closing the client's connection (the next call reconnects).
   Blocks: never. */
RSQDEF void rsq_consumer_free(rsq_consumer *cons);

/* Next message, waiting up to timeout_ms (RSQ_TIMEOUT_FOREVER allowed;
   RSQ_TIMEOUT_DEFAULT = block_ms). Order of sources: messages requeued by
   RSQ_ACTION_RETRY; the batch already read; this consumer's own pending entries after
   a start, reconnect or reclaim (resume, one entry per round trip); entries reclaimed
   from stalled consumers (every reclaim_interval_ms: XAUTOCLAIM ... JUSTID on Redis
   >= 6.2, else XPENDING + XCLAIM ... JUSTID); new entries, highest priority level
   first (XREADGROUP ... >). Entries whose delivery count reached max_deliveries go to
   the dead-letter stream instead of being returned; entries deleted from the stream
   are acked away and counted. Queued acks are sent with the next read, pipelined, or
   on their own once ack_interval_ms old.
   Blocks: at most timeout_ms plus the client's block_margin_ms (default 2000) in
   every case, a frozen or unreachable server included (each wait inside, reconnects
   and backoffs too, ends by then); RSQ_TIMEOUT_FOREVER: until a message, a stop or an
   error retries could not cure. Returns RSQ_OK with *m set, RSQ_EMPTY on timeout,
   RSQ_STOPPED after rsq_consumer_stop, or an error (a link error when the server did
   not answer in time: nothing is lost, the next call reconnects). NOPERM, WRONGTYPE,
   NOAUTH and an ack the server refused are returned at once.
   Memory: *m lives in the consumer's batch (see rsq_message). Redis: XGROUP CREATE,
   XREADGROUP, XACK, XPENDING, XAUTOCLAIM or XCLAIM, XADD + XACK in MULTI/EXEC. */
RSQDEF rsq_result rsq_consumer_next(rsq_consumer *cons, const rsq_message **m, int timeout_ms);

/* Event loops: like rsq_consumer_next but never waits for messages. RSQ_OK with *m
   set; RSQ_AGAIN when a read is in flight (wait on rsq_client_fd() for
   rsq_client_wants(), then call again); RSQ_STOPPED; or an error (after a link error
   the next call reconnects and resumes). Housekeeping that is due (creating the group
   on first use, re-reading own pending entries after a reconnect, a reclaim pass,
   higher priority levels, dead letters) runs inside the call as short request/reply
   exchanges; waiting for new entries never does. Connecting, when needed, blocks.
   While a read is in flight (after RSQ_AGAIN, until a call returns something else)
   the client owes its reply: calls that need a round trip of their own on the same
   client (rsq_nack, rsq_dead_letter, rsq_extend, rsq_consumer_release,
   rsq_consumer_flush with acks queued, rsq_command) return RSQ_ERR_STATE. Make them
   between a message's hand-out and the next step (rsq_ack never needs one).
   Blocks: never for new entries; housekeeping exchanges up to io_timeout_ms each.
   Memory: *m as for rsq_consumer_next. Redis: as rsq_consumer_next. */
RSQDEF rsq_result rsq_consumer_step(rsq_consumer *cons, const rsq_message **m);

/* Acknowledges m. Queued and sent in one XACK per stream with the next read (or
   rsq_consumer_flush): no round trip per message.
   Blocks: never (when count * 4 + 64 acks are queued, it flushes them: one round
   trip). Errors: RSQ_ERR_ARG for a message of another consumer, RSQ_ERR_NOMEM.
   Redis: XACK (later). */
RSQDEF rsq_result rsq_ack(rsq_consumer *cons, const rsq_message *m);
/* Negative acknowledgement. A message whose deliveries already reached
   max_deliveries goes to the dead-letter stream instead (rsq_dead_letter). Else,
   delay_ms 0: redeliver now to this consumer (XCLAIM to itself, keeping the count
   handlers saw; the message comes back from the next rsq_consumer_next, counted
   then; note that m->deliveries is counted up in place). delay_ms up to visibility_ms:
   the entry stays pending, parked on the pseudo-consumer "rsq:delayed" and made to
   look idle for visibility_ms - delay_ms (XCLAIM ... IDLE ... JUSTID, no delivery
   counted), so a reclaim pass takes it about delay_ms later (this consumer runs one
   when the earliest of its parked retries is due, the others within their reclaim
   interval; a consumer with reclaim RSQ_RECLAIM_OFF still takes back these
   parked entries, and only these). Longer (any length up to INT_MAX ms, about 24
   days): the entry leaves the group's pending list: one script acks it (deletes it
   too when it is itself a retry) and puts it, with its fields, delivery count and
   priority, in the queue's delayed set ({Q}:delayed, a sorted set by due time of the
   server's clock), only while this consumer still holds it (else RSQ_ERR_STATE,
   "lease lost"). When due, any consumer of the queue moves it (within its
   due_check_ms) to this group's retry stream ({Q}:retry:GROUP, read by this group
   only, first of all its streams), from which it is handed out with rsq-origin (the
   entry it retries), rsq-deliveries and rsq-priority among its fields, m->stream the
   retry stream, m->deliveries counting the earlier deliveries (max_deliveries holds
   across retries), and deleted when acked or dead-lettered. Without scripting (EVAL
   refused), such a delay is cut to visibility_ms and logged (RSQ_LOGI_DELAYED).
   `error` (may be NULL) is remembered for a later dead letter. RSQ_ERR_STATE while a
   step's read is in flight (see rsq_consumer_step).
   Blocks: one round trip (io_timeout_ms). Redis: XCLAIM ... RETRYCOUNT [IDLE] JUSTID;
   longer delays EVAL (XPENDING, XRANGE, XACK, [XDEL], TIME, ZADD). */
RSQDEF rsq_result rsq_nack(rsq_consumer *cons, const rsq_message *m, int delay_ms, const char *error);
/* Moves m to the dead-letter stream now: XADD of its fields plus dlq-stream,
   dlq-group, dlq-id, dlq-deliveries (the count handlers saw), dlq-error, and XACK, in
   one MULTI/EXEC (no scripting needed). A command the server refuses (NOPERM for
   either, a renamed command) discards both: nothing moves, and the error names the
   step. Never resent after a lost link (the entry stays pending and comes again).
   Blocks: two round trips (MULTI, then the commands and EXEC). Redis: MULTI, XADD,
   XACK, EXEC. */
RSQDEF rsq_result rsq_dead_letter(rsq_consumer *cons, const rsq_message *m, const char *error);
/* Re-publishes up to `max` dead letters (oldest first; 0 = all) from dead_letter_stream
   to the stream each came from (its dlq-stream field), with its original fields (the
   dlq-* fields dropped), and deletes it from the dead-letter stream, atomically per
   entry (MULTI/EXEC: XADD and XDEL). Only into the queue's own streams: the
   dead-letter stream must be one rsq_queue_key names (Q's {Q}:dlq replays into Q and
   {Q}:p<k>; a shard's into that shard's streams); a dead letter naming any other
   stream or one without fields (set aside by ID) stops the replay with an error and
   stays in place. Any number of fields replays. *replayed (may be NULL) receives the
   count.
   Blocks: two round trips per dead letter (io_timeout_ms each). Memory: scratch for
   the fields, freed on return. Redis: XRANGE, MULTI, XADD, XDEL, EXEC. */
RSQDEF rsq_result rsq_dead_letter_replay(rsq_client *c, const char *dead_letter_stream, size_t max, size_t *replayed);
/* Extends the lease on m: resets its idle time so that no one reclaims it while this
   consumer still works on it. Atomic check-and-claim in a short script (one round
   trip); RSQ_ERR_STATE when the entry is no longer this consumer's (it was reclaimed:
   the work may be done twice), and also, with nothing sent, while a step's read is in
   flight (rsq_errstr says "pipelined replies are still unread": call it again after
   the step). Call it well within visibility_ms. Needs scripting
   (EVAL): on a server without it (renamed or disabled) RSQ_ERR_UNSUPPORTED, with an
   error text that says so (RSQ_ERR_NOPERM when an ACL denies EVAL).
   Redis: EVAL (XPENDING, XCLAIM ... JUSTID). */
RSQDEF rsq_result rsq_extend(rsq_consumer *cons, const rsq_message *m);
/* Sends queued acks now (one XACK per stream, pipelined) and waits for the replies:
   up to the client's io_timeout_ms. Every reply is checked: an ack the server refused
   (NOPERM, say) stays queued and its error is returned, text in rsq_errstr.
   Redis: XACK. */
RSQDEF rsq_result rsq_consumer_flush(rsq_consumer *cons);

/* Hands prefetched messages that were not yet returned back to the group at once
   (XCLAIM ... IDLE visibility_ms RETRYCOUNT n JUSTID, pipelined: any consumer's next
   reclaim pass takes them, and their delivery count goes back to what handlers saw)
   and sends queued acks. For a pull consumer that stops early; rsq_consumer_stop
   does this by itself.
   Blocks: one pipelined exchange, then the acks' (io_timeout_ms each). */
RSQDEF rsq_result rsq_consumer_release(rsq_consumer *cons);

/* Runs the handler on every message until rsq_consumer_stop or an error retries
   could not cure. Returns RSQ_STOPPED after a stop (acks flushed), else the error.
   Blocks: until then. Threads: rsq_consumer_stop may come from another thread. */
RSQDEF rsq_result rsq_consumer_run(rsq_consumer *cons, rsq_handler handler, void *user);
/* Asks the consumer to stop: the message in hand is finished, queued acks are
   flushed, rsq_consumer_next/run return RSQ_STOPPED. Safe from a signal handler and
   from another thread (a blocking read notices within about 100 ms).
   Blocks: never. Threads: safe from any thread and from a signal handler. */
RSQDEF void rsq_consumer_stop(rsq_consumer *cons);
/* For handlers: error text kept with the message if it is dead-lettered later. */
RSQDEF void rsq_consumer_set_error(rsq_consumer *cons, const char *error);
/* For handlers: the delay of the next RSQ_ACTION_RETRY_LATER, in ms (0: the retry
   policy's, rsq_consumer_backoff). */
RSQDEF void rsq_consumer_retry_delay(rsq_consumer *cons, int delay_ms);
/* The retry policy's delay for m, in ms: retry_delay_ms * retry_factor^(deliveries-1),
   at most retry_max_ms, give or take retry_jitter_pct percent; at least 1. What
   RSQ_ACTION_RETRY_LATER waits unless the handler set a delay. Blocks: never. */
RSQDEF int rsq_consumer_backoff(const rsq_consumer *cons, const rsq_message *m);
/* Copies the consumer's counters. */
RSQDEF void rsq_consumer_get_stats(const rsq_consumer *cons, rsq_consumer_stats *out);
/* The consumer's name (the configured one or the default).
   Memory: the consumer's buffer, valid until rsq_consumer_free. */
RSQDEF const char *rsq_consumer_name(const rsq_consumer *cons);

#ifdef __cplusplus
}
#endif
#endif /* RSQ_H */

/* ==================================================================================== */
// >>impl
#ifdef RSQ_IMPLEMENTATION
#ifndef RSQ__IMPLEMENTED
#define RSQ__IMPLEMENTED

#include <string.h>
#include <stdarg.h>
#include <stdio.h>
#include <limits.h>
#include <math.h> /* HUGE_VAL, NAN: macros only, no libm needed */

#if defined(RSQ_MALLOC) && defined(RSQ_REALLOC) && defined(RSQ_FREE)
/* all three given */
#elif !defined(RSQ_MALLOC) && !defined(RSQ_REALLOC) && !defined(RSQ_FREE)
#include <stdlib.h>
#define RSQ_MALLOC(sz) malloc(sz)
#define RSQ_REALLOC(p, sz) realloc(p, sz)
#define RSQ_FREE(p) free(p)
#else
#error "Must define all or none of RSQ_MALLOC, RSQ_REALLOC, RSQ_FREE"
#endif

/* In a cluster: a client field, or never when built with RSQ_NO_CLUSTER (the code for
   it then compiles away). */
#ifdef RSQ_NO_CLUSTER
#define RSQ__IN_CLUSTER(c) 0
#else
#define RSQ__IN_CLUSTER(c) ((c)->cluster)
#endif
#ifndef RSQ_ASSERT
#include <assert.h>
#define RSQ_ASSERT(x) assert(x)
#endif
#ifndef RSQ_MAX_LINE
#define RSQ_MAX_LINE 65536
#endif
#ifndef RSQ_READ_CHUNK
#define RSQ_READ_CHUNK 16384
#endif
#ifndef RSQ_FLUSH_AT
#define RSQ_FLUSH_AT 65536
#endif

#if defined(__GNUC__) || defined(__clang__)
#define RSQ__INTERN static __attribute__((unused))
#define RSQ__PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define RSQ__INTERN static
#define RSQ__PRINTF(fmt, args)
#endif

#define RSQ__DEF(v, d) ((v) ? (v) : (d))
#define RSQ__MIN(a, b) ((a) < (b) ? (a) : (b))
#define RSQ__MAX(a, b) ((a) > (b) ? (a) : (b))
#define RSQ__COUNTOF(a) (sizeof(a) / sizeof((a)[0]))
#define RSQ__MAX_VARARGS 64

/* ------------------------------------------------------------------------------------ */
// >>platform
#ifndef RSQ_NO_SOCKETS
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#endif

/* Every format in this file keeps to what newlib-nano's printf family (firmware's usual
   libc) understands: no %zu, %lld/%llu or %j (nano prints a z conversion as text and then reads
   the wrong argument for every conversion after it); sizes are cast to unsigned long,
   counts to long. make check-compile greps for them. */
RSQ__INTERN RSQ__PRINTF(3, 4) void rsq__fmt(char *dst, size_t cap, const char *fmt, ...) {
    va_list ap;
    if (!dst || cap == 0) return;
    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}

RSQ__INTERN void rsq__copy(char *dst, size_t cap, const char *src, size_t n) {
    if (cap == 0) return;
    if (n >= cap) n = cap - 1;
    if (n) memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Decimal text of v into out (at least 21 bytes); returns the length. */
RSQ__INTERN size_t rsq__u64_to_dec(char *out, uint64_t v) {
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    size_t n = 1, pos;
    uint64_t t = v;
    if (v < 10) {
        out[0] = (char)('0' + v);
        out[1] = '\0';
        return 1;
    }
    while (t >= 100) { t /= 100; n += 2; }
    if (t >= 10) n++;
    pos = n;
    out[n] = '\0';
    while (v >= 100) {
        unsigned i = (unsigned)(v % 100) * 2;
        v /= 100;
        out[--pos] = pairs[i + 1];
        out[--pos] = pairs[i];
    }
    if (v >= 10) { out[1] = pairs[v * 2 + 1]; out[0] = pairs[v * 2]; }
    else out[0] = (char)('0' + v);
    return n;
}

/* Strict decimal integer: optional '-', 1..19 digits, no overflow. 1 on success. */
RSQ__INTERN int rsq__parse_ll(const char *s, size_t n, long long *out) {
    size_t i = 0;
    int neg = 0;
    unsigned long long v = 0, lim;
    if (n == 0) return 0;
    if (s[0] == '-' || s[0] == '+') {
        neg = (s[0] == '-');
        i = 1;
        if (n == 1) return 0;
    }
    lim = neg ? (unsigned long long)LLONG_MAX + 1ULL : (unsigned long long)LLONG_MAX;
    for (; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - (unsigned)'0';
        if (d > 9) return 0;
        if (v > (lim - d) / 10) return 0;
        v = v * 10 + d;
    }
    if (neg) *out = (v == (unsigned long long)LLONG_MAX + 1ULL) ? LLONG_MIN : -(long long)v;
    else *out = (long long)v;
    return 1;
}

/* ------------------------------------------------------------------------------------ */
// >>results (implementation): results, then memory and logging
RSQDEF const char *rsq_result_str(rsq_result r) {
    switch (r) {
#define RSQ__X(name, value, text) case name: return text;
        RSQ_RESULT_LIST(RSQ__X)
#undef RSQ__X
    default: return "unknown result";
    }
}

RSQDEF const char *rsq_result_name(rsq_result r) {
    switch (r) {
#define RSQ__X(name, value, text) case name: return #name;
        RSQ_RESULT_LIST(RSQ__X)
#undef RSQ__X
    default: return "RSQ_UNKNOWN";
    }
}

RSQDEF int rsq_result_is_server_error(rsq_result r) {
    return (int)r <= (int)RSQ_ERR_SERVER && (int)r > -60;
}

RSQDEF const char *rsq_log_item_str(rsq_log_item item) {
    static const char *const texts[] = {
#define RSQ__X(name, text) text,
        RSQ_LOG_ITEMS(RSQ__X)
#undef RSQ__X
    };
    if ((unsigned)item >= (unsigned)RSQ__LOGI_COUNT) return "unknown log item";
    return texts[item];
}

// >>memory (implementation)
RSQ__INTERN void *rsq__default_malloc(size_t n, void *u) { (void)u; return RSQ_MALLOC(n); }
RSQ__INTERN void *rsq__default_realloc(void *p, size_t n, void *u) { (void)u; return RSQ_REALLOC(p, n); }
RSQ__INTERN void rsq__default_free(void *p, void *u) { (void)u; RSQ_FREE(p); }

/* Resolves a possibly zeroed allocator. Returns 0 if only some functions are set. */
RSQ__INTERN int rsq__alloc_resolve(rsq_allocator *out, const rsq_allocator *in) {
    if (!in || (!in->malloc_fn && !in->realloc_fn && !in->free_fn)) {
        out->malloc_fn = rsq__default_malloc;
        out->realloc_fn = rsq__default_realloc;
        out->free_fn = rsq__default_free;
        out->user = in ? in->user : NULL;
        return 1;
    }
    if (!in->malloc_fn || !in->realloc_fn || !in->free_fn) return 0;
    *out = *in;
    return 1;
}

RSQ__INTERN void *rsq__realloc(const rsq_allocator *a, void *p, size_t n) {
    return a->realloc_fn(p, n, a->user);
}
RSQ__INTERN void rsq__free(const rsq_allocator *a, void *p) {
    if (p) a->free_fn(p, a->user);
}

/* Grows buf (capacity *cap elements of `size` bytes) to hold more than *cap, at least
   `need` elements, doubling from `first`. Call only when need > *cap. Returns the new
   buffer, or NULL on overflow or allocation failure (buf is then unchanged). */
RSQ__INTERN void *rsq__grow(const rsq_allocator *a, void *buf, size_t *cap, size_t need, size_t size, size_t first) {
    size_t ncap = *cap ? *cap : first;
    void *p;
    while (ncap < need) {
        if (ncap > ((size_t)-1) / 4) return NULL;
        ncap *= 2;
    }
    if (ncap > ((size_t)-1) / size) return NULL;
    p = rsq__realloc(a, buf, ncap * size);
    if (p) *cap = ncap;
    return p;
}

/* The arena: blocks laid end to end, each a 16-byte header (its size, free bit in bit
   0) followed by its payload. */
#define RSQ__ARENA_ALIGN ((size_t)16)
RSQ__INTERN size_t rsq__bget(const unsigned char *p) {
    size_t v;
    memcpy(&v, p, sizeof v);
    return v;
}
RSQ__INTERN void rsq__bput(unsigned char *p, size_t v) { memcpy(p, &v, sizeof v); }
#define RSQ__BSIZE(p) (rsq__bget(p) & ~(size_t)1)
#define RSQ__BFREE(p) (rsq__bget(p) & (size_t)1)
#define RSQ__BSET(p, sz, fr) rsq__bput((p), (sz) | (size_t)(fr))

RSQDEF void rsq_arena_init(rsq_arena *a, void *buf, size_t size) {
    uintptr_t b = (uintptr_t)buf, al = (b + RSQ__ARENA_ALIGN - 1) & ~(uintptr_t)(RSQ__ARENA_ALIGN - 1);
    memset(a, 0, sizeof *a);
    if (!buf || size < (size_t)(al - b) + 2 * RSQ__ARENA_ALIGN) return;
    a->base = (unsigned char *)buf + (al - b);
    a->size = (size - (size_t)(al - b)) & ~(RSQ__ARENA_ALIGN - 1);
    RSQ__BSET(a->base, a->size, 1);
}

/* Merges the free blocks that follow p into p (p itself free). */
RSQ__INTERN void rsq__arena_merge(rsq_arena *a, unsigned char *p) {
    size_t sz = RSQ__BSIZE(p);
    while (p + sz < a->base + a->size && RSQ__BFREE(p + sz)) sz += RSQ__BSIZE(p + sz);
    RSQ__BSET(p, sz, 1);
}

/* Marks the first `need` bytes of block p used, splitting off the rest if useful. */
RSQ__INTERN void rsq__arena_take(rsq_arena *a, unsigned char *p, size_t sz, size_t need) {
    if (sz - need >= 2 * RSQ__ARENA_ALIGN) {
        RSQ__BSET(p + need, sz - need, 1);
        sz = need;
    }
    RSQ__BSET(p, sz, 0);
    a->used += sz;
    if (a->used > a->peak) a->peak = a->used;
}

RSQ__INTERN size_t rsq__arena_need(size_t n) {
    if (n > ((size_t)-1) / 2) return 0;
    return ((n + RSQ__ARENA_ALIGN - 1) & ~(RSQ__ARENA_ALIGN - 1)) + RSQ__ARENA_ALIGN;
}

RSQ__INTERN void *rsq__arena_malloc(size_t n, void *user) {
    rsq_arena *a = (rsq_arena *)user;
    size_t need = rsq__arena_need(n);
    unsigned char *p = a->base;
    while (need && p && p < a->base + a->size) {
        if (RSQ__BFREE(p)) {
            rsq__arena_merge(a, p);
            if (RSQ__BSIZE(p) >= need) {
                rsq__arena_take(a, p, RSQ__BSIZE(p), need);
                return p + RSQ__ARENA_ALIGN;
            }
        }
        p += RSQ__BSIZE(p);
    }
    a->failures++;
    return NULL;
}

RSQ__INTERN void rsq__arena_free(void *q, void *user) {
    rsq_arena *a = (rsq_arena *)user;
    unsigned char *p;
    if (!q) return;
    p = (unsigned char *)q - RSQ__ARENA_ALIGN;
    a->used -= RSQ__BSIZE(p);
    RSQ__BSET(p, RSQ__BSIZE(p), 1);
    rsq__arena_merge(a, p);
}

RSQ__INTERN void *rsq__arena_realloc(void *q, size_t n, void *user) {
    rsq_arena *a = (rsq_arena *)user;
    unsigned char *p, *next;
    size_t need = rsq__arena_need(n), sz;
    void *fresh;
    if (!q) return rsq__arena_malloc(n, user);
    if (!need) { a->failures++; return NULL; }
    p = (unsigned char *)q - RSQ__ARENA_ALIGN;
    sz = RSQ__BSIZE(p);
    if (sz >= need) return q;
    next = p + sz;
    if (next < a->base + a->size && RSQ__BFREE(next)) { /* grow in place */
        rsq__arena_merge(a, next);
        if (sz + RSQ__BSIZE(next) >= need) {
            size_t total = sz + RSQ__BSIZE(next);
            a->used -= sz;
            rsq__arena_take(a, p, total, need);
            return q;
        }
    }
    fresh = rsq__arena_malloc(n, user);
    if (!fresh) return NULL;
    memcpy(fresh, q, sz - RSQ__ARENA_ALIGN);
    rsq__arena_free(q, user);
    return fresh;
}

RSQDEF rsq_allocator rsq_arena_allocator(rsq_arena *a) {
    rsq_allocator al;
    al.malloc_fn = rsq__arena_malloc;
    al.realloc_fn = rsq__arena_realloc;
    al.free_fn = rsq__arena_free;
    al.user = a;
    return al;
}

// >>logging (implementation)
/* Logging and error texts: every failure reaches the caller as a result code, its text
   in rsq_errstr(client); the logger hears what the caller cannot see. */

#ifndef RSQ_SHORT_ERRORS
RSQ__INTERN RSQ__PRINTF(4, 5) void rsq__log(rsq_client *c, rsq_log_level lvl, rsq_log_item item, const char *fmt, ...) {
    char msg[320];
    va_list ap;
    if (!c->log.func || (int)lvl > (int)c->log.level) return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->log.func(c->log.user, lvl, item, msg);
}

RSQ__INTERN RSQ__PRINTF(3, 4) rsq_result rsq__set_err(rsq_client *c, rsq_result rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return rc;
}
#else /* RSQ_SHORT_ERRORS: the texts and their arguments are left out at every call */
RSQ__INTERN void rsq__log_short(rsq_client *c, rsq_log_level lvl, rsq_log_item item) {
    if (c->log.func && (int)lvl <= (int)c->log.level) c->log.func(c->log.user, lvl, item, rsq_log_item_str(item));
}

RSQ__INTERN rsq_result rsq__err_short(rsq_client *c, rsq_result rc) {
    rsq__copy(c->err, sizeof c->err, rsq_result_str(rc), strlen(rsq_result_str(rc)));
    return rc;
}
#define rsq__log(c, lvl, item, ...) rsq__log_short(c, lvl, item)
#define rsq__set_err(c, rc, ...) rsq__err_short(c, rc)
#endif

/* ------------------------------------------------------------------------------------ */
// >>codec (implementation)
#define RSQ__DEF_MAX_BULK ((size_t)16 << 20)
#define RSQ__DEF_MAX_ELEMENTS ((size_t)1 << 20)
#define RSQ__DEF_MAX_REPLY ((size_t)32 << 20)
#define RSQ__DEF_MAX_DEPTH 16

RSQ__INTERN void rsq__limits_apply(rsq_limits *out, const rsq_limits *in) {
    rsq_limits z;
    memset(&z, 0, sizeof z);
    if (!in) in = &z;
    out->max_bulk = RSQ__DEF(in->max_bulk, RSQ__DEF_MAX_BULK);
    out->max_elements = RSQ__DEF(in->max_elements, RSQ__DEF_MAX_ELEMENTS);
    out->max_reply = RSQ__DEF(in->max_reply, RSQ__DEF_MAX_REPLY);
    out->max_depth = RSQ__DEF(in->max_depth, RSQ__DEF_MAX_DEPTH);
    if (out->max_depth > RSQ_MAX_DEPTH_CAP) out->max_depth = RSQ_MAX_DEPTH_CAP;
    if (out->max_depth < 1) out->max_depth = 1;
}

RSQDEF rsq_result rsq_reader_init(rsq_reader *r, const rsq_limits *limits, const rsq_allocator *alloc) {
    if (!r) return RSQ_ERR_ARG;
    memset(r, 0, sizeof *r);
    if (!rsq__alloc_resolve(&r->alloc, alloc)) return RSQ_ERR_ARG;
    rsq__limits_apply(&r->lim, limits);
    return RSQ_OK;
}

RSQDEF void rsq_reader_free(rsq_reader *r) {
    if (!r || !r->alloc.free_fn) return;
    rsq__free(&r->alloc, r->buf);
    rsq__free(&r->alloc, r->node);
    r->buf = NULL;
    r->node = NULL;
    r->cap = r->len = r->pos = r->scan = r->node_cap = 0;
}

RSQDEF void rsq_reader_reset(rsq_reader *r) {
    r->len = r->pos = r->scan = 0;
    r->nodes = 0;
    r->depth = r->attr_depth = 0;
    r->err = RSQ_OK;
    r->errmsg[0] = '\0';
}

RSQ__INTERN rsq_result rsq__reader_fail(rsq_reader *r, rsq_result e, const char *why) {
    r->err = e;
    rsq__copy(r->errmsg, sizeof r->errmsg, why, strlen(why));
    return e;
}

RSQDEF const char *rsq_reader_errstr(const rsq_reader *r) { return r->err ? r->errmsg : ""; }
RSQDEF size_t rsq_reader_buffered(const rsq_reader *r) { return r->len - r->pos; }

RSQDEF rsq_result rsq_reader_space(rsq_reader *r, size_t want, char **buf, size_t *avail) {
    size_t hard;
    if (r->err) return r->err;
    if (want == 0) want = 1;
    if (r->pos > 0 && (r->cap - r->len < want || r->pos >= r->cap / 2)) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->scan -= r->pos;
        r->pos = 0;
    }
    if (r->cap - r->len < want) {
        /* The buffer holds at most one partial reply (<= max_reply) plus one read. */
        hard = r->lim.max_reply + (size_t)RSQ_READ_CHUNK * 2;
        void *nb;
        size_t ncap = r->cap ? r->cap : (size_t)RSQ_READ_CHUNK;
        if (r->len + want > hard) return rsq__reader_fail(r, RSQ_ERR_LIMIT, "reply exceeds max_reply");
        while (ncap < r->len + want) ncap = ncap > hard / 2 ? hard : ncap * 2;
        if (ncap > hard) ncap = hard; /* doubling never overshoots the limit */
        nb = rsq__realloc(&r->alloc, r->buf, ncap);
        if (!nb) return rsq__reader_fail(r, RSQ_ERR_NOMEM, "out of memory growing the read buffer");
        r->buf = (char *)nb;
        r->cap = ncap;
    }
    *buf = r->buf + r->len;
    *avail = r->cap - r->len;
    return RSQ_OK;
}

RSQDEF void rsq_reader_commit(rsq_reader *r, size_t n) {
    RSQ_ASSERT(n <= r->cap - r->len);
    r->len += n;
}

RSQDEF rsq_result rsq_reader_feed(rsq_reader *r, const void *data, size_t len) {
    const char *p = (const char *)data;
    while (len > 0) {
        char *dst;
        size_t avail, n;
        rsq_result rc = rsq_reader_space(r, RSQ__MIN(len, (size_t)RSQ_READ_CHUNK), &dst, &avail);
        if (rc != RSQ_OK) return rc;
        n = RSQ__MIN(len, avail);
        memcpy(dst, p, n);
        rsq_reader_commit(r, n);
        p += n;
        len -= n;
    }
    return r->err;
}

/* One parsed value header. `size` covers the type byte, the line, its CRLF and, for
   bulk types, the body and its CRLF. */
typedef struct rsq__hdr {
    char type;
    const char *line;
    size_t linelen;
    long long num;  /* integer value, bulk length or element count (-1: null) */
    size_t size;
    size_t elems;   /* child values of an aggregate (2*n for maps and attributes) */
} rsq__hdr;

enum { RSQ__HDR_MORE = 0, RSQ__HDR_OK = 1, RSQ__HDR_BAD = -1, RSQ__HDR_LIMIT = -2, RSQ__HDR_SLOW = 2 };

/* 1 when s[0..3) is `word` (lower case) in any letter case. */
RSQ__INTERN int rsq__is_word3(const char *s, const char *word) {
    return (s[0] | 0x20) == word[0] && (s[1] | 0x20) == word[1] && (s[2] | 0x20) == word[2];
}

/* RESP3 double text: an optional sign, then inf or nan in any letter case (Redis 7.0
   sends "-nan"), or digits with an optional fraction (a digit on one side of the
   point at least) and an optional exponent with digits. */
RSQ__INTERN int rsq__is_double_text(const char *s, size_t n) {
    size_t i = 0, digits = 0;
    if (n == 0 || n > 400) return 0;
    if (s[0] == '-' || s[0] == '+') i++;
    if (n - i == 3 && (rsq__is_word3(s + i, "inf") || rsq__is_word3(s + i, "nan"))) return 1;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) digits++;
    if (i < n && s[i] == '.')
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++) digits++;
    if (digits == 0) return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+')) i++;
        if (i == n || s[i] < '0' || s[i] > '9') return 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    return i == n;
}

/* Sets *why and returns code: for the checks below. */
RSQ__INTERN int rsq__hdr_fail(const char **why, int code, const char *text) {
    *why = text;
    return code;
}

/* Fast path: a bulk or aggregate header with a short non-negative length.
   RSQ__HDR_SLOW when it does not apply. */
RSQ__INTERN int rsq__hdr_fast(const rsq_limits *lim, const char *p, size_t avail, rsq__hdr *h, const char **why) {
    size_t i = 1, end = RSQ__MIN(avail, (size_t)16);
    uint64_t v = 0;
    if ((p[0] != '$' && p[0] != '*' && p[0] != '%') || avail < 4 || (unsigned)(p[1] - '0') > 9)
        return RSQ__HDR_SLOW;
    while (i < end && (unsigned)(p[i] - '0') <= 9) v = v * 10 + (uint64_t)(p[i++] - '0');
    if (i + 1 >= avail || p[i] != '\r' || p[i + 1] != '\n' || (i != 2 && p[1] == '0'))
        return RSQ__HDR_SLOW;
    h->type = p[0];
    h->line = p + 1;
    h->linelen = i - 1;
    h->size = i + 2;
    h->num = (long long)v;
    h->elems = 0;
    if (p[0] != '$') {
        if (v > (uint64_t)lim->max_elements)
            return rsq__hdr_fail(why, RSQ__HDR_LIMIT, "aggregate exceeds max_elements");
        h->elems = (size_t)v * (p[0] == '%' ? 2u : 1u);
        return RSQ__HDR_OK;
    }
    if (v > (uint64_t)lim->max_bulk)
        return rsq__hdr_fail(why, RSQ__HDR_LIMIT, "bulk length exceeds max_bulk");
    h->size += (size_t)v + 2;
    if (avail < h->size)
        return RSQ__HDR_MORE;
    if (p[h->size - 2] != '\r' || p[h->size - 1] != '\n')
        return rsq__hdr_fail(why, RSQ__HDR_BAD, "bulk not terminated by CRLF");
    return RSQ__HDR_OK;
}

/* A bulk ($ ! =) or aggregate (* ~ % > |) header whose line is parsed into *h: its
   length (-1, null, only for $ and *), then a bulk's body or an aggregate's count of
   child values. */
RSQ__INTERN int rsq__hdr_sized(const rsq_limits *lim, const char *p, size_t avail, rsq__hdr *h, const char **why) {
    int bulk = h->type == '$' || h->type == '!' || h->type == '=';
    if (!rsq__parse_ll(h->line, h->linelen, &h->num) || h->num < -1)
        return rsq__hdr_fail(why, RSQ__HDR_BAD, bulk ? "bad bulk length" : "bad aggregate length");
    if (h->num == -1 && h->type != (bulk ? '$' : '*'))
        return rsq__hdr_fail(why, RSQ__HDR_BAD, bulk ? "null length on a non-string bulk" : "null length on a non-array aggregate");
    if (h->num == -1)
        return RSQ__HDR_OK;
    if ((unsigned long long)h->num > (unsigned long long)(bulk ? lim->max_bulk : lim->max_elements))
        return rsq__hdr_fail(why, RSQ__HDR_LIMIT, bulk ? "bulk length exceeds max_bulk" : "aggregate exceeds max_elements");
    if (!bulk) {
        h->elems = (size_t)h->num * ((h->type == '%' || h->type == '|') ? 2u : 1u);
        return RSQ__HDR_OK;
    }
    if (h->type == '=' && h->num < 4)
        return rsq__hdr_fail(why, RSQ__HDR_BAD, "verbatim string without format");
    h->size += (size_t)h->num + 2;
    if (avail < h->size)
        return RSQ__HDR_MORE; /* the caller checks size against max_reply */
    if (p[h->size - 2] != '\r' || p[h->size - 1] != '\n')
        return rsq__hdr_fail(why, RSQ__HDR_BAD, "bulk not terminated by CRLF");
    if (h->type == '=' && p[h->linelen + 3 + 3] != ':')
        return rsq__hdr_fail(why, RSQ__HDR_BAD, "verbatim string without format");
    return RSQ__HDR_OK;
}

/* The line of a simple value (+ - : ( , # _), checked by its type. */
RSQ__INTERN int rsq__hdr_simple(const rsq_limits *lim, rsq__hdr *h, const char **why) {
    size_t i = (h->linelen > 0 && (h->line[0] == '-' || h->line[0] == '+')) ? 1 : 0;
    switch (h->type) {
    case '+': case '-':
        return h->linelen > lim->max_bulk ? rsq__hdr_fail(why, RSQ__HDR_LIMIT, "simple string exceeds max_bulk") : RSQ__HDR_OK;
    case ':':
        return rsq__parse_ll(h->line, h->linelen, &h->num) ? RSQ__HDR_OK : rsq__hdr_fail(why, RSQ__HDR_BAD, "bad integer");
    case '(':
        if (i >= h->linelen)
            return rsq__hdr_fail(why, RSQ__HDR_BAD, "bad big number");
        for (; i < h->linelen; i++)
            if (h->line[i] < '0' || h->line[i] > '9')
                return rsq__hdr_fail(why, RSQ__HDR_BAD, "bad big number");
        return RSQ__HDR_OK;
    case ',':
        return rsq__is_double_text(h->line, h->linelen) ? RSQ__HDR_OK : rsq__hdr_fail(why, RSQ__HDR_BAD, "bad double");
    case '#':
        if (h->linelen != 1 || (h->line[0] != 't' && h->line[0] != 'f'))
            return rsq__hdr_fail(why, RSQ__HDR_BAD, "bad boolean");
        return RSQ__HDR_OK;
    case '_':
        return h->linelen == 0 ? RSQ__HDR_OK : rsq__hdr_fail(why, RSQ__HDR_BAD, "bad null");
    default:
        return rsq__hdr_fail(why, RSQ__HDR_BAD, "unknown type byte");
    }
}

/* Parses the header of the value at p (avail bytes). On HDR_OK fills *h. */
RSQ__INTERN int rsq__parse_hdr(const rsq_limits *lim, const char *p, size_t avail, rsq__hdr *h, const char **why) {
    const char *cr;
    size_t search = RSQ__MIN(avail, (size_t)RSQ_MAX_LINE);
    int rc;
    h->size = 0;
    if (avail < 1)
        return RSQ__HDR_MORE;
    if ((rc = rsq__hdr_fast(lim, p, avail, h, why)) != RSQ__HDR_SLOW)
        return rc;
    h->size = 0;
    cr = (const char *)memchr(p, '\r', search);
    if (!cr)
        return avail >= (size_t)RSQ_MAX_LINE ? rsq__hdr_fail(why, RSQ__HDR_BAD, "protocol line too long") : RSQ__HDR_MORE;
    if ((size_t)(cr - p) + 1 >= avail)
        return RSQ__HDR_MORE;
    if (cr[1] != '\n')
        return rsq__hdr_fail(why, RSQ__HDR_BAD, "CR not followed by LF");
    h->type = p[0];
    h->line = p + 1;
    h->linelen = (size_t)(cr - p) - 1;
    h->size = h->linelen + 3;
    h->num = 0;
    h->elems = 0;
    if (cr == p)
        return rsq__hdr_fail(why, RSQ__HDR_BAD, "empty protocol line");
    if (h->type && strchr("$!=*~%>|", h->type))
        return rsq__hdr_sized(lim, p, avail, h, why);
    return rsq__hdr_simple(lim, h, why);
}

/* Resumable scan of the reply starting at r->pos: validates limits and counts nodes.
   Returns 1 when a whole reply is buffered, 0 when more bytes are needed, -1 on error. */
RSQ__INTERN int rsq__scan(rsq_reader *r) {
    for (;;) {
        rsq__hdr h;
        const char *why = "protocol error";
        int rc = rsq__parse_hdr(&r->lim, r->buf + r->scan, r->len - r->scan, &h, &why);
        int attr, popped_attr = 0;
        if (rc == RSQ__HDR_MORE) {
            if (r->len - r->pos > r->lim.max_reply || r->scan - r->pos + h.size > r->lim.max_reply) {
                rsq__reader_fail(r, RSQ_ERR_LIMIT, "reply exceeds max_reply");
                return -1;
            }
            return 0;
        }
        if (rc != RSQ__HDR_OK) {
            rsq__reader_fail(r, rc == RSQ__HDR_LIMIT ? RSQ_ERR_LIMIT : RSQ_ERR_PROTOCOL, why);
            return -1;
        }
        attr = (h.type == '|');
        if (!attr && r->depth > 0) r->stk_rem[r->depth - 1]--;
        /* nodes counts every element announced so far (outside attributes), so a
           reply announcing more than max_elements fails before its elements arrive */
        if (r->nodes == 0 && !attr && r->attr_depth == 0) r->nodes = 1;
        if (!attr && r->attr_depth == 0 && h.elems > r->lim.max_elements - r->nodes) {
            rsq__reader_fail(r, RSQ_ERR_LIMIT, "reply exceeds max_elements");
            return -1;
        }
        if (!attr && r->attr_depth == 0) r->nodes += h.elems;
        r->scan += h.size;
        if (r->scan - r->pos > r->lim.max_reply) {
            rsq__reader_fail(r, RSQ_ERR_LIMIT, "reply exceeds max_reply");
            return -1;
        }
        if (h.elems > 0) {
            if (r->depth >= r->lim.max_depth) {
                rsq__reader_fail(r, RSQ_ERR_LIMIT, "reply nested deeper than max_depth");
                return -1;
            }
            r->stk_rem[r->depth] = h.elems;
            r->stk_attr[r->depth] = (unsigned char)attr;
            r->depth++;
            if (attr) r->attr_depth++;
            continue;
        }
        while (r->depth > 0 && r->stk_rem[r->depth - 1] == 0) {
            popped_attr = r->stk_attr[r->depth - 1];
            if (popped_attr) r->attr_depth--;
            r->depth--;
        }
        if (r->depth == 0 && !attr && !popped_attr) return 1;
    }
}

/* 10^e by repeated squaring: a few multiplications for any e >= 0. */
RSQ__INTERN double rsq__pow10(long e) {
    double r = 1.0, b = 10.0;
    while (e > 0) {
        if (e & 1) r *= b;
        b *= b;
        e >>= 1;
    }
    return r;
}

/* Decimal text to double without the C library (and its locale): up to 19 significant
   digits, the rest only counted, then one scaling by a power of ten, split in two
   steps near the limits so that no intermediate overflows or vanishes. */
RSQ__INTERN double rsq__parse_double(const char *s, size_t n) {
    uint64_t m = 0;
    int neg = 0, eneg = 0, digits = 0;
    long ex = 0, adj = 0;
    size_t i = 0;
    double v;
    {   /* inf, nan: validated by rsq__is_double_text (any case, optional sign) */
        size_t k = (n > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
        if (n - k == 3 && rsq__is_word3(s + k, "inf")) return s[0] == '-' ? -HUGE_VAL : HUGE_VAL;
        if (n - k == 3 && rsq__is_word3(s + k, "nan")) return NAN;
    }
    if (i < n && (s[i] == '-' || s[i] == '+')) neg = (s[i++] == '-');
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        if (digits < 19) { m = m * 10 + (uint64_t)(s[i] - '0'); if (m) digits++; }
        else adj++;
    }
    if (i < n && s[i] == '.')
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            if (digits >= 19)
                continue;
            m = m * 10 + (uint64_t)(s[i] - '0');
            if (m)
                digits++;
            adj--;
        }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+')) eneg = (s[i++] == '-');
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) if (ex < 100000) ex = ex * 10 + (s[i] - '0');
        if (eneg) ex = -ex;
    }
    ex += adj;
    v = (double)m;
    if (m == 0 || ex == 0) return neg ? -v : v;
    if (ex > 400) v = HUGE_VAL;
    else if (ex < -400) v = 0.0;
    else if (ex > 0) v = ex > 300 ? v * rsq__pow10(300) * rsq__pow10(ex - 300) : v * rsq__pow10(ex);
    else v = -ex > 300 ? v / rsq__pow10(300) / rsq__pow10(-ex - 300) : v / rsq__pow10(-ex);
    return neg ? -v : v;
}

/* Header of a value that rsq__scan has already validated: no limit or syntax checks,
   no memchr for the numeric types. Fills the same fields as rsq__parse_hdr. */
RSQ__INTERN void rsq__hdr_trusted(const char *p, size_t avail, rsq__hdr *h) {
    const char *q = p + 1;
    h->type = p[0];
    h->line = q;
    h->num = 0;
    h->elems = 0;
    switch (h->type) {
    case '$': case '!': case '=': case '*': case '~': case '%': case '>': case '|': case ':': {
        int neg = 0;
        uint64_t v = 0;
        if (*q == '-' || *q == '+') { neg = *q == '-'; q++; }
        while (*q != '\r') v = v * 10 + (uint64_t)(*q++ - '0');
        h->num = !neg ? (long long)v : v == (uint64_t)LLONG_MAX + 1u ? LLONG_MIN : -(long long)v;
        h->linelen = (size_t)(q - h->line);
        h->size = h->linelen + 3;
        if (h->type == ':') break;
        if (h->type == '$' || h->type == '!' || h->type == '=') {
            if (h->num >= 0) h->size += (size_t)h->num + 2;
        } else if (h->num > 0) {
            h->elems = (size_t)h->num * ((h->type == '%' || h->type == '|') ? 2u : 1u);
        }
        break;
    }
    default:
        h->linelen = (size_t)((const char *)memchr(q, '\r', avail - 1) - q);
        h->size = h->linelen + 3;
    }
}

/* Fills node n from header h of a scalar value at p (strings NUL-terminated in place);
   for an aggregate, its type and element count. */
RSQ__INTERN void rsq__build_node(rsq_reply *n, const rsq__hdr *h, char *p) {
    memset(n, 0, sizeof *n);
    switch (h->type) {
    case '+': case '-': case '(': case ',':
        n->type = h->type == '+' ? RSQ_REPLY_STATUS : h->type == '-' ? RSQ_REPLY_ERROR
                : h->type == '(' ? RSQ_REPLY_BIGNUM : RSQ_REPLY_DOUBLE;
        n->str = h->line;
        n->len = h->linelen;
        p[h->linelen + 1] = '\0';
        if (h->type == ',')
            n->dbl = rsq__parse_double(h->line, h->linelen);
        return;
    case ':':
        n->type = RSQ_REPLY_INTEGER;
        n->integer = h->num;
        return;
    case '#':
        n->type = RSQ_REPLY_BOOL;
        n->integer = h->line[0] == 't';
        return;
    case '_':
        n->type = RSQ_REPLY_NIL;
        return;
    case '$': case '!': case '=':
        if (h->num < 0) {
            n->type = RSQ_REPLY_NIL;
            return;
        }
        n->type = h->type == '$' ? RSQ_REPLY_STRING : h->type == '!' ? RSQ_REPLY_ERROR : RSQ_REPLY_VERBATIM;
        n->str = p + h->linelen + 3;
        n->len = (size_t)h->num;
        p[h->size - 2] = '\0';
        if (h->type == '=') {
            n->str += 4;
            n->len -= 4;
        }
        return;
    default: /* aggregates */
        if (h->num < 0) {
            n->type = RSQ_REPLY_NIL;
            return;
        }
        n->type = h->type == '*' ? RSQ_REPLY_ARRAY : h->type == '%' ? RSQ_REPLY_MAP
                : h->type == '~' ? RSQ_REPLY_SET : RSQ_REPLY_PUSH;
        n->len = h->elems;
    }
}

/* Builds the node tree of the complete reply at [r->pos, r->scan). Children of each
   aggregate are contiguous. Strings are NUL-terminated in place. Attributes, and
   everything inside them, are built into a throwaway node. */
RSQ__INTERN rsq_result rsq__build(rsq_reader *r, const rsq_reply **out) {
    size_t *rem = r->stk_rem;       /* the scan's stack is free: it ended at depth 0 */
    unsigned char *skips = r->stk_attr;
    rsq_reply **next = r->stk_next;
    int depth = 0;
    size_t off = r->pos, used = 1;
    rsq_reply root_skip;
    if (r->nodes > r->node_cap) {
        void *nn = rsq__grow(&r->alloc, r->node, &r->node_cap, r->nodes, sizeof(rsq_reply), 64);
        if (!nn)
            return rsq__reader_fail(r, RSQ_ERR_NOMEM, "out of memory for reply nodes");
        r->node = (rsq_reply *)nn;
    }
    while (off < r->scan) {
        rsq__hdr h;
        rsq_reply *n;
        char *p = r->buf + off;
        int skip = depth > 0 && skips[depth - 1];
        rsq__hdr_trusted(p, r->scan - off, &h);
        off += h.size;
        if (h.type == '|') {
            if (h.elems) {
                next[depth] = &root_skip;
                rem[depth] = h.elems;
                skips[depth] = 1;
                depth++;
            }
            continue;
        }
        n = skip ? &root_skip : depth == 0 ? &r->node[0] : next[depth - 1]++;
        if (depth > 0)
            rem[depth - 1]--;
        rsq__build_node(n, &h, p);
        if (h.elems && h.num >= 0 && n->type != RSQ_REPLY_NIL) { /* an aggregate with elements: descend */
            if (!skip)
                n->element = &r->node[used];
            next[depth] = skip ? &root_skip : &r->node[used];
            if (!skip)
                used += h.elems;
            rem[depth] = h.elems;
            skips[depth] = (unsigned char)skip;
            depth++;
            continue;
        }
        while (depth > 0 && rem[depth - 1] == 0) depth--;
    }
    RSQ_ASSERT(used == r->nodes);
    *out = &r->node[0];
    return RSQ_OK;
}

RSQDEF rsq_result rsq_reader_next(rsq_reader *r, const rsq_reply **out) {
    int rc;
    rsq_result res;
    *out = NULL;
    if (r->err) return r->err;
    /* the previous reply (if any) ended at pos: start a new scan there */
    if (r->depth == 0 && r->scan == r->pos) r->nodes = 0;
    if (r->len == r->scan) return RSQ_EMPTY;
    rc = rsq__scan(r);
    if (rc < 0) return r->err;
    if (rc == 0) return RSQ_EMPTY;
    res = rsq__build(r, out);
    if (res != RSQ_OK) { *out = NULL; return res; }
    r->pos = r->scan;
    r->nodes = 0;
    return RSQ_OK;
}

RSQDEF size_t rsq_encode_argv(char *out, size_t cap, int argc, const char *const *argv, const size_t *lens) {
    size_t need = 0, w = 0;
    char num[24];
    int i, pass;
    /* pass 0 measures, pass 1 writes (only when it fits) */
    for (pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            if (need > cap || !out) return need;
        }
        w = 0;
#define RSQ__PUT(src, n) do { if (pass) memcpy(out + w, (src), (n)); w += (n); } while (0)
        {
            size_t k = rsq__u64_to_dec(num, (uint64_t)argc);
            RSQ__PUT("*", 1);
            RSQ__PUT(num, k);
            RSQ__PUT("\r\n", 2);
        }
        for (i = 0; i < argc; i++) {
            size_t len = lens ? lens[i] : strlen(argv[i]);
            size_t k = rsq__u64_to_dec(num, (uint64_t)len);
            RSQ__PUT("$", 1);
            RSQ__PUT(num, k);
            RSQ__PUT("\r\n", 2);
            if (len) RSQ__PUT(argv[i], len);
            RSQ__PUT("\r\n", 2);
        }
#undef RSQ__PUT
        need = w;
    }
    return need;
}

RSQDEF int rsq_reply_is(const rsq_reply *r, const char *s) {
    size_t n;
    if (!r || !s || !r->str) return 0;
    if (r->type != RSQ_REPLY_STRING && r->type != RSQ_REPLY_STATUS && r->type != RSQ_REPLY_VERBATIM) return 0;
    n = strlen(s);
    return r->len == n && memcmp(r->str, s, n) == 0;
}

RSQDEF const rsq_reply *rsq_reply_get(const rsq_reply *r, const char *key) {
    size_t i;
    if (!r || !key || (r->type != RSQ_REPLY_MAP && r->type != RSQ_REPLY_ARRAY)) return NULL;
    for (i = 0; i + 1 < r->len; i += 2)
        if (rsq_reply_is(&r->element[i], key)) return &r->element[i + 1];
    return NULL;
}

RSQDEF int rsq_reply_int(const rsq_reply *r, long long *out) {
    if (!r) return 0;
    if (r->type == RSQ_REPLY_INTEGER || r->type == RSQ_REPLY_BOOL) { *out = r->integer; return 1; }
    if (r->type == RSQ_REPLY_STRING || r->type == RSQ_REPLY_STATUS || r->type == RSQ_REPLY_BIGNUM)
        return rsq__parse_ll(r->str, r->len, out);
    return 0;
}
/* Copies a name from a reply, cut to cap - 1 bytes (longer names come only from other
   clients; wherever the full name matters, the reply itself is used). 0 when r is not
   a string. */
RSQ__INTERN int rsq__copy_name(char *dst, size_t cap, const rsq_reply *r) {
    if (!r || !r->str) return 0;
    rsq__copy(dst, cap, r->str, r->len);
    return 1;
}

/* The arguments of one command, built one at a time into the caller's arrays (cap
   entries): rsq__arg for C strings, rsq__argn for binary-safe ones, rsq__args_list
   for a list ended by (char *)0. */
typedef struct rsq__args {
    const char **argv;
    size_t *lens;
    int argc, cap;
} rsq__args;

RSQ__INTERN rsq__args rsq__args_on(const char **argv, size_t *lens, int cap) {
    rsq__args a;
    a.argv = argv;
    a.lens = lens;
    a.argc = 0;
    a.cap = cap;
    return a;
}

RSQ__INTERN void rsq__argn(rsq__args *a, const char *s, size_t n) {
    RSQ_ASSERT(a->argc < a->cap);
    a->argv[a->argc] = s;
    a->lens[a->argc] = n;
    a->argc++;
}

RSQ__INTERN void rsq__arg(rsq__args *a, const char *s) {
    rsq__argn(a, s, strlen(s));
}

RSQ__INTERN void rsq__args_list(rsq__args *a, const char *arg0, ...) {
    va_list ap;
    const char *s;
    va_start(ap, arg0);
    for (s = arg0; s; s = va_arg(ap, const char *)) rsq__arg(a, s);
    va_end(ap);
}

RSQ__INTERN long long rsq__get_int(const rsq_reply *r, const char *key, long long dflt) {
    long long v;
    return rsq_reply_int(rsq_reply_get(r, key), &v) ? v : dflt;
}

/* ------------------------------------------------------------------------------------ */
// >>transport (implementation): the built-in socket transport
#ifndef RSQ_NO_SOCKETS
#define RSQ__FD(h) ((int)(intptr_t)(h) - 1)

RSQ__INTERN uint64_t rsq__sock_now(void *user) {
    struct timespec ts;
    (void)user;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

RSQ__INTERN void rsq__sock_sleep(void *user, int ms) {
    struct timespec ts;
    (void)user;
    if (ms <= 0) return;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

RSQ__INTERN int rsq__sock_prepare(int fd) {
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
#ifdef SO_NOSIGPIPE
    { int one = 1; (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one); }
#endif
    return 0;
}

/* Non-blocking connect of fd to addr within timeout_ms: 0, or an rsq_result. */
RSQ__INTERN rsq_result rsq__sock_connect_fd(int fd, const struct sockaddr *sa, socklen_t salen, int timeout_ms, int *sys_errno) {
    struct pollfd pfd;
    int rc, soerr = 0;
    socklen_t len = sizeof soerr;
    *sys_errno = 0;
    if (connect(fd, sa, salen) == 0) return RSQ_OK;
    if (errno != EINPROGRESS && errno != EAGAIN && errno != EINTR) { *sys_errno = errno; return RSQ_ERR_CONNECT; }
    pfd.fd = fd;
    pfd.events = POLLOUT;
    pfd.revents = 0;
    do rc = poll(&pfd, 1, timeout_ms); while (rc < 0 && errno == EINTR);
    if (rc == 0) return RSQ_ERR_TIMEOUT;
    if (rc < 0) { *sys_errno = errno; return RSQ_ERR_CONNECT; }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) soerr = errno;
    if (soerr) { *sys_errno = soerr; return RSQ_ERR_CONNECT; }
    return RSQ_OK;
}

/* A unix socket connected to ep->path within timeout_ms: its descriptor in *fd. */
RSQ__INTERN rsq_result rsq__sock_open_unix(const rsq_endpoint *ep, int timeout_ms, int *fd, char *err, size_t errlen) {
    struct sockaddr_un sun;
    size_t n = strlen(ep->path);
    int e = 0;
    rsq_result rc;
    if (n >= sizeof sun.sun_path) {
        rsq__fmt(err, errlen, "unix socket path too long");
        return RSQ_ERR_ARG;
    }
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, ep->path, n + 1);
    *fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (*fd < 0 || rsq__sock_prepare(*fd) < 0) {
        e = errno;
        rc = RSQ_ERR_CONNECT;
    } else {
        rc = rsq__sock_connect_fd(*fd, (const struct sockaddr *)&sun, (socklen_t)sizeof sun, timeout_ms, &e);
    }
    if (rc == RSQ_OK)
        return RSQ_OK;
    if (*fd >= 0)
        close(*fd);
    if (rc == RSQ_ERR_TIMEOUT)
        rsq__fmt(err, errlen, "connect to unix socket %s timed out after %d ms", ep->path, timeout_ms);
    else
        rsq__fmt(err, errlen, "connect to unix socket %s: %s", ep->path, strerror(e));
    return rc;
}

/* TCP_NODELAY and keepalive (idle 60 s, probes every 10 s, 3 of them) where known. */
RSQ__INTERN void rsq__sock_tune(int fd) {
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
#ifdef TCP_KEEPIDLE
    { int v = 60; (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof v); }
#endif
#ifdef TCP_KEEPINTVL
    { int v = 10; (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v, sizeof v); }
#endif
#ifdef TCP_KEEPCNT
    { int v = 3; (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof v); }
#endif
}

/* A TCP connection to ep->host:ep->port within timeout_ms, trying each address the
   name resolves to: its descriptor in *fd. */
RSQ__INTERN rsq_result rsq__sock_open_tcp(const rsq_endpoint *ep, int timeout_ms, int *fd, char *err, size_t errlen) {
    struct addrinfo hints, *res = NULL, *ai;
    char port[16];
    int gai, e = 0;
    uint64_t t0 = rsq__sock_now(NULL);
    rsq_result rc = RSQ_ERR_CONNECT;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rsq__fmt(port, sizeof port, "%d", ep->port);
    gai = getaddrinfo(ep->host, port, &hints, &res);
    if (gai != 0 || !res) {
        rsq__fmt(err, errlen, "cannot resolve %s: %s", ep->host, gai_strerror(gai));
        return RSQ_ERR_RESOLVE;
    }
    for (ai = res; ai && rc != RSQ_OK; ai = ai->ai_next) {
        int left = timeout_ms - (int)(rsq__sock_now(NULL) - t0);
        if (left <= 0) {
            rc = RSQ_ERR_TIMEOUT;
            break;
        }
        *fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (*fd < 0 || rsq__sock_prepare(*fd) < 0) {
            e = errno;
            rc = RSQ_ERR_CONNECT;
        } else {
            rc = rsq__sock_connect_fd(*fd, ai->ai_addr, ai->ai_addrlen, left, &e);
        }
        if (rc != RSQ_OK && *fd >= 0)
            close(*fd);
    }
    freeaddrinfo(res);
    if (rc == RSQ_OK) {
        rsq__sock_tune(*fd);
        return RSQ_OK;
    }
    if (rc == RSQ_ERR_TIMEOUT)
        rsq__fmt(err, errlen, "connect to %s:%d timed out after %d ms", ep->host, ep->port, timeout_ms);
    else
        rsq__fmt(err, errlen, "connect to %s:%d: %s", ep->host, ep->port, strerror(e));
    return rc;
}

RSQ__INTERN rsq_result rsq__sock_open(void *user, const rsq_endpoint *ep, int timeout_ms, void **handle, char *err, size_t errlen) {
    int fd = -1;
    rsq_result rc;
    (void)user;
    *handle = NULL;
    if (ep->tls) {
        rsq__fmt(err, errlen, "rediss:// needs a TLS transport; the built-in socket transport has none");
        return RSQ_ERR_UNSUPPORTED;
    }
    if (ep->path)
        rc = rsq__sock_open_unix(ep, timeout_ms, &fd, err, errlen);
    else
        rc = rsq__sock_open_tcp(ep, timeout_ms, &fd, err, errlen);
    if (rc != RSQ_OK)
        return rc;
    *handle = (void *)(intptr_t)(fd + 1);
    return RSQ_OK;
}

RSQ__INTERN long rsq__sock_send(void *user, void *handle, const void *buf, size_t len) {
    ssize_t n;
    int flags = 0;
    (void)user;
#ifdef MSG_NOSIGNAL
    flags = MSG_NOSIGNAL;
#endif
    do n = send(RSQ__FD(handle), buf, len, flags); while (n < 0 && errno == EINTR);
    if (n >= 0) return (long)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return (long)RSQ_ERR_IO;
}

RSQ__INTERN long rsq__sock_recv(void *user, void *handle, void *buf, size_t len) {
    ssize_t n;
    (void)user;
    do n = recv(RSQ__FD(handle), buf, len, 0); while (n < 0 && errno == EINTR);
    if (n > 0) return (long)n;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    return (long)RSQ_ERR_IO; /* 0: the peer closed */
}

RSQ__INTERN rsq_result rsq__sock_wait(void *user, void *handle, int events, int timeout_ms) {
    struct pollfd pfd;
    int rc;
    (void)user;
    pfd.fd = RSQ__FD(handle);
    pfd.events = (short)(((events & RSQ_WANT_READ) ? POLLIN : 0) | ((events & RSQ_WANT_WRITE) ? POLLOUT : 0));
    pfd.revents = 0;
    rc = poll(&pfd, 1, timeout_ms);
    if (rc > 0) return RSQ_OK;
    if (rc == 0) return RSQ_ERR_TIMEOUT;
    return errno == EINTR ? RSQ_OK : RSQ_ERR_IO;
}

RSQ__INTERN void rsq__sock_close(void *user, void *handle) {
    (void)user;
    if (handle) close(RSQ__FD(handle));
}

RSQ__INTERN int rsq__sock_fd(void *user, void *handle) {
    (void)user;
    return handle ? RSQ__FD(handle) : -1;
}

RSQDEF const rsq_transport *rsq_socket_transport(void) {
    static const rsq_transport t = {
        rsq__sock_open, rsq__sock_send, rsq__sock_recv, rsq__sock_wait,
        rsq__sock_close, rsq__sock_fd, rsq__sock_now, rsq__sock_sleep, NULL
    };
    return &t;
}
#endif /* RSQ_NO_SOCKETS */

/* ------------------------------------------------------------------------------------ */
// >>url (implementation)
RSQ__INTERN int rsq__hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into dst (cap bytes). 1 on success. */
RSQ__INTERN int rsq__pct_decode(char *dst, size_t cap, const char *s, size_t n) {
    size_t i, w = 0;
    for (i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            int hi, lo;
            if (i + 2 >= n) return 0;
            hi = rsq__hexval(s[i + 1]);
            lo = rsq__hexval(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return 0; /* no NUL in credentials */
            ch = (char)(hi * 16 + lo);
            i += 2;
        }
        if (w + 1 >= cap) return 0;
        dst[w++] = ch;
    }
    dst[w] = '\0';
    return 1;
}

RSQ__INTERN int rsq__parse_uint_range(const char *s, size_t n, long lo, long hi, long *out) {
    long long v;
    if (n == 0 || s[0] == '-' || s[0] == '+') return 0;
    if (!rsq__parse_ll(s, n, &v) || v < lo || v > hi) return 0;
    *out = (long)v;
    return 1;
}

/* user[:password] at s[0..n) */
RSQ__INTERN rsq_result rsq__url_userinfo(rsq_url *u, const char *s, size_t n, char *err, size_t errlen) {
    const char *colon = (const char *)memchr(s, ':', n);
    if (!colon) {
        rsq__fmt(err, errlen, "URL credentials must be user:password@ or :password@");
        return RSQ_ERR_URL;
    }
    if (!rsq__pct_decode(u->user, sizeof u->user, s, (size_t)(colon - s))) {
        rsq__fmt(err, errlen, "bad or too long user name in URL");
        return RSQ_ERR_URL;
    }
    if (!rsq__pct_decode(u->password, sizeof u->password, colon + 1, n - (size_t)(colon - s) - 1)) {
        rsq__fmt(err, errlen, "bad or too long password in URL");
        return RSQ_ERR_URL;
    }
    u->has_password = 1;
    return RSQ_OK;
}

/* The query of a unix URL, p[0..end): key=value pairs joined by '&' (db, password,
   user). */
RSQ__INTERN rsq_result rsq__url_query(rsq_url *u, const char *p, const char *end, char *err, size_t errlen) {
    while (p < end) {
        const char *amp = (const char *)memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = (const char *)memchr(p, '=', (size_t)(pe - p));
        size_t kl = eq ? (size_t)(eq - p) : 0;
        if (!eq) {
            rsq__fmt(err, errlen, "unix URL query must be key=value pairs");
            return RSQ_ERR_URL;
        }
        if (kl == 2 && !memcmp(p, "db", 2)) {
            if (!rsq__parse_uint_range(eq + 1, (size_t)(pe - eq - 1), 0, 1000000, &u->db)) {
                rsq__fmt(err, errlen, "bad db number in URL");
                return RSQ_ERR_URL;
            }
        } else if (kl == 8 && !memcmp(p, "password", 8)) {
            if (!rsq__pct_decode(u->password, sizeof u->password, eq + 1, (size_t)(pe - eq - 1))) {
                rsq__fmt(err, errlen, "bad or too long password in URL");
                return RSQ_ERR_URL;
            }
            u->has_password = 1;
        } else if (kl == 4 && !memcmp(p, "user", 4)) {
            if (!rsq__pct_decode(u->user, sizeof u->user, eq + 1, (size_t)(pe - eq - 1))) {
                rsq__fmt(err, errlen, "bad or too long user name in URL");
                return RSQ_ERR_URL;
            }
        } else {
            rsq__fmt(err, errlen, "unknown URL option (expected db, user, password)");
            return RSQ_ERR_URL;
        }
        p = amp ? amp + 1 : end;
    }
    return RSQ_OK;
}

/* unix://[user:password@]/path[?query]: s[0..end) is what follows the scheme. */
RSQ__INTERN rsq_result rsq__url_unix(rsq_url *u, const char *s, const char *end, char *err, size_t errlen) {
    const char *q = (const char *)memchr(s, '?', (size_t)(end - s));
    const char *pend = q ? q : end;
    if (s < pend && s[0] != '/') {
        const char *at = (const char *)memchr(s, '@', (size_t)(pend - s));
        if (at && rsq__url_userinfo(u, s, (size_t)(at - s), err, errlen) != RSQ_OK)
            return RSQ_ERR_URL;
        s = at ? at + 1 : pend;
    }
    if (s >= pend || s[0] != '/') {
        rsq__fmt(err, errlen, "unix URL needs an absolute path: unix:///path/to/sock");
        return RSQ_ERR_URL;
    }
    if ((size_t)(pend - s) >= sizeof u->path) {
        rsq__fmt(err, errlen, "unix socket path too long (max %d bytes)", (int)sizeof u->path - 1);
        return RSQ_ERR_URL;
    }
    rsq__copy(u->path, sizeof u->path, s, (size_t)(pend - s));
    return q ? rsq__url_query(u, q + 1, end, err, errlen) : RSQ_OK;
}

/* The host of a redis:// URL at s[0..slash): a name, an IPv4 address or an [IPv6]
   address. *rest receives where the host ends. */
RSQ__INTERN rsq_result rsq__url_host(rsq_url *u, const char *s, const char *slash, const char **rest, char *err,
                                     size_t errlen) {
    const char *p = s;
    size_t colons = 0;
    for (p = s; p < slash; p++)
        colons += *p == ':';
    p = s;
    if (colons >= 2 && s < slash && s[0] != '[') {
        rsq__fmt(err, errlen, "IPv6 address without brackets in URL: write redis://[ADDRESS]:PORT, e.g. redis://[::1]:6379");
        return RSQ_ERR_URL;
    }
    if (s < slash && s[0] == '[') {
        const char *rb = (const char *)memchr(s, ']', (size_t)(slash - s));
        if (!rb || rb == s + 1) {
            rsq__fmt(err, errlen, "bad IPv6 address in URL");
            return RSQ_ERR_URL;
        }
        if ((size_t)(rb - s - 1) >= sizeof u->host) {
            rsq__fmt(err, errlen, "host name too long");
            return RSQ_ERR_URL;
        }
        rsq__copy(u->host, sizeof u->host, s + 1, (size_t)(rb - s - 1));
        *rest = rb + 1;
        if (*rest < slash && **rest != ':') {
            rsq__fmt(err, errlen, "unexpected characters after IPv6 address");
            return RSQ_ERR_URL;
        }
        return RSQ_OK;
    }
    for (; p < slash && *p != ':'; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch <= ' ' || ch == '[' || ch == ']' || ch >= 0x7f) {
            rsq__fmt(err, errlen, "bad character in host name");
            return RSQ_ERR_URL;
        }
    }
    if (p == s) {
        rsq__fmt(err, errlen, "URL has no host");
        return RSQ_ERR_URL;
    }
    if ((size_t)(p - s) >= sizeof u->host) {
        rsq__fmt(err, errlen, "host name too long");
        return RSQ_ERR_URL;
    }
    rsq__copy(u->host, sizeof u->host, s, (size_t)(p - s));
    *rest = p;
    return RSQ_OK;
}

/* redis:// and rediss://: s[0..end) is what follows the scheme: the authority
   ([user:password@]host[:port]) up to '/', then an optional /db. */
RSQ__INTERN rsq_result rsq__url_tcp(rsq_url *u, const char *s, const char *end, char *err, size_t errlen) {
    const char *slash = (const char *)memchr(s, '/', (size_t)(end - s)), *at = NULL, *p;
    if (!slash)
        slash = end;
    if (memchr(s, '?', (size_t)(end - s)) || memchr(s, '#', (size_t)(end - s))) {
        rsq__fmt(err, errlen, "unexpected query or fragment in URL");
        return RSQ_ERR_URL;
    }
    for (p = s; p < slash; p++)
        if (*p == '@')
            at = p; /* the last '@' ends the credentials */
    if (at) {
        if (rsq__url_userinfo(u, s, (size_t)(at - s), err, errlen) != RSQ_OK)
            return RSQ_ERR_URL;
        s = at + 1;
    }
    if (rsq__url_host(u, s, slash, &s, err, errlen) != RSQ_OK)
        return RSQ_ERR_URL;
    if (s < slash && s[0] == ':') {
        long port;
        if (!rsq__parse_uint_range(s + 1, (size_t)(slash - s - 1), 1, 65535, &port)) {
            rsq__fmt(err, errlen, "bad port in URL (expected 1..65535)");
            return RSQ_ERR_URL;
        }
        u->port = (int)port;
    }
    if (slash < end && slash + 1 < end && !rsq__parse_uint_range(slash + 1, (size_t)(end - slash - 1), 0, 1000000, &u->db)) {
        rsq__fmt(err, errlen, "bad db number in URL path (expected /N)");
        return RSQ_ERR_URL;
    }
    return RSQ_OK;
}

/* 1 when url starts with scheme (lower case, with "://"), in any letter case. */
RSQ__INTERN int rsq__scheme_is(const char *url, const char *scheme) {
    for (; *scheme; url++, scheme++) {
        char ch = *url >= 'A' && *url <= 'Z' ? (char)(*url - 'A' + 'a') : *url;
        if (ch != *scheme)
            return 0;
    }
    return 1;
}

RSQDEF rsq_result rsq_url_parse(rsq_url *u, const char *url, char *err, size_t errlen) {
    size_t n;
    rsq_result rc;
    if (err && errlen)
        err[0] = '\0';
    if (!u || !url) {
        rsq__fmt(err, errlen, "URL is NULL");
        return RSQ_ERR_ARG;
    }
    memset(u, 0, sizeof *u);
    u->port = 6379;
    n = strlen(url);
    if (n > 4096) {
        rsq__fmt(err, errlen, "URL too long");
        return RSQ_ERR_URL;
    }
    /* schemes are case-insensitive (RFC 3986): REDIS:// is redis:// */
    if (rsq__scheme_is(url, "redis://")) {
        rc = rsq__url_tcp(u, url + 8, url + n, err, errlen);
    } else if (rsq__scheme_is(url, "rediss://")) {
        u->tls = 1;
        rc = rsq__url_tcp(u, url + 9, url + n, err, errlen);
    } else if (rsq__scheme_is(url, "unix://")) {
        u->is_unix = 1;
        rc = rsq__url_unix(u, url + 7, url + n, err, errlen);
    } else {
        rsq__fmt(err, errlen, "URL must start with redis://, rediss:// or unix://");
        return RSQ_ERR_URL;
    }
    if (rc != RSQ_OK)
        return rc;
    if (u->user[0] && !u->has_password) {
        rsq__fmt(err, errlen, "URL has a user name but no password");
        return RSQ_ERR_URL;
    }
    return RSQ_OK;
}

/* ------------------------------------------------------------------------------------ */
// >>ids (implementation)
RSQDEF int rsq_id_parse(const char *s, size_t n, rsq_id *out) {
    const char *p = s, *e;
    uint64_t v[2] = { 0, 0 };
    int k;
    if (!s || !out || n == 0) return 0;
    e = s + n;
    for (k = 0; k < 2; k++) {
        const char *first = p;
        uint64_t x = 0;
        while (p < e && (unsigned)(*p - '0') <= 9) {
            unsigned d = (unsigned)(*p++ - '0');
            if (x >= 1844674407370955161ULL && (x > 1844674407370955161ULL || d > 5)) return 0;
            x = x * 10 + d;
        }
        if (p == first) return 0;
        v[k] = x;
        if (p == e) break;
        if (k == 1 || *p != '-') return 0;
        p++;
    }
    out->ms = v[0];
    out->seq = v[1];
    return 1;
}

RSQDEF size_t rsq_id_format(rsq_id id, char *buf) {
    size_t n = rsq__u64_to_dec(buf, id.ms);
    buf[n++] = '-';
    return n + rsq__u64_to_dec(buf + n, id.seq);
}

RSQDEF int rsq_id_cmp(rsq_id a, rsq_id b) {
    if (a.ms != b.ms) return a.ms < b.ms ? -1 : 1;
    if (a.seq != b.seq) return a.seq < b.seq ? -1 : 1;
    return 0;
}

RSQ__INTERN int rsq__reply_id(const rsq_reply *r, rsq_id *out) {
    if (!r || (r->type != RSQ_REPLY_STRING && r->type != RSQ_REPLY_STATUS)) return 0;
    return rsq_id_parse(r->str, r->len, out);
}

/* The ID right after id (seq + 1, carrying into ms): as an inclusive range start it
   reads as Redis 6.2's exclusive "(id", on every version. 0 when id is the largest. */
RSQ__INTERN int rsq__id_succ(rsq_id id, rsq_id *out) {
    if (id.seq != UINT64_MAX) {
        out->ms = id.ms;
        out->seq = id.seq + 1;
        return 1;
    }
    if (id.ms == UINT64_MAX) return 0;
    out->ms = id.ms + 1;
    out->seq = 0;
    return 1;
}

/* The ID right after id: the inclusive start of "entries after id" (the exclusive
   form "(id" needs Redis 6.2). */
RSQ__INTERN rsq_id rsq__id_next(rsq_id id) {
    if (id.seq != UINT64_MAX) {
        id.seq++;
        return id;
    }
    id.ms++;
    id.seq = 0;
    return id;
}

/* ------------------------------------------------------------------------------------ */
// >>keys (implementation)
/* The hash tag of s, by Redis Cluster's rule: the first '{', the first '}' after it,
   and at least one byte between. 1 with their offsets, else 0 (the whole key hashes). */
RSQ__INTERN int rsq__hash_tag(const char *s, size_t n, size_t *open, size_t *close) {
    size_t i, j;
    for (i = 0; i < n; i++)
        if (s[i] == '{') {
            for (j = i + 1; j < n; j++)
                if (s[j] == '}') {
                    if (j == i + 1) return 0;
                    *open = i;
                    *close = j;
                    return 1;
                }
            return 0;
        }
    return 0;
}

/* 1 when the keys of queue name q[0..n) can share its slot: q has a hash tag (kept in
   every derived key), or q holds no '}' (then "{q}" is a tag whose content is q). */
RSQ__INTERN int rsq__queue_name_ok(const char *q, size_t n) {
    size_t o, cl;
    return rsq__hash_tag(q, n, &o, &cl) || !memchr(q, '}', n);
}

/* Appends s[0..n) at out + *w, keeping room for the terminator; 0 when it does not fit. */
RSQ__INTERN int rsq__key_put(char *out, size_t cap, size_t *w, const char *s, size_t n) {
    if (n >= cap - *w) return 0;
    memcpy(out + *w, s, n);
    *w += n;
    return 1;
}

/* A key of the queue's own in the slot of stream key sk: "{TAG}:<infix><name>", TAG
   being sk's hash tag, else all of sk (the idempotency marks, the retry streams).
   NUL-terminated; its length, or 0 when it does not fit in cap. */
RSQ__INTERN size_t rsq__slot_key(char *out, size_t cap, const char *sk, size_t skn, const char *infix, const char *name,
                                 size_t nn) {
    size_t o, cl, w = 0;
    if (rsq__hash_tag(sk, skn, &o, &cl)) { sk += o + 1; skn = cl - o - 1; }
    if (!rsq__key_put(out, cap, &w, "{", 1) || !rsq__key_put(out, cap, &w, sk, skn) ||
        !rsq__key_put(out, cap, &w, "}:", 2) || !rsq__key_put(out, cap, &w, infix, strlen(infix)) ||
        !rsq__key_put(out, cap, &w, name, nn))
        return 0;
    out[w] = '\0';
    return w;
}

RSQDEF size_t rsq_queue_key(char *out, size_t cap, const char *queue, int shard, int level, rsq_key_kind kind) {
    char num[24], sh[24];
    const char *suffix = "";
    size_t qn, o = 0, cl = 0, w = 0, sn = 0, shn = 0;
    int tagged;
    if (!out || cap == 0 || !queue || !queue[0] || shard < 0 || shard >= RSQ_MAX_SHARDS ||
        level < 0 || level >= RSQ_MAX_PRIORITIES)
        return 0;
    qn = strlen(queue);
    if (qn >= RSQ_KEY_MAX || !rsq__queue_name_ok(queue, qn)) return 0;
    tagged = rsq__hash_tag(queue, qn, &o, &cl);
    if (shard > 0) { /* the shard number: ":s<s>", inside the tag */
        sh[0] = ':'; sh[1] = 's';
        shn = 2 + rsq__u64_to_dec(sh + 2, (uint64_t)shard);
    }
    if (kind == RSQ_KEY_DEAD_LETTER) { suffix = ":dlq"; sn = 4; }
    else if (kind == RSQ_KEY_DELAYED) { suffix = ":delayed"; sn = 8; }
    else if (kind != RSQ_KEY_STREAM) return 0;
    else if (level > 0) {
        num[0] = ':'; num[1] = 'p';
        sn = 2 + rsq__u64_to_dec(num + 2, (uint64_t)level);
        suffix = num;
    }
    if (tagged) {
        /* Q's tag stays the first one: the shard number goes inside it, the suffix after */
        if (!rsq__key_put(out, cap, &w, queue, cl)) return 0;
        if (!rsq__key_put(out, cap, &w, sh, shn)) return 0;
        if (!rsq__key_put(out, cap, &w, queue + cl, qn - cl)) return 0;
    } else if (shard == 0 && sn == 0) {
        if (!rsq__key_put(out, cap, &w, queue, qn)) return 0;
    } else {
        /* no '}' in Q (checked above): "{Q...}" is a tag holding all of Q */
        if (!rsq__key_put(out, cap, &w, "{", 1) || !rsq__key_put(out, cap, &w, queue, qn)) return 0;
        if (!rsq__key_put(out, cap, &w, sh, shn)) return 0;
        if (!rsq__key_put(out, cap, &w, "}", 1)) return 0;
    }
    if (!rsq__key_put(out, cap, &w, suffix, sn)) return 0;
    out[w] = '\0';
    return w;
}

/* RSQ_ERR_ARG for a queue name whose keys rsq_queue_key cannot derive, with the rule
   that refused it in rsq_errstr(c). */
RSQ__INTERN rsq_result rsq__queue_name_error(rsq_client *c, const char *queue) {
    size_t n = strlen(queue);
    if (!rsq__queue_name_ok(queue, n))
        return rsq__set_err(c, RSQ_ERR_ARG,
                            "queue name \"%.64s\" holds '}' but no hash tag (a non-empty {tag}: the text between the "
                            "first '{' and the first '}' after it), so its derived keys cannot share its cluster slot; "
                            "put a tag in the name, e.g. {orders}.eu",
                            queue);
    return rsq__set_err(c, RSQ_ERR_ARG, "queue name too long for its derived keys (at most %d bytes each)", RSQ_KEY_MAX - 1);
}
RSQ__INTERN rsq_result rsq__check_key(rsq_client *c, const char *what, const char *key) {
    (void)what; /* used by the error texts only */
    size_t n;
    if (!key) return rsq__set_err(c, RSQ_ERR_ARG, "%s is NULL", what);
    n = strlen(key);
    if (n == 0) return rsq__set_err(c, RSQ_ERR_ARG, "%s is empty", what);
    if (n >= RSQ_KEY_MAX) return rsq__set_err(c, RSQ_ERR_ARG, "%s is longer than %d bytes", what, RSQ_KEY_MAX - 1);
    return RSQ_OK;
}

/* ------------------------------------------------------------------------------------ */
// >>connection (implementation): links to a server: connect, handshake, write, read
#define RSQ__DEF_URL "redis://127.0.0.1:6379"

RSQ__INTERN uint64_t rsq__now(rsq_client *c) {
    if (c->tp.now_ms) return c->tp.now_ms(c->tp.user);
    return 0;
}

RSQ__INTERN uint64_t rsq__rand(rsq_client *c) {
    /* xorshift64*: per-client, no global state */
    uint64_t x = c->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    c->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Backoff before attempt `attempt` (0-based): full range [d/2, d], d = base*2^attempt capped. */
RSQ__INTERN int rsq__backoff_ms(rsq_client *c, int attempt) {
    uint64_t d = (uint64_t)c->retry_base_ms;
    int i;
    for (i = 0; i < attempt && d < (uint64_t)c->retry_max_ms; i++) d *= 2;
    if (d > (uint64_t)c->retry_max_ms) d = (uint64_t)c->retry_max_ms;
    return (int)(d / 2 + rsq__rand(c) % (d / 2 + 1));
}

/* A stop request of the consumer using this client (see rsq_consumer_stop). */
RSQ__INTERN int rsq__stopped(const rsq_client *c) { return c->intr && *c->intr; }

/* Backoff pause; in slices while a stop request may come. */
RSQ__INTERN void rsq__sleep(rsq_client *c, int ms) {
    if (!c->tp.sleep_ms) return;
    if (c->call_deadline) {
        uint64_t now = rsq__now(c);
        ms = now >= c->call_deadline ? 0 : (int)RSQ__MIN((uint64_t)ms, c->call_deadline - now);
    }
    while (ms > 0 && !rsq__stopped(c)) {
        int slice = c->intr && ms > 100 ? 100 : ms;
        c->tp.sleep_ms(c->tp.user, slice);
        ms -= slice;
    }
}

RSQ__INTERN int rsq__retry_allowed(rsq_client *c, int attempt) {
    if (c->call_deadline && rsq__now(c) >= c->call_deadline) return 0; /* the caller's time is up */
    return c->retry_attempts == RSQ_RETRY_FOREVER || attempt + 1 < c->retry_attempts;
}

/* Classifies a server error line by its first word. */
RSQ__INTERN rsq_result rsq__classify(const char *s, size_t n) {
    static const struct { const char *word; rsq_result rc; } tab[] = {
        { "WRONGPASS", RSQ_ERR_AUTH }, { "NOAUTH", RSQ_ERR_AUTH }, { "NOPERM", RSQ_ERR_NOPERM },
        { "WRONGTYPE", RSQ_ERR_WRONGTYPE }, { "NOGROUP", RSQ_ERR_NOGROUP }, { "LOADING", RSQ_ERR_RETRY },
        { "BUSY", RSQ_ERR_RETRY }, { "TRYAGAIN", RSQ_ERR_RETRY }, { "MASTERDOWN", RSQ_ERR_RETRY },
        { "READONLY", RSQ_ERR_RETRY }, { "CLUSTERDOWN", RSQ_ERR_RETRY }, { "MOVED", RSQ_ERR_MOVED },
        { "ASK", RSQ_ERR_MOVED }, { "CROSSSLOT", RSQ_ERR_MOVED }
    };
    size_t w = 0, i;
    while (w < n && s[w] != ' ') w++;
    for (i = 0; i < RSQ__COUNTOF(tab); i++)
        if (strlen(tab[i].word) == w && !memcmp(s, tab[i].word, w)) return tab[i].rc;
    if ((n >= 20 && !memcmp(s, "ERR invalid password", 20)) || (n >= 8 && !memcmp(s, "ERR AUTH", 8)))
        return RSQ_ERR_AUTH;
    if (n >= 33 && !memcmp(s, "ERR max number of clients reached", 33))
        return RSQ_ERR_CONNECT; /* sent on accept, then the server closes: a refused connection */
    return RSQ_ERR_SERVER;
}

/* A NOPERM for a key does not say which key (Redis 6 and 7 alike): the command and
   its key are added to the error text, " (XADD on key {q:s1})". Returns rc. */
RSQ__INTERN rsq_result rsq__noperm_key(rsq_client *c, rsq_result rc, const char *cmd, size_t cmdlen, const char *key,
                                       size_t keylen) {
    size_t n = strlen(c->err);
    if (rc == RSQ_ERR_NOPERM && key && strstr(c->err, " key") && n + 16 < sizeof c->err)
        rsq__fmt(c->err + n, sizeof c->err - n, " (%.*s on key %.*s)", (int)RSQ__MIN(cmdlen, (size_t)32), cmd,
                 (int)RSQ__MIN(keylen, (size_t)RSQ_KEY_MAX), key);
    return rc;
}

/* RSQ_ERR_CONNECT from a reply, not from connecting: the server took the connection
   but is full ("max number of clients reached") and closed it; the command did not
   run, and a later attempt may find room. */
RSQ__INTERN int rsq__server_full(const rsq_client *c, rsq_result rc) {
    return rc == RSQ_ERR_CONNECT && !strncmp(c->err, "ERR max number of clients", 25);
}

/* A connection-level failure: replies from here on are lost. */
RSQ__INTERN int rsq__link_error(rsq_result rc) {
    return rc == RSQ_ERR_IO || rc == RSQ_ERR_TIMEOUT || rc == RSQ_ERR_PROTOCOL || rc == RSQ_ERR_LIMIT ||
           rc == RSQ_ERR_CONNECT || rc == RSQ_ERR_RESOLVE;
}

/* Errors a fresh connect attempt may cure. */
RSQ__INTERN int rsq__connect_retryable(rsq_result rc) {
    return rc == RSQ_ERR_CONNECT || rc == RSQ_ERR_TIMEOUT || rc == RSQ_ERR_IO || rc == RSQ_ERR_RESOLVE ||
           rc == RSQ_ERR_RETRY || rc == RSQ_ERR_PROTOCOL;
}

RSQDEF void rsq_client_config_init(rsq_client_config *cfg) {
    if (cfg) memset(cfg, 0, sizeof *cfg);
}

RSQDEF rsq_result rsq_client_init(rsq_client *c, const rsq_client_config *cfg) {
    rsq_client_config z;
    rsq_result rc;
    char why[160];
    if (!c) return RSQ_ERR_ARG;
    memset(c, 0, sizeof *c);
    if (!cfg) { memset(&z, 0, sizeof z); cfg = &z; }
    if (!rsq__alloc_resolve(&c->alloc, &cfg->allocator))
        return rsq__set_err(c, RSQ_ERR_ARG, "allocator: set all of malloc_fn, realloc_fn, free_fn or none");
    if (cfg->transport) c->tp = *cfg->transport;
#ifndef RSQ_NO_SOCKETS
    else c->tp = *rsq_socket_transport();
#else
    else return rsq__set_err(c, RSQ_ERR_ARG, "a transport is required (built with RSQ_NO_SOCKETS)");
#endif
    if (!c->tp.open || !c->tp.send || !c->tp.recv || !c->tp.close)
        return rsq__set_err(c, RSQ_ERR_ARG, "transport lacks open, send, recv or close");
#ifndef RSQ_NO_SOCKETS
    if (!c->tp.now_ms) c->tp.now_ms = rsq__sock_now;
    if (!c->tp.sleep_ms) c->tp.sleep_ms = rsq__sock_sleep;
#else
    if (!c->tp.now_ms) return rsq__set_err(c, RSQ_ERR_ARG, "transport->now_ms is required with RSQ_NO_SOCKETS");
#endif
    if (cfg->protocol != 0 && cfg->protocol != 2 && cfg->protocol != 3)
        return rsq__set_err(c, RSQ_ERR_ARG, "protocol must be 2 or 3");
    if (cfg->connect_timeout_ms < 0 || cfg->io_timeout_ms < 0 || cfg->block_margin_ms < 0 ||
        cfg->retry_base_ms < 0 || cfg->retry_max_ms < 0 || cfg->retry_attempts < RSQ_RETRY_FOREVER)
        return rsq__set_err(c, RSQ_ERR_ARG, "timeouts and retry settings must not be negative");
    rc = rsq_url_parse(&c->url, cfg->url ? cfg->url : RSQ__DEF_URL, why, sizeof why);
    if (rc != RSQ_OK) return rsq__set_err(c, rc, "%s", why);
    if (cfg->name) {
        size_t i, n = strlen(cfg->name);
        if (n >= sizeof c->name) return rsq__set_err(c, RSQ_ERR_ARG, "client name too long");
        for (i = 0; i < n; i++)
            if ((unsigned char)cfg->name[i] <= ' ') return rsq__set_err(c, RSQ_ERR_ARG, "client name must not contain spaces");
        memcpy(c->name, cfg->name, n + 1);
    }
    c->protocol = RSQ__DEF(cfg->protocol, 2);
    c->connect_timeout_ms = RSQ__DEF(cfg->connect_timeout_ms, 5000);
    c->io_timeout_ms = RSQ__DEF(cfg->io_timeout_ms, 10000);
    c->block_margin_ms = RSQ__DEF(cfg->block_margin_ms, 2000);
    c->retry_base_ms = RSQ__DEF(cfg->retry_base_ms, 50);
    c->retry_max_ms = RSQ__MAX(RSQ__DEF(cfg->retry_max_ms, 5000), c->retry_base_ms);
    c->retry_attempts = RSQ__DEF(cfg->retry_attempts, 10);
    rsq__limits_apply(&c->limits, &cfg->limits);
    c->log = cfg->logger;
    rsq_reader_init(&c->node.rd, &c->limits, &c->alloc);
    c->rng = rsq__now(c) ^ ((uint64_t)(uintptr_t)c << 16) ^ 0x9E3779B97F4A7C15ULL;
    if (!c->rng) c->rng = 1;
    c->initialized = 1;
    return RSQ_OK;
}

RSQ__INTERN void rsq__node_close(rsq_client *c, rsq__node *n) {
    if (n->handle) c->tp.close(c->tp.user, n->handle);
    n->handle = NULL;
    if (n->connected) c->epoch++;
    if (n->written) c->written_lost = 1; /* a WAIT on another connection cannot cover them */
    n->written = 0;
    n->connected = 0;
    n->stale = 0;
    n->wlen = n->wsent = 0;
    n->pending = 0;
    rsq_reader_reset(&n->rd);
    c->server_version = 0;
}

/* Drops the connection after a failure, keeping rc and the message in c->err. */
RSQ__INTERN rsq_result rsq__drop(rsq_client *c, rsq__node *n, rsq_result rc) {
    int was = n->connected;
    rsq__node_close(c, n);
    if (was) rsq__log(c, rc == RSQ_STOPPED ? RSQ_LOG_INFO : RSQ_LOG_WARN, RSQ_LOGI_DISCONNECTED, "connection closed: %s", c->err);
    return rc;
}

/* Closes every connection (a lost link in a cluster pipeline: the replies owed by all
   nodes are given up together, so no connection is left out of step). */
RSQ__INTERN void rsq__close_all(rsq_client *c) {
    int i;
    rsq__node_close(c, &c->node);
    for (i = 0; i < c->nnodes; i++) rsq__node_close(c, &c->nodes[i]);
    c->order_head = c->order_len = 0;
    if (RSQ__IN_CLUSTER(c)) c->map_stale = 1;
}

/* Overwrites memory that held credentials; the volatile writes are not optimised away. */
RSQ__INTERN void rsq__wipe(void *p, size_t n) {
    volatile unsigned char *v = (volatile unsigned char *)p;
    while (n--) *v++ = 0;
}

RSQDEF void rsq_client_free(rsq_client *c) {
    int i;
    if (!c || !c->initialized) return;
    rsq__close_all(c);
    rsq_reader_free(&c->node.rd);
    /* the password, and the write buffers that carried AUTH / HELLO ... AUTH */
    rsq__wipe(&c->url, sizeof c->url);
    if (c->node.wbuf) rsq__wipe(c->node.wbuf, c->node.wcap);
    rsq__free(&c->alloc, c->node.wbuf);
    for (i = 0; i < c->nnodes; i++) {
        rsq_reader_free(&c->nodes[i].rd);
        if (c->nodes[i].wbuf) rsq__wipe(c->nodes[i].wbuf, c->nodes[i].wcap);
        rsq__free(&c->alloc, c->nodes[i].wbuf);
    }
    rsq__free(&c->alloc, c->nodes);
    rsq__free(&c->alloc, c->slots);
    rsq__free(&c->alloc, c->order);
    c->nodes = NULL;
    c->slots = c->order = NULL;
    c->node.wbuf = NULL;
    c->node.wcap = 0;
    c->initialized = 0;
}

RSQDEF void rsq_disconnect(rsq_client *c) {
    if (c && c->initialized) rsq__close_all(c);
}
RSQDEF size_t rsq_pending_replies(const rsq_client *c) { return !c ? 0 : RSQ__IN_CLUSTER(c) ? c->order_len : c->node.pending; }

/* An internal exchange failed half-way with replies still owed (an append refused
   after others went out, a reply that ended the loop early): the link is dropped, so
   that no later call finds itself out of step ("pipelined replies are still unread").
   Returns rc. */
RSQ__INTERN rsq_result rsq__resync(rsq_client *c, rsq_result rc) {
    if (rsq_pending_replies(c)) rsq__close_all(c);
    return rc;
}

RSQDEF int rsq_is_connected(const rsq_client *c) {
    int i;
    if (!c) return 0;
    if (c->node.connected) return 1;
    for (i = 0; i < c->nnodes; i++) if (c->nodes[i].connected) return 1;
    return 0;
}
RSQDEF const char *rsq_errstr(const rsq_client *c) { return c ? c->err : "client is NULL"; }
RSQDEF int rsq_client_is_cluster(const rsq_client *c) { return c && RSQ__IN_CLUSTER(c); }
RSQDEF void rsq_client_get_stats(const rsq_client *c, rsq_client_stats *out) { *out = c->stats; }

RSQDEF int rsq_client_fd(const rsq_client *c) {
    if (!c || !c->node.connected || !c->tp.fd) return -1;
    return c->tp.fd(c->tp.user, c->node.handle);
}

RSQDEF int rsq_client_wants(const rsq_client *c) {
    int w = 0;
    if (!c || !c->node.connected) return 0;
    if (c->node.wsent < c->node.wlen) w |= RSQ_WANT_WRITE;
    if (c->node.pending) w |= RSQ_WANT_READ;
    return w;
}

/* Milliseconds left until deadline (0 = already passed). */
RSQ__INTERN int rsq__left(rsq_client *c, uint64_t deadline) {
    uint64_t now = rsq__now(c);
    if (now >= deadline) return 0;
    return (int)RSQ__MIN(deadline - now, (uint64_t)RSQ_TIMEOUT_FOREVER);
}

RSQ__INTERN uint64_t rsq__deadline(rsq_client *c, int timeout_ms) {
    uint64_t d;
    if (timeout_ms == RSQ_TIMEOUT_DEFAULT) timeout_ms = c->io_timeout_ms;
    d = timeout_ms >= RSQ_TIMEOUT_FOREVER ? UINT64_MAX : rsq__now(c) + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
    return c->call_deadline && c->call_deadline < d ? c->call_deadline : d;
}

/* Appends one encoded command to the node's write buffer. */
RSQ__INTERN rsq_result rsq__node_append(rsq_client *c, rsq__node *n, int argc, const char *const *argv, const size_t *lens) {
    size_t need = 0, i;
    char *w;
    size_t k;
    need = 1 + 20 + 2;
    for (i = 0; i < (size_t)argc; i++) {
        size_t len = lens ? lens[i] : strlen(argv[i]);
        if (len > ((size_t)-1) / 2 - need) return rsq__set_err(c, RSQ_ERR_ARG, "command too large");
        need += 1 + 20 + 2 + len + 2;
    }
    if (n->wsent > 0 && n->wsent == n->wlen) n->wsent = n->wlen = 0;
    if (n->wlen + need > n->wcap) {
        void *nb = rsq__grow(&c->alloc, n->wbuf, &n->wcap, n->wlen + need, 1, 4096);
        if (!nb) return rsq__set_err(c, RSQ_ERR_NOMEM, "out of memory for the write buffer");
        n->wbuf = (char *)nb;
    }
    w = n->wbuf + n->wlen;
    *w++ = '*';
    k = rsq__u64_to_dec(w, (uint64_t)argc); w += k;
    *w++ = '\r'; *w++ = '\n';
    for (i = 0; i < (size_t)argc; i++) {
        size_t len = lens ? lens[i] : strlen(argv[i]);
        *w++ = '$';
        if (len < 10) *w++ = (char)('0' + len);
        else if (len < 100) {
            w[0] = (char)('0' + len / 10);
            w[1] = (char)('0' + len % 10);
            w += 2;
        }
        else { k = rsq__u64_to_dec(w, (uint64_t)len); w += k; }
        *w++ = '\r'; *w++ = '\n';
        if (len) { memcpy(w, argv[i], len); w += len; }
        *w++ = '\r'; *w++ = '\n';
    }
    n->wlen = (size_t)(w - n->wbuf);
    n->pending++;
    c->stats.commands++;
    return RSQ_OK;
}

/* Waits until n is ready for `events` or the deadline passes; a stop request
   (c->intr) ends the wait. RSQ_OK: try again. Otherwise the connection is dropped (a
   reply may still be owed: it could not be reused) and the error returned. */
RSQ__INTERN rsq_result rsq__node_wait(rsq_client *c, rsq__node *n, int events, uint64_t deadline, const char *doing) {
    (void)doing; /* used by the error texts only */
    int left = rsq__left(c, deadline);
    rsq_result w;
    if (left == 0) {
        rsq__set_err(c, RSQ_ERR_TIMEOUT, "timed out %s", doing);
        return rsq__drop(c, n, RSQ_ERR_TIMEOUT);
    }
    if (c->intr && c->intr_wait) {
        if (*c->intr) {
            rsq__set_err(c, RSQ_STOPPED, "stopped while %s", doing);
            return rsq__drop(c, n, RSQ_STOPPED);
        }
        if (left > 100) left = 100;
    }
    w = c->tp.wait ? c->tp.wait(c->tp.user, n->handle, events, left) : RSQ_OK;
    if (w != RSQ_OK && w != RSQ_ERR_TIMEOUT) {
        rsq__set_err(c, RSQ_ERR_IO, "connection lost while %s", doing);
        return rsq__drop(c, n, RSQ_ERR_IO);
    }
    return RSQ_OK;
}

/* A send or recv of the transport failed (k < 0): the connection is dropped with
   RSQ_ERR_TLS when the transport says that the server ended the TLS session (an
   alert), else with RSQ_ERR_IO and the text `lost`. */
RSQ__INTERN rsq_result rsq__io_failed(rsq_client *c, rsq__node *n, long k, const char *lost) {
    (void)lost; /* used by the error texts only */
    if (k == (long)RSQ_ERR_TLS) {
        rsq__set_err(c, RSQ_ERR_TLS, "the server closed the TLS session (%s): likely it requires a client certificate "
                     "and none, or one it does not trust, was presented", lost);
        return rsq__drop(c, n, RSQ_ERR_TLS);
    }
    rsq__set_err(c, RSQ_ERR_IO, "%s", lost);
    return rsq__drop(c, n, RSQ_ERR_IO);
}

/* One receive into the node's reader: RSQ_OK when bytes came, RSQ_AGAIN when none are
   there now; else the error, the connection dropped (`lost` is its text). */
RSQ__INTERN rsq_result rsq__node_recv(rsq_client *c, rsq__node *n, const char *lost) {
    char *buf;
    size_t avail;
    long k;
    rsq_result rc = rsq_reader_space(&n->rd, RSQ_READ_CHUNK, &buf, &avail);
    if (rc != RSQ_OK) {
        rsq__set_err(c, rc, "%s", rsq_reader_errstr(&n->rd));
        return rsq__drop(c, n, rc);
    }
    k = c->tp.recv(c->tp.user, n->handle, buf, avail);
    if (k < 0)
        return rsq__io_failed(c, n, k, lost);
    if (k == 0)
        return RSQ_AGAIN;
    rsq_reader_commit(&n->rd, (size_t)k);
    c->stats.bytes_in += (uint64_t)k;
    return RSQ_OK;
}

/* Writes the node's buffer until empty or the deadline (0 = non-blocking). */
RSQ__INTERN rsq_result rsq__node_flush(rsq_client *c, rsq__node *n, uint64_t deadline, int nonblock) {
    while (n->wsent < n->wlen) {
        long k = c->tp.send(c->tp.user, n->handle, n->wbuf + n->wsent, n->wlen - n->wsent);
        rsq_result w;
        if (k < 0)
            return rsq__io_failed(c, n, k, "write failed: connection lost");
        n->wsent += (size_t)k;
        c->stats.bytes_out += (uint64_t)k;
        if (k > 0)
            continue;
        if (nonblock)
            return RSQ_AGAIN;
        if ((w = rsq__node_wait(c, n, RSQ_WANT_WRITE, deadline, "writing a command")) != RSQ_OK)
            return w;
    }
    n->wsent = n->wlen = 0;
    return RSQ_OK;
}

/* A reply was taken from node n: count it; for an error reply, copy the server's line
   into c->err and return its class (a redirect marks the client for cluster mode). */
RSQ__INTERN rsq_result rsq__took_reply(rsq_client *c, rsq__node *n, const rsq_reply *r) {
    rsq_result e;
    n->pending--;
    c->stats.replies++;
    if (r->type != RSQ_REPLY_ERROR) return RSQ_OK;
    e = rsq__classify(r->str, r->len);
    rsq__copy(c->err, sizeof c->err, r->str, r->len);
    if (e == RSQ_ERR_CONNECT) return rsq__drop(c, n, e); /* refused: the replies owed went with it */
    if (e == RSQ_ERR_RETRY && (!strncmp(r->str, "READONLY", 8) || !strncmp(r->str, "MASTERDOWN", 10)))
        n->stale = 1; /* the node changed role: whatever the address leads to now */
    if (e == RSQ_ERR_MOVED) {
        c->cluster_seen = 1; /* a cluster: switch at the next command */
        if (RSQ__IN_CLUSTER(c) && r->len >= 9 && !memcmp(r->str, "CROSSSLOT", 9)) e = RSQ_ERR_SERVER; /* the caller's keys */
    }
    return e;
}

/* Reads the next reply from the node, with deadline or non-blocking. Server error
   replies are classified and their line copied into c->err. */
RSQ__INTERN rsq_result rsq__node_read(rsq_client *c, rsq__node *n, const rsq_reply **out, uint64_t deadline, int nonblock) {
    int pushes = 0;
    *out = NULL;
    if (!n->connected)
        return rsq__set_err(c, RSQ_ERR_IO, "not connected");
    if (n->pending == 0)
        return rsq__set_err(c, RSQ_ERR_STATE, "no reply pending");
    for (;;) {
        const rsq_reply *r;
        rsq_result rc = rsq_reader_next(&n->rd, &r);
        if (rc == RSQ_OK && r->type != RSQ_REPLY_PUSH) {
            *out = r;
            return rsq__took_reply(c, n, r);
        }
        if (rc == RSQ_OK) {
            rsq__log(c, RSQ_LOG_DEBUG, RSQ_LOGI_PUSH_IGNORED, "push message ignored");
            if (nonblock && ++pushes >= 256)
                return RSQ_AGAIN; /* bounded work per call */
            if (!nonblock && rsq__left(c, deadline) == 0) { /* an endless flood is no reply */
                rsq__set_err(c, RSQ_ERR_TIMEOUT, "timed out waiting for a reply (only push messages came)");
                return rsq__drop(c, n, RSQ_ERR_TIMEOUT);
            }
            continue;
        }
        if (rc != RSQ_EMPTY) {
            rsq__set_err(c, rc, "%s", rsq_reader_errstr(&n->rd));
            rsq__log(c, RSQ_LOG_ERROR, RSQ_LOGI_PROTOCOL, "protocol error: %s", c->err);
            return rsq__drop(c, n, rc);
        }
        if (n->wsent < n->wlen && (rc = rsq__node_flush(c, n, deadline, nonblock)) != RSQ_OK)
            return rc;
        rc = rsq__node_recv(c, n, "connection lost while reading a reply");
        if (rc == RSQ_AGAIN && !nonblock)
            rc = rsq__node_wait(c, n, RSQ_WANT_READ, deadline, "waiting for a reply");
        if (rc != RSQ_OK)
            return rc;
    }
}

/* Before the first write to a connection that owes no replies: a node that changed
   role (it said READONLY or MASTERDOWN) is left, so that the address is looked up
   again; a connection the server closed meanwhile (idle timeout, CLIENT KILL, a
   restart) is noticed here, without waiting, and closed, so that the command goes once
   over a new one instead of being lost with the old one. Readable with nothing owed
   means the peer closed, reset, or sent a parting error; push messages (RESP3) are the
   exception: kept for the reader, which skips them. Needs the transport's wait; a
   blocking transport is not asked. */
RSQ__INTERN void rsq__node_check_idle(rsq_client *c, rsq__node *n) {
    if (n->stale && n->connected && !n->pending) {
        rsq__drop(c, n, RSQ_ERR_RETRY); /* c->err: the READONLY/MASTERDOWN line */
        return;
    }
    if (!n->connected || n->pending || n->wsent < n->wlen || !c->tp.wait ||
        c->tp.wait(c->tp.user, n->handle, RSQ_WANT_READ, 0) != RSQ_OK)
        return;
    for (;;) {
        const rsq_reply *r;
        rsq_result rc = rsq_reader_next(&n->rd, &r);
        if (rc == RSQ_OK && r->type == RSQ_REPLY_PUSH)
            continue;
        if (rc == RSQ_OK) {
            rsq__set_err(c, RSQ_ERR_IO, "unexpected reply while idle: %.*s", (int)RSQ__MIN(r->len, (size_t)160),
                         r->str ? r->str : "");
            rsq__drop(c, n, RSQ_ERR_IO);
            return;
        }
        if (rc != RSQ_EMPTY) {
            rsq__set_err(c, rc, "%s", rsq_reader_errstr(&n->rd));
            rsq__drop(c, n, rc);
            return;
        }
        /* nothing after all, or the rest of a push to come (RSQ_AGAIN); or closed */
        if (rsq__node_recv(c, n, "connection closed by the server while idle") != RSQ_OK)
            return;
    }
}

/* Opens the transport to host:port, or (host NULL) to the URL's endpoint, within the
   connect timeout (and the call's deadline). *ep receives the endpoint. */
RSQ__INTERN rsq_result rsq__node_open(rsq_client *c, rsq__node *n, const char *host, int port, rsq_endpoint *ep) {
    char why[200];
    int ms = c->connect_timeout_ms;
    rsq_result rc;
    memset(ep, 0, sizeof *ep);
    ep->tls = c->url.tls;
    if (host) {
        ep->host = host;
        ep->port = port;
    } else if (c->url.is_unix) {
        ep->path = c->url.path;
    } else {
        ep->host = c->url.host;
        ep->port = c->url.port;
    }
    why[0] = '\0';
    if (c->call_deadline)
        ms = RSQ__MAX(RSQ__MIN(ms, rsq__left(c, c->call_deadline)), 1);
    rc = c->tp.open(c->tp.user, ep, ms, &n->handle, why, sizeof why);
    if (rc != RSQ_OK) {
        n->handle = NULL;
        return rsq__set_err(c, rc, "%s", why[0] ? why : rsq_result_str(rc));
    }
    n->connected = 1;
    n->wlen = n->wsent = 0;
    n->pending = 0;
    rsq_reader_reset(&n->rd);
    return RSQ_OK;
}

/* Appends the handshake: HELLO 3 [AUTH] [SETNAME] (protocol 3), else AUTH and CLIENT
   SETNAME as configured; SELECT for a db other than 0 (not to cluster nodes: a
   cluster has only db 0). what[] receives a name per command, *steps their count. */
RSQ__INTERN rsq_result rsq__handshake_send(rsq_client *c, rsq__node *n, int cluster_node, const char **what, int *steps) {
    const char *argv[7];
    size_t lens[7];
    rsq__args a = rsq__args_on(argv, lens, 7);
    char db[24];
    rsq_result rc = RSQ_OK;
    *steps = 0;
    if (c->protocol == 3) {
        rsq__args_list(&a, "HELLO", "3", (char *)0);
        if (c->url.has_password)
            rsq__args_list(&a, "AUTH", c->url.user[0] ? c->url.user : "default", c->url.password, (char *)0);
        if (c->name[0])
            rsq__args_list(&a, "SETNAME", c->name, (char *)0);
        rc = rsq__node_append(c, n, a.argc, argv, lens);
        what[(*steps)++] = "HELLO 3";
    } else if (c->url.has_password) {
        rsq__arg(&a, "AUTH");
        /* "default" is the user of plain AUTH (Redis >= 6.0); before 6.0, with no ACL
           users, only plain AUTH is understood */
        if (c->url.user[0] && strcmp(c->url.user, "default"))
            rsq__arg(&a, c->url.user);
        rsq__arg(&a, c->url.password);
        rc = rsq__node_append(c, n, a.argc, argv, lens);
        what[(*steps)++] = "AUTH";
    }
    if (rc == RSQ_OK && c->protocol != 3 && c->name[0] && !c->name_refused) {
        a.argc = 0;
        rsq__args_list(&a, "CLIENT", "SETNAME", c->name, (char *)0);
        rc = rsq__node_append(c, n, a.argc, argv, lens);
        what[(*steps)++] = "CLIENT SETNAME";
    }
    if (rc == RSQ_OK && c->url.db && !cluster_node) {
        rsq__u64_to_dec(db, (uint64_t)c->url.db);
        a.argc = 0;
        rsq__args_list(&a, "SELECT", db, (char *)0);
        rc = rsq__node_append(c, n, a.argc, argv, lens);
        what[(*steps)++] = "SELECT";
    }
    return rc;
}

/* A handshake step the server refused, said for what it means: HELLO 3 and AUTH with
   a user name arrive in Redis 6.0 (RSQ_ERR_UNSUPPORTED, naming it); NOAUTH at a step
   other than AUTH means a password is needed. */
RSQ__INTERN rsq_result rsq__handshake_err(rsq_client *c, rsq_result rc, const char *what, int step, const char *srv) {
    if (rc == RSQ_ERR_SERVER && step == 0 && c->protocol == 3)
        return rsq__set_err(c, RSQ_ERR_UNSUPPORTED, "HELLO 3 failed: %s (RESP3 needs Redis 6.0 or later: use protocol 2)", srv);
    if (rc == RSQ_ERR_SERVER && !strcmp(what, "AUTH") && strstr(srv, "wrong number of arguments"))
        return rsq__set_err(c, RSQ_ERR_UNSUPPORTED, "AUTH failed: %s (a user name in the URL needs ACL users: Redis 6.0 or later)",
                            srv);
    if (rc == RSQ_ERR_AUTH && strcmp(what, "AUTH") && strncmp(what, "HELLO", 5))
        return rsq__set_err(c, rc, "the server requires a password (%s, at %s)", srv, what);
    return rsq__set_err(c, rc, "%s failed: %s", what, srv);
}

/* Reads the handshake's replies. A refused CLIENT SETNAME (denied by ACL, or renamed
   away on managed servers) is skipped, said once: the name only labels the connection
   in CLIENT LIST. Any other failure names its step; a server without HELLO 3 is
   RSQ_ERR_UNSUPPORTED. */
RSQ__INTERN rsq_result rsq__handshake_read(rsq_client *c, rsq__node *n, const char *const *what, int steps) {
    uint64_t deadline = rsq__deadline(c, c->connect_timeout_ms);
    char msg[RSQ_ERR_MAX];
    int i;
    for (i = 0; i < steps; i++) {
        const rsq_reply *r;
        rsq_result rc = rsq__node_read(c, n, &r, deadline, 0);
        if ((rc == RSQ_ERR_NOPERM || (rc == RSQ_ERR_SERVER && !strncmp(c->err, "ERR unknown command", 19))) &&
            !strcmp(what[i], "CLIENT SETNAME")) {
            c->name_refused = 1;
            rsq__log(c, RSQ_LOG_WARN, RSQ_LOGI_NAME_SKIPPED, "CLIENT SETNAME refused (%s); connecting without a name",
                     c->err);
            c->err[0] = '\0';
            continue;
        }
        if (rc == RSQ_OK)
            continue;
        rsq__copy(msg, sizeof msg, c->err, strlen(c->err));
        if (!rsq_result_is_server_error(rc))
            return rsq__set_err(c, rc, "handshake (%s): %s", what[i], msg);
        return rsq__handshake_err(c, rc, what[i], i, msg);
    }
    return RSQ_OK;
}

/* One connect attempt plus handshake, pipelined in one round trip. host NULL: the URL's
   endpoint; else a cluster node. */
RSQ__INTERN rsq_result rsq__node_connect(rsq_client *c, rsq__node *n, const char *host, int port) {
    rsq_endpoint ep;
    const char *what[4];
    int steps = 0;
    rsq_result rc = rsq__node_open(c, n, host, port, &ep);
    if (rc != RSQ_OK)
        return rc;
    rc = rsq__handshake_send(c, n, host != NULL, what, &steps);
    if (rc != RSQ_OK) {
        rsq__node_close(c, n);
        return rc;
    }
    rc = rsq__handshake_read(c, n, what, steps);
    if (rc != RSQ_OK) {
        n->connected = 0; /* never counted as up: no epoch bump */
        rsq__node_close(c, n);
        return rc;
    }
    c->stats.connects++;
    if (c->ever_connected)
        c->stats.reconnects++;
    c->ever_connected = 1;
    if (ep.path)
        rsq__log(c, RSQ_LOG_INFO, RSQ_LOGI_CONNECTED, "connected to %s", ep.path);
    else
        rsq__log(c, RSQ_LOG_INFO, RSQ_LOGI_CONNECTED, "connected to %s:%d", ep.host, ep.port);
    return RSQ_OK;
}

RSQDEF rsq_result rsq_connect(rsq_client *c) {
    int attempt;
    if (!c || !c->initialized) return RSQ_ERR_ARG;
    if (c->node.connected) return RSQ_OK;
    for (attempt = 0;; attempt++) {
        rsq_result rc;
        int ms;
        if (rsq__stopped(c)) return rsq__set_err(c, RSQ_STOPPED, "stopped while reconnecting");
        rc = rsq__node_connect(c, &c->node, NULL, 0);
        c->connect_failed = rc != RSQ_OK;
        if (rc == RSQ_OK) { c->err[0] = '\0'; return RSQ_OK; }
        if (!rsq__connect_retryable(rc) || !rsq__retry_allowed(c, attempt)) return rc;
        ms = rsq__backoff_ms(c, attempt);
        rsq__log(c, RSQ_LOG_WARN, RSQ_LOGI_RECONNECT_WAIT, "connect attempt %d failed (%s); retrying in %d ms",
                 attempt + 1, c->err, ms);
        rsq__sleep(c, ms);
    }
}

/* ------------------------------------------------------------------------------------ */
// >>cluster (implementation): slot map, routing, redirects
#define RSQ__SLOTS 16384

/* CRC16-CCITT (XMODEM), the hash of Redis Cluster; bitwise, to stay small. */
RSQ__INTERN unsigned rsq__crc16(const char *s, size_t n) {
    unsigned crc = 0;
    size_t i;
    int b;
    for (i = 0; i < n; i++) {
        crc ^= (unsigned)(unsigned char)s[i] << 8;
        for (b = 0; b < 8; b++) crc = (crc & 0x8000u) ? ((crc << 1) ^ 0x1021u) & 0xffffu : (crc << 1) & 0xffffu;
    }
    return crc;
}

RSQDEF int rsq_key_slot(const char *key, size_t len) {
    size_t o, cl;
    if (!key) return 0;
    if (rsq__hash_tag(key, len, &o, &cl)) { key += o + 1; len = cl - o - 1; }
    return (int)(rsq__crc16(key, len) & (RSQ__SLOTS - 1));
}

RSQ__INTERN int rsq__ieq(const char *a, size_t an, const char *b) {
    size_t i, bn = strlen(b);
    if (an != bn) return 0;
    for (i = 0; i < an; i++) {
        char x = a[i], y = b[i];
        if (x >= 'a' && x <= 'z') x = (char)(x - 32);
        if (x != y) return 0;
    }
    return 1;
}

/* EVAL, EVALSHA, FCALL and their _RO forms. */
RSQ__INTERN int rsq__is_script(const char *cmd, size_t n) {
    return rsq__ieq(cmd, n, "EVAL") || rsq__ieq(cmd, n, "EVALSHA") || rsq__ieq(cmd, n, "EVAL_RO") ||
           rsq__ieq(cmd, n, "EVALSHA_RO") || rsq__ieq(cmd, n, "FCALL") || rsq__ieq(cmd, n, "FCALL_RO");
}

/* Which argument is the command's (first) key, or -1 for none. */
RSQ__INTERN int rsq__key_arg(int argc, const char *const *argv, const size_t *lens) {
    static const char *const keyless[] = {
        "PING", "INFO", "TIME", "CLIENT", "HELLO", "AUTH", "SELECT", "SCRIPT", "CLUSTER", "ACL", "ECHO",
        "COMMAND", "CONFIG", "DBSIZE", "WAIT", "ASKING", "READONLY", "READWRITE", "MULTI", "EXEC", "DISCARD",
        "FLUSHALL", "FLUSHDB", "ROLE", "MEMORY", "SLOWLOG", "LATENCY", "RESET", "FUNCTION", "RANDOMKEY",
        "KEYS", "SCAN", "LASTSAVE", "SAVE", "BGSAVE", "BGREWRITEAOF", "DEBUG", "QUIT"
    };
    size_t n = lens ? lens[0] : strlen(argv[0]), i;
    int k;
    if (rsq__ieq(argv[0], n, "XREADGROUP") || rsq__ieq(argv[0], n, "XREAD")) {
        for (k = 1; k + 1 < argc; k++)
            if (rsq__ieq(argv[k], lens ? lens[k] : strlen(argv[k]), "STREAMS")) return k + 1;
        return -1;
    }
    if (rsq__ieq(argv[0], n, "XGROUP") || rsq__ieq(argv[0], n, "XINFO") || rsq__ieq(argv[0], n, "OBJECT"))
        return argc > 2 ? 2 : -1;
    if (rsq__is_script(argv[0], n)) {
        long long nk = 0;
        if (argc < 3 || !rsq__parse_ll(argv[2], lens ? lens[2] : strlen(argv[2]), &nk) || nk < 1 || argc < 4) return -1;
        return 3;
    }
    for (i = 0; i < RSQ__COUNTOF(keyless); i++)
        if (rsq__ieq(argv[0], n, keyless[i])) return -1;
    return argc > 1 ? 1 : -1;
}

#ifndef RSQ_NO_CLUSTER
/* The index of the node at host:port, added if new; -1 when out of memory. */
RSQ__INTERN int rsq__cluster_node(rsq_client *c, const char *host, size_t hlen, int port) {
    int i;
    rsq__node *n;
    if (hlen >= RSQ_HOST_MAX) hlen = RSQ_HOST_MAX - 1;
    for (i = 0; i < c->nnodes; i++)
        if (c->nodes[i].port == port && strlen(c->nodes[i].host) == hlen && !memcmp(c->nodes[i].host, host, hlen)) return i;
    if (c->nnodes >= 4096) return -1;
    if ((size_t)c->nnodes == c->nodes_cap) {
        void *p = rsq__grow(&c->alloc, c->nodes, &c->nodes_cap, (size_t)c->nnodes + 1, sizeof(rsq__node), 4);
        if (!p) return -1;
        c->nodes = (rsq__node *)p;
    }
    n = &c->nodes[c->nnodes];
    memset(n, 0, sizeof *n);
    rsq__copy(n->host, sizeof n->host, host, hlen);
    n->port = port;
    rsq_reader_init(&n->rd, &c->limits, &c->alloc);
    return c->nnodes++;
}

/* Loads the slot map from a CLUSTER SLOTS reply given by a node at `from` (used for
   masters announced with an empty host). */
RSQ__INTERN rsq_result rsq__cluster_apply(rsq_client *c, const rsq_reply *r, const char *from) {
    size_t i;
    if (r->type != RSQ_REPLY_ARRAY || r->len == 0) return rsq__set_err(c, RSQ_ERR_REPLY, "CLUSTER SLOTS: no slots");
    memset(c->slots, 0, sizeof(uint16_t) * RSQ__SLOTS);
    for (i = 0; i < r->len; i++) {
        const rsq_reply *e = &r->element[i], *m;
        long long lo, hi, port;
        const char *host;
        size_t hlen;
        int idx;
        if (e->type != RSQ_REPLY_ARRAY || e->len < 3) continue;
        m = &e->element[2];
        if (!rsq_reply_int(&e->element[0], &lo) || !rsq_reply_int(&e->element[1], &hi) || m->type != RSQ_REPLY_ARRAY ||
            m->len < 2 || !m->element[0].str || !rsq_reply_int(&m->element[1], &port) || lo < 0 || hi >= RSQ__SLOTS || lo > hi)
            continue;
        host = m->element[0].str;
        hlen = m->element[0].len;
        if (hlen == 0 || (hlen == 1 && host[0] == '?')) { host = from; hlen = strlen(from); }
        idx = rsq__cluster_node(c, host, hlen, (int)port);
        if (idx < 0) return rsq__set_err(c, RSQ_ERR_NOMEM, "out of memory for cluster nodes");
        for (; lo <= hi; lo++) c->slots[lo] = (uint16_t)(idx + 1);
    }
    c->map_stale = 0;
    return RSQ_OK;
}

/* CLUSTER SLOTS on one connection that owes no replies. */
RSQ__INTERN rsq_result rsq__cluster_ask_map(rsq_client *c, rsq__node *n, const char *from) {
    const rsq_reply *r;
    const char *argv[2] = { "CLUSTER", "SLOTS" };
    rsq_result rc = rsq__node_append(c, n, 2, argv, NULL);
    if (rc == RSQ_OK) rc = rsq__node_read(c, n, &r, rsq__deadline(c, RSQ_TIMEOUT_DEFAULT), 0);
    if (rc == RSQ_OK) rc = rsq__cluster_apply(c, r, from);
    return rc;
}

/* Reloads the slot map from any node that answers: connected ones first, then the
   others, then the address of the URL. Only when no replies are owed. */
RSQ__INTERN rsq_result rsq__cluster_refresh(rsq_client *c) {
    rsq_result rc = RSQ_ERR_CONNECT;
    int pass, i;
    for (pass = 0; pass < 2; pass++)
        for (i = 0; i < c->nnodes; i++) {
            rsq__node *n = &c->nodes[i];
            char host[RSQ_HOST_MAX];
            if (n->connected != (pass == 0)) continue;
            if (!n->connected && rsq__node_connect(c, n, n->host, n->port) != RSQ_OK) continue;
            memcpy(host, n->host, sizeof host); /* the nodes array may move while loading */
            if ((rc = rsq__cluster_ask_map(c, &c->nodes[i], host)) == RSQ_OK) return RSQ_OK;
        }
    if (!c->node.connected && rsq__node_connect(c, &c->node, NULL, 0) != RSQ_OK) return c->nnodes ? rc : RSQ_ERR_CONNECT;
    rc = rsq__cluster_ask_map(c, &c->node, c->url.is_unix ? "127.0.0.1" : c->url.host);
    rsq__node_close(c, &c->node);
    return rc;
}

/* Switches to cluster mode (after a redirect, with nothing owed). */
RSQ__INTERN rsq_result rsq__cluster_enter(rsq_client *c) {
    rsq_result rc;
    if (!c->slots) {
        c->slots = (uint16_t *)rsq__realloc(&c->alloc, NULL, sizeof(uint16_t) * RSQ__SLOTS);
        if (!c->slots) return rsq__set_err(c, RSQ_ERR_NOMEM, "out of memory for the cluster slot map");
    }
    c->cluster = 1;
    c->map_stale = 1;
    rc = rsq__cluster_refresh(c);
    if (rc != RSQ_OK) return rc;
    rsq__log(c, RSQ_LOG_INFO, RSQ_LOGI_CONNECTED, "Redis Cluster: %d masters", c->nnodes);
    return RSQ_OK;
}

/* MOVED <slot> <host:port> / ASK <slot> <host:port> in c->err. */
RSQ__INTERN int rsq__redirect(rsq_client *c, int *slot, int *node, int *ask) {
    const char *e = c->err, *sp, *colon;
    long long sl, port;
    *ask = !strncmp(e, "ASK ", 4);
    if (!*ask && strncmp(e, "MOVED ", 6)) return 0;
    e += *ask ? 4 : 6;
    sp = strchr(e, ' ');
    if (!sp || !rsq__parse_ll(e, (size_t)(sp - e), &sl) || sl < 0 || sl >= RSQ__SLOTS) return 0;
    colon = strrchr(sp + 1, ':');
    if (!colon || !rsq__parse_ll(colon + 1, strlen(colon + 1), &port)) return 0;
    *slot = (int)sl;
    *node = rsq__cluster_node(c, sp + 1, (size_t)(colon - sp - 1), (int)port);
    return *node >= 0;
}

RSQ__INTERN rsq_result rsq__order_push(rsq_client *c, int idx) {
    if (c->order_len == c->order_cap) { /* grow the ring, oldest first again */
        size_t ncap = c->order_cap ? c->order_cap * 2 : 64, i;
        uint16_t *p = (uint16_t *)rsq__realloc(&c->alloc, NULL, ncap * sizeof(uint16_t));
        if (!p) return rsq__set_err(c, RSQ_ERR_NOMEM, "out of memory for the reply order");
        for (i = 0; i < c->order_len; i++) p[i] = c->order[(c->order_head + i) % c->order_cap];
        rsq__free(&c->alloc, c->order);
        c->order = p;
        c->order_cap = ncap;
        c->order_head = 0;
    }
    c->order[(c->order_head + c->order_len) % c->order_cap] = (uint16_t)idx;
    c->order_len++;
    return RSQ_OK;
}

/* The connected node for a command's key (any node for keyless commands). */
RSQ__INTERN rsq_result rsq__route(rsq_client *c, int argc, const char *const *argv, const size_t *lens, int *idx) {
    int k = rsq__key_arg(argc, argv, lens), slot = -1, attempt, i;
    if (k >= 0) slot = rsq_key_slot(argv[k], lens ? lens[k] : strlen(argv[k]));
    for (attempt = 0;; attempt++) {
        rsq_result rc = RSQ_OK;
        if ((c->map_stale || !c->nnodes) && c->order_len == 0) rc = rsq__cluster_refresh(c);
        if (rc == RSQ_OK) {
            i = slot >= 0 ? (int)c->slots[slot] - 1 : -1;
            if (slot < 0) { for (i = 0; i < c->nnodes && !c->nodes[i].connected; i++) {} if (i == c->nnodes) i = c->nnodes ? 0 : -1; }
            if (i < 0) rc = rsq__set_err(c, RSQ_ERR_RETRY, "CLUSTERDOWN slot %d is not served", slot);
            else if (c->nodes[i].connected) { *idx = i; return RSQ_OK; }
            else if ((rc = rsq__node_connect(c, &c->nodes[i], c->nodes[i].host, c->nodes[i].port)) == RSQ_OK) { *idx = i; return RSQ_OK; }
        }
        if ((!rsq__connect_retryable(rc) && rc != RSQ_ERR_MOVED) || !rsq__retry_allowed(c, attempt)) return rc;
        if (c->order_len) { /* replies owed elsewhere: the caller retries, with the map asked again */
            c->map_stale = 1;
            return rc;
        }
        if (rsq__stopped(c)) return rsq__set_err(c, RSQ_STOPPED, "stopped while reconnecting");
        c->map_stale = 1; /* a failover may have moved the slot: ask again */
        rsq__sleep(c, rsq__backoff_ms(c, attempt));
    }
}

/* Appends to node idx (or, idx < 0, to the node of the command's key). */
RSQ__INTERN rsq_result rsq__cluster_append(rsq_client *c, int idx, int argc, const char *const *argv, const size_t *lens) {
    rsq__node *n;
    rsq_result rc;
    int routed = idx < 0;
    if (routed && (rc = rsq__route(c, argc, argv, lens, &idx)) != RSQ_OK) return rc;
    if (c->nodes[idx].connected) {
        rsq__node_check_idle(c, &c->nodes[idx]);
        if (!c->nodes[idx].connected) { /* closed by the server, or it changed role: a failover? */
            c->map_stale = 1;
            if (c->order_len) { rsq__close_all(c); return RSQ_ERR_IO; } /* as a failed write: replies owed elsewhere */
            if (routed && (rc = rsq__route(c, argc, argv, lens, &idx)) != RSQ_OK) return rc; /* the map again */
        }
    }
    if (!c->nodes[idx].connected && (rc = rsq__node_connect(c, &c->nodes[idx], c->nodes[idx].host, c->nodes[idx].port)) != RSQ_OK)
        return rc;
    if ((rc = rsq__order_push(c, idx)) != RSQ_OK) return rc;
    n = &c->nodes[idx];
    if ((rc = rsq__node_append(c, n, argc, argv, lens)) != RSQ_OK) { c->order_len--; return rc; }
    n->written = 1;
    if (n->wlen - n->wsent >= (size_t)RSQ_FLUSH_AT &&
        (rc = rsq__node_flush(c, n, rsq__deadline(c, RSQ_TIMEOUT_DEFAULT), 0)) != RSQ_OK)
        rsq__close_all(c);
    return rc;
}

/* The next reply owed in cluster mode, from whichever node owes it. */
RSQ__INTERN rsq_result rsq__cluster_read(rsq_client *c, const rsq_reply **reply, uint64_t deadline, int nonblock) {
    int idx, slot, node, ask;
    rsq_result rc;
    if (c->order_len == 0) return rsq__set_err(c, RSQ_ERR_STATE, "no reply pending");
    idx = c->order[c->order_head];
    rc = rsq__node_read(c, &c->nodes[idx], reply, deadline, nonblock);
    if (rc == RSQ_AGAIN) return rc;
    if (!rsq_result_is_server_error(rc) && rc != RSQ_OK) { rsq__close_all(c); return rc; }
    c->order_head = (c->order_head + 1) % c->order_cap;
    c->order_len--;
    if (rc == RSQ_ERR_MOVED && rsq__redirect(c, &slot, &node, &ask) && !ask) c->slots[slot] = (uint16_t)(node + 1);
    return rc;
}
#else /* RSQ_NO_CLUSTER: a redirect is an error; the calls below are never reached */
RSQ__INTERN rsq_result rsq__cluster_enter(rsq_client *c) {
    return rsq__set_err(c, RSQ_ERR_UNSUPPORTED, "the server is a Redis Cluster node (MOVED) and this build has RSQ_NO_CLUSTER");
}
#define rsq__redirect(c, slot, node, ask) ((void)(slot), (void)(node), (void)(ask), 0)
RSQ__INTERN rsq_result rsq__cluster_append(rsq_client *c, int idx, int argc, const char *const *argv, const size_t *lens) {
    (void)idx, (void)argc, (void)argv, (void)lens;
    return rsq__cluster_enter(c);
}
#define rsq__route(c, argc, argv, lens, idx) rsq__cluster_append(c, *(idx), argc, argv, lens)
#define rsq__cluster_read(c, reply, deadline, nonblock) ((void)(reply), (void)(deadline), (void)(nonblock), rsq__cluster_enter(c))
#endif

/* ------------------------------------------------------------------------------------ */
// >>commands (implementation): the command path: append, flush, read_reply, command;
/* transactions, the server version, helpers for commands and scripts */

RSQDEF rsq_result rsq_append_argv(rsq_client *c, int argc, const char *const *argv, const size_t *lens) {
    rsq_result rc;
    int i;
    if (!c || !c->initialized) return RSQ_ERR_ARG;
    if (rsq_pending_replies(c) == 0) c->err[0] = '\0'; /* a new pipeline or command */
    if (argc < 1 || !argv) return rsq__set_err(c, RSQ_ERR_ARG, "a command needs at least one argument");
    for (i = 0; i < argc; i++)
        if (!argv[i]) return rsq__set_err(c, RSQ_ERR_ARG, "argument %d is NULL", i);
    if (!RSQ__IN_CLUSTER(c) && c->cluster_seen && c->node.pending == 0 && (rc = rsq__cluster_enter(c)) != RSQ_OK) return rc;
    if (RSQ__IN_CLUSTER(c)) return rsq__cluster_append(c, -1, argc, argv, lens);
    rsq__node_check_idle(c, &c->node);
    if (!c->node.connected) {
        rc = rsq_connect(c);
        if (rc != RSQ_OK) return rc;
    }
    rc = rsq__node_append(c, &c->node, argc, argv, lens);
    c->node.written = 1;
    if (rc == RSQ_OK && c->node.wlen - c->node.wsent >= (size_t)RSQ_FLUSH_AT)
        rc = rsq__node_flush(c, &c->node, rsq__deadline(c, RSQ_TIMEOUT_DEFAULT), 0);
    return rc;
}

/* Collects a NULL-terminated list of C strings. Returns the count, or -1 if too many. */
RSQ__INTERN int rsq__collect(const char *arg0, va_list ap, const char **argv) {
    int n = 0;
    const char *a = arg0;
    while (a) {
        if (n == RSQ__MAX_VARARGS) return -1;
        argv[n++] = a;
        a = va_arg(ap, const char *);
    }
    return n;
}

/* In a function taking (..., arg0, ...): its C-string arguments, arg0 first and ended
   by a null pointer, into argv (RSQ__MAX_VARARGS entries); n receives the count, or
   -1 when there are more. */
#define RSQ__COLLECT(argv, n, arg0) \
    do { \
        va_list ap_; \
        va_start(ap_, arg0); \
        (n) = rsq__collect((arg0), ap_, (argv)); \
        va_end(ap_); \
    } while (0)

RSQDEF rsq_result rsq_append(rsq_client *c, const char *arg0, ...) {
    const char *argv[RSQ__MAX_VARARGS];
    int n;
    RSQ__COLLECT(argv, n, arg0);
    if (n < 0) return c ? rsq__set_err(c, RSQ_ERR_ARG, "more than 64 arguments") : RSQ_ERR_ARG;
    return rsq_append_argv(c, n, argv, NULL);
}

RSQDEF rsq_result rsq_flush(rsq_client *c, int timeout_ms) {
    int i;
    rsq_result rc = RSQ_OK, one;
    if (!c || !c->initialized) return RSQ_ERR_ARG;
    if (RSQ__IN_CLUSTER(c)) {
        uint64_t deadline = rsq__deadline(c, timeout_ms);
        for (i = 0; i < c->nnodes; i++) {
            if (!c->nodes[i].connected || c->nodes[i].wsent == c->nodes[i].wlen) continue;
            one = rsq__node_flush(c, &c->nodes[i], deadline, timeout_ms == RSQ_TIMEOUT_NONBLOCK);
            if (one == RSQ_AGAIN) rc = one;
            else if (one != RSQ_OK) { rsq__close_all(c); return one; }
        }
        return rc;
    }
    if (!c->node.connected) return c->node.wlen ? rsq__set_err(c, RSQ_ERR_IO, "not connected") : RSQ_OK;
    return rsq__node_flush(c, &c->node, rsq__deadline(c, timeout_ms), timeout_ms == RSQ_TIMEOUT_NONBLOCK);
}

RSQDEF rsq_result rsq_read_reply(rsq_client *c, const rsq_reply **reply, int timeout_ms) {
    const rsq_reply *dummy;
    if (!reply) reply = &dummy;
    *reply = NULL;
    if (!c || !c->initialized) return RSQ_ERR_ARG;
    if (RSQ__IN_CLUSTER(c)) return rsq__cluster_read(c, reply, rsq__deadline(c, timeout_ms), timeout_ms == RSQ_TIMEOUT_NONBLOCK);
    {
        /* fast path: a complete reply is already buffered and nothing waits to be
           written: no clock read (a deadline is needed only to wait) */
        rsq__node *n = &c->node;
        const rsq_reply *r;
        if (n->connected && n->pending && n->wsent >= n->wlen && n->rd.len > n->rd.scan &&
            rsq_reader_next(&n->rd, &r) == RSQ_OK) {
            if (r->type != RSQ_REPLY_PUSH) {
                *reply = r;
                return rsq__took_reply(c, n, r);
            }
            rsq__log(c, RSQ_LOG_DEBUG, RSQ_LOGI_PUSH_IGNORED, "push message ignored");
        }
    }
    return rsq__node_read(c, &c->node, reply, rsq__deadline(c, timeout_ms), timeout_ms == RSQ_TIMEOUT_NONBLOCK);
}

/* What rsq__command_ex may send again, besides what the server refused to run:
   RSQ__ONCE        not after a lost connection: it may have run;
   RSQ__IDEMPOTENT  also after a lost connection: a second run is harmless;
   RSQ__CALLER      the caller's command (rsq_command): as RSQ__ONCE, and the error
                    reply of a script is final, whatever its first word: it may be the
                    script's own, sent after the script ran. */
#define RSQ__ONCE 0
#define RSQ__IDEMPOTENT 1
#define RSQ__CALLER 2

/* The slot of a MOVED/ASK reply in c->err is migrating (ASK): the command goes to the
   target once, after ASKING. RSQ_ERR_MOVED when the reply was not an ASK (follow the
   redirect), else the command's result. */
RSQ__INTERN rsq_result rsq__command_ask(rsq_client *c, const rsq_reply **reply, int argc, const char *const *argv,
                                        const size_t *lens, int timeout_ms) {
    static const char *const asking[1] = { "ASKING" };
    int slot, node, ask;
    rsq_result rc;
    if (!RSQ__IN_CLUSTER(c) || !rsq__redirect(c, &slot, &node, &ask) || !ask)
        return RSQ_ERR_MOVED;
    rc = rsq__cluster_append(c, node, 1, asking, NULL);
    if (rc == RSQ_OK)
        rc = rsq__cluster_append(c, node, argc, argv, lens);
    if (rc == RSQ_OK && (rc = rsq_read_reply(c, reply, timeout_ms)) == RSQ_OK)
        rc = rsq_read_reply(c, reply, timeout_ms);
    return rc;
}

/* Whether an attempt of rsq__command_ex that failed with rc goes again, after a pause:
   a retry class (the server did not run it); a refused connection ("max number of
   clients": the command did not run); for idempotent commands, a link lost after
   writing. Not when connecting failed (rsq_connect spent the retries already). */
RSQ__INTERN int rsq__command_again(rsq_client *c, rsq_result rc, int sent, int idempotent, int attempt) {
    if (rc == RSQ_ERR_RETRY && rsq__retry_allowed(c, attempt)) {
        int ms = rsq__backoff_ms(c, attempt);
        c->stats.server_retries++;
        rsq__log(c, RSQ_LOG_WARN, RSQ_LOGI_SERVER_RETRY, "%s; retrying in %d ms", c->err, ms);
        rsq__sleep(c, ms);
        return 1;
    }
    if (!sent || !rsq__retry_allowed(c, attempt))
        return 0;
    if (rc == RSQ_ERR_CONNECT || (idempotent == RSQ__IDEMPOTENT && (rc == RSQ_ERR_IO || rc == RSQ_ERR_TIMEOUT))) {
        rsq__sleep(c, rsq__backoff_ms(c, attempt));
        return 1;
    }
    return 0;
}

/* One command with an explicit read deadline; retries retry-class errors. When
   `idempotent` is RSQ__IDEMPOTENT, a connection lost after writing is also retried
   after reconnecting. */
RSQ__INTERN rsq_result rsq__command_ex(rsq_client *c, const rsq_reply **reply, int argc, const char *const *argv,
                                       const size_t *lens, int timeout_ms, int idempotent) {
    int attempt, redirects = 0;
    const rsq_reply *dummy;
    if (!reply)
        reply = &dummy;
    *reply = NULL;
    if (!c || !c->initialized)
        return RSQ_ERR_ARG;
    if (rsq_pending_replies(c))
        return rsq__set_err(c, RSQ_ERR_STATE, "pipelined replies are still unread");
    for (attempt = 0;; attempt++) {
        int seen = c->cluster_seen, k;
        rsq_result rc = rsq_append_argv(c, argc, argv, lens);
        int sent = rc == RSQ_OK;
        if (sent)
            rc = rsq_read_reply(c, reply, timeout_ms);
        if (sent && (rc == RSQ_ERR_RETRY || rc == RSQ_ERR_MOVED || rsq__server_full(c, rc)) && idempotent == RSQ__CALLER &&
            rsq__is_script(argv[0], lens ? lens[0] : strlen(argv[0]))) {
            /* the script's own error reply, whatever its words (LOADING, MOVED, max
               clients...): final, and no cue to the client (no cluster mode from a
               script's text). Other classes (NOPERM...) keep their code; none retries. */
            if (!RSQ__IN_CLUSTER(c))
                c->cluster_seen = seen;
            return RSQ_ERR_SERVER;
        }
        if (rc == RSQ_ERR_MOVED && redirects < 16) {
            redirects++;
            attempt--;
            rc = rsq__command_ask(c, reply, argc, argv, lens, timeout_ms);
            if (rc == RSQ_ERR_MOVED || rc == RSQ_ERR_RETRY) {
                if (RSQ__IN_CLUSTER(c) && !strncmp(c->err, "CROSSSLOT", 9))
                    return rc;
                continue; /* MOVED: the map is updated (or the client switches to cluster mode) */
            }
            if (rc != RSQ_OK)
                return rc; /* the ASK target's answer */
        }
        if (rc == RSQ_OK) {
            c->err[0] = '\0'; /* no text of a retried attempt */
            return RSQ_OK;
        }
        if (rsq__stopped(c) && rc != RSQ_ERR_MOVED)
            return rc;
        if (rsq__command_again(c, rc, sent, idempotent, attempt))
            continue;
        k = rc == RSQ_ERR_NOPERM ? rsq__key_arg(argc, argv, lens) : -1;
        if (k >= 0)
            rsq__noperm_key(c, rc, argv[0], lens ? lens[0] : strlen(argv[0]), argv[k], lens ? lens[k] : strlen(argv[k]));
        return rc;
    }
}
RSQDEF rsq_result rsq_command_argv(rsq_client *c, const rsq_reply **reply, int argc, const char *const *argv, const size_t *lens) {
    return rsq__command_ex(c, reply, argc, argv, lens, RSQ_TIMEOUT_DEFAULT, RSQ__CALLER);
}

RSQDEF rsq_result rsq_command(rsq_client *c, const rsq_reply **reply, const char *arg0, ...) {
    const char *argv[RSQ__MAX_VARARGS];
    int n;
    RSQ__COLLECT(argv, n, arg0);
    if (n < 0) return c ? rsq__set_err(c, RSQ_ERR_ARG, "more than 64 arguments") : RSQ_ERR_ARG;
    return rsq_command_argv(c, reply, n, argv, NULL);
}

/* One command of C-string arguments, ended by (char *)0, with the default timeout;
   idempotent ones survive a lost connection (they are sent again after reconnecting). */
RSQ__INTERN rsq_result rsq__cmd(rsq_client *c, const rsq_reply **r, int idempotent, const char *arg0, ...) {
    const char *argv[RSQ__MAX_VARARGS];
    int n;
    RSQ__COLLECT(argv, n, arg0);
    RSQ_ASSERT(n > 0);
    return rsq__command_ex(c, r, n, argv, NULL, RSQ_TIMEOUT_DEFAULT, idempotent);
}

/* An argument list built with rsq__args, run as rsq__cmd does. */
RSQ__INTERN rsq_result rsq__cmd_args(rsq_client *c, const rsq_reply **r, int idempotent, const rsq__args *a) {
    return rsq__command_ex(c, r, a->argc, a->argv, a->lens, RSQ_TIMEOUT_DEFAULT, idempotent);
}

/* A command of a transaction: its arguments and a name for error texts. */
typedef struct rsq__txcmd {
    int argc;
    const char *const *argv;
    const size_t *lens;
    const char *what;
} rsq__txcmd;

/* Runs cmds[0..n) as one MULTI/EXEC transaction on the node of the first command's
   key (the keys must share its slot); `op` names the operation in error texts. MULTI
   goes alone first: were it refused (an ACL user without +multi) while the commands
   followed in the same write, they would run one by one, outside any transaction.
   A command the server refuses when queueing it (NOPERM, an unknown or renamed
   command, OOM), or a refused EXEC, discards the whole transaction: the error (named
   by its class: NOPERM for a refusal by ACL) is returned and nothing ran. Once EXEC
   ran, an error of one command (say WRONGTYPE) does not undo the others: that error
   is returned. Never resent (the caller decides). *exec receives EXEC's reply, valid
   until the next call. */
/* Appends one command of a transaction to its node (idx, in a cluster). */
RSQ__INTERN rsq_result rsq__tx_append(rsq_client *c, int idx, int argc, const char *const *argv, const size_t *lens) {
    return RSQ__IN_CLUSTER(c) ? rsq__cluster_append(c, idx, argc, argv, lens) : rsq_append_argv(c, argc, argv, lens);
}

/* The commands and EXEC, after MULTI was accepted. A new connection (the old one was
   found closed before writing) has no MULTI: the commands must not run outside the
   transaction, so nothing more is sent. On any failure the link is closed (an open
   transaction must not stay open). */
RSQ__INTERN rsq_result rsq__tx_send(rsq_client *c, const char *op, int idx, int n, const rsq__txcmd *cmds) {
    (void)op; /* used by the error texts only */
    static const char *const exec_argv[1] = { "EXEC" };
    uint32_t epoch = c->epoch;
    rsq_result rc = RSQ_OK;
    int i;
    for (i = 0; i <= n && rc == RSQ_OK; i++) {
        if (i == n)
            rc = rsq__tx_append(c, idx, 1, exec_argv, NULL);
        else
            rc = rsq__tx_append(c, idx, cmds[i].argc, cmds[i].argv, cmds[i].lens);
        if (rc == RSQ_OK && c->epoch != epoch)
            rc = rsq__set_err(c, RSQ_ERR_IO, "%s: the connection was lost inside the transaction; nothing was sent", op);
    }
    if (rc != RSQ_OK)
        rsq_disconnect(c);
    return rc;
}

/* The +QUEUED (or refusal) replies of the n commands: the first refusal's class, with
   its text in why; a link error at once (the outcome is unknown). */
RSQ__INTERN rsq_result rsq__tx_queued(rsq_client *c, const char *op, int n, const rsq__txcmd *cmds, char *why, size_t cap,
                                      rsq_result *first) {
    int i;
    for (i = 0; i < n; i++) {
        const rsq_reply *r;
        rsq_result one = rsq_read_reply(c, &r, RSQ_TIMEOUT_DEFAULT);
        int k;
        if (one != RSQ_OK && !rsq_result_is_server_error(one))
            return one;
        if (one == RSQ_OK || *first != RSQ_OK)
            continue;
        *first = one;
        k = rsq__key_arg(cmds[i].argc, cmds[i].argv, cmds[i].lens);
        if (k >= 0)
            rsq__noperm_key(c, one, cmds[i].argv[0], cmds[i].lens ? cmds[i].lens[0] : strlen(cmds[i].argv[0]),
                            cmds[i].argv[k], cmds[i].lens ? cmds[i].lens[k] : strlen(cmds[i].argv[k]));
        rsq__fmt(why, cap, "%s: %s refused: %s", op, cmds[i].what, c->err);
    }
    return RSQ_OK;
}

/* EXEC's reply: RSQ_OK with *exec, or the error of the transaction. EXEC refused
   (EXECABORT ... because of: NOPERM ...): discarded, nothing ran; any other error
   leaves the connection's state unknown: it is closed. Once EXEC ran, an error of one
   command (say WRONGTYPE) does not undo the others: that error is returned. */
RSQ__INTERN rsq_result rsq__tx_exec(rsq_client *c, const char *op, int n, const rsq__txcmd *cmds, const rsq_reply **exec) {
    (void)op; (void)cmds; /* used by the error texts only */
    const rsq_reply *r;
    size_t j;
    rsq_result rc = rsq_read_reply(c, &r, RSQ_TIMEOUT_DEFAULT);
    if (rc != RSQ_OK && !rsq_result_is_server_error(rc))
        return rc;
    if (rc != RSQ_OK) {
        const char *cause = strstr(c->err, "because of: ");
        rsq__copy(c->why, sizeof c->why, c->err, strlen(c->err));
        if (strncmp(c->err, "EXECABORT", 9))
            rsq_disconnect(c);
        else if (cause)
            rc = rsq__classify(cause + 12, strlen(cause + 12));
        return rsq__set_err(c, rc, "%s: EXEC refused: %s; nothing was done (transaction discarded)", op, c->why);
    }
    if (r->type != RSQ_REPLY_ARRAY || r->len != (size_t)n)
        return rsq__set_err(c, RSQ_ERR_REPLY, "%s: EXEC: unexpected reply", op);
    for (j = 0; j < r->len; j++)
        if (r->element[j].type == RSQ_REPLY_ERROR)
            return rsq__set_err(c, rsq__classify(r->element[j].str, r->element[j].len), "%s: %s failed: %s", op,
                                cmds[j].what, r->element[j].str);
    *exec = r;
    return RSQ_OK;
}

RSQ__INTERN rsq_result rsq__transaction(rsq_client *c, const char *op, int n, const rsq__txcmd *cmds, const rsq_reply **exec) {
    static const char *const multi[1] = { "MULTI" };
    const rsq_reply *r;
    rsq_result rc = RSQ_OK, first = RSQ_OK;
    int idx = -1;
    *exec = NULL;
    if (rsq_pending_replies(c))
        return rsq__set_err(c, RSQ_ERR_STATE, "pipelined replies are still unread");
    if (!RSQ__IN_CLUSTER(c) && c->cluster_seen && (rc = rsq__cluster_enter(c)) != RSQ_OK)
        return rc;
    if (RSQ__IN_CLUSTER(c) && (rc = rsq__route(c, cmds[0].argc, cmds[0].argv, cmds[0].lens, &idx)) != RSQ_OK)
        return rc;
    rc = rsq__tx_append(c, idx, 1, multi, NULL);
    if (rc == RSQ_OK)
        rc = rsq_read_reply(c, &r, RSQ_TIMEOUT_DEFAULT);
    if (rsq_result_is_server_error(rc)) {
        rsq__copy(c->why, sizeof c->why, c->err, strlen(c->err));
        return rsq__set_err(c, rc, "%s: MULTI refused: %s; nothing was done", op, c->why);
    }
    if (rc != RSQ_OK || (rc = rsq__tx_send(c, op, idx, n, cmds)) != RSQ_OK)
        return rc;
    if ((rc = rsq__tx_queued(c, op, n, cmds, c->why, sizeof c->why, &first)) != RSQ_OK)
        return rc;
    if (first == RSQ_OK)
        return rsq__tx_exec(c, op, n, cmds, exec);
    rc = rsq_read_reply(c, &r, RSQ_TIMEOUT_DEFAULT); /* EXEC's reply: EXECABORT */
    if (rc != RSQ_OK && !rsq_result_is_server_error(rc))
        return rc;
    return rsq__set_err(c, first, "%s; nothing was done (transaction discarded)", c->why);
}

/* A transaction of two commands: `first` (built with rsq__args) and argc2 C strings
   argv2, each named for error texts. */
RSQ__INTERN rsq_result rsq__tx_pair(rsq_client *c, const char *op, const rsq__args *first, const char *what1, int argc2,
                                    const char *const *argv2, const char *what2) {
    const rsq_reply *r;
    rsq__txcmd tx[2];
    tx[0].argc = first->argc;
    tx[0].argv = first->argv;
    tx[0].lens = first->lens;
    tx[0].what = what1;
    tx[1].argc = argc2;
    tx[1].argv = argv2;
    tx[1].lens = NULL;
    tx[1].what = what2;
    return rsq__transaction(c, op, 2, tx, &r);
}

RSQ__INTERN long rsq__parse_version(const char *s, size_t n) {
    long part[3] = { 0, 0, 0 };
    size_t i;
    int k = 0;
    for (i = 0; i < n && k < 3; i++) {
        if (s[i] >= '0' && s[i] <= '9') part[k] = part[k] * 10 + (s[i] - '0');
        else if (s[i] == '.') k++;
        else break;
        if (part[k < 3 ? k : 2] > 9999) return 0;
    }
    return part[0] * 10000 + part[1] * 100 + part[2];
}

RSQDEF rsq_result rsq_server_version(rsq_client *c, long *version) {
    const rsq_reply *r;
    rsq_result rc;
    const char *p, *e;
    if (!c || !version) return RSQ_ERR_ARG;
    if (c->server_version && rsq_is_connected(c)) { *version = c->server_version; return RSQ_OK; }
    rc = rsq__cmd(c, &r, RSQ__IDEMPOTENT, "INFO", "server", (char *)0);
    if (rsq_result_is_server_error(rc) && rc != RSQ_ERR_MOVED) {
        /* INFO denied or renamed away: HELLO (Redis >= 6) also tells the version */
        const rsq_reply *v;
        rsq__copy(c->why, sizeof c->why, c->err, strlen(c->err));
        rc = rsq__cmd(c, &r, RSQ__IDEMPOTENT, "HELLO", c->protocol == 3 ? "3" : "2", (char *)0);
        v = rc == RSQ_OK ? rsq_reply_get(r, "version") : NULL;
        if (!v || !v->str) {
            if (rc == RSQ_OK || rsq_result_is_server_error(rc))
                rc = rsq__set_err(c, RSQ_ERR_UNSUPPORTED, "server version unknown: INFO refused (%s) and HELLO too", c->why);
            return rc;
        }
        c->server_version = rsq__parse_version(v->str, v->len);
        *version = c->server_version;
        return RSQ_OK;
    }
    if (rc != RSQ_OK) return rc;
    if (!r->str) return rsq__set_err(c, RSQ_ERR_REPLY, "INFO returned no text");
    p = strstr(r->str, "redis_version:");
    if (!p) return rsq__set_err(c, RSQ_ERR_REPLY, "INFO has no redis_version");
    p += 14;
    e = p;
    while (*e && *e != '\r' && *e != '\n') e++;
    c->server_version = rsq__parse_version(p, (size_t)(e - p));
    *version = c->server_version;
    return RSQ_OK;
}

/* XTRIM MINID arrived in Redis 6.2: RSQ_ERR_UNSUPPORTED naming an older server, before
   anything is trimmed (an unknown version gets the benefit of the doubt). */
RSQ__INTERN rsq_result rsq__need_minid(rsq_client *c) {
    long v = 0;
    if (rsq_server_version(c, &v) == RSQ_OK && v > 0 && v < 60200)
        return rsq__set_err(c, RSQ_ERR_UNSUPPORTED, "XTRIM MINID needs Redis 6.2 or later; the server is %ld.%ld.%ld",
                            v / 10000, v / 100 % 100, v % 100);
    return RSQ_OK;
}

/* A server error from EVAL that means "no scripting here" rather than a fault of the
   stream: fall back to plain commands. */
RSQ__INTERN int rsq__no_scripting(rsq_result rc) {
    return rsq_result_is_server_error(rc) && rc != RSQ_ERR_WRONGTYPE && rc != RSQ_ERR_NOGROUP && rc != RSQ_ERR_RETRY &&
           rc != RSQ_ERR_MOVED;
}

/* rc from EVAL: when it means that scripting is not available to this client (EVAL
   renamed away or disabled: an unknown command; or denied by ACL), the error says
   that `what` needs scripting: RSQ_ERR_UNSUPPORTED (or RSQ_ERR_NOPERM) with the
   server's line, cut before the script's text. Other errors pass unchanged. */
RSQ__INTERN rsq_result rsq__needs_scripting(rsq_client *c, rsq_result rc, const char *what) {
    (void)what; /* used by the error texts only */
    char srv[RSQ_ERR_MAX];
    const char *cut;
    int unknown = rc == RSQ_ERR_SERVER && !strncmp(c->err, "ERR unknown command", 19);
    if (!unknown && !(rc == RSQ_ERR_NOPERM && strstr(c->err, "'eval"))) return rc;
    cut = strstr(c->err, ", with args");
    rsq__copy(srv, sizeof srv, c->err, cut ? (size_t)(cut - c->err) : strlen(c->err));
    return rsq__set_err(c, unknown ? RSQ_ERR_UNSUPPORTED : rc, "%s needs server-side scripting (EVAL), which %s: %s", what,
                        unknown ? "this server does not offer (renamed or disabled)" : "this user may not run", srv);
}

/* ------------------------------------------------------------------------------------ */
#ifndef RSQ_NO_ADMIN
// >>metrics (implementation)
/* Stats never read entry bodies: an entry may be larger than this client's reply
   limits (written by another client), and a stats call should not move megabytes.
   XINFO STREAM carries the first and last entries whole, and XRANGE every entry it
   counts, so both are read on the server by this short read-only script, which
   returns IDs and counts only:
     ARGV[1] "head": {1, length, last-generated-id, first ID, last ID, groups,
                     max-deleted-entry-id ('' before Redis 7.0)}, or {0} when the key
                     is missing;
     ARGV[1] "count", ARGV[2] ID, ARGV[3] cap: {n, exact}, the entries after ID,
                     counted 16 at a time (bounded script memory), stopping past cap.
   Where scripting is unavailable (disabled, renamed, denied by ACL, refused under
   maxmemory), plain XINFO STREAM and XRANGE are used: an entry over the reply limits
   then makes the figures it hides unknown (ends_known 0, lag -1), never wrong. */
static const char rsq__stats_script[] =
    "local k = KEYS[1] "
    "if ARGV[1] == 'count' then "
    "local start, cap, n = ARGV[2], tonumber(ARGV[3]), 0 "
    "while true do "
    "local r = redis.call('XRANGE', k, start, '+', 'COUNT', 16) "
    "local m = #r "
    "if m > 0 and r[1][1] == start then n = n - 1 end "
    "n = n + m "
    "if m < 16 then return {n, 1} end "
    "if n >= cap then return {n, 0} end "
    "start = r[m][1] end end "
    "local t = redis.call('TYPE', k)['ok'] "
    "if t == 'none' then return {0} end "
    "if t ~= 'stream' then return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value') end "
    "local x, r = redis.call('XINFO', 'STREAM', k), {1, 0, '0-0', '0-0', '0-0', 0, ''} "
    "for i = 1, #x, 2 do "
    "local f, v = x[i], x[i + 1] "
    "if f == 'length' then r[2] = v elseif f == 'last-generated-id' then r[3] = v "
    "elseif f == 'first-entry' and v then r[4] = v[1] elseif f == 'last-entry' and v then r[5] = v[1] "
    "elseif f == 'groups' then r[6] = v elseif f == 'max-deleted-entry-id' then r[7] = v end end "
    "return r";

#define RSQ__LAG_COUNT_MAX 10000 /* lag is counted up to this, then reported inexact */
#define RSQ__XSTR(x) RSQ__STR(x)
#define RSQ__STR(x) #x

/* Counts entries after `from`, up to about `cap`, with XRANGE pages (the fallback
   without scripting: these replies carry the entries). The range starts at the ID
   after `from`, which is Redis 6.2's exclusive "(from" on every version. */
RSQ__INTERN rsq_result rsq__count_after(rsq_client *c, const char *stream, rsq_id from, long long cap, long long *count, int *exact) {
    char start[RSQ_ID_STRLEN];
    *count = 0;
    *exact = 1;
    for (;;) {
        const rsq_reply *r;
        rsq_result rc;
        rsq_id next;
        if (!rsq__id_succ(from, &next)) return RSQ_OK;
        start[rsq_id_format(next, start)] = '\0';
        rc = rsq__cmd(c, &r, RSQ__IDEMPOTENT, "XRANGE", stream, start, "+", "COUNT", "100", (char *)0);
        if (rc != RSQ_OK) return rc;
        if (r->type != RSQ_REPLY_ARRAY) return rsq__set_err(c, RSQ_ERR_REPLY, "XRANGE: unexpected reply");
        *count += (long long)r->len;
        if (r->len < 100) return RSQ_OK;
        if (*count >= cap) { *exact = 0; return RSQ_OK; }
        if (r->element[r->len - 1].type != RSQ_REPLY_ARRAY || r->element[r->len - 1].len < 1 ||
            !rsq__reply_id(&r->element[r->len - 1].element[0], &from))
            return rsq__set_err(c, RSQ_ERR_REPLY, "XRANGE: bad ID");
    }
}

/* Length, end IDs and group count of the stream, without entry bodies (see above).
   *scripting is cleared when the server has no scripting for us. */
/* *maxdel (0-0 when nothing was ever deleted) is set and *maxdel_known to 1 where the
   server tells it (XINFO STREAM's max-deleted-entry-id, Redis >= 7.0). */
RSQ__INTERN rsq_result rsq__stats_head(rsq_client *c, const char *stream, rsq_stream_info *info, int *scripting,
                                       rsq_id *maxdel, int *maxdel_known) {
    const rsq_reply *r, *e;
    rsq_result rc = rsq__cmd(c, &r, RSQ__IDEMPOTENT, "EVAL", rsq__stats_script, "1", stream, "head", (char *)0);
    if (rc == RSQ_OK) {
        long long ex = 0;
        if (r->type != RSQ_REPLY_ARRAY || r->len < 1 || !rsq_reply_int(&r->element[0], &ex) || (ex && r->len < 6))
            return rsq__set_err(c, RSQ_ERR_REPLY, "stats script: unexpected reply");
        if (!ex) return RSQ_OK;
        info->exists = 1;
        info->ends_known = 1;
        rsq_reply_int(&r->element[1], &info->length);
        rsq__reply_id(&r->element[2], &info->last_generated_id);
        rsq__reply_id(&r->element[3], &info->first_id);
        rsq__reply_id(&r->element[4], &info->last_id);
        rsq_reply_int(&r->element[5], &info->groups);
        *maxdel_known = r->len >= 7 && rsq__reply_id(&r->element[6], maxdel);
        return RSQ_OK;
    }
    if (!rsq__no_scripting(rc)) return rc;
    *scripting = 0;
    rc = rsq__cmd(c, &r, RSQ__IDEMPOTENT, "XINFO", "STREAM", stream, (char *)0);
    if (rc == RSQ_ERR_SERVER && strstr(c->err, "no such key")) { c->err[0] = '\0'; return RSQ_OK; }
    if (rc == RSQ_OK) {
        info->exists = 1;
        info->ends_known = 1;
        info->length = rsq__get_int(r, "length", 0);
        info->groups = rsq__get_int(r, "groups", 0);
        *maxdel_known = rsq__reply_id(rsq_reply_get(r, "max-deleted-entry-id"), maxdel);
        rsq__reply_id(rsq_reply_get(r, "last-generated-id"), &info->last_generated_id);
        e = rsq_reply_get(r, "first-entry");
        if (e && e->type == RSQ_REPLY_ARRAY && e->len >= 1) rsq__reply_id(&e->element[0], &info->first_id);
        e = rsq_reply_get(r, "last-entry");
        if (e && e->type == RSQ_REPLY_ARRAY && e->len >= 1) rsq__reply_id(&e->element[0], &info->last_id);
        return RSQ_OK;
    }
    if (rc != RSQ_ERR_LIMIT) return rc;
    /* an end entry is over the reply limits: length and groups only (the link was
       closed on the oversized reply; these commands reconnect) */
    if ((rc = rsq__cmd(c, &r, RSQ__IDEMPOTENT, "XLEN", stream, (char *)0)) != RSQ_OK) return rc;
    info->exists = 1;
    info->length = r->integer;
    if ((rc = rsq__cmd(c, &r, RSQ__IDEMPOTENT, "XINFO", "GROUPS", stream, (char *)0)) != RSQ_OK) return rc;
    info->groups = r->type == RSQ_REPLY_ARRAY ? (long long)r->len : 0;
    c->err[0] = '\0';
    return RSQ_OK;
}

/* Reads the replies owed by rsq_stream_stats's pipeline for group o, in the order
   they were appended: the lag count (o->lag == -2), then the pending sample. */
RSQ__INTERN rsq_result rsq__stats_group_replies(rsq_client *c, rsq_group_info *o, int *scripting) {
    const rsq_reply *r;
    rsq_result rc;
    size_t k;
    if (o->lag == -2) {
        long long n = 0, exact = 0;
        rc = rsq_read_reply(c, &r, RSQ_TIMEOUT_DEFAULT);
        if (rc == RSQ_OK && r->type == RSQ_REPLY_ARRAY && r->len == 2 && rsq_reply_int(&r->element[0], &n) &&
            rsq_reply_int(&r->element[1], &exact)) {
            o->lag = n;
            o->lag_exact = exact != 0;
        } else if (rc == RSQ_OK) {
            return rsq__set_err(c, RSQ_ERR_REPLY, "stats script: unexpected reply");
        } else if (rsq__no_scripting(rc)) {
            *scripting = 0;
            o->lag = -3; /* counted with XRANGE afterwards */
        } else {
            return rc;
        }
    }
    if (o->pending <= 0) return RSQ_OK;
    rc = rsq_read_reply(c, &r, RSQ_TIMEOUT_DEFAULT);
    if (rc == RSQ_ERR_NOGROUP) return RSQ_OK; /* destroyed meanwhile */
    if (rc != RSQ_OK) return rc;
    if (r->type != RSQ_REPLY_ARRAY) return rsq__set_err(c, RSQ_ERR_REPLY, "XPENDING: unexpected reply");
    for (k = 0; k < r->len; k++) {
        const rsq_reply *e = &r->element[k];
        long long idle = 0;
        if (e->type != RSQ_REPLY_ARRAY || e->len < 4 || !rsq_reply_int(&e->element[2], &idle))
            return rsq__set_err(c, RSQ_ERR_REPLY, "XPENDING: unexpected entry");
        if (k == 0) rsq__reply_id(&e->element[0], &o->oldest_pending);
        if (idle > o->oldest_pending_age_ms) o->oldest_pending_age_ms = idle;
    }
    return RSQ_OK;
}

/* One group of the XINFO GROUPS reply into *o, and its questions appended while that
   reply is in view (appending only writes): the lag count where the ends do not tell
   it (o->lag -2: by script; -3: by XRANGE later, without scripting), then a sample of
   the pending list. The server's own `lag` field is used only where it is exact: it
   is entries added - entries the group read, which after XTRIM or XDEL may count
   entries that are gone (Redis 7.0: lag 3 for a group with nothing left). Here the
   ends are known and first ID <= last-delivered < last ID, so a trim (which removes
   entries from the start) took nothing after last-delivered; when no XDEL since the
   stream was made reached past last-delivered either (max-deleted-entry-id <=
   last-delivered, Redis >= 7.0), every entry counted is there. Counting instead
   costs the server about 1.3 us an entry (13 ms at the 10000 cap, per group). */
RSQ__INTERN rsq_result rsq__stats_group_ask(rsq_client *c, const char *stream, const rsq_stream_info *info,
                                            const rsq_id *maxdel, const rsq_reply *g, rsq_group_info *o, int scripting) {
    const rsq_reply *name = rsq_reply_get(g, "name");
    const char *argv[7];
    size_t lens[7];
    rsq__args a = rsq__args_on(argv, lens, 7);
    char from[RSQ_ID_STRLEN];
    rsq_result rc;
    memset(o, 0, sizeof *o);
    if (!rsq__copy_name(o->name, sizeof o->name, name) || !rsq__reply_id(rsq_reply_get(g, "last-delivered-id"), &o->last_delivered))
        return rsq__set_err(c, RSQ_ERR_REPLY, "XINFO GROUPS: a group without name or last-delivered-id");
    o->consumers = rsq__get_int(g, "consumers", 0);
    o->pending = rsq__get_int(g, "pending", 0);
    o->lag_exact = 1;
    if (info->length == 0 || (info->ends_known && rsq_id_cmp(o->last_delivered, info->last_id) >= 0)) {
        o->lag = 0; /* nothing after last-delivered: the next read is empty */
    } else if (info->ends_known && rsq_id_cmp(o->last_delivered, info->first_id) < 0) {
        o->lag = info->length; /* every entry left is after it */
    } else if (info->ends_known && maxdel && rsq_id_cmp(*maxdel, o->last_delivered) <= 0 &&
               rsq_reply_int(rsq_reply_get(g, "lag"), &o->lag) && o->lag >= 0 && o->lag <= info->length) {
        /* the server's count, exact here (see above) */
    } else if (scripting) {
        o->lag = -2;
        rsq__argn(&a, "EVAL", 4);
        rsq__argn(&a, rsq__stats_script, sizeof rsq__stats_script - 1);
        rsq__args_list(&a, "1", stream, "count", (char *)0);
        rsq__argn(&a, from, rsq_id_format(o->last_delivered, from));
        rsq__arg(&a, RSQ__XSTR(RSQ__LAG_COUNT_MAX));
        if ((rc = rsq_append_argv(c, a.argc, argv, lens)) != RSQ_OK)
            return rc;
    } else {
        o->lag = -3;
    }
    if (o->pending <= 0)
        return RSQ_OK;
    a.argc = 0;
    rsq__args_list(&a, "XPENDING", stream, (char *)0);
    rsq__argn(&a, name->str, name->len);
    rsq__args_list(&a, "-", "+", RSQ__XSTR(RSQ_AGE_SAMPLE), (char *)0);
    if ((rc = rsq_append_argv(c, a.argc, argv, lens)) != RSQ_OK)
        o->pending = 0; /* nothing owed for it */
    return rc;
}

/* The lags left to count without scripting (o->lag -3), by XRANGE pages. */
RSQ__INTERN rsq_result rsq__stats_lag_fallback(rsq_client *c, const char *stream, rsq_group_info *groups, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        rsq_group_info *o = &groups[i];
        rsq_result rc;
        if (o->lag != -3)
            continue;
        rc = rsq__count_after(c, stream, o->last_delivered, RSQ__LAG_COUNT_MAX, &o->lag, &o->lag_exact);
        if (rc == RSQ_ERR_LIMIT) { /* an entry too large to count */
            o->lag = -1;
            o->lag_exact = 0;
            c->err[0] = '\0';
        } else if (rc != RSQ_OK) {
            return rc;
        }
    }
    return RSQ_OK;
}

RSQDEF rsq_result rsq_stream_stats(rsq_client *c, const char *stream, rsq_stream_info *info,
                                   rsq_group_info *groups, size_t cap, size_t *ngroups) {
    const rsq_reply *r;
    size_t i, n = 0;
    rsq_result rc = RSQ_OK, first = RSQ_OK;
    int scripting = 1, maxdel_known = 0;
    rsq_id maxdel = { 0, 0 };
    if (ngroups)
        *ngroups = 0;
    if (!c || !info)
        return c ? rsq__set_err(c, RSQ_ERR_ARG, "info is NULL") : RSQ_ERR_ARG;
    memset(info, 0, sizeof *info);
    if (cap && !groups)
        return rsq__set_err(c, RSQ_ERR_ARG, "groups is NULL");
    if ((rc = rsq__check_key(c, "stream", stream)) != RSQ_OK)
        return rc;
    if ((rc = rsq__stats_head(c, stream, info, &scripting, &maxdel, &maxdel_known)) != RSQ_OK)
        return rc;
    if (!info->exists || cap == 0 || info->groups == 0)
        return RSQ_OK;
    if ((rc = rsq__cmd(c, &r, RSQ__IDEMPOTENT, "XINFO", "GROUPS", stream, (char *)0)) != RSQ_OK)
        return rc;
    if (r->type != RSQ_REPLY_ARRAY)
        return rsq__set_err(c, RSQ_ERR_REPLY, "XINFO GROUPS: unexpected reply");
    for (i = 0; i < r->len && n < cap && first == RSQ_OK; i++) {
        first = rsq__stats_group_ask(c, stream, info, maxdel_known ? &maxdel : NULL, &r->element[i], &groups[n], scripting);
        if (first == RSQ_OK)
            n++; /* (on a failure the groups are not reported: the count does not matter) */
    }
    for (i = 0; i < n && first == RSQ_OK; i++)
        first = rsq__stats_group_replies(c, &groups[i], &scripting);
    if (first != RSQ_OK) { /* stay in step: read what is still owed */
        while (rsq_pending_replies(c) > 0 && !rsq__link_error(rsq_read_reply(c, &r, RSQ_TIMEOUT_DEFAULT))) {}
        return first;
    }
    if ((rc = rsq__stats_lag_fallback(c, stream, groups, n)) != RSQ_OK)
        return rc;
    if (ngroups)
        *ngroups = n;
    return RSQ_OK;
}

RSQDEF rsq_result rsq_group_consumers(rsq_client *c, const char *stream, const char *group,
                                      rsq_consumer_info *out, size_t cap, size_t *n) {
    const rsq_reply *r;
    rsq_result rc;
    size_t i;
    if (n) *n = 0;
    if (!c) return RSQ_ERR_ARG;
    if (cap && !out) return rsq__set_err(c, RSQ_ERR_ARG, "out is NULL");
    if ((rc = rsq__check_key(c, "stream", stream)) != RSQ_OK || (rc = rsq__check_key(c, "group", group)) != RSQ_OK) return rc;
    rc = rsq__cmd(c, &r, RSQ__IDEMPOTENT, "XINFO", "CONSUMERS", stream, group, (char *)0);
    if (rc != RSQ_OK) return rc;
    if (r->type != RSQ_REPLY_ARRAY) return rsq__set_err(c, RSQ_ERR_REPLY, "XINFO CONSUMERS: unexpected reply");
    for (i = 0; i < r->len && i < cap; i++) {
        const rsq_reply *e = &r->element[i];
        if (!rsq__copy_name(out[i].name, sizeof out[i].name, rsq_reply_get(e, "name")))
            return rsq__set_err(c, RSQ_ERR_REPLY, "XINFO CONSUMERS: a consumer without a name");
        out[i].pending = rsq__get_int(e, "pending", 0);
        out[i].idle_ms = rsq__get_int(e, "idle", 0);
    }
    if (n) *n = r->len;
    return RSQ_OK;
}

RSQDEF rsq_result rsq_retire_idle_consumers(rsq_client *c, const char *stream, const char *group,
                                            long long min_idle_ms, int *retired) {
    /* Walks XINFO CONSUMERS on the server, so that any number of consumers is seen and
       no list crosses the network; each deletion is checked in the same atomic step.
       Before Redis 7 a script that writes after a non-deterministic command (XINFO)
       must replicate its effects, not itself: hence replicate_commands where it exists. */
    static const char script[] =
        "if redis.replicate_commands then redis.replicate_commands() end "
        "local n, min = 0, tonumber(ARGV[2]) "
        "local list = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1]) "
        "if list.err then return list end "
        "for _, c in ipairs(list) do "
        "local name, pending, idle = nil, 1, 0 "
        "for j = 1, #c, 2 do "
        "if c[j] == 'name' then name = c[j + 1] elseif c[j] == 'pending' then pending = c[j + 1] "
        "elseif c[j] == 'idle' then idle = c[j + 1] end end "
        "if name and pending == 0 and idle >= min then "
        "redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name) n = n + 1 end end "
        "return n";
    const rsq_reply *r;
    char idle[24];
    rsq_result rc;
    if (retired) *retired = 0;
    if (!c) return RSQ_ERR_ARG;
    if ((rc = rsq__check_key(c, "stream", stream)) != RSQ_OK || (rc = rsq__check_key(c, "group", group)) != RSQ_OK) return rc;
    rsq__u64_to_dec(idle, (uint64_t)(min_idle_ms > 0 ? min_idle_ms : 0));
    /* not idempotent in its count: never sent twice */
    rc = rsq__cmd(c, &r, RSQ__ONCE, "EVAL", script, "1", stream, group, idle, (char *)0);
    if (rc != RSQ_OK) return rsq__needs_scripting(c, rc, "rsq_retire_idle_consumers");
    if (r->type != RSQ_REPLY_INTEGER) return rsq__set_err(c, RSQ_ERR_REPLY, "retire script: unexpected reply");
    if (retired) *retired = r->integer > INT_MAX ? INT_MAX : (int)r->integer;
    return RSQ_OK;
}

RSQDEF int rsq_group_behind(const rsq_group_info *g, long long max_pending, long long max_lag, long long max_age_ms) {
    if (!g) return 0;
    if (max_pending > 0 && g->pending > max_pending) return 1;
    if (max_lag > 0 && g->lag > max_lag) return 1;
    if (max_age_ms > 0 && g->oldest_pending_age_ms > max_age_ms) return 1;
    return 0;
}

/* ------------------------------------------------------------------------------------ */
// >>admin (implementation)

RSQ__INTERN rsq_result rsq__trim(rsq_client *c, const char *stream, const char *how, const char *thr, int exact, long long *trimmed) {
    const rsq_reply *r;
    rsq_result rc = rsq__check_key(c, "stream", stream);
    if (rc != RSQ_OK) return rc;
    rc = rsq__cmd(c, &r, RSQ__IDEMPOTENT, "XTRIM", stream, how, exact ? "=" : "~", thr, (char *)0);
    if (rc == RSQ_OK && trimmed) *trimmed = r->integer;
    return rc;
}

RSQDEF rsq_result rsq_trim_maxlen(rsq_client *c, const char *stream, long long maxlen, int exact, long long *trimmed) {
    char num[24];
    if (!c) return RSQ_ERR_ARG;
    if (maxlen < 0) return rsq__set_err(c, RSQ_ERR_ARG, "maxlen must not be negative");
    rsq__u64_to_dec(num, (uint64_t)maxlen);
    return rsq__trim(c, stream, "MAXLEN", num, exact, trimmed);
}

RSQDEF rsq_result rsq_trim_minid(rsq_client *c, const char *stream, rsq_id minid, int exact, long long *trimmed) {
    char id[RSQ_ID_STRLEN];
    rsq_result rc;
    if (!c) return RSQ_ERR_ARG;
    if ((rc = rsq__check_key(c, "stream", stream)) != RSQ_OK || (rc = rsq__need_minid(c)) != RSQ_OK) return rc;
    rsq_id_format(minid, id);
    return rsq__trim(c, stream, "MINID", id, exact, trimmed);
}

/* Reads the `asked` XPENDING replies of rsq__safe_bound, every one (the connection
   stays in step even after a failure), lowering *bound to each group's oldest pending
   entry; *acked_all is set when a group acked everything meanwhile (its bound is then
   past its last-delivered ID). Returns the first failure. */
RSQ__INTERN rsq_result rsq__safe_bound_replies(rsq_client *c, size_t asked, rsq_id *bound, int *acked_all) {
    rsq_result first = RSQ_OK;
    for (; asked > 0 && rsq_pending_replies(c) > 0; asked--) {
        const rsq_reply *r;
        rsq_id p;
        rsq_result rc = rsq_read_reply(c, &r, RSQ_TIMEOUT_DEFAULT);
        if (rc == RSQ_OK && r->type == RSQ_REPLY_ARRAY && r->len >= 1 && r->element[0].type == RSQ_REPLY_ARRAY &&
            r->element[0].len >= 1 && rsq__reply_id(&r->element[0].element[0], &p)) {
            if (rsq_id_cmp(p, *bound) < 0)
                *bound = p;
        } else if (rc == RSQ_OK && r->type == RSQ_REPLY_ARRAY && r->len == 0) {
            *acked_all = 1;
        } else if (rc == RSQ_ERR_NOGROUP) {
            /* destroyed meanwhile: it holds nothing back */
        } else if (first == RSQ_OK) {
            first = rc == RSQ_OK ? rsq__set_err(c, RSQ_ERR_REPLY, "XPENDING: unexpected reply") : rc;
        }
    }
    return first;
}

/* The lowest entry ID that a safe trim must keep, over every group of the stream: a
   group's oldest pending entry or, with nothing pending, the entry after its
   last-delivered ID. Works through the XINFO GROUPS reply in place: for each group
   with pending entries an `XPENDING stream group - + 1` is appended while the reply is
   still in view (appending only writes: the reply stays valid until the next read),
   and those replies are read afterwards. Any number of groups; nothing is copied, and
   nothing allocated beyond the pipeline's write buffer. *have = 0: trim nothing. */
RSQ__INTERN rsq_result rsq__safe_bound(rsq_client *c, const char *stream, rsq_id *bound, int *have) {
    const rsq_reply *r;
    const char *argv[6];
    size_t lens[6], i, asked = 0;
    rsq__args a = rsq__args_on(argv, lens, 6);
    rsq_id held_floor; /* the lowest "entry after last-delivered" of the groups with pending entries */
    rsq_result rc, first = RSQ_OK;
    int use_floor = 0;
    *have = 0;
    bound->ms = bound->seq = UINT64_MAX;
    held_floor = *bound;
    rc = rsq__cmd(c, &r, RSQ__IDEMPOTENT, "XINFO", "GROUPS", stream, (char *)0);
    if (rc == RSQ_ERR_SERVER && strstr(c->err, "no such key")) {
        c->err[0] = '\0';
        return RSQ_OK;
    }
    if (rc != RSQ_OK)
        return rc;
    if (r->type != RSQ_REPLY_ARRAY)
        return rsq__set_err(c, RSQ_ERR_REPLY, "XINFO GROUPS: unexpected reply");
    if (r->len == 0)
        return RSQ_OK; /* no group: nothing is known to be consumed */
    for (i = 0; i < r->len; i++) {
        const rsq_reply *g = &r->element[i], *name = rsq_reply_get(g, "name");
        rsq_id last, next;
        if (!name || !name->str || !rsq__reply_id(rsq_reply_get(g, "last-delivered-id"), &last)) {
            first = rsq__set_err(c, RSQ_ERR_REPLY, "XINFO GROUPS: a group without name or last-delivered-id");
            break;
        }
        if (!rsq__id_succ(last, &next))
            next = last;
        if (rsq__get_int(g, "pending", 0) <= 0) {
            if (rsq_id_cmp(next, *bound) < 0)
                *bound = next; /* everything up to last-delivered is acked: keep what follows */
            continue;
        }
        /* its bound is its oldest pending entry (at most last-delivered): ask */
        a.argc = 0;
        rsq__args_list(&a, "XPENDING", stream, (char *)0);
        rsq__argn(&a, name->str, name->len);
        rsq__args_list(&a, "-", "+", "1", (char *)0);
        if ((first = rsq_append_argv(c, a.argc, argv, lens)) != RSQ_OK)
            break;
        asked++;
        if (rsq_id_cmp(next, held_floor) < 0)
            held_floor = next;
    }
    rc = rsq__safe_bound_replies(c, asked, bound, &use_floor);
    if (first == RSQ_OK)
        first = rc;
    if (first != RSQ_OK)
        return first;
    if (use_floor && rsq_id_cmp(held_floor, *bound) < 0)
        *bound = held_floor;
    /* 0-1 and below: some group has had nothing delivered, so nothing may go */
    *have = !(bound->ms == 0 && bound->seq <= 1);
    return RSQ_OK;
}

RSQDEF rsq_result rsq_trim_safe(rsq_client *c, const char *stream, int exact, long long *trimmed) {
    rsq_id bound;
    int have = 0;
    rsq_result rc;
    if (trimmed) *trimmed = 0;
    if (!c) return RSQ_ERR_ARG;
    if ((rc = rsq__check_key(c, "stream", stream)) != RSQ_OK || (rc = rsq__need_minid(c)) != RSQ_OK) return rc;
    if ((rc = rsq__safe_bound(c, stream, &bound, &have)) != RSQ_OK || !have) return rc;
    return rsq_trim_minid(c, stream, bound, exact, trimmed);
}

RSQDEF rsq_result rsq_group_create(rsq_client *c, const char *stream, const char *group, const char *start) {
    const rsq_reply *r;
    rsq_result rc;
    if (!c) return RSQ_ERR_ARG;
    if ((rc = rsq__check_key(c, "stream", stream)) != RSQ_OK || (rc = rsq__check_key(c, "group", group)) != RSQ_OK) return rc;
    if (start && strcmp(start, "$") && strcmp(start, "0")) {
        rsq_id tmp;
        if (!rsq_id_parse(start, strlen(start), &tmp)) return rsq__set_err(c, RSQ_ERR_ARG, "group start must be $, 0 or an entry ID");
    }
    rc = rsq__cmd(c, &r, RSQ__IDEMPOTENT, "XGROUP", "CREATE", stream, group, start ? start : RSQ_START_ALL, "MKSTREAM",
                  (char *)0);
    if (rc == RSQ_ERR_SERVER && !strncmp(c->err, "BUSYGROUP", 9)) { c->err[0] = '\0'; return RSQ_OK; }
    return rc;
}

RSQDEF rsq_result rsq_group_destroy(rsq_client *c, const char *stream, const char *group, int *existed) {
    const rsq_reply *r;
    rsq_result rc;
    if (!c) return RSQ_ERR_ARG;
    if ((rc = rsq__check_key(c, "stream", stream)) != RSQ_OK || (rc = rsq__check_key(c, "group", group)) != RSQ_OK) return rc;
    rc = rsq__cmd(c, &r, RSQ__IDEMPOTENT, "XGROUP", "DESTROY", stream, group, (char *)0);
    if (rc == RSQ_OK && existed) *existed = r->integer > 0;
    if (rc == RSQ_ERR_SERVER && existed && strstr(c->err, "no such key")) {
        *existed = 0;
        c->err[0] = '\0';
        return RSQ_OK;
    }
    return rc;
}

RSQDEF rsq_result rsq_stream_create(rsq_client *c, const char *stream) {
    const rsq_reply *r;
    rsq_result rc;
    if (!c) return RSQ_ERR_ARG;
    if ((rc = rsq__check_key(c, "stream", stream)) != RSQ_OK) return rc;
    /* a throwaway group creates the empty stream; the group goes again at once */
    rc = rsq__cmd(c, &r, RSQ__IDEMPOTENT, "XGROUP", "CREATE", stream, "rsq:create", "$", "MKSTREAM", (char *)0);
    if (rc != RSQ_OK && !(rc == RSQ_ERR_SERVER && !strncmp(c->err, "BUSYGROUP", 9))) return rc;
    return rsq__cmd(c, &r, RSQ__IDEMPOTENT, "XGROUP", "DESTROY", stream, "rsq:create", (char *)0);
}

RSQ__INTERN rsq_result rsq__stream_simple(rsq_client *c, const char *cmd, const char *stream, const rsq_reply **r) {
    rsq_result rc;
    if (!c)
        return RSQ_ERR_ARG;
    if ((rc = rsq__check_key(c, "stream", stream)) != RSQ_OK)
        return rc;
    return rsq__cmd(c, r, RSQ__IDEMPOTENT, cmd, stream, (char *)0);
}

RSQDEF rsq_result rsq_stream_delete(rsq_client *c, const char *stream) {
    const rsq_reply *r;
    return rsq__stream_simple(c, "DEL", stream, &r);
}

RSQDEF rsq_result rsq_stream_exists(rsq_client *c, const char *stream, int *exists) {
    const rsq_reply *r;
    rsq_result rc = rsq__stream_simple(c, "TYPE", stream, &r);
    if (rc != RSQ_OK) return rc;
    if (rsq_reply_is(r, "none")) { if (exists) *exists = 0; return RSQ_OK; }
    if (!rsq_reply_is(r, "stream")) return rsq__set_err(c, RSQ_ERR_WRONGTYPE, "WRONGTYPE key %s holds a %.*s, not a stream", stream, (int)r->len, r->str);
    if (exists) *exists = 1;
    return RSQ_OK;
}

RSQDEF rsq_result rsq_stream_length(rsq_client *c, const char *stream, long long *length) {
    const rsq_reply *r;
    rsq_result rc = rsq__stream_simple(c, "XLEN", stream, &r);
    if (rc == RSQ_OK && length) *length = r->integer;
    return rc;
}

#endif /* RSQ_NO_ADMIN */
/* ------------------------------------------------------------------------------------ */
// >>producer (implementation)

RSQDEF void rsq_producer_config_init(rsq_producer_config *cfg) {
    if (cfg) memset(cfg, 0, sizeof *cfg);
}

RSQDEF rsq_result rsq_producer_init(rsq_producer *p, rsq_client *c, const rsq_producer_config *cfg) {
    rsq_result rc;
    if (!p || !c || !c->initialized || !cfg) return c ? rsq__set_err(c, RSQ_ERR_ARG, "producer, client or config is NULL") : RSQ_ERR_ARG;
    memset(p, 0, sizeof *p);
    rc = rsq__check_key(c, "queue name", cfg->queue);
    if (rc != RSQ_OK) return rc;
    if (cfg->priority_levels < 0 || cfg->priority_levels > RSQ_MAX_PRIORITIES)
        return rsq__set_err(c, RSQ_ERR_ARG, "priority_levels must be 1..%d", RSQ_MAX_PRIORITIES);
    if (cfg->shards < 0 || cfg->shards > RSQ_MAX_SHARDS)
        return rsq__set_err(c, RSQ_ERR_ARG, "shards must be 1..%d", RSQ_MAX_SHARDS);
    if (cfg->cap.mode == RSQ_TRIM_MAXLEN && cfg->cap.maxlen < 0)
        return rsq__set_err(c, RSQ_ERR_ARG, "cap.maxlen must not be negative");
    if (cfg->cap.mode != RSQ_TRIM_NONE && cfg->cap.mode != RSQ_TRIM_MAXLEN && cfg->cap.mode != RSQ_TRIM_MINID)
        return rsq__set_err(c, RSQ_ERR_ARG, "unknown cap.mode");
    if (cfg->safe_trim_every < 0) return rsq__set_err(c, RSQ_ERR_ARG, "safe_trim_every must not be negative");
#ifdef RSQ_NO_ADMIN
    if (cfg->safe_trim_every) return rsq__set_err(c, RSQ_ERR_UNSUPPORTED, "safe_trim_every: this build has RSQ_NO_ADMIN");
#endif
    p->c = c;
    memcpy(p->queue, cfg->queue, strlen(cfg->queue) + 1);
    p->levels = RSQ__DEF(cfg->priority_levels, 1);
    p->shards = RSQ__DEF(cfg->shards, 1);
    p->max_payload = RSQ__DEF(cfg->max_payload, (size_t)1 << 20);
    p->cap = cfg->cap;
    p->safe_trim_every = cfg->safe_trim_every;
    p->resend = !cfg->no_resend;
    if (cfg->wait_replicas < 0 || cfg->wait_timeout_ms < 0) return rsq__set_err(c, RSQ_ERR_ARG, "wait settings must not be negative");
    p->wait_replicas = cfg->wait_replicas;
    if (cfg->dedup_window_ms < 0 || cfg->dedup_window_ms / 1000 > 31536000L) /* a year */
        return rsq__set_err(c, RSQ_ERR_ARG, "dedup_window_ms must be 0 to a year (31536000000)");
    p->idempotent = cfg->idempotent;
    p->dedup_window_ms = RSQ__DEF(cfg->dedup_window_ms, 3600000L);
    p->wait_timeout_ms = RSQ__DEF(cfg->wait_timeout_ms, 1000);
    /* the longest key derived from the queue must fit */
    if (!rsq_queue_key(p->key, sizeof p->key, p->queue, p->shards - 1, p->levels - 1, RSQ_KEY_DELAYED))
        return rsq__queue_name_error(c, p->queue);
    return RSQ_OK;
}

RSQ__INTERN int rsq__valid_header_name(const char *s, size_t n) {
    size_t i;
    if (!s || n == 0 || n > 255 || (n == 7 && !memcmp(s, "payload", 7))) return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f) return 0;
    return 1;
}

/* FNV-1a, for shard keys. */
RSQ__INTERN uint32_t rsq__fnv1a(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    size_t i;
    for (i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 16777619u; }
    return h;
}

RSQ__INTERN rsq_result rsq__check_outgoing(rsq_producer *p, const rsq_outgoing *m, size_t idx) {
    (void)idx; /* used by the error texts only */
    rsq_client *c = p->c;
    unsigned long ix = (unsigned long)idx; /* no %zu: see rsq__fmt */
    (void)ix; /* used by the error texts only */
    size_t i;
    if (m->payload_len > p->max_payload)
        return rsq__set_err(c, RSQ_ERR_TOO_LARGE, "message %lu: payload of %lu bytes exceeds max_payload (%lu)", ix,
                            (unsigned long)m->payload_len, (unsigned long)p->max_payload);
    if (m->payload_len && !m->payload) return rsq__set_err(c, RSQ_ERR_ARG, "message %lu: payload is NULL", ix);
    if (m->header_count > RSQ_MAX_HEADERS) return rsq__set_err(c, RSQ_ERR_ARG, "message %lu: more than %d headers", ix, RSQ_MAX_HEADERS);
    if (m->header_count && !m->headers) return rsq__set_err(c, RSQ_ERR_ARG, "message %lu: headers is NULL", ix);
    for (i = 0; i < m->header_count; i++) {
        const rsq_field *f = &m->headers[i];
        size_t nl = f->name ? (f->name_len ? f->name_len : strlen(f->name)) : 0;
        if (!rsq__valid_header_name(f->name, nl))
            return rsq__set_err(c, RSQ_ERR_ARG, "message %lu: header %lu: name must be 1..255 printable bytes and not \"payload\"", ix, (unsigned long)i);
    }
    if (m->priority < 0 || m->priority >= p->levels)
        return rsq__set_err(c, RSQ_ERR_ARG, "message %lu: priority %d outside 0..%d", ix, m->priority, p->levels - 1);
    if (m->id) {
        size_t n = strlen(m->id);
        rsq_id tmp;
        int ok = (n == 1 && m->id[0] == '*') || rsq_id_parse(m->id, n, &tmp) ||
                 (n > 2 && !memcmp(m->id + n - 2, "-*", 2) && rsq_id_parse(m->id, n - 2, &tmp));
        if (!ok) return rsq__set_err(c, RSQ_ERR_ARG, "message %lu: malformed entry ID", ix);
    }
    if (m->delay_ms < 0 || m->deliver_at_ms < 0 || ((m->delay_ms || m->deliver_at_ms) && (m->id || m->idempotency_key)))
        return rsq__set_err(c, RSQ_ERR_ARG, "message %lu: a schedule must not be negative, nor come with an id or an "
                            "idempotency key", ix);
    if (m->idempotency_key) {
        size_t kn = m->idempotency_key_len ? m->idempotency_key_len : strlen(m->idempotency_key);
        if (kn == 0 || kn > RSQ_IDEMPOTENCY_KEY_MAX)
            return rsq__set_err(c, RSQ_ERR_ARG, "message %lu: idempotency_key must be 1..%d bytes", ix, RSQ_IDEMPOTENCY_KEY_MAX);
    }
    return RSQ_OK;
}

/* The idempotency key of a message (seq: its number in the producer's sequence, for a
   generated one), written to out (RSQ_IDEMPOTENCY_KEY_MAX + 2 bytes at least) with
   its namespace: "k:" the caller's, "g:" generated ("g:<producer>:<seq>"). 0: none. */
RSQ__INTERN size_t rsq__idem_key(const rsq_producer *p, const rsq_outgoing *m, uint64_t seq, char *out) {
    size_t n;
    if (m->idempotency_key) {
        n = m->idempotency_key_len ? m->idempotency_key_len : strlen(m->idempotency_key);
        memcpy(out, "k:", 2);
        memcpy(out + 2, m->idempotency_key, n);
        return n + 2;
    }
    if (!p->idempotent || !p->idem_prefix[0]) return 0;
    n = strlen(p->idem_prefix);
    memcpy(out, "g:", 2);
    memcpy(out + 2, p->idem_prefix, n);
    out[2 + n] = ':';
    return 3 + n + rsq__u64_to_dec(out + 3 + n, seq);
}

/* The shard of message m: by its shard key, else by its idempotency key (ik, ikn: a
   resend lands where the first try did), else round robin (*rr advances). */
RSQ__INTERN int rsq__msg_shard(const rsq_producer *p, const rsq_outgoing *m, const char *ik, size_t ikn, uint32_t *rr) {
    if (p->shards <= 1) return 0;
    if (m->shard_key) {
        size_t kl = m->shard_key_len ? m->shard_key_len : strlen(m->shard_key);
        return (int)(rsq__fnv1a(m->shard_key, kl) % (uint32_t)p->shards);
    }
    if (ikn) return (int)(rsq__fnv1a(ik, ikn) % (uint32_t)p->shards);
    return (int)((*rr)++ % (uint32_t)p->shards);
}

/* The retention arguments of an XADD (MAXLEN or MINID, = or ~, LIMIT) for p->cap;
   thr and lim hold their numbers. */
RSQ__INTERN void rsq__xadd_cap(const rsq_producer *p, rsq__args *a, char *thr, char *lim) {
    if (p->cap.mode == RSQ_TRIM_NONE)
        return;
    if (p->cap.mode == RSQ_TRIM_MAXLEN) {
        rsq__args_list(a, "MAXLEN", p->cap.exact ? "=" : "~", (char *)0);
        rsq__argn(a, thr, rsq__u64_to_dec(thr, (uint64_t)p->cap.maxlen));
    } else {
        rsq__args_list(a, "MINID", p->cap.exact ? "=" : "~", (char *)0);
        rsq__argn(a, thr, rsq_id_format(p->cap.minid, thr));
    }
    if (!p->cap.exact && p->cap.limit > 0) {
        rsq__arg(a, "LIMIT");
        rsq__argn(a, lim, rsq__u64_to_dec(lim, (uint64_t)p->cap.limit));
    }
}

/* Idempotent publishing: the key's mark and the XADD in one step. KEYS: the stream,
   the mark; ARGV: the window (ms), then XADD's arguments after the key. Reply: {1, ID}
   when added, {0, ID of the first} when the key was seen within the window. */
#define RSQ__IDEM_SCRIPT \
    "local id = redis.call('GET', KEYS[2]) " \
    "if id then return {0, id} end " \
    "id = redis.call('XADD', KEYS[1], unpack(ARGV, 2)) " \
    "redis.call('SET', KEYS[2], id, 'PX', ARGV[1]) " \
    "return {1, id}"

/* The mark of idempotency key ik on the server, in the slot of the stream key sk:
   "{TAG}:idem:<ik>". Length, or 0 when it does not fit. */
#define rsq__idem_mark(out, cap, sk, skn, ik, ikn) rsq__slot_key(out, cap, sk, skn, "idem:", ik, ikn)

/* A scheduled publish: the message into the shard's delayed set, due at a time of the
   server's clock. KEYS: the stream, the delayed set; ARGV: "in" or "at", ms, fields.
   Reply: the due time (Unix ms). */
#define RSQ__SCHEDULE_SCRIPT \
    "if redis.replicate_commands then redis.replicate_commands() end " \
    "local due = tonumber(ARGV[2]) " \
    "if ARGV[1] == 'in' then local t = redis.call('TIME') " \
    "due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + due end " \
    "local m = {KEYS[1], '', tostring(redis.call('INCR', KEYS[2] .. ':seq')), ''} " \
    "for i = 3, #ARGV do m[#m + 1] = ARGV[i] end " \
    "redis.call('ZADD', KEYS[2], due, cmsgpack.pack(m)) " \
    "return due"

/* The start of a scheduled publish's script call, up to its fields. */
RSQ__INTERN void rsq__schedule_args(rsq_producer *p, const rsq_outgoing *m, rsq__args *a, const char *sk, size_t skn,
                                    int shard, char *num) {
    int in = m->deliver_at_ms <= 0;
    rsq__args_list(a, "EVAL", RSQ__SCHEDULE_SCRIPT, "2", (char *)0);
    rsq__argn(a, sk, skn);
    rsq__argn(a, p->idem, rsq_queue_key(p->idem, sizeof p->idem, p->queue, shard, 0, RSQ_KEY_DELAYED));
    rsq__arg(a, in ? "in" : "at");
    rsq__argn(a, num, rsq__u64_to_dec(num, (uint64_t)(in ? m->delay_ms : m->deliver_at_ms)));
}

/* Appends the XADD for one message (seq: its place in the producer's sequence), or,
   with an idempotency key, the script that adds it at most once, or, scheduled, the
   script that puts it in the delayed set. */
RSQ__INTERN rsq_result rsq__append_xadd(rsq_producer *p, const rsq_outgoing *m, uint64_t seq) {
    rsq__args a = rsq__args_on(p->argv, p->lens, (int)RSQ__COUNTOF(p->argv));
    char *key = p->key, thr[RSQ_ID_STRLEN], lim[24], win[24], *ik = p->ik;
    size_t ikn = rsq__idem_key(p, m, seq, ik), skn, i;
    int shard = rsq__msg_shard(p, m, ik, ikn, &p->rr);
    const char *sk = p->queue;
    if (shard == 0 && m->priority == 0)
        skn = strlen(p->queue);
    else
        sk = key, skn = rsq_queue_key(key, sizeof p->key, p->queue, shard, m->priority, RSQ_KEY_STREAM);
    if (m->delay_ms > 0 || m->deliver_at_ms > 0) {
        rsq__schedule_args(p, m, &a, sk, skn, shard, win);
    } else if (ikn) {
        size_t mn = rsq__idem_mark(p->idem, sizeof p->idem, sk, skn, ik, ikn);
        if (!mn)
            return rsq__set_err(p->c, RSQ_ERR_ARG, "idempotency key too long for the queue's name");
        rsq__args_list(&a, "EVAL", RSQ__IDEM_SCRIPT, "2", (char *)0);
        rsq__argn(&a, sk, skn);
        rsq__argn(&a, p->idem, mn);
        rsq__argn(&a, win, rsq__u64_to_dec(win, (uint64_t)p->dedup_window_ms));
    } else {
        rsq__arg(&a, "XADD");
        rsq__argn(&a, sk, skn);
    }
    if (m->delay_ms <= 0 && m->deliver_at_ms <= 0) {
        rsq__xadd_cap(p, &a, thr, lim);
        rsq__arg(&a, m->id ? m->id : "*");
    }
    rsq__arg(&a, "payload");
    rsq__argn(&a, m->payload_len ? (const char *)m->payload : "", m->payload_len);
    for (i = 0; i < m->header_count; i++) {
        const rsq_field *f = &m->headers[i];
        rsq__argn(&a, f->name, f->name_len ? f->name_len : strlen(f->name));
        if (!f->value)
            rsq__argn(&a, "", 0);
        else
            rsq__argn(&a, f->value, f->value_len ? f->value_len : strlen(f->value));
    }
    return rsq_append_argv(p->c, a.argc, p->argv, p->lens);
}

/* What an XADD of these messages needs beyond Redis 5.0 and cannot do without: MINID
   (the cap, Redis 6.2) and an explicit "ms-*" ID (Redis 7.0). On an older server:
   RSQ_ERR_UNSUPPORTED naming it, before anything is sent. The version is asked only
   when one of them is used (once per connection); unknown (INFO and HELLO refused, or
   replies of an earlier async publish still unread) gets the benefit of the doubt. */
RSQ__INTERN rsq_result rsq__xadd_features(rsq_producer *p, const rsq_outgoing *msgs, size_t n) {
    rsq_client *c = p->c;
    const char *what = "XADD MINID (cap.mode RSQ_TRIM_MINID)";
    long need = p->cap.mode == RSQ_TRIM_MINID ? 60200 : 0, v = 0;
    rsq_result rc;
    size_t i;
    (void)what; /* used by the error text only */
    if (p->cap.mode != RSQ_TRIM_NONE && !p->cap.exact && p->cap.limit > 0 && !need) {
        need = 60200;
        what = "XADD ... LIMIT (cap.limit)";
    }
    for (i = 0; i < n && need < 70000; i++) {
        size_t len = msgs[i].id ? strlen(msgs[i].id) : 0;
        if (len > 2 && !memcmp(msgs[i].id + len - 2, "-*", 2)) { need = 70000; what = "an explicit ms-* entry ID"; }
    }
    if (!need || (!(c->server_version && rsq_is_connected(c)) && rsq_pending_replies(c))) return RSQ_OK;
    rc = rsq_server_version(c, &v);
    if (rsq__link_error(rc)) return rc;
    if (rc == RSQ_OK && v > 0 && v < need)
        return rsq__set_err(c, RSQ_ERR_UNSUPPORTED, "%s needs Redis %ld.%ld or later; the server is %ld.%ld.%ld; nothing was sent",
                            what, need / 10000, need / 100 % 100, v / 10000, v / 100 % 100, v % 100);
    c->err[0] = '\0';
    return RSQ_OK;
}

/* The periodic safe trim: every stream of the queue, each tried even when another
   failed; the first failure is returned. */
#ifndef RSQ_NO_ADMIN
RSQ__INTERN rsq_result rsq__safe_trim_queue(rsq_producer *p) {
    int s, l;
    rsq_result rc, first = RSQ_OK;
    for (s = 0; s < p->shards; s++)
        for (l = 0; l < p->levels; l++) {
            if (s == 0 && l == 0) rc = rsq_trim_safe(p->c, p->queue, 0, NULL);
            else if (!rsq_queue_key(p->key, sizeof p->key, p->queue, s, l, RSQ_KEY_STREAM)) rc = rsq__queue_name_error(p->c, p->queue);
            else rc = rsq_trim_safe(p->c, p->key, 0, NULL);
            if (rc != RSQ_OK && first == RSQ_OK) first = rc;
            if (rsq__link_error(rc) && !rsq_is_connected(p->c)) return first;
        }
    return first;
}
#else /* refused by rsq_producer_init */
#define rsq__safe_trim_queue(p) RSQ_ERR_UNSUPPORTED
#endif

/* An after-step failed: log, count and keep it (the first of the call); the call
   returns RSQ_OK, so the client's error text is cleared. */
RSQ__INTERN void rsq__after_step_failed(rsq_producer *p, rsq_result rc, const char *what) {
    rsq_client *c = p->c;
    p->after_failures++;
    rsq__log(c, RSQ_LOG_WARN, RSQ_LOGI_AFTER_STEP, "%s after publishing failed (%s): %s; the messages are published",
             what, rsq_result_name(rc), c->err);
    if (p->after_rc == RSQ_OK) {
        p->after_rc = rc;
        rsq__fmt(p->after_err, sizeof p->after_err, "%s: %s", what, c->err);
    }
    c->err[0] = '\0';
}

RSQDEF rsq_result rsq_producer_after_step(const rsq_producer *p, const char **text, uint64_t *failures) {
    if (text) *text = p ? p->after_err : "producer is NULL";
    if (failures) *failures = p ? p->after_failures : 0;
    return p ? p->after_rc : RSQ_ERR_ARG;
}

/* WAIT on every connection written to since the last call: the fewest replicas that
   acknowledged go to *acked. WAIT covers only its own connection's writes: when one
   written to was closed meanwhile (a lost link, a failover, a resend on a new
   connection), no WAIT can confirm those writes: RSQ_ERR_REPLICAS, saying so. */
RSQ__INTERN rsq_result rsq__wait_written(rsq_client *c, int replicas, int timeout_ms, long long *acked) {
    char rep_s[24], tmo[24];
    const char *argv[3];
    size_t lens[3];
    rsq__args a = rsq__args_on(argv, lens, 3);
    const rsq_reply *r;
    rsq_result rc = RSQ_OK;
    int i, sent = 0;
    rsq__u64_to_dec(rep_s, (uint64_t)replicas);
    rsq__u64_to_dec(tmo, (uint64_t)timeout_ms);
    rsq__args_list(&a, "WAIT", rep_s, tmo, (char *)0);
    *acked = LLONG_MAX;
    if (c->written_lost) {
        c->written_lost = 0;
        c->node.written = 0;
        for (i = 0; i < c->nnodes; i++)
            c->nodes[i].written = 0;
        return rsq__set_err(c, RSQ_ERR_REPLICAS,
                            "WAIT: a connection that carried writes was lost before WAIT; they may not be on any replica");
    }
    if (!RSQ__IN_CLUSTER(c)) {
        if (!c->node.written) return RSQ_OK;
        c->node.written = 0;
        rc = rsq__node_append(c, &c->node, 3, argv, lens);
        if (rc == RSQ_OK) rc = rsq_read_reply(c, &r, timeout_ms + c->io_timeout_ms);
        if (rc == RSQ_OK) *acked = r->integer;
        return rc;
    }
    for (i = 0; i < c->nnodes && rc == RSQ_OK; i++) {
        if (!c->nodes[i].written || !c->nodes[i].connected) continue;
        c->nodes[i].written = 0;
        if ((rc = rsq__cluster_append(c, i, 3, argv, lens)) == RSQ_OK)
            sent++;
    }
    while (sent-- > 0 && rc == RSQ_OK)
        if ((rc = rsq_read_reply(c, &r, timeout_ms + c->io_timeout_ms)) == RSQ_OK && r->integer < *acked) *acked = r->integer;
    return rsq__resync(c, rc);
}

/* WAIT for wait_replicas (when set) and, every safe_trim_every messages, a safe trim:
   the after-steps of a publish call whose messages are all written, confirmed RSQ_OK.
   Their failure is kept for rsq_producer_after_step, never returned. Used by
   rsq_publish_batch and, once the last confirmation is in, rsq_publish_poll. */
RSQ__INTERN void rsq__after_publish(rsq_producer *p) {
    rsq_client *c = p->c;
    rsq_result rc;
    if (p->wait_replicas > 0) {
        long long acked = 0;
        rc = rsq__wait_written(c, p->wait_replicas, p->wait_timeout_ms, &acked);
        if (rc == RSQ_OK && acked < p->wait_replicas)
            rc = rsq__set_err(c, RSQ_ERR_REPLICAS, "WAIT: %ld of %d replicas acknowledged within %d ms", (long)acked,
                              p->wait_replicas, p->wait_timeout_ms);
        if (rc != RSQ_OK)
            rsq__after_step_failed(p, rc, "WAIT");
    }
    if (p->safe_trim_every && p->since_trim >= (uint64_t)p->safe_trim_every) {
        p->since_trim = 0;
        rc = rsq__safe_trim_queue(p);
        if (rc != RSQ_OK)
            rsq__after_step_failed(p, rc, "safe trim");
    }
}

/* Sets results[from..n) (results may be NULL) to rc; returns rc. */
RSQ__INTERN rsq_result rsq__results_set(rsq_result *results, size_t from, size_t n, rsq_result rc) {
    size_t i;
    if (results)
        for (i = from; i < n; i++) results[i] = rc;
    return rc;
}

/* Validates a batch before anything is sent: every message, then what the server must
   support. results (may be NULL) receive RSQ_OK for all, or on a failure the failing
   message's error and RSQ_ERR_ARG for the others (a missing feature: its error for all). */
RSQ__INTERN rsq_result rsq__publish_check(rsq_producer *p, const rsq_outgoing *msgs, size_t n, rsq_result *results) {
    size_t i;
    for (i = 0; i < n; i++) {
        rsq_result rc = rsq__check_outgoing(p, &msgs[i], i);
        if (rc != RSQ_OK) {
            rsq__results_set(results, 0, n, RSQ_ERR_ARG);
            return rsq__results_set(results, i, i + 1, rc);
        }
    }
    return rsq__results_set(results, 0, n, rsq__xadd_features(p, msgs, n));
}

/* A publish call in progress: its messages, where their IDs and results go, and how
   far the confirmations have come. */
typedef struct rsq__pub {
    const rsq_outgoing *msgs;
    size_t n, done;          /* msgs[0..done) have their confirmation (or refusal)   */
    rsq_id *ids;
    rsq_result *results;
    rsq_result first;        /* the first refusal                                   */
    int retry_pass;          /* some were refused with a retry class (LOADING...)    */
    uint64_t seq0;           /* msgs[i] is number seq0 + i of the producer's sequence */
} rsq__pub;

/* The confirmation of msgs[i], written to shard `shard`: its result, the ID stored. */
/* The entry ID in an XADD's reply, or in the idempotent script's ({added, ID}: a
   message seen before counts in p->deduplicated). 0 when there is none. */
RSQ__INTERN int rsq__xadd_reply(rsq_producer *p, const rsq_reply *r, rsq_id *id) {
    if (r->type == RSQ_REPLY_INTEGER) { /* scheduled: no entry yet */
        id->ms = id->seq = 0;
        p->scheduled++;
        return 1;
    }
    if (r->type == RSQ_REPLY_ARRAY && r->len == 2 && r->element[0].type == RSQ_REPLY_INTEGER) {
        if (!rsq__reply_id(&r->element[1], id)) return 0;
        p->deduplicated += r->element[0].integer == 0;
        return 1;
    }
    return rsq__reply_id(r, id);
}

RSQ__INTERN rsq_result rsq__publish_confirm(rsq_producer *p, rsq__pub *b, size_t i, int shard) {
    rsq_client *c = p->c;
    const rsq_reply *r;
    rsq_id id;
    rsq_result rc = rsq_read_reply(c, &r, RSQ_TIMEOUT_DEFAULT);
    if (rc == RSQ_ERR_NOPERM) {
        size_t kl = rsq_queue_key(p->key, sizeof p->key, p->queue, shard, b->msgs[i].priority, RSQ_KEY_STREAM);
        return rsq__noperm_key(c, rc, "XADD", 4, p->key, kl);
    }
    if (rc != RSQ_OK)
        return rc;
    if (!rsq__xadd_reply(p, r, &id))
        return rsq__set_err(c, RSQ_ERR_REPLY, "XADD returned no entry ID");
    if (b->ids)
        b->ids[i] = id;
    return RSQ_OK;
}

/* One pass: the XADDs of msgs[done..n) in one write, then their confirmations in
   order. RSQ_OK once all are in; else the error that stopped it (a link error: the
   rest is unconfirmed). */
RSQ__INTERN rsq_result rsq__publish_pass(rsq_producer *p, rsq__pub *b) {
    rsq_client *c = p->c;
    uint32_t rr = p->rr; /* the shards this pass writes to, for error texts */
    rsq_result rc = RSQ_OK;
    size_t i;
    for (i = b->done; i < b->n && rc == RSQ_OK; i++) rc = rsq__append_xadd(p, &b->msgs[i], b->seq0 + i);
    if (rc == RSQ_OK)
        rc = rsq_flush(c, RSQ_TIMEOUT_DEFAULT);
    if (rc != RSQ_OK && rsq_pending_replies(c)) {
        /* part of the batch went out: its replies are lost with the link, resend */
        rsq__resync(c, rc);
        if (!rsq__link_error(rc))
            rc = rsq__set_err(c, RSQ_ERR_IO, "publish interrupted: %s", rsq_result_str(rc));
    }
    if (rc != RSQ_OK)
        return rc;
    for (i = b->done; i < b->n; i++) {
        rc = rsq__publish_confirm(p, b, i, rsq__msg_shard(p, &b->msgs[i], p->ik, rsq__idem_key(p, &b->msgs[i], b->seq0 + i, p->ik), &rr));
        if (rsq__link_error(rc))
            return rc;
        if (rc == RSQ_ERR_RETRY || rc == RSQ_ERR_MOVED)
            b->retry_pass = 1;
        rsq__results_set(b->results, i, i + 1, rc);
        if (rc != RSQ_OK && b->first == RSQ_OK)
            b->first = rc;
        b->done = i + 1;
    }
    return RSQ_OK;
}

/* Sends the batch; after a lost connection the unconfirmed tail is resent (at least
   once), within the client's retries, unless no_resend. RSQ_OK when every message has
   its result; else the call's result, the unconfirmed ones' results set to the error. */
RSQ__INTERN rsq_result rsq__publish_send(rsq_producer *p, rsq__pub *b) {
    rsq_client *c = p->c;
    int attempt;
    for (attempt = 0; b->done < b->n; attempt++) {
        rsq_result rc;
        c->connect_failed = 0;
        rc = rsq__publish_pass(p, b);
        if (b->done == b->n)
            break;
        /* not a lost link (out of memory, bad state), one not worth resending, or a
           connect that gave up (its retries were the call's: no second round of them) */
        if (!rsq__link_error(rc) || !p->resend || c->connect_failed || !rsq__retry_allowed(c, attempt) ||
            (rc == RSQ_ERR_CONNECT && !rsq__server_full(c, rc)) || rc == RSQ_ERR_RESOLVE) {
            rsq__results_set(b->results, b->done, b->n, rc);
            return b->first != RSQ_OK ? b->first : rc;
        }
        rsq__log(c, RSQ_LOG_WARN, RSQ_LOGI_RESENT, "connection lost with %lu publishes unconfirmed; resending",
                 (unsigned long)(b->n - b->done));
        p->resent += b->n - b->done;
        rsq__sleep(c, rsq__backoff_ms(c, attempt));
    }
    return RSQ_OK;
}

/* msgs[i] of a batch, refused with a retry class, published again alone. Refused with
   that class again: RSQ_ERR_RETRY. */
RSQ__INTERN rsq_result rsq__publish_again(rsq_producer *p, const rsq__pub *b, size_t i) {
    rsq__pub one;
    rsq_result res = RSQ_OK, rc;
    rsq_id id;
    memset(&one, 0, sizeof one);
    one.msgs = &b->msgs[i];
    one.n = 1;
    one.seq0 = b->seq0 + i;
    one.ids = &id;
    one.results = &res;
    rc = rsq__publish_send(p, &one);
    if (rc == RSQ_OK && one.retry_pass)
        rc = RSQ_ERR_RETRY;
    if (rc == RSQ_OK && b->ids)
        b->ids[i] = id;
    return rc;
}

/* The retry pass: messages refused with a retry class (LOADING, READONLY, MOVED...)
   were not applied; each is published again, with backoff, within the client's
   retries. Returns the batch's first failure after that (without results[], nothing
   is retried: RSQ_ERR_RETRY). */
RSQ__INTERN rsq_result rsq__publish_retry(rsq_producer *p, rsq__pub *b) {
    rsq_client *c = p->c;
    rsq_result first = RSQ_OK;
    size_t i;
    int a;
    if (!b->retry_pass)
        return b->first;
    if (!b->results)
        return RSQ_ERR_RETRY;
    for (i = 0; i < b->n; i++) {
        for (a = 0; (b->results[i] == RSQ_ERR_RETRY || b->results[i] == RSQ_ERR_MOVED) && rsq__retry_allowed(c, a); a++) {
            if (b->results[i] == RSQ_ERR_RETRY || a > 0)
                rsq__sleep(c, rsq__backoff_ms(c, a)); /* MOVED: at once */
            c->stats.server_retries++;
            b->results[i] = rsq__publish_again(p, b, i);
        }
        if (first == RSQ_OK)
            first = b->results[i];
    }
    return first;
}

/* The start of a publish call (batch or async): a new after-step result; msgs may be
   NULL only when n is 0. */
/* With idempotent set, the producer's number among the queue's producers (INCR of
   {Q}:idem:producers, once) and a random number: the prefix of its generated keys,
   unique on the server, and unlikely to meet another's even if that counter is lost. */
RSQ__INTERN rsq_result rsq__idem_producer(rsq_producer *p) {
    const rsq_reply *r;
    rsq_result rc;
    size_t n;
    if (!p->idempotent || p->idem_prefix[0]) return RSQ_OK;
    if (rsq_pending_replies(p->c))
        return rsq__set_err(p->c, RSQ_ERR_STATE, "pipelined replies are still unread (idempotent: the first publish asks "
                                                 "the server for the producer's number)");
    if (!(n = rsq__idem_mark(p->idem, sizeof p->idem, p->queue, strlen(p->queue), "producers", 9)))
        return rsq__queue_name_error(p->c, p->queue);
    rc = rsq__cmd(p->c, &r, RSQ__ONCE, "INCR", p->idem, (char *)0);
    if (rc != RSQ_OK) return rc;
    if (r->type != RSQ_REPLY_INTEGER || r->integer <= 0) return rsq__set_err(p->c, RSQ_ERR_REPLY, "INCR: no number");
    n = rsq__u64_to_dec(p->idem_prefix, (uint64_t)r->integer);
    rsq__fmt(p->idem_prefix + n, sizeof p->idem_prefix - n, ".%08lx", (unsigned long)(rsq__rand(p->c) & 0xffffffffUL));
    return RSQ_OK;
}

RSQ__INTERN rsq_result rsq__publish_start(rsq_producer *p, const rsq_outgoing *msgs, size_t n) {
    if (!p || !p->c)
        return RSQ_ERR_ARG;
    p->after_rc = RSQ_OK;
    p->after_err[0] = '\0';
    if (n && !msgs)
        return rsq__set_err(p->c, RSQ_ERR_ARG, "messages is NULL");
    return RSQ_OK;
}

RSQDEF rsq_result rsq_publish_batch(rsq_producer *p, const rsq_outgoing *msgs, size_t n, rsq_id *ids, rsq_result *results) {
    rsq__pub b;
    rsq_result rc = rsq__publish_start(p, msgs, n);
    size_t i;
    if (rc != RSQ_OK || n == 0)
        return rc;
    if (rsq_pending_replies(p->c))
        return rsq__set_err(p->c, RSQ_ERR_STATE, "pipelined replies are still unread");
    if ((rc = rsq__publish_check(p, msgs, n, results)) != RSQ_OK)
        return rc;
    if ((rc = rsq__idem_producer(p)) != RSQ_OK)
        return rc;
    memset(&b, 0, sizeof b);
    b.msgs = msgs;
    b.n = n;
    b.seq0 = p->idem_seq;
    p->idem_seq += n;
    b.ids = ids;
    b.results = results;
    if ((rc = rsq__publish_send(p, &b)) != RSQ_OK)
        return rc;
    rc = rsq__publish_retry(p, &b);
    for (i = 0; i < n; i++) p->published += !results || results[i] == RSQ_OK;
    if (p->safe_trim_every)
        p->since_trim += n;
    if (rc != RSQ_OK)
        return rc;
    rsq__after_publish(p); /* only once every message is written; never changes the result */
    return RSQ_OK;
}

RSQDEF rsq_result rsq_publish_async(rsq_producer *p, const rsq_outgoing *msgs, size_t n) {
    size_t i;
    rsq_result rc = rsq__publish_start(p, msgs, n);
    if (rc != RSQ_OK)
        return rc;
    if ((rc = rsq__publish_check(p, msgs, n, NULL)) != RSQ_OK)
        return rc;
    if ((rc = rsq__idem_producer(p)) != RSQ_OK)
        return rc;
    for (i = 0; i < n; i++) {
        if ((rc = rsq__append_xadd(p, &msgs[i], p->idem_seq++)) != RSQ_OK)
            return rc;
        p->inflight++;
        if (p->safe_trim_every)
            p->since_trim++;
    }
    rc = rsq_flush(p->c, RSQ_TIMEOUT_NONBLOCK);
    return rc == RSQ_AGAIN ? RSQ_OK : rc;
}

RSQDEF rsq_result rsq_publish_poll(rsq_producer *p, rsq_id *ids, rsq_result *results, size_t cap, size_t *got) {
    size_t n = 0;
    rsq_result rc = RSQ_OK;
    if (got)
        *got = 0;
    if (!p || !p->c)
        return RSQ_ERR_ARG;
    while (n < cap && p->inflight > 0) {
        const rsq_reply *r;
        rsq_id id;
        rc = rsq_read_reply(p->c, &r, RSQ_TIMEOUT_NONBLOCK);
        if (rc == RSQ_AGAIN) {
            rc = RSQ_OK;
            break;
        }
        if (rsq__link_error(rc) || rc == RSQ_ERR_STATE) {
            p->inflight = 0;
            p->async_first = RSQ_OK;
            break;
        }
        p->inflight--;
        id.ms = id.seq = 0;
        if (rc == RSQ_OK && !rsq__xadd_reply(p, r, &id))
            rc = rsq__set_err(p->c, RSQ_ERR_REPLY, "XADD returned no entry ID");
        if (rc == RSQ_OK)
            p->published++;
        else if (p->async_first == RSQ_OK)
            p->async_first = rc;
        if (ids)
            ids[n] = id;
        if (results)
            results[n] = rc;
        n++;
        rc = RSQ_OK;
        if (p->inflight == 0 && p->async_first == RSQ_OK)
            rsq__after_publish(p); /* as rsq_publish_batch: all written and confirmed */
        if (p->inflight == 0)
            p->async_first = RSQ_OK;
    }
    if (got)
        *got = n;
    return rc;
}

RSQDEF void rsq_producer_get_stats(const rsq_producer *p, rsq_producer_stats *out) {
    memset(out, 0, sizeof *out);
    if (!p)
        return;
    out->published = p->published;
    out->resent = p->resent;
    out->deduplicated = p->deduplicated;
    out->scheduled = p->scheduled;
    out->inflight = p->inflight;
    out->after_failures = p->after_failures;
}

RSQDEF rsq_result rsq_publish_msg(rsq_producer *p, const rsq_outgoing *m, rsq_id *id_out) {
    rsq_result res = RSQ_OK;
    rsq_id id;
    rsq_result rc = rsq_publish_batch(p, m, 1, &id, &res);
    if (rc == RSQ_OK && id_out) *id_out = id;
    return rc;
}

RSQDEF rsq_result rsq_publish(rsq_producer *p, const void *payload, size_t len, rsq_id *id_out) {
    rsq_outgoing m;
    memset(&m, 0, sizeof m);
    m.payload = payload;
    m.payload_len = len;
    return rsq_publish_msg(p, &m, id_out);
}

/* ------------------------------------------------------------------------------------ */
// >>consumer (implementation)
#define RSQ__KEY(cons, i) ((cons)->keys + (cons)->st[(i)].key_off)
/* The server's delivery count of m's entry: a retry's earlier deliveries are carried
   in its rsq-deliveries field, not in the count of its new entry. */
#define RSQ__SERVER_COUNT(m) ((m)->deliveries - (m)->carried)
#define RSQ__DLQ(cons, i) ((cons)->keys + (cons)->st[(i)].dlq_off)
#define RSQ__DELAYED(cons, i) ((cons)->keys + (cons)->st[(i)].delayed_off)

RSQDEF void rsq_consumer_config_init(rsq_consumer_config *cfg) {
    if (cfg) memset(cfg, 0, sizeof *cfg);
}

/* Grows the array whose pointer lives at `fieldp` (any object pointer type; read and
   written with memcpy, so no aliasing games) to at least `need` elements. */
RSQ__INTERN int rsq__ensure_cap(rsq_client *c, void *fieldp, size_t *cap, size_t need, size_t size) {
    void *cur, *p;
    if (need <= *cap) return 1;
    memcpy(&cur, fieldp, sizeof cur);
    p = rsq__grow(&c->alloc, cur, cap, need, size, 16);
    if (!p) return 0;
    memcpy(fieldp, &p, sizeof p);
    return 1;
}
#define RSQ__ENSURE(cons, field, capf, need) \
    rsq__ensure_cap((cons)->c, (void *)&(cons)->field, &(cons)->capf, (need), sizeof(*(cons)->field))

RSQ__INTERN rsq_result rsq__cons_argv(rsq_consumer *cons, size_t n) {
    size_t cap = cons->argv_cap, cap2 = cons->argv_cap;
    if (n <= cons->argv_cap) return RSQ_OK;
    if (!rsq__ensure_cap(cons->c, (void *)&cons->argv, &cap, n, sizeof(*cons->argv)) ||
        !rsq__ensure_cap(cons->c, (void *)&cons->lens, &cap2, n, sizeof(*cons->lens)))
        return rsq__set_err(cons->c, RSQ_ERR_NOMEM, "out of memory for command arguments");
    cons->argv_cap = cap < cap2 ? cap : cap2;
    return RSQ_OK;
}

RSQDEF void rsq_consumer_free(rsq_consumer *cons) {
    const rsq_allocator *a;
    if (!cons || !cons->c) return;
    if (cons->xr_inflight)
        rsq_disconnect(cons->c); /* the read's reply would be owed forever */
    a = &cons->c->alloc;
    rsq__free(a, cons->st);
    rsq__free(a, cons->keys);
    rsq__free(a, cons->msg);
    rsq__free(a, cons->fld);
    rsq__free(a, cons->foff);
    rsq__free(a, cons->arena);
    rsq__free(a, cons->requeue);
    rsq__free(a, cons->ack);
    rsq__free(a, cons->ack_stream);
    rsq__free(a, (void *)cons->argv);
    rsq__free(a, cons->lens);
    rsq__free(a, cons->idtxt);
    rsq__free(a, cons->acktxt);
    memset(cons, 0, sizeof *cons);
}

/* Checks a consumer config: RSQ_OK or RSQ_ERR_ARG with the reason in rsq_errstr(c). */
RSQ__INTERN rsq_result rsq__cons_check(rsq_client *c, const rsq_consumer_config *cfg) {
    rsq_result rc;
    if ((rc = rsq__check_key(c, "queue name", cfg->queue)) != RSQ_OK)
        return rc;
    if (!cfg->group || !cfg->group[0] || strlen(cfg->group) >= RSQ_NAME_MAX)
        return rsq__set_err(c, RSQ_ERR_ARG, "group name must be 1..%d bytes", RSQ_NAME_MAX - 1);
    if (cfg->name && (!cfg->name[0] || strlen(cfg->name) >= RSQ_NAME_MAX))
        return rsq__set_err(c, RSQ_ERR_ARG, "consumer name must be 1..%d bytes", RSQ_NAME_MAX - 1);
    if (cfg->count < 0 || cfg->block_ms < 0 || cfg->visibility_ms < 0 || cfg->reclaim_interval_ms < 0 ||
        cfg->max_deliveries < -1 || cfg->retry_delay_ms < 0 || cfg->ack_interval_ms < 0 || cfg->retry_max_ms < 0 ||
        cfg->retry_jitter_pct < -1 || cfg->retry_jitter_pct > 100 || cfg->due_check_ms < 0 || cfg->retry_factor < 0)
        return rsq__set_err(c, RSQ_ERR_ARG, "negative consumer setting (or retry_jitter_pct over 100)");
    if (cfg->priority_levels < 0 || cfg->priority_levels > RSQ_MAX_PRIORITIES)
        return rsq__set_err(c, RSQ_ERR_ARG, "priority_levels must be 1..%d", RSQ_MAX_PRIORITIES);
    if (cfg->shards < 0 || cfg->shards > RSQ_MAX_SHARDS)
        return rsq__set_err(c, RSQ_ERR_ARG, "shards must be 1..%d", RSQ_MAX_SHARDS);
    if (cfg->start && strcmp(cfg->start, "$") && strcmp(cfg->start, "0")) {
        rsq_id tmp;
        if (strlen(cfg->start) >= RSQ_ID_STRLEN || !rsq_id_parse(cfg->start, strlen(cfg->start), &tmp))
            return rsq__set_err(c, RSQ_ERR_ARG, "start must be $, 0 or an entry ID");
    }
    if (cfg->dead_letter && (rc = rsq__check_key(c, "dead-letter stream", cfg->dead_letter)) != RSQ_OK)
        return rc;
    if ((unsigned)cfg->reclaim > (unsigned)RSQ_RECLAIM_OFF)
        return rsq__set_err(c, RSQ_ERR_ARG, "unknown reclaim mode");
    return RSQ_OK;
}

/* The consumer's names and settings from a checked config, defaults applied; the
   name defaults to "<hostname>-<pid>" (without sockets: "rsq-" and random hex). */
RSQ__INTERN void rsq__cons_settings(rsq_consumer *cons, const rsq_consumer_config *cfg) {
    const char *start = cfg->start ? cfg->start : RSQ_START_ALL;
    memcpy(cons->group, cfg->group, strlen(cfg->group) + 1);
    if (cfg->name) {
        memcpy(cons->name, cfg->name, strlen(cfg->name) + 1);
    } else {
#ifndef RSQ_NO_SOCKETS
        char host[64];
        if (gethostname(host, sizeof host) != 0)
            memcpy(host, "host", 5);
        host[sizeof host - 1] = '\0';
        rsq__fmt(cons->name, sizeof cons->name, "%s-%ld", host, (long)getpid());
#else
        rsq__fmt(cons->name, sizeof cons->name, "rsq-%08lx", (unsigned long)(rsq__rand(cons->c) & 0xffffffffUL));
#endif
    }
    rsq__copy(cons->start, sizeof cons->start, start, strlen(start));
    cons->count = RSQ__DEF(cfg->count, 16);
    cons->block_ms = RSQ__DEF(cfg->block_ms, 5000);
    cons->visibility_ms = RSQ__DEF(cfg->visibility_ms, 30000);
    cons->reclaim_interval_ms = RSQ__MAX(RSQ__DEF(cfg->reclaim_interval_ms, cons->visibility_ms / 2), 100);
    cons->max_deliveries = RSQ__DEF(cfg->max_deliveries, 10);
    cons->retry_delay_ms = RSQ__DEF(cfg->retry_delay_ms, 1000);
    cons->retry_factor = cfg->retry_factor > 0 ? cfg->retry_factor : 2.0;
    cons->retry_max_ms = RSQ__DEF(cfg->retry_max_ms, 3600000);
    cons->retry_jitter_pct = cfg->retry_jitter_pct < 0 ? 0 : RSQ__DEF(cfg->retry_jitter_pct, 10);
    cons->due_check_ms = RSQ__DEF(cfg->due_check_ms, 1000);
    cons->ack_interval_ms = RSQ__MAX(RSQ__MIN(RSQ__DEF(cfg->ack_interval_ms, 1000), cons->visibility_ms / 4), 1);
    cons->levels = RSQ__DEF(cfg->priority_levels, 1);
    cons->shards = RSQ__DEF(cfg->shards, 1);
    cons->reclaim = (int)cfg->reclaim;
    cons->nstreams = (cons->levels + 1) * cons->shards; /* the retry streams first */
    cons->due_off = 0;
}

/* The key table: every stream's key and dead-letter key, NUL-separated in one block,
   streams ordered by level, highest first, then shard. Pass 0 measures (*bytes), pass
   1 (keys allocated) writes. 0 when a key cannot be derived from the queue name. key:
   2 * RSQ_KEY_MAX bytes of scratch (allocated: it would make a large stack frame).
   The group's retry streams come first (one per shard), as the highest level. */
RSQ__INTERN int rsq__cons_keys(rsq_consumer *cons, const rsq_consumer_config *cfg, int pass, size_t *bytes, char *key) {
    size_t off = 0;
    int k = 0, s, l;
    for (l = cons->levels; l >= 0; l--)
        for (s = 0; s < cons->shards; s++, k++) {
            size_t n = rsq_queue_key(key, RSQ_KEY_MAX, cfg->queue, s, l == cons->levels ? 0 : l, RSQ_KEY_STREAM), d;
            if (n && l == cons->levels) /* the group's retry stream of shard s: {TAG}:retry:<group> */
                n = rsq__slot_key(key, RSQ_KEY_MAX, (const char *)memcpy(key + RSQ_KEY_MAX, key, n + 1), n, "retry:", cfg->group,
                                  strlen(cfg->group));
            if (!n)
                return 0;
            if (pass == 1) {
                cons->st[k].key_off = off;
                cons->st[k].level = l == cons->levels ? 0 : l;
                cons->st[k].retry = l == cons->levels;
                cons->st[k].shard = s;
                memcpy(cons->keys + off, key, n + 1);
            }
            off += n + 1;
            if (cfg->dead_letter)
                d = strlen(cfg->dead_letter);
            else
                d = rsq_queue_key(key, RSQ_KEY_MAX, cfg->queue, s, 0, RSQ_KEY_DEAD_LETTER);
            if (pass == 1) {
                cons->st[k].dlq_off = off;
                memcpy(cons->keys + off, cfg->dead_letter ? cfg->dead_letter : key, d + 1);
            }
            off += d + 1;
            if (!(d = rsq_queue_key(key, RSQ_KEY_MAX, cfg->queue, s, 0, RSQ_KEY_DELAYED)))
                return 0;
            if (pass == 1) {
                cons->st[k].delayed_off = off;
                memcpy(cons->keys + off, key, d + 1);
            }
            off += d + 1;
        }
    *bytes = off;
    return 1;
}

RSQDEF rsq_result rsq_consumer_init(rsq_consumer *cons, rsq_client *c, const rsq_consumer_config *cfg) {
    rsq_result rc;
    size_t keybytes = 0;
    uint64_t need;
    char *key;
    if (!cons || !c || !c->initialized || !cfg)
        return c ? rsq__set_err(c, RSQ_ERR_ARG, "consumer, client or config is NULL") : RSQ_ERR_ARG;
    memset(cons, 0, sizeof *cons);
    if ((rc = rsq__cons_check(c, cfg)) != RSQ_OK)
        return rc;
    cons->c = c;
    rsq__cons_settings(cons, cfg);
    /* a read of `count` entries of one field each, over every stream, must fit the
       client's limits, or every read would fail */
    need = 1 + 3 * (uint64_t)cons->nstreams + 5 * (uint64_t)cons->count;
    if (need > (uint64_t)c->node.rd.lim.max_elements) {
        rsq__set_err(c, RSQ_ERR_ARG, "count %d: a read of that many entries needs at least %lu reply elements, over the "
                     "client's limits.max_elements (%lu): lower count or raise max_elements", cons->count,
                     (unsigned long)need, (unsigned long)c->node.rd.lim.max_elements);
        memset(cons, 0, sizeof *cons);
        return RSQ_ERR_ARG;
    }
    if (!(key = (char *)rsq__realloc(&c->alloc, NULL, 2 * RSQ_KEY_MAX))) {
        memset(cons, 0, sizeof *cons);
        return rsq__set_err(c, RSQ_ERR_NOMEM, "out of memory for consumer state");
    }
    if (!rsq__cons_keys(cons, cfg, 0, &keybytes, key)) {
        rsq__free(&c->alloc, key);
        rsq_consumer_free(cons);
        return rsq__queue_name_error(c, cfg->queue);
    }
    cons->keys = (char *)rsq__realloc(&c->alloc, NULL, keybytes);
    cons->st = (rsq__cstream *)rsq__realloc(&c->alloc, NULL, sizeof(rsq__cstream) * (size_t)cons->nstreams);
    if (!cons->keys || !cons->st) {
        rsq__free(&c->alloc, key);
        rsq_consumer_free(cons);
        return rsq__set_err(c, RSQ_ERR_NOMEM, "out of memory for consumer state");
    }
    memset(cons->st, 0, sizeof(rsq__cstream) * (size_t)cons->nstreams);
    rsq__cons_keys(cons, cfg, 1, &keybytes, key);
    rsq__free(&c->alloc, key);
    if ((rc = rsq__cons_argv(cons, 16 + 2 * (size_t)cons->nstreams)) != RSQ_OK) {
        rsq_consumer_free(cons);
        return rc;
    }
    return RSQ_OK;
}

RSQDEF void rsq_consumer_stop(rsq_consumer *cons) { if (cons) cons->stop = 1; }
RSQDEF const char *rsq_consumer_name(const rsq_consumer *cons) { return cons ? cons->name : ""; }
RSQDEF void rsq_consumer_get_stats(const rsq_consumer *cons, rsq_consumer_stats *out) { *out = cons->stats; }
RSQDEF void rsq_consumer_retry_delay(rsq_consumer *cons, int delay_ms) { if (cons) cons->retry_delay_next = delay_ms < 0 ? 0 : delay_ms; }
RSQDEF void rsq_consumer_set_error(rsq_consumer *cons, const char *error) {
    if (cons) rsq__copy(cons->error, sizeof cons->error, error ? error : "", error ? strlen(error) : 0);
}

/* Sleep in slices so that a stop request is noticed. */
RSQ__INTERN void rsq__cons_sleep(rsq_consumer *cons, int ms) {
    while (ms > 0 && !cons->stop) {
        int slice = ms < 100 ? ms : 100;
        rsq__sleep(cons->c, slice);
        ms -= slice;
    }
}

/* ------------------------------------------------------------------------------------ */
// >>acks: acknowledgements, queued and sent with the next read (one XACK per stream)

RSQ__INTERN rsq_result rsq__ack_push(rsq_consumer *cons, int sidx, rsq_id id, const char *txt, size_t tlen) {
    size_t cap2 = cons->ack_cap;
    char *t;
    if (!RSQ__ENSURE(cons, acktxt, acktxt_cap, (cons->nack + 1) * RSQ_ID_STRLEN))
        return rsq__set_err(cons->c, RSQ_ERR_NOMEM, "out of memory for acks");
    t = cons->acktxt + cons->nack * RSQ_ID_STRLEN;
    if (txt && tlen < RSQ_ID_STRLEN) { memcpy(t, txt, tlen); t[tlen] = '\0'; }
    else rsq_id_format(id, t);
    if (cons->nack == cons->ack_cap) {
        if (!rsq__ensure_cap(cons->c, (void *)&cons->ack, &cons->ack_cap, cons->nack + 1, sizeof(rsq_id)) ||
            !rsq__ensure_cap(cons->c, (void *)&cons->ack_stream, &cap2, cons->nack + 1, sizeof(int)))
            return rsq__set_err(cons->c, RSQ_ERR_NOMEM, "out of memory for acks");
        if (cap2 < cons->ack_cap) cons->ack_cap = cap2;
    }
    cons->ack[cons->nack] = id;
    cons->ack_stream[cons->nack] = sidx;
    cons->nack++;
    return RSQ_OK;
}

RSQ__INTERN void rsq__note_deleted(rsq_consumer *cons, int sidx, rsq_id id) {
    char idb[RSQ_ID_STRLEN];
    rsq_id_format(id, idb);
    cons->stats.deleted++;
    rsq__ack_push(cons, sidx, id, NULL, 0);
    rsq__log(cons->c, RSQ_LOG_WARN, RSQ_LOGI_DELETED_ENTRY, "%s %s: pending entry %s was deleted from the stream; acked away",
             RSQ__KEY(cons, sidx), cons->group, idb);
}

/* ----- acknowledgements: one XACK per stream, sent with the next read ----- */
RSQ__INTERN rsq_result rsq__append_acks(rsq_consumer *cons, int *ncmd) {
    size_t i, j;
    rsq_result rc = RSQ_OK;
    *ncmd = 0;
    cons->acks_sent = 0;
    if (cons->nack == 0) return RSQ_OK;
    if ((rc = rsq__cons_argv(cons, 3 + cons->nack)) != RSQ_OK) return rc;
    for (i = 0; i < cons->nack && rc == RSQ_OK; i++) {
        int s = cons->ack_stream[i];
        rsq__args a = rsq__args_on(cons->argv, cons->lens, (int)cons->argv_cap);
        if (s < 0)
            continue;
        rsq__args_list(&a, "XACK", RSQ__KEY(cons, s), cons->group, (char *)0);
        for (j = i; j < cons->nack; j++) {
            if (cons->ack_stream[j] != s)
                continue;
            rsq__arg(&a, cons->acktxt + j * RSQ_ID_STRLEN);
            cons->ack_stream[j] = -1 - s; /* emitted */
        }
        rc = rsq_append_argv(cons->c, a.argc, a.argv, a.lens);
        if (rc == RSQ_OK)
            (*ncmd)++;
        if (rc == RSQ_OK && cons->st[s].retry) { /* a retry is read by this group only: done with, it goes */
            a.argv[2] = a.argv[1]; /* XACK key group ids... -> XDEL key ids... */
            a.lens[2] = a.lens[1];
            a.argv[1] = "XDEL";
            a.lens[1] = 4;
            rc = rsq_append_argv(cons->c, a.argc - 1, a.argv + 1, a.lens + 1);
            if (rc == RSQ_OK)
                (*ncmd)++;
        }
    }
    for (j = 0; j < cons->nack; j++)
        if (cons->ack_stream[j] < 0) cons->ack_stream[j] = -1 - cons->ack_stream[j];
    if (rc == RSQ_OK) cons->acks_sent = cons->nack;
    return rc;
}

/* Reads the XACK replies still owed (cons->ack_replies), waiting or not. Once all are
   in, the acks that were sent leave the queue (acks queued meanwhile stay). After a
   lost link they all stay queued and go again (XACK is idempotent). */
RSQ__INTERN rsq_result rsq__read_acks(rsq_consumer *cons, int nonblock) {
    rsq_client *c = cons->c;
    rsq_result keep = RSQ_OK;
    char why[RSQ_ERR_MAX];
    while (cons->ack_replies > 0) {
        const rsq_reply *r;
        rsq_result rc = rsq_read_reply(c, &r, nonblock ? RSQ_TIMEOUT_NONBLOCK : RSQ_TIMEOUT_DEFAULT);
        if (rc == RSQ_AGAIN) return rc;
        if (rc != RSQ_OK && !rsq_result_is_server_error(rc)) {
            cons->ack_replies = 0;
            cons->acks_sent = 0;
            return rc;
        }
        if (rc != RSQ_OK && keep == RSQ_OK) { keep = rc; rsq__copy(why, sizeof why, c->err, strlen(c->err)); }
        cons->ack_replies--;
    }
    if (keep != RSQ_OK && keep != RSQ_ERR_NOGROUP) {
        /* not applied (a redirect, a retry class, or a final refusal such as NOPERM):
           they stay queued; the caller hears of it */
        cons->acks_sent = 0;
        return rsq__set_err(c, keep, "acknowledging (XACK) failed: %s", why);
    }
    /* acked, or the group is gone (nothing is pending in a recreated group) */
    if (cons->acks_sent) {
        size_t left = cons->nack - cons->acks_sent;
        memmove(cons->ack, cons->ack + cons->acks_sent, left * sizeof *cons->ack);
        memmove(cons->ack_stream, cons->ack_stream + cons->acks_sent, left * sizeof *cons->ack_stream);
        memmove(cons->acktxt, cons->acktxt + cons->acks_sent * RSQ_ID_STRLEN, left * RSQ_ID_STRLEN);
        cons->nack = left;
        cons->acks_sent = 0;
    }
    return keep;
}

/* Reads the replies owed for count resets (rsq__batch_uncount) before anything else
   is sent or read. A refusal is ignored: the counts then stay one higher. */
RSQ__INTERN rsq_result rsq__cons_sync(rsq_consumer *cons) {
    rsq_client *c = cons->c;
    if (cons->uncount_epoch != c->epoch || !rsq_pending_replies(c)) cons->uncount_replies = 0; /* lost with the link */
    while (cons->uncount_replies > 0) {
        const rsq_reply *r;
        rsq_result rc = rsq_read_reply(c, &r, RSQ_TIMEOUT_DEFAULT);
        if (rc != RSQ_OK && !rsq_result_is_server_error(rc)) { cons->uncount_replies = 0; return rc; }
        cons->uncount_replies--;
    }
    return RSQ_OK;
}

RSQDEF rsq_result rsq_consumer_flush(rsq_consumer *cons) {
    int ncmd = 0;
    rsq_result rc;
    if (!cons || !cons->c) return RSQ_ERR_ARG;
    if (cons->nack == 0) {
        cons->c->err[0] = '\0';
        return RSQ_OK;
    }
    if ((rc = rsq__cons_sync(cons)) != RSQ_OK) return rc;
    if (rsq_pending_replies(cons->c)) return rsq__set_err(cons->c, RSQ_ERR_STATE, "pipelined replies are still unread");
    rc = rsq__append_acks(cons, &ncmd);
    if (rc != RSQ_OK) return rsq__resync(cons->c, rc); /* the acks stay queued */
    cons->ack_replies = ncmd;
    return rsq__read_acks(cons, 0);
}

RSQDEF rsq_result rsq_ack(rsq_consumer *cons, const rsq_message *m) {
    rsq_result rc;
    if (!cons || !cons->c || !m || m->sidx < 0 || m->sidx >= cons->nstreams) return cons && cons->c ? rsq__set_err(cons->c, RSQ_ERR_ARG, "not a message of this consumer") : RSQ_ERR_ARG;
    if (cons->nack == 0) cons->ack_ms = rsq__now(cons->c); /* the oldest queued ack */
    rc = rsq__ack_push(cons, m->sidx, m->id, m->id_str, strlen(m->id_str));
    if (rc != RSQ_OK) return rc;
    cons->stats.acked++;
    if (cons->nack >= (size_t)cons->count * 4 + 64) return rsq_consumer_flush(cons);
    return RSQ_OK;
}

/* ------------------------------------------------------------------------------------ */
// >>batch: entries copied out of replies into one reusable arena, handed out in order

/* ----- the batch: entries copied out of replies into one reusable arena ----- */
RSQ__INTERN void rsq__batch_reset(rsq_consumer *cons) {
    cons->nmsg = cons->bpos = cons->nfld = cons->alen = cons->nrequeue = 0;
}

RSQ__INTERN int rsq__arena_put(rsq_consumer *cons, const char *s, size_t n, size_t *off) {
    if (!RSQ__ENSURE(cons, arena, acap, cons->alen + n + 1)) return 0;
    if (n) memcpy(cons->arena + cons->alen, s, n);
    cons->arena[cons->alen + n] = '\0';
    *off = cons->alen;
    cons->alen += n + 1;
    return 1;
}

/* Copies one [id, [field, value, ...]] entry into the batch. Deleted entries (nil
   fields) are acked away instead. Strings are kept as arena offsets until
   rsq__batch_fix, since the arena may move while it grows. */
/* A retry carries the deliveries before it (rsq-deliveries: max_deliveries counts
   them) and its message's priority level (rsq-priority). */
RSQ__INTERN void rsq__retry_field(const rsq_consumer *cons, rsq_message *m, const rsq_reply *k, const rsq_reply *v) {
    long long n;
    if (k->len == 14 && !memcmp(k->str, "rsq-deliveries", 14) && rsq__parse_ll(v->str, v->len, &n) && n > 0 && n < 1000000000)
        m->deliveries += n, m->carried = n;
    else if (k->len == 12 && !memcmp(k->str, "rsq-priority", 12) && rsq__parse_ll(v->str, v->len, &n) && n >= 0 &&
             n < cons->levels)
        m->priority = (int)n;
}

RSQ__INTERN rsq_result rsq__batch_add(rsq_consumer *cons, int sidx, const rsq_reply *e, long long deliveries) {
    rsq_message *m;
    const rsq_reply *f;
    rsq_id id;
    size_t i, nf;
    if (e->type != RSQ_REPLY_ARRAY || e->len < 2 || !rsq__reply_id(&e->element[0], &id))
        return rsq__set_err(cons->c, RSQ_ERR_REPLY, "malformed stream entry");
    f = &e->element[1];
    if (f->type == RSQ_REPLY_NIL) { rsq__note_deleted(cons, sidx, id); return RSQ_OK; }
    if ((f->type != RSQ_REPLY_ARRAY && f->type != RSQ_REPLY_MAP) || (f->len & 1))
        return rsq__set_err(cons->c, RSQ_ERR_REPLY, "malformed entry fields");
    nf = f->len / 2;
    if (!RSQ__ENSURE(cons, msg, msg_cap, cons->nmsg + 1) || !RSQ__ENSURE(cons, fld, fld_cap, cons->nfld + nf) ||
        !RSQ__ENSURE(cons, foff, foff_cap, 2 * (cons->nfld + nf)))
        return rsq__set_err(cons->c, RSQ_ERR_NOMEM, "out of memory for the batch");
    m = &cons->msg[cons->nmsg];
    memset(m, 0, sizeof *m);
    m->id = id;
    if (e->element[0].len < RSQ_ID_STRLEN) memcpy(m->id_str, e->element[0].str, e->element[0].len + 1);
    else rsq_id_format(id, m->id_str);
    m->sidx = sidx;
    m->stream = RSQ__KEY(cons, sidx);
    m->stream_len = strlen(m->stream);
    m->priority = cons->st[sidx].level;
    m->shard = cons->st[sidx].shard;
    m->deliveries = deliveries;
    m->f0 = cons->nfld;
    m->field_count = nf;
    m->payload_field = (size_t)-1;
    for (i = 0; i < nf; i++) {
        const rsq_reply *k = &f->element[2 * i], *v = &f->element[2 * i + 1];
        size_t fi = cons->nfld + i;
        if (!k->str || !v->str) return rsq__set_err(cons->c, RSQ_ERR_REPLY, "entry field is not a string");
        if (!rsq__arena_put(cons, k->str, k->len, &cons->foff[2 * fi]) ||
            !rsq__arena_put(cons, v->str, v->len, &cons->foff[2 * fi + 1]))
            return rsq__set_err(cons->c, RSQ_ERR_NOMEM, "out of memory for the batch");
        cons->fld[fi].name = cons->fld[fi].value = NULL;
        cons->fld[fi].name_len = k->len;
        cons->fld[fi].value_len = v->len;
        if (m->payload_field == (size_t)-1 && k->len == 7 && !memcmp(k->str, "payload", 7)) m->payload_field = fi;
        if (cons->st[sidx].retry) rsq__retry_field(cons, m, k, v);
    }
    cons->nfld += nf;
    cons->nmsg++;
    return RSQ_OK;
}

/* Turns the offsets of every message into pointers (the arena may have moved). */
RSQ__INTERN void rsq__batch_fix(rsq_consumer *cons) {
    size_t i, j;
    for (i = 0; i < cons->nmsg; i++) {
        rsq_message *m = &cons->msg[i];
        m->fields = m->field_count ? &cons->fld[m->f0] : NULL;
        for (j = m->f0; j < m->f0 + m->field_count; j++) {
            cons->fld[j].name = cons->arena + cons->foff[2 * j];
            cons->fld[j].value = cons->arena + cons->foff[2 * j + 1];
        }
        if (m->payload_field != (size_t)-1) {
            m->payload = cons->fld[m->payload_field].value;
            m->payload_len = cons->fld[m->payload_field].value_len;
        } else {
            m->payload = NULL;
            m->payload_len = 0;
        }
    }
}

/* The last read's entries that no handler saw (its reply lost, or its batch dropped
   before they were handed out) were counted by the server all the same: remember
   where they start, so that resume sets their count back (rsq__resume_one). */
RSQ__INTERN void rsq__mark_unseen(rsq_consumer *cons) {
    int i;
    if (!cons->xr_open)
        return;
    cons->xr_open = 0;
    for (i = cons->xr_first; i < cons->xr_first + cons->xr_n && i < cons->nstreams; i++)
        cons->st[i].unseen = 1;
}

/* Drops a batch that an error interrupted (a lost link, NOGROUP on one stream, a
   limit, a malformed entry): none of it is handed out. What it held is in this
   consumer's pending list, so every stream is re-read from its start (resume). */
RSQ__INTERN void rsq__batch_drop(rsq_consumer *cons) {
    int i;
    rsq__mark_unseen(cons);
    rsq__batch_reset(cons);
    for (i = 0; i < cons->nstreams; i++) {
        cons->st[i].resuming = 1;
        cons->st[i].cursor.ms = cons->st[i].cursor.seq = 0;
    }
}

/* ----- reading ----- */
RSQ__INTERN int rsq__find_stream(const rsq_consumer *cons, const rsq_reply *k) {
    int i;
    if (!k || !k->str) return -1;
    for (i = 0; i < cons->nstreams; i++) {
        const char *key = RSQ__KEY(cons, i);
        if (strlen(key) == k->len && !memcmp(key, k->str, k->len)) return i;
    }
    return -1;
}

/* The entries of one stream in an XREADGROUP reply, as an array (RESP2 and RESP3).
   *sidx: the stream's index. 0 when the element is malformed. */
RSQ__INTERN int rsq__xr_stream(const rsq_consumer *cons, const rsq_reply *list, size_t k, int *sidx, const rsq_reply **ents) {
    const rsq_reply *key;
    if (list->type == RSQ_REPLY_MAP) {
        key = &list->element[k];
        *ents = &list->element[k + 1];
    } else {
        if (list->element[k].type != RSQ_REPLY_ARRAY || list->element[k].len != 2) return 0;
        key = &list->element[k].element[0];
        *ents = &list->element[k].element[1];
    }
    *sidx = rsq__find_stream(cons, key);
    return *sidx >= 0 && ((*ents)->type == RSQ_REPLY_ARRAY || (*ents)->type == RSQ_REPLY_NIL);
}

/* A fresh batch: the server counted a delivery for every entry XREADGROUP returned,
   but only the first reaches a handler now. The others' counts go back to 0 at once
   (XCLAIM ... RETRYCOUNT 0 JUSTID per stream, written now, its reply read later), so
   that a crash before they are handed out counts nothing for them. From there on
   nack, release and dead letters keep the server's count equal to the handlers'
   deliveries (RETRYCOUNT). A crash while such an entry is in a handler leaves that one
   delivery uncounted (an extra delivery of a poison message rather than an innocent
   message dead-lettered). */
RSQ__INTERN rsq_result rsq__batch_uncount(rsq_consumer *cons, int nonblock) {
    rsq_client *c = cons->c;
    size_t i, j;
    rsq_result rc = RSQ_OK;
    if (cons->nmsg < 2) return RSQ_OK;
    if ((rc = rsq__cons_argv(cons, 9 + cons->nmsg)) != RSQ_OK) return rc;
    for (i = 1; i < cons->nmsg && rc == RSQ_OK; i = j) {
        int s = cons->msg[i].sidx;
        rsq__args a = rsq__args_on(cons->argv, cons->lens, (int)cons->argv_cap);
        rsq__args_list(&a, "XCLAIM", RSQ__KEY(cons, s), cons->group, cons->name, "0", (char *)0);
        for (j = i; j < cons->nmsg && cons->msg[j].sidx == s; j++) rsq__arg(&a, cons->msg[j].id_str);
        rsq__args_list(&a, "RETRYCOUNT", "0", "JUSTID", (char *)0);
        if ((rc = rsq_append_argv(c, a.argc, a.argv, a.lens)) == RSQ_OK)
            cons->uncount_replies++;
    }
    cons->uncount_epoch = c->epoch;
    if (rc != RSQ_OK) return rsq__resync(c, rc);
    rc = rsq_flush(c, nonblock ? RSQ_TIMEOUT_NONBLOCK : RSQ_TIMEOUT_DEFAULT);
    return rc == RSQ_AGAIN ? RSQ_OK : rc;
}

/* The next message of the batch (requeued ones first), if any: RSQ_OK and *out set. */
RSQ__INTERN rsq_result rsq__hand_out(rsq_consumer *cons, const rsq_message **out) {
    while (cons->nrequeue) {
        rsq_message *m = &cons->msg[cons->requeue[--cons->nrequeue]];
        if (m->skip) continue;
        *out = m;
        cons->stats.delivered++;
        return RSQ_OK;
    }
    while (cons->bpos < cons->nmsg) {
        const rsq_message *m = &cons->msg[cons->bpos++];
        if (cons->xr_open) {
            rsq__cstream *st = &cons->st[m->sidx];
            if (rsq_id_cmp(m->id, st->xr_from) > 0)
                st->xr_from = m->id; /* a handler sees it */
            if (cons->bpos == cons->nmsg)
                cons->xr_open = 0;
        }
        if (m->skip) continue;
        *out = m;
        cons->stats.delivered++;
        return RSQ_OK;
    }
    cons->xr_open = 0;
    return RSQ_EMPTY;
}

/* XCLAIM ... JUSTID of the batch's messages not yet handed out, pipelined, one
   command per message: `release` hands them back (IDLE visibility_ms, delivery count
   back to what handlers saw), else their lease is renewed (idle time reset). */
RSQ__INTERN rsq_result rsq__claim_rest(rsq_consumer *cons, int release) {
    rsq_client *c = cons->c;
    char idle[24], retry[24];
    size_t i, sent = 0;
    rsq_result rc = RSQ_OK, one;
    rsq__u64_to_dec(idle, (uint64_t)cons->visibility_ms);
    for (i = cons->bpos; i < cons->nmsg && rc == RSQ_OK; i++) {
        const rsq_message *m = &cons->msg[i];
        const char *argv[12];
        size_t lens[12];
        rsq__args a = rsq__args_on(argv, lens, 12);
        if (m->skip)
            continue;
        rsq__args_list(&a, "XCLAIM", RSQ__KEY(cons, m->sidx), cons->group, cons->name, "0", m->id_str, (char *)0);
        if (release) {
            rsq__u64_to_dec(retry, (uint64_t)(RSQ__SERVER_COUNT(m) > 1 ? RSQ__SERVER_COUNT(m) - 1 : 0));
            rsq__args_list(&a, "IDLE", idle, "RETRYCOUNT", retry, (char *)0);
        }
        rsq__arg(&a, "JUSTID");
        if ((rc = rsq_append_argv(c, a.argc, argv, lens)) == RSQ_OK)
            sent++;
    }
    for (i = 0; i < sent; i++) {
        const rsq_reply *r;
        one = rsq_read_reply(c, &r, RSQ_TIMEOUT_DEFAULT);
        if (one != RSQ_OK && rc == RSQ_OK) rc = one;
        if (one != RSQ_OK && !rsq_result_is_server_error(one)) return one;
    }
    return rc;
}

RSQDEF rsq_result rsq_consumer_release(rsq_consumer *cons) {
    rsq_result rc;
    if (!cons || !cons->c) return RSQ_ERR_ARG;
    if ((rc = rsq__cons_sync(cons)) != RSQ_OK) return rc;
    if (rsq_pending_replies(cons->c)) return rsq__set_err(cons->c, RSQ_ERR_STATE, "pipelined replies are still unread");
    rc = rsq__claim_rest(cons, 1);
    cons->bpos = cons->nmsg;
    cons->nrequeue = 0;
    if (rc == RSQ_OK) rc = rsq_consumer_flush(cons);
    return rc;
}

/* ------------------------------------------------------------------------------------ */
// >>deadletters: rsq_dead_letter, rsq_dead_letter_replay

/* ----- nack, lease, dead letters ----- */
RSQ__INTERN rsq_result rsq__check_msg(rsq_consumer *cons, const rsq_message *m) {
    if (!cons || !cons->c) return RSQ_ERR_ARG;
    if (!m || m->sidx < 0 || m->sidx >= cons->nstreams) return rsq__set_err(cons->c, RSQ_ERR_ARG, "not a message of this consumer");
    return rsq__cons_sync(cons);
}

/* The dlq-id of a dead letter: the entry's ID, or for a retry the entry it retries (its
   rsq-origin: an entry of the stream named as dlq-stream). */
RSQ__INTERN void rsq__dlq_id(const rsq_consumer *cons, const rsq_message *m, rsq__args *a) {
    size_t i;
    if (cons->st[m->sidx].retry)
        for (i = 0; i < m->field_count; i++)
            if (m->fields[i].name_len == 10 && !memcmp(m->fields[i].name, "rsq-origin", 10)) {
                rsq__argn(a, m->fields[i].value, m->fields[i].value_len);
                return;
            }
    rsq__arg(a, m->id_str);
}

/* A dead letter from a retry stream: the entry there is this group's only, so it is
   deleted with the ack, in the same transaction. */
RSQ__INTERN rsq_result rsq__dead_letter_retry(rsq_consumer *cons, const rsq__args *a, const char *const *ack) {
    const char *del[3];
    const rsq_reply *r;
    rsq__txcmd tx[3];
    del[0] = "XDEL";
    del[1] = ack[1];
    del[2] = ack[3];
    tx[0].argc = a->argc;
    tx[0].argv = a->argv;
    tx[0].lens = a->lens;
    tx[0].what = "XADD to the dead-letter stream";
    tx[1].argc = 4;
    tx[1].argv = ack;
    tx[1].lens = NULL;
    tx[1].what = "XACK of the entry";
    tx[2].argc = 3;
    tx[2].argv = del;
    tx[2].lens = NULL;
    tx[2].what = "XDEL of the retry";
    return rsq__transaction(cons->c, "dead letter", 3, tx, &r);
}

RSQDEF rsq_result rsq_dead_letter(rsq_consumer *cons, const rsq_message *m, const char *error) {
    const char *ack[4];
    char dl[24];
    size_t i;
    rsq__args a;
    rsq_result rc = rsq__check_msg(cons, m);
    if (rc != RSQ_OK)
        return rc;
    if ((rc = rsq__cons_argv(cons, 13 + 2 * m->field_count)) != RSQ_OK)
        return rc;
    a = rsq__args_on(cons->argv, cons->lens, (int)cons->argv_cap);
    rsq__args_list(&a, "XADD", RSQ__DLQ(cons, m->sidx), "*", (char *)0);
    for (i = 0; i < m->field_count; i++) {
        if (cons->st[m->sidx].retry && m->fields[i].name_len >= 4 && !memcmp(m->fields[i].name, "rsq-", 4))
            continue; /* a retry's own fields: dlq-id and dlq-deliveries say it */
        rsq__argn(&a, m->fields[i].name, m->fields[i].name_len);
        rsq__argn(&a, m->fields[i].value, m->fields[i].value_len);
    }
    rsq__u64_to_dec(dl, (uint64_t)(m->deliveries > 0 ? m->deliveries : 0));
    if (!error)
        error = cons->error[0] ? cons->error : "dead-lettered";
    rsq__arg(&a, "dlq-stream"); /* a retry's: its level's stream (a replay goes there) */
    if (cons->st[m->sidx].retry)
        rsq__arg(&a, RSQ__KEY(cons, cons->shards * (cons->levels - m->priority) + m->shard));
    else
        rsq__argn(&a, m->stream, m->stream_len);
    rsq__args_list(&a, "dlq-group", cons->group, "dlq-id", (char *)0);
    rsq__dlq_id(cons, m, &a);
    rsq__args_list(&a, "dlq-deliveries", dl, "dlq-error", error, (char *)0);
    ack[0] = "XACK";
    ack[1] = m->stream;
    ack[2] = cons->group;
    ack[3] = m->id_str;
    if (!cons->st[m->sidx].retry)
        rc = rsq__tx_pair(cons->c, "dead letter", &a, "XADD to the dead-letter stream", 4, ack, "XACK of the entry");
    else
        rc = rsq__dead_letter_retry(cons, &a, ack);
    if (rc != RSQ_OK)
        return rc;
    cons->stats.dead_lettered++;
    rsq__log(cons->c, RSQ_LOG_WARN, RSQ_LOGI_DEAD_LETTER, "%s %s: %s dead-lettered after %ld deliveries: %s",
             m->stream, cons->group, m->id_str, (long)m->deliveries, error);
    return RSQ_OK;
}

/* A pending entry that cannot be handed out is moved to the dead letters by ID,
   without its fields (they could not be read): the entry stays in the stream. */
RSQ__INTERN rsq_result rsq__dead_letter_id(rsq_consumer *cons, int sidx, rsq_id id, long long deliveries, const char *why) {
    rsq_message m;
    memset(&m, 0, sizeof m);
    m.id = id;
    rsq_id_format(id, m.id_str);
    m.sidx = sidx;
    m.stream = RSQ__KEY(cons, sidx);
    m.stream_len = strlen(m.stream);
    m.deliveries = deliveries;
    m.payload_field = (size_t)-1;
    return rsq_dead_letter(cons, &m, why);
}

/* Whether `origin` (a dead letter's dlq-stream field: data, never trusted) is one of
   the streams whose dead letters go to `dlq`: for a dead-letter key B:dlq where B is
   {X} (rsq_queue_key's wrapping), X itself, {X} (a shard's base) or {X}:p<k>; where
   B carries its own tag, B or B:p<k>. */
RSQ__INTERN int rsq__replay_target_ok(const char *dlq, const char *origin, size_t olen) {
    size_t dn = strlen(dlq), bn, o, cl;
    long long lvl;
    if (dn < 5 || memcmp(dlq + dn - 4, ":dlq", 4)) return 0;
    bn = dn - 4;
    if (olen == bn && !memcmp(origin, dlq, bn)) return 1;
    if (olen > bn + 2 && !memcmp(origin, dlq, bn) && origin[bn] == ':' && origin[bn + 1] == 'p' &&
        rsq__parse_ll(origin + bn + 2, olen - bn - 2, &lvl) && lvl > 0 && lvl < RSQ_MAX_PRIORITIES && origin[bn + 2] != '0')
        return 1;
    return dlq[0] == '{' && rsq__hash_tag(dlq, bn, &o, &cl) && o == 0 && cl == bn - 1 && olen == bn - 2 &&
           !memcmp(origin, dlq + 1, bn - 2);
}

/* Scratch of a replay: the kept fields copied out of the reply (the next command
   reuses its buffer), and the XADD's arguments. */
typedef struct rsq__replay {
    char *copy;
    size_t cap;
    const char **argv;
    size_t *lens;
    size_t acap;
} rsq__replay;

/* The oldest dead letter of dlq, checked: RSQ_OK with *fields (its field list, valid
   until the next command), its ID in id and its dlq-stream in origin; RSQ_EMPTY when
   there is none; else the error (the dead letter stays in place). */
RSQ__INTERN rsq_result rsq__replay_next(rsq_client *c, const char *dlq, const rsq_reply **fields, char *id, char *origin) {
    const rsq_reply *r, *e, *o;
    rsq_result rc = rsq__cmd(c, &r, RSQ__IDEMPOTENT, "XRANGE", dlq, "-", "+", "COUNT", "1", (char *)0);
    if (rc != RSQ_OK)
        return rc;
    if (r->type != RSQ_REPLY_ARRAY || r->len == 0)
        return RSQ_EMPTY;
    e = &r->element[0];
    if (e->type != RSQ_REPLY_ARRAY || e->len < 2 || e->element[1].type != RSQ_REPLY_ARRAY || !e->element[0].str)
        return rsq__set_err(c, RSQ_ERR_REPLY, "malformed dead letter");
    *fields = &e->element[1];
    rsq__copy(id, RSQ_ID_STRLEN, e->element[0].str, e->element[0].len);
    o = rsq_reply_get(*fields, "dlq-stream");
    if (!o || !o->str || o->len == 0 || o->len >= RSQ_KEY_MAX)
        return rsq__set_err(c, RSQ_ERR_REPLY, "dead letter %s has no dlq-stream field; left in place", id);
    if (!rsq__replay_target_ok(dlq, o->str, o->len))
        return rsq__set_err(c, RSQ_ERR_REPLY, "dead letter %s names a stream that is not one of this queue's; left in "
                            "place (a dead letter's fields are data, never a destination)", id);
    rsq__copy(origin, RSQ_KEY_MAX, o->str, o->len);
    return RSQ_OK;
}

/* Room in the scratch for the fields f (any number of them). */
RSQ__INTERN rsq_result rsq__replay_room(rsq_client *c, rsq__replay *sc, const rsq_reply *f) {
    size_t i, need = 0, want = 3 + f->len;
    for (i = 0; i + 1 < f->len; i += 2) need += f->element[i].len + f->element[i + 1].len + 2;
    if (need > sc->cap) {
        void *p = rsq__realloc(&c->alloc, sc->copy, need);
        if (!p)
            return rsq__set_err(c, RSQ_ERR_NOMEM, "out of memory");
        sc->copy = (char *)p;
        sc->cap = need;
    }
    if (want > sc->acap) {
        void *pa = rsq__realloc(&c->alloc, (void *)sc->argv, want * sizeof *sc->argv), *pl;
        if (pa)
            sc->argv = (const char **)pa;
        pl = pa ? rsq__realloc(&c->alloc, sc->lens, want * sizeof *sc->lens) : NULL;
        if (!pl)
            return rsq__set_err(c, RSQ_ERR_NOMEM, "out of memory");
        sc->lens = (size_t *)pl;
        sc->acap = want;
    }
    return RSQ_OK;
}

/* Moves one dead letter (fields f, ID id) back to origin: XADD of its fields without
   the dlq-* ones, and XDEL, in one MULTI/EXEC. */
RSQ__INTERN rsq_result rsq__replay_one(rsq_client *c, const char *dlq, rsq__replay *sc, const rsq_reply *f, const char *id,
                                       const char *origin) {
    const char *del[3];
    size_t i, w = 0;
    rsq__args a;
    rsq_result rc = rsq__replay_room(c, sc, f);
    if (rc != RSQ_OK)
        return rc;
    a = rsq__args_on(sc->argv, sc->lens, (int)sc->acap);
    rsq__args_list(&a, "XADD", origin, "*", (char *)0);
    for (i = 0; i + 1 < f->len; i += 2) {
        const rsq_reply *k = &f->element[i], *v = &f->element[i + 1];
        if (k->len >= 4 && !memcmp(k->str, "dlq-", 4))
            continue;
        memcpy(sc->copy + w, k->str, k->len);
        rsq__argn(&a, sc->copy + w, k->len);
        w += k->len + 1;
        memcpy(sc->copy + w, v->str, v->len);
        rsq__argn(&a, sc->copy + w, v->len);
        w += v->len + 1;
    }
    if (a.argc == 3)
        return rsq__set_err(c, RSQ_ERR_REPLY, "dead letter %s has no fields to replay (set aside by ID?); left in place", id);
    del[0] = "XDEL";
    del[1] = dlq;
    del[2] = id;
    return rsq__tx_pair(c, "replay", &a, "XADD to the queue", 3, del, "XDEL of the dead letter");
}

RSQDEF rsq_result rsq_dead_letter_replay(rsq_client *c, const char *dlq, size_t max, size_t *replayed) {
    rsq__replay sc;
    char *origin, id[RSQ_ID_STRLEN]; /* origin: RSQ_KEY_MAX bytes, allocated (stack frames stay small) */
    size_t done = 0;
    rsq_result rc = RSQ_OK;
    if (replayed)
        *replayed = 0;
    if (!c)
        return RSQ_ERR_ARG;
    if ((rc = rsq__check_key(c, "dead-letter stream", dlq)) != RSQ_OK)
        return rc;
    memset(&sc, 0, sizeof sc);
    if (!(origin = (char *)rsq__realloc(&c->alloc, NULL, RSQ_KEY_MAX)))
        return rsq__set_err(c, RSQ_ERR_NOMEM, "out of memory");
    while (max == 0 || done < max) {
        const rsq_reply *f = NULL;
        rc = rsq__replay_next(c, dlq, &f, id, origin);
        if (rc == RSQ_EMPTY) { /* none left */
            rc = RSQ_OK;
            break;
        }
        if (rc != RSQ_OK || (rc = rsq__replay_one(c, dlq, &sc, f, id, origin)) != RSQ_OK)
            break;
        done++;
    }
    rsq__free(&c->alloc, origin);
    rsq__free(&c->alloc, sc.copy);
    rsq__free(&c->alloc, (void *)sc.argv);
    rsq__free(&c->alloc, sc.lens);
    if (replayed)
        *replayed = done;
    return rc;
}

/* ------------------------------------------------------------------------------------ */
// >>nack: rsq_nack (now or later), rsq_extend (the lease)

/* The pseudo-consumer that holds entries nacked with a delay: not this consumer, so
   its resume does not hand them out early; any consumer's reclaim takes them when due
   (with reclaim RSQ_RECLAIM_OFF, from this pseudo-consumer only). */
#define RSQ__DELAYED_CONSUMER "rsq:delayed"

/* A nack for redelivery now: keeps the entry (XCLAIM to this consumer: lease renewed)
   with the handlers' count so far; the delivery to come counts once handed out (never
   before: a crash first must not count it). A message of the batch is requeued. */
RSQ__INTERN rsq_result rsq__nack_now(rsq_consumer *cons, const rsq_message *m) {
    const rsq_reply *r;
    char cnt[24];
    rsq_result rc;
    rsq__u64_to_dec(cnt, (uint64_t)(RSQ__SERVER_COUNT(m) > 0 ? RSQ__SERVER_COUNT(m) : 0));
    rc = rsq__cmd(cons->c, &r, RSQ__ONCE, "XCLAIM", RSQ__KEY(cons, m->sidx), cons->group, cons->name, "0", m->id_str,
                  "RETRYCOUNT", cnt, "JUSTID", (char *)0);
    if (rc != RSQ_OK)
        return rc;
    cons->stats.nacked++;
    if (r->type == RSQ_REPLY_ARRAY && r->len == 1 && r->element[0].type != RSQ_REPLY_NIL && m >= cons->msg &&
        m < cons->msg + cons->nmsg) {
        rsq_message *mm = &cons->msg[m - cons->msg];
        if (!RSQ__ENSURE(cons, requeue, requeue_cap, cons->nrequeue + 1))
            return rsq__set_err(cons->c, RSQ_ERR_NOMEM, "out of memory for requeue");
        mm->deliveries++;
        cons->requeue[cons->nrequeue++] = (size_t)(m - cons->msg);
    } else if (r->type == RSQ_REPLY_ARRAY && (r->len == 0 || r->element[0].type == RSQ_REPLY_NIL)) {
        rsq__note_deleted(cons, m->sidx, m->id); /* gone from the stream meanwhile */
    }
    return RSQ_OK;
}

/* A retry longer than the lease leaves the group's pending list: moved to the shard's
   delayed set with its fields, count and priority, and acked (deleted too from a retry
   stream), in one script, only while this consumer still holds it. When due, any
   consumer's housekeeping adds it to this group's retry stream of the shard.
   KEYS: the entry's stream, the delayed set, the retry stream; ARGV: group, ID,
   consumer, delay, count, priority, 1 when the entry is in a retry stream (its
   rsq-origin, the first entry of the chain, is kept). Reply: 1
   moved, 0 deleted from the stream (acked away), -1 not this consumer's any more. */
#define RSQ__DELAY_SCRIPT \
    "if redis.replicate_commands then redis.replicate_commands() end " \
    "local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1) " \
    "if not p[1] or p[1][2] ~= ARGV[3] then return -1 end " \
    "local e = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2]) " \
    "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) " \
    "if ARGV[7] == '1' then redis.call('XDEL', KEYS[1], ARGV[2]) end " \
    "if not e[1] then return 0 end " \
    "local t = redis.call('TIME') " \
    "local m = {KEYS[3], ARGV[2], ARGV[5], ARGV[6]} " \
    "local f = e[1][2] " \
    "for i = 1, #f, 2 do if string.sub(f[i], 1, 4) ~= 'rsq-' then m[#m + 1] = f[i] m[#m + 1] = f[i + 1] " \
    "elseif f[i] == 'rsq-origin' then m[2] = f[i + 1] end end " \
    "redis.call('ZADD', KEYS[2], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[4]), " \
    "cmsgpack.pack(m)) " \
    "return 1"

RSQ__INTERN rsq_result rsq__nack_delayed(rsq_consumer *cons, const rsq_message *m, int delay_ms) {
    const rsq_reply *r;
    char dl[24], cnt[24], pri[24];
    rsq_result rc;
    rsq__u64_to_dec(dl, (uint64_t)delay_ms);
    rsq__u64_to_dec(cnt, (uint64_t)(m->deliveries > 0 ? m->deliveries : 0));
    rsq__u64_to_dec(pri, (uint64_t)m->priority);
    rc = rsq__cmd(cons->c, &r, RSQ__ONCE, "EVAL", RSQ__DELAY_SCRIPT, "3", RSQ__KEY(cons, m->sidx), RSQ__DELAYED(cons, m->sidx),
                  RSQ__KEY(cons, m->shard), cons->group, m->id_str, cons->name, dl, cnt, pri,
                  cons->st[m->sidx].retry ? "1" : "0", (char *)0);
    if (rc != RSQ_OK)
        return rsq__needs_scripting(cons->c, rc, "a retry longer than visibility_ms");
    if (r->type != RSQ_REPLY_INTEGER)
        return rsq__set_err(cons->c, RSQ_ERR_REPLY, "delay script: unexpected reply");
    if (r->integer < 0)
        return rsq__set_err(cons->c, RSQ_ERR_STATE, "lease lost: %s is no longer pending on %s", m->id_str, cons->name);
    cons->stats.nacked++;
    if (r->integer == 0)
        cons->stats.deleted++;
    else
        cons->stats.delayed++;
    return RSQ_OK;
}

/* A nack for redelivery after delay_ms. Up to visibility_ms: the entry is parked on
   the pseudo-consumer, looking idle for visibility_ms - delay_ms, with the handlers'
   count, so that a reclaim pass takes it when due; this consumer's next pass is moved
   up to then. Longer: the delayed set (rsq__nack_delayed); where scripting is refused,
   capped at visibility_ms (logged). */
RSQ__INTERN rsq_result rsq__nack_later(rsq_consumer *cons, const rsq_message *m, int delay_ms) {
    const rsq_reply *r;
    char idle[24], cnt[24];
    rsq__cstream *st = &cons->st[m->sidx];
    uint64_t due;
    rsq_result rc;
    if (delay_ms > cons->visibility_ms) {
        rc = cons->no_retry ? RSQ_ERR_NOPERM : rsq__nack_delayed(cons, m, delay_ms);
        if (rc != RSQ_ERR_UNSUPPORTED && rc != RSQ_ERR_NOPERM)
            return rc;
        rsq__log(cons->c, RSQ_LOG_WARN, RSQ_LOGI_DELAYED, "%s: retry delay cut to visibility_ms (%d ms): %s", m->id_str,
                 cons->visibility_ms, cons->c->err);
        delay_ms = cons->visibility_ms;
    }
    rsq__u64_to_dec(idle, (uint64_t)(cons->visibility_ms - delay_ms));
    rsq__u64_to_dec(cnt, (uint64_t)(RSQ__SERVER_COUNT(m) > 0 ? RSQ__SERVER_COUNT(m) : 0));
    rc = rsq__cmd(cons->c, &r, RSQ__IDEMPOTENT, "XCLAIM", RSQ__KEY(cons, m->sidx), cons->group, RSQ__DELAYED_CONSUMER,
                  "0", m->id_str, "RETRYCOUNT", cnt, "IDLE", idle, "JUSTID", (char *)0);
    if (rc != RSQ_OK)
        return rc;
    cons->stats.nacked++;
    due = rsq__now(cons->c) + (uint64_t)delay_ms;
    if (!cons->parked_due || due < cons->parked_due)
        cons->parked_due = due; /* a pass then, whatever the reclaim interval says */
    if (rsq_id_cmp(m->id, st->claim) < 0)
        st->claim = m->id;
    return RSQ_OK;
}

RSQDEF rsq_result rsq_nack(rsq_consumer *cons, const rsq_message *m, int delay_ms, const char *error) {
    rsq_result rc = rsq__check_msg(cons, m);
    if (rc != RSQ_OK)
        return rc;
    if (error)
        rsq_consumer_set_error(cons, error);
    if (cons->max_deliveries >= 0 && m->deliveries >= cons->max_deliveries) {
        char why[96];
        rsq__fmt(why, sizeof why, "delivered %ld times (max_deliveries %d)", (long)m->deliveries, cons->max_deliveries);
        cons->stats.nacked++;
        return rsq_dead_letter(cons, m, cons->error[0] ? cons->error : why);
    }
    return delay_ms <= 0 ? rsq__nack_now(cons, m) : rsq__nack_later(cons, m, delay_ms);
}

RSQDEF rsq_result rsq_extend(rsq_consumer *cons, const rsq_message *m) {
    static const char script[] =
        "local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1) "
        "if p[1] and p[1][2] == ARGV[3] then "
        "redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID') return 1 end return 0";
    const rsq_reply *r;
    rsq_result rc = rsq__check_msg(cons, m);
    if (rc != RSQ_OK)
        return rc;
    rc = rsq__cmd(cons->c, &r, RSQ__IDEMPOTENT, "EVAL", script, "1", RSQ__KEY(cons, m->sidx), cons->group, m->id_str,
                  cons->name, (char *)0);
    if (rc != RSQ_OK)
        return rsq__needs_scripting(cons->c, rc, "rsq_extend");
    if (r->integer != 1)
        return rsq__set_err(cons->c, RSQ_ERR_STATE, "lease lost: %s is no longer pending on %s", m->id_str, cons->name);
    return RSQ_OK;
}

/* ------------------------------------------------------------------------------------ */
// >>reclaim: entries idle on other consumers move to this one's pending list (claimed
/* by ID, which counts no delivery), then come out through resume */
RSQ__INTERN void rsq__claimed(rsq_consumer *cons, int sidx, size_t n, size_t *total) {
    if (!n) return;
    *total += n;
    cons->st[sidx].resuming = 1;
    cons->st[sidx].cursor.ms = cons->st[sidx].cursor.seq = 0;
}

/* Moves stream i's scan cursor to its first pending entry idle for vis ms or more
   (XPENDING ... IDLE, Redis >= 6.2): the server walks the pending list at about
   0.1 us an entry, where XAUTOCLAIM looks every entry it passes up in the stream
   (Redis 7: about 1 us an entry) and stops after COUNT * 10 of them, so that live
   entries ahead of the idle ones cost a round trip per 160 (1M live: 6,000 round
   trips and 1.2 s of server time per pass). *none = 1 when nothing is idle from the
   cursor on. A server that refuses the filter leaves the cursor where it was. */
RSQ__INTERN rsq_result rsq__idle_seek(rsq_consumer *cons, int i, const char *vis, int *none) {
    rsq_client *c = cons->c;
    char cur[RSQ_ID_STRLEN];
    const rsq_reply *r;
    rsq_result rc;
    *none = 0;
    rsq_id_format(cons->st[i].claim, cur);
    rc = rsq__cmd(c, &r, RSQ__IDEMPOTENT, "XPENDING", RSQ__KEY(cons, i), cons->group, "IDLE", vis, cur, "+", "1", (char *)0);
    if (rc == RSQ_ERR_SERVER) { /* no IDLE filter here: XAUTOCLAIM scans on its own */
        c->err[0] = '\0';
        return RSQ_OK;
    }
    if (rc != RSQ_OK)
        return rc;
    if (r->type != RSQ_REPLY_ARRAY) return rsq__set_err(c, RSQ_ERR_REPLY, "XPENDING: unexpected reply");
    if (r->len == 0)
        *none = 1;
    else if (r->element[0].type != RSQ_REPLY_ARRAY || r->element[0].len < 1 ||
             !rsq__reply_id(&r->element[0].element[0], &cons->st[i].claim))
        return rsq__set_err(c, RSQ_ERR_REPLY, "XPENDING: unexpected entry");
    return RSQ_OK;
}

/* One XAUTOCLAIM ... JUSTID step on stream i from its cursor (moved first to the
   next idle entry, see rsq__idle_seek); Redis >= 7 also lists pending entries
   deleted from the stream (removed from the pending list already). */
RSQ__INTERN rsq_result rsq__autoclaim_step(rsq_consumer *cons, int i, const char *vis, const char *cnt, size_t *total) {
    rsq_client *c = cons->c;
    char cur[RSQ_ID_STRLEN];
    const rsq_reply *r;
    size_t j, n = 0;
    rsq_result rc;
    if (c->server_version >= 60200) {
        int none = 0;
        if ((rc = rsq__idle_seek(cons, i, vis, &none)) != RSQ_OK)
            return rc;
        if (none) { /* the end of this pass */
            cons->st[i].claim.ms = cons->st[i].claim.seq = 0;
            return RSQ_OK;
        }
    }
    rsq_id_format(cons->st[i].claim, cur);
    rc = rsq__cmd(c, &r, RSQ__IDEMPOTENT, "XAUTOCLAIM", RSQ__KEY(cons, i), cons->group, cons->name, vis, cur, "COUNT", cnt,
                  "JUSTID", (char *)0);
    if (rc != RSQ_OK)
        return rc;
    if (r->type != RSQ_REPLY_ARRAY || r->len < 2 || r->element[1].type != RSQ_REPLY_ARRAY)
        return rsq__set_err(c, RSQ_ERR_REPLY, "XAUTOCLAIM: unexpected reply");
    if (!rsq__reply_id(&r->element[0], &cons->st[i].claim)) cons->st[i].claim.ms = cons->st[i].claim.seq = 0;
    for (j = 0; j < r->element[1].len; j++) n += r->element[1].element[j].type != RSQ_REPLY_NIL;
    if (r->len >= 3 && r->element[2].type == RSQ_REPLY_ARRAY)
        for (j = 0; j < r->element[2].len; j++) {
            rsq_id id;
            if (rsq__reply_id(&r->element[2].element[j], &id)) rsq__note_deleted(cons, i, id);
        }
    rsq__claimed(cons, i, n, total);
    return RSQ_OK;
}

/* One page of XPENDING from the scan cursor, of every consumer or only of `owner`
   (XPENDING's consumer filter), then XCLAIM ... JUSTID of the entries idle long
   enough (Redis 5.0/6.0, and RSQ_RECLAIM_OFF). Deleted entries are claimed too and
   come out of resume as deleted, to be acked away. */
RSQ__INTERN rsq_result rsq__pending_claim_step(rsq_consumer *cons, int i, const char *vis, size_t want, size_t *total,
                                               const char *owner) {
    rsq_client *c = cons->c;
    char from[RSQ_ID_STRLEN], page[24];
    const rsq_reply *r;
    size_t j, n = 0, per = RSQ__MAX((size_t)cons->count * 10, 100);
    rsq__args a;
    rsq_result rc;
    if ((rc = rsq__cons_argv(cons, 7 + want)) != RSQ_OK) return rc;
    if (!RSQ__ENSURE(cons, idtxt, idtxt_cap, want * RSQ_ID_STRLEN)) return rsq__set_err(c, RSQ_ERR_NOMEM, "out of memory for reclaim");
    rsq_id_format(cons->st[i].claim, from);
    rsq__u64_to_dec(page, (uint64_t)per);
    rc = rsq__cmd(c, &r, RSQ__IDEMPOTENT, "XPENDING", RSQ__KEY(cons, i), cons->group, from, "+", page,
                  owner /* NULL: ends the list here */, (char *)0);
    if (rc != RSQ_OK)
        return rc;
    if (r->type != RSQ_REPLY_ARRAY) return rsq__set_err(c, RSQ_ERR_REPLY, "XPENDING: unexpected reply");
    cons->st[i].claim.ms = cons->st[i].claim.seq = 0; /* the end: start over next time */
    for (j = 0; j < r->len; j++) {
        const rsq_reply *e = &r->element[j];
        rsq_id id;
        if (e->type != RSQ_REPLY_ARRAY || e->len < 4 || !rsq__reply_id(&e->element[0], &id)) continue;
        if (n == want) break;
        if (r->len == per || j + 1 < r->len) cons->st[i].claim = rsq__id_next(id);
        if (e->element[2].integer < cons->visibility_ms) continue;
        rsq_id_format(id, cons->idtxt + n * RSQ_ID_STRLEN);
        n++;
    }
    if (j == r->len && r->len < per) cons->st[i].claim.ms = cons->st[i].claim.seq = 0;
    if (n == 0) return RSQ_OK;
    a = rsq__args_on(cons->argv, cons->lens, (int)cons->argv_cap);
    rsq__args_list(&a, "XCLAIM", RSQ__KEY(cons, i), cons->group, cons->name, vis, (char *)0);
    for (j = 0; j < n; j++) rsq__arg(&a, cons->idtxt + j * RSQ_ID_STRLEN);
    rsq__arg(&a, "JUSTID");
    if ((rc = rsq__cmd_args(c, &r, RSQ__IDEMPOTENT, &a)) != RSQ_OK)
        return rc;
    if (r->type != RSQ_REPLY_ARRAY) return rsq__set_err(c, RSQ_ERR_REPLY, "XCLAIM: unexpected reply");
    for (j = n = 0; j < r->len; j++) n += r->element[j].type != RSQ_REPLY_NIL;
    rsq__claimed(cons, i, n, total);
    return RSQ_OK;
}

/* A reclaim pass: follows each stream's scan cursor to the end of the pending list
   (or until `count` entries are claimed, or a time budget of visibility_ms / 4, at
   most 2 s, is spent; the next pass then follows at once). */
RSQ__INTERN rsq_result rsq__reclaim(rsq_consumer *cons) {
    rsq_client *c = cons->c;
    char vis[24], cnt[24];
    size_t total = 0;
    uint64_t until;
    int mode = cons->reclaim, i;
    const char *owner = NULL;
    rsq_result rc;
    /* acks first: entries handled but not yet acked look idle and would be taken back */
    if ((rc = rsq_consumer_flush(cons)) != RSQ_OK) return rc;
    if (mode == RSQ_RECLAIM_OFF) {
        owner = RSQ__DELAYED_CONSUMER; /* never other consumers' entries: parked ones only */
        mode = RSQ_RECLAIM_PENDING_CLAIM;
    } else if (mode == RSQ_RECLAIM_AUTO) {
        long v = 0;
        rc = rsq_server_version(c, &v);
        if (rc != RSQ_OK && !rsq_result_is_server_error(rc) && rc != RSQ_ERR_UNSUPPORTED) return rc;
        /* version unknown (INFO and HELLO refused): try XAUTOCLAIM, fall back below */
        mode = rc != RSQ_OK || v >= 60200 ? RSQ_RECLAIM_AUTOCLAIM : RSQ_RECLAIM_PENDING_CLAIM;
        if (rc == RSQ_OK) cons->reclaim = mode;
    } else if (mode == RSQ_RECLAIM_AUTOCLAIM) {
        long v = 0; /* known per connection: rsq__idle_seek needs it (6.2) */
        rc = rsq_server_version(c, &v);
        if (rc != RSQ_OK && !rsq_result_is_server_error(rc) && rc != RSQ_ERR_UNSUPPORTED) return rc;
    }
    rsq__u64_to_dec(vis, (uint64_t)cons->visibility_ms);
    rsq__u64_to_dec(cnt, (uint64_t)cons->count);
    until = rsq__now(c) + (uint64_t)RSQ__MAX(RSQ__MIN(cons->visibility_ms / 4, 2000), 50);
    for (i = 0; i < cons->nstreams && total < (size_t)cons->count; i++) {
        do {
            rc = mode == RSQ_RECLAIM_AUTOCLAIM ? rsq__autoclaim_step(cons, i, vis, cnt, &total)
                                               : rsq__pending_claim_step(cons, i, vis, (size_t)cons->count - total, &total, owner);
            if (rc == RSQ_ERR_SERVER && mode == RSQ_RECLAIM_AUTOCLAIM && cons->reclaim == RSQ_RECLAIM_AUTO &&
                !strncmp(c->err, "ERR unknown command", 19)) {
                cons->reclaim = mode = RSQ_RECLAIM_PENDING_CLAIM; /* before Redis 6.2 */
                cons->next_reclaim = 0;
                rc = RSQ_OK;
                continue;
            }
            if (rc != RSQ_OK) return rc;
        } while ((cons->st[i].claim.ms || cons->st[i].claim.seq) && total < (size_t)cons->count && rsq__now(c) < until);
        if (cons->st[i].claim.ms || cons->st[i].claim.seq) cons->next_reclaim = 0; /* more to scan */
    }
    if (total) {
        cons->stats.reclaimed += total;
        rsq__log(c, RSQ_LOG_INFO, RSQ_LOGI_RECLAIMED, "%s: reclaimed %lu entries idle over %d ms", cons->group, (unsigned long)total,
                 cons->visibility_ms);
    }
    return RSQ_OK;
}

/* ------------------------------------------------------------------------------------ */
// >>fetch: the group, resume, new entries, and the state machine of next and step

/* In a cluster, a sharded queue's streams live in several slots. */
RSQ__INTERN int rsq__cons_sharded_cluster(const rsq_consumer *cons) {
    return cons->shards > 1 && (RSQ__IN_CLUSTER(cons->c) || cons->c->cluster_seen);
}

/* A read of streams [first, first+n) is about to go out: from here the server may
   count deliveries that no handler sees (rsq__mark_unseen). */
RSQ__INTERN void rsq__xr_open(rsq_consumer *cons, int first, int n) {
    int i;
    cons->xr_open = 1;
    cons->xr_first = first;
    cons->xr_n = n;
    for (i = first; i < first + n; i++)
        cons->st[i].xr_from = cons->st[i].seen;
}

/* XREADGROUP for new entries (">") over streams [first, first+n). block_ms < 0: no
   BLOCK. Queued acks go in the same write. */
RSQ__INTERN rsq_result rsq__xread_send(rsq_consumer *cons, int first, int n, int block_ms) {
    rsq_client *c = cons->c;
    char cnt[24], blk[24];
    int i, acks = 0, head;
    rsq__args a;
    rsq_result rc;
    if ((rc = rsq__cons_sync(cons)) != RSQ_OK)
        return rc;
    if ((rc = rsq__cons_argv(cons, 10 + 2 * (size_t)n)) != RSQ_OK)
        return rc;
    if ((rc = rsq__append_acks(cons, &acks)) != RSQ_OK)
        return rsq__resync(c, rc);
    rsq__xr_open(cons, first, n);
    cons->ack_replies = acks;
    rsq__u64_to_dec(cnt, (uint64_t)cons->count);
    a = rsq__args_on(cons->argv, cons->lens, (int)cons->argv_cap);
    rsq__args_list(&a, "XREADGROUP", "GROUP", cons->group, cons->name, "COUNT", cnt, (char *)0);
    if (block_ms >= 0) {
        rsq__u64_to_dec(blk, (uint64_t)(block_ms > 0 ? block_ms : 1));
        rsq__args_list(&a, "BLOCK", blk, (char *)0);
    }
    rsq__arg(&a, "STREAMS");
    head = a.argc;
    cons->xr_cmds = 0;
    /* a cluster refuses keys of several slots in one command: one read per shard, each
       with that shard's levels, highest first */
    for (i = 0; i < cons->shards && rc == RSQ_OK; i++) {
        int k, m = 0, per_shard = rsq__cons_sharded_cluster(cons) && n > 1;
        a.argc = head;
        for (k = 0; k < n; k++)
            if (!per_shard || cons->st[first + k].shard == i) {
                rsq__arg(&a, RSQ__KEY(cons, first + k));
                m++;
            }
        if (!m)
            continue;
        for (k = 0; k < m; k++) rsq__arg(&a, ">");
        rc = rsq_append_argv(c, a.argc, a.argv, a.lens);
        cons->xr_cmds++;
        if (!per_shard)
            break;
    }
    if (rc != RSQ_OK) {
        cons->ack_replies = 0;
        cons->xr_cmds = 0;
        rsq__resync(c, rc);
    }
    return rc;
}

/* Receives what rsq__xread_send asked for: the XACK replies, then the XREADGROUP
   reply, whose entries go into the batch (first deliveries: count 1). timeout_ms may
   be RSQ_TIMEOUT_NONBLOCK (RSQ_AGAIN until the replies are in; progress is kept). On
   an error the caller drops the partial batch. */
RSQ__INTERN rsq_result rsq__xread_recv(rsq_consumer *cons, int timeout_ms) {
    rsq_client *c = cons->c;
    size_t k;
    const rsq_reply *r, *list;
    rsq_result rc = rsq__read_acks(cons, timeout_ms == RSQ_TIMEOUT_NONBLOCK);
    if (rc == RSQ_AGAIN || (rc != RSQ_OK && !rsq_result_is_server_error(rc))) return rc;
    if (rc != RSQ_OK && cons->ack_fail == RSQ_OK) {
        /* the server refused the acks sent with this read: the read's own replies are
           still owed, so take them first; the refusal is reported by the next round
           (rsq__duties), the acks stay queued */
        cons->ack_fail = rc;
        rsq__copy(cons->ack_err, sizeof cons->ack_err, c->err, strlen(c->err));
    }
  next_reply:
    c->intr_wait = timeout_ms > 0; /* only a BLOCK read may be cut short by a stop */
    rc = rsq_read_reply(c, &r, timeout_ms);
    c->intr_wait = 0;
    if (rc != RSQ_OK) {
        /* later replies of a per-shard read are still owed: take them before reporting */
        while (--cons->xr_cmds > 0 && rsq_result_is_server_error(rc)) rsq_read_reply(c, &r, RSQ_TIMEOUT_DEFAULT);
        cons->xr_cmds = 0;
        if (rc != RSQ_AGAIN)
            rsq__mark_unseen(cons);
        return rc;
    }
    if (r->type == RSQ_REPLY_NIL) { if (--cons->xr_cmds > 0) goto next_reply; return RSQ_OK; }
    if (r->type != RSQ_REPLY_ARRAY && r->type != RSQ_REPLY_MAP) rc = rsq__set_err(c, RSQ_ERR_REPLY, "XREADGROUP: unexpected reply");
    list = r;
    for (k = 0; rc == RSQ_OK && k < list->len; k += (list->type == RSQ_REPLY_MAP ? 2 : 1)) {
        const rsq_reply *ents;
        size_t j;
        int sidx;
        if (!rsq__xr_stream(cons, list, k, &sidx, &ents) || ents->type != RSQ_REPLY_ARRAY) {
            rc = rsq__set_err(c, RSQ_ERR_REPLY, "XREADGROUP: malformed reply or unknown stream");
            break;
        }
        for (j = 0; j < ents->len && rc == RSQ_OK; j++) rc = rsq__batch_add(cons, sidx, &ents->element[j], 1);
        if (rc == RSQ_OK && ents->len) rsq__reply_id(&ents->element[ents->len - 1].element[0], &cons->st[sidx].seen);
    }
    if (rc != RSQ_OK) {
        while (--cons->xr_cmds > 0) if (rsq_read_reply(c, &r, RSQ_TIMEOUT_DEFAULT) != RSQ_OK && !rsq_pending_replies(c)) break;
        cons->xr_cmds = 0;
        rsq__mark_unseen(cons);
        return rc;
    }
    if (--cons->xr_cmds > 0) goto next_reply;
    if (cons->nmsg == 0)
        cons->xr_open = 0;
    return rsq__batch_uncount(cons, timeout_ms == RSQ_TIMEOUT_NONBLOCK);
}

/* XREADGROUP for new entries, waiting for the reply (BLOCK time plus the client's
   margin). */
RSQ__INTERN rsq_result rsq__xread(rsq_consumer *cons, int first, int n, int block_ms) {
    rsq_result rc = rsq__xread_send(cons, first, n, block_ms);
    if (rc != RSQ_OK) return rc;
    return rsq__xread_recv(cons, block_ms >= 0 ? block_ms + cons->c->block_margin_ms : RSQ_TIMEOUT_DEFAULT);
}

/* Reads the XPENDING half of a resume exchange: the entry's ID and delivery count so
   far. 0 when nothing is pending after the cursor (or the reply is unusable). */
RSQ__INTERN int rsq__resume_pending(const rsq_reply *r, rsq_id *id, long long *count) {
    const rsq_reply *e;
    if (r->type != RSQ_REPLY_ARRAY || r->len < 1) return 0;
    e = &r->element[0];
    if (e->type != RSQ_REPLY_ARRAY || e->len < 4 || !rsq__reply_id(&e->element[0], id)) return 0;
    *count = e->element[3].integer;
    return 1;
}

/* Re-delivers the next entry of this consumer's own pending list on stream sidx
   (after the resume cursor), one at a time so that the server counts a delivery only
   for an entry that reaches the caller: XPENDING (its count so far) and XREADGROUP
   from the cursor with COUNT 1, pipelined once XPENDING has answered (the first
   exchange waits for it: refused, nothing is read). The entry joins the batch with deliveries
   = count + 1; one already delivered max_deliveries times goes to the dead letters;
   one deleted from the stream is acked away; one larger than the client's limits is
   dead-lettered by ID (the link is lost with it: that is how the limit is enforced).
   Clears `resuming` once nothing is left. */
/* What the XPENDING half of a resume exchange said: the entry's ID and its delivery
   count so far (have 0: nothing, or refused). */
typedef struct rsq__resume {
    rsq_id pid;
    long long before;
    int have;
} rsq__resume;

/* The exchange of rsq__resume_one on stream sidx: XPENDING of the next own pending
   entry after the cursor, and XREADGROUP ... COUNT 1 from the cursor, pipelined once
   XPENDING has answered (the first exchange waits for it: refused, by an ACL user
   without +xpending, the read must not go out, or the server would count a delivery
   of an entry that no handler sees, at every attempt). Returns XPENDING's result;
   *rc_read and *r the read's. A failure before the read: both the same error. */
RSQ__INTERN rsq_result rsq__resume_ask(rsq_consumer *cons, int sidx, rsq__resume *rs, const rsq_reply **r,
                                       rsq_result *rc_read) {
    rsq_client *c = cons->c;
    const rsq__cstream *st = &cons->st[sidx];
    char from[RSQ_ID_STRLEN], cur[RSQ_ID_STRLEN];
    const char *argv[9];
    size_t lens[9];
    rsq__args a = rsq__args_on(argv, lens, 9);
    int piped = cons->pending_ok;
    rsq_result rc;
    rsq_id_format(rsq__id_next(st->cursor), from);
    rsq_id_format(st->cursor, cur);
    rsq__args_list(&a, "XPENDING", RSQ__KEY(cons, sidx), cons->group, from, "+", "1", cons->name, (char *)0);
    if ((rc = rsq_append_argv(c, a.argc, argv, lens)) == RSQ_OK && !piped) {
        rc = rsq_read_reply(c, r, RSQ_TIMEOUT_DEFAULT);
        cons->pending_ok = rc == RSQ_OK;
        rs->have = rc == RSQ_OK && rsq__resume_pending(*r, &rs->pid, &rs->before);
    }
    if (rc != RSQ_OK)
        return *rc_read = rc;
    a.argc = 0;
    rsq__args_list(&a, "XREADGROUP", "GROUP", cons->group, cons->name, "COUNT", "1", "STREAMS", RSQ__KEY(cons, sidx), cur,
                   (char *)0);
    if ((rc = rsq_append_argv(c, a.argc, argv, lens)) != RSQ_OK)
        return *rc_read = rsq__resync(c, rc);
    if (piped) { /* XPENDING's reply first */
        rc = rsq_read_reply(c, r, RSQ_TIMEOUT_DEFAULT);
        if (rc != RSQ_OK && !rsq_result_is_server_error(rc))
            return *rc_read = rc;
        if (rc != RSQ_OK)
            cons->pending_ok = 0; /* refused now: alone again next time */
        rs->have = rc == RSQ_OK && rsq__resume_pending(*r, &rs->pid, &rs->before);
    }
    *rc_read = rsq_read_reply(c, r, RSQ_TIMEOUT_DEFAULT);
    return rc;
}

/* Sets the server's delivery count of one own pending entry (XCLAIM to this consumer,
   min-idle 0, RETRYCOUNT n, JUSTID: no delivery counted). */
RSQ__INTERN rsq_result rsq__recount(rsq_consumer *cons, int sidx, rsq_id id, long long n) {
    const rsq_reply *r;
    char ids[RSQ_ID_STRLEN], cnt[24];
    rsq_id_format(id, ids);
    rsq__u64_to_dec(cnt, (uint64_t)(n > 0 ? n : 0));
    return rsq__cmd(cons->c, &r, RSQ__IDEMPOTENT, "XCLAIM", RSQ__KEY(cons, sidx), cons->group, cons->name, "0", ids,
                    "RETRYCOUNT", cnt, "JUSTID", (char *)0);
}

/* The XREADGROUP reply r of a resume exchange: the entry joins the batch with
   deliveries = count + 1, or goes to the dead letters when already delivered
   max_deliveries times; none left: resume of this stream is done. */
RSQ__INTERN rsq_result rsq__resume_take(rsq_consumer *cons, int sidx, const rsq_reply *r, rsq__resume *rs) {
    rsq_client *c = cons->c;
    rsq__cstream *st = &cons->st[sidx];
    const rsq_reply *ents = NULL;
    char why[96];
    rsq_id id;
    int s2;
    rsq_result rc;
    if (r->type == RSQ_REPLY_NIL) {
        st->resuming = st->unseen = 0;
        return RSQ_OK;
    }
    if ((r->type != RSQ_REPLY_ARRAY && r->type != RSQ_REPLY_MAP) || r->len < 1 || !rsq__xr_stream(cons, r, 0, &s2, &ents) || s2 != sidx)
        return rsq__set_err(c, RSQ_ERR_REPLY, "XREADGROUP: unexpected reply");
    if (ents->type != RSQ_REPLY_ARRAY || ents->len == 0) {
        st->resuming = st->unseen = 0;
        return RSQ_OK;
    }
    if (ents->element[0].type != RSQ_REPLY_ARRAY || ents->element[0].len < 2 || !rsq__reply_id(&ents->element[0].element[0], &id))
        return rsq__set_err(c, RSQ_ERR_REPLY, "XREADGROUP: malformed entry");
    st->cursor = id;
    if (!rs->have || rsq_id_cmp(id, rs->pid) != 0)
        rs->before = 0; /* changed in between: count unknown */
    if (st->unseen && rsq_id_cmp(id, st->xr_from) > 0) {
        /* read as new by a read whose reply or batch was lost: no handler saw it, so
           its count goes back to 0, and this delivery makes it 1 */
        if (rs->before > 0 && (rc = rsq__recount(cons, sidx, id, 1)) != RSQ_OK)
            return rc;
        rs->before = 0;
    }
    if ((rc = rsq__batch_add(cons, sidx, &ents->element[0], rs->before + 1)) != RSQ_OK)
        return rc;
    if (cons->nmsg == 0)
        return RSQ_OK; /* deleted from the stream: acked away */
    rsq__batch_fix(cons);
    if (cons->max_deliveries >= 0 && cons->msg[cons->nmsg - 1].deliveries - 1 >= cons->max_deliveries) {
        rsq_message *m = &cons->msg[cons->nmsg - 1]; /* (a retry's count includes the earlier ones) */
        m->skip = 1;
        m->deliveries--;
        rsq__fmt(why, sizeof why, "delivered %ld times (max_deliveries %d)", (long)m->deliveries, cons->max_deliveries);
        return rsq_dead_letter(cons, m, why);
    }
    cons->stats.resumed++;
    return RSQ_OK;
}

/* The entry is too large for this client: set aside by ID. */
RSQ__INTERN rsq_result rsq__resume_too_large(rsq_consumer *cons, int sidx, const rsq__resume *rs) {
    rsq_result rc;
    rsq__fmt(cons->why, sizeof cons->why, "entry larger than the consumer's reply limits (%s)", cons->c->err);
    if ((rc = rsq__dead_letter_id(cons, sidx, rs->pid, rs->before, cons->why)) != RSQ_OK)
        return rc;
    cons->st[sidx].cursor = rs->pid;
    return RSQ_OK;
}

RSQ__INTERN rsq_result rsq__resume_one(rsq_consumer *cons, int sidx) {
    const rsq_reply *r = NULL;
    rsq__resume rs;
    rsq_result rc, rc_read;
    memset(&rs, 0, sizeof rs);
    rc = rsq__resume_ask(cons, sidx, &rs, &r, &rc_read);
    if (rc_read == RSQ_ERR_LIMIT && rc == RSQ_OK && rs.have)
        return rsq__resume_too_large(cons, sidx, &rs);
    if (rc != RSQ_OK)
        return rc;
    if (rc_read != RSQ_OK)
        return rc_read;
    return rsq__resume_take(cons, sidx, r, &rs);
}

/* NOGROUP (the stream or the group was deleted: FLUSHALL, DEL, XGROUP DESTROY) or
   UNBLOCKED (the stream vanished under a blocking read): the group is made again
   before the next read. 1 if rc is one of these. */
RSQ__INTERN int rsq__group_lost(rsq_consumer *cons, rsq_result rc) {
    rsq_client *c = cons->c;
    if (rc != RSQ_ERR_NOGROUP && !(rc == RSQ_ERR_SERVER && !strncmp(c->err, "UNBLOCKED", 9))) return 0;
    cons->ready = 0;
    cons->lost = 1;
    cons->stats.groups_recreated++;
    if (!cons->said_nogroup) {
        cons->said_nogroup = 1;
        rsq__log(c, RSQ_LOG_WARN, RSQ_LOGI_GROUP_RECREATED, "group %s missing on %s; recreating it after the last entry read",
                 cons->group, RSQ__KEY(cons, 0));
    }
    return 1;
}

/* Without rights on the group's retry streams (an ACL that names the queue's streams
   only), the consumer reads the others: the table loses its first tier; a retry
   longer than the lease is cut to visibility_ms (logged once). */
RSQ__INTERN void rsq__drop_retry_streams(rsq_consumer *cons) {
    rsq__log(cons->c, RSQ_LOG_WARN, RSQ_LOGI_DELAYED, "no rights on %s: retries longer than visibility_ms are cut to it",
             RSQ__KEY(cons, 0));
    cons->nstreams -= cons->shards;
    memmove(cons->st, cons->st + cons->shards, sizeof(rsq__cstream) * (size_t)cons->nstreams);
}

/* Creates the group on every stream (MKSTREAM), at `start` the first time; after a
   loss at the last entry ID read from that stream, or "0" (nothing written after
   the loss is skipped; what this consumer did not read yet comes again). */
RSQ__INTERN rsq_result rsq__cons_setup(rsq_consumer *cons) {
    rsq_client *c = cons->c;
    char why[RSQ_ERR_MAX];
    int i;
    rsq_result rc = RSQ_OK, first = RSQ_OK;
    if (!RSQ__ENSURE(cons, idtxt, idtxt_cap, (size_t)cons->nstreams * RSQ_ID_STRLEN))
        return rsq__set_err(c, RSQ_ERR_NOMEM, "out of memory for group setup");
    for (i = 0; i < cons->nstreams; i++) {
        const char *argv[6];
        size_t lens[6];
        rsq__args a = rsq__args_on(argv, lens, 6);
        char *at = cons->idtxt + (size_t)i * RSQ_ID_STRLEN;
        if (cons->st[i].retry && !cons->lost)
            memcpy(at, "0", 2); /* a retry stream holds this group's retries only */
        else if (!cons->lost)
            rsq__copy(at, RSQ_ID_STRLEN, cons->start, strlen(cons->start));
        else if (cons->st[i].seen.ms || cons->st[i].seen.seq)
            rsq_id_format(cons->st[i].seen, at);
        else
            memcpy(at, "0", 2);
        rsq__args_list(&a, "XGROUP", "CREATE", RSQ__KEY(cons, i), cons->group, at, "MKSTREAM", (char *)0);
        if ((rc = rsq_append_argv(c, a.argc, argv, lens)) != RSQ_OK)
            return rsq__resync(c, rc);
    }
    for (i = 0; i < cons->nstreams; i++) {
        const rsq_reply *r;
        rc = rsq_read_reply(c, &r, RSQ_TIMEOUT_DEFAULT);
        if (rc == RSQ_ERR_SERVER && !strncmp(c->err, "BUSYGROUP", 9)) rc = RSQ_OK;
        if (rc != RSQ_OK && !rsq_result_is_server_error(rc)) return rc;
        if (rc == RSQ_ERR_NOPERM && cons->st[i].retry) { /* no rights on the retry streams: */
            cons->no_retry = 1;                         /* long retries are cut (rsq_nack) */
            continue;
        }
        if (rc != RSQ_OK && first == RSQ_OK) {
            first = rsq__noperm_key(c, rc, "XGROUP CREATE", 13, RSQ__KEY(cons, i), strlen(RSQ__KEY(cons, i)));
            rsq__copy(why, sizeof why, c->err, strlen(c->err)); /* later replies may overwrite it */
        }
    }
    if (first != RSQ_OK) return rsq__set_err(c, first, "%s", why);
    if (cons->no_retry && cons->st[0].retry) rsq__drop_retry_streams(cons);
    c->err[0] = '\0';
    rsq__batch_drop(cons); /* resume: own pending entries first */
    cons->epoch = c->epoch;
    cons->ready = 1;
    return RSQ_OK;
}

/* Due delayed entries go back, at most `ARGV[1]` per call, atomically: a group's retry
   to its retry stream with rsq-origin, rsq-deliveries and rsq-priority; a scheduled
   publish to its stream. KEYS: the delayed set. Reply: {moved, ms until the next is
   due or -1}. */
#define RSQ__PROMOTE_SCRIPT \
    "if redis.replicate_commands then redis.replicate_commands() end " \
    "local t = redis.call('TIME') " \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) " \
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1])) " \
    "for _, s in ipairs(due) do " \
    "redis.call('ZREM', KEYS[1], s) " \
    "local m = cmsgpack.unpack(s) " \
    "local a = {} " \
    "if m[2] ~= '' then a = {'rsq-origin', m[2], 'rsq-deliveries', m[3], 'rsq-priority', m[4]} end " \
    "for i = 5, #m do a[#a + 1] = m[i] end " \
    "redis.call('XADD', m[1], '*', unpack(a)) end " \
    "local n = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES') " \
    "if n[2] then return {#due, math.max(0, tonumber(n[2]) - now)} end " \
    "return {#due, -1}"

/* Every due_check_ms (sooner when the server says the next is due sooner): each
   shard's delayed set gives back what is due. Refused (no scripting, ACL): logged,
   and not tried again by this consumer. */
RSQ__INTERN rsq_result rsq__promote_due(rsq_consumer *cons) {
    rsq_client *c = cons->c;
    uint64_t now = rsq__now(c);
    int s;
    if (cons->due_off || now < cons->next_due)
        return RSQ_OK;
    cons->next_due = now + (uint64_t)cons->due_check_ms;
    for (s = 0; s < cons->shards; s++) {
        const rsq_reply *r;
        rsq_result rc = rsq__cmd(c, &r, RSQ__IDEMPOTENT, "EVAL", RSQ__PROMOTE_SCRIPT, "1", RSQ__DELAYED(cons, s), "100",
                                 (char *)0);
        if (rsq__link_error(rc))
            return rc;
        if (rc != RSQ_OK || r->type != RSQ_REPLY_ARRAY || r->len != 2) {
            rsq__log(c, RSQ_LOG_WARN, RSQ_LOGI_DELAYED, "%s: due delayed entries are not moved: %s", RSQ__DELAYED(cons, s),
                     rc != RSQ_OK ? c->err : "unexpected reply");
            cons->due_off = 1;
            c->err[0] = '\0';
            return RSQ_OK;
        }
        cons->stats.promoted += (uint64_t)r->element[0].integer;
        if (r->element[0].integer >= 100)
            cons->next_due = now; /* more are due */
        else if (r->element[1].integer >= 0 && now + (uint64_t)r->element[1].integer < cons->next_due)
            cons->next_due = now + (uint64_t)r->element[1].integer;
    }
    return RSQ_OK;
}

/* Everything before waiting for new entries: the group (first use), reclaim when
   due, own pending entries after a start, reconnect or reclaim (resume), and higher
   priority levels without waiting. Fills the batch if any of them finds something. */
RSQ__INTERN rsq_result rsq__housekeeping(rsq_consumer *cons) {
    rsq_client *c = cons->c;
    uint64_t now;
    int i;
    rsq_result rc;
    if (!cons->ready && (rc = rsq__cons_setup(cons)) != RSQ_OK) return rc;
    if (cons->epoch != c->epoch) { /* reconnected: what was in flight is in our pending list */
        rsq__batch_drop(cons);
        cons->epoch = c->epoch;
    }
    now = rsq__now(c);
    for (i = 0; i < cons->nstreams && !cons->st[i].unseen; i++) {}
    /* a reclaim waits until the unseen entries are recounted: it could bring entries
       into the range they are told by */
    if (i == cons->nstreams && (now >= cons->next_reclaim || (cons->parked_due && now >= cons->parked_due))) {
        if (now >= cons->next_reclaim)
            cons->next_reclaim = now + (uint64_t)cons->reclaim_interval_ms;
        if (cons->parked_due && now >= cons->parked_due)
            cons->parked_due = 0;
        if ((rc = rsq__reclaim(cons)) != RSQ_OK) return rc;
    }
    if ((rc = rsq__promote_due(cons)) != RSQ_OK) return rc;
    for (i = 0; i < cons->nstreams; i++)
        while (cons->st[i].resuming) {
            /* acks still queued (their confirmation lost with a link) go first: a
               handled entry must not come again through resume */
            if (cons->nack && (rc = rsq_consumer_flush(cons)) != RSQ_OK) return rc;
            if ((rc = rsq__resume_one(cons, i)) != RSQ_OK) return rc;
            if (cons->nmsg) return RSQ_OK;
        }
    for (i = 0; i < cons->levels - cons->no_retry; i++) { /* retries and higher levels first, without waiting */
        if ((rc = rsq__xread(cons, i * cons->shards, cons->shards, -1)) != RSQ_OK) return rc;
        if (cons->nmsg) break;
    }
    return RSQ_OK;
}

/* How long a read of new entries may block, in ms: block_ms, cut to the call's
   deadline (UINT64_MAX: none), to the next reclaim and to the next look at the delayed
   sets; 0 once one of them has come. */
RSQ__INTERN int rsq__read_block(rsq_consumer *cons, uint64_t deadline) {
    uint64_t now = rsq__now(cons->c);
    int block = cons->block_ms;
    if (deadline != UINT64_MAX)
        block = (int)RSQ__MIN((uint64_t)block, deadline > now ? deadline - now : 0);
    block = (int)RSQ__MIN((uint64_t)block, cons->next_reclaim > now ? cons->next_reclaim - now : 0);
    if (cons->parked_due)
        block = (int)RSQ__MIN((uint64_t)block, cons->parked_due > now ? cons->parked_due - now : 0);
    if (!cons->due_off)
        block = (int)RSQ__MIN((uint64_t)block, cons->next_due > now ? cons->next_due - now : 0);
    return block;
}

/* A sharded queue in a cluster: no single command can wait on several slots, so every
   shard is read without waiting, then, when nothing came, a pause of 5..100 ms
   (growing while idle), at most `block`. */
RSQ__INTERN rsq_result rsq__fetch_shards(rsq_consumer *cons, int block) {
    rsq_result rc = rsq__xread(cons, 0, cons->nstreams, -1);
    if (rc != RSQ_OK)
        return rc;
    if (cons->nmsg) {
        cons->poll_ms = 0;
        return RSQ_OK;
    }
    cons->poll_ms = cons->poll_ms ? RSQ__MIN(cons->poll_ms * 2, 100) : 5;
    rsq__cons_sleep(cons, RSQ__MIN(cons->poll_ms, block));
    return RSQ_OK;
}

/* Sends the read of new entries on every stream (acks go with it), blocking at most
   rsq__read_block, and marks it in flight. nonblock: writes what the socket takes now
   and returns RSQ_AGAIN (at least BLOCK 1 ms: the reply completes a later turn);
   else RSQ_OK (no BLOCK when no time is left), its reply awaited next. */
RSQ__INTERN rsq_result rsq__fetch_send(rsq_consumer *cons, uint64_t deadline, int nonblock) {
    int block = rsq__read_block(cons, deadline);
    rsq_result rc;
    if (!nonblock && rsq__cons_sharded_cluster(cons))
        return rsq__fetch_shards(cons, block);
    if (block <= 0)
        block = nonblock ? 1 : -1;
    rc = rsq__xread_send(cons, 0, cons->nstreams, block);
    if (rc != RSQ_OK)
        return rc;
    cons->xr_inflight = 1;
    cons->xr_timeout = block >= 0 ? block + cons->c->block_margin_ms : RSQ_TIMEOUT_DEFAULT;
    if (!nonblock)
        return RSQ_OK;
    rc = rsq_flush(cons->c, RSQ_TIMEOUT_NONBLOCK);
    return rc == RSQ_OK || rc == RSQ_AGAIN ? RSQ_AGAIN : rc;
}

/* The fetch state machine behind rsq_consumer_next (blocking) and rsq_consumer_step
   (nonblock). Called when the batch has nothing left to hand out. States:
     idle       housekeeping (the group on first use, reclaim when due, own pending
                entries after a start or reconnect, higher levels without waiting);
                when it finds nothing, a read of new entries is sent: in flight;
     in flight  the read's reply is collected: RSQ_AGAIN (nonblock) until it is in;
                blocking, it is awaited for the BLOCK time plus the client's margin.
   Returns RSQ_OK (the batch refilled, or empty: nothing came), RSQ_AGAIN (nonblock,
   a read in flight) or an error: the batch is dropped whole (its entries are in this
   consumer's pending list and come again through resume). */
RSQ__INTERN rsq_result rsq__fetch(rsq_consumer *cons, uint64_t deadline, int nonblock) {
    rsq_result rc = RSQ_OK;
    if (!cons->xr_inflight) {
        rsq__batch_reset(cons);
        rc = rsq__housekeeping(cons);
        if (rc == RSQ_OK && !cons->nmsg)
            rc = rsq__fetch_send(cons, deadline, nonblock);
    }
    if (rc == RSQ_OK && cons->xr_inflight) {
        rc = rsq__xread_recv(cons, nonblock ? RSQ_TIMEOUT_NONBLOCK : cons->xr_timeout);
        if (rc != RSQ_AGAIN)
            cons->xr_inflight = 0;
    }
    if (rc == RSQ_AGAIN)
        return rc;
    if (rc != RSQ_OK) {
        rsq__batch_drop(cons);
        return rc;
    }
    if (cons->nmsg) {
        rsq__batch_fix(cons);
        cons->batch_ms = rsq__now(cons->c);
    }
    return RSQ_OK;
}

/* Time-driven duties between hand-outs: acks older than ack_interval_ms go out, and
   prefetched messages waiting longer than visibility_ms / 2 get their lease renewed,
   so that no one reclaims a live consumer's batch. */
RSQ__INTERN rsq_result rsq__duties(rsq_consumer *cons) {
    uint64_t now;
    rsq_result rc;
    if (cons->uncount_replies && (rc = rsq__cons_sync(cons)) != RSQ_OK) return rc;
    if (cons->ack_fail != RSQ_OK) { /* acks refused with the last read */
        rc = cons->ack_fail;
        cons->ack_fail = RSQ_OK;
        return rsq__set_err(cons->c, rc, "%s", cons->ack_err);
    }
    if (!cons->nack && cons->bpos >= cons->nmsg) return RSQ_OK;
    now = rsq__now(cons->c);
    if (cons->nack && now - cons->ack_ms >= (uint64_t)cons->ack_interval_ms && (rc = rsq_consumer_flush(cons)) != RSQ_OK) return rc;
    if (cons->bpos < cons->nmsg && now - cons->batch_ms >= (uint64_t)cons->visibility_ms / 2) {
        cons->batch_ms = now;
        if ((rc = rsq__claim_rest(cons, 0)) != RSQ_OK) return rc;
    }
    return RSQ_OK;
}

/* Pause before another attempt, never past the call's deadline. */
RSQ__INTERN void rsq__cons_backoff(rsq_consumer *cons, int attempt, uint64_t deadline) {
    uint64_t now = rsq__now(cons->c);
    int ms = rsq__backoff_ms(cons->c, attempt);
    if (deadline != UINT64_MAX) ms = (int)RSQ__MIN((uint64_t)ms, deadline > now ? deadline - now : 0);
    rsq__cons_sleep(cons, ms);
}

/* ------------------------------------------------------------------------------------ */
// >>run: rsq_consumer_next, rsq_consumer_step, rsq_consumer_run

/* While a consumer call runs, the client sees its stop flag: waits, reconnects and
   backoffs then give up at once. The final release gets a few bounded attempts. */
RSQ__INTERN rsq_result rsq__stop_now(rsq_consumer *cons) {
    rsq_client *c = cons->c;
    int attempts = c->retry_attempts;
    c->intr = NULL;
    c->call_deadline = 0;
    if (attempts == RSQ_RETRY_FOREVER || attempts > 3) c->retry_attempts = 3;
    rsq_consumer_release(cons);
    c->retry_attempts = attempts;
    return RSQ_STOPPED;
}

/* The argument check of rsq_consumer_next and _step: clears *out. */
RSQ__INTERN rsq_result rsq__check_out(rsq_consumer *cons, const rsq_message **out) {
    if (out)
        *out = NULL;
    if (!cons || !cons->c)
        return RSQ_ERR_ARG;
    if (!out)
        return rsq__set_err(cons->c, RSQ_ERR_ARG, "out is NULL");
    return RSQ_OK;
}

/* rsq_consumer_step: duties (not while a read is in flight: its acks went with it),
   then turns of the fetch state machine until a message, a read in flight, or a read
   that came back empty (RSQ_AGAIN). */
RSQ__INTERN rsq_result rsq__step(rsq_consumer *cons, const rsq_message **out) {
    rsq_result rc = rsq__check_out(cons, out);
    if (rc != RSQ_OK)
        return rc;
    if (cons->stop) {
        if (cons->xr_inflight) { /* the reply is still owed */
            rsq_disconnect(cons->c);
            cons->xr_inflight = 0;
        }
        return RSQ_STOPPED;
    }
    if (!cons->xr_inflight && (rc = rsq__duties(cons)) != RSQ_OK)
        return rc;
    if ((rc = rsq__hand_out(cons, out)) != RSQ_EMPTY)
        return rc;
    for (;;) {
        int collecting = cons->xr_inflight;
        rc = rsq__fetch(cons, UINT64_MAX, 1);
        if (rc != RSQ_OK) {
            if (rc != RSQ_AGAIN)
                rsq__group_lost(cons, rc);
            return rc;
        }
        if ((rc = rsq__hand_out(cons, out)) != RSQ_EMPTY)
            return rc;
        if (collecting)
            return RSQ_AGAIN; /* the read came back empty */
    }
}

/* After a failed round of rsq_consumer_next: 1 when another attempt follows (after a
   pause, never past the deadline), 0 when rc is the call's result. A lost group is
   made again at once. A refused connect is final for one server (the client retried
   it already), not in a cluster, where a node may refuse while its replica takes
   over: the next attempt asks for the slot map again. */
RSQ__INTERN int rsq__next_again(rsq_consumer *cons, rsq_result rc, int *attempt, uint64_t deadline) {
    rsq_client *c = cons->c;
    if (rsq__group_lost(cons, rc)) {
        if (*attempt > 0)
            rsq__cons_backoff(cons, *attempt, deadline);
        (*attempt)++;
        return 1;
    }
    if ((rsq__link_error(rc) || rc == RSQ_ERR_RETRY || rc == RSQ_ERR_REPLY || rc == RSQ_ERR_MOVED) &&
        (rc != RSQ_ERR_CONNECT || rsq__server_full(c, rc) || RSQ__IN_CLUSTER(c)) && rc != RSQ_ERR_RESOLVE &&
        rsq__retry_allowed(c, *attempt)) {
        rsq__cons_backoff(cons, *attempt, deadline);
        (*attempt)++;
        return 1;
    }
    return 0;
}

/* rsq_consumer_next: rounds of duties, hand-out and the fetch state machine (blocking)
   until a message, the deadline, a stop, or an error retries could not cure. */
RSQ__INTERN rsq_result rsq__next(rsq_consumer *cons, const rsq_message **out, int timeout_ms) {
    rsq_client *c;
    uint64_t deadline;
    int attempt = 0;
    rsq_result rc = rsq__check_out(cons, out);
    if (rc != RSQ_OK)
        return rc;
    c = cons->c;
    if (timeout_ms == RSQ_TIMEOUT_DEFAULT)
        timeout_ms = cons->block_ms;
    deadline = timeout_ms >= RSQ_TIMEOUT_FOREVER ? UINT64_MAX : rsq__now(c) + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
    /* every wait inside (reads, connects, backoffs) ends by the deadline plus the margin */
    c->call_deadline = deadline == UINT64_MAX ? 0 : deadline + (uint64_t)c->block_margin_ms;
    for (;;) {
        if (cons->stop)
            return RSQ_STOPPED;
        rc = rsq__duties(cons);
        if (rc == RSQ_OK) {
            if ((rc = rsq__hand_out(cons, out)) != RSQ_EMPTY)
                return rc;
            rc = rsq__fetch(cons, deadline, 0);
        }
        if (rc == RSQ_OK || rc == RSQ_STOPPED) {
            if (cons->nmsg == 0 && !cons->stop && rsq__now(c) >= deadline)
                return cons->ack_fail != RSQ_OK ? rsq__duties(cons) : RSQ_EMPTY;
            attempt = 0;
            continue;
        }
        if (rsq__now(c) >= deadline || !rsq__next_again(cons, rc, &attempt, deadline))
            return rc;
    }
}

RSQDEF rsq_result rsq_consumer_step(rsq_consumer *cons, const rsq_message **out) {
    rsq_result rc;
    if (!cons || !cons->c) return RSQ_ERR_ARG;
    cons->c->intr = &cons->stop;
    rc = rsq__step(cons, out);
    cons->c->intr = NULL;
    if (cons->stop && rc != RSQ_OK && rc != RSQ_AGAIN) rc = rsq__stop_now(cons);
    if (rc == RSQ_OK || rc == RSQ_AGAIN)
        cons->c->err[0] = '\0'; /* rsq_errstr tells of the last failure only */
    return rc;
}

RSQDEF rsq_result rsq_consumer_next(rsq_consumer *cons, const rsq_message **out, int timeout_ms) {
    rsq_result rc;
    if (!cons || !cons->c) return RSQ_ERR_ARG;
    cons->c->intr = &cons->stop;
    rc = rsq__next(cons, out, timeout_ms);
    cons->c->intr = NULL;
    cons->c->call_deadline = 0;
    if (cons->stop && rc != RSQ_OK) rc = rsq__stop_now(cons);
    if (rc == RSQ_OK || rc == RSQ_EMPTY)
        cons->c->err[0] = '\0'; /* rsq_errstr tells of the last failure only */
    return rc;
}

RSQDEF int rsq_consumer_backoff(const rsq_consumer *cons, const rsq_message *m) {
    double d;
    long long i;
    int j;
    if (!cons || !m) return 0;
    d = cons->retry_delay_ms;
    for (i = 1; i < m->deliveries && d < cons->retry_max_ms; i++) d *= cons->retry_factor;
    if (d > cons->retry_max_ms) d = cons->retry_max_ms;
    j = (int)(d * cons->retry_jitter_pct / 100);
    if (j > 0) d += (double)(rsq__rand(cons->c) % (uint64_t)(2 * (uint64_t)j + 1)) - j;
    if (d > cons->retry_max_ms) d = cons->retry_max_ms; /* jitter never past the cap */
    return d < 1 ? 1 : (int)d;
}

RSQDEF rsq_result rsq_consumer_run(rsq_consumer *cons, rsq_handler handler, void *user) {
    if (!cons || !cons->c || !handler) return cons && cons->c ? rsq__set_err(cons->c, RSQ_ERR_ARG, "handler is NULL") : RSQ_ERR_ARG;
    for (;;) {
        const rsq_message *m;
        rsq_action act;
        rsq_result rc = rsq_consumer_next(cons, &m, RSQ_TIMEOUT_FOREVER);
        if (rc == RSQ_EMPTY) continue;
        if (rc != RSQ_OK) return rc;
        cons->error[0] = '\0';
        cons->retry_delay_next = 0; /* 0: the retry policy's */
        act = handler(user, cons, m);
        switch (act) {
        case RSQ_ACTION_ACK: rc = rsq_ack(cons, m); break;
        case RSQ_ACTION_RETRY: rc = rsq_nack(cons, m, 0, NULL); break;
        case RSQ_ACTION_RETRY_LATER:
            rc = rsq_nack(cons, m, cons->retry_delay_next > 0 ? cons->retry_delay_next : rsq_consumer_backoff(cons, m), NULL);
            break;
        case RSQ_ACTION_DEAD_LETTER: rc = rsq_dead_letter(cons, m, cons->error[0] ? cons->error : "dead-lettered by the handler"); break;
        default: rc = rsq__set_err(cons->c, RSQ_ERR_ARG, "handler returned an unknown action");
        }
        /* a lost link leaves the message pending: it comes back (resume or reclaim) */
        if (rc != RSQ_OK && !rsq__link_error(rc) && rc != RSQ_ERR_RETRY && rc != RSQ_ERR_NOGROUP && rc != RSQ_ERR_MOVED) return rc;
    }
}

#endif /* RSQ__IMPLEMENTED */
#endif /* RSQ_IMPLEMENTATION */

/*
   VERSIONS
   ========
   0.1.0  the first version: RESP2/RESP3 decoder with limits, the transport contract
          and socket transport, URL parsing, client (handshake, commands, pipelines,
          reconnects, Redis Cluster), producer (batches, async, retention, WAIT),
          consumer groups (resume, reclaim, nack, leases, dead letters and replay),
          administration and metrics. The change history is the repository's log.

   LICENCE
   =======
   MIT License

   Copyright (c) 2026 the rsq authors

   Permission is hereby granted, free of charge, to any person obtaining a copy of this
   software and associated documentation files (the "Software"), to deal in the Software
   without restriction, including without limitation the rights to use, copy, modify,
   merge, publish, distribute, sublicense, and/or sell copies of the Software, and to
   permit persons to whom the Software is furnished to do so, subject to the following
   conditions:

   The above copyright notice and this permission notice shall be included in all copies
   or substantial portions of the Software.

   THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
   INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A
   PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT
   HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF
   CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE
   OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
*/
