/* A program built against the installed libsandbox with
 * `pkg-config --cflags --libs sandbox-1.0`: creates a local sandbox, runs a
 * command in it, checks its output and exit code, and destroys it.
 * Used by tests/packaging/test-installed.sh and docs/getting-started.md. */
#include <libsandbox/sandbox.h>
#include <string.h>

int
main (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(SandboxSpec) spec = NULL;
  g_autoptr(SandboxInstance) sandbox = NULL;
  g_autoptr(SandboxCommand) command = NULL;
  g_autoptr(SandboxExecResult) result = NULL;
  const char *argv[] = { "sh", "-c", "echo hello from $(hostname); exit 7", NULL };
  GBytes *out;
  g_autofree char *text = NULL;

  backend = sandbox_backend_new_for_name ("local", &error);
  if (backend == NULL)
    g_error ("backend: %s", error->message);

  spec = sandbox_spec_new ();
  sandbox = sandbox_backend_create (backend, spec, NULL, &error);
  if (sandbox == NULL)
    g_error ("create: %s", error->message);

  command = sandbox_command_new (argv);
  result = sandbox_instance_exec (sandbox, command, NULL, &error);
  if (result == NULL)
    g_error ("exec: %s", error->message);

  out = sandbox_exec_result_get_stdout (result);
  text = g_strndup (g_bytes_get_data (out, NULL), g_bytes_get_size (out));
  g_print ("%s", text);
  g_print ("exit code %d\n", sandbox_exec_result_get_exit_code (result));

  if (!sandbox_instance_destroy (sandbox, NULL, &error))
    g_error ("destroy: %s", error->message);

  return (sandbox_exec_result_get_exit_code (result) == 7 &&
          strstr (text, "hello from sbx-") != NULL) ? 0 : 1;
}
