/* libsandbox - the built-in backends
 *
 * The one file of the library that knows the built-in backends by type;
 * everything else finds them through the registry.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "sandbox-private.h"
#include "local/sandbox-local-backend.h"
#include "daytona/sandbox-daytona-backend.h"
#include "e2b/sandbox-e2b-backend.h"

void
_sandbox_register_builtin_backends (void)
{
  g_io_extension_point_implement (SANDBOX_BACKEND_EXTENSION_POINT_NAME,
                                  SANDBOX_TYPE_LOCAL_BACKEND, "local", 100);
  g_io_extension_point_implement (SANDBOX_BACKEND_EXTENSION_POINT_NAME,
                                  SANDBOX_TYPE_DAYTONA_BACKEND, "daytona", 50);
  g_io_extension_point_implement (SANDBOX_BACKEND_EXTENSION_POINT_NAME,
                                  SANDBOX_TYPE_E2B_BACKEND, "e2b", 50);
}
