/* libsandbox - tests of the core types and the registry
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include <libsandbox/sandbox.h>

/* ---- a minimal C backend defined by the test, registered by name ---- */

#define TEST_TYPE_BACKEND (test_backend_get_type ())
G_DECLARE_FINAL_TYPE (TestBackend, test_backend, TEST, BACKEND, SandboxBackend)
struct _TestBackend { SandboxBackend parent_instance; };
G_DEFINE_FINAL_TYPE (TestBackend, test_backend, SANDBOX_TYPE_BACKEND)

#define TEST_TYPE_INSTANCE (test_instance_get_type ())
G_DECLARE_FINAL_TYPE (TestInstance, test_instance, TEST, INSTANCE, SandboxInstance)
struct _TestInstance { SandboxInstance parent_instance; };
G_DEFINE_FINAL_TYPE (TestInstance, test_instance, SANDBOX_TYPE_INSTANCE)

static void
test_backend_create (SandboxBackend *self,
                     SandboxSpec    *spec,
                     GCancellable   *cancellable,
                     GTask          *task)
{
  g_autoptr(SandboxInstance) instance = g_object_new (TEST_TYPE_INSTANCE,
                                                      "id", "test-1",
                                                      "backend", self,
                                                      NULL);
  GValue value = G_VALUE_INIT;

  sandbox_instance_set_labels (instance, sandbox_spec_get_labels (spec));
  g_value_init (&value, SANDBOX_TYPE_INSTANCE);
  g_value_set_object (&value, instance);
  g_task_return_value (task, &value);
  g_value_unset (&value);
}

/* A buggy implementation: returns without completing or keeping the task. */
static void
test_backend_list_forgets (SandboxBackend *self,
                           GHashTable     *labels,
                           GCancellable   *cancellable,
                           GTask          *task)
{
}

static void
test_backend_class_init (TestBackendClass *klass)
{
  SANDBOX_BACKEND_CLASS (klass)->create = test_backend_create;
  SANDBOX_BACKEND_CLASS (klass)->list = test_backend_list_forgets;
  /* get_instance and list are left out on purpose: NOT_SUPPORTED. */
}

static void test_backend_init (TestBackend *self) { }
static void test_instance_class_init (TestInstanceClass *klass) { }
static void test_instance_init (TestInstance *self) { }

/* ---- tests ---- */

static void
test_error_quark (void)
{
  g_assert_cmpstr (g_quark_to_string (SANDBOX_ERROR), ==, "sandbox-error-quark");
  g_assert_true (G_TYPE_IS_ENUM (sandbox_error_get_type ()));
  g_assert_true (G_TYPE_IS_ENUM (sandbox_instance_state_get_type ()));
}

static void
test_spec (void)
{
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  GPtrArray *mounts;
  double cpu = 0;
  guint memory = 0;

  g_assert_null (sandbox_spec_get_image (spec));
  g_assert_false (sandbox_spec_get_network (spec));

  g_object_set (spec, "cpu", 1.5, "memory-mb", 512u, "image", "host", "network", TRUE, NULL);
  g_object_get (spec, "cpu", &cpu, "memory-mb", &memory, NULL);
  g_assert_cmpfloat (cpu, ==, 1.5);
  g_assert_cmpuint (memory, ==, 512);
  g_assert_cmpstr (sandbox_spec_get_image (spec), ==, "host");
  g_assert_true (sandbox_spec_get_network (spec));

  sandbox_spec_set_env (spec, "A", "1");
  sandbox_spec_set_env (spec, "B", "2");
  sandbox_spec_set_env (spec, "B", NULL);
  g_assert_cmpuint (g_hash_table_size (sandbox_spec_get_env (spec)), ==, 1);
  g_assert_cmpstr (g_hash_table_lookup (sandbox_spec_get_env (spec), "A"), ==, "1");

  sandbox_spec_set_label (spec, "flow", "F");
  g_assert_cmpstr (g_hash_table_lookup (sandbox_spec_get_labels (spec), "flow"), ==, "F");

  sandbox_spec_add_mount (spec, "/srv/data", NULL, TRUE);
  sandbox_spec_add_mount (spec, "/srv/out", "/out", FALSE);
  mounts = sandbox_spec_get_mounts (spec);
  g_assert_cmpuint (mounts->len, ==, 2);
  g_assert_cmpstr (sandbox_mount_get_sandbox_path (g_ptr_array_index (mounts, 0)), ==, "/srv/data");
  g_assert_true (sandbox_mount_get_read_only (g_ptr_array_index (mounts, 0)));
  g_assert_cmpstr (sandbox_mount_get_sandbox_path (g_ptr_array_index (mounts, 1)), ==, "/out");
  g_assert_false (sandbox_mount_get_read_only (g_ptr_array_index (mounts, 1)));
  /* The old calls map onto the flags. */
  g_assert_cmpint (sandbox_mount_get_flags (g_ptr_array_index (mounts, 0)), ==, SANDBOX_MOUNT_READ_ONLY);
  g_assert_cmpint (sandbox_mount_get_flags (g_ptr_array_index (mounts, 1)), ==, SANDBOX_MOUNT_NONE);
}

