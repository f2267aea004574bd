/*
 * error.c - weft_strerror: a name and a meaning for every error code.
 *
 * The codes weft returns get a message that says what they mean in weft
 * (EDEADLK: "waiting would deadlock"); any other errno is described by the
 * C library's table, prefixed by its symbolic name.
 */
#include <errno.h>
#include <string.h>

#include "weft/base.h"

static const struct {
    int code;
    const char *text;
} weft__errors[] = {
    {0, "success"},
    {EINVAL, "EINVAL: invalid argument"},
    {EBUSY, "EBUSY: resource busy (held, or in use by waiters)"},
    {EAGAIN, "EAGAIN: not available now, try again"},
    {ETIMEDOUT, "ETIMEDOUT: timed out"},
    {EDEADLK, "EDEADLK: waiting would deadlock"},
    {EPERM, "EPERM: caller is not the owner"},
    {EOVERFLOW, "EOVERFLOW: count would exceed its maximum"},
    {ENOMEM, "ENOMEM: out of memory"},
    {ECANCELED, "ECANCELED: operation canceled"},
    {ESHUTDOWN, "ESHUTDOWN: service is shutting down"},
    {ENOENT, "ENOENT: no such entry"},
    {ENOSYS, "ENOSYS: not supported on this system"},
    {EEXIST, "EEXIST: already exists"},
    {ECHILD, "ECHILD: worker process died"},
    {EPIPE, "EPIPE: peer closed the connection"},
};

const char *weft_strerror(int err)
{
    int code = err < 0 ? -err : err;
    for (size_t i = 0; i < sizeof weft__errors / sizeof weft__errors[0]; i++)
        if (weft__errors[i].code == code)
            return weft__errors[i].text;
    const char *desc = strerrordesc_np(code);
    return desc != NULL ? desc : "unknown error";
}
