// header-check.cpp: kiln.h compiled as C++17 (`extern "C"` linkage, no C-only constructs), and a
// few uses a C++ program makes of it. Built by scripts/check-embedding.sh; it only needs to link.
#include "kiln.h"

#include <cstdio>
#include <memory>

namespace {
// Owning wrappers as a C++ program would write them: each Kiln allocation has exactly one free.
struct ContextCloser {
    void operator()(kiln_context *ctx) const { kiln_close(ctx); }
};
using Context = std::unique_ptr<kiln_context, ContextCloser>;

struct StringFreer {
    void operator()(char *string) const { kiln_free_string(string); }
};
using OwnedString = std::unique_ptr<char, StringFreer>;

static_assert(sizeof(kiln_request) >= sizeof(size_t), "kiln_request starts with struct_size");
static_assert(KILN_OK == 0 && KILN_FAILED == 1 && KILN_BAD_INPUT == 2 && KILN_CANCELLED == 3, "status values are fixed");
}  // namespace

int main(int argc, char **argv) {
    kiln_open_options options;
    kiln_open_options_init(&options);
    options.backend = "cpu";
    kiln_request request;
    kiln_request_init(&request);
    request.prompt = "a red car";
    kiln_progress_fn progress = [](void *, int step, int steps, double) { std::printf("%d/%d\n", step, steps); };
    (void)progress;

    kiln_context *raw = nullptr;
    kiln_status status = kiln_open(argc > 1 ? argv[1] : nullptr, &options, &raw);
    Context ctx(raw);
    if (status != KILN_OK) {
        std::printf("%s: %s\n", kiln_status_name(status), kiln_last_error(nullptr));
        return 0;
    }
    OwnedString info(kiln_model_info_json(ctx.get()));
    std::printf("%s\n", info ? info.get() : kiln_last_error(ctx.get()));
    return 0;
}
