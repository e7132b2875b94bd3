/* E2B API emulator: control plane (REST) and envd (Connect + /files) on one
 * loopback listener, with commands run by libsandbox's local backend.
 *
 * The emulator runs in a thread of its own with its own main context, so a
 * test can call the synchronous libsandbox API against it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsoup/soup.h>
#include <libsandbox/sandbox.h>

G_BEGIN_DECLS

/* The one API key the emulator accepts (E2B keys look like e2b_<hex>). */
#define E2B_EMULATOR_API_KEY "e2b_00000000000000000000000000000000000e2b00"

typedef struct _E2bEmulator E2bEmulator;

/* Called on the emulator thread for every request before it is handled;
 * return TRUE when the hook answered the request itself (fault injection). */
typedef gboolean (*E2bEmulatorRequestHook) (E2bEmulator       *emulator,
                                            SoupServerMessage *msg,
                                            const char        *path,
                                            gpointer           user_data);

E2bEmulator *e2b_emulator_new                     (GError      **error);
const char  *e2b_emulator_get_api_url             (E2bEmulator  *self);
const char  *e2b_emulator_get_sandbox_url         (E2bEmulator  *self);
const char  *e2b_emulator_get_api_key             (E2bEmulator  *self);
/* A new "e2b" backend of the library that talks to this emulator (its
 * URLs and API key set). */
SandboxBackend *e2b_emulator_new_backend          (E2bEmulator  *self);
/* Sandboxes alive (created, not killed, not expired). */
guint        e2b_emulator_count_live              (E2bEmulator  *self);
void         e2b_emulator_free                    (E2bEmulator  *self);

/* Test knobs, callable from any thread. */
/* The next process stream stops in the middle of a frame. */
void         e2b_emulator_set_truncate_next_stream (E2bEmulator *self,
                                                    gboolean     truncate);
/* Overrides the client's Keepalive-Ping-Interval (0: use the header). */
void         e2b_emulator_set_keepalive_ms        (E2bEmulator  *self,
                                                   guint         ms);
/* Set before the first request. */
void         e2b_emulator_set_request_hook        (E2bEmulator            *self,
                                                   E2bEmulatorRequestHook  hook,
                                                   gpointer                user_data);

/* Called after a request was handled, when it was answered synchronously
 * (its status is set): the hook may rewrite or withhold the answer (fault
 * injection). The return value is ignored. Set before the first request. */
void         e2b_emulator_set_reply_hook          (E2bEmulator            *self,
                                                   E2bEmulatorRequestHook  hook,
                                                   gpointer                user_data);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (E2bEmulator, e2b_emulator_free)

G_END_DECLS
