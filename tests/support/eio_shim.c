/* A fault layer for the tests (LD_PRELOAD): reads of the file named by
 * DSS_EIO_PATH fail with EIO, as a failing disk's would. This machine's
 * kernel has no device-mapper to give a real error target, so the error
 * is injected where the service meets it: at the read system calls of the
 * C library the binary links. Every other file reads as usual. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int is_target(int fd) {
    const char *target = getenv("DSS_EIO_PATH");
    if (target == NULL || *target == '\0') {
        return 0;
    }
    char link[64];
    char path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t length = readlink(link, path, sizeof path - 1);
    if (length < 0) {
        return 0;
    }
    path[length] = '\0';
    return strcmp(path, target) == 0;
}

#define FAIL_ON_TARGET(name, params, args)                                   \
    ssize_t name params {                                                    \
        static ssize_t(*real) params;                                        \
        if (real == NULL) {                                                  \
            real = dlsym(RTLD_NEXT, #name);                                  \
        }                                                                    \
        if (is_target(fd)) {                                                 \
            errno = EIO;                                                     \
            return -1;                                                       \
        }                                                                    \
        return real args;                                                    \
    }

FAIL_ON_TARGET(read, (int fd, void *buffer, size_t count), (fd, buffer, count))
FAIL_ON_TARGET(pread, (int fd, void *buffer, size_t count, off_t offset), (fd, buffer, count, offset))
FAIL_ON_TARGET(pread64, (int fd, void *buffer, size_t count, off_t offset), (fd, buffer, count, offset))
