/* libsandbox - the backend contract test
 *
 * One set of test bodies, run against every backend through
 * g_test_add_data_func: what any backend must do the same way. Local runs
 * here directly; remote backends run against their emulators.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <glib-unix.h>
#include <gio/gunixoutputstream.h>

#include <libsoup/soup.h>

#include "contract.h"
#include "daytona-emulator.h"
#include "e2b-emulator.h"
#include "../test-util.h"

/* Remote backends run against their emulators, started in this process
 * and found by the backends through their usual environment variables. */

static gpointer
daytona_start (GError **error)
{
  DaytonaEmulator *emulator = daytona_emulator_new (error);

  if (emulator != NULL)
    {
      daytona_emulator_set_state_delay (emulator, 20);
      g_setenv ("DAYTONA_API_URL", daytona_emulator_get_url (emulator), TRUE);
      g_setenv ("DAYTONA_API_KEY", daytona_emulator_get_api_key (emulator), TRUE);
    }
  return emulator;
}

static void
daytona_stop (gpointer state)
{
  daytona_emulator_free (state);
}

static guint
daytona_count_live (gpointer state)
{
  return daytona_emulator_count_live (state);
}

static gpointer
e2b_start (GError **error)
{
  E2bEmulator *emulator = e2b_emulator_new (error);

  if (emulator != NULL)
    {
      g_setenv ("E2B_API_KEY", e2b_emulator_get_api_key (emulator), TRUE);
      g_setenv ("E2B_API_URL", e2b_emulator_get_api_url (emulator), TRUE);
      g_setenv ("E2B_SANDBOX_URL", e2b_emulator_get_sandbox_url (emulator), TRUE);
    }
  return emulator;
}

static void
e2b_stop (gpointer state)
{
  e2b_emulator_free (state);
}

static guint
e2b_count_live (gpointer state)
{
  return e2b_emulator_count_live (state);
}

static const ContractFixture fixtures[] = {
  { "local", NULL, NULL, NULL },
  { "daytona", daytona_start, daytona_stop, daytona_count_live },
  { "e2b", e2b_start, e2b_stop, e2b_count_live },
};

typedef struct
{
  const ContractFixture *fixture;
  gpointer               state;
  SandboxBackend        *backend;
  SandboxInstance       *instance;
  char                  *label;
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();

  f->fixture = data;
  if (f->fixture->start != NULL)
    {
      f->state = f->fixture->start (&error);
      g_assert_no_error (error);
    }
  f->backend = sandbox_backend_new_for_name (f->fixture->name, &error);
  g_assert_no_error (error);
  g_assert_true (sandbox_backend_check_configured (f->backend, &error));
  g_assert_no_error (error);

  f->label = g_strdup_printf ("contract-%u", g_random_int ());
  sandbox_spec_set_label (spec, "test", f->label);
  sandbox_spec_set_env (spec, "SPEC_VAR", "from-spec");
  sandbox_spec_set_timeout (spec, 600);
  f->instance = sandbox_backend_create (f->backend, spec, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (f->instance);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  if (f->instance != NULL)
    {
      g_assert_true (sandbox_instance_destroy (f->instance, NULL, &error));
      g_assert_no_error (error);
    }
  if (f->fixture->count_live != NULL)
    g_assert_cmpuint (f->fixture->count_live (f->state), ==, 0);
  g_clear_object (&f->instance);
  g_clear_object (&f->backend);
  if (f->fixture->stop != NULL)
    f->fixture->stop (f->state);
  g_free (f->label);
}

static SandboxExecResult *
run (Fixture        *f,
     SandboxCommand *cmd)
{
  g_autoptr(GError) error = NULL;
  SandboxExecResult *result = sandbox_instance_exec (f->instance, cmd, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (result);
  return result;
}

static char *
run_stdout (Fixture    *f,
            const char *script)
{
  g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell (script);
  g_autoptr(SandboxExecResult) result = run (f, cmd);
  GBytes *out = sandbox_exec_result_get_stdout (result);

  g_assert_cmpint (sandbox_exec_result_get_exit_status (result), ==, 0);
  g_assert_nonnull (out);
  return g_strndup (g_bytes_get_data (out, NULL), g_bytes_get_size (out));
}

static void
test_lifecycle (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) other = sandbox_backend_new_for_name (f->fixture->name, NULL);
  g_autoptr(SandboxInstance) found = NULL;
  g_autoptr(GHashTable) filter = g_hash_table_new (g_str_hash, g_str_equal);
  GList *list;
  const char *id = sandbox_instance_get_id (f->instance);

  g_assert_nonnull (id);
  g_assert_cmpint (sandbox_instance_get_state (f->instance), ==, SANDBOX_INSTANCE_STATE_RUNNING);
  g_assert_cmpstr (g_hash_table_lookup (sandbox_instance_get_labels (f->instance), "test"), ==, f->label);

  /* A second backend object (as another process would) finds it by id ... */
  found = sandbox_backend_get_instance (other, id, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (sandbox_instance_get_id (found), ==, id);
  g_assert_cmpstr (g_hash_table_lookup (sandbox_instance_get_labels (found), "test"), ==, f->label);

  /* ... and by label; another label finds nothing. */
  g_hash_table_insert (filter, (gpointer) "test", f->label);
  list = sandbox_backend_list (other, filter, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_list_length (list), ==, 1);
  g_assert_cmpstr (sandbox_instance_get_id (list->data), ==, id);
  g_list_free_full (list, g_object_unref);
  g_hash_table_insert (filter, (gpointer) "test", (gpointer) "no-such-label-value");
  list = sandbox_backend_list (other, filter, NULL, &error);
  g_assert_no_error (error);
  g_assert_null (list);

  /* Destroy through the found object; both then see it gone. */
  g_assert_true (sandbox_instance_destroy (found, NULL, &error));
  g_assert_no_error (error);
  g_clear_object (&found);
  found = sandbox_backend_get_instance (other, id, NULL, &error);
  g_assert_null (found);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND);
  /* Destroying a gone sandbox is success (teardown destroys f->instance again). */
}

static void
test_exec_output (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(SandboxCommand) cmd =
    sandbox_command_new_shell ("echo out; echo err >&2; echo \"$SPEC_VAR $CMD_VAR $(pwd)\"; exit 3");
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(GBytes) streamed = NULL;
  GBytes *err;

  sandbox_command_set_env (cmd, "CMD_VAR", "from-command");
  sandbox_command_set_cwd (cmd, "/tmp");
  sandbox_command_set_stdout_stream (cmd, out);
  result = run (f, cmd);

  g_assert_cmpint (sandbox_exec_result_get_exit_status (result), ==, 3);
  g_assert_cmpint (sandbox_exec_result_get_term_signal (result), ==, 0);
  g_assert_false (sandbox_exec_result_get_success (result));
  g_assert_false (sandbox_exec_result_get_timed_out (result));

  /* Streamed output is not also captured; uncaptured stderr is. */
  g_assert_null (sandbox_exec_result_get_stdout (result));
  g_output_stream_close (out, NULL, NULL);
  streamed = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
  g_assert_cmpmem (g_bytes_get_data (streamed, NULL), g_bytes_get_size (streamed),
                   "out\nfrom-spec from-command /tmp\n", strlen ("out\nfrom-spec from-command /tmp\n"));
  err = sandbox_exec_result_get_stderr (result);
  g_assert_nonnull (err);
  g_assert_cmpmem (g_bytes_get_data (err, NULL), g_bytes_get_size (err), "err\n", 4);
}

static void
test_exec_state (Fixture       *f,
                 gconstpointer  data)
{
  g_autofree char *first = run_stdout (f, "echo kept > /tmp/state-file && echo written");
  g_autofree char *second = run_stdout (f, "cat /tmp/state-file");

  /* A sandbox is long-lived: files persist from one exec to the next. */
  g_assert_cmpstr (first, ==, "written\n");
  g_assert_cmpstr (second, ==, "kept\n");
}

static void
test_exec_signal (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell ("kill -TERM $$");
  g_autoptr(SandboxExecResult) result = run (f, cmd);

  g_assert_cmpint (sandbox_exec_result_get_exit_code (result), ==, 128 + 15);
  g_assert_false (sandbox_exec_result_get_success (result));
}

static void
test_exec_not_found (Fixture       *f,
                     gconstpointer  data)
{
  const char *argv[] = { "no-such-command-libsandbox", NULL };
  g_autoptr(SandboxCommand) cmd = sandbox_command_new (argv);
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxExecResult) result = sandbox_instance_exec (f->instance, cmd, NULL, &error);

  /* Either an EXEC error (the backend can tell) or the shell's 127. */
  if (result == NULL)
    g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_EXEC);
  else
    g_assert_cmpint (sandbox_exec_result_get_exit_status (result), ==, 127);
}

