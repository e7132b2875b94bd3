/* What both API emulators (Daytona, E2B) need the same way
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <linux/magic.h>
#include <sys/statfs.h>

#include "emu-common.h"

#define EMU_TYPE_SINK (emu_sink_get_type ())
G_DECLARE_FINAL_TYPE (EmuSink, emu_sink, EMU, SINK, GOutputStream)

struct _EmuSink
{
  GOutputStream  parent_instance;
  EmuSinkWrite   write;
  gboolean       is_stderr;
  gpointer       user_data;
  GDestroyNotify destroy;
};

G_DEFINE_FINAL_TYPE (EmuSink, emu_sink, G_TYPE_OUTPUT_STREAM)

static gssize
emu_sink_write (GOutputStream  *stream,
                const void     *buffer,
                gsize           count,
                GCancellable   *cancellable,
                GError        **error)
{
  EmuSink *self = EMU_SINK (stream);

  self->write (self->user_data, self->is_stderr, buffer, count);
  return (gssize) count;
}

/* The local backend writes asynchronously; answer at once, on this thread. */
static void
emu_sink_write_async (GOutputStream       *stream,
                      const void          *buffer,
                      gsize                count,
                      int                  io_priority,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (stream, cancellable, callback, user_data);

  g_task_return_int (task, emu_sink_write (stream, buffer, count, cancellable, NULL));
}

static gssize
emu_sink_write_finish (GOutputStream  *stream,
                       GAsyncResult   *result,
                       GError        **error)
{
  return g_task_propagate_int (G_TASK (result), error);
}

/* Flush and close: nothing to do, done at once (not in a thread). */
static void
emu_sink_nothing_async (GOutputStream       *stream,
                        int                  io_priority,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (stream, cancellable, callback, user_data);

  g_task_return_boolean (task, TRUE);
}

