/* The e2b backend against the in-process E2B emulator
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <glib/gstdio.h>
#include <libsandbox/sandbox.h>

#include "e2b-emulator.h"
#include "emu-common.h"

static E2bEmulator *emulator;

static SandboxBackend *
new_backend (const char *key)
{
  g_autoptr(GError) error = NULL;
  SandboxBackend *backend = sandbox_backend_new_for_name ("e2b", &error);

  g_assert_no_error (error);
  g_object_set (backend,
                "api-key", key ? key : e2b_emulator_get_api_key (emulator),
                "api-url", e2b_emulator_get_api_url (emulator),
                "sandbox-url", e2b_emulator_get_sandbox_url (emulator),
                NULL);
  return backend;
}

static SandboxInstance *
create (SandboxBackend *backend,
        const char     *label_value)
{
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(GError) error = NULL;
  SandboxInstance *instance;

  sandbox_spec_set_label (spec, "suite", "test-e2b");
  sandbox_spec_set_label (spec, "case", label_value);
  sandbox_spec_set_env (spec, "GREETING", "hello-env");
  sandbox_spec_set_timeout (spec, 120);
  instance = sandbox_backend_create (backend, spec, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (instance);
  return instance;
}

static SandboxExecResult *
run (SandboxInstance  *instance,
     const char       *script,
     guint             timeout_ms,
     GOutputStream    *out,
     GCancellable     *cancellable,
     GError          **error)
{
  g_autoptr(SandboxCommand) command = sandbox_command_new_shell (script);

  sandbox_command_set_timeout_ms (command, timeout_ms);
  if (out != NULL)
    sandbox_command_set_stdout_stream (command, out);
  return sandbox_instance_exec (instance, command, cancellable, error);
}

static char *
stdout_of (SandboxExecResult *result)
{
  GBytes *bytes = sandbox_exec_result_get_stdout (result);

  return bytes ? g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes)) : g_strdup ("");
}

static void
test_not_configured (void)
{
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *saved = g_strdup (g_getenv ("E2B_API_KEY"));

  g_unsetenv ("E2B_API_KEY");
  backend = sandbox_backend_new_for_name ("e2b", &error);
  g_assert_no_error (error);
  g_assert_false (sandbox_backend_check_configured (backend, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED);
  g_assert_nonnull (strstr (error->message, "E2B_API_KEY"));
  g_assert_nonnull (strstr (error->message, "e2b.dev"));
  if (saved != NULL)
    g_setenv ("E2B_API_KEY", saved, TRUE);
}

static void
test_env_configuration (void)
{
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(GError) error = NULL;

  g_setenv ("E2B_API_KEY", e2b_emulator_get_api_key (emulator), TRUE);
  g_setenv ("E2B_API_URL", e2b_emulator_get_api_url (emulator), TRUE);
  g_setenv ("E2B_SANDBOX_URL", e2b_emulator_get_sandbox_url (emulator), TRUE);
  backend = sandbox_backend_new_for_name ("e2b", &error);
  g_assert_no_error (error);
  g_assert_true (sandbox_backend_check_configured (backend, &error));
  instance = create (backend, "env");
  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
  g_assert_no_error (error);
  g_unsetenv ("E2B_API_KEY");
  g_unsetenv ("E2B_API_URL");
  g_unsetenv ("E2B_SANDBOX_URL");
}

static void
test_wrong_key (void)
{
  g_autoptr(SandboxBackend) backend = new_backend ("e2b_0123456789abcdef");
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxInstance) instance = sandbox_backend_create (backend, spec, NULL, &error);

  g_assert_null (instance);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_AUTHENTICATION);
  g_assert_nonnull (strstr (error->message, "E2B_API_KEY"));
}

static void
test_exec (void)
{
  g_autoptr(SandboxBackend) backend = new_backend (NULL);
  g_autoptr(SandboxInstance) instance = create (backend, "exec");
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(GBytes) streamed = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *captured = NULL;

  /* Streamed into the command's stream, with the spec's environment. */
  result = run (instance, "echo $GREETING; echo to-stderr >&2; pwd", 0, out, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (sandbox_exec_result_get_exit_status (result), ==, 0);
  g_output_stream_close (out, NULL, NULL);
  streamed = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
  g_assert_cmpmem (g_bytes_get_data (streamed, NULL), g_bytes_get_size (streamed),
                   "hello-env\n/home/user\n", 21);
  g_assert_cmpmem (g_bytes_get_data (sandbox_exec_result_get_stderr (result), NULL),
                   g_bytes_get_size (sandbox_exec_result_get_stderr (result)), "to-stderr\n", 10);
  g_clear_object (&result);

  /* Non-zero exit: a result, not an error. */
  result = run (instance, "echo partial; exit 3", 0, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (sandbox_exec_result_get_exit_status (result), ==, 3);
  g_assert_false (sandbox_exec_result_get_success (result));
  captured = stdout_of (result);
  g_assert_cmpstr (captured, ==, "partial\n");
  g_clear_object (&result);

  /* A command that a signal ended: that signal, from envd's status
   * ("signal: segmentation fault"), where every signal but SIGTERM and
   * SIGINT was SIGKILL (a crashed Metaflow step was "killed, out of
   * memory?"). */
  {
    const struct { const char *name; int signum; } sigs[] = {
      { "SEGV", SIGSEGV }, { "ABRT", SIGABRT }, { "KILL", SIGKILL }, { "TERM", SIGTERM },
      { "USR1", SIGUSR1 }, { "HUP", SIGHUP },
    };

    for (gsize i = 0; i < G_N_ELEMENTS (sigs); i++)
      {
        g_autofree char *script = g_strdup_printf ("kill -%s $$", sigs[i].name);

        result = run (instance, script, 0, NULL, NULL, &error);
        g_assert_no_error (error);
        g_assert_cmpint (sandbox_exec_result_get_exit_status (result), ==, -1);
        g_assert_cmpint (sandbox_exec_result_get_term_signal (result), ==, sigs[i].signum);
        g_clear_object (&result);
      }
  }

  /* Standard input. */
  {
    g_autoptr(SandboxCommand) command = sandbox_command_new_shell ("tr a-z A-Z");
    g_autoptr(GBytes) input = g_bytes_new_static ("shout\n", 6);
    g_autofree char *upper = NULL;

    sandbox_command_set_stdin (command, input);
    result = sandbox_instance_exec (instance, command, NULL, &error);
    g_assert_no_error (error);
    upper = stdout_of (result);
    g_assert_cmpstr (upper, ==, "SHOUT\n");
    g_clear_object (&result);
  }

  /* Keepalives (every 50 ms here) are ignored. */
  e2b_emulator_set_keepalive_ms (emulator, 50);
  result = run (instance, "sleep 0.4; echo after", 0, NULL, NULL, &error);
  e2b_emulator_set_keepalive_ms (emulator, 0);
  g_assert_no_error (error);
  g_clear_pointer (&captured, g_free);
  captured = stdout_of (result);
  g_assert_cmpstr (captured, ==, "after\n");
  g_clear_object (&result);

  /* Command timeout: envd kills it at the deadline. */
  result = run (instance, "echo started; sleep 30; echo never", 800, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (sandbox_exec_result_get_timed_out (result));
  g_assert_cmpint (sandbox_exec_result_get_exit_status (result), ==, -1);
  g_clear_object (&result);

  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
  g_assert_no_error (error);
}

static gpointer
cancel_later (gpointer data)
{
  g_usleep (600 * 1000);
  g_cancellable_cancel (data);
  return NULL;
}

static gint kills_answered;

/* Answers a SendSignal late, then counts it (on the emulator's thread). */
static gboolean
count_kill_answered (E2bEmulator       *emu,
                     SoupServerMessage *msg,
                     const char        *path,
                     gpointer           user_data)
{
  if (g_str_has_suffix (path, "/SendSignal"))
    {
      g_usleep (300 * 1000);
      g_atomic_int_inc (&kills_answered);
    }
  return FALSE;
}

/* In a thread of its own: what `grep -c '^sleep 30'` counts in the
 * sandbox, once 0 or after 5 s. */
static gpointer
count_sleeps (gpointer data)
{
  SandboxInstance *instance = data;
  char *listed = NULL;

  for (guint i = 0; i < 100; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(SandboxExecResult) result =
        run (instance, "ps -eo args 2>/dev/null | grep -c '^sleep 30' || true", 0, NULL, NULL, &error);

      g_assert_no_error (error);
      g_free (listed);
      listed = stdout_of (result);
      if (g_strcmp0 (listed, "0\n") == 0)
        break;
      g_usleep (50 * 1000);
    }
  return listed;
}

static void
test_cancel (void)
{
  g_autoptr(SandboxBackend) backend = new_backend (NULL);
  g_autoptr(SandboxInstance) instance = create (backend, "cancel");
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *listed = NULL;
  GThread *thread = g_thread_new ("cancel", cancel_later, cancellable);

  g_atomic_int_set (&kills_answered, 0);
  e2b_emulator_set_reply_hook (emulator, count_kill_answered, NULL);
  result = run (instance, "sleep 30", 0, NULL, cancellable, &error);
  g_thread_join (thread);
  g_assert_null (result);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  /* The kill was sent and answered before the exec returned: a request
   * still under way when a synchronous call returns is left on a context
   * that nothing runs (in a process whose proxy lookup is not immediate,
   * it was not even sent, and the command ran on). */
  g_assert_cmpint (g_atomic_int_get (&kills_answered), ==, 1);
  e2b_emulator_set_reply_hook (emulator, NULL, NULL);

  /* The process was killed: nothing but this check runs. The check runs
   * in another thread: this one's next synchronous call would run its
   * context again, where the kill used to be left unsent when the exec
   * returned (the command ran on). Polled: the emulator gives a process
   * a moment to start before it kills it. */
  thread = g_thread_new ("check", count_sleeps, instance);
  listed = g_thread_join (thread);
  g_assert_cmpstr (listed, ==, "0\n");

  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
}

static void
write_file (const char *path,
            const char *contents)
{
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
}

static void
assert_file (const char *path,
             const char *contents)
{
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;

  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (text, ==, contents);
}

static void
test_files (void)
{
  g_autoptr(SandboxBackend) backend = new_backend (NULL);
  g_autoptr(SandboxInstance) instance = create (backend, "files");
  g_autoptr(GError) error = NULL;
  g_autofree char *tmp = g_dir_make_tmp ("test-e2b-XXXXXX", &error);
  g_autofree char *file = g_build_filename (tmp, "one.txt", NULL);
  g_autofree char *dir = g_build_filename (tmp, "tree", NULL);
  g_autofree char *sub = g_build_filename (dir, "sub", NULL);
  g_autofree char *a = g_build_filename (dir, "a.txt", NULL);
  g_autofree char *b = g_build_filename (sub, "b.txt", NULL);
  g_autofree char *back = g_build_filename (tmp, "back", NULL);
  g_autofree char *back_file = g_build_filename (tmp, "back-one.txt", NULL);
  g_autoptr(GFile) gfile = g_file_new_for_path (file);
  g_autoptr(GFile) gdir = g_file_new_for_path (dir);
  g_autoptr(GFile) gback = g_file_new_for_path (back);
  g_autoptr(GFile) gback_file = g_file_new_for_path (back_file);
  g_autoptr(SandboxExecResult) result = NULL;
  g_autofree char *listing = NULL;

  g_assert_no_error (error);
  g_mkdir_with_parents (sub, 0755);
  write_file (file, "single file\n");
  write_file (a, "alpha\n");
  write_file (b, "beta\n");

  g_assert_true (sandbox_instance_upload (instance, gfile, "/home/user/up/one.txt", NULL, &error));
  g_assert_no_error (error);
  g_assert_true (sandbox_instance_upload (instance, gdir, "/home/user/tree", NULL, &error));
  g_assert_no_error (error);

  /* Symlinks, one of them a loop: envd types them as what they lead to;
   * a download leaves them out. */
  result = run (instance, "cat /home/user/up/one.txt; cd /home/user/tree && ln -s .. sub/up && "
                "ln -s a.txt link.txt && find . -type f | sort", 0, NULL, NULL, &error);
  g_assert_no_error (error);
  listing = stdout_of (result);
  g_assert_cmpstr (listing, ==, "single file\n./a.txt\n./sub/b.txt\n");

  g_assert_true (sandbox_instance_download (instance, "/home/user/tree", gback, NULL, &error));
  g_assert_no_error (error);
  {
    g_autofree char *ba = g_build_filename (back, "a.txt", NULL);
    g_autofree char *bb = g_build_filename (back, "sub", "b.txt", NULL);
    g_autofree char *blink = g_build_filename (back, "link.txt", NULL);
    g_autofree char *bup = g_build_filename (back, "sub", "up", NULL);
    assert_file (ba, "alpha\n");
    assert_file (bb, "beta\n");
    g_assert_false (g_file_test (blink, G_FILE_TEST_EXISTS));
    g_assert_false (g_file_test (bup, G_FILE_TEST_EXISTS));
  }
  g_assert_true (sandbox_instance_download (instance, "/home/user/up/one.txt", gback_file, NULL, &error));
  g_assert_no_error (error);
  assert_file (back_file, "single file\n");

  g_assert_false (sandbox_instance_download (instance, "/home/user/missing", gback_file, NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_false (sandbox_instance_upload (instance, gfile, "relative/path", NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
  {
    g_autofree char *quoted = g_shell_quote (tmp);
    g_autofree char *rm = g_strdup_printf ("rm -rf %s", quoted);
    g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL);
  }
}

static void
test_list_get_destroy (void)
{
  g_autoptr(SandboxBackend) backend = new_backend (NULL);
  g_autoptr(SandboxInstance) mine = create (backend, "list-me");
  g_autoptr(SandboxInstance) other = create (backend, "other");
  g_autoptr(GHashTable) filter = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(SandboxInstance) again = NULL;
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  GList *found;

  g_hash_table_insert (filter, (gpointer) "case", (gpointer) "list-me");
  found = sandbox_backend_list (backend, filter, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_list_length (found), ==, 1);
  g_assert_cmpstr (sandbox_instance_get_id (found->data), ==, sandbox_instance_get_id (mine));
  g_assert_cmpstr (g_hash_table_lookup (sandbox_instance_get_labels (found->data), "suite"), ==, "test-e2b");

  /* A listed instance works: its access token is fetched on first use. */
  result = run (found->data, "echo listed", 0, NULL, NULL, &error);
  g_assert_no_error (error);
  out = stdout_of (result);
  g_assert_cmpstr (out, ==, "listed\n");
  g_clear_object (&result);
  g_list_free_full (found, g_object_unref);

  again = sandbox_backend_get_instance (backend, sandbox_instance_get_id (mine), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (sandbox_instance_get_id (again), ==, sandbox_instance_get_id (mine));
  result = run (again, "echo again", 0, NULL, NULL, &error);
  g_assert_no_error (error);
  g_clear_object (&result);

  /* Destroy is idempotent. */
  g_assert_true (sandbox_instance_destroy (mine, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (sandbox_instance_destroy (again, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (sandbox_instance_get_state (mine), ==, SANDBOX_INSTANCE_STATE_DESTROYED);

  /* Gone: envd answers 502, the API 404. */
  result = run (again, "true", 0, NULL, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_clear_object (&again);
  again = sandbox_backend_get_instance (backend, sandbox_instance_get_id (mine), NULL, &error);
  g_assert_null (again);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND);
  g_clear_error (&error);

  g_assert_true (sandbox_instance_destroy (other, NULL, &error));
}

static void
test_truncated_stream (void)
{
  g_autoptr(SandboxBackend) backend = new_backend (NULL);
  g_autoptr(SandboxInstance) instance = create (backend, "truncated");
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(GError) error = NULL;

  e2b_emulator_set_truncate_next_stream (emulator, TRUE);
  result = run (instance, "echo cut", 0, NULL, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL);
  g_clear_error (&error);

  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
}

/* The sandbox reaches its timeout while a command runs: the service cuts
 * the command's stream, and the caller is told the sandbox is gone (not a
 * protocol error), with what to change. */
static void
test_sandbox_gone_mid_command (void)
{
  g_autoptr(SandboxBackend) backend = new_backend (NULL);
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(GMemoryOutputStream) out = G_MEMORY_OUTPUT_STREAM (g_memory_output_stream_new_resizable ());
  g_autoptr(GError) error = NULL;

  sandbox_spec_set_label (spec, "suite", "test-e2b");
  sandbox_spec_set_label (spec, "case", "gone");
  sandbox_spec_set_timeout (spec, 3);
  instance = sandbox_backend_create (backend, spec, NULL, &error);
  g_assert_no_error (error);

  result = run (instance, "echo started; sleep 60", 0, G_OUTPUT_STREAM (out), NULL, &error);
  g_assert_null (result);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "timeout"));
  /* On a machine too loaded to start the command within the sandbox's
   * 3 s, E2B refuses the start instead ("no longer exists"); once the
   * command ran, its cut stream must read as "is gone". */
  if (g_memory_output_stream_get_data_size (out) > 0)
    g_assert_nonnull (strstr (error->message, "is gone"));
  else
    g_test_message ("the command never started: %s", error->message);
  g_assert_cmpint (sandbox_instance_get_state (instance), ==, SANDBOX_INSTANCE_STATE_DESTROYED);
  g_clear_error (&error);
  g_assert_cmpuint (e2b_emulator_count_live (emulator), ==, 0);
}

/* The first resize of a terminal meets a 503 (a proxy's hiccup): the
 * backend sends it again, so the command sees the new size. */
static gint refused_updates;

static gboolean
refuse_first_update (E2bEmulator       *emu,
                     SoupServerMessage *msg,
                     const char        *path,
                     gpointer           user_data)
{
  if (!g_str_has_suffix (path, "/process.Process/Update") || !g_atomic_int_compare_and_exchange (&refused_updates, 0, 1))
    return FALSE;
  soup_server_message_set_status (msg, 503, NULL);
  soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC, "busy", 4);
  return TRUE;
}

static void
exec_done (GObject      *source,
           GAsyncResult *res,
           gpointer      user_data)
{
  SandboxExecResult **result = user_data;
  g_autoptr(GError) error = NULL;

  *result = sandbox_instance_exec_finish (SANDBOX_INSTANCE (source), res, &error);
  g_assert_no_error (error);
}

static void
test_tty_resize_retried (void)
{
  g_autoptr(SandboxBackend) backend = new_backend (NULL);
  g_autoptr(SandboxInstance) instance = create (backend, "tty-resize");
  g_autoptr(SandboxCommand) command =
    sandbox_command_new_shell ("echo ready; read line; stty size; echo \"got:$line\"");
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();
  g_autoptr(GBytes) typed = g_bytes_new_static ("x\n", 2);
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(GError) error = NULL;
  GMemoryOutputStream *mem = G_MEMORY_OUTPUT_STREAM (out);
  g_autofree char *text = NULL;

  sandbox_command_set_tty (command, TRUE);
  sandbox_command_set_stdout_stream (command, out);
  g_atomic_int_set (&refused_updates, 0);
  e2b_emulator_set_request_hook (emulator, refuse_first_update, NULL);
  sandbox_instance_exec_async (instance, command, NULL, exec_done, &result);
  while (result == NULL && (g_memory_output_stream_get_data (mem) == NULL ||
                            g_strstr_len (g_memory_output_stream_get_data (mem),
                                          (gssize) g_memory_output_stream_get_data_size (mem), "ready") == NULL))
    g_main_context_iteration (NULL, TRUE);
  sandbox_command_resize_tty (command, 41, 123);
  g_assert_true (sandbox_command_send_input (command, typed));
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  e2b_emulator_set_request_hook (emulator, NULL, NULL);
  g_assert_cmpint (g_atomic_int_get (&refused_updates), ==, 1);
  text = g_strndup (g_memory_output_stream_get_data (mem), g_memory_output_stream_get_data_size (mem));
  g_test_message ("terminal output: %s", text);
  g_assert_nonnull (strstr (text, "41 123\r\n"));
  g_assert_nonnull (strstr (text, "got:x\r\n"));
  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
  g_assert_no_error (error);
}

/* SandboxSpec:workdir is honoured: made as the sandbox's user, commands
 * run there. One the user cannot make: the contract test (test-contract.c,
 * workdir). */
static void
test_workdir (void)
{
  g_autoptr(SandboxBackend) backend = new_backend (NULL);
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;

  sandbox_spec_set_label (spec, "suite", "test-e2b");
  sandbox_spec_set_label (spec, "case", "workdir");
  sandbox_spec_set_workdir (spec, "/home/user/work/here");
  instance = sandbox_backend_create (backend, spec, NULL, &error);
  g_assert_no_error (error);
  result = run (instance, "pwd; echo x > made; readlink -f made", 0, NULL, NULL, &error);
  g_assert_no_error (error);
  out = stdout_of (result);
  g_assert_cmpstr (out, ==, "/home/user/work/here\n/home/user/work/here/made\n");
  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (e2b_emulator_count_live (emulator), ==, 0);
}

/* run-as-root: envd runs commands and file calls as root, also for the
 * instance got again by id; the metadata that says so is no label. */
static void
test_run_as_root (void)
{
  g_autoptr(SandboxBackend) backend = new_backend (NULL);
  g_autoptr(SandboxBackend) other = new_backend (NULL);
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(SandboxInstance) again = NULL;
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(SandboxExecResult) plain = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("e2b-root-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "note", NULL);
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_autofree char *out = NULL;
  g_autofree char *out_again = NULL;
  g_autofree char *out_plain = NULL;
  gboolean uploaded;

  g_assert_no_error (error);
  g_assert_true (g_file_set_contents (path, "rooted\n", -1, &error));
  sandbox_spec_set_label (spec, "suite", "test-e2b");
  sandbox_spec_set_label (spec, "case", "run-as-root");
  sandbox_spec_set_run_as_root (spec, TRUE);
  instance = sandbox_backend_create (backend, spec, NULL, &error);
  g_assert_no_error (error);
  /* Root may write in /root. */
  uploaded = sandbox_instance_upload (instance, file, "/root/note", NULL, &error);
  g_assert_no_error (error);
  g_assert_true (uploaded);
  result = run (instance, "echo $HOME; cat /root/note", 0, NULL, NULL, &error);
  g_assert_no_error (error);
  out = stdout_of (result);
  g_assert_cmpstr (out, ==, "/root\nrooted\n");

  again = sandbox_backend_get_instance (other, sandbox_instance_get_id (instance), NULL, &error);
  g_assert_no_error (error);
  g_assert_null (g_hash_table_lookup (sandbox_instance_get_labels (again), "libsandbox.user"));
  g_assert_cmpstr (g_hash_table_lookup (sandbox_instance_get_labels (again), "case"), ==, "run-as-root");
  g_clear_object (&result);
  result = run (again, "echo $HOME", 0, NULL, NULL, &error);
  g_assert_no_error (error);
  out_again = stdout_of (result);
  g_assert_cmpstr (out_again, ==, "/root\n");
  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
  g_assert_no_error (error);
  g_clear_object (&instance);

  /* Without it: the template's user. */
  sandbox_spec_set_run_as_root (spec, FALSE);
  instance = sandbox_backend_create (backend, spec, NULL, &error);
  g_assert_no_error (error);
  plain = run (instance, "echo $HOME", 0, NULL, NULL, &error);
  g_assert_no_error (error);
  out_plain = stdout_of (plain);
  g_assert_cmpstr (out_plain, ==, "/home/user\n");
  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
  g_assert_no_error (error);
  g_unlink (path);
  g_rmdir (dir);
}

/* sandbox-files: a sandbox's home and /tmp are not directories of the
 * host's shared $TMPDIR but, as the local backend's sandboxes, on a tmpfs
 * when the machine has one of 1 GiB (a provider's sandbox has a disk of its
 * own; docs/benchmarks.md, "Remote backends, eighth look"). */
static void
test_sandbox_files (void)
{
  g_autoptr(SandboxBackend) backend = new_backend (NULL);
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;

  if (!_emu_state_on_tmpfs ())
    {
      g_test_skip ("no tmpfs of 1 GiB here ($XDG_RUNTIME_DIR, /dev/shm)");
      return;
    }
  instance = create (backend, "sandbox-files");
  result = run (instance, "stat -f -c %T /home/user /tmp", 0, NULL, NULL, &error);
  g_assert_no_error (error);
  out = stdout_of (result);
  g_assert_cmpstr (out, ==, "tmpfs\ntmpfs\n");
  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
  g_assert_no_error (error);
}

static void
test_nothing_left (void)
{
  g_assert_cmpuint (e2b_emulator_count_live (emulator), ==, 0);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  g_unsetenv ("E2B_API_URL");
  g_unsetenv ("E2B_SANDBOX_URL");
  g_unsetenv ("E2B_DOMAIN");

  emulator = e2b_emulator_new (&error);
  if (emulator == NULL)
    {
      g_test_message ("cannot start the E2B emulator: %s", error->message);
      g_test_add_func ("/e2b/not-configured", test_not_configured);
      return g_test_run ();
    }

  g_test_add_func ("/e2b/not-configured", test_not_configured);
  g_test_add_func ("/e2b/env-configuration", test_env_configuration);
  g_test_add_func ("/e2b/wrong-key", test_wrong_key);
  g_test_add_func ("/e2b/exec", test_exec);
  g_test_add_func ("/e2b/cancel", test_cancel);
  g_test_add_func ("/e2b/files", test_files);
  g_test_add_func ("/e2b/list-get-destroy", test_list_get_destroy);
  g_test_add_func ("/e2b/truncated-stream", test_truncated_stream);
  g_test_add_func ("/e2b/sandbox-gone-mid-command", test_sandbox_gone_mid_command);
  g_test_add_func ("/e2b/workdir", test_workdir);
  g_test_add_func ("/e2b/run-as-root", test_run_as_root);
  g_test_add_func ("/e2b/tty-resize-retried", test_tty_resize_retried);
  g_test_add_func ("/e2b/sandbox-files", test_sandbox_files);
  g_test_add_func ("/e2b/nothing-left", test_nothing_left);

  status = g_test_run ();
  e2b_emulator_free (emulator);
  return status;
}
