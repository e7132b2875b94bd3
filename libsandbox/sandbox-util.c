/* libsandbox - private helpers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "sandbox-private.h"

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

/* The private contexts of synchronous calls are pooled per thread, and a
 * call takes one that no call of this thread is using (calls may nest).
 * Reusing them keeps the number of contexts small, which lets the REST
 * client keep one SoupSession, and its kept-alive connections, per
 * context (sandbox-rest.c). */
static void
free_pool (gpointer data)
{
  g_slist_free_full (data, (GDestroyNotify) g_main_context_unref);
}

static GPrivate sync_pool = G_PRIVATE_INIT (free_pool);

void
_sandbox_sync_call_init (SandboxSyncCall *call)
{
  GSList *pool = g_private_get (&sync_pool);

  if (pool != NULL)
    {
      call->context = pool->data;
      g_private_set (&sync_pool, g_slist_delete_link (pool, pool));
    }
  else
    call->context = g_main_context_new ();
  call->result = NULL;
  g_main_context_push_thread_default (call->context);
}

void
_sandbox_sync_call_done (GObject      *source,
                         GAsyncResult *result,
                         gpointer      user_data)
{
  SandboxSyncCall *call = user_data;

  call->result = g_object_ref (result);
  g_main_context_wakeup (call->context);
}

GAsyncResult *
_sandbox_sync_call_wait (SandboxSyncCall *call)
{
  while (call->result == NULL)
    g_main_context_iteration (call->context, TRUE);
  return call->result;
}

void
_sandbox_sync_call_clear (SandboxSyncCall *call)
{
  if (call->context == NULL)
    return;
  g_main_context_pop_thread_default (call->context);
  /* Let sources that finish after the result (stream closes, child
   * watches) run down before the context goes away. */
  while (g_main_context_pending (call->context))
    g_main_context_iteration (call->context, FALSE);
  g_clear_object (&call->result);
  /* Back into the pool (g_private_replace would free the old list). */
  {
    GSList *pool = g_private_get (&sync_pool);

    g_private_set (&sync_pool, g_slist_prepend (pool, g_steal_pointer (&call->context)));
  }
}

GTask *
_sandbox_task_new_tagged (gpointer             source_object,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data,
                          gpointer             source_tag)
{
  GTask *task = g_task_new (source_object, cancellable, callback, user_data);

  g_task_set_source_tag (task, source_tag);
  return task;
}

void
_sandbox_task_return_object (GTask    *task,
                             gpointer  object)
{
  GValue value = G_VALUE_INIT;

  g_value_init (&value, G_OBJECT_TYPE (object));
  g_value_set_object (&value, object);
  g_task_return_value (task, &value);
  g_value_unset (&value);
}

gpointer
_sandbox_task_propagate_object (GTask   *task,
                                GType    type,
                                GError **error)
{
  GValue value = G_VALUE_INIT;
  gpointer object = NULL;

  if (!g_task_propagate_value (task, &value, error))
    return NULL;

  if (G_VALUE_HOLDS_OBJECT (&value) &&
      g_value_get_object (&value) != NULL &&
      g_type_is_a (G_OBJECT_TYPE (g_value_get_object (&value)), type))
    object = g_value_dup_object (&value);
  else
    g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                 _("The backend completed the operation with a %s where a %s was expected; "
                   "this is a bug in the backend"),
                 G_VALUE_TYPE_NAME (&value), g_type_name (type));

  g_value_unset (&value);
  return object;
}

char **
_sandbox_task_propagate_strv (GTask   *task,
                              GError **error)
{
  GValue value = G_VALUE_INIT;
  char **strv = NULL;

  if (!g_task_propagate_value (task, &value, error))
    return NULL;
  if (G_VALUE_HOLDS (&value, G_TYPE_STRV))
    strv = g_value_dup_boxed (&value);
  if (strv == NULL)
    g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                 _("The backend completed the operation with a %s where a list of strings "
                   "was expected; this is a bug in the backend"),
                 G_VALUE_TYPE_NAME (&value));
  g_value_unset (&value);
  return strv;
}

void
_sandbox_task_check_pending (GTask      *task,
                             const char *vfunc)
{
  /* A task completed in the call that created it is held by the idle
   * source that delivers it; one kept for later is held by its keeper.
   * Held only by the caller, it can never complete: the implementation
   * returned without completing it, as a Python or JavaScript vfunc does
   * when it raises. Fail it rather than leave the caller waiting forever. */
  if (g_atomic_int_get (&G_OBJECT (task)->ref_count) == 1)
    g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                             _("The %s implementation of %s returned without completing the "
                               "operation (in Python or JavaScript: it raised an exception, "
                               "printed above). This is a bug in that backend."),
                             G_OBJECT_TYPE_NAME (g_task_get_source_object (task)), vfunc);
}

