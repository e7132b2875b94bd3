/* The daytona backend against the in-process Daytona emulator, and (only
 * when a key is given) against the real service.
 *
 * The real-service case runs when DAYTONA_REAL_API_KEY, or DAYTONA_API_KEY,
 * is in the environment `make check` gets: both are read in main() before
 * any test touches the environment (the emulator cases pass their key and
 * URL as properties and never set these variables). DAYTONA_API_URL and
 * DAYTONA_TARGET are honoured for it too.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <glib/gstdio.h>
#include <libsandbox/sandbox.h>

#include "daytona-emulator.h"
#include "emu-common.h"

static DaytonaEmulator *emulator;
static char *real_key;
static char *real_url;

static SandboxBackend *
backend_for (const char *key,
             const char *url)
{
  g_autoptr(GError) error = NULL;
  SandboxBackend *backend = sandbox_backend_new_for_name ("daytona", &error);

  g_assert_no_error (error);
  g_object_set (backend, "api-key", key, "api-url", url, NULL);
  return backend;
}

static SandboxBackend *
emulated (void)
{
  return backend_for (daytona_emulator_get_api_key (emulator), daytona_emulator_get_url (emulator));
}

static SandboxInstance *
create (SandboxBackend *backend,
        SandboxSpec    *spec)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxSpec) fallback = spec ? NULL : sandbox_spec_new ();
  SandboxInstance *instance = sandbox_backend_create (backend, spec ? spec : fallback, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (instance);
  return instance;
}

static void
destroy (SandboxInstance *instance)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
  g_assert_no_error (error);
}

static SandboxExecResult *
run (SandboxInstance *instance,
     const char      *script,
     char           **out,
     char           **err)
{
  g_autoptr(SandboxCommand) command = sandbox_command_new_shell (script);
  g_autoptr(GError) error = NULL;
  SandboxExecResult *result = sandbox_instance_exec (instance, command, NULL, &error);

  g_assert_no_error (error);
  if (out)
    *out = g_strndup (g_bytes_get_data (sandbox_exec_result_get_stdout (result), NULL),
                      g_bytes_get_size (sandbox_exec_result_get_stdout (result)));
  if (err)
    *err = g_strndup (g_bytes_get_data (sandbox_exec_result_get_stderr (result), NULL),
                      g_bytes_get_size (sandbox_exec_result_get_stderr (result)));
  return result;
}

static void
assert_nothing_left (void)
{
  g_assert_cmpuint (daytona_emulator_count_live (emulator), ==, 0);
}

/* ------------------------------------------------------------------ */

static void
test_not_configured (void)
{
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxInstance) instance = NULL;
  g_autofree char *saved = g_strdup (g_getenv ("DAYTONA_API_KEY"));

  g_unsetenv ("DAYTONA_API_KEY");
  backend = backend_for (NULL, "http://127.0.0.1:1/api");
  g_assert_false (sandbox_backend_check_configured (backend, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED);
  g_assert_nonnull (strstr (error->message, "DAYTONA_API_KEY"));
  g_assert_nonnull (strstr (error->message, "https://app.daytona.io/dashboard/keys"));
  g_clear_error (&error);

  instance = sandbox_backend_create (backend, spec, NULL, &error);
  g_assert_null (instance);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED);
  if (saved)
    g_setenv ("DAYTONA_API_KEY", saved, TRUE);
}

static void
test_wrong_key (void)
{
  g_autoptr(SandboxBackend) backend = backend_for ("not-the-key", daytona_emulator_get_url (emulator));
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxInstance) instance = sandbox_backend_create (backend, spec, NULL, &error);
  GList *list;

  g_assert_null (instance);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_AUTHENTICATION);
  g_assert_nonnull (strstr (error->message, "DAYTONA_API_KEY"));
  g_clear_error (&error);
  list = sandbox_backend_list (backend, NULL, NULL, &error);
  g_assert_null (list);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_AUTHENTICATION);
  assert_nothing_left ();
}

