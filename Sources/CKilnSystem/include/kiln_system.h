#ifndef KILN_SYSTEM_H
#define KILN_SYSTEM_H

/* The path of the executable or shared library whose code or data holds `address` (NULL when
 * the dynamic loader does not know it). Swift cannot call dladdr directly on glibc: it is only
 * declared with _GNU_SOURCE. */
const char *kiln_system_image_path(const void *address);

#endif
