/* libsandbox - the E2B backend
 *
 * Not installed: callers reach it by name ("e2b") through the registry.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "sandbox-private.h"

G_BEGIN_DECLS

#define SANDBOX_TYPE_E2B_BACKEND (sandbox_e2b_backend_get_type ())
G_DECLARE_FINAL_TYPE (SandboxE2bBackend, sandbox_e2b_backend, SANDBOX, E2B_BACKEND, SandboxBackend)

#define SANDBOX_TYPE_E2B_INSTANCE (sandbox_e2b_instance_get_type ())
G_DECLARE_FINAL_TYPE (SandboxE2bInstance, sandbox_e2b_instance, SANDBOX, E2B_INSTANCE, SandboxInstance)

G_END_DECLS
