/* libsandbox - the local (bubblewrap) backend
 *
 * Not installed: callers reach it by name through the registry.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "sandbox-private.h"

G_BEGIN_DECLS

#define SANDBOX_TYPE_LOCAL_BACKEND (sandbox_local_backend_get_type ())
G_DECLARE_FINAL_TYPE (SandboxLocalBackend, sandbox_local_backend, SANDBOX, LOCAL_BACKEND, SandboxBackend)

#define SANDBOX_TYPE_LOCAL_INSTANCE (sandbox_local_instance_get_type ())
G_DECLARE_FINAL_TYPE (SandboxLocalInstance, sandbox_local_instance, SANDBOX, LOCAL_INSTANCE, SandboxInstance)

G_END_DECLS
