/* libsandbox - the Daytona backend
 *
 * Not installed: callers reach it by name ("daytona") through the registry.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "sandbox-private.h"

G_BEGIN_DECLS

#define SANDBOX_TYPE_DAYTONA_BACKEND (sandbox_daytona_backend_get_type ())
G_DECLARE_FINAL_TYPE (SandboxDaytonaBackend, sandbox_daytona_backend, SANDBOX, DAYTONA_BACKEND, SandboxBackend)

#define SANDBOX_TYPE_DAYTONA_INSTANCE (sandbox_daytona_instance_get_type ())
G_DECLARE_FINAL_TYPE (SandboxDaytonaInstance, sandbox_daytona_instance, SANDBOX, DAYTONA_INSTANCE, SandboxInstance)

G_END_DECLS