static gboolean
emu_sink_nothing_finish (GOutputStream  *stream,
                         GAsyncResult   *result,
                         GError        **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static gboolean
emu_sink_close (GOutputStream  *stream,
                GCancellable   *cancellable,
                GError        **error)
{
  return TRUE;
}

static void
emu_sink_finalize (GObject *object)
{
  EmuSink *self = EMU_SINK (object);

  if (self->destroy != NULL)
    self->destroy (self->user_data);
  G_OBJECT_CLASS (emu_sink_parent_class)->finalize (object);
}

static void
emu_sink_class_init (EmuSinkClass *klass)
{
  GOutputStreamClass *stream_class = G_OUTPUT_STREAM_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = emu_sink_finalize;
  stream_class->write_fn = emu_sink_write;
  stream_class->write_async = emu_sink_write_async;
  stream_class->write_finish = emu_sink_write_finish;
  stream_class->flush_async = emu_sink_nothing_async;
  stream_class->flush_finish = emu_sink_nothing_finish;
  stream_class->close_fn = emu_sink_close;
  stream_class->close_async = emu_sink_nothing_async;
  stream_class->close_finish = emu_sink_nothing_finish;
}

static void
emu_sink_init (EmuSink *self)
{
}

GOutputStream *
_emu_sink_new (EmuSinkWrite   write,
               gboolean       is_stderr,
               gpointer       user_data,
               GDestroyNotify destroy)
{
  EmuSink *self = g_object_new (EMU_TYPE_SINK, NULL);

  self->write = write;
  self->is_stderr = is_stderr;
  self->user_data = user_data;
  self->destroy = destroy;
  return G_OUTPUT_STREAM (self);
}

static void
no_content_keeps_alive (SoupServerMessage *msg)
{
  if (soup_server_message_get_status (msg) == SOUP_STATUS_NO_CONTENT)
    soup_message_headers_set_encoding (soup_server_message_get_response_headers (msg),
                                       SOUP_ENCODING_NONE);
}

void
_emu_keep_alive_on_no_content (SoupServerMessage *msg)
{
  g_signal_connect (msg, "wrote-headers", G_CALLBACK (no_content_keeps_alive), NULL);
}

typedef struct
{
  GMainContext *context;
  GMainLoop    *loop;
  EmuStartFunc  start;
  EmuStopFunc   stop;
  gpointer      emu;
  /* The start-up handshake, on the stack of _emu_thread_new (). */
  GMutex        lock;
  GCond         cond;
  gboolean      ready;
  GError       *error;
} EmuThread;

static gpointer
emu_thread (gpointer data)
{
  EmuThread *thread = data;
  EmuThread copy = *thread;   /* *thread is gone once ready */
  GError *error = NULL;
  gboolean ok;

  g_main_context_push_thread_default (copy.context);
  ok = copy.start (copy.emu, &error);
  g_mutex_lock (&thread->lock);
  thread->error = error;
  thread->ready = TRUE;
  g_cond_signal (&thread->cond);
  g_mutex_unlock (&thread->lock);
  if (ok)
    g_main_loop_run (copy.loop);
  copy.stop (copy.emu);
  g_main_context_pop_thread_default (copy.context);
  return NULL;
}

GThread *
_emu_thread_new (const char    *name,
                 GMainContext  *context,
                 GMainLoop     *loop,
                 EmuStartFunc   start,
                 EmuStopFunc    stop,
                 gpointer       emu,
                 GError       **error)
{
  EmuThread thread = { context, loop, start, stop, emu };
  GThread *self;

  g_mutex_init (&thread.lock);
  g_cond_init (&thread.cond);
  self = g_thread_new (name, emu_thread, &thread);
  g_mutex_lock (&thread.lock);
  while (!thread.ready)
    g_cond_wait (&thread.cond, &thread.lock);
  g_mutex_unlock (&thread.lock);
  g_mutex_clear (&thread.lock);
  g_cond_clear (&thread.cond);
  if (thread.error != NULL)
    {
      g_propagate_error (error, thread.error);
      g_thread_join (self);
      return NULL;
    }
  return self;
}

static gboolean
quit_loop (gpointer loop)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

void
_emu_thread_quit (GThread      *thread,
                  GMainContext *context,
                  GMainLoop    *loop)
{
  g_main_context_invoke (context, quit_loop, loop);
  g_thread_join (thread);
}

const char *
_emu_query (GHashTable *query,
            const char *name)
{
  return query != NULL ? g_hash_table_lookup (query, name) : NULL;
}

static gboolean
on_signal (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

void
_emu_main_serve (void)
{
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);

  printf ("READY\n");
  fflush (stdout);
  g_unix_signal_add (SIGINT, on_signal, loop);
  g_unix_signal_add (SIGTERM, on_signal, loop);
  g_main_loop_run (loop);
}

/* One database (passwd or group) with the sandbox's id named NAME. */
static gboolean
write_account_file (const char  *source,
                    const char  *target,
                    const char  *line,
                    const char  *name,
                    GError     **error)
{
  g_autofree char *contents = NULL;
  g_autoptr(GString) out = g_string_new (NULL);

  if (g_file_get_contents (source, &contents, NULL, NULL))
    {
      g_auto(GStrv) lines = g_strsplit (contents, "\n", -1);

      for (guint i = 0; lines[i] != NULL; i++)
        {
          g_auto(GStrv) fields = g_strsplit (lines[i], ":", 4);

          if (*lines[i] == '\0')
            continue;
          /* The sandbox's id and the new name are the service's user only. */
          if (g_strv_length (fields) >= 3 &&
              (strcmp (fields[2], EMU_SANDBOX_ID) == 0 || strcmp (fields[0], name) == 0))
            continue;
          g_string_append_printf (out, "%s\n", lines[i]);
        }
    }
  g_string_append_printf (out, "%s\n", line);
  return g_file_set_contents (target, out->str, (gssize) out->len, error);
}

gboolean
_emu_add_user_files_from (SandboxSpec  *spec,
                          const char   *rootfs,
                          const char   *dir,
                          const char   *user,
                          const char   *home,
                          GError      **error)
{
  g_autofree char *passwd = g_build_filename (dir, "passwd", NULL);
  g_autofree char *group = g_build_filename (dir, "group", NULL);
  g_autofree char *passwd_line = g_strdup_printf ("%s:x:%s:%s::%s:/bin/bash", user, EMU_SANDBOX_ID,
                                                  EMU_SANDBOX_ID, home);
  g_autofree char *group_line = g_strdup_printf ("%s:x:%s:", user, EMU_SANDBOX_ID);
  g_autofree char *etc = g_build_filename (rootfs ? rootfs : "/", "etc", NULL);
  g_autofree char *source_passwd = g_build_filename (etc, "passwd", NULL);
  g_autofree char *source_group = g_build_filename (etc, "group", NULL);

  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      int errsv = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv), "cannot make %s: %s", dir,
                   g_strerror (errsv));
      return FALSE;
    }
  if (!write_account_file (source_passwd, passwd, passwd_line, user, error) ||
      !write_account_file (source_group, group, group_line, user, error))
    return FALSE;
  /* An image's read-only /etc without those files has no place to mount
   * them on: a copy of its /etc with them is mounted over it instead. (An
   * image without /etc gets one.) */
  if (rootfs != NULL && g_file_test (etc, G_FILE_TEST_IS_DIR) &&
      (!g_file_test (source_passwd, G_FILE_TEST_EXISTS) || !g_file_test (source_group, G_FILE_TEST_EXISTS)))
    {
      g_autofree char *copy = g_build_filename (dir, "etc", NULL);
      g_autofree char *copy_passwd = g_build_filename (copy, "passwd", NULL);
      g_autofree char *copy_group = g_build_filename (copy, "group", NULL);
      g_autofree char *from = g_build_filename (etc, ".", NULL);
      /* Writable, so that the emulator can remove it with the sandbox. */
      const char *argv[] = { "cp", "-R", "-P", "--no-preserve=mode", "--", from, copy, NULL };
      int status = 0;

      if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                         NULL, NULL, NULL, NULL, &status, error) ||
          !g_spawn_check_wait_status (status, error))
        return FALSE;
      if (!write_account_file (passwd, copy_passwd, passwd_line, user, error) ||
          !write_account_file (group, copy_group, group_line, user, error))
        return FALSE;
      sandbox_spec_add_mount (spec, copy, "/etc", TRUE);
      return TRUE;
    }
  sandbox_spec_add_mount (spec, passwd, "/etc/passwd", TRUE);
  sandbox_spec_add_mount (spec, group, "/etc/group", TRUE);
  return TRUE;
}

