/* A persistent thread pool linked into every CPU artifact (see docs/abi.md).
 *
 * Every name this file defines is `static` or in the reserved `__tensorc_` namespace, which no
 * entry point `tensorc_F` can reach (docs/abi.md), so a function of any name links beside it.
 *
 * Generated code calls
 *     __tensorc_parallel_for(fn, ctx, n, grain)
 * which runs fn(ctx, begin, end) over [0, n) in chunks, on the calling thread plus the pool's
 * workers. The pool starts on first use (never per call) with TENSORC_NUM_THREADS threads
 * (default: the CPUs this process may run on), and small loops (n <= grain) run serially.
 *
 * Concurrency: one parallel loop owns the workers at a time; a call that finds them busy (another
 * thread's call, or a nested loop inside a worker) runs serially on its own thread, so there is
 * no deadlock and no oversubscription. Workers spin briefly before sleeping, so back-to-back
 * kernels do not pay a futex wake-up each.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#define TC_HIDDEN __attribute__((visibility("hidden")))
#define TC_MAX_THREADS 256
#define TC_SPIN_ITERATIONS 2000

typedef void (*tc_task_fn)(void *ctx, int64_t begin, int64_t end);

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t done;
    atomic_int busy;               /* 1 while a parallel loop owns the workers */
    /* The job ticket: generation (bits 32-63), chunk count (16-31), next chunk (0-15). A chunk
     * is claimed by a compare-and-swap that also checks the generation, so a worker that wakes
     * late can never take a chunk of a newer job; the job's parameters below are written
     * before its ticket is published (release) and stay valid while any chunk is unfinished. */
    atomic_uint_fast64_t ticket;
    atomic_int_fast64_t completed; /* chunks of the current job finished */
    tc_task_fn fn;
    void *ctx;
    int64_t n;
    int64_t chunk;
    int workers;                   /* threads besides the caller */
} tc_pool;

static tc_pool pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
};
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static __thread int inside_worker = 0;

static uint64_t generation_of(uint64_t ticket) { return ticket >> 32; }
static int64_t chunks_of(uint64_t ticket) { return (int64_t)((ticket >> 16) & 0xffff); }

/* Claim the next chunk of job `generation`; 0 when it has none left (or is over). */
static int claim(uint64_t generation, int64_t *index) {
    uint64_t ticket = atomic_load_explicit(&pool.ticket, memory_order_acquire);
    for (;;) {
        if (generation_of(ticket) != generation) return 0;
        int64_t next = (int64_t)(ticket & 0xffff);
        if (next >= chunks_of(ticket)) return 0;
        if (atomic_compare_exchange_weak_explicit(&pool.ticket, &ticket, ticket + 1,
                                                  memory_order_acq_rel, memory_order_acquire)) {
            *index = next;
            return 1;
        }
    }
}

static void run_chunks(uint64_t generation, int64_t chunks) {
    int64_t index;
    while (claim(generation, &index)) {
        int64_t begin = index * pool.chunk;
        int64_t end = begin + pool.chunk < pool.n ? begin + pool.chunk : pool.n;
        pool.fn(pool.ctx, begin, end);
        if (atomic_fetch_add(&pool.completed, 1) + 1 == chunks) {
            pthread_mutex_lock(&pool.lock);
            pthread_cond_broadcast(&pool.done);
            pthread_mutex_unlock(&pool.lock);
        }
    }
}

static void *worker_main(void *unused) {
    (void)unused;
    inside_worker = 1;
    uint64_t seen = 0;
    for (;;) {
        int spins = 0;
        uint64_t ticket;
        while (generation_of(ticket = atomic_load_explicit(&pool.ticket, memory_order_acquire)) ==
               seen) {
            if (++spins < TC_SPIN_ITERATIONS) {
                sched_yield();
                continue;
            }
            pthread_mutex_lock(&pool.lock);
            while (generation_of(atomic_load(&pool.ticket)) == seen)
                pthread_cond_wait(&pool.wake, &pool.lock);
            pthread_mutex_unlock(&pool.lock);
        }
        seen = generation_of(ticket);
        run_chunks(seen, chunks_of(ticket));
    }
    return NULL;
}

static int requested_threads(void) {
    int available = 1;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) available = CPU_COUNT(&set);
    const char *text = getenv("TENSORC_NUM_THREADS");
    if (text != NULL && *text != '\0') {
        long wanted = strtol(text, NULL, 10);
        if (wanted >= 1 && wanted < available) available = (int)wanted;
    }
    if (available > TC_MAX_THREADS) available = TC_MAX_THREADS;
    return available < 1 ? 1 : available;
}

static void start_pool(void) {
    int threads = requested_threads();
    pool.workers = 0;
    for (int i = 1; i < threads; ++i) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&thread, &attributes, worker_main, NULL) == 0) pool.workers++;
        pthread_attr_destroy(&attributes);
    }
}

TC_HIDDEN int __tensorc_num_threads(void) {
    pthread_once(&pool_once, start_pool);
    return pool.workers + 1;
}

