/*
 * quantkit.h — the C interface of QuantKit (libQuantKitC.so).
 *
 * Quantize linear layers and whole checkpoints with GPTQ, AWQ, AWQ+GPTQ or RTN; pack and unpack
 * the GPTQ (v1, v2), AutoAWQ GEMM and compressed-tensors layouts; read and write safetensors.
 *
 * Conventions
 *  - Every function that can fail returns a qk_status; QK_OK is 0. After a failure,
 *    qk_last_error() returns a message naming the argument, file or tensor at fault.
 *  - Matrices are dense, row-major: a weight is float[out_features * in_features], activations
 *    float[tokens * in_features], a Hessian double[in_features * in_features].
 *  - Ownership: objects returned through an out-pointer (qk_quantizer, qk_layer, qk_tensors) are
 *    owned by the caller and released with their _free function (NULL is accepted). Pointers
 *    inside a qk_tensor filled by QuantKit (name, dtype, data) belong to the object they came from
 *    and stay valid until it is freed. Buffers the caller passes in are only read during the call
 *    (never kept); output buffers are written during the call only.
 *  - Objects are not thread-safe: use one from one thread at a time. Different objects may be
 *    used from different threads at once; results are then exact to the last bits only if no
 *    model call (qk_quantize_model) runs beside them: its attention sets OpenBLAS's process-wide
 *    thread count to 1 while it runs, and OpenBLAS rounds differently on one thread.
 *  - Defaults: qk_options_init() fills in QuantKit's recommended settings for a method — the same
 *    as `quantkit quantize --method M` with no other option.
 */
#ifndef QUANTKIT_H
#define QUANTKIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QK_ABI_VERSION 1

typedef enum qk_status {
    QK_OK = 0,
    QK_INVALID_ARGUMENT = 1, /* a bad option, shape, pointer or missing input */
    QK_IO_ERROR = 2,         /* a file or folder could not be read or written */
    QK_FORMAT_ERROR = 3,     /* a malformed file or tensor (safetensors, config, packed layout) */
    QK_NUMERICAL_ERROR = 4,  /* NaN/Inf in weights or activations, a solve with no finite result */
    QK_OUT_OF_MEMORY = 5,    /* the predicted peak exceeds the memory available */
    QK_INTERRUPTED = 6,      /* stopped by the progress callback or a signal; nothing written */
    QK_INTERNAL_ERROR = 7
} qk_status;

typedef enum qk_method { QK_METHOD_RTN = 0, QK_METHOD_GPTQ = 1, QK_METHOD_AWQ = 2, QK_METHOD_AWQ_GPTQ = 3 } qk_method;

typedef enum qk_format {
    QK_FORMAT_RECOMMENDED = -1, /* gptq for symmetric grids; awq for the AWQ methods' asymmetric 4-bit grids; else gptq-v2 */
    QK_FORMAT_GPTQ = 0,
    QK_FORMAT_GPTQ_V2 = 1,
    QK_FORMAT_AWQ = 2,
    QK_FORMAT_COMPRESSED_TENSORS = 3
} qk_format;

/* Settings of a quantization. Fields set to -1 (or 0 for damping and the calibration fields)
 * take the recommended value for the method. */
typedef struct qk_options {
    int32_t method;        /* qk_method */
    int32_t bits;          /* 2, 3, 4 or 8 */
    int32_t group_size;    /* columns per group, -1 for whole rows */
    int32_t symmetric;     /* 1, 0, or -1: the method's own grid (GPTQ/RTN symmetric, AWQ asymmetric) */
    int32_t format;        /* qk_format */
    int32_t act_order;     /* GPTQ methods: 1, 0, or -1 (on) */
    int32_t static_groups; /* with act-order: 1, 0, or -1 (on) */
    double damping;        /* GPTQ damping fraction of mean(diag H); 0: 0.01 */
    int32_t samples;       /* whole-model runs: calibration windows; 0: 128 */
    int32_t sequence_length; /* tokens per window; 0: 512 */
    uint64_t seed;         /* calibration sampler seed */
    int64_t max_shard_bytes; /* whole-model runs: largest output shard; 0: one model.safetensors */
    int32_t resume;        /* whole-model runs: 1 continues a stopped run from its checkpoint in OUTPUT.partial */
} qk_options;