gboolean
_emu_add_user_files (SandboxSpec  *spec,
                     const char   *dir,
                     const char   *user,
                     const char   *home,
                     GError      **error)
{
  return _emu_add_user_files_from (spec, NULL, dir, user, home, error);
}

SandboxSpec *
_emu_local_spec_new (const char *label,
                     const char *id,
                     GHashTable *env)
{
  return _emu_local_spec_new_on (label, id, env, NULL);
}

/* On the host's root, what the providers' default images have and a
 * Debian host lacks: `python` and a `sudo` for the sandbox's user
 * (tests/emulators/provider-bin, docs/testing.md "Images in the
 * emulators"). Mounted where the PATHs the sandboxes get look and the
 * host has an empty directory, so that the mount hides nothing:
 * /usr/local/sbin (the local backend's PATH, and a root login's) and
 * /usr/local/games (Debian's /etc/profile PATH for other users, which
 * E2B's `bash -l` commands get). EMU_PROVIDER_BIN in the environment
 * names another directory ("" for none). */
static void
add_provider_tools (SandboxSpec *spec)
{
  static const char * const targets[] = { "/usr/local/sbin", "/usr/local/games", NULL };
  const char *dir = g_getenv ("EMU_PROVIDER_BIN");

  if (dir == NULL)
    dir = EMU_PROVIDER_BIN;
  if (*dir == '\0' || !g_file_test (dir, G_FILE_TEST_IS_DIR))
    return;
  for (guint i = 0; targets[i] != NULL; i++)
    {
      g_autoptr(GDir) target = NULL;

      if (!g_file_test (targets[i], G_FILE_TEST_IS_SYMLINK) &&
          (target = g_dir_open (targets[i], 0, NULL)) != NULL && g_dir_read_name (target) == NULL)
        sandbox_spec_add_mount (spec, dir, targets[i], TRUE);
    }
}

