/*
 * weft.h - the umbrella header: includes every public part of weft.
 *
 *     #include <weft.h>
 *     cc prog.c $(pkg-config --cflags --libs weft)
 */
#ifndef WEFT_H
#define WEFT_H

#include "weft/base.h"
#include "weft/sync.h"
#include "weft/check.h"
#include "weft/lockfree.h"
#include "weft/pool.h"
#include "weft/proc.h"

#endif /* WEFT_H */
