/*
 * kiln.h: Kiln's stable C interface.
 *
 * Kiln runs latent-diffusion image models (Stable Diffusion 1.x/2.x/XL, SD3, FLUX.1, DiT) on
 * Vulkan GPUs, or on its CPU reference backend. This header is all a C, C++, Rust, Go or Python
 * program needs to embed it: open a model once, generate as often as wanted, close it.
 *
 *     kiln_context *ctx = NULL;
 *     kiln_open_options options;
 *     kiln_open_options_init(&options);
 *     options.backend = "cpu";
 *     if (kiln_open("path/to/model", &options, &ctx) != KILN_OK) {
 *         fprintf(stderr, "%s\n", kiln_last_error(NULL));   (a failed open has no context)
 *     }
 *     kiln_request request;
 *     kiln_request_init(&request);
 *     request.prompt = "a lighthouse at dusk";
 *     request.seed = 42;
 *     kiln_image *images = NULL;
 *     size_t count = 0;
 *     if (kiln_generate(ctx, &request, NULL, NULL, &images, &count) == KILN_OK) {
 *         fwrite(images[0].png, 1, images[0].png_size, file);
 *         kiln_free_images(images, count);
 *     } else {
 *         fprintf(stderr, "%s\n", kiln_last_error(ctx));
 *     }
 *     kiln_close(ctx);
 *
 * Conventions
 * - Every function that can fail returns a kiln_status; the message is kiln_last_error(ctx)
 *   (kiln_last_error(NULL) for calls that have no context: kiln_open, kiln_devices_json).
 * - Strings are UTF-8 and NUL-terminated. Strings and arrays passed in are only read during the
 *   call; nothing keeps a pointer to them afterwards.
 * - Whatever Kiln allocates for the caller has exactly one function that frees it:
 *   kiln_generate's images -> kiln_free_images, kiln_devices_json and kiln_model_info_json ->
 *   kiln_free_string, a context -> kiln_close. Strings returned as `const char *` are Kiln's.
 * - Option and request structs carry their own size (struct_size) so the interface can grow:
 *   always fill them with kiln_open_options_init / kiln_request_init first. A struct from an
 *   older header is read as far as it goes (the rest takes defaults); one from a newer header is
 *   accepted while the fields this library does not know are zero, and refused with
 *   KILN_BAD_INPUT otherwise, so nothing set is ever silently ignored.
 * - kiln_image never grows: images are returned as an array, so its layout is fixed for this
 *   API version. Facts added later come from functions of their own.
 *
 * Threads
 * - Contexts are independent: no state is shared between them, so two contexts (even of the same
 *   model) can generate from two threads at once. Each opens its own device queue and holds its
 *   own copy of the weights.
 * - One context may be used from several threads: its generations are serialised (a second
 *   kiln_generate waits for the first to finish). kiln_cancel may be called from any thread, or
 *   from inside a progress callback, at any time.
 * - kiln_last_error(ctx) is per thread: it is the message of the calling thread's last call on
 *   ctx, so a message is never overwritten or freed by another thread's call.
 * - kiln_close(ctx) cancels the generation running on ctx, waits for it to stop and frees ctx; no
 *   other call on ctx may begin once kiln_close has been called.
 * - The progress callback runs on the thread that called kiln_generate, between two steps.
 */
#ifndef KILN_H
#define KILN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this interface. It changes only when an existing function or struct changes
 * incompatibly; additions (new functions, new fields at the end of kiln_open_options and
 * kiln_request) keep it. kiln_api_version() says what the loaded library implements. */
#define KILN_API_VERSION 1

/* One loaded model on one device: its weights resident, its prepared graphs cached. Opaque. */
typedef struct kiln_context kiln_context;