static void
test_exec (void)
{
  g_autoptr(SandboxBackend) backend = emulated ();
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(SandboxCommand) command = NULL;
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();
  g_autoptr(GError) error = NULL;
  g_autofree char *err = NULL;
  const char *argv[] = { "sh", "-c", "echo \"$FOO $BAR\" in $(pwd); echo oops >&2; exit 3", NULL };

  sandbox_spec_set_label (spec, "suite", "test-daytona");
  sandbox_spec_set_env (spec, "FOO", "from-spec");
  instance = create (backend, spec);
  g_assert_cmpint (sandbox_instance_get_state (instance), ==, SANDBOX_INSTANCE_STATE_RUNNING);
  g_assert_cmpstr (g_hash_table_lookup (sandbox_instance_get_labels (instance), "suite"), ==, "test-daytona");

  command = sandbox_command_new (argv);
  sandbox_command_set_env (command, "BAR", "from-command");
  sandbox_command_set_cwd (command, "/tmp");
  sandbox_command_set_stdout_stream (command, out);
  result = sandbox_instance_exec (instance, command, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (sandbox_exec_result_get_exit_status (result), ==, 3);
  g_assert_false (sandbox_exec_result_get_timed_out (result));
  g_output_stream_close (out, NULL, NULL);
  g_assert_cmpmem (g_memory_output_stream_get_data (G_MEMORY_OUTPUT_STREAM (out)),
                   g_memory_output_stream_get_data_size (G_MEMORY_OUTPUT_STREAM (out)),
                   "from-spec from-command in /tmp\n", strlen ("from-spec from-command in /tmp\n"));
  err = g_strndup (g_bytes_get_data (sandbox_exec_result_get_stderr (result), NULL),
                   g_bytes_get_size (sandbox_exec_result_get_stderr (result)));
  g_assert_cmpstr (err, ==, "oops\n");

  /* stdin reaches the command */
  {
    g_autoptr(SandboxCommand) cat = sandbox_command_new_shell ("tr a-z A-Z");
    g_autoptr(SandboxExecResult) r = NULL;
    g_autoptr(GBytes) input = g_bytes_new_static ("it's \"quoted\"\n", 14);

    sandbox_command_set_stdin (cat, input);
    r = sandbox_instance_exec (instance, cat, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpmem (g_bytes_get_data (sandbox_exec_result_get_stdout (r), NULL),
                     g_bytes_get_size (sandbox_exec_result_get_stdout (r)), "IT'S \"QUOTED\"\n", 14);
  }
  destroy (instance);
  assert_nothing_left ();
}

/* Counts an exec's requests to the toolbox, and its status requests
 * (GET .../command/{id}, not its logs). */
typedef struct
{
  gint all;
  gint status;
} ExecRequests;

static gboolean
count_exec_request (DaytonaEmulator   *emu,
                    SoupServerMessage *msg,
                    const char        *path,
                    gpointer           user_data)
{
  ExecRequests *seen = user_data;
  const char *command = strstr (path, "/command/");

  if (!g_str_has_prefix (path, "/toolbox/"))
    return FALSE;
  g_atomic_int_inc (&seen->all);
  if (command != NULL && strchr (command + strlen ("/command/"), '/') == NULL)
    g_atomic_int_inc (&seen->status);
  return FALSE;
}

/* The script prints the command's status after it, in the log stream: an
 * exec is four requests (session, command, log stream, the session's
 * delete), not five (no status request), and the status, the output and
 * bytes that look like that trailer come through as they were. */
static void
test_exec_status_in_stream (void)
{
  g_autoptr(SandboxBackend) backend = emulated ();
  g_autoptr(SandboxInstance) instance = create (backend, NULL);
  struct
  {
    const char *script;
    int         status;
    const char *out;
    gsize       out_len;
    const char *err;
  } cases[] = {
    { "echo out; echo err >&2; exit 3", 3, "out\n", 4, "err\n" },
    { "printf 'a\\036x:3\\036b\\036'; exit 0", 0, "a\036x:3\036b\036", 8, "" },
    { "printf '\\036'", 0, "\036", 1, "" },
    { "printf 'tail\\036'; printf 'e' >&2; exit 255", 255, "tail\036", 5, "e" },
    { "kill -9 $$", 137, "", 0, "" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      ExecRequests seen = { 0, 0 };
      g_autoptr(SandboxExecResult) result = NULL;
      g_autofree char *out = NULL;
      g_autofree char *err = NULL;

      daytona_emulator_set_hook (emulator, count_exec_request, &seen);
      result = run (instance, cases[i].script, &out, &err);
      daytona_emulator_set_hook (emulator, NULL, NULL);
      g_assert_cmpint (sandbox_exec_result_get_exit_code (result), ==, cases[i].status);
      g_assert_cmpmem (out, g_bytes_get_size (sandbox_exec_result_get_stdout (result)),
                       cases[i].out, cases[i].out_len);
      g_assert_cmpstr (err ? err : "", ==, cases[i].err);
      g_assert_cmpint (g_atomic_int_get (&seen.status), ==, 0);
      g_assert_cmpint (g_atomic_int_get (&seen.all), ==, 4);
    }
  destroy (instance);
  assert_nothing_left ();
}

/* A command that dies of a signal: the session's shell said so on the
 * command's stderr with the whole command line, the values of its
 * environment in it ("cmd.sh: line 1: 4 Killed  env 'TOKEN=…' …"), in a
 * Metaflow task's logs when its step ran out of memory. Only what the
 * command itself wrote is its stderr; its status and a cd's error stay. */
static void
test_exec_killed (void)
{
  g_autoptr(SandboxBackend) backend = emulated ();
  g_autoptr(SandboxInstance) instance = create (backend, NULL);
  const char *signals[] = { "KILL", "SEGV", "TERM", NULL };

  for (guint i = 0; signals[i] != NULL; i++)
    for (guint with_input = 0; with_input < 2; with_input++)
      {
        g_autofree char *script = g_strdup_printf ("echo said >&2; kill -%s $$", signals[i]);
        const char *argv[] = { "sh", "-c", script, NULL };
        g_autoptr(SandboxCommand) command = sandbox_command_new (argv);
        g_autoptr(SandboxExecResult) result = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *err = NULL;
        g_autoptr(GBytes) input = g_bytes_new_static ("in\n", 3);

        sandbox_command_set_env (command, "TOKEN", "s3cr3t-value");
        sandbox_command_set_cwd (command, "/tmp");
        if (with_input)
          sandbox_command_set_stdin (command, input);
        result = sandbox_instance_exec (instance, command, NULL, &error);
        g_assert_no_error (error);
        err = g_strndup (g_bytes_get_data (sandbox_exec_result_get_stderr (result), NULL),
                         g_bytes_get_size (sandbox_exec_result_get_stderr (result)));
        g_assert_null (strstr (err, "s3cr3t-value"));
        g_assert_cmpstr (err, ==, "said\n");
        g_assert_cmpint (sandbox_exec_result_get_exit_status (result), >, 128);
      }

  /* A directory that is not there is still said. */
  {
    const char *argv[] = { "true", NULL };
    g_autoptr(SandboxCommand) command = sandbox_command_new (argv);
    g_autoptr(SandboxExecResult) result = NULL;
    g_autoptr(GError) error = NULL;

    sandbox_command_set_cwd (command, "/no/such/dir");
    result = sandbox_instance_exec (instance, command, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpint (sandbox_exec_result_get_exit_status (result), !=, 0);
    g_assert_nonnull (g_strstr_len (g_bytes_get_data (sandbox_exec_result_get_stderr (result), NULL),
                                    g_bytes_get_size (sandbox_exec_result_get_stderr (result)),
                                    "/no/such/dir"));
  }
  destroy (instance);
  assert_nothing_left ();
}

/* A stdout stream that, once it has seen "ready", creates /tmp/go in the
 * sandbox: the command only ends well if its output arrived while it ran.
 * An emulator sink: it answers every write at once, in the exec's thread,
 * so that the upload starts in the exec's main context. */
typedef struct
{
  GString         *seen;
  SandboxInstance *instance;
  GFile           *go;
  gboolean         triggered;
  gboolean         uploaded;
} Trigger;

static void
go_uploaded (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Trigger *self = user_data;

  self->uploaded = sandbox_instance_upload_finish (SANDBOX_INSTANCE (source), result, NULL);
}

static void
trigger_write (gpointer      user_data,
               gboolean      is_stderr,
               const guint8 *buf,
               gsize         len)
{
  Trigger *self = user_data;

  g_string_append_len (self->seen, (const char *) buf, len);
  if (!self->triggered && strstr (self->seen->str, "ready\n"))
    {
      self->triggered = TRUE;
      sandbox_instance_upload_async (self->instance, self->go, "/tmp/go", NULL, go_uploaded, self);
    }
}

static void
test_exec_streams (void)
{
  g_autoptr(SandboxBackend) backend = emulated ();
  g_autoptr(SandboxInstance) instance = create (backend, NULL);
  g_autoptr(SandboxCommand) command = sandbox_command_new_shell (
      "echo ready; i=0; while [ ! -e /tmp/go ]; do i=$((i+1)); [ $i -gt 2400 ] && exit 9; sleep 0.05; done; echo done");
  Trigger trigger = { g_string_new (NULL), instance, NULL, FALSE, FALSE };
  g_autoptr(GOutputStream) stream = _emu_sink_new (trigger_write, FALSE, &trigger, NULL);
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("test-daytona-XXXXXX", NULL);
  g_autofree char *go = g_build_filename (dir, "go", NULL);

  g_file_set_contents (go, "", 0, NULL);
  trigger.go = g_file_new_for_path (go);
  sandbox_command_set_stdout_stream (command, stream);
  result = sandbox_instance_exec (instance, command, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (trigger.triggered);
  g_assert_cmpstr (trigger.seen->str, ==, "ready\ndone\n");
  g_assert_cmpint (sandbox_exec_result_get_exit_status (result), ==, 0);
  g_clear_object (&stream);
  g_string_free (trigger.seen, TRUE);
  g_object_unref (trigger.go);
  g_unlink (go);
  g_rmdir (dir);
  destroy (instance);
  assert_nothing_left ();
}

static void
test_exec_timeout (void)
{
  g_autoptr(SandboxBackend) backend = emulated ();
  g_autoptr(SandboxInstance) instance = create (backend, NULL);
  g_autoptr(SandboxCommand) command = sandbox_command_new_shell ("echo started; sleep 30");
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(GError) error = NULL;

  sandbox_command_set_timeout_ms (command, 500);
  result = sandbox_instance_exec (instance, command, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (sandbox_exec_result_get_timed_out (result));
  g_assert_false (sandbox_exec_result_get_success (result));
  destroy (instance);
  assert_nothing_left ();
}

static gpointer
cancel_soon (gpointer data)
{
  g_usleep (300 * 1000);
  g_cancellable_cancel (data);
  return NULL;
}

static void
test_exec_cancel (void)
{
  g_autoptr(SandboxBackend) backend = emulated ();
  g_autoptr(SandboxInstance) instance = create (backend, NULL);
  g_autoptr(SandboxCommand) command = sandbox_command_new_shell ("sleep 30");
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(GError) error = NULL;
  GThread *thread = g_thread_new ("cancel", cancel_soon, cancellable);

  result = sandbox_instance_exec (instance, command, cancellable, &error);
  g_thread_join (thread);
  g_assert_null (result);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  destroy (instance);
  assert_nothing_left ();
}

static char *
read_all (const char *path)
{
  char *contents = NULL;

  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  return contents;
}

/* Counts the toolbox's requests (the emulator's thread). */
static gboolean
count_toolbox_request (DaytonaEmulator   *emu,
                       SoupServerMessage *msg,
                       const char        *path,
                       gpointer           user_data)
{
  if (g_str_has_prefix (path, "/toolbox/"))
    g_atomic_int_inc ((gint *) user_data);
  return FALSE;
}

typedef struct
{
  gint folders;   /* POST files/folder */
  gint sessions;  /* process/session... (an exec) */
} CreateRequests;

static gboolean
count_create_request (DaytonaEmulator   *emu,
                      SoupServerMessage *msg,
                      const char        *path,
                      gpointer           user_data)
{
  CreateRequests *seen = user_data;

  if (g_str_has_prefix (path, "/toolbox/") && g_str_has_suffix (path, "/files/folder"))
    g_atomic_int_inc (&seen->folders);
  if (g_str_has_prefix (path, "/toolbox/") && strstr (path, "/process/") != NULL)
    g_atomic_int_inc (&seen->sessions);
  return FALSE;
}

/* A spec's workdir is made with the toolbox's files/folder (mkdir -p), one
 * request, not an exec (a session, its command, its log stream, its
 * status, its delete, and the daemon's poll for the command's end). One
 * that cannot be made: the contract test (test-contract.c, workdir). */
static void
test_workdir (void)
{
  g_autoptr(SandboxBackend) backend = emulated ();
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(SandboxExecResult) result = NULL;
  g_autofree char *out = NULL;
  CreateRequests seen = { 0, 0 };

  sandbox_spec_set_workdir (spec, "/tmp/test-daytona-workdir/deep er");
  daytona_emulator_set_hook (emulator, count_create_request, &seen);
  instance = create (backend, spec);
  daytona_emulator_set_hook (emulator, NULL, NULL);
  g_assert_cmpint (g_atomic_int_get (&seen.folders), ==, 1);
  g_assert_cmpint (g_atomic_int_get (&seen.sessions), ==, 0);
  result = run (instance, "pwd; touch made && ls -ld . | cut -c1-10", &out, NULL);
  g_assert_cmpint (sandbox_exec_result_get_exit_status (result), ==, 0);
  g_assert_cmpstr (out, ==, "/tmp/test-daytona-workdir/deep er\ndrwxr-xr-x\n");
  destroy (instance);
  assert_nothing_left ();
}

static void
test_files (void)
{
  g_autoptr(SandboxBackend) backend = emulated ();
  g_autoptr(SandboxInstance) instance = create (backend, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("test-daytona-XXXXXX", NULL);
  g_autofree char *tree = g_build_filename (dir, "tree", NULL);
  g_autofree char *sub = g_build_filename (tree, "sub", "deeper", NULL);
  g_autofree char *a = g_build_filename (tree, "a.txt", NULL);
  g_autofree char *b = g_build_filename (sub, "b.bin", NULL);
  g_autofree char *single = g_build_filename (dir, "single.txt", NULL);
  g_autoptr(GFile) tree_file = g_file_new_for_path (tree);
  g_autoptr(GFile) single_file = g_file_new_for_path (single);
  g_autoptr(GByteArray) blob = g_byte_array_new ();
  g_autoptr(SandboxExecResult) r = NULL;
  g_autofree char *out = NULL;

  for (guint i = 0; i < 200000; i++)
    g_byte_array_append (blob, (guint8 *) &i, 1);
  g_assert_cmpint (g_mkdir_with_parents (sub, 0755), ==, 0);
  g_file_set_contents (a, "alpha\n", -1, NULL);
  g_file_set_contents (b, (char *) blob->data, blob->len, NULL);
  g_file_set_contents (single, "one file\n", -1, NULL);

  g_assert_true (sandbox_instance_upload (instance, single_file, "/workspace/in/single.txt", NULL, &error));
  g_assert_no_error (error);
  g_assert_true (sandbox_instance_upload (instance, tree_file, "/workspace/tree", NULL, &error));
  g_assert_no_error (error);

  r = run (instance, "cat /workspace/in/single.txt /workspace/tree/a.txt; wc -c < /workspace/tree/sub/deeper/b.bin",
           &out, NULL);
  g_assert_cmpint (sandbox_exec_result_get_exit_status (r), ==, 0);
  g_assert_cmpstr (out, ==, "one file\nalpha\n200000\n");

  {
    g_autofree char *back = g_build_filename (dir, "back", NULL);
    g_autofree char *back_a = g_build_filename (back, "a.txt", NULL);
    g_autofree char *back_b = g_build_filename (back, "sub", "deeper", "b.bin", NULL);
    g_autofree char *back_single = g_build_filename (dir, "x", "single.txt", NULL);
    g_autoptr(GFile) back_file = g_file_new_for_path (back);
    g_autoptr(GFile) back_single_file = g_file_new_for_path (back_single);
    g_autofree char *got_a = NULL;
    g_autofree char *got_b = NULL;
    g_autofree char *got_single = NULL;
    gsize len;

    gint requests = 0;

    daytona_emulator_set_hook (emulator, count_toolbox_request, &requests);
    sandbox_instance_download (instance, "/workspace/tree", back_file, NULL, &error);
    g_assert_no_error (error);
    /* A directory: the GET files/download its 400 says is a directory,
     * files/info, the listings, bulk-download. */
    g_assert_cmpint (g_atomic_int_get (&requests), >=, 4);
    g_atomic_int_set (&requests, 0);
    g_assert_true (sandbox_instance_download (instance, "/workspace/in/single.txt", back_single_file, NULL, &error));
    g_assert_no_error (error);
    /* One file: one round trip (GET files/download), no files/info first. */
    g_assert_cmpint (g_atomic_int_get (&requests), ==, 1);
    daytona_emulator_set_hook (emulator, NULL, NULL);
    got_a = read_all (back_a);
    g_assert_cmpstr (got_a, ==, "alpha\n");
    g_assert_true (g_file_get_contents (back_b, &got_b, &len, NULL));
    g_assert_cmpmem (got_b, len, blob->data, blob->len);
    got_single = read_all (back_single);
    g_assert_cmpstr (got_single, ==, "one file\n");

    /* missing file */
    g_assert_false (sandbox_instance_download (instance, "/workspace/nope", back_single_file, NULL, &error));
    g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND);
    g_clear_error (&error);
  }
  {
    g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", dir);
    g_spawn_command_line_sync (cmd, NULL, NULL, NULL, NULL);
  }
  destroy (instance);
  assert_nothing_left ();
}

static void
test_list_get_destroy (void)
{
  g_autoptr(SandboxBackend) backend = emulated ();
  g_autoptr(SandboxSpec) one = sandbox_spec_new ();
  g_autoptr(SandboxSpec) two = sandbox_spec_new ();
  g_autoptr(SandboxInstance) a = NULL;
  g_autoptr(SandboxInstance) b = NULL;
  g_autoptr(SandboxInstance) got = NULL;
  g_autoptr(GHashTable) want = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GError) error = NULL;
  GList *list;

  sandbox_spec_set_label (one, "group", "g1");
  sandbox_spec_set_label (one, "role", "a");
  sandbox_spec_set_label (two, "group", "g1");
  sandbox_spec_set_label (two, "role", "b");
  a = create (backend, one);
  b = create (backend, two);

  g_hash_table_insert (want, (char *) "group", (char *) "g1");
  list = sandbox_backend_list (backend, want, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_list_length (list), ==, 2);
  g_list_free_full (list, g_object_unref);

  g_hash_table_insert (want, (char *) "role", (char *) "b");
  list = sandbox_backend_list (backend, want, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_list_length (list), ==, 1);
  g_assert_cmpstr (sandbox_instance_get_id (list->data), ==, sandbox_instance_get_id (b));
  g_list_free_full (list, g_object_unref);

  got = sandbox_backend_get_instance (backend, sandbox_instance_get_id (a), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (sandbox_instance_get_id (got), ==, sandbox_instance_get_id (a));
  g_assert_cmpstr (g_hash_table_lookup (sandbox_instance_get_labels (got), "role"), ==, "a");
  {
    g_autoptr(SandboxExecResult) r = NULL;
    g_autofree char *out = NULL;

    r = run (got, "echo via-get", &out, NULL);
    g_assert_cmpstr (out, ==, "via-get\n");
  }

  g_assert_null (sandbox_backend_get_instance (backend, "no-such-sandbox", NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND);
  g_clear_error (&error);

  destroy (a);
  destroy (a);   /* idempotent */
  destroy (got); /* the same sandbox, already gone */
  g_assert_null (sandbox_backend_get_instance (backend, sandbox_instance_get_id (a), NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND);
  g_clear_error (&error);
  destroy (b);
  assert_nothing_left ();
}

/* DELETEs of a sandbox answered 409 ("state change in progress"), as
 * Daytona answers while a sandbox is starting or stopping. */
static gint busy_deletes_left;
static gint busy_deletes_seen;

static gboolean
busy_delete_hook (DaytonaEmulator   *e,
                  SoupServerMessage *msg,
                  const char        *path,
                  gpointer           user_data)
{
  static const char body[] = "{\"statusCode\":409,\"message\":\"Sandbox state change in progress\"}";

  if (strcmp (soup_server_message_get_method (msg), "DELETE") != 0 ||
      !g_str_has_prefix (path, "/api/sandbox/"))
    return FALSE;
  g_atomic_int_inc (&busy_deletes_seen);
  if (g_atomic_int_get (&busy_deletes_left) <= 0)
    return FALSE;
  g_atomic_int_add (&busy_deletes_left, -1);
  soup_server_message_set_status (msg, 409, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_STATIC, body, sizeof body - 1);
  return TRUE;
}

/* A destroy refused as busy is sent again until it goes through, for
 * 40 retries (10 s), then fails with the provider's answer. */
static void
test_destroy_busy (void)
{
  g_autoptr(SandboxBackend) backend = emulated ();
  g_autoptr(SandboxInstance) instance = create (backend, NULL);
  g_autoptr(SandboxInstance) stuck = create (backend, NULL);
  g_autoptr(GError) error = NULL;

  daytona_emulator_set_hook (emulator, busy_delete_hook, NULL);
  g_atomic_int_set (&busy_deletes_left, 3);
  g_atomic_int_set (&busy_deletes_seen, 0);
  destroy (instance);
  g_assert_cmpint (g_atomic_int_get (&busy_deletes_seen), ==, 4);
  g_assert_cmpint (sandbox_instance_get_state (instance), ==, SANDBOX_INSTANCE_STATE_DESTROYED);

  g_atomic_int_set (&busy_deletes_left, 1000);
  g_atomic_int_set (&busy_deletes_seen, 0);
  g_assert_false (sandbox_instance_destroy (stuck, NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "state change in progress"));
  g_assert_cmpint (g_atomic_int_get (&busy_deletes_seen), ==, 41);
  g_assert_cmpint (sandbox_instance_get_state (stuck), !=, SANDBOX_INSTANCE_STATE_DESTROYED);

  daytona_emulator_set_hook (emulator, NULL, NULL);
  destroy (stuck);
  assert_nothing_left ();
}

static void
test_malformed_json (void)
{
  g_autoptr(SandboxBackend) backend = emulated ();
  g_autoptr(SandboxInstance) instance = create (backend, NULL);
  g_autoptr(SandboxInstance) got = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *endpoint = g_strdup_printf ("sandbox/%s", sandbox_instance_get_id (instance));

  daytona_emulator_break_json_once (emulator, "GET", "/api/sandbox/");
  got = sandbox_backend_get_instance (backend, sandbox_instance_get_id (instance), NULL, &error);
  g_assert_null (got);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL);
  g_assert_nonnull (strstr (error->message, endpoint));
  destroy (instance);
  assert_nothing_left ();
}

static void
test_never_starts (void)
{
  g_autoptr(SandboxBackend) backend = emulated ();
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(GError) error = NULL;

  g_object_set (backend, "start-timeout", 1, NULL);
  daytona_emulator_set_never_start (emulator, TRUE);
  instance = sandbox_backend_create (backend, spec, NULL, &error);
  daytona_emulator_set_never_start (emulator, FALSE);
  g_assert_null (instance);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_TIMEOUT);
  g_assert_nonnull (strstr (error->message, "has been deleted"));
  assert_nothing_left ();
}

static void
test_fails_to_start (void)
{
  g_autoptr(SandboxBackend) backend = emulated ();
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(GError) error = NULL;

  daytona_emulator_set_fail_start (emulator, "no runner could pull the image");
  instance = sandbox_backend_create (backend, spec, NULL, &error);
  daytona_emulator_set_fail_start (emulator, NULL);
  g_assert_null (instance);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "no runner could pull the image"));
  g_clear_error (&error);
  assert_nothing_left ();

  /* The provider's words reach a terminal: an OSC title, a C1 CSI and a
   * right-to-left override are shown escaped (they came through as
   * they were). */
  daytona_emulator_set_fail_start (emulator, "\x1b]0;TITLE\x07 \xc2\x9b" "2J \xe2\x80\xaegnp.exe");
  instance = sandbox_backend_create (backend, spec, NULL, &error);
  daytona_emulator_set_fail_start (emulator, NULL);
  g_assert_null (instance);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED);
  g_test_message ("%s", error->message);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  for (const char *p = error->message; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      g_assert_false (c < 0x20 || (c >= 0x7f && c < 0xa0) || c == 0x202e);
    }
  g_assert_nonnull (strstr (error->message, "\\x1b]0;TITLE\\x07 \\x9b2J \\u202egnp.exe"));
  assert_nothing_left ();
}

static void
test_resources_need_an_image (void)
{
  g_autoptr(SandboxBackend) backend = emulated ();
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxExecResult) r = NULL;

  sandbox_spec_set_cpu (spec, 2);
  g_assert_null (sandbox_backend_create (backend, spec, NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* With an image, the resources go with the build. */
  sandbox_spec_set_image (spec, "debian:12-slim");
  sandbox_spec_set_memory_mb (spec, 1500);
  instance = create (backend, spec);
  r = run (instance, "true", NULL, NULL);
  g_assert_cmpint (sandbox_exec_result_get_exit_status (r), ==, 0);
  destroy (instance);
  assert_nothing_left ();
}

static void
test_real_service (void)
{
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(SandboxExecResult) r = NULL;
  g_autofree char *out = NULL;

  if (real_key == NULL)
    {
      g_test_skip ("no DAYTONA_REAL_API_KEY or DAYTONA_API_KEY in the environment: "
                   "the real Daytona service was not tried");
      return;
    }
  backend = backend_for (real_key, real_url);
  sandbox_spec_set_label (spec, "libsandbox-test", "test-daytona");
  sandbox_spec_set_timeout (spec, 600);
  instance = create (backend, spec);
  r = run (instance, "echo real", &out, NULL);
  g_assert_cmpstr (out, ==, "real\n");
  destroy (instance);
}

/* The library's time-out on Daytona is auto-stop (with auto-delete 0):
 * toolbox calls keep a sandbox alive, a long command alone does not, and a
 * command cut by auto-stop ends in NOT_FOUND saying the sandbox is gone.
 * One emulated "minute" is three seconds here. */
static void
test_auto_stop (void)
{
  g_autoptr(SandboxBackend) backend = emulated ();
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(SandboxCommand) command = sandbox_command_new_shell ("echo started; sleep 60");
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(GError) error = NULL;
  gint64 begun;

  /* A minute of 3 s: each short command below must start within that,
   * even on a loaded machine. */
  daytona_emulator_set_minute_ms (emulator, 3000);
  sandbox_spec_set_timeout (spec, 1);     /* autoStopInterval 1 */
  instance = create (backend, spec);

  /* Activity: short commands for twice the interval keep it started. */
  begun = g_get_monotonic_time ();
  while (g_get_monotonic_time () - begun < 6 * G_USEC_PER_SEC)
    {
      g_autoptr(SandboxExecResult) r = run (instance, "true", NULL, NULL);

      g_assert_cmpint (sandbox_exec_result_get_exit_status (r), ==, 0);
      g_usleep (200 * 1000);
    }

  /* A long command: auto-stop cuts it. */
  result = sandbox_instance_exec (instance, command, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "is gone"));
  g_assert_nonnull (strstr (error->message, "timeout"));
  g_assert_cmpint (sandbox_instance_get_state (instance), ==, SANDBOX_INSTANCE_STATE_DESTROYED);
  daytona_emulator_set_minute_ms (emulator, 60000);

  /* Auto-delete 0: it is deleted as it stops. */
  for (guint i = 0; i < 400 && daytona_emulator_count_live (emulator) > 0; i++)
    g_usleep (50 * 1000);
  assert_nothing_left ();
}

/* ------------------------------------------------------------------ */
/* Commands on a terminal: what goes wrong                             */

static SandboxExecResult *
run_on_tty (SandboxInstance *instance,
            const char      *script,
            guint            timeout_ms,
            GError         **error)
{
  g_autoptr(SandboxCommand) command = sandbox_command_new_shell (script);

  sandbox_command_set_tty (command, TRUE);
  if (timeout_ms > 0)
    sandbox_command_set_timeout_ms (command, timeout_ms);
  return sandbox_instance_exec (instance, command, NULL, error);
}

static gboolean
is_pty_connect (const char *path)
{
  return strstr (path, "/process/pty/") != NULL && g_str_has_suffix (path, "/connect");
}

/* A proxy that will not upgrade the terminal's WebSocket. */
static gboolean
refuse_pty_websocket (DaytonaEmulator   *emu,
                      SoupServerMessage *msg,
                      const char        *path,
                      gpointer           user_data)
{
  if (!is_pty_connect (path))
    return FALSE;
  soup_server_message_set_status (msg, 403, NULL);
  soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC, "no websockets here", 18);
  return TRUE;
}

static void
cut_after_upgrade (SoupServerMessage *msg,
                   gpointer           data)
{
  g_autoptr(GIOStream) stream = soup_server_message_steal_connection (msg);

  g_signal_handlers_disconnect_by_func (msg, cut_after_upgrade, data);
  g_io_stream_close (stream, NULL, NULL);
}

/* The upgrade succeeds, then the connection drops: no close frame, no exit. */
static gboolean
cut_pty_websocket (DaytonaEmulator   *emu,
                   SoupServerMessage *msg,
                   const char        *path,
                   gpointer           user_data)
{
  if (!is_pty_connect (path))
    return FALSE;
  if (soup_websocket_server_process_handshake (msg, NULL, NULL, NULL, NULL))
    g_signal_connect (msg, "wrote-informational", G_CALLBACK (cut_after_upgrade), NULL);
  return TRUE;
}

/* An image that cannot be built (the emulator maps no image to the name,
 * as a registry without it fails the pull): INVALID_ARGUMENT, which
 * callers that retry a failed create do not retry, with the reason. */
static void
test_build_failed (void)
{
  g_autoptr(SandboxBackend) backend = emulated ();
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(GError) error = NULL;

  sandbox_spec_set_image (spec, "no-such-image:0");
  instance = sandbox_backend_create (backend, spec, NULL, &error);
  g_assert_null (instance);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "build_failed"));
  g_assert_nonnull (strstr (error->message, "no-such-image:0"));
  assert_nothing_left ();
}