/* A tensor: a view of bytes owned by a qk_tensors or qk_layer, or (for qk_safetensors_write and
 * qk_unpack) by the caller. */
typedef struct qk_tensor {
    const char *name;      /* NUL-terminated */
    const char *dtype;     /* safetensors name: "F32", "F16", "BF16", "I32", "I64", "U8", ... */
    int32_t rank;          /* number of dimensions, at most 8 */
    int64_t shape[8];
    const void *data;      /* little-endian elements, row-major */
    int64_t byte_count;
} qk_tensor;

typedef struct qk_quantizer qk_quantizer; /* one layer's quantization: settings + input statistics */
typedef struct qk_layer qk_layer;         /* a quantized layer */
typedef struct qk_tensors qk_tensors;     /* a list of tensors */

/* "0.1.0" — static storage. */
const char *qk_version(void);
/* The message of the last failed call on this thread ("" if none); valid until the next failing call on it. */
const char *qk_last_error(void);

/* OpenBLAS: the kernel set loaded in this process (openblas_get_corename()), and the one QuantKit
 * would choose for this CPU — "" when the loaded one is right, OPENBLAS_CORETYPE is set, or
 * QUANTKIT_BLAS_AUTOSELECT=0. OpenBLAS reads OPENBLAS_CORETYPE when it is loaded, so a host that
 * wants the better kernels sets it before loading this library (the `quantkit` executable and
 * the Python package do this). Both strings are static. */
const char *qk_blas_core(void);
const char *qk_blas_recommended_core(void);
/* Checks sgemm and dgemm of the loaded kernels against a naive product: QK_OK, or
 * QK_NUMERICAL_ERROR with the difference in qk_last_error(). */
qk_status qk_blas_self_test(void);

/* Fills *options with the recommended settings for `method` (bits 4, group size 128, ...). */
qk_status qk_options_init(qk_options *options, int32_t method);

/* --- one layer ------------------------------------------------------------------------------ */

/* A quantizer for layers with `in_features` inputs. */
qk_status qk_quantizer_create(const qk_options *options, int64_t in_features, qk_quantizer **out);
/* Adds calibration activations float[tokens * in_features] (may be called repeatedly: the
 * Hessian is accumulated as they stream; the AWQ methods also keep the rows for their search). */
qk_status qk_quantizer_add_activations(qk_quantizer *q, const float *activations, int64_t tokens);
/* Sets the Hessian double[in_features * in_features] (Σ xᵀx up to a positive factor) instead of
 * activations. The AWQ methods need activations. */
qk_status qk_quantizer_set_hessian(qk_quantizer *q, const double *hessian);
/* Quantizes weight float[out_features * in_features]. */
qk_status qk_quantizer_quantize(qk_quantizer *q, const float *weight, int64_t out_features, qk_layer **out);
void qk_quantizer_free(qk_quantizer *q);

/* ‖(W − Ŵ)Xᵀ‖² / ‖WXᵀ‖² over the calibration data; NaN without data (RTN). */
double qk_layer_relative_error(const qk_layer *layer);
/* The same for plain RTN on the same grid; NaN without data. */
double qk_layer_rtn_relative_error(const qk_layer *layer);
/* The weight the layer applies to its unscaled input, into float[out_features * in_features]. */
qk_status qk_layer_dequantized(const qk_layer *layer, float *out, int64_t count);
/* The AWQ scales (the layer's input must be divided by them) into float[in_features];
 * returns QK_INVALID_ARGUMENT for RTN and GPTQ, which have none. */
