/* libsandbox - E2B backend internals shared by its backend and instance
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "sandbox-cloud-private.h"
#include "sandbox-connect-private.h"
#include "sandbox-output-private.h"
#include "sandbox-e2b-backend.h"

G_BEGIN_DECLS

#define E2B_DEFAULT_DOMAIN   "e2b.app"
#define E2B_DEFAULT_TEMPLATE "base"
#define E2B_DEFAULT_TTL_S    300
/* Where commands run without a cwd: the home of envd's default user. */
#define E2B_DEFAULT_WORKDIR  "/home/user"
#define E2B_ENVD_PORT        49983
#define E2B_KEY_HINT \
  _("Check E2B_API_KEY (or the backend's api-key property); keys are created at " \
    "https://e2b.dev/dashboard?tab=keys.")

/* How the shared cloud code (sandbox-cloud-private.h) talks to E2B. */
extern const SandboxCloudApi _sandbox_e2b_api;

SandboxRestClient *_sandbox_e2b_backend_get_api      (SandboxE2bBackend *self);
/* The envd URL of a sandbox: E2B_SANDBOX_URL (sandbox-url) if set, else
 * derived from the sandbox's domain. */
char              *_sandbox_e2b_backend_envd_url     (SandboxE2bBackend *self,
                                                      const char        *sandbox_id,
                                                      const char        *domain);
/* Where a server on PORT in the sandbox is reached: the SDK's get_host,
 * "PORT-ID.DOMAIN", over https (http when E2B_SANDBOX_URL is http). */
char *_sandbox_e2b_backend_port_url (SandboxE2bBackend *self,
                                     const char        *sandbox_id,
                                     const char        *domain,
                                     guint              port);

/* From a Sandbox / SandboxDetail / ListedSandbox JSON object. */
SandboxInstance   *_sandbox_e2b_instance_new         (SandboxE2bBackend *backend,
                                                      JsonObject        *object);
/* The default cwd of its commands (SandboxSpec:workdir), or NULL for envd's. */
/* The metadata key that says a sandbox's commands and files are root's
 * (SandboxSpec:run-as-root); hidden from its labels. */
#define SANDBOX_E2B_USER_KEY "libsandbox.user"
void               _sandbox_e2b_instance_set_root    (SandboxInstance   *instance);
void               _sandbox_e2b_instance_set_workdir (SandboxInstance   *instance,
                                                      const char        *workdir);

/* Parsers of what envd sends; each is run by fuzz/fuzz-e2b.c. */
typedef enum
{
  SANDBOX_E2B_EVENT_OTHER,
  SANDBOX_E2B_EVENT_START,
  SANDBOX_E2B_EVENT_DATA,
  SANDBOX_E2B_EVENT_END,
} SandboxE2bEventKind;

typedef struct
{
  guint     pid;          /* START */
  gboolean  is_stderr;    /* DATA */
  GBytes   *data;         /* DATA: decoded, or NULL (not stdout/stderr) */
  int       exit_status;  /* END: 0-255, or -1 when signalled */
  int       term_signal;  /* END */
} SandboxE2bEvent;

JsonNode           *_sandbox_e2b_parse_event_frame   (GBytes          *payload);
SandboxE2bEventKind _sandbox_e2b_parse_process_event (JsonObject      *event,
                                                      SandboxE2bEvent *out);
void                _sandbox_e2b_event_clear         (SandboxE2bEvent *event);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (SandboxE2bEvent, _sandbox_e2b_event_clear)
gboolean            _sandbox_e2b_parse_stat_is_dir   (JsonNode        *answer);
GPtrArray          *_sandbox_e2b_parse_list_dir      (JsonNode        *answer);
SandboxMetrics     *_sandbox_e2b_parse_metrics       (JsonObject      *object);

G_END_DECLS