static void
test_tty_errors (void)
{
  g_autoptr(SandboxBackend) backend = emulated ();
  g_autoptr(SandboxInstance) instance = create (backend, NULL);
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(GError) error = NULL;

  daytona_emulator_set_hook (emulator, refuse_pty_websocket, NULL);
  result = run_on_tty (instance, "echo hi", 0, &error);
  daytona_emulator_set_hook (emulator, NULL, NULL);
  g_assert_null (result);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "refused the terminal's WebSocket"));
  g_assert_nonnull (strstr (error->message, "without a terminal"));
  g_clear_error (&error);

  daytona_emulator_set_hook (emulator, cut_pty_websocket, NULL);
  result = run_on_tty (instance, "echo hi", 0, &error);
  daytona_emulator_set_hook (emulator, NULL, NULL);
  g_assert_null (result);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "was cut"));
  g_assert_nonnull (strstr (error->message, "run the command again"));
  g_clear_error (&error);

  /* The sandbox is fine afterwards: a terminal works, and a time-out
   * kills what runs on it. */
  result = run_on_tty (instance, "echo fine; exit 3", 0, &error);
  g_assert_no_error (error);
  g_assert_cmpint (sandbox_exec_result_get_exit_status (result), ==, 3);
  g_assert_nonnull (g_strstr_len (g_bytes_get_data (sandbox_exec_result_get_stdout (result), NULL),
                                  (gssize) g_bytes_get_size (sandbox_exec_result_get_stdout (result)),
                                  "fine\r\n"));
  g_clear_object (&result);
  result = run_on_tty (instance, "echo started; sleep 30", 500, &error);
  g_assert_no_error (error);
  g_assert_true (sandbox_exec_result_get_timed_out (result));
  g_assert_cmpint (sandbox_exec_result_get_term_signal (result), ==, SIGKILL);
  destroy (instance);
  assert_nothing_left ();
}

