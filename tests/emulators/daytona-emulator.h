/* A Daytona API emulator for the tests (not installed)
 *
 * Serves the Daytona control plane under http://127.0.0.1:PORT/api and the
 * toolbox (the in-sandbox daemon, reached through the proxy) under
 * http://127.0.0.1:PORT/toolbox/{sandboxId}/..., following
 * shared/specs/daytona-api.md. Each emulated sandbox is one sandbox of
 * libsandbox's local backend, so commands really run.
 *
 * The emulator runs its own thread and main context, so that a test can call
 * the synchronous libsandbox API against it from the main thread. Every
 * function here may be called from any thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsoup/soup.h>
#include <libsandbox/sandbox.h>

G_BEGIN_DECLS

typedef struct _DaytonaEmulator DaytonaEmulator;

/* The API key the emulator accepts unless told otherwise. */
#define DAYTONA_EMULATOR_DEFAULT_API_KEY "daytona-emulator-key"

/**
 * DaytonaEmulatorHook:
 * @emulator: the emulator
 * @msg: the request, not answered yet
 * @path: its path
 * @user_data: the data given with the hook
 *
 * Called in the emulator thread before any request is dispatched, for fault
 * injection. Return %TRUE when the hook answered @msg itself.
 */
typedef gboolean (*DaytonaEmulatorHook) (DaytonaEmulator   *emulator,
                                         SoupServerMessage *msg,
                                         const char        *path,
                                         gpointer           user_data);

DaytonaEmulator *daytona_emulator_new               (GError          **error);
void             daytona_emulator_free              (DaytonaEmulator  *self);
/* The API base URL, ending in /api: what DAYTONA_API_URL should be. */
const char      *daytona_emulator_get_url           (DaytonaEmulator  *self);
const char      *daytona_emulator_get_api_key       (DaytonaEmulator  *self);
void             daytona_emulator_set_api_key       (DaytonaEmulator  *self,
                                                     const char       *api_key);
/* A new "daytona" backend of the library that talks to this emulator (its
 * URL and API key set). */
SandboxBackend  *daytona_emulator_new_backend       (DaytonaEmulator  *self);
/* Sandboxes whose local sandbox still exists (not yet deleted). */
guint            daytona_emulator_count_live        (DaytonaEmulator  *self);
/* How long each state transition (creating -> started, stopping ->
 * stopped, destroying -> destroyed) takes. Default 100 ms. */
/* The length of a "minute" of autoStop/autoDeleteInterval (default 60000;
 * also DAYTONA_EMULATOR_MINUTE_MS), so that tests see auto-stop fire. */
void             daytona_emulator_set_minute_ms     (DaytonaEmulator  *self,
                                                      guint             minute_ms);
void             daytona_emulator_set_state_delay   (DaytonaEmulator  *self,
                                                     guint             delay_ms);
/* New sandboxes stay in pending_build forever (no runner ever takes them). */
void             daytona_emulator_set_never_start   (DaytonaEmulator  *self,
                                                     gboolean          never_start);
/* New sandboxes end in state error with this errorReason; NULL to stop. */
void             daytona_emulator_set_fail_start    (DaytonaEmulator  *self,
                                                     const char       *error_reason);
/* The next response to @method on a path starting with @path_prefix (e.g.
 * "GET", "/api/sandbox/") gets a truncated, malformed JSON body (once). */
void             daytona_emulator_break_json_once   (DaytonaEmulator  *self,
                                                     const char       *method,
                                                     const char       *path_prefix);
void             daytona_emulator_set_hook          (DaytonaEmulator  *self,
                                                     DaytonaEmulatorHook hook,
                                                     gpointer          user_data);

/* Called after a request was handled, when it was answered synchronously
 * (its status is set): the hook may rewrite or withhold the answer, e.g.
 * a 502 for a sandbox that was really created (fault injection). The
 * return value is ignored. */
void             daytona_emulator_set_reply_hook    (DaytonaEmulator  *self,
                                                     DaytonaEmulatorHook hook,
                                                     gpointer          user_data);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DaytonaEmulator, daytona_emulator_free)

G_END_DECLS