static void
test_exec_timeout (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell ("sleep 60");
  g_autoptr(SandboxExecResult) result = NULL;

  sandbox_command_set_timeout_ms (cmd, 500);
  result = run (f, cmd);
  g_assert_true (sandbox_exec_result_get_timed_out (result));
  g_assert_false (sandbox_exec_result_get_success (result));
  /* Generous bound: this says "killed", not how fast. */
  g_assert_cmpfloat (sandbox_exec_result_get_elapsed (result), <, 30.0);
}

static void
test_exec_stdin (Fixture       *f,
                 gconstpointer  data)
{
  const char *argv[] = { "cat", NULL };
  g_autoptr(SandboxCommand) cmd = sandbox_command_new (argv);
  g_autoptr(GBytes) input = g_bytes_new_static ("to stdin\n", 9);
  g_autoptr(SandboxExecResult) result = NULL;
  GBytes *out;

  sandbox_command_set_stdin (cmd, input);
  result = run (f, cmd);
  out = sandbox_exec_result_get_stdout (result);
  g_assert_true (g_bytes_equal (out, input));
}

static gpointer
cancel_later (gpointer data)
{
  g_usleep (300 * G_TIME_SPAN_MILLISECOND);
  g_cancellable_cancel (data);
  return NULL;
}

static void
test_exec_cancel (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell ("sleep 60");
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxExecResult) result = NULL;
  GThread *thread = g_thread_new ("cancel", cancel_later, cancellable);
  gint64 start = g_get_monotonic_time ();

  result = sandbox_instance_exec (f->instance, cmd, cancellable, &error);
  g_thread_join (thread);
  g_assert_null (result);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 30 * G_USEC_PER_SEC);
}

typedef struct
{
  GMainLoop *loop;
  GError    *error;
  gboolean   done;
} CancelInLoop;