static void
test_spec_mount_flags (void)
{
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxMount) mount = NULL;
  GFlagsClass *klass;
  GPtrArray *mounts;
  SandboxMount *m;

  sandbox_spec_add_mount_full (spec, "/srv/ds", NULL, SANDBOX_MOUNT_NO_LINKS);
  sandbox_spec_add_mount_full (spec, "/srv/ro", "/ro", SANDBOX_MOUNT_READ_ONLY | SANDBOX_MOUNT_NO_LINKS);
  mounts = sandbox_spec_get_mounts (spec);
  g_assert_cmpuint (mounts->len, ==, 2);
  m = g_ptr_array_index (mounts, 0);
  g_assert_cmpstr (sandbox_mount_get_sandbox_path (m), ==, "/srv/ds");
  g_assert_cmpint (sandbox_mount_get_flags (m), ==, SANDBOX_MOUNT_NO_LINKS);
  g_assert_false (sandbox_mount_get_read_only (m));
  m = g_ptr_array_index (mounts, 1);
  g_assert_cmpstr (sandbox_mount_get_host_path (m), ==, "/srv/ro");
  g_assert_cmpstr (sandbox_mount_get_sandbox_path (m), ==, "/ro");
  g_assert_true (sandbox_mount_get_read_only (m));
  g_assert_cmpint (sandbox_mount_get_flags (m), ==, SANDBOX_MOUNT_READ_ONLY | SANDBOX_MOUNT_NO_LINKS);

  mount = sandbox_mount_new_full ("/a", "/b", SANDBOX_MOUNT_NO_LINKS);
  g_assert_cmpint (sandbox_mount_get_flags (mount), ==, SANDBOX_MOUNT_NO_LINKS);
  g_clear_pointer (&mount, sandbox_mount_unref);
  mount = sandbox_mount_new ("/a", "/b", TRUE);
  g_assert_cmpint (sandbox_mount_get_flags (mount), ==, SANDBOX_MOUNT_READ_ONLY);

  /* A GType with the nicks bindings see. */
  klass = g_type_class_ref (SANDBOX_TYPE_MOUNT_FLAGS);
  g_assert_true (G_IS_FLAGS_CLASS (klass));
  g_assert_cmpuint (g_flags_get_value_by_nick (klass, "no-links")->value, ==, SANDBOX_MOUNT_NO_LINKS);
  g_assert_cmpuint (g_flags_get_value_by_nick (klass, "read-only")->value, ==, SANDBOX_MOUNT_READ_ONLY);
  g_type_class_unref (klass);
}

static void
test_spec_volumes (void)
{
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  GHashTable *volumes = sandbox_spec_get_volumes (spec);

  g_assert_cmpuint (g_hash_table_size (volumes), ==, 0);
  sandbox_spec_add_volume (spec, "data", "/data");
  sandbox_spec_add_volume (spec, "cache", "/cache");
  sandbox_spec_add_volume (spec, "data", "/mnt/data");
  g_assert_cmpuint (g_hash_table_size (volumes), ==, 2);
  g_assert_cmpstr (g_hash_table_lookup (volumes, "data"), ==, "/mnt/data");
  g_assert_cmpstr (g_hash_table_lookup (volumes, "cache"), ==, "/cache");

  g_assert_true (sandbox_volume_name_is_valid ("data"));
  g_assert_true (sandbox_volume_name_is_valid ("my-vol_1.v2"));
  g_assert_false (sandbox_volume_name_is_valid (""));
  g_assert_false (sandbox_volume_name_is_valid (NULL));
  g_assert_false (sandbox_volume_name_is_valid (".."));
  g_assert_false (sandbox_volume_name_is_valid (".hidden"));
  g_assert_false (sandbox_volume_name_is_valid ("a/b"));
  g_assert_false (sandbox_volume_name_is_valid ("a b"));
  g_assert_false (sandbox_volume_name_is_valid ("0123456789012345678901234567890123456789012345678901234567890123"));
}

