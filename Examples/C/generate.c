/*
 * generate.c: Kiln's C interface from start to finish. Opens a model, makes images with a
 * progress callback, writes each PNG exactly as `kiln generate` would, and frees everything.
 *
 *     cc -std=c99 -Wall -Wextra -Werror -pedantic -I include Examples/C/generate.c -L DIR -lkiln -o kiln-example
 *     ./kiln-example --model ./sd15 --prompt "a lighthouse at dusk" --output lighthouse-%d.png
 *
 * Options: --model DIR (required), --prompt TEXT, --backend vulkan|cpu, --width N, --height N,
 * --steps N, --sampler NAME, --seed N, --generations N (runs the same request N times, each
 * writing its own files: %d in --output is the running image number).
 * Exit status: 0 on success, 2 for bad input, 1 for a failure while working, 3 if cancelled.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"

/* What the progress callback needs, passed through kiln_generate's user_data. */
typedef struct progress_state {
    int generation;
    int calls;
} progress_state;

static void report_progress(void *user_data, int step, int steps, double seconds) {
    progress_state *state = (progress_state *)user_data;
    state->calls += 1;
    fprintf(stderr, "generation %d: step %d/%d (%.2f s)\n", state->generation, step, steps, seconds);
}

/* `pattern` with its first %d replaced by `number`, into `path` (at most `size` bytes). */
static int output_path(char *path, size_t size, const char *pattern, int number) {
    const char *marker = strstr(pattern, "%d");
    int written;
    if (marker == NULL) {
        written = snprintf(path, size, "%s", pattern);
    } else {
        written = snprintf(path, size, "%.*s%d%s", (int)(marker - pattern), pattern, number, marker + 2);
    }
    return written > 0 && (size_t)written < size;
}

static int write_file(const char *path, const uint8_t *bytes, size_t size) {
    FILE *file = fopen(path, "wb");
    int ok;
    if (file == NULL) {
        return 0;
    }
    ok = fwrite(bytes, 1, size, file) == size;
    return fclose(file) == 0 && ok;
}

static int exit_code(kiln_status status) {
    switch (status) {
    case KILN_OK: return 0;
    case KILN_BAD_INPUT: return 2;
    case KILN_CANCELLED: return 3;
    default: return 1;
    }
}

int main(int argc, char **argv) {
    const char *model = NULL, *output = "kiln-example-%d.png";
    int generations = 1, image_number = 0, index;
    kiln_open_options options;
    kiln_request request;
    kiln_context *ctx = NULL;
    kiln_status status;
    char *info;

    kiln_open_options_init(&options);
    kiln_request_init(&request);
    request.prompt = "a lighthouse at dusk, oil painting";
    for (index = 1; index + 1 < argc; index += 2) {
        const char *name = argv[index], *value = argv[index + 1];
        if (strcmp(name, "--model") == 0) model = value;
        else if (strcmp(name, "--prompt") == 0) request.prompt = value;
        else if (strcmp(name, "--backend") == 0) options.backend = value;
        else if (strcmp(name, "--width") == 0) request.width = atoi(value);
        else if (strcmp(name, "--height") == 0) request.height = atoi(value);
        else if (strcmp(name, "--steps") == 0) request.steps = atoi(value);
        else if (strcmp(name, "--sampler") == 0) request.sampler = value;
        else if (strcmp(name, "--seed") == 0) request.seed = strtoull(value, NULL, 10);
        else if (strcmp(name, "--generations") == 0) generations = atoi(value);
        else if (strcmp(name, "--output") == 0) output = value;
        else {
            fprintf(stderr, "unknown option %s\n", name);
            return 2;
        }
    }
    if (model == NULL || index != argc) {
        fprintf(stderr, "usage: %s --model DIR [--prompt TEXT] [--backend vulkan|cpu] [--width N] [--height N] [--steps N]\n"
                        "       [--sampler NAME] [--seed N] [--generations N] [--output PATTERN]\n", argv[0]);
        return 2;
    }

    fprintf(stderr, "Kiln %s (C API %d)\n", kiln_version(), kiln_api_version());
    status = kiln_open(model, &options, &ctx);
    if (status != KILN_OK) {
        fprintf(stderr, "kiln_open: %s: %s\n", kiln_status_name(status), kiln_last_error(NULL));
        return exit_code(status);
    }
    info = kiln_model_info_json(ctx);
    if (info != NULL) {
        fprintf(stderr, "model: %s\n", info);
        kiln_free_string(info);
    }

    for (index = 0; index < generations && status == KILN_OK; index++) {
        progress_state state;
        kiln_image *images = NULL;
        size_t count = 0, image;
        state.generation = index + 1;
        state.calls = 0;
        status = kiln_generate(ctx, &request, report_progress, &state, &images, &count);
        if (status != KILN_OK) {
            fprintf(stderr, "kiln_generate: %s: %s\n", kiln_status_name(status), kiln_last_error(ctx));
            break;
        }
        for (image = 0; image < count; image++) {
            char path[4096];
            if (!output_path(path, sizeof path, output, image_number++) || !write_file(path, images[image].png, images[image].png_size)) {
                fprintf(stderr, "could not write image %d to %s\n", image_number - 1, output);
                status = KILN_FAILED;
                break;
            }
            printf("%s %dx%d %zu bytes, %d progress calls\n", path, images[image].width, images[image].height, images[image].png_size,
                   state.calls);
        }
        kiln_free_images(images, count);
    }
    kiln_close(ctx);
    return exit_code(status);
}
