/* libsandbox - symbol visibility and availability macros */
#pragma once

#if !defined (__SANDBOX_INSIDE__) && !defined (SANDBOX_COMPILATION)
#error "Only <libsandbox/sandbox.h> can be included directly."
#endif

#include <glib.h>

/* The library itself defines _SANDBOX_EXTERN (in config.h) to export the
 * symbol; everything else is built with -fvisibility=hidden. */
#ifndef _SANDBOX_EXTERN
#define _SANDBOX_EXTERN extern
#endif

#define SANDBOX_AVAILABLE_IN_ALL _SANDBOX_EXTERN
#define SANDBOX_AVAILABLE_IN_0_1 _SANDBOX_EXTERN
/* Symbols added after the 0.1 API (never removed or changed from it). */
#define SANDBOX_AVAILABLE_IN_0_2 _SANDBOX_EXTERN