SandboxSpec *
_emu_local_spec_new_on (const char     *label,
                        const char     *id,
                        GHashTable     *env,
                        const EmuImage *image)
{
  SandboxSpec *spec = sandbox_spec_new ();

  if (env != NULL)
    {
      GHashTableIter iter;
      gpointer key, value;

      g_hash_table_iter_init (&iter, env);
      while (g_hash_table_iter_next (&iter, &key, &value))
        sandbox_spec_set_env (spec, key, value);
    }
  sandbox_spec_set_label (spec, label, id);
  sandbox_spec_set_die_with_owner (spec, TRUE);
  if (image != NULL && image->reference != NULL)
    sandbox_spec_set_image (spec, image->reference);
  else
    {
      if (g_file_test ("/var/tmp", G_FILE_TEST_IS_DIR) && !g_file_test ("/var/tmp", G_FILE_TEST_IS_SYMLINK))
        sandbox_spec_add_mount (spec, "/var/tmp", NULL, TRUE);
      add_provider_tools (spec);
    }
  return spec;
}

/* ------------------------------------------------------------------ */
/* Images                                                              */

typedef struct
{
  char *pattern;
  char *target;   /* "host", "=", or a store reference */
  char *origin;   /* "FILE:LINE" or "the default mapping" */
} EmuImageRule;

struct _EmuImages
{
  GPtrArray *rules;      /* EmuImageRule, the file's */
  GPtrArray *defaults;   /* EmuImageRule, the built-in ones */
  char      *env_var;
  char      *file;       /* or NULL */
};

static void
emu_image_rule_free (EmuImageRule *rule)
{
  g_free (rule->pattern);
  g_free (rule->target);
  g_free (rule->origin);
  g_free (rule);
}

static gboolean
parse_image_rules (GPtrArray   *rules,
                   const char  *text,
                   const char  *file,
                   GError     **error)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *line = g_strstrip (lines[i]);
      char *eq = strchr (line, '=');
      EmuImageRule *rule;

      if (*line == '\0' || *line == '#')
        continue;
      if (eq == NULL || eq == line)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       "%s:%u: '%s' is not a rule: write 'NAME = REFERENCE' (REFERENCE an image "
                       "of the store, '=' for NAME itself, or 'host')",
                       file ? file : "the default mapping", i + 1, line);
          return FALSE;
        }
      *eq = '\0';
      rule = g_new0 (EmuImageRule, 1);
      rule->pattern = g_strstrip (g_strdup (line));
      rule->target = g_strstrip (g_strdup (eq + 1));
      rule->origin = file ? g_strdup_printf ("%s:%u", file, i + 1) : g_strdup ("the default mapping");
      if (*rule->pattern == '\0' || *rule->target == '\0')
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       "%s: a rule needs a name and a reference on either side of '='", rule->origin);
          emu_image_rule_free (rule);
          return FALSE;
        }
      g_ptr_array_add (rules, rule);
    }
  return TRUE;
}

EmuImages *
_emu_images_new (const char  *env_var,
                 const char  *defaults,
                 GError     **error)
{
  EmuImages *self = g_new0 (EmuImages, 1);
  const char *file = g_getenv (env_var);

  self->rules = g_ptr_array_new_with_free_func ((GDestroyNotify) emu_image_rule_free);
  self->defaults = g_ptr_array_new_with_free_func ((GDestroyNotify) emu_image_rule_free);
  self->env_var = g_strdup (env_var);
  if (!parse_image_rules (self->defaults, defaults, NULL, error))
    {
      _emu_images_free (self);
      return NULL;
    }
  if (file != NULL && *file != '\0')
    {
      g_autofree char *text = NULL;
      g_autoptr(GError) local_error = NULL;

      self->file = g_strdup (file);
      if (!g_file_get_contents (file, &text, NULL, &local_error))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                       "%s=%s: %s; set it to a readable image mapping (docs/testing.md)",
                       env_var, file, local_error->message);
          _emu_images_free (self);
          return NULL;
        }
      if (!parse_image_rules (self->rules, text, file, error))
        {
          _emu_images_free (self);
          return NULL;
        }
    }
  return self;
}

