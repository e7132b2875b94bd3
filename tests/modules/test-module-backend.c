/* A backend in a GIO module, loaded from SANDBOX_BACKEND_PATH by the tests
 * of the registry: the shape of an out-of-tree backend.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <gmodule.h>
#include <libsandbox/sandbox.h>

#define TEST_TYPE_MODULE_BACKEND (test_module_backend_get_type ())
G_DECLARE_FINAL_TYPE (TestModuleBackend, test_module_backend, TEST, MODULE_BACKEND, SandboxBackend)
struct _TestModuleBackend { SandboxBackend parent_instance; };
G_DEFINE_DYNAMIC_TYPE (TestModuleBackend, test_module_backend, SANDBOX_TYPE_BACKEND)

static gboolean
test_module_backend_check_configured (SandboxBackend  *self,
                                      GError         **error)
{
  g_set_error_literal (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED,
                       "The test module backend is never configured");
  return FALSE;
}

static void
test_module_backend_class_init (TestModuleBackendClass *klass)
{
  SANDBOX_BACKEND_CLASS (klass)->check_configured = test_module_backend_check_configured;
}

static void test_module_backend_class_finalize (TestModuleBackendClass *klass) { }
static void test_module_backend_init (TestModuleBackend *self) { }

G_MODULE_EXPORT void g_io_module_load (GIOModule *module);
G_MODULE_EXPORT void g_io_module_unload (GIOModule *module);

void
g_io_module_load (GIOModule *module)
{
  test_module_backend_register_type (G_TYPE_MODULE (module));
  g_type_module_use (G_TYPE_MODULE (module));   /* never unloaded */
  g_io_extension_point_implement (SANDBOX_BACKEND_EXTENSION_POINT_NAME,
                                  TEST_TYPE_MODULE_BACKEND, "testmodule", 0);
}

void
g_io_module_unload (GIOModule *module)
{
}
