/*
 * ipa_amalgam.c - ipa_weft.c with weft's mutex and condition variable
 * sources compiled into the same translation unit (an "amalgamation", as
 * some projects ship), the closest a user can bring the lock functions to
 * the static counter. Built with -I src; the rest of weft comes from
 * libweft.a.
 */
#include "sync/cond.c"
#include "sync/mutex.c"

#include "ipa_weft.c"
