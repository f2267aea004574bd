/*
 * Call-stack capture and symbolisation (base layer).
 */
#ifndef WEFT_INTERNAL_BACKTRACE_H
#define WEFT_INTERNAL_BACKTRACE_H

#include <stddef.h>

#define WEFT__BT_MAX 16

typedef struct weft__frame {
    void *pc;
    char function[96];
    char file[96];
    char module[64];
    int line;
} weft__frame_t;

/* Capture up to max return addresses of the caller's stack, skipping the
 * `skip` innermost frames above the caller. Returns how many were stored. */
int weft__backtrace(void **frames, int max, int skip);

/* Symbolisation happens between begin and end (serialised, slow). */
void weft__symbolize_begin(void);
void weft__symbolize_end(void);
void weft__symbolize(void *pc, int is_return_address, weft__frame_t *f);
/* "function (file:line)", or the best fallback. Returns snprintf's value. */
int weft__frame_format(const weft__frame_t *f, char *buf, size_t len);
/* True for frames of weft's own lock code and the pthread functions it wraps. */
int weft__frame_is_internal(const weft__frame_t *f);

#endif
