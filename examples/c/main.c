/* Calling a tensorc CPU artifact from C, with no Python: a few SGD steps of examples/mlp.tc's
 * train_step on a synthetic problem (label = index of the largest of the first 10 inputs),
 * then predict. Build and run with ./build.sh (or see the README).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "mlp.h"

enum { N = 64, D = 64, H = 32, C = 10 };

static float uniform(unsigned *state) {
    *state = *state * 1664525u + 1013904223u;
    return (float)(*state >> 8) / (float)(1u << 24) - 0.5f;
}

static void make_batch(unsigned *state, float *x, int32_t *y) {
    for (int i = 0; i < N; ++i) {
        int best = 0;
        for (int j = 0; j < D; ++j) {
            x[i * D + j] = uniform(state);
            if (j < C && x[i * D + j] > x[i * D + best]) best = j;
        }
        y[i] = best;
    }
}

static int check(int32_t code, const tensorc_error *error) {
    if (code == TENSORC_OK) return 0;
    fprintf(stderr, "tensorc error %d: %s\n", code, error->message);
    return 1;
}

int main(void) {
    static float x[N * D], w1[D * H], b1[H], w2[H * C], b2[C];
    static float nw1[D * H], nb1[H], nw2[H * C], nb2[C];
    static int32_t y[N], predicted[N];
    unsigned state = 42;
    for (int i = 0; i < D * H; ++i) w1[i] = 0.3f * uniform(&state);
    for (int i = 0; i < H * C; ++i) w2[i] = 0.3f * uniform(&state);

    const int64_t dims[] = {N, H}; /* the manifest's "symbols" order: N, H */
    float lr = 0.5f, loss = 0.0f, first_loss = 0.0f;
    tensorc_error error;
    for (int step = 0; step < 300; ++step) {
        make_batch(&state, x, y);
        void *const args[] = {x, y, w1, b1, w2, b2, &lr};
        void *const results[] = {nw1, nb1, nw2, nb2, &loss};
        if (check(tensorc_train_step(args, results, dims, &error), &error)) return 1;
        for (int i = 0; i < D * H; ++i) w1[i] = nw1[i];
        for (int i = 0; i < H; ++i) b1[i] = nb1[i];
        for (int i = 0; i < H * C; ++i) w2[i] = nw2[i];
        for (int i = 0; i < C; ++i) b2[i] = nb2[i];
        if (step == 0) first_loss = loss;
        if (step % 100 == 0 || step == 299) printf("step %3d  loss %.4f\n", step, loss);
    }

    make_batch(&state, x, y);
    void *const args[] = {x, w1, b1, w2, b2};
    void *const results[] = {predicted};
    if (check(tensorc_predict(args, results, dims, &error), &error)) return 1;
    int correct = 0;
    for (int i = 0; i < N; ++i) correct += predicted[i] == y[i];
    printf("accuracy on a fresh batch: %d/%d\n", correct, N);
    return loss < first_loss ? 0 : 2;
}
