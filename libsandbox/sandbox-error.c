/* libsandbox - error domain
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "sandbox-error.h"

/**
 * sandbox_error_quark:
 *
 * Gets the libsandbox error domain.
 *
 * Returns: the quark of %SANDBOX_ERROR
 *
 * Since: 0.1
 */
G_DEFINE_QUARK (sandbox-error-quark, sandbox_error)
