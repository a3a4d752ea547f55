/*
 * QuantKit from C: quantize a layer with GPTQ and AWQ through the C interface, pack it, write and
 * read safetensors, unpack, and check every result against the `quantkit` command line.
 *
 *   cc -std=c11 -I Sources/CQuantKit/include Examples/c/quantize_layer.c -L .build/release -lQuantKitC \
 *      -Wl,-rpath,"$PWD/.build/release" -lm -o quantize_layer
 *   ./quantize_layer WORK_DIR .build/release/quantkit [MODEL_DIR]
 *
 * With MODEL_DIR it also quantizes that checkpoint (RTN), stopping one run from the progress
 * callback first. Exits 0 when every check passes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "quantkit.h"

static int failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); failures++; } } while (0)
#define OK(call) do { qk_status s_ = (call); if (s_ != QK_OK) { fprintf(stderr, "FAIL %s:%d: %s -> %d: %s\n", \
    __FILE__, __LINE__, #call, (int)s_, qk_last_error()); exit(1); } } while (0)

enum { OUT = 96, IN = 256, TOKENS = 1024 };

/* A deterministic generator (xorshift) so the C and command-line runs see the same data. */
static unsigned long long state = 88172645463325252ULL;
static float uniform(void) {
    state ^= state << 13; state ^= state >> 7; state ^= state << 17;
    return (float)((state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* The tensor named `name` in `list`, or NULL. */
static int find(const qk_tensors *list, const char *name, qk_tensor *out) {
    for (int64_t i = 0; i < qk_tensors_count(list); i++) {
        OK(qk_tensors_get(list, i, out));
        if (strcmp(out->name, name) == 0) return 1;
    }
    return 0;
}

/* Quantizes with `method` through the C interface and compares every packed tensor with what
 * `quantkit layer --method NAME` wrote for the same input. */
static void compare_with_cli(int32_t method, const char *name, const char *dir, const char *quantkit,
                             const float *weight, const float *x) {
    qk_options options;
    OK(qk_options_init(&options, method));
    qk_quantizer *q = NULL;
    OK(qk_quantizer_create(&options, IN, &q));
    OK(qk_quantizer_add_activations(q, x, TOKENS / 2)); /* streamed in two chunks */
    OK(qk_quantizer_add_activations(q, x + (TOKENS / 2) * IN, TOKENS / 2));
    qk_layer *layer = NULL;
    OK(qk_quantizer_quantize(q, weight, OUT, &layer));
    double err = qk_layer_relative_error(layer), rtn = qk_layer_rtn_relative_error(layer);
    printf("%s: relative output error %.6f (RTN %.6f)\n", name, err, rtn);
    CHECK(err > 0 && err < rtn, "%s should beat RTN: %g vs %g", name, err, rtn);

    qk_tensors *packed = NULL;
    OK(qk_layer_pack(layer, QK_FORMAT_RECOMMENDED, "", &packed));
    char cli_out[1024], command[4096];
    snprintf(cli_out, sizeof cli_out, "%s/cli-%s.safetensors", dir, name);
    snprintf(command, sizeof command, "'%s' layer --input '%s/input.safetensors' --out '%s' --method %s > /dev/null",
             quantkit, dir, cli_out, name);
    CHECK(system(command) == 0, "%s failed", command);
    qk_tensors *cli = NULL;
    OK(qk_safetensors_read(cli_out, &cli));
    for (int64_t i = 0; i < qk_tensors_count(packed); i++) {
        qk_tensor mine, theirs;
        OK(qk_tensors_get(packed, i, &mine));
        CHECK(find(cli, mine.name, &theirs), "%s: the command line wrote no %s", name, mine.name);
        CHECK(theirs.byte_count == mine.byte_count && memcmp(theirs.data, mine.data, (size_t)mine.byte_count) == 0,
              "%s: %s differs from the command line's", name, mine.name);
    }

    /* Unpacking the packed tensors gives back the dequantized weight (÷ AWQ scales for AWQ). */
    int64_t count = qk_tensors_count(packed);
    qk_tensor *views = calloc((size_t)count, sizeof *views);
    for (int64_t i = 0; i < count; i++) OK(qk_tensors_get(packed, i, &views[i]));
    float *unpacked = malloc(sizeof(float) * OUT * IN), *effective = malloc(sizeof(float) * OUT * IN);
    float scales[IN];
    int has_scales = qk_layer_awq_scales(layer, scales, IN) == QK_OK;
    CHECK(has_scales == (method == QK_METHOD_AWQ || method == QK_METHOD_AWQ_GPTQ), "%s: AWQ scales %s", name, has_scales ? "present" : "missing");
    OK(qk_unpack(views, count, "", qk_layer_format(layer), options.bits, options.group_size, options.symmetric, OUT, IN, unpacked, NULL));
    OK(qk_layer_dequantized(layer, effective, OUT * IN));
    double worst = 0;
    for (int r = 0; r < OUT; r++)
        for (int c = 0; c < IN; c++) {
            float u = unpacked[r * IN + c] / (has_scales ? scales[c] : 1.0f), e = effective[r * IN + c];
            double d = fabs((double)u - e) / fmax(fabs(e), 1e-6);
            if (d > worst) worst = d;
        }
    CHECK(worst < 1e-5, "%s: unpacked weight differs from the dequantized one by %g", name, worst);
    free(views); free(unpacked); free(effective);
    qk_tensors_free(cli);
    qk_tensors_free(packed);
    qk_layer_free(layer);
    qk_quantizer_free(q);
}

static int32_t stop_after_two(void *user, int32_t done, int32_t total, const char *stage) {
    (void)total; (void)stage;
    ++*(int *)user;
    return done >= 2; /* nonzero: stop */
}

static int32_t count_calls(void *user, int32_t done, int32_t total, const char *stage) {
    (void)done; (void)total; (void)stage;
    ++*(int *)user;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s WORK_DIR QUANTKIT_BINARY [MODEL_DIR]\n", argv[0]); return 2; }
    const char *dir = argv[1], *quantkit = argv[2];
    printf("QuantKit %s, OpenBLAS kernels %s\n", qk_version(), qk_blas_core());
    OK(qk_blas_self_test());

    /* A weight and activations with a few loud input channels, written as the CLI's input file. */
    float *weight = malloc(sizeof(float) * OUT * IN), *x = malloc(sizeof(float) * TOKENS * IN);
    for (int i = 0; i < OUT * IN; i++) weight[i] = 0.05f * uniform();
    for (int i = 0; i < TOKENS * IN; i++) x[i] = uniform() * ((i % IN) % 16 == 3 ? 10.0f : 1.0f);
    qk_tensor input[2] = {
        {.name = "weight", .dtype = "F32", .rank = 2, .shape = {OUT, IN}, .data = weight, .byte_count = (int64_t)sizeof(float) * OUT * IN},
        {.name = "inputs", .dtype = "F32", .rank = 2, .shape = {TOKENS, IN}, .data = x, .byte_count = (int64_t)sizeof(float) * TOKENS * IN},
    };
    char path[1024];
    snprintf(path, sizeof path, "%s/input.safetensors", dir);
    OK(qk_safetensors_write(path, input, 2));

    compare_with_cli(QK_METHOD_GPTQ, "gptq", dir, quantkit, weight, x);
    compare_with_cli(QK_METHOD_AWQ, "awq", dir, quantkit, weight, x);

    /* Errors: a code and a message naming the fault; nothing crashes. */
    qk_options bad;
    OK(qk_options_init(&bad, QK_METHOD_GPTQ));
    bad.bits = 5;
    qk_quantizer *none = NULL;
    CHECK(qk_quantizer_create(&bad, IN, &none) == QK_INVALID_ARGUMENT && none == NULL, "bits 5 accepted");
    CHECK(strstr(qk_last_error(), "5") != NULL, "message does not name the bits: %s", qk_last_error());
    qk_tensors *missing = NULL;
    CHECK(qk_safetensors_read("/nonexistent/file.safetensors", &missing) != QK_OK, "a missing file was read");
    CHECK(strstr(qk_last_error(), "/nonexistent/file.safetensors") != NULL, "message does not name the file: %s", qk_last_error());
    CHECK(qk_options_init(NULL, QK_METHOD_GPTQ) == QK_INVALID_ARGUMENT, "NULL options accepted");

    if (argc > 3) {
        qk_options rtn;
        OK(qk_options_init(&rtn, QK_METHOD_RTN));
        char out[512];
        snprintf(out, sizeof out, "%s/model-rtn", dir);
        int calls = 0;
        CHECK(qk_quantize_model(argv[3], NULL, out, &rtn, stop_after_two, &calls) == QK_INTERRUPTED, "the callback did not stop the run");
        struct stat st;
        CHECK(stat(out, &st) != 0, "a stopped run wrote %s", out);
        calls = 0;
        rtn.resume = 1; /* continue from the blocks the stopped run saved */
        OK(qk_quantize_model(argv[3], NULL, out, &rtn, count_calls, &calls));
        snprintf(path, sizeof path, "%s/model.safetensors", out);
        CHECK(stat(path, &st) == 0 && st.st_size > 0, "no %s", path);
        printf("model: RTN checkpoint in %s (%d progress calls)\n", out, calls);
    }
    free(weight); free(x);
    if (failures) { fprintf(stderr, "%d check(s) failed\n", failures); return 1; }
    printf("all C interface checks passed\n");
    return 0;
}