static void
test_command (void)
{
  const char *argv[] = { "echo", "hi", NULL };
  g_autoptr(SandboxCommand) cmd = sandbox_command_new (argv);
  g_autoptr(SandboxCommand) shell = sandbox_command_new_shell ("exit 3");
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();
  g_autoptr(GBytes) input = g_bytes_new_static ("in", 2);

  g_assert_cmpstrv (sandbox_command_get_argv (cmd), argv);
  g_assert_cmpstr (sandbox_command_get_argv (shell)[0], ==, "/bin/sh");
  g_assert_cmpstr (sandbox_command_get_argv (shell)[2], ==, "exit 3");

  sandbox_command_set_cwd (cmd, "/tmp");
  sandbox_command_set_timeout_ms (cmd, 250);
  sandbox_command_set_env (cmd, "X", "y");
  sandbox_command_set_stdout_stream (cmd, out);
  sandbox_command_set_stdin (cmd, input);
  g_assert_cmpstr (sandbox_command_get_cwd (cmd), ==, "/tmp");
  g_assert_cmpuint (sandbox_command_get_timeout_ms (cmd), ==, 250);
  g_assert_cmpstr (g_hash_table_lookup (sandbox_command_get_env (cmd), "X"), ==, "y");
  g_assert_true (sandbox_command_get_stdout_stream (cmd) == out);
  g_assert_null (sandbox_command_get_stderr_stream (cmd));
  g_assert_true (g_bytes_equal (sandbox_command_get_stdin (cmd), input));
}

static void
test_exec_result (void)
{
  g_autoptr(SandboxExecResult) ok = sandbox_exec_result_new (0, 0);
  g_autoptr(SandboxExecResult) failed = sandbox_exec_result_new (3, 0);
  g_autoptr(SandboxExecResult) killed = sandbox_exec_result_new (-1, 9);
  g_autoptr(GBytes) out = g_bytes_new_static ("x", 1);
  g_autoptr(SandboxExecResult) full = g_object_new (SANDBOX_TYPE_EXEC_RESULT,
                                                    "exit-status", 0, "timed-out", TRUE,
                                                    "stdout", out, "elapsed", 1.5, NULL);

  g_assert_true (sandbox_exec_result_get_success (ok));
  g_assert_false (sandbox_exec_result_get_success (failed));
  g_assert_cmpint (sandbox_exec_result_get_exit_code (failed), ==, 3);
  g_assert_cmpint (sandbox_exec_result_get_exit_code (killed), ==, 137);
  g_assert_false (sandbox_exec_result_get_success (killed));
  g_assert_false (sandbox_exec_result_get_success (full));
  g_assert_true (sandbox_exec_result_get_timed_out (full));
  g_assert_true (g_bytes_equal (sandbox_exec_result_get_stdout (full), out));
  g_assert_null (sandbox_exec_result_get_stderr (full));
  g_assert_cmpfloat (sandbox_exec_result_get_elapsed (full), ==, 1.5);
}

static void
test_unknown_backend (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = sandbox_backend_new_for_name ("no-such-backend", &error);

  g_assert_null (backend);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_UNKNOWN_BACKEND);
  g_assert_nonnull (strstr (error->message, "no-such-backend"));
  g_assert_nonnull (strstr (error->message, "local"));
  g_assert_nonnull (strstr (error->message, "SANDBOX_BACKEND_PATH"));
}

static void
test_default_backend (void)
{
  g_autoptr(SandboxBackend) backend = NULL;

  g_unsetenv ("SANDBOX_BACKEND");
  backend = sandbox_backend_new_for_name (NULL, NULL);
  g_assert_cmpstr (sandbox_backend_get_name (backend), ==, "local");
}

static void
test_register (void)
{
  g_auto(GStrv) names = NULL;
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(SandboxInstance) missing = NULL;
  g_autoptr(GError) error = NULL;
  const char *argv[] = { "true", NULL };
  g_autoptr(SandboxCommand) cmd = sandbox_command_new (argv);
  g_autoptr(SandboxExecResult) result = NULL;

  sandbox_backend_register ("ctest", TEST_TYPE_BACKEND, 0);
  names = sandbox_backend_list_names ();
  g_assert_true (g_strv_contains ((const char * const *) names, "ctest"));
  g_assert_true (g_strv_contains ((const char * const *) names, "local"));

  backend = sandbox_backend_new_for_name ("ctest", &error);
  g_assert_no_error (error);
  g_assert_true (TEST_IS_BACKEND (backend));
  g_assert_cmpstr (sandbox_backend_get_name (backend), ==, "ctest");

  sandbox_spec_set_label (spec, "k", "v");
  instance = sandbox_backend_create (backend, spec, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (sandbox_instance_get_id (instance), ==, "test-1");
  g_assert_true (sandbox_instance_get_backend (instance) == backend);
  g_assert_cmpstr (g_hash_table_lookup (sandbox_instance_get_labels (instance), "k"), ==, "v");

  /* A slot the subclass leaves empty is NOT_SUPPORTED, not a crash. */
  missing = sandbox_backend_get_instance (backend, "x", NULL, &error);
  g_assert_null (missing);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);

  result = sandbox_instance_exec (instance, cmd, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);

  /* A vfunc that drops its task fails the call instead of hanging it. */
  g_assert_null (sandbox_backend_list (backend, NULL, NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "list"));
}