typedef enum kiln_status {
    KILN_OK = 0,
    /* Something failed while working (the device, a kernel, a value that turned NaN). */
    KILN_FAILED = 1,
    /* The call's arguments are wrong (a NULL pointer, a size, a sampler name, a model that does
     * not open, an option the model's family lacks), found before any work started. */
    KILN_BAD_INPUT = 2,
    /* kiln_cancel stopped the generation at a step boundary. */
    KILN_CANCELLED = 3
} kiln_status;

/* How kiln_open opens a model. NULL fields take the defaults shown. */
typedef struct kiln_open_options {
    size_t struct_size;          /* sizeof(kiln_open_options): set by kiln_open_options_init */
    const char *backend;         /* "vulkan" (NULL) or "cpu" */
    const char *device;          /* Vulkan device: index, UUID or name substring; NULL: the
                                  * KILN_DEVICE environment variable, else the most capable one */
    const char *dtype;           /* weights and activations on the device: "f16" (NULL) or "f32";
                                  * the CPU backend computes in f32 whatever is asked */
    const char *config;          /* a single-file checkpoint's diffusers folder (configs,
                                  * tokenizers, scheduler, missing components); NULL for folders */
    /* Added in API version 1, after the fields above. */
    const char *vae;             /* Stable Diffusion: a VAE folder or file to use instead */
    const char *inpainting_unet; /* Stable Diffusion 1.x/2.x: a 9-channel inpainting U-Net folder */
} kiln_open_options;

/* An 8-bit image. As kiln_generate's output: `pixels` holds height * width * channels bytes,
 * row-major, channels interleaved (RGB, channels = 3); `png` holds png_size bytes, exactly the
 * file `kiln generate` writes for the same settings, its metadata (the A1111 `parameters` chunk
 * and the `kiln` JSON chunk) included. As a request's input (init_image, mask_image): width,
 * height, channels (1 gray, 2 gray + alpha, 3 RGB, 4 RGBA; alpha is dropped) and pixels are
 * read, png and png_size are ignored. */
typedef struct kiln_image {
    int width, height, channels;
    const uint8_t *pixels;
    const uint8_t *png;
    size_t png_size;
} kiln_image;

/* One generation. Zero and NULL fields take the model's defaults, as `kiln generate` does for an
 * option left out (its size, steps, guidance and scheduler; kiln_model_info_json lists them). */
typedef struct kiln_request {
    size_t struct_size;          /* sizeof(kiln_request): set by kiln_request_init */
    const char *prompt;          /* text models: required */
    const char *negative_prompt; /* NULL: diffusers' negative_prompt=None; "" is encoded as text */
    int width, height, steps;    /* 0: the model's default (pixels; sampling steps) */
    float cfg_scale;             /* guidance scale; 0: the model's default; 1 turns
                                  * classifier-free guidance off; FLUX.1-dev's embedded guidance */
    const char *sampler;         /* ddpm ddim pndm euler euler_a heun dpm++2m lcm flow_euler;
                                  * NULL: the model's own scheduler */
    const char *scheduler;       /* sigma spacing: "default", "karras" or "exponential";
                                  * NULL: the scheduler configuration's */
    uint64_t seed;               /* torch.Generator("cpu").manual_seed(seed), taken literally */
    int batch_count;             /* images per prompt or class label from one run; 0: 1 */
    /* Added in API version 1, after the fields above. */
    const int *class_labels;     /* class-conditional models (DiT): one image per label */
    size_t class_label_count;
    const kiln_image *init_image; /* image-to-image: the start image (its size is the request's
                                   * unless width and height are set) */
    const kiln_image *mask_image; /* inpainting, with init_image: white (>= 128) is repainted */
    float strength;              /* image-to-image / inpainting: share of the schedule that
                                  * runs, in [0, 1]; 0: the model's default */
    float guidance_rescale;      /* Stable Diffusion text-to-image, in [0, 1]; 0: off */
    int max_sequence_length;     /* SD3 and FLUX: T5 prompt tokens; 0: the model's default */
    int without_t5;              /* SD3: non-zero leaves the T5 encoder out */
} kiln_request;

