/* Cancellation: every backend x operation, a GCancellable fired while the
 * operation is in flight (issue 8, item 2).
 *
 * Remote backends: an emulator hook holds the operation's request (never
 * answers it) and, once it has arrived, another thread fires the
 * cancellable, so the cancellation always lands mid-flight. For create the
 * hook holds the answer after the emulator made the sandbox: the backend
 * must find and delete it. Local backend: a long command (with live output
 * streams) is cancelled while it runs; the other local operations take a
 * cancellable fired before they start, and must make nothing.
 *
 * Asserted per case: the operation ends with G_IO_ERROR_CANCELLED, within
 * CANCEL_BOUND_S of the cancellation (a never-hang guard, not a timing
 * test), and afterwards no sandbox is left but the one the test made
 * (0 live once that one is destroyed).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <unistd.h>
#include <libsandbox/sandbox.h>

#include "../test-util.h"

#include "daytona-emulator.h"
#include "e2b-emulator.h"

#define WATCHDOG_S     30
#define CANCEL_BOUND_S 5

typedef enum { LOCAL, DAYTONA, E2B } Backend;
typedef enum { OP_CREATE, OP_GET, OP_LIST, OP_EXEC, OP_EXEC_LONG, OP_UPLOAD, OP_DOWNLOAD, OP_DESTROY } Op;

static const char *backend_names[] = { "local", "daytona", "e2b" };
static const char *op_names[] = { "create", "get", "list", "exec", "exec-long", "upload", "download", "destroy" };

/* The request to hold (emulator thread, under the lock). */
static struct {
  GMutex        lock;
  GCond         cond;
  gboolean      armed;
  gboolean      after;      /* hold the answer, after the emulator handled it */
  const char   *method;
  const char   *pattern;
  gboolean      held_one;   /* a request was held */
  GPtrArray    *held;       /* Held: paused messages, each with its emulator's context */
} hold;

/* Each emulator runs in its own thread: a held message is released on
 * the context of the emulator that holds it, never from another thread. */
typedef struct {
  SoupServerMessage *msg;
  GMainContext      *context;
} Held;

static void
held_free (gpointer data)
{
  Held *h = data;

  g_object_unref (h->msg);
  g_main_context_unref (h->context);
  g_free (h);
}

static DaytonaEmulator *daytona;
static E2bEmulator *e2b;

/* ------------------------------------------------------------------ */
/* Holding requests (emulator thread)                                  */

static gboolean
maybe_hold (SoupServerMessage *msg,
            const char        *path,
            gboolean           after)
{
  gboolean held = FALSE;

  g_mutex_lock (&hold.lock);
  if (hold.armed && hold.after == after &&
      strcmp (soup_server_message_get_method (msg), hold.method) == 0 &&
      g_pattern_match_simple (hold.pattern, path))
    {
      Held *h = g_new0 (Held, 1);

      hold.armed = FALSE;
      if (soup_server_message_get_status (msg) == 0)
        soup_server_message_set_status (msg, 503, NULL);
      soup_server_message_pause (msg);
      h->msg = g_object_ref (msg);
      h->context = g_main_context_ref_thread_default ();
      g_ptr_array_add (hold.held, h);
      hold.held_one = TRUE;
      g_cond_broadcast (&hold.cond);
      held = TRUE;
    }
  g_mutex_unlock (&hold.lock);
  return held;
}

static gboolean
daytona_before (DaytonaEmulator *e, SoupServerMessage *msg, const char *path, gpointer data)
{
  return maybe_hold (msg, path, FALSE);
}

static gboolean
daytona_after (DaytonaEmulator *e, SoupServerMessage *msg, const char *path, gpointer data)
{
  maybe_hold (msg, path, TRUE);
  return FALSE;
}

static gboolean
e2b_before (E2bEmulator *e, SoupServerMessage *msg, const char *path, gpointer data)
{
  return maybe_hold (msg, path, FALSE);
}

static gboolean
e2b_after (E2bEmulator *e, SoupServerMessage *msg, const char *path, gpointer data)
{
  maybe_hold (msg, path, TRUE);
  return FALSE;
}

static gboolean
release_held (gpointer user_data)
{
  Held *h = user_data;

  soup_server_message_set_status (h->msg, 503, NULL);
  soup_server_message_unpause (h->msg);
  return G_SOURCE_REMOVE;
}

