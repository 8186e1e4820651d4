#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>

#include "kiln_system.h"

const char *kiln_system_image_path(const void *address) {
    Dl_info information;
    if (dladdr(address, &information) == 0) return NULL;
    return information.dli_fname;
}