/* Auto-stop (the library's time-out) during a command on a terminal: the
 * daemon kills the session's shell, and the caller is told the sandbox is
 * gone, not that the command was killed. */
static void
test_tty_auto_stop (void)
{
  g_autoptr(SandboxBackend) backend = emulated ();
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(GError) error = NULL;

  daytona_emulator_set_minute_ms (emulator, 2000);
  sandbox_spec_set_timeout (spec, 1);     /* autoStopInterval 1 */
  instance = create (backend, spec);
  result = run_on_tty (instance, "echo started; sleep 60", 0, &error);
  daytona_emulator_set_minute_ms (emulator, 60000);
  g_assert_null (result);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "is gone"));
  for (guint i = 0; i < 400 && daytona_emulator_count_live (emulator) > 0; i++)
    g_usleep (50 * 1000);
  assert_nothing_left ();
}

/* run-as-root: the sandbox's user is root (create's "user"), its home
 * /root; without it the snapshot's user, daytona. */
static void
test_run_as_root (void)
{
  g_autoptr(SandboxBackend) backend = emulated ();
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(SandboxInstance) plain = NULL;
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(SandboxExecResult) plain_result = NULL;
  g_autofree char *out = NULL;
  g_autofree char *plain_out = NULL;

  sandbox_spec_set_run_as_root (spec, TRUE);
  instance = create (backend, spec);
  result = run (instance, "id -u; echo $HOME; whoami", &out, NULL);
  g_assert_cmpstr (out, ==, "0\n/root\nroot\n");
  destroy (instance);

  plain = create (backend, NULL);
  plain_result = run (plain, "echo $HOME; whoami", &plain_out, NULL);
  g_assert_cmpstr (plain_out, ==, "/home/daytona\ndaytona\n");
  destroy (plain);
  assert_nothing_left ();
}