/* Called once per sampling step with the steps done (1-based), the steps in all and the seconds
 * that step took. `user_data` is kiln_generate's. Runs on the generating thread. */
typedef void (*kiln_progress_fn)(void *user_data, int step, int steps, double seconds);

/* Fill *options / *request with the defaults (every field zero or NULL) and set struct_size.
 * The macros below pass the caller's own struct size, so a program keeps working against a
 * library built from a newer or older header; the functions themselves (for FFI callers such as
 * ctypes) use this header's size. A NULL argument is ignored. */
void kiln_open_options_init(kiln_open_options *options);
void kiln_request_init(kiln_request *request);
void kiln_open_options_init_sized(kiln_open_options *options, size_t struct_size);
void kiln_request_init_sized(kiln_request *request, size_t struct_size);
#define kiln_open_options_init(options) kiln_open_options_init_sized((options), sizeof(kiln_open_options))
#define kiln_request_init(request) kiln_request_init_sized((request), sizeof(kiln_request))

/* Opens the model at model_path (a diffusers folder or a single .safetensors file; NULL: the
 * default model, kiln-shapes, found in Kiln_KilnDefaultModel.resources beside the library or at
 * $KILN_DEFAULT_MODEL) with `options` (NULL: all defaults) and stores the
 * new context in *out (NULL on failure). Loads and uploads the weights: may take seconds. */
kiln_status kiln_open(const char *model_path, const kiln_open_options *options, kiln_context **out);

/* Runs `request` on ctx. On KILN_OK, *images is an array of *count images (batch_count per
 * prompt or label) to free with kiln_free_images; otherwise *images is NULL and *count 0.
 * `progress` may be NULL; `user_data` is passed to it untouched. */
kiln_status kiln_generate(kiln_context *ctx, const kiln_request *request, kiln_progress_fn progress, void *user_data,
                          kiln_image **images, size_t *count);

/* Stops every kiln_generate on ctx that began before this call (running, or waiting for the
 * context) at its next step boundary; it then returns KILN_CANCELLED. Generations begun later
 * are not affected. Thread-safe, and returns at once. NULL is ignored. */
void kiln_cancel(kiln_context *ctx);

/* The message of the calling thread's last failed call on ctx ("" after a success), or, for
 * ctx == NULL, of its last failed call that had no context (kiln_open, kiln_devices_json).
 * Owned by ctx (or the library), valid until that thread's next call on it. Never NULL. */
const char *kiln_last_error(const kiln_context *ctx);

/* Frees what kiln_generate returned. NULL is ignored. */
void kiln_free_images(kiln_image *images, size_t count);

/* Cancels what runs on ctx, waits for it to stop, and frees ctx with its weights and device
 * memory. NULL is ignored. */
void kiln_close(kiln_context *ctx);

/* Kiln's version ("0.4.0"), as image metadata records it. Static. */
const char *kiln_version(void);

/* KILN_API_VERSION of the loaded library. */
int kiln_api_version(void);

/* "KILN_OK", "KILN_FAILED", ...; "KILN_UNKNOWN" for other values. Static. */
const char *kiln_status_name(kiln_status status);

/* The Vulkan devices as `kiln devices --json` prints them (a JSON array, one object per device);
 * NULL on failure (see kiln_last_error(NULL)). Free with kiln_free_string. */
char *kiln_devices_json(void);

/* What ctx holds, as a JSON object: the model's path and family, the backend, device and dtype,
 * and the defaults zero request fields take (width, height, steps, cfg_scale, sampler, ...).
 * NULL on failure (see kiln_last_error(ctx)). Free with kiln_free_string. */
char *kiln_model_info_json(kiln_context *ctx);

/* Frees a string Kiln returned as `char *`. NULL is ignored. */
void kiln_free_string(char *string);

#ifdef __cplusplus
}
#endif

#endif /* KILN_H */