static void
release_all (void)
{
  g_autoptr(GPtrArray) held = NULL;

  g_mutex_lock (&hold.lock);
  hold.armed = FALSE;
  held = g_steal_pointer (&hold.held);
  hold.held = g_ptr_array_new_with_free_func (held_free);
  g_mutex_unlock (&hold.lock);
  /* Each message is released, and its last reference dropped, in its
   * emulator's thread. */
  while (held->len > 0)
    {
      Held *h = g_ptr_array_steal_index (held, held->len - 1);
      GSource *source = g_idle_source_new ();

      g_source_set_callback (source, release_held, h, held_free);
      g_source_attach (source, h->context);
      g_source_unref (source);
    }
}

/* ------------------------------------------------------------------ */
/* The canceller                                                       */

typedef struct {
  GCancellable *cancellable;
  gboolean      wait_for_hold;   /* else: after delay_ms */
  guint         delay_ms;
  gint64        cancelled_at;    /* monotonic, us */
} Canceller;

static gpointer
canceller_thread (gpointer user_data)
{
  Canceller *c = user_data;

  if (c->wait_for_hold)
    {
      gint64 end = g_get_monotonic_time () + 20 * G_TIME_SPAN_SECOND;

      g_mutex_lock (&hold.lock);
      while (!hold.held_one && g_get_monotonic_time () < end)
        g_cond_wait_until (&hold.cond, &hold.lock, end);
      g_mutex_unlock (&hold.lock);
      g_usleep (50 * 1000);   /* let the client settle into waiting */
    }
  else
    g_usleep (c->delay_ms * 1000);
  c->cancelled_at = g_get_monotonic_time ();
  g_cancellable_cancel (c->cancellable);
  return NULL;
}

/* ------------------------------------------------------------------ */
/* Cases                                                               */

typedef struct {
  Backend     backend;
  Op          op;
  const char *method;    /* the request to hold; NULL: none (see above) */
  const char *pattern;
  gboolean    after;
  char       *name;
} Case;

static void
case_free (gpointer data)
{
  Case *c = data;

  g_free (c->name);
  g_free (c);
}

static const Case cases[] = {
  { DAYTONA, OP_CREATE,    "POST",   "/api/sandbox",                   TRUE },
  { DAYTONA, OP_GET,       "GET",    "/api/sandbox/*",                 FALSE },
  { DAYTONA, OP_LIST,      "GET",    "/api/sandbox",                   FALSE },
  { DAYTONA, OP_EXEC,      "POST",   "/toolbox/*/process/session",     FALSE },
  { DAYTONA, OP_EXEC_LONG, NULL,     NULL,                             FALSE },
  { DAYTONA, OP_UPLOAD,    "POST",   "/toolbox/*/files/bulk-upload",   FALSE },
  { DAYTONA, OP_DOWNLOAD,  "GET",    "/toolbox/*/files/download", FALSE },
  { DAYTONA, OP_DESTROY,   "DELETE", "/api/sandbox/*",                 FALSE },
  { E2B,     OP_CREATE,    "POST",   "/sandboxes",                     TRUE },
  { E2B,     OP_GET,       "GET",    "/sandboxes/*",                   FALSE },
  { E2B,     OP_LIST,      "GET",    "/v2/sandboxes",                  FALSE },
  { E2B,     OP_EXEC,      "POST",   "/process.Process/Start",         FALSE },
  { E2B,     OP_EXEC_LONG, NULL,     NULL,                             FALSE },
  { E2B,     OP_UPLOAD,    "POST",   "/files",                         FALSE },
  { E2B,     OP_DOWNLOAD,  "GET",    "/files",                         FALSE },
  { E2B,     OP_DESTROY,   "DELETE", "/sandboxes/*",                   FALSE },
  { LOCAL,   OP_CREATE },
  { LOCAL,   OP_GET },
  { LOCAL,   OP_LIST },
  { LOCAL,   OP_EXEC_LONG },
  { LOCAL,   OP_UPLOAD },
  { LOCAL,   OP_DOWNLOAD },
  { LOCAL,   OP_DESTROY },
};

static SandboxBackend *
backend_new (Backend which)
{
  g_autoptr(GError) error = NULL;
  SandboxBackend *backend;

  if (which == DAYTONA)
    return daytona_emulator_new_backend (daytona);
  if (which == E2B)
    return e2b_emulator_new_backend (e2b);
  backend = sandbox_backend_new_for_name (backend_names[which], &error);
  g_assert_no_error (error);
  return backend;
}

static guint
count_live (Backend which)
{
  if (which == DAYTONA)
    return daytona_emulator_count_live (daytona);
  if (which == E2B)
    return e2b_emulator_count_live (e2b);
  {
    g_autoptr(SandboxBackend) local = backend_new (LOCAL);
    GList *list = sandbox_backend_list (local, NULL, NULL, NULL);
    guint n = g_list_length (list);

    g_list_free_full (list, g_object_unref);
    return n;
  }
}

