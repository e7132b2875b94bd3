/* What both API emulators (Daytona, E2B) need the same way
 *
 * JSON helpers come from libsandbox/sandbox-json-private.h, compiled into
 * the emulators too, so that they read requests as the backends read
 * replies.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>
#include <libsandbox/sandbox.h>

#include "sandbox-json-private.h"

G_BEGIN_DECLS

/* Where an emulated command's output goes: @len bytes of stdout, or of
 * stderr when @is_stderr. */
typedef void (*EmuSinkWrite) (gpointer      user_data,
                              gboolean      is_stderr,
                              const guint8 *buf,
                              gsize         len);

/* A write-only GOutputStream (the stdout-stream or stderr-stream of a
 * SandboxCommand run in a local sandbox) that hands every write to @write,
 * (with @is_stderr), and completes every call at once on the calling thread, so that stdout
 * and stderr keep their order. @destroy frees @user_data with the stream. */
GOutputStream *_emu_sink_new                 (EmuSinkWrite       write,
                                              gboolean           is_stderr,
                                              gpointer           user_data,
                                              GDestroyNotify     destroy);

/* The value of the query parameter @name, or NULL; @query (a server
 * callback's) may be NULL. */
const char    *_emu_query                    (GHashTable        *query,
                                              const char        *name);

/* Connect to every request: libsoup 3.2 drops the Content-Length of a 204
 * while writing its headers and then takes the response for an
 * EOF-terminated one: it closes the connection without saying "Connection:
 * close". A client that reuses the connection at once (the e2b SDK's kill
 * then create) gets a reset. The real APIs keep the connection: this says
 * again that a 204 has no body. */
void           _emu_keep_alive_on_no_content (SoupServerMessage *msg);

/* An emulator runs its server on a thread of its own, in @context. */
typedef gboolean (*EmuStartFunc) (gpointer   emu,
                                  GError   **error);
typedef void     (*EmuStopFunc)  (gpointer   emu);

/* Starts the thread @name: it makes @context its thread-default, calls
 * @start, then runs @loop until _emu_thread_quit (), then calls @stop
 * (also after a failed @start). Returns once @start is done: the thread,
 * or NULL and @start's error (the thread is then joined already). */
GThread       *_emu_thread_new               (const char        *name,
                                              GMainContext      *context,
                                              GMainLoop         *loop,
                                              EmuStartFunc       start,
                                              EmuStopFunc        stop,
                                              gpointer           emu,
                                              GError           **error);
/* Quits @loop from any thread and joins @thread. */
void           _emu_thread_quit              (GThread           *thread,
                                              GMainContext      *context,
                                              GMainLoop         *loop);

/* For an emulator program, once it has printed the VAR=value lines a
 * client needs: prints "READY" and serves until SIGINT or SIGTERM. */
void           _emu_main_serve               (void);

/* The id a local sandbox's processes run with (the local backend's
 * LOCAL_SANDBOX_UID): the uid and gid that _emu_add_user_files names. */
#define EMU_SANDBOX_ID "1000"

/* Makes @user (home directory @home) the name of the sandbox's uid and gid,
 * as the provider's images do: copies of the host's /etc/passwd and
 * /etc/group with that entry, written in @dir, mounted read-only over
 * them in @spec. */
gboolean       _emu_add_user_files           (SandboxSpec       *spec,
                                              const char        *dir,
                                              const char        *user,
                                              const char        *home,
                                              GError           **error);

/* The spec of the local sandbox that stands for an emulated one: @env (may
 * be NULL) in its environment, the label @label=@id, ending with the
 * emulator (even when it is killed), and the host's file system read-only,
 * /var/tmp too (a local sandbox makes it private; tests keep Pythons
 * there). */
SandboxSpec   *_emu_local_spec_new           (const char        *label,
                                              const char        *id,
                                              GHashTable        *env);

G_END_DECLS
