/* libsandbox - Daytona backend internals shared by its backend and instance
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "sandbox-rest-private.h"
#include "sandbox-daytona-backend.h"

G_BEGIN_DECLS

#define DAYTONA_PROVIDER "Daytona"
#define DAYTONA_DEFAULT_API_URL "https://app.daytona.io/api"
#define DAYTONA_KEYS_URL "https://app.daytona.io/dashboard/keys"
/* The toolbox protocol we speak (spec §3.2: >= 0.167 gives JSON logs and
 * stdout/stderr markers in the log stream). */
#define DAYTONA_PROTOCOL_VERSION "0.190.0"

SandboxRestClient   *_sandbox_daytona_backend_get_client (SandboxDaytonaBackend *self);

SandboxInstance     *_sandbox_daytona_instance_new       (SandboxDaytonaBackend *backend,
                                                          JsonObject            *dto,
                                                          const char            *workdir);
void                 _sandbox_daytona_instance_update    (SandboxDaytonaInstance *self,
                                                          JsonObject             *dto);
SandboxInstanceState _sandbox_daytona_state_from_string  (const char             *state);
GHashTable          *_sandbox_daytona_labels_from_dto    (JsonObject             *dto);
char                *_sandbox_daytona_quote_path         (const char             *path);

G_END_DECLS