static void
wait_live (Backend which,
           guint   expected)
{
  /* Deletion completes asynchronously in the emulators (state delay). */
  for (guint i = 0; i < 200 && count_live (which) != expected; i++)
    g_usleep (50 * 1000);
  g_assert_cmpuint (count_live (which), ==, expected);
}

static const char *
home_of (Backend which)
{
  return which == E2B ? "/home/user" : "/workspace";
}

static gboolean
run_op (const Case       *c,
        SandboxBackend   *backend,
        SandboxInstance  *instance,
        const char       *dir,
        GCancellable     *cancellable,
        GError          **error)
{
  switch (c->op)
    {
    case OP_CREATE:
      {
        g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
        g_autoptr(SandboxInstance) created = NULL;

        sandbox_spec_set_label (spec, "test", "cancel");
        created = sandbox_backend_create (backend, spec, cancellable, error);
        if (created != NULL)
          sandbox_instance_destroy (created, NULL, NULL);
        return created != NULL;
      }
    case OP_GET:
      {
        g_autoptr(SandboxInstance) got = sandbox_backend_get_instance (backend, sandbox_instance_get_id (instance),
                                                                       cancellable, error);
        return got != NULL;
      }
    case OP_LIST:
      {
        GList *list = sandbox_backend_list (backend, NULL, cancellable, error);
        gboolean ok = *error == NULL;

        g_list_free_full (list, g_object_unref);
        return ok;
      }
    case OP_EXEC:
    case OP_EXEC_LONG:
      {
        g_autoptr(SandboxCommand) command = NULL;
        g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();
        g_autoptr(GOutputStream) err = g_memory_output_stream_new_resizable ();
        g_autoptr(SandboxExecResult) result = NULL;

        if (c->op == OP_EXEC_LONG)
          {
            /* Output streams live while it runs; it would run for 60 s. */
            command = sandbox_command_new_shell ("echo started; echo oops >&2; sleep 60; echo never");
            sandbox_command_set_stdout_stream (command, out);
            sandbox_command_set_stderr_stream (command, err);
          }
        else
          command = sandbox_command_new_shell ("echo hi");
        result = sandbox_instance_exec (instance, command, cancellable, error);
        return result != NULL;
      }
    case OP_UPLOAD:
      {
        g_autofree char *path = g_build_filename (dir, "up.txt", NULL);
        g_autoptr(GFile) file = g_file_new_for_path (path);
        g_autofree char *dest = g_strconcat (home_of (c->backend), "/up.txt", NULL);

        g_assert_true (g_file_set_contents (path, "payload\n", -1, NULL));
        return sandbox_instance_upload (instance, file, dest, cancellable, error);
      }
    case OP_DOWNLOAD:
      {
        g_autofree char *path = g_build_filename (dir, "down.txt", NULL);
        g_autoptr(GFile) file = g_file_new_for_path (path);
        g_autofree char *src = g_strconcat (home_of (c->backend), "/seed.txt", NULL);

        return sandbox_instance_download (instance, src, file, cancellable, error);
      }
    case OP_DESTROY:
      return sandbox_instance_destroy (instance, cancellable, error);
    default:
      g_assert_not_reached ();
    }
}