static gboolean
cancel_in_loop (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

static void
cancel_in_loop_done (GObject      *source,
                     GAsyncResult *res,
                     gpointer      user_data)
{
  CancelInLoop *state = user_data;
  g_autoptr(SandboxExecResult) result = NULL;

  result = sandbox_instance_exec_finish (SANDBOX_INSTANCE (source), res, &state->error);
  g_assert_null (result);
  state->done = TRUE;
  g_main_loop_quit (state->loop);
}

static gboolean
cancel_in_loop_give_up (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

/* Cancelled from the thread that runs the loop (a signal handler, a button):
 * the cancellable's handlers run inside g_cancellable_cancel(). */
static void
test_exec_cancel_in_loop (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell ("sleep 60");
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  CancelInLoop state = { g_main_loop_new (NULL, FALSE), NULL, FALSE };
  guint give_up;

  sandbox_instance_exec_async (f->instance, cmd, cancellable, cancel_in_loop_done, &state);
  g_timeout_add (300, cancel_in_loop, cancellable);
  give_up = g_timeout_add_seconds (30, cancel_in_loop_give_up, state.loop);
  g_main_loop_run (state.loop);
  g_assert_true (state.done);
  g_source_remove (give_up);
  g_assert_error (state.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&state.error);
  g_main_loop_unref (state.loop);
}

static void
exec_async_done (GObject      *source,
                 GAsyncResult *res,
                 gpointer      user_data)
{
  SandboxExecResult **result = user_data;
  g_autoptr(GError) error = NULL;

  *result = sandbox_instance_exec_finish (SANDBOX_INSTANCE (source), res, &error);
  g_assert_no_error (error);
}

static void
test_exec_async (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(SandboxCommand) a = sandbox_command_new_shell ("sleep 0.2; echo a");
  g_autoptr(SandboxCommand) b = sandbox_command_new_shell ("echo b");
  g_autoptr(SandboxExecResult) ra = NULL;
  g_autoptr(SandboxExecResult) rb = NULL;

  /* Two commands at once in one sandbox, on the default main context. */
  sandbox_instance_exec_async (f->instance, a, NULL, exec_async_done, &ra);
  sandbox_instance_exec_async (f->instance, b, NULL, exec_async_done, &rb);
  while (ra == NULL || rb == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpmem (g_bytes_get_data (sandbox_exec_result_get_stdout (ra), NULL),
                   g_bytes_get_size (sandbox_exec_result_get_stdout (ra)), "a\n", 2);
  g_assert_cmpmem (g_bytes_get_data (sandbox_exec_result_get_stdout (rb), NULL),
                   g_bytes_get_size (sandbox_exec_result_get_stdout (rb)), "b\n", 2);
}

typedef struct
{
  SandboxExecResult *result;
  GError            *error;
  gboolean           done;
} Outcome;

static void
outcome_done (GObject      *source,
              GAsyncResult *res,
              gpointer      user_data)
{
  Outcome *outcome = user_data;

  outcome->result = sandbox_instance_exec_finish (SANDBOX_INSTANCE (source), res, &outcome->error);
  outcome->done = TRUE;
}

static void
outcome_clear (Outcome *outcome)
{
  g_clear_object (&outcome->result);
  g_clear_error (&outcome->error);
}

static void
stash_result (GObject      *source,
              GAsyncResult *res,
              gpointer      user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (res);
}

static gboolean
give_up_now (gpointer data)
{
  gboolean *gave_up = data;

  *gave_up = TRUE;
  return G_SOURCE_REMOVE;
}

/* Commands that are under way, their output streaming in, do not hold back
 * what else the caller starts on the same main context: a third command
 * (here the one the first two wait for) and a destroy (which ends the two
 * that run on). With two commands running, E2B's third waited for one of
 * them to end (two connections per host, libsoup's default), so this one
 * never started. */
static void
test_exec_beside_running (Fixture       *f,
                          gconstpointer  data)
{
  const char *waiting =
    "i=0; while [ ! -e mfx20-go ]; do i=$((i+1)); [ $i -gt 400 ] && exit 9; sleep 0.05; done";
  g_autoptr(SandboxCommand) first = sandbox_command_new_shell (waiting);
  g_autoptr(SandboxCommand) second = sandbox_command_new_shell (waiting);
  g_autoptr(SandboxCommand) go = sandbox_command_new_shell ("touch mfx20-go");
  g_autoptr(SandboxCommand) long1 = sandbox_command_new_shell ("exec sleep 600");
  g_autoptr(SandboxCommand) long2 = sandbox_command_new_shell ("exec sleep 600");
  g_autoptr(GAsyncResult) destroyed = NULL;
  g_autoptr(GError) error = NULL;
  Outcome o[5] = { { 0 } };
  gboolean gave_up = FALSE;
  gboolean started = FALSE;
  guint give_up;

  /* Each command waits for the one started after it. */
  sandbox_instance_exec_async (f->instance, first, NULL, outcome_done, &o[0]);
  sandbox_instance_exec_async (f->instance, second, NULL, outcome_done, &o[1]);
  sandbox_instance_exec_async (f->instance, go, NULL, outcome_done, &o[2]);
  give_up = g_timeout_add_seconds (15, give_up_now, &gave_up);
  while (!(o[0].done && o[1].done && o[2].done) && !gave_up)
    g_main_context_iteration (NULL, TRUE);
  g_assert_false (gave_up);
  g_source_remove (give_up);
  for (guint i = 0; i < 3; i++)
    {
      g_assert_no_error (o[i].error);
      g_assert_cmpint (sandbox_exec_result_get_exit_status (o[i].result), ==, 0);
    }

  /* A destroy behind two commands that would run for ten minutes. */
  sandbox_instance_exec_async (f->instance, long1, NULL, outcome_done, &o[3]);
  sandbox_instance_exec_async (f->instance, long2, NULL, outcome_done, &o[4]);
  /* Under way (a moment for them to start, which the destroy does not
   * need: it must end them either way). */
  g_timeout_add (500, give_up_now, &started);
  while (!started)
    g_main_context_iteration (NULL, TRUE);
  sandbox_instance_destroy_async (f->instance, NULL, stash_result, &destroyed);
  give_up = g_timeout_add_seconds (30, give_up_now, &gave_up);
  while ((destroyed == NULL || !o[3].done || !o[4].done) && !gave_up)
    g_main_context_iteration (NULL, TRUE);
  g_assert_false (gave_up);
  g_source_remove (give_up);
  g_assert_true (sandbox_instance_destroy_finish (f->instance, destroyed, &error));
  g_assert_no_error (error);
  /* The two commands ended with their sandbox (how is the backend's). */
  for (guint i = 0; i < G_N_ELEMENTS (o); i++)
    outcome_clear (&o[i]);
}

static gboolean
cancel_now (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

/* A caller whose stdout is a pipe nobody reads (the Metaflow executor
 * passes fd 1) must not hold up anything else on its main loop: another
 * sandbox's time-out and a cancellation still happen, and the stuck
 * command itself can still be cancelled. */
static void
test_exec_slow_reader (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) other = NULL;
  g_autoptr(SandboxCommand) flood = sandbox_command_new_shell ("head -c 4194304 /dev/zero");
  g_autoptr(SandboxCommand) slow = sandbox_command_new_shell ("sleep 60");
  g_autoptr(SandboxCommand) doomed = sandbox_command_new_shell ("sleep 60");
  g_autoptr(GCancellable) flood_cancel = g_cancellable_new ();
  g_autoptr(GCancellable) doomed_cancel = g_cancellable_new ();
  g_autoptr(GOutputStream) pipe_out = NULL;
  g_autoptr(GError) error = NULL;
  Outcome flooded = { 0 }, timed = { 0 }, cancelled = { 0 };
  gboolean never = FALSE;
  int fds[2];

  sandbox_spec_set_label (spec, "test", f->label);
  sandbox_spec_set_timeout (spec, 600);
  other = sandbox_backend_create (f->backend, spec, NULL, &error);
  g_assert_no_error (error);

  /* 4 MiB into a 64 KiB pipe that is never read. */
  g_assert_true (g_unix_open_pipe (fds, FD_CLOEXEC, &error));
  g_assert_no_error (error);
  g_assert_true (g_unix_set_fd_nonblocking (fds[1], TRUE, &error));
  pipe_out = g_unix_output_stream_new (fds[1], TRUE);
  sandbox_command_set_stdout_stream (flood, pipe_out);
  sandbox_instance_exec_async (f->instance, flood, flood_cancel, outcome_done, &flooded);
  test_iterate_until (&flooded.done, &never, 2);
  g_assert_false (flooded.done);

  /* Meanwhile, on the same main context: a time-out and a cancellation. */
  sandbox_command_set_timeout_ms (slow, 500);
  sandbox_instance_exec_async (other, slow, NULL, outcome_done, &timed);
  sandbox_instance_exec_async (other, doomed, doomed_cancel, outcome_done, &cancelled);
  g_timeout_add (300, cancel_now, doomed_cancel);
  g_assert_true (test_iterate_until (&timed.done, &cancelled.done, 30));
  g_assert_no_error (timed.error);
  g_assert_true (sandbox_exec_result_get_timed_out (timed.result));
  g_assert_error (cancelled.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_false (flooded.done);   /* still stuck on its pipe */

  /* The stuck command itself can be cancelled. */
  g_cancellable_cancel (flood_cancel);
  g_assert_true (test_iterate_until (&flooded.done, &flooded.done, 30));
  g_assert_error (flooded.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  close (fds[0]);
  g_assert_true (sandbox_instance_destroy (other, NULL, &error));
  g_assert_no_error (error);
  outcome_clear (&flooded);
  outcome_clear (&timed);
  outcome_clear (&cancelled);
}

/* What a backend says it can do, it does; what it says it cannot, it
 * refuses with a clear error rather than ignoring. */
static void
test_capabilities (Fixture       *f,
                   gconstpointer  data)
{
  SandboxBackendCapabilities caps = sandbox_backend_get_capabilities (f->backend);
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxSpec) sized = sandbox_spec_new ();
  g_autoptr(SandboxInstance) mounted = NULL;
  g_autoptr(SandboxInstance) unsized = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("contract-mount-XXXXXX", &error);
  g_autofree char *file = g_build_filename (dir, "seen", NULL);

  g_assert_no_error (error);
  g_assert_true (g_file_set_contents (file, "mounted\n", -1, &error));
  sandbox_spec_set_label (spec, "test", f->label);
  sandbox_spec_add_mount (spec, dir, NULL, TRUE);
  mounted = sandbox_backend_create (f->backend, spec, NULL, &error);
  if (caps & SANDBOX_BACKEND_CAPABILITY_MOUNTS)
    {
      g_autofree char *script = g_strdup_printf ("cat '%s'", file);
      g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell (script);
      g_autoptr(SandboxExecResult) result = NULL;
      GBytes *out;

      g_assert_no_error (error);
      result = sandbox_instance_exec (mounted, cmd, NULL, &error);
      g_assert_no_error (error);
      out = sandbox_exec_result_get_stdout (result);
      g_assert_cmpmem (g_bytes_get_data (out, NULL), g_bytes_get_size (out), "mounted\n", 8);
      g_assert_true (sandbox_instance_destroy (mounted, NULL, &error));
      g_assert_no_error (error);
    }
  else
    {
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED);
      g_assert_null (mounted);
      g_clear_error (&error);
    }

  if (caps & SANDBOX_BACKEND_CAPABILITY_HOSTNAME_IS_ID)
    {
      g_autofree char *hostname = run_stdout (f, "cat /proc/sys/kernel/hostname");
      g_autofree char *want = g_strdup_printf ("%s\n", sandbox_instance_get_id (f->instance));

      g_assert_cmpstr (hostname, ==, want);
    }

  if (caps & SANDBOX_BACKEND_CAPABILITY_SHARES_HOST_FS)
    {
      g_autofree char *seen = run_stdout (f, "cat /etc/os-release");
      g_autofree char *here = NULL;

      g_assert_true (g_file_get_contents ("/etc/os-release", &here, NULL, &error));
      g_assert_cmpstr (seen, ==, here);
    }

  if (caps & SANDBOX_BACKEND_CAPABILITY_LIMITS_NEED_IMAGE)
    {
      sandbox_spec_set_label (sized, "test", f->label);
      sandbox_spec_set_cpu (sized, 1);
      unsized = sandbox_backend_create (f->backend, sized, NULL, &error);
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
      g_assert_null (unsized);
    }

  g_unlink (file);
  g_rmdir (dir);
}

static char *
instance_stdout (SandboxInstance *instance,
                 const char      *script)
{
  g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell (script);
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(GError) error = NULL;
  GBytes *out;

  result = sandbox_instance_exec (instance, cmd, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (sandbox_exec_result_get_exit_status (result), ==, 0);
  out = sandbox_exec_result_get_stdout (result);
  return g_strndup (g_bytes_get_data (out, NULL), g_bytes_get_size (out));
}

/* A setting the backend's capabilities leave out is refused, before
 * anything is created, on create and on the one-shot run; one they include
 * is not refused for being unknown. */
static void
test_refused_settings (Fixture       *f,
                       gconstpointer  data)
{
  static const struct {
    SandboxBackendCapabilities cap;
    const char *property;
    const char *word;
  } settings[] = {
    { SANDBOX_BACKEND_CAPABILITY_GPU, "gpu", "gpu 1" },
    { SANDBOX_BACKEND_CAPABILITY_CPU_LIMIT, "cpu", "cpu 1" },
    { SANDBOX_BACKEND_CAPABILITY_MEMORY_LIMIT, "memory-mb", "memory-mb 1" },
    { SANDBOX_BACKEND_CAPABILITY_DISK_LIMIT, "disk-mb", "disk-mb 1" },
    { SANDBOX_BACKEND_CAPABILITY_PIDS_LIMIT, "pids-max", "pids-max 1" },
  };
  SandboxBackendCapabilities caps = sandbox_backend_get_capabilities (f->backend);
  guint refused = 0;

  for (guint i = 0; i < G_N_ELEMENTS (settings); i++)
    {
      g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
      g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell ("true");
      g_autoptr(SandboxInstance) made = NULL;
      g_autoptr(SandboxExecResult) result = NULL;
      g_autoptr(GError) error = NULL;
      GValue one = G_VALUE_INIT;

      if (caps & settings[i].cap)
        continue;
      refused++;
      sandbox_spec_set_label (spec, "test", f->label);
      if (strcmp (settings[i].property, "cpu") == 0)
        {
          g_value_init (&one, G_TYPE_DOUBLE);
          g_value_set_double (&one, 1);
        }
      else
        {
          g_value_init (&one, G_TYPE_UINT);
          g_value_set_uint (&one, 1);
        }
      g_object_set_property (G_OBJECT (spec), settings[i].property, &one);
      g_value_unset (&one);

      made = sandbox_backend_create (f->backend, spec, NULL, &error);
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED);
      g_assert_null (made);
      g_assert_nonnull (strstr (error->message, settings[i].word));
      g_clear_error (&error);
      result = sandbox_backend_run (f->backend, spec, cmd, NULL, &error);
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED);
      g_assert_null (result);
    }
  /* A mount without links: a backend that cannot keep them out refuses
   * the spec, naming the mount, rather than mounting it plainly. */
  if (!(caps & SANDBOX_BACKEND_CAPABILITY_MOUNT_NO_LINKS))
    {
      g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
      g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell ("true");
      g_autoptr(SandboxInstance) made = NULL;
      g_autoptr(SandboxExecResult) result = NULL;
      g_autoptr(GError) error = NULL;

      refused++;
      sandbox_spec_set_label (spec, "test", f->label);
      sandbox_spec_add_mount_full (spec, g_get_tmp_dir (), "/data", SANDBOX_MOUNT_NO_LINKS);
      made = sandbox_backend_create (f->backend, spec, NULL, &error);
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED);
      g_assert_null (made);
      g_assert_nonnull (strstr (error->message, "mount /data:nolinks"));
      g_clear_error (&error);
      result = sandbox_backend_run (f->backend, spec, cmd, NULL, &error);
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED);
      g_assert_null (result);
    }
  /* Only the fixture's own sandbox is alive. */
  if (f->fixture->count_live != NULL)
    g_assert_cmpuint (f->fixture->count_live (f->state), ==, 1);
  /* local applies all of them; the remote backends leave some out. */
  if (strcmp (f->fixture->name, "local") == 0)
    g_assert_cmpuint (refused, ==, 1);   /* gpu */
  else
    g_assert_cmpuint (refused, >, 0);
}