TC_HIDDEN void __tensorc_parallel_for(tc_task_fn fn, void *ctx, int64_t n, int64_t grain) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    if (n <= grain || inside_worker) {
        fn(ctx, 0, n);
        return;
    }
    pthread_once(&pool_once, start_pool);
    int expected = 0;
    if (pool.workers == 0 || !atomic_compare_exchange_strong(&pool.busy, &expected, 1)) {
        fn(ctx, 0, n);
        return;
    }
    int threads = pool.workers + 1;
    int64_t chunks = (n + grain - 1) / grain;
    int64_t wanted = 4 * (int64_t)threads; /* a few chunks per thread balance uneven cores */
    if (chunks > wanted) chunks = wanted;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    pool.chunk = (n + chunks - 1) / chunks;
    chunks = (n + pool.chunk - 1) / pool.chunk; /* <= 4 * TC_MAX_THREADS: fits 16 bits */
    atomic_store(&pool.completed, 0);
    uint64_t generation = generation_of(atomic_load(&pool.ticket)) + 1;
    pthread_mutex_lock(&pool.lock);
    atomic_store_explicit(&pool.ticket, (generation << 32) | ((uint64_t)chunks << 16),
                          memory_order_release);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    inside_worker = 1;
    run_chunks(generation, chunks);
    inside_worker = 0;
    /* Wait for the chunks other threads took, not for every worker: a worker that has not
     * woken up yet can no longer claim anything of this job. */
    if (atomic_load(&pool.completed) < chunks) {
        int spins = 0;
        while (atomic_load(&pool.completed) < chunks && ++spins < TC_SPIN_ITERATIONS)
            sched_yield();
        pthread_mutex_lock(&pool.lock);
        while (atomic_load(&pool.completed) < chunks) pthread_cond_wait(&pool.done, &pool.lock);
        pthread_mutex_unlock(&pool.lock);
    }
    atomic_store(&pool.busy, 0);
}

/* ---- the Python runtime's fast call ----------------------------------------------------------
 *
 *     int32_t __tensorc_invoke(const uint64_t *packet)
 *
 * packet = { entry, n_args, n_results, n_dims, arg_fields[n_args], result_fields[n_results],
 *            dims[n_dims] }: `entry` is an entry point of this artifact, and each field is the
 * address of a pointer holding an array's data address (NumPy's PyArrayObject data member,
 * whose offset the runtime verifies at import). Reads the data addresses and returns
 * entry(args, results, dims, NULL). This lets the runtime pass addresses it computes with one
 * addition instead of reading each one through ctypes (tensorc_runtime/native.py). Returns -1
 * without calling anything when the counts exceed TC_INVOKE_MAX. */

#define TC_INVOKE_MAX 64

typedef int32_t (*tc_entry_fn)(void *const *args, void *const *results, const int64_t *dims,
                               void *error);

/* Reads the data addresses behind `fields` (args, then results; the dims follow them) and calls. */
static int32_t tc_call_fields(const uint64_t *packet, const uint64_t *fields) {
    tc_entry_fn entry = (tc_entry_fn)(uintptr_t)packet[0];
    uint64_t n_args = packet[1], n_results = packet[2];
    if (n_args > TC_INVOKE_MAX || n_results > TC_INVOKE_MAX) return -1;
    void *args[TC_INVOKE_MAX + 1];
    void *results[TC_INVOKE_MAX + 1];
    for (uint64_t i = 0; i < n_args; ++i) args[i] = *(void *const *)(uintptr_t)fields[i];
    for (uint64_t i = 0; i < n_results; ++i)
        results[i] = *(void *const *)(uintptr_t)fields[n_args + i];
    return entry(args, results, (const int64_t *)(fields + n_args + n_results), NULL);
}

__attribute__((visibility("default"))) int32_t __tensorc_invoke(const uint64_t *packet) {
    return tc_call_fields(packet, packet + 4);
}

/*     int32_t __tensorc_invoke_checked(const uint64_t *packet)
 *
 * packet = { entry, n_args, n_results, n_dims, flags_offset, flags_required, arg_fields[n_args],
 *            result_fields[n_results], dims[n_dims] }: as __tensorc_invoke, but first checks each
 * argument's flags, the int32 at (field + flags_offset) (NumPy's PyArrayObject flags member,
 * whose offset from the data member the runtime verifies at import). Unless each argument has
 * every bit of `flags_required` (C-contiguous and aligned), it returns TC_INVOKE_DECLINED
 * without calling anything, and the runtime takes its general path, which copies the array.
 * This moves the per-argument `arr.flags` check (a new Python object per call) into C. */

#define TC_INVOKE_DECLINED -2

__attribute__((visibility("default"))) int32_t __tensorc_invoke_checked(const uint64_t *packet) {
    uint64_t n_args = packet[1];
    if (n_args > TC_INVOKE_MAX) return -1;
    int64_t flags_offset = (int64_t)packet[4];
    int32_t required = (int32_t)packet[5];
    const uint64_t *fields = packet + 6;
    for (uint64_t i = 0; i < n_args; ++i) {
        int32_t flags = *(const int32_t *)(uintptr_t)(fields[i] + (uint64_t)flags_offset);
        if ((flags & required) != required) return TC_INVOKE_DECLINED;
    }
    return tc_call_fields(packet, fields);
}
