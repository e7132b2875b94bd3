/* libsandbox - E2B backend internals shared by its backend and instance
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "sandbox-rest-private.h"
#include "sandbox-connect-private.h"
#include "sandbox-e2b-backend.h"

G_BEGIN_DECLS

#define E2B_DEFAULT_DOMAIN   "e2b.app"
#define E2B_DEFAULT_TEMPLATE "base"
#define E2B_DEFAULT_TTL_S    300
#define E2B_ENVD_PORT        49983
/* Every create carries this metadata key with a fresh token, so that a
 * sandbox whose create answer was lost (reset, timeout, garbled reply) or
 * whose create was cancelled can be found and killed: no orphan. Hidden
 * from the instance's labels. */
#define E2B_CREATE_TOKEN_LABEL "libsandbox.create-token"
#define E2B_KEY_HINT \
  _("Check E2B_API_KEY (or the backend's api-key property); keys are created at " \
    "https://e2b.dev/dashboard?tab=keys.")

SandboxRestClient *_sandbox_e2b_backend_get_api      (SandboxE2bBackend *self);
/* The envd URL of a sandbox: E2B_SANDBOX_URL (sandbox-url) if set, else
 * derived from the sandbox's domain. */
char              *_sandbox_e2b_backend_envd_url     (SandboxE2bBackend *self,
                                                      const char        *sandbox_id,
                                                      const char        *domain);

/* From a Sandbox / SandboxDetail / ListedSandbox JSON object. */
SandboxInstance   *_sandbox_e2b_instance_new         (SandboxE2bBackend *backend,
                                                      JsonObject        *object);

G_END_DECLS