/* Commands run in the workdir the backend reports for a spec without one,
 * and can write there; a spec's workdir is made and used instead. */
static void
test_workdir (Fixture       *f,
              gconstpointer  data)
{
  g_autofree char *fallback = sandbox_backend_dup_default_workdir (f->backend);
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) named = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *seen = NULL;

  if (fallback != NULL)
    {
      g_autofree char *want = g_strdup_printf ("%s\n%s/probe\n", fallback, fallback);

      g_assert_true (g_path_is_absolute (fallback));
      seen = run_stdout (f, "pwd; touch probe && readlink -f probe");
      g_assert_cmpstr (seen, ==, want);
      g_clear_pointer (&seen, g_free);
    }

  sandbox_spec_set_label (spec, "test", f->label);
  sandbox_spec_set_workdir (spec, "/tmp/contract-workdir/deep");
  named = sandbox_backend_create (f->backend, spec, NULL, &error);
  g_assert_no_error (error);
  seen = instance_stdout (named, "pwd; touch probe && readlink -f probe");
  g_assert_cmpstr (seen, ==, "/tmp/contract-workdir/deep\n/tmp/contract-workdir/deep/probe\n");
  g_assert_true (sandbox_instance_destroy (named, NULL, &error));
  g_assert_no_error (error);
  g_clear_object (&named);

  /* A remote backend makes the workdir after the sandbox (with
   * _sandbox_cloud_return_with_workdir): one that cannot be made fails the
   * create, naming it and the property, and leaves no sandbox behind. */
  if (f->fixture->count_live != NULL)
    {
      sandbox_spec_set_workdir (spec, "/proc/no-such-workdir");
      named = sandbox_backend_create (f->backend, spec, NULL, &error);
      g_assert_null (named);
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED);
      g_assert_nonnull (strstr (error->message, "/proc/no-such-workdir"));
      g_assert_nonnull (strstr (error->message, "SandboxSpec:workdir"));
      /* Only the fixture's own sandbox is alive. */
      g_assert_cmpuint (f->fixture->count_live (f->state), ==, 1);
    }
}

