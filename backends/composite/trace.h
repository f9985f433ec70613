/*
 * trace.h - a store that wraps any other and logs every call to it, at
 * level trace (LOG_TRACE, below debug): the store's name, the op, the
 * object name (a listing's prefix and token), the offset and length of a
 * read, the result and the time it took in microseconds.  Stacked over
 * each layer, `-o log_level=trace` shows what each layer asked of the
 * next (git's refs/debug.c is the model).
 *
 * The wrapper has the inner store's name, description and capabilities,
 * so it can stand in for it anywhere (a mount's identity, the router's
 * facts).  It costs a clock read per call even when the level is lower;
 * mount/ wraps stores only when the level is trace.
 *
 * Thread safety: like every store.
 */
#ifndef HYLAKE_TRACE_H
#define HYLAKE_TRACE_H

#include "backends/backend.h"

/* Wrap inner (takes ownership).  Never fails. */
struct backend *trace_create(struct backend *inner);

#endif
