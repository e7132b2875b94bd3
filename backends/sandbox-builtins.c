/* libsandbox - the built-in backends
 *
 * The one file of the library that knows the built-in backends by type;
 * everything else finds them through the registry.
 *
 * It is compiled twice. In the library, it registers the local backend and
 * loads the module of the remote ones (daytona, e2b: they need libsoup,
 * which a program that runs local sandboxes should not pay for) when the
 * registry asks for them. In that module (SANDBOX_REMOTE_MODULE defined),
 * it is the module's entry point, which registers them.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "sandbox-private.h"
#include "sandbox-remote-private.h"

#ifndef SANDBOX_REMOTE_MODULE

#include <gmodule.h>

#include "local/sandbox-local-backend.h"

static const char * const remote_names[] = { "daytona", "e2b", NULL };

void
_sandbox_register_builtin_backends (void)
{
  g_io_extension_point_implement (SANDBOX_BACKEND_EXTENSION_POINT_NAME,
                                  SANDBOX_TYPE_LOCAL_BACKEND, "local", 100);
}

gboolean
_sandbox_is_remote_backend_name (const char *name)
{
  return name != NULL && g_strv_contains (remote_names, name);
}

static const SandboxRemoteImports remote_imports = {
  sizeof (SandboxRemoteImports),
  PACKAGE_VERSION,
  _sandbox_output_get_type,
  _sandbox_output_new,
  _sandbox_output_write,
  _sandbox_output_get_pending,
  _sandbox_output_cancel,
  _sandbox_output_flush_async,
  _sandbox_output_flush_finish,
  _sandbox_output_steal_result,
  _sandbox_task_return_object,
  _sandbox_display_text,
};

static GError *remote_error;

static gboolean
load_remote (void)
{
  const char *path = g_getenv ("SANDBOX_REMOTE_MODULE");
  g_autofree char *installed = NULL;
  SandboxRemoteModuleRegister entry = NULL;
  GModule *module;

  if (path == NULL || *path == '\0')
    path = installed = g_build_filename (SANDBOX_MODULE_DIR, SANDBOX_REMOTE_MODULE_NAME, NULL);

  module = g_module_open (path, G_MODULE_BIND_LOCAL);
  if (module == NULL)
    {
      g_set_error (&remote_error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED,
                   _("The daytona and e2b backends are in %s, which cannot be loaded: %s. "
                     "Reinstall libsandbox (the package libsandbox-1.0-0 on Debian and "
                     "Ubuntu, libsandbox on Fedora), or set SANDBOX_REMOTE_MODULE to "
                     "the file."),
                   path, g_module_error ());
      return FALSE;
    }
  if (!g_module_symbol (module, SANDBOX_REMOTE_MODULE_ENTRY, (gpointer *) &entry) || entry == NULL)
    {
      g_set_error (&remote_error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED,
                   _("%s is not the module of the daytona and e2b backends (%s). "
                     "Reinstall libsandbox, or set SANDBOX_REMOTE_MODULE to the right file."),
                   path, g_module_error ());
      g_module_close (module);
      return FALSE;
    }
  /* It registers types: it stays loaded for the life of the process. */
  g_module_make_resident (module);
  g_debug ("Loaded the remote backends from %s", path);
  return entry (&remote_imports, &remote_error);
}

gboolean
_sandbox_ensure_remote_backends (GError **error)
{
  static gsize state = 0;  /* 1: registered, 2: failed (remote_error) */

  if (g_once_init_enter (&state))
    g_once_init_leave (&state, load_remote () ? 1 : 2);

  if (state == 1)
    return TRUE;
  if (error != NULL)
    *error = g_error_copy (remote_error);
  return FALSE;
}

#else /* SANDBOX_REMOTE_MODULE */

#include "daytona/sandbox-daytona-backend.h"
#include "e2b/sandbox-e2b-backend.h"

G_MODULE_EXPORT gboolean sandbox_remote_module_register (const SandboxRemoteImports  *imports,
                                                         GError                     **error);

G_MODULE_EXPORT gboolean
sandbox_remote_module_register (const SandboxRemoteImports  *imports,
                                GError                     **error)
{
  if (!_sandbox_remote_imports_set (imports, error))
    return FALSE;
  g_io_extension_point_implement (SANDBOX_BACKEND_EXTENSION_POINT_NAME,
                                  SANDBOX_TYPE_DAYTONA_BACKEND, "daytona", 50);
  g_io_extension_point_implement (SANDBOX_BACKEND_EXTENSION_POINT_NAME,
                                  SANDBOX_TYPE_E2B_BACKEND, "e2b", 50);
  return TRUE;
}

#endif /* SANDBOX_REMOTE_MODULE */