static void
test_abstract (void)
{
  if (g_test_subprocess ())
    {
      g_object_new (SANDBOX_TYPE_BACKEND, NULL);
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*cannot create instance of abstract*");
}

static void
test_module (void)
{
  /* tests/modules/ holds a GIO module registering "testmodule"; the test
   * environment points SANDBOX_BACKEND_PATH at it. */
  g_auto(GStrv) names = sandbox_backend_list_names ();
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(GError) error = NULL;

  if (g_getenv ("SANDBOX_BACKEND_PATH") == NULL)
    {
      g_test_skip ("SANDBOX_BACKEND_PATH is not set");
      return;
    }
  g_assert_true (g_strv_contains ((const char * const *) names, "testmodule"));
  backend = sandbox_backend_new_for_name ("testmodule", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (G_OBJECT_TYPE_NAME (backend), ==, "TestModuleBackend");
  g_assert_false (sandbox_backend_check_configured (backend, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED);
}

/* daytona and e2b are in a module that the registry loads when one of them
 * is asked for by name, or when all names are listed (issue 14). */
static void
test_remote_module (void)
{
  g_auto(GStrv) names = NULL;
  g_autoptr(SandboxBackend) local = NULL;
  g_autoptr(SandboxBackend) e2b = NULL;
  g_autoptr(GError) error = NULL;

  if (g_getenv ("SANDBOX_REMOTE_MODULE") == NULL)
    {
      g_test_skip ("SANDBOX_REMOTE_MODULE is not set");
      return;
    }
  if (g_test_subprocess ())
    {
      /* The local backend alone does not load it. */
      local = sandbox_backend_new_for_name ("local", &error);
      g_assert_no_error (error);
      g_assert_null (g_type_from_name ("SandboxE2bBackend"));
      g_assert_null (g_type_from_name ("SandboxDaytonaBackend"));

      e2b = sandbox_backend_new_for_name ("e2b", &error);
      g_assert_no_error (error);
      g_assert_cmpstr (G_OBJECT_TYPE_NAME (e2b), ==, "SandboxE2bBackend");
      /* Both are registered at once, in the order of the names. */
      g_assert_true (g_type_from_name ("SandboxDaytonaBackend") != 0);
      names = sandbox_backend_list_names ();
      g_assert_cmpstr (names[0], ==, "local");
      g_assert_true (g_strv_contains ((const char * const *) names, "daytona"));
      g_assert_true (g_strv_contains ((const char * const *) names, "e2b"));
      g_print ("loaded on demand\n");
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stdout ("*loaded on demand*");
}

/* Without the module, daytona and e2b fail with what to do; the rest works. */
static void
test_remote_module_missing (void)
{
  if (g_test_subprocess ())
    {
      g_auto(GStrv) names = NULL;
      g_autoptr(SandboxBackend) local = NULL;
      g_autoptr(SandboxBackend) daytona = NULL;
      g_autoptr(GError) error = NULL;

      g_setenv ("SANDBOX_REMOTE_MODULE", "/nonexistent/libsandbox-remote.so", TRUE);
      daytona = sandbox_backend_new_for_name ("daytona", &error);
      g_assert_null (daytona);
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED);
      g_assert_nonnull (strstr (error->message, "/nonexistent/libsandbox-remote.so"));
      g_assert_nonnull (strstr (error->message, "Reinstall libsandbox"));
      g_clear_error (&error);

      names = sandbox_backend_list_names ();
      g_assert_true (g_strv_contains ((const char * const *) names, "local"));
      g_assert_false (g_strv_contains ((const char * const *) names, "daytona"));
      local = sandbox_backend_new_for_name ("local", &error);
      g_assert_no_error (error);
      g_print ("refused with a reason\n");
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stdout ("*refused with a reason*");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/core/error-quark", test_error_quark);
  g_test_add_func ("/core/spec", test_spec);
  g_test_add_func ("/core/spec-mount-flags", test_spec_mount_flags);
  g_test_add_func ("/core/spec-volumes", test_spec_volumes);
  g_test_add_func ("/core/command", test_command);
  g_test_add_func ("/core/exec-result", test_exec_result);
  g_test_add_func ("/registry/unknown-backend", test_unknown_backend);
  g_test_add_func ("/registry/default-backend", test_default_backend);
  g_test_add_func ("/registry/register", test_register);
  g_test_add_func ("/registry/gio-module", test_module);
  g_test_add_func ("/registry/abstract", test_abstract);
  g_test_add_func ("/registry/remote-module", test_remote_module);
  g_test_add_func ("/registry/remote-module-missing", test_remote_module_missing);

  return g_test_run ();
}
