/* A persistent thread pool linked into every CPU artifact (see docs/abi.md).
 *
 * Generated code calls
 *     tensorc_parallel_for(fn, ctx, n, grain)
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
    atomic_uint_fast64_t generation;
    atomic_int remaining;          /* workers still running the current job */
    atomic_int_fast64_t next_chunk;
    tc_task_fn fn;
    void *ctx;
    int64_t n;
    int64_t chunk;
    int64_t chunks;
    int workers;                   /* threads besides the caller */
} tc_pool;

static tc_pool pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
};
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static __thread int inside_worker = 0;

static void run_chunks(void) {
    for (;;) {
        int64_t index = atomic_fetch_add(&pool.next_chunk, 1);
        if (index >= pool.chunks) return;
        int64_t begin = index * pool.chunk;
        int64_t end = begin + pool.chunk < pool.n ? begin + pool.chunk : pool.n;
        pool.fn(pool.ctx, begin, end);
    }
}

static void *worker_main(void *unused) {
    (void)unused;
    inside_worker = 1;
    uint_fast64_t seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&pool.generation, memory_order_acquire) == seen) {
            if (++spins < TC_SPIN_ITERATIONS) {
                sched_yield();
                continue;
            }
            pthread_mutex_lock(&pool.lock);
            while (atomic_load(&pool.generation) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
            pthread_mutex_unlock(&pool.lock);
        }
        seen = atomic_load(&pool.generation);
        run_chunks();
        if (atomic_fetch_sub(&pool.remaining, 1) == 1) {
            pthread_mutex_lock(&pool.lock);
            pthread_cond_signal(&pool.done);
            pthread_mutex_unlock(&pool.lock);
        }
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

TC_HIDDEN int tensorc_num_threads(void) {
    pthread_once(&pool_once, start_pool);
    return pool.workers + 1;
}

TC_HIDDEN void tensorc_parallel_for(tc_task_fn fn, void *ctx, int64_t n, int64_t grain) {
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
    pool.chunks = (n + pool.chunk - 1) / pool.chunk;
    atomic_store(&pool.next_chunk, 0);
    atomic_store(&pool.remaining, pool.workers);
    pthread_mutex_lock(&pool.lock);
    atomic_fetch_add_explicit(&pool.generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    inside_worker = 1;
    run_chunks();
    inside_worker = 0;
    if (atomic_load(&pool.remaining) > 0) {
        int spins = 0;
        while (atomic_load(&pool.remaining) > 0 && ++spins < TC_SPIN_ITERATIONS) sched_yield();
        pthread_mutex_lock(&pool.lock);
        while (atomic_load(&pool.remaining) > 0) pthread_cond_wait(&pool.done, &pool.lock);
        pthread_mutex_unlock(&pool.lock);
    }
    atomic_store(&pool.busy, 0);
}

/* ---- the Python runtime's fast call ----------------------------------------------------------
 *
 *     int32_t tensorc_invoke(const uint64_t *packet)
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

__attribute__((visibility("default"))) int32_t tensorc_invoke(const uint64_t *packet) {
    tc_entry_fn entry = (tc_entry_fn)(uintptr_t)packet[0];
    uint64_t n_args = packet[1], n_results = packet[2];
    if (n_args > TC_INVOKE_MAX || n_results > TC_INVOKE_MAX) return -1;
    void *args[TC_INVOKE_MAX + 1];
    void *results[TC_INVOKE_MAX + 1];
    const uint64_t *fields = packet + 4;
    for (uint64_t i = 0; i < n_args; ++i) args[i] = *(void *const *)(uintptr_t)fields[i];
    for (uint64_t i = 0; i < n_results; ++i)
        results[i] = *(void *const *)(uintptr_t)fields[n_args + i];
    return entry(args, results, (const int64_t *)(fields + n_args + n_results), NULL);
}