qk_status qk_layer_awq_scales(const qk_layer *layer, float *out, int64_t count);
/* The layer's format (qk_format, never QK_FORMAT_RECOMMENDED): the options' one resolved. */
int32_t qk_layer_format(const qk_layer *layer);
/* The settings the layer was quantized with, every recommended (-1) field resolved. */
qk_status qk_layer_options(const qk_layer *layer, qk_options *out);
/* The packed tensors in `format` (QK_FORMAT_RECOMMENDED: the options' format), names prefixed
 * with `prefix` + "." (NULL or "": bare names such as "qweight"). */
qk_status qk_layer_pack(const qk_layer *layer, int32_t format, const char *prefix, qk_tensors **out);
void qk_layer_free(qk_layer *layer);

/* Packs a layer given as integer codes and grids into `format`: codes uint8[out_features *
 * in_features] in 0…2^bits−1, scales float[groups * out_features], zeros uint8[groups *
 * out_features] (NULL: the symmetric zero 2^(bits−1)), g_idx int32[in_features] (NULL: column /
 * group_size), with groups = ceil(in_features / group_size) (1 for group_size −1). Every
 * invariant is checked; names are prefixed as in qk_layer_pack. */
qk_status qk_pack(const uint8_t *codes, const float *scales, const uint8_t *zeros, const int32_t *g_idx,
                  int64_t out_features, int64_t in_features, int32_t bits, int32_t group_size, int32_t symmetric,
                  int32_t format, const char *prefix, qk_tensors **out);

/* Unpacks one layer stored under `prefix` in `tensors` (e.g. from qk_safetensors_read) and writes
 * its dequantized weight into float[out_features * in_features]; `codes` (uint8[out * in],
 * may be NULL) receives the integer codes. bits/group_size/symmetric describe the grid. */
qk_status qk_unpack(const qk_tensor *tensors, int64_t count, const char *prefix, int32_t format, int32_t bits,
                    int32_t group_size, int32_t symmetric, int64_t out_features, int64_t in_features,
                    float *dequantized, uint8_t *codes);

/* --- tensors and safetensors files -------------------------------------------------------------- */

int64_t qk_tensors_count(const qk_tensors *tensors);
/* Fills *out with a view of tensor i (0-based), valid until qk_tensors_free. */
qk_status qk_tensors_get(const qk_tensors *tensors, int64_t index, qk_tensor *out);
void qk_tensors_free(qk_tensors *tensors);

/* Reads every tensor of a safetensors file. */
qk_status qk_safetensors_read(const char *path, qk_tensors **out);
/* Writes `count` tensors to `path` (replaced atomically). */
qk_status qk_safetensors_write(const char *path, const qk_tensor *tensors, int64_t count);

/* --- a whole checkpoint ----------------------------------------------------------------------- */

/* Called as each stage of each block starts and after each block (stage "done"); return nonzero
 * to stop: qk_quantize_model then returns QK_INTERRUPTED, leaves `output_dir` as it was and keeps
 * the completed blocks in OUTPUT.partial, which the same call with options.resume = 1 continues
 * (byte-identical output). `stage` is valid during the call. */
typedef int32_t (*qk_progress_callback)(void *user_data, int32_t completed_blocks, int32_t total_blocks, const char *stage);

/* Quantizes the Hugging Face checkpoint in `model_dir` into `output_dir` (must not exist),
 * calibrating on the UTF-8 text file `calibration_file` (may be NULL for RTN). `progress` may be NULL.
 * Like the `quantkit` tool, it sets the process's allocator (glibc: mallopt) to keep freed memory
 * instead of mapping and returning large blocks, for the rest of the process: otherwise each
 * buffer of the run is faulted in afresh (docs/design.md, "Freed memory stays in the process"). */
qk_status qk_quantize_model(const char *model_dir, const char *calibration_file, const char *output_dir,
                            const qk_options *options, qk_progress_callback progress, void *user_data);

#ifdef __cplusplus
}
#endif
#endif /* QUANTKIT_H */