void
_sandbox_init_i18n (void)
{
  static gsize initialized = 0;

  if (g_once_init_enter (&initialized))
    {
      /* SANDBOX_LOCALEDIR: catalogs from somewhere else than the installed
       * ones, e.g. the build tree's in tests/i18n/test-translations.sh. */
      const char *localedir = g_getenv ("SANDBOX_LOCALEDIR");

      bindtextdomain (GETTEXT_PACKAGE,
                      localedir != NULL && *localedir != '\0' ? localedir : LOCALEDIR);
      bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
      g_once_init_leave (&initialized, 1);
    }
}

/* DIR, if it is a directory of this user's own that nobody else can enter
 * (not a link: lstat), on a tmpfs large enough for sandboxes' files. */
static gboolean
private_tmpfs_dir (const char *dir)
{
  struct stat st;
  struct statfs fs;

  if (lstat (dir, &st) != 0 || !S_ISDIR (st.st_mode) || st.st_uid != geteuid () ||
      (st.st_mode & 077) != 0)
    return FALSE;
  if (statfs (dir, &fs) != 0 || fs.f_type != TMPFS_MAGIC)
    return FALSE;
  /* A container's 64 MiB /dev/shm would cap every sandbox's files. */
  return (guint64) fs.f_blocks * (guint64) fs.f_bsize >= SANDBOX_RUNTIME_DIR_MIN_SIZE;
}

char *
_sandbox_runtime_dir_fallback (const char *run_user,
                               const char *shm)
{
  g_autofree char *mine = NULL;
  g_autofree char *ours = NULL;

  /* systemd's runtime directory, when only the variable was lost (su,
   * sudo, a service's environment). */
  mine = g_strdup_printf ("%s/%u", run_user, (guint) geteuid ());
  if (private_tmpfs_dir (mine))
    return g_steal_pointer (&mine);
  /* Else one of ours in SHM (a sticky directory: nobody else can remove
   * or rename it once it is ours; one that someone else made first, or
   * with other permissions, is not used). */
  ours = g_strdup_printf ("%s/libsandbox-%u", shm, (guint) geteuid ());
  if ((g_mkdir (ours, 0700) == 0 || errno == EEXIST) && private_tmpfs_dir (ours))
    return g_steal_pointer (&ours);
  return NULL;
}

gboolean
_sandbox_check_private_dir (const char  *dir,
                            const char  *what,
                            GError     **error)
{
  g_autofree char *real = realpath (dir, NULL);
  uid_t me = geteuid ();
  size_t len;

  if (real == NULL)
    return errno == ENOENT || errno == ENOTDIR;
  len = strlen (real);
  /* "/", then each longer prefix up to REAL itself. */
  for (size_t end = 1; end <= len; end++)
    {
      struct stat st = { 0 };
      gboolean last = end == len;
      char saved = real[end];

      if (end > 1 && !last && real[end] != '/')
        continue;
      real[end] = '\0';
      /* After realpath, a link here was put since: refused too. */
      if (lstat (real, &st) != 0 || !S_ISDIR (st.st_mode) ||
          (st.st_uid != 0 && st.st_uid != me) ||
          ((st.st_mode & 022) != 0 && !(st.st_mode & S_ISVTX)) ||
          (last && (st.st_uid != me || (st.st_mode & 022) != 0)))
        {
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED,
                       _("%s %s is not safe to use: %s (owner uid %u, mode %04o) can be "
                         "changed by another user than you and root, who could plant or swap "
                         "what the library trusts there. Use a directory of your own, writable "
                         "only by you, below directories only you or root can change (as root "
                         "under “sudo -E”, XDG_RUNTIME_DIR and HOME are still the invoking "
                         "user's): set SANDBOX_LOCAL_ROOT, SANDBOX_LOCAL_VOLUMES or "
                         "SANDBOX_IMAGE_STORE."),
                       what, dir, real, (guint) st.st_uid, (guint) (st.st_mode & 07777));
          return FALSE;
        }
      real[end] = saved;
    }
  return TRUE;
}

char *
_sandbox_local_data_dir (const char *sandboxes_dir)
{
  g_autofree char *parent = g_path_get_dirname (sandboxes_dir);
  g_autofree char *ours = g_strdup_printf ("/dev/shm/libsandbox-%u/libsandbox", (guint) geteuid ());

  /* Sandboxes in our /dev/shm directory: images and volumes stay where
   * they were without a runtime directory, on disk, across reboots. */
  if (strcmp (parent, ours) == 0)
    return g_build_filename (g_get_user_cache_dir (), "libsandbox", NULL);
  return g_steal_pointer (&parent);
}

char *
_sandbox_user_runtime_dir (void)
{
  const char *env = g_getenv ("XDG_RUNTIME_DIR");
  char *dir;

  if (env == NULL || *env == '\0')
    {
      dir = _sandbox_runtime_dir_fallback ("/run/user", "/dev/shm");
      if (dir != NULL)
        return dir;
    }
  /* $XDG_RUNTIME_DIR; without a tmpfs, GLib's fallback (the cache). */
  return g_strdup (g_get_user_runtime_dir ());
}