/* A file larger than the transfer paths' buffers (the Daytona upload's
 * 1 MiB read-ahead, the local copy's chunks), of an odd size, with a hole
 * in the middle: the bytes of its pattern, zeros in the hole. */
#define BIG_SIZE (3 * 1024 * 1024 + 4099)
#define BIG_HOLE_START (1024 * 1024 + 5)
#define BIG_HOLE_END (2 * 1024 * 1024 + 8192)

static guint8 *
big_contents (void)
{
  guint8 *big = g_malloc0 (BIG_SIZE);

  for (gsize i = 0; i < BIG_SIZE; i++)
    if (i < BIG_HOLE_START || i >= BIG_HOLE_END)
      big[i] = (guint8) (i * 31 + (i >> 12));
  return big;
}

static void
write_big (const char   *path,
           const guint8 *big)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (pwrite (fd, big, BIG_HOLE_START, 0), ==, BIG_HOLE_START);
  g_assert_cmpint (pwrite (fd, big + BIG_HOLE_END, BIG_SIZE - BIG_HOLE_END, BIG_HOLE_END),
                   ==, BIG_SIZE - BIG_HOLE_END);
  g_assert_cmpint (close (fd), ==, 0);
}

static void
assert_big (const char   *path,
            const guint8 *big)
{
  g_autofree char *contents = NULL;
  gsize len;

  g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
  g_assert_cmpmem (contents, len, big, BIG_SIZE);
}

static void
test_files (Fixture       *f,
            gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("contract-files-XXXXXX", &error);
  g_autofree char *file_path = g_build_filename (dir, "file.txt", NULL);
  g_autofree char *tree = g_build_filename (dir, "tree", NULL);
  g_autofree char *sub = g_build_filename (tree, "sub", NULL);
  g_autofree char *leaf = g_build_filename (sub, "leaf.bin", NULL);
  g_autofree char *rm = NULL;
  g_autofree char *back = g_build_filename (dir, "back.txt", NULL);
  g_autofree char *back_tree = g_build_filename (dir, "back-tree", NULL);
  g_autofree char *back_leaf = g_build_filename (back_tree, "sub", "leaf.bin", NULL);
  g_autofree char *big_path = g_build_filename (tree, "big.bin", NULL);
  g_autofree char *back_big_tree = g_build_filename (back_tree, "big.bin", NULL);
  g_autofree char *back_big = g_build_filename (dir, "back-big.bin", NULL);
  g_autoptr(GFile) big_file = g_file_new_for_path (big_path);
  g_autoptr(GFile) back_big_file = g_file_new_for_path (back_big);
  g_autofree guint8 *big = big_contents ();
  g_autoptr(GFile) file = g_file_new_for_path (file_path);
  g_autoptr(GFile) tree_file = g_file_new_for_path (tree);
  g_autoptr(GFile) back_file = g_file_new_for_path (back);
  g_autoptr(GFile) back_tree_file = g_file_new_for_path (back_tree);
  g_autoptr(GFile) nowhere = g_file_new_for_path (back);
  g_autofree char *seen = NULL;
  g_autofree char *contents = NULL;
  guint8 binary[3000];
  gsize len;
  guint64 done;
  gint64 total;

  g_assert_no_error (error);
  for (guint i = 0; i < sizeof binary; i++)
    binary[i] = (guint8) (i * 7);
  g_assert_true (g_file_set_contents (file_path, "hello file\n", -1, NULL));
  g_assert_cmpint (g_mkdir_with_parents (sub, 0755), ==, 0);
  g_assert_true (g_file_set_contents (leaf, (const char *) binary, sizeof binary, NULL));
  write_big (big_path, big);

  g_assert_true (sandbox_instance_upload (f->instance, file, "/tmp/up/file.txt", NULL, &error));
  g_assert_no_error (error);
  /* Progress: at least the file's bytes (a multipart body counts its heads). */
  sandbox_instance_get_transfer_progress (f->instance, &done, &total);
  g_assert_cmpuint (done, >=, strlen ("hello file\n"));
  g_assert_true (sandbox_instance_upload (f->instance, tree_file, "/tmp/up/tree", NULL, &error));
  g_assert_no_error (error);
  sandbox_instance_get_transfer_progress (f->instance, &done, &total);
  g_assert_cmpuint (done, >=, sizeof binary);

  seen = run_stdout (f, "cat /tmp/up/file.txt; wc -c < /tmp/up/tree/sub/leaf.bin");
  g_assert_cmpstr (seen, ==, "hello file\n3000\n");

  g_assert_true (sandbox_instance_download (f->instance, "/tmp/up/file.txt", back_file, NULL, &error));
  g_assert_no_error (error);
  /* A download counts the file's bytes again from 0, and knows its size. */
  sandbox_instance_get_transfer_progress (f->instance, &done, &total);
  g_assert_cmpuint (done, ==, strlen ("hello file\n"));
  g_assert_cmpint (total, ==, (gint64) strlen ("hello file\n"));
  g_assert_true (g_file_get_contents (back, &contents, &len, NULL));
  g_assert_cmpstr (contents, ==, "hello file\n");
  g_clear_pointer (&contents, g_free);

  g_assert_true (sandbox_instance_download (f->instance, "/tmp/up/tree", back_tree_file, NULL, &error));
  g_assert_no_error (error);
  sandbox_instance_get_transfer_progress (f->instance, &done, NULL);
  g_assert_cmpuint (done, >=, sizeof binary);
  g_assert_true (g_file_get_contents (back_leaf, &contents, &len, NULL));
  g_assert_cmpmem (contents, len, binary, sizeof binary);
  g_clear_pointer (&contents, g_free);
  /* Several megabytes next to small files (in one multipart body for
   * Daytona), and alone: byte-exact both ways. */
  assert_big (back_big_tree, big);
  g_assert_true (sandbox_instance_upload (f->instance, big_file, "/tmp/up/big.bin", NULL, &error));
  g_assert_no_error (error);
  g_free (seen);
  seen = run_stdout (f, "wc -c < /tmp/up/big.bin");
  g_assert_cmpint (g_ascii_strtoll (seen, NULL, 10), ==, BIG_SIZE);
  g_assert_true (sandbox_instance_download (f->instance, "/tmp/up/big.bin", back_big_file, NULL, &error));
  g_assert_no_error (error);
  assert_big (back_big, big);

  g_assert_false (sandbox_instance_download (f->instance, "/tmp/no-such-file", nowhere, NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND);

  rm = g_strdup_printf ("rm -rf '%s'", dir);
  g_assert_cmpint (system (rm), ==, 0);
}

/* Whether a bash in @instance can open a TCP connection to @port on the
 * host's loopback (which a sandbox without network does not share). */
static gboolean
reaches_host_port (SandboxInstance *instance,
                   guint16          port)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *script =
    g_strdup_printf ("exec 3<>/dev/tcp/127.0.0.1/%u && echo connected", port);
  const char *argv[] = { "/bin/bash", "-c", script, NULL };
  g_autoptr(SandboxCommand) cmd = sandbox_command_new (argv);
  g_autoptr(SandboxExecResult) result = NULL;
  GBytes *out;

  sandbox_command_set_timeout_ms (cmd, 30000);
  result = sandbox_instance_exec (instance, cmd, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (sandbox_exec_result_get_timed_out (result));
  out = sandbox_exec_result_get_stdout (result);
  return sandbox_exec_result_get_exit_status (result) == 0 && out != NULL &&
         g_bytes_get_size (out) == strlen ("connected\n");
}

static void
test_network (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketListener) listener = g_socket_listener_new ();
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any_port = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) online = NULL;
  guint16 port;

  /* The kernel completes connections into the backlog: no accept needed. */
  g_assert_true (g_socket_listener_add_address (listener, any_port, G_SOCKET_TYPE_STREAM,
                                                G_SOCKET_PROTOCOL_TCP, NULL, &bound, &error));
  g_assert_no_error (error);
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));

  /* The fixture's spec leaves network at its default: off. */
  g_assert_false (reaches_host_port (f->instance, port));

  sandbox_spec_set_label (spec, "test", f->label);
  sandbox_spec_set_timeout (spec, 600);
  sandbox_spec_set_network (spec, TRUE);
  online = sandbox_backend_create (f->backend, spec, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (reaches_host_port (online, port));
  g_assert_true (sandbox_instance_destroy (online, NULL, &error));
  g_assert_no_error (error);
}

