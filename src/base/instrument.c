/*
 * instrument.c - decides at load time whether anything watches the
 * primitives, and sets weft__instr accordingly.
 *
 * ThreadSanitizer is detected through a weak reference to its runtime, so a
 * plain (uninstrumented) libweft loaded into a -fsanitize=thread program
 * still annotates its locks. Valgrind is detected with RUNNING_ON_VALGRIND.
 */
#include <stddef.h>
#include <stdlib.h>

#include <valgrind/valgrind.h>

#include "internal/instrument.h"

uint32_t weft__instr;

/* Weak: resolves to the TSan runtime when it is in the process, else NULL. */
extern void __tsan_mutex_create(void *addr, unsigned flags) __attribute__((weak));

__attribute__((constructor)) static void weft__instr_setup(void)
{
    uint32_t bits = 0;
    if (&__tsan_mutex_create != NULL)
        bits |= WEFT__INSTR_TSAN;
    if (RUNNING_ON_VALGRIND)
        bits |= WEFT__INSTR_HELGRIND;
    __atomic_fetch_or(&weft__instr, bits, __ATOMIC_RELAXED);
}
