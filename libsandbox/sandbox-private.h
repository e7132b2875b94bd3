/* libsandbox - private helpers shared by the core and the backends
 *
 * Not installed, not scanned. Everything here is prefixed _sandbox_.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <glib/gi18n-lib.h>

#include "sandbox.h"
#include "sandbox-display-private.h"

G_BEGIN_DECLS

/* Runs an _async call to completion on a private main context, for the
 * synchronous variants of the API. Every one has this body:
 *
 *   g_auto(SandboxSyncCall) call = SANDBOX_SYNC_CALL_INIT;
 *
 *   g_return_val_if_fail (SANDBOX_IS_THING (self), NULL);
 *
 *   _sandbox_sync_call_init (&call);
 *   sandbox_thing_do_async (self, ..., cancellable, _sandbox_sync_call_done, &call);
 *   return sandbox_thing_do_finish (self, _sandbox_sync_call_wait (&call), error);
 *
 * (the context is released when `call` goes out of scope, after _finish). */
typedef struct
{
  GMainContext *context;
  GAsyncResult *result;
} SandboxSyncCall;

#define SANDBOX_SYNC_CALL_INIT { NULL, NULL }

void          _sandbox_sync_call_init     (SandboxSyncCall *call);
void          _sandbox_sync_call_done     (GObject         *source,
                                           GAsyncResult    *result,
                                           gpointer         user_data);
GAsyncResult *_sandbox_sync_call_wait     (SandboxSyncCall *call);
/* Does nothing to a call never started (a failed g_return_val_if_fail). */
void          _sandbox_sync_call_clear    (SandboxSyncCall *call);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (SandboxSyncCall, _sandbox_sync_call_clear)

/* The start of every public _async wrapper: a task of SOURCE_OBJECT for
 * the caller's CALLBACK, tagged with SOURCE_TAG (the wrapper itself), for
 * its _finish to check. */
GTask        *_sandbox_task_new_tagged    (gpointer             source_object,
                                           GCancellable        *cancellable,
                                           GAsyncReadyCallback  callback,
                                           gpointer             user_data,
                                           gpointer             source_tag);

/* GTask results that C, Python and gjs subclasses complete the same way. */
void          _sandbox_task_return_object (GTask           *task,
                                           gpointer         object);
gpointer      _sandbox_task_propagate_object (GTask        *task,
                                              GType         type,
                                              GError      **error);

/* A GTask completed with a G_TYPE_STRV value (volumes, port URLs).
 * Inline: the remote backends module completes such tasks too, and
 * imports nothing for it. */
static inline void
_sandbox_task_return_strv (GTask  *task,
                           char  **strv)
{
  GValue value = G_VALUE_INIT;

  g_value_init (&value, G_TYPE_STRV);
  g_value_take_boxed (&value, strv);
  g_task_return_value (task, &value);
  g_value_unset (&value);
}

/* Completes a dup_port_url task: URL, and TOKEN when not NULL. */
static inline void
_sandbox_task_return_port_url (GTask      *task,
                               const char *url,
                               const char *token)
{
  char **strv = g_new0 (char *, 3);

  strv[0] = g_strdup (url);
  strv[1] = g_strdup (token);
  _sandbox_task_return_strv (task, strv);
}

char        **_sandbox_task_propagate_strv (GTask          *task,
                                            GError        **error);

/* Call right after a GTask-taking vfunc returns (see sandbox-util.c). */
void          _sandbox_task_check_pending (GTask           *task,
                                           const char      *vfunc);

void          _sandbox_init_i18n          (void);

/* sandbox_backend_run: run the run TASK's command in INSTANCE, made for
 * it, then destroy INSTANCE and complete TASK (whose reference it takes). */
void          _sandbox_backend_run_in     (GTask           *task,
                                           SandboxInstance *instance);
void          _sandbox_command_set_sandbox_id (SandboxCommand *command,
                                               const char     *id);

/* Registers local, daytona, e2b: defined in backends/sandbox-builtins.c,
 * the one file that knows the built-in backends. */
void          _sandbox_register_builtin_backends (void);

/* The user's runtime directory, where the local sandboxes are by default:
 * $XDG_RUNTIME_DIR; without it, a private directory on a tmpfs (RUN_USER/UID,
 * else SHM/libsandbox-UID, made 0700), so that creating and removing a
 * sandbox stays in memory; else GLib's fallback, the user's cache
 * directory. The fallback alone takes its places as arguments, for tests;
 * it returns NULL where neither can be used. */
#define SANDBOX_RUNTIME_DIR_MIN_SIZE (G_GUINT64_CONSTANT (1) << 30)
char         *_sandbox_user_runtime_dir   (void);
char         *_sandbox_runtime_dir_fallback (const char *run_user,
                                             const char *shm);
/* Where images and volumes are kept by default for the sandboxes'
 * directory SANDBOXES_DIR: beside it, but for the /dev/shm fallback,
 * where they stay in the cache directory (on disk), as before it. */
char         *_sandbox_local_data_dir     (const char *sandboxes_dir);
/* Whether DIR (a directory that exists, or nothing: TRUE) can be changed
 * only by root and this user: DIR is this user's and writable by no one
 * else, and every directory above it is root's or this user's, sticky
 * where others may write it. A directory that another user may rename
 * entries of lets that user swap in links and records the library then
 * follows and trusts (as root under `sudo -E`, XDG_RUNTIME_DIR and HOME
 * are still the invoking user's). WHAT names DIR at the start of the
 * error (SANDBOX_ERROR_NOT_CONFIGURED): "The image store". */
gboolean      _sandbox_check_private_dir  (const char  *dir,
                                           const char  *what,
                                           GError     **error);

/* Images (sandbox-image-store.c) for the local backend, and the one
 * local-backend function the store needs. */
char         *_sandbox_local_default_root (void);
char         *_sandbox_image_store_default_path (const char *sandboxes_dir);
gboolean      _sandbox_image_resolve_user (SandboxImage  *image,
                                           gint64        *uid,
                                           gint64        *gid,
                                           GError       **error);
int           _sandbox_image_store_hold   (SandboxImageStore *self);
gboolean      _local_server_alive         (const char    *dir);

/* An image layer: see sandbox-archive.c. */
gboolean      _sandbox_archive_extract_layer (GInputStream  *archive,
                                              GFile         *dest_dir,
                                              GChecksum     *checksum,
                                              GCancellable  *cancellable,
                                              GError       **error);

G_END_DECLS