static void
run_case (gconstpointer user_data)
{
  const Case *c = user_data;
  g_autoptr(SandboxBackend) backend = backend_new (c->backend);
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("test-cancel-XXXXXX", NULL);
  Canceller canceller = { cancellable, FALSE, 0, 0 };
  GThread *thread = NULL;
  gboolean ok;
  gint64 returned;

  alarm (WATCHDOG_S);
  wait_live (c->backend, 0);
  if (c->op != OP_CREATE)
    {
      g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
      g_autofree char *script = g_strdup_printf ("echo seed > %s/seed.txt", home_of (c->backend));
      g_autoptr(SandboxCommand) seed = sandbox_command_new_shell (script);
      g_autoptr(SandboxExecResult) r = NULL;

      instance = sandbox_backend_create (backend, spec, NULL, &error);
      g_assert_no_error (error);
      r = sandbox_instance_exec (instance, seed, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpint (sandbox_exec_result_get_exit_status (r), ==, 0);
    }

  if (c->method != NULL)
    {
      g_mutex_lock (&hold.lock);
      hold.method = c->method;
      hold.pattern = c->pattern;
      hold.after = c->after;
      hold.held_one = FALSE;
      hold.armed = TRUE;
      g_mutex_unlock (&hold.lock);
      canceller.wait_for_hold = TRUE;
      thread = g_thread_new ("canceller", canceller_thread, &canceller);
    }
  else if (c->op == OP_EXEC_LONG)
    {
      canceller.delay_ms = 500;
      thread = g_thread_new ("canceller", canceller_thread, &canceller);
    }
  else
    {
      /* Local, quick operations: cancelled before they start. */
      canceller.cancelled_at = g_get_monotonic_time ();
      g_cancellable_cancel (cancellable);
    }

  ok = run_op (c, backend, instance, dir, cancellable, &error);
  returned = g_get_monotonic_time ();
  if (thread != NULL)
    g_thread_join (thread);
  g_test_message ("%s: %s", c->name, error ? error->message : "ok");

  if (c->method != NULL)
    g_assert_true (hold.held_one);   /* the cancellation landed mid-flight */
  g_assert_false (ok);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (returned - canceller.cancelled_at, <, CANCEL_BOUND_S * G_TIME_SPAN_SECOND);
  release_all ();

  /* Nothing left but the test's own sandbox, which still works (the
   * cancelled operation did not break it). */
  if (instance != NULL)
    {
      g_autoptr(SandboxCommand) check = sandbox_command_new_shell ("true");
      g_autoptr(SandboxExecResult) r = NULL;

      g_clear_error (&error);
      /* A remote destroy cancelled mid-flight may or may not have
       * happened; a local one cancelled before it began did not (the
       * sandbox still runs). Destroying again is idempotent. */
      if (c->op != OP_DESTROY || c->backend == LOCAL)
        {
          r = sandbox_instance_exec (instance, check, NULL, &error);
          g_assert_no_error (error);
        }
      sandbox_instance_destroy (instance, NULL, &error);
      g_assert_no_error (error);
    }
  wait_live (c->backend, 0);
  {
    g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", dir);
    g_spawn_command_line_sync (cmd, NULL, NULL, NULL, NULL);
  }
  alarm (0);
}

static void
created_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  GError **error = user_data;
  g_autoptr(SandboxInstance) instance =
    sandbox_backend_create_finish (SANDBOX_BACKEND (source), result, error);

  g_assert_null (instance);
}

/* A local create cancelled while its sandbox starts (bwrap spawned, the
 * server not ready yet): CANCELLED, and no sandbox keeps running. */
static void
test_local_create_starting (void)
{
  g_autoptr(SandboxBackend) backend = backend_new (LOCAL);
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  GError *error = NULL;

  alarm (WATCHDOG_S);
  wait_live (LOCAL, 0);
  sandbox_backend_create_async (backend, spec, cancellable, created_cb, &error);
  g_cancellable_cancel (cancellable);
  while (error == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_cmpuint (count_live (LOCAL), ==, 0);
  for (guint i = 0; i < 100 && test_count_processes (g_getenv ("SANDBOX_LOCAL_ROOT"), TRUE) > 0; i++)
    g_usleep (20 * 1000);   /* bwrap is SIGKILLed, then reaped by GLib */
  g_assert_cmpuint (test_count_processes (g_getenv ("SANDBOX_LOCAL_ROOT"), TRUE), ==, 0);
  alarm (0);
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *root = NULL;
  int ret;

  g_setenv ("SANDBOX_HTTP_TIMEOUT", "20", TRUE);
  g_test_init (&argc, &argv, NULL);
  root = g_dir_make_tmp ("test-cancel-root-XXXXXX", NULL);
  g_setenv ("SANDBOX_LOCAL_ROOT", root, TRUE);
  hold.held = g_ptr_array_new_with_free_func (held_free);

  daytona = daytona_emulator_new (&error);
  g_assert_no_error (error);
  daytona_emulator_set_hook (daytona, daytona_before, NULL);
  daytona_emulator_set_reply_hook (daytona, daytona_after, NULL);
  e2b = e2b_emulator_new (&error);
  g_assert_no_error (error);
  e2b_emulator_set_request_hook (e2b, e2b_before, NULL);
  e2b_emulator_set_reply_hook (e2b, e2b_after, NULL);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      Case *c = g_memdup2 (&cases[i], sizeof *c);

      c->name = g_strdup_printf ("/cancel/%s/%s", backend_names[c->backend], op_names[c->op]);
      g_test_add_data_func_full (c->name, c, run_case, case_free);
    }

  g_test_add_func ("/cancel/local/create-starting", test_local_create_starting);
  ret = g_test_run ();
  release_all ();
  g_clear_pointer (&daytona, daytona_emulator_free);
  g_clear_pointer (&e2b, e2b_emulator_free);
  {
    g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", root);
    g_spawn_command_line_sync (cmd, NULL, NULL, NULL, NULL);
  }
  return ret;
}