void
_emu_images_free (EmuImages *self)
{
  if (self == NULL)
    return;
  g_ptr_array_unref (self->rules);
  g_ptr_array_unref (self->defaults);
  g_free (self->env_var);
  g_free (self->file);
  g_free (self);
}

void
_emu_image_free (EmuImage *image)
{
  if (image == NULL)
    return;
  g_free (image->reference);
  g_free (image->rootfs);
  g_clear_object (&image->image);
  g_free (image->how);
  g_free (image);
}

static EmuImageRule *
find_rule (GPtrArray  *rules,
           const char *name)
{
  for (guint i = 0; i < rules->len; i++)
    {
      EmuImageRule *rule = g_ptr_array_index (rules, i);

      if (g_pattern_match_simple (rule->pattern, name))
        return rule;
    }
  return NULL;
}

static EmuImage *
image_from_rule (const char    *name,
                 EmuImageRule  *rule,
                 GError       **error)
{
  g_autoptr(EmuImage) image = g_new0 (EmuImage, 1);
  const char *reference = strcmp (rule->target, "=") == 0 ? name : rule->target;
  g_autoptr(SandboxImageStore) store = NULL;
  g_autoptr(GError) local_error = NULL;

  if (strcmp (rule->target, "host") == 0)
    {
      image->how = g_strdup_printf ("'%s' runs on the host's root file system (rule '%s = host' "
                                    "of %s)", name, rule->pattern, rule->origin);
      return g_steal_pointer (&image);
    }
  store = sandbox_image_store_new (NULL);
  image->image = sandbox_image_store_lookup (store, reference, NULL, &local_error);
  if (image->image == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   "'%s' maps to the image '%s' (%s), which is not in the image store %s: "
                   "import it with 'sandboxctl image import FILE --name %s'",
                   name, reference, rule->origin, sandbox_image_store_get_path (store), reference);
      return NULL;
    }
  image->reference = g_strdup (sandbox_image_get_id (image->image));
  image->rootfs = g_strdup (sandbox_image_get_rootfs (image->image));
  image->how = g_strdup_printf ("'%s' runs on the image '%s' (%s) of the image store (%s)", name,
                                reference, image->reference, rule->origin);
  return g_steal_pointer (&image);
}

EmuImage *
_emu_images_resolve (EmuImages   *self,
                     const char  *name,
                     GError     **error)
{
  EmuImageRule *rule = find_rule (self->rules, name);
  EmuImageRule itself = { (char *) name, (char *) "=", (char *) "the name itself" };
  g_autoptr(SandboxImageStore) store = NULL;
  g_autoptr(SandboxImage) found = NULL;

  if (rule != NULL)
    return image_from_rule (name, rule, error);
  store = sandbox_image_store_new (NULL);
  found = sandbox_image_store_lookup (store, name, NULL, NULL);
  if (found != NULL)
    return image_from_rule (name, &itself, error);
  rule = find_rule (self->defaults, name);
  if (rule != NULL)
    return image_from_rule (name, rule, error);
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
               "no image is mapped to '%s': import one with 'sandboxctl image import FILE --name %s' "
               "or add a rule to the file in %s (docs/testing.md)", name, name, self->env_var);
  return NULL;
}

typedef struct
{
  SoupServerMessage *msg;
  EmuRefusedFunc     refused;
  gpointer           user_data;
  GDestroyNotify     free_data;
} Forward;

static void
forward_free (Forward *forward)
{
  g_object_unref (forward->msg);
  if (forward->free_data != NULL)
    forward->free_data (forward->user_data);
  g_free (forward);
}