/* Ports and volumes (issue 18) */

static guint16
free_host_port (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_TCP, &error);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any_port = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;

  g_assert_no_error (error);
  g_assert_true (g_socket_bind (socket, any_port, FALSE, &error));
  g_assert_no_error (error);
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

/* GETs /index.html through URL: directly, or for E2B, whose hosts are
 * PORT-ID.DOMAIN behind the edge proxy, at E2B_SANDBOX_URL with that Host. */
static char *
fetch_through (Fixture    *f,
               const char *url,
               const char *token,
               guint      *status)
{
  g_autoptr(SoupSession) session = soup_session_new ();
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = NULL;

  if (strcmp (f->fixture->name, "e2b") == 0)
    {
      g_autoptr(GUri) uri = g_uri_parse (url, G_URI_FLAGS_NONE, &error);
      g_autofree char *target = g_strdup_printf ("%s/index.html", g_getenv ("E2B_SANDBOX_URL"));

      g_assert_no_error (error);
      msg = soup_message_new ("GET", target);
      soup_message_headers_replace (soup_message_get_request_headers (msg), "Host", g_uri_get_host (uri));
    }
  else
    {
      g_autofree char *target = g_strdup_printf ("%s/index.html", url);

      msg = soup_message_new ("GET", target);
    }
  g_assert_nonnull (msg);
  if (token != NULL)
    soup_message_headers_replace (soup_message_get_request_headers (msg), "x-daytona-preview-token", token);
  body = soup_session_send_and_read (session, msg, NULL, &error);
  g_assert_no_error (error);
  *status = soup_message_get_status (msg);
  return g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
}

static void
test_ports (Fixture       *f,
            gconstpointer  data)
{
  SandboxBackendCapabilities caps = sandbox_backend_get_capabilities (f->backend);
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) online = NULL;
  g_autofree char *marker = g_strdup_printf ("served-%u", g_random_int ());
  g_autofree char *script = NULL;
  g_autofree char *out = NULL;
  g_autofree char *url = NULL;
  g_autofree char *token = NULL;
  g_autofree char *body = NULL;
  guint16 port = free_host_port ();
  guint status = 0;

  /* Out of range: refused before any backend is asked. */
  g_assert_null (sandbox_instance_dup_port_url (f->instance, 0, NULL, NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  if (!(caps & SANDBOX_BACKEND_CAPABILITY_PORTS))
    {
      g_assert_null (sandbox_instance_dup_port_url (f->instance, port, &token, NULL, &error));
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED);
      g_assert_null (token);
      return;
    }

  if (strcmp (f->fixture->name, "local") == 0)
    {
      /* Without network a local sandbox has its own loopback: refused, with what to do. */
      g_assert_null (sandbox_instance_dup_port_url (f->instance, port, &token, NULL, &error));
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED);
      g_assert_nonnull (strstr (error->message, "network"));
      g_clear_error (&error);
    }

  sandbox_spec_set_label (spec, "test", f->label);
  sandbox_spec_set_timeout (spec, 600);
  sandbox_spec_set_network (spec, TRUE);
  online = sandbox_backend_create (f->backend, spec, NULL, &error);
  g_assert_no_error (error);

  /* A server inside, in its own session so that it outlives the command. */
  script = g_strdup_printf ("mkdir -p /tmp/www && cd /tmp/www && echo %s > index.html && "
                            "(setsid python3 -m http.server %u --bind 127.0.0.1 >/dev/null 2>&1 &) && "
                            "for i in $(seq 100); do python3 -c 'import socket; "
                            "socket.create_connection((\"127.0.0.1\", %u))' 2>/dev/null && echo up && break; "
                            "sleep 0.1; done", marker, port, port);
  {
    g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell (script);
    g_autoptr(SandboxExecResult) result = sandbox_instance_exec (online, cmd, NULL, &error);
    GBytes *stdout_bytes;

    g_assert_no_error (error);
    stdout_bytes = sandbox_exec_result_get_stdout (result);
    out = g_strndup (g_bytes_get_data (stdout_bytes, NULL), g_bytes_get_size (stdout_bytes));
    g_assert_cmpstr (out, ==, "up\n");
  }

  url = sandbox_instance_dup_port_url (online, port, &token, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (url);
  g_test_message ("port %u of %s: %s%s%s", port, sandbox_instance_get_id (online), url,
                  token ? " token " : "", token ? token : "");
  if (strcmp (f->fixture->name, "daytona") == 0)
    {
      /* Daytona's preview needs its token; without it the proxy refuses. */
      g_autofree char *refused = NULL;

      g_assert_nonnull (token);
      refused = fetch_through (f, url, NULL, &status);
      g_assert_cmpuint (status, ==, 401);
    }
  body = fetch_through (f, url, token, &status);
  g_assert_cmpuint (status, ==, 200);
  g_assert_nonnull (strstr (body, marker));

  g_assert_true (sandbox_instance_destroy (online, NULL, &error));
  g_assert_no_error (error);
}

static gboolean
strv_has (char       **strv,
          const char  *name)
{
  return strv != NULL && g_strv_contains ((const char * const *) strv, name);
}

