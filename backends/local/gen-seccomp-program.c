/* gen-seccomp-program - the local sandbox's seccomp program, at build time
 *
 * The rules of sandbox-local-seccomp.c, compiled with libseccomp on the
 * build machine and printed as a C header, which the library uses when it
 * runs with the same libseccomp, architecture and kernel API level.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#define SANDBOX_SECCOMP_GENERATOR 1
#include "sandbox-local-seccomp.c"