static void
forwarded (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Forward *forward = user_data;
  SoupMessage *out = soup_session_get_async_result_message (SOUP_SESSION (source), result);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);

  if (body == NULL)
    forward->refused (forward->msg, forward->user_data);
  else
    {
      const char *type = soup_message_headers_get_content_type (soup_message_get_response_headers (out), NULL);
      gsize len;
      const char *data = g_bytes_get_data (body, &len);

      soup_server_message_set_status (forward->msg, soup_message_get_status (out), NULL);
      soup_server_message_set_response (forward->msg, type ? type : "application/octet-stream",
                                        SOUP_MEMORY_COPY, data, len);
    }
  soup_server_message_unpause (forward->msg);
  forward_free (forward);
}

gboolean
_emu_forward_to_port (SoupSession      **proxy,
                      SoupServerMessage *msg,
                      guint              port,
                      const char        *path,
                      EmuRefusedFunc     refused,
                      gpointer           user_data,
                      GDestroyNotify     free_data)
{
  const char *query = g_uri_get_query (soup_server_message_get_uri (msg));
  g_autofree char *target = g_strdup_printf ("http://127.0.0.1:%u%s%s%s", port, path,
                                             query ? "?" : "", query ? query : "");
  g_autoptr(SoupMessage) out = soup_message_new (soup_server_message_get_method (msg), target);
  SoupMessageBody *in = soup_server_message_get_request_body (msg);
  Forward *forward;

  if (out == NULL)
    {
      if (free_data != NULL)
        free_data (user_data);
      return FALSE;
    }
  if (in->length > 0)
    {
      g_autoptr(GBytes) bytes = soup_message_body_flatten (in);
      const char *type = soup_message_headers_get_content_type (soup_server_message_get_request_headers (msg), NULL);

      soup_message_set_request_body_from_bytes (out, type, bytes);
    }
  if (*proxy == NULL)
    *proxy = soup_session_new ();
  forward = g_new0 (Forward, 1);
  forward->msg = g_object_ref (msg);
  forward->refused = refused;
  forward->user_data = user_data;
  forward->free_data = free_data;
  soup_server_message_pause (msg);
  soup_session_send_and_read_async (*proxy, out, G_PRIORITY_DEFAULT, NULL, forwarded, forward);
  return TRUE;
}

/* The host's /tmp is a directory of a shared disk that every program on
 * the machine fills and empties: a provider's sandbox has a disk of its
 * own (E2B: a microVM's root file system; Daytona: a container's), where
 * making a file costs what it costs on a quiet file system. On a busy
 * machine /tmp made a file 2-11x slower than another directory of the same
 * ext4 (docs/benchmarks.md, "Remote backends, eighth look"), which a real
 * sandbox never pays: the emulators keep their sandboxes' files where the
 * local backend keeps its own sandboxes by default, on a tmpfs. */
static gboolean
big_tmpfs (const char *dir)
{
  struct statfs fs;

  return dir != NULL && *dir != '\0' && statfs (dir, &fs) == 0 && fs.f_type == TMPFS_MAGIC &&
         (guint64) fs.f_blocks * (guint64) fs.f_bsize >= (G_GUINT64_CONSTANT (1) << 30) &&
         g_access (dir, W_OK | X_OK) == 0;
}

gboolean
_emu_state_on_tmpfs (void)
{
  return big_tmpfs (g_getenv ("XDG_RUNTIME_DIR")) || big_tmpfs ("/dev/shm");
}

char *
_emu_make_state_dir (const char  *tmpl,
                     GError     **error)
{
  const char *candidates[] = { g_getenv ("XDG_RUNTIME_DIR"), "/dev/shm" };

  for (gsize i = 0; i < G_N_ELEMENTS (candidates); i++)
    if (big_tmpfs (candidates[i]))
      {
        g_autofree char *path = g_build_filename (candidates[i], tmpl, NULL);

        if (g_mkdtemp (path) != NULL)
          return g_steal_pointer (&path);
      }
  return g_dir_make_tmp (tmpl, error);
}