static void
test_volumes (Fixture       *f,
              gconstpointer  data)
{
  SandboxBackendCapabilities caps = sandbox_backend_get_capabilities (f->backend);
  g_autoptr(GError) error = NULL;
  g_autofree char *name = g_strdup_printf ("contract-%u", g_random_int ());
  g_autofree char *marker = g_strdup_printf ("kept-%u", g_random_int ());
  g_autoptr(SandboxSpec) writer_spec = sandbox_spec_new ();
  g_autoptr(SandboxSpec) reader_spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) writer = NULL;
  g_autoptr(SandboxInstance) reader = NULL;
  g_auto(GStrv) names = NULL;

  sandbox_spec_set_label (writer_spec, "test", f->label);
  sandbox_spec_set_label (reader_spec, "test", f->label);
  sandbox_spec_add_volume (writer_spec, name, "/data");
  sandbox_spec_add_volume (reader_spec, name, "/mnt-vol");

  if (!(caps & SANDBOX_BACKEND_CAPABILITY_VOLUMES))
    {
      g_assert_false (sandbox_backend_create_volume (f->backend, name, NULL, &error));
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED);
      g_assert_nonnull (strstr (error->message, "volumes"));
      g_clear_error (&error);
      g_assert_null (sandbox_backend_list_volumes (f->backend, NULL, &error));
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED);
      g_clear_error (&error);
      g_assert_null (sandbox_backend_create (f->backend, writer_spec, NULL, &error));
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED);
      return;
    }

  /* Names that could leave the volumes' directory are refused. */
  g_assert_false (sandbox_backend_create_volume (f->backend, "../escape", NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (sandbox_backend_create_volume (f->backend, "a/b", NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* A volume that does not exist cannot be mounted. */
  g_assert_null (sandbox_backend_create (f->backend, writer_spec, NULL, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);

  g_assert_true (sandbox_backend_create_volume (f->backend, name, NULL, &error));
  g_assert_no_error (error);
  /* Again: kept, not an error. */
  g_assert_true (sandbox_backend_create_volume (f->backend, name, NULL, &error));
  g_assert_no_error (error);
  names = sandbox_backend_list_volumes (f->backend, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (strv_has (names, name));
  g_clear_pointer (&names, g_strfreev);

  writer = sandbox_backend_create (f->backend, writer_spec, NULL, &error);
  g_assert_no_error (error);
  {
    g_autofree char *script = g_strdup_printf ("echo %s > /data/file && cat /data/file", marker);
    g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell (script);
    g_autoptr(SandboxExecResult) result = sandbox_instance_exec (writer, cmd, NULL, &error);

    g_assert_no_error (error);
    g_assert_cmpint (sandbox_exec_result_get_exit_status (result), ==, 0);
  }
  g_assert_true (sandbox_instance_destroy (writer, NULL, &error));
  g_assert_no_error (error);

  /* A second sandbox, made after the first is gone, reads what it wrote. */
  reader = sandbox_backend_create (f->backend, reader_spec, NULL, &error);
  g_assert_no_error (error);
  {
    g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell ("cat /mnt-vol/file");
    g_autoptr(SandboxExecResult) result = sandbox_instance_exec (reader, cmd, NULL, &error);
    GBytes *out;
    g_autofree char *expected = g_strdup_printf ("%s\n", marker);

    g_assert_no_error (error);
    g_assert_cmpint (sandbox_exec_result_get_exit_status (result), ==, 0);
    out = sandbox_exec_result_get_stdout (result);
    g_assert_cmpmem (g_bytes_get_data (out, NULL), g_bytes_get_size (out), expected, strlen (expected));
  }
  g_assert_true (sandbox_instance_destroy (reader, NULL, &error));
  g_assert_no_error (error);

  g_assert_true (sandbox_backend_delete_volume (f->backend, name, NULL, &error));
  g_assert_no_error (error);
  names = sandbox_backend_list_volumes (f->backend, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (strv_has (names, name));
  g_assert_false (sandbox_backend_delete_volume (f->backend, name, NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND);
}

/* ------------------------------------------------------------------ */
/* pause/resume and metrics (capabilities PAUSE and METRICS)           */

/* A ticker appends the time 20 times a second; while the sandbox is
 * paused it cannot, so the longest gap between two ticks is at least as
 * long as the pause (no timing of the test itself is involved). */
#define TICKER_SCRIPT \
  "setsid sh -c 'while :; do date +%s.%N >> /tmp/ticks; sleep 0.05; done' " \
  "</dev/null >/dev/null 2>&1 & echo started"
#define TICKS_SCRIPT "cat /tmp/ticks 2>/dev/null | wc -l"
#define LONGEST_GAP_MS_SCRIPT \
  "awk 'NR > 1 && $1 - p > m { m = $1 - p } { p = $1 } END { printf \"%d\\n\", m * 1000 }' /tmp/ticks"

static guint64
run_number (Fixture    *f,
            const char *script)
{
  g_autofree char *text = run_stdout (f, script);

  return g_ascii_strtoull (text, NULL, 10);
}

/* Waits until the ticker has ticked more than @than times (at most ~10 s). */
static guint64
ticks_after (Fixture *f,
             guint64  than)
{
  guint64 value = 0;

  for (int i = 0; i < 200 && (value = run_number (f, TICKS_SCRIPT)) <= than; i++)
    g_usleep (50000);
  return value;
}

static void
test_pause (Fixture       *f,
            gconstpointer  data)
{
  SandboxBackendCapabilities caps = sandbox_backend_get_capabilities (f->backend);
  g_autoptr(SandboxBackend) other = sandbox_backend_new_for_name (f->fixture->name, NULL);
  g_autoptr(SandboxInstance) found = NULL;
  g_autoptr(SandboxInstance) stale = NULL;
  g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell ("true");
  g_autoptr(SandboxExecResult) refused = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *started = NULL;
  g_autofree char *kept = NULL;
  guint64 after;
  const char *id = sandbox_instance_get_id (f->instance);

  if (!(caps & SANDBOX_BACKEND_CAPABILITY_PAUSE))
    {
      g_assert_false (sandbox_instance_pause (f->instance, NULL, &error));
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED);
      g_clear_error (&error);
      g_assert_false (sandbox_instance_resume (f->instance, NULL, &error));
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED);
      return;
    }

  g_free (run_stdout (f, "echo kept > /tmp/paused-file"));
  started = run_stdout (f, TICKER_SCRIPT);
  g_assert_cmpstr (started, ==, "started\n");
  g_assert_cmpuint (ticks_after (f, 1), >, 1);
  stale = sandbox_backend_get_instance (other, id, NULL, &error);
  g_assert_no_error (error);

  sandbox_instance_pause (f->instance, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (sandbox_instance_get_state (f->instance), ==, SANDBOX_INSTANCE_STATE_STOPPED);

  /* Another process sees it paused; commands are refused with a remedy. */
  found = sandbox_backend_get_instance (other, id, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (sandbox_instance_get_state (found), ==, SANDBOX_INSTANCE_STATE_STOPPED);
  refused = sandbox_instance_exec (found, cmd, NULL, &error);
  g_assert_null (refused);
  g_assert_nonnull (error);
  g_assert_false (g_error_matches (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED));
  g_assert_nonnull (strstr (error->message, "resume"));
  g_clear_error (&error);
  /* So does one found before the pause (another process's old view). */
  g_clear_object (&refused);
  refused = sandbox_instance_exec (stale, cmd, NULL, &error);
  g_assert_null (refused);
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "resume"));
  g_assert_cmpint (sandbox_instance_get_state (stale), ==, SANDBOX_INSTANCE_STATE_STOPPED);
  g_clear_error (&error);

  /* Two seconds paused: the ticker, running, would leave no gap over 50 ms
   * (plus scheduling delays). */
  g_usleep (2 * G_USEC_PER_SEC);
  g_assert_true (sandbox_instance_resume (f->instance, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (sandbox_instance_get_state (f->instance), ==, SANDBOX_INSTANCE_STATE_RUNNING);
  after = ticks_after (f, 0);

  /* Files are kept, and the sandbox runs again. */
  kept = run_stdout (f, "cat /tmp/paused-file");
  g_assert_cmpstr (kept, ==, "kept\n");
  g_assert_cmpuint (ticks_after (f, after), >, after);
  g_assert_cmpuint (run_number (f, LONGEST_GAP_MS_SCRIPT), >=, 1900);

  /* A paused sandbox can be destroyed, and nothing is left. */
  sandbox_instance_pause (f->instance, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (sandbox_instance_destroy (f->instance, NULL, &error));
  g_assert_no_error (error);
  g_clear_object (&found);
  found = sandbox_backend_get_instance (other, id, NULL, &error);
  g_assert_null (found);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND);
}

static void
test_metrics (Fixture       *f,
              gconstpointer  data)
{
  SandboxBackendCapabilities caps = sandbox_backend_get_capabilities (f->backend);
  g_autoptr(SandboxMetrics) metrics = NULL;
  g_autoptr(GError) error = NULL;

  g_free (run_stdout (f, "head -c 1048576 /dev/zero > /tmp/metrics-file"));
  metrics = sandbox_instance_get_metrics (f->instance, NULL, &error);
  if (!(caps & SANDBOX_BACKEND_CAPABILITY_METRICS))
    {
      g_assert_null (metrics);
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED);
      return;
    }
  g_assert_no_error (error);
  g_assert_nonnull (metrics);
  g_assert_true (sandbox_metrics_get_cpu_percent (metrics) >= 0 ||
                 sandbox_metrics_get_cpu_seconds (metrics) >= 0);
  g_assert_cmpfloat (sandbox_metrics_get_cpu_percent (metrics), <=, 100);
  g_assert_cmpuint (sandbox_metrics_get_cpu_count (metrics), >=, 1);
  g_assert_cmpuint (sandbox_metrics_get_memory_used (metrics), >, 0);
  g_assert_cmpuint (sandbox_metrics_get_memory_total (metrics), >=, sandbox_metrics_get_memory_used (metrics));
  g_assert_cmpuint (sandbox_metrics_get_disk_total (metrics), >, 0);
  g_assert_cmpuint (sandbox_metrics_get_disk_total (metrics), >=, sandbox_metrics_get_disk_used (metrics));
}

/* ------------------------------------------------------------------ */
/* Commands on a terminal (SANDBOX_BACKEND_CAPABILITY_TTY)              */

/* Whether NEEDLE has shown in the memory stream OUT. */
static gboolean
shown (GOutputStream *out,
       const char    *needle)
{
  GMemoryOutputStream *mem = G_MEMORY_OUTPUT_STREAM (out);

  if (g_memory_output_stream_get_data (mem) == NULL)
    return FALSE;
  return g_strstr_len (g_memory_output_stream_get_data (mem),
                       (gssize) g_memory_output_stream_get_data_size (mem), needle) != NULL;
}

/* Iterates the default context until NEEDLE shows or the command ends. */
static void
await_shown (GOutputStream      *out,
             const char         *needle,
             SandboxExecResult **result)
{
  while (!shown (out, needle) && *result == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (shown (out, needle));
}

static void
test_tty (Fixture       *f,
          gconstpointer  data)
{
  SandboxBackendCapabilities caps = sandbox_backend_get_capabilities (f->backend);
  g_autoptr(SandboxCommand) sized = sandbox_command_new_shell ("stty size; test -t 0 && echo on-a-tty");
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(GError) error = NULL;

  sandbox_command_set_tty (sized, TRUE);
  sandbox_command_resize_tty (sized, 30, 90);
  result = sandbox_instance_exec (f->instance, sized, NULL, &error);
  if (!(caps & SANDBOX_BACKEND_CAPABILITY_TTY))
    {
      /* A clear refusal that says what to do; without a terminal it runs. */
      g_autoptr(SandboxCommand) plain = sandbox_command_new_shell ("true");
      g_autoptr(SandboxExecResult) ran = NULL;

      g_assert_null (result);
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED);
      g_assert_nonnull (strstr (error->message, "terminal"));
      ran = run (f, plain);
      g_assert_true (sandbox_exec_result_get_success (ran));
      return;
    }

  g_assert_no_error (error);
  g_assert_cmpint (sandbox_exec_result_get_exit_status (result), ==, 0);
  g_assert_nonnull (sandbox_exec_result_get_stdout (result));
  g_assert_nonnull (g_strstr_len (g_bytes_get_data (sandbox_exec_result_get_stdout (result), NULL),
                                  (gssize) g_bytes_get_size (sandbox_exec_result_get_stdout (result)),
                                  "30 90\r\non-a-tty\r\n"));
  g_clear_object (&result);

  {
    /* While it runs: a resize, typed input (echoed), then Ctrl-C's signal. */
    g_autoptr(SandboxCommand) live =
      sandbox_command_new_shell ("echo ready; read line; stty size; echo \"got:$line\"; exec sleep 600");
    g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();
    g_autoptr(GBytes) typed = g_bytes_new_static ("abc\n", 4);

    sandbox_command_set_tty (live, TRUE);
    sandbox_command_set_stdout_stream (live, out);
    g_assert_false (sandbox_command_send_signal (live, SIGINT));
    sandbox_instance_exec_async (f->instance, live, NULL, exec_async_done, &result);
    await_shown (out, "ready", &result);
    sandbox_command_resize_tty (live, 41, 123);
    g_assert_true (sandbox_command_send_input (live, typed));
    await_shown (out, "got:abc\r\n", &result);
    g_test_message ("terminal output: %.*s",
                    (int) g_memory_output_stream_get_data_size (G_MEMORY_OUTPUT_STREAM (out)),
                    (const char *) g_memory_output_stream_get_data (G_MEMORY_OUTPUT_STREAM (out)));
    /* The resize came before the typed line, so `stty size` (after `read`)
     * sees it; the typed line was echoed by the terminal. */
    g_assert_true (shown (out, "41 123\r\n"));
    g_assert_true (shown (out, "abc\r\n"));
    g_assert_true (sandbox_command_send_signal (live, SIGINT));
    while (result == NULL)
      g_main_context_iteration (NULL, TRUE);
    g_assert_cmpint (sandbox_exec_result_get_term_signal (result), ==, SIGINT);
    g_assert_false (sandbox_command_send_input (live, typed));
  }
}

int
main (int argc, char **argv)
{
  const struct { const char *name; void (*func) (Fixture *, gconstpointer); } bodies[] = {
    { "lifecycle", test_lifecycle },
    { "exec-output", test_exec_output },
    { "exec-state", test_exec_state },
    { "exec-signal", test_exec_signal },
    { "exec-not-found", test_exec_not_found },
    { "exec-timeout", test_exec_timeout },
    { "exec-stdin", test_exec_stdin },
    { "exec-cancel", test_exec_cancel },
    { "exec-cancel-in-loop", test_exec_cancel_in_loop },
    { "exec-async", test_exec_async },
    { "exec-beside-running", test_exec_beside_running },
    { "exec-slow-reader", test_exec_slow_reader },
    { "capabilities", test_capabilities },
    { "refused-settings", test_refused_settings },
    { "workdir", test_workdir },
    { "files", test_files },
    { "network", test_network },
    { "pause", test_pause },
    { "metrics", test_metrics },
    { "ports", test_ports },
    { "volumes", test_volumes },
    { "tty", test_tty },
  };
  const char *only = g_getenv ("CONTRACT_BACKENDS");

  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  for (guint i = 0; i < G_N_ELEMENTS (fixtures); i++)
    {
      if (only != NULL && !strstr (only, fixtures[i].name))
        continue;
      for (guint j = 0; j < G_N_ELEMENTS (bodies); j++)
        {
          g_autofree char *path = g_strdup_printf ("/contract/%s/%s", fixtures[i].name, bodies[j].name);
          g_test_add (path, Fixture, &fixtures[i], fixture_setup, bodies[j].func, fixture_teardown);
        }
    }

  return g_test_run ();
}