/* sandbox-files: a sandbox's home directory is not a directory of the
 * host's shared $TMPDIR but, as the local backend's sandboxes, on a tmpfs
 * when the machine has one of 1 GiB (a provider's sandbox has a disk of its
 * own; docs/benchmarks.md, "Remote backends, eighth look"). */
static void
test_sandbox_files (void)
{
  g_autoptr(SandboxBackend) backend = emulated ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(SandboxExecResult) result = NULL;
  g_autofree char *out = NULL;

  if (!_emu_state_on_tmpfs ())
    {
      g_test_skip ("no tmpfs of 1 GiB here ($XDG_RUNTIME_DIR, /dev/shm)");
      return;
    }
  instance = create (backend, NULL);
  result = run (instance, "stat -f -c %T \"$HOME\" /tmp", &out, NULL);
  g_assert_cmpstr (out, ==, "tmpfs\ntmpfs\n");
  destroy (instance);
  assert_nothing_left ();
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  int status;

  /* Before anything changes the environment. */
  real_key = g_strdup (g_getenv ("DAYTONA_REAL_API_KEY") ? g_getenv ("DAYTONA_REAL_API_KEY")
                                                          : g_getenv ("DAYTONA_API_KEY"));
  real_url = g_strdup (g_getenv ("DAYTONA_API_URL"));

  g_test_init (&argc, &argv, NULL);
  g_setenv ("DAYTONA_EMULATOR_STATE_DELAY_MS", "20", TRUE);
  emulator = daytona_emulator_new (&error);
  g_assert_no_error (error);

  g_test_add_func ("/daytona/not-configured", test_not_configured);
  g_test_add_func ("/daytona/wrong-key", test_wrong_key);
  g_test_add_func ("/daytona/exec", test_exec);
  g_test_add_func ("/daytona/exec-streams", test_exec_streams);
  g_test_add_func ("/daytona/exec-status-in-stream", test_exec_status_in_stream);
  g_test_add_func ("/daytona/exec-killed", test_exec_killed);
  g_test_add_func ("/daytona/exec-timeout", test_exec_timeout);
  g_test_add_func ("/daytona/exec-cancel", test_exec_cancel);
  g_test_add_func ("/daytona/files", test_files);
  g_test_add_func ("/daytona/workdir", test_workdir);
  g_test_add_func ("/daytona/list-get-destroy", test_list_get_destroy);
  g_test_add_func ("/daytona/destroy-busy", test_destroy_busy);
  g_test_add_func ("/daytona/malformed-json", test_malformed_json);
  g_test_add_func ("/daytona/never-starts", test_never_starts);
  g_test_add_func ("/daytona/fails-to-start", test_fails_to_start);
  g_test_add_func ("/daytona/build-failed", test_build_failed);
  g_test_add_func ("/daytona/resources-need-an-image", test_resources_need_an_image);
  g_test_add_func ("/daytona/sandbox-files", test_sandbox_files);
  g_test_add_func ("/daytona/run-as-root", test_run_as_root);
  g_test_add_func ("/daytona/auto-stop", test_auto_stop);
  g_test_add_func ("/daytona/tty-errors", test_tty_errors);
  g_test_add_func ("/daytona/tty-auto-stop", test_tty_auto_stop);
  g_test_add_func ("/daytona/real-service", test_real_service);
  status = g_test_run ();

  g_assert_cmpuint (daytona_emulator_count_live (emulator), ==, 0);
  daytona_emulator_free (emulator);
  g_free (real_key);
  g_free (real_url);
  return status;
}
