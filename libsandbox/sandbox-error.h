/* libsandbox - error domain
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined (__SANDBOX_INSIDE__) && !defined (SANDBOX_COMPILATION)
#error "Only <libsandbox/sandbox.h> can be included directly."
#endif

#include <glib.h>
#include "sandbox-version-macros.h"

G_BEGIN_DECLS

/**
 * SANDBOX_ERROR:
 *
 * The error domain of libsandbox. Errors in this domain are from the
 * [error@Sandbox.Error] enumeration. Cancellation is reported as
 * `G_IO_ERROR_CANCELLED`, not in this domain.
 */
#define SANDBOX_ERROR (sandbox_error_quark ())

/**
 * SandboxError:
 * @SANDBOX_ERROR_FAILED: an operation failed for a reason not listed here
 * @SANDBOX_ERROR_NOT_CONFIGURED: the backend cannot work on this machine as
 *   configured (a missing program, API key or URL); the message says what to do
 * @SANDBOX_ERROR_UNKNOWN_BACKEND: no backend has the requested name; the
 *   message lists the names that exist
 * @SANDBOX_ERROR_INVALID_ARGUMENT: a spec, command or path is not valid
 * @SANDBOX_ERROR_AUTHENTICATION: the provider rejected the credentials
 * @SANDBOX_ERROR_NOT_FOUND: the sandbox, file or image does not exist
 * @SANDBOX_ERROR_RATE_LIMITED: the provider asked to slow down
 * @SANDBOX_ERROR_QUOTA: a quota or resource limit of the provider was reached
 * @SANDBOX_ERROR_TIMEOUT: an operation took longer than allowed
 * @SANDBOX_ERROR_PROTOCOL: the provider answered something that could not be understood
 * @SANDBOX_ERROR_UNAVAILABLE: the provider could not be reached or is not serving
 * @SANDBOX_ERROR_EXEC: a command could not be started in the sandbox
 *   (for example: command not found, or a missing working directory)
 * @SANDBOX_ERROR_NOT_SUPPORTED: the backend does not implement the operation
 *
 * Error codes of the %SANDBOX_ERROR domain.
 *
 * Since: 0.1
 */
typedef enum {
  SANDBOX_ERROR_FAILED,
  SANDBOX_ERROR_NOT_CONFIGURED,
  SANDBOX_ERROR_UNKNOWN_BACKEND,
  SANDBOX_ERROR_INVALID_ARGUMENT,
  SANDBOX_ERROR_AUTHENTICATION,
  SANDBOX_ERROR_NOT_FOUND,
  SANDBOX_ERROR_RATE_LIMITED,
  SANDBOX_ERROR_QUOTA,
  SANDBOX_ERROR_TIMEOUT,
  SANDBOX_ERROR_PROTOCOL,
  SANDBOX_ERROR_UNAVAILABLE,
  SANDBOX_ERROR_EXEC,
  SANDBOX_ERROR_NOT_SUPPORTED,
} SandboxError;

SANDBOX_AVAILABLE_IN_0_1
GQuark sandbox_error_quark (void);

SANDBOX_AVAILABLE_IN_0_2
GError *sandbox_error_new_for_http_status (const char *provider,
                                           const char *method,
                                           const char *endpoint,
                                           guint       status,
                                           const char *reason,
                                           GBytes     *body,
                                           const char *auth_hint);

G_END_DECLS
