/* libsandbox - where sandboxes run
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined (__SANDBOX_INSIDE__) && !defined (SANDBOX_COMPILATION)
#error "Only <libsandbox/sandbox.h> can be included directly."
#endif

#include <gio/gio.h>
#include "sandbox-version-macros.h"
#include "sandbox-instance.h"
#include "sandbox-spec.h"

G_BEGIN_DECLS

/**
 * SANDBOX_BACKEND_EXTENSION_POINT_NAME:
 *
 * The name of the [struct@Gio.IOExtensionPoint] that backends implement.
 * A backend in a GIO module calls g_io_extension_point_implement() with it
 * from `g_io_module_load()`.
 *
 * Since: 0.1
 */
#define SANDBOX_BACKEND_EXTENSION_POINT_NAME "sandbox-backend"

#define SANDBOX_TYPE_BACKEND (sandbox_backend_get_type ())

SANDBOX_AVAILABLE_IN_0_1
G_DECLARE_DERIVABLE_TYPE (SandboxBackend, sandbox_backend, SANDBOX, BACKEND, GObject)

/**
 * SandboxBackendClass::create:
 * @self: a #SandboxBackend
 * @spec: what to create: image, resources, labels, mounts
 * @cancellable: (nullable): a #GCancellable
 * @task: the #GTask to complete with the new [class@Sandbox.Instance]
 *
 * Creates a sandbox from @spec. Called by [method@Sandbox.Backend.create_async].
 *
 * Since: 0.1
 */

/**
 * SandboxBackendClass::get_instance:
 * @self: a #SandboxBackend
 * @id: the identifier of a sandbox of this backend
 * @cancellable: (nullable): a #GCancellable
 * @task: the #GTask to complete with the [class@Sandbox.Instance], or to
 *   fail with %SANDBOX_ERROR_NOT_FOUND
 *
 * Finds the live sandbox with identifier @id. Called by
 * [method@Sandbox.Backend.get_instance_async].
 *
 * Since: 0.1
 */

/**
 * SandboxBackendClass::list:
 * @self: a #SandboxBackend
 * @labels: (nullable) (element-type utf8 utf8): only sandboxes carrying all
 *   of these labels; %NULL for all
 * @cancellable: (nullable): a #GCancellable
 * @task: the #GTask to complete with a [iface@Gio.ListModel] of [class@Sandbox.Instance]
 *
 * Lists the sandboxes of the backend carrying every label in @labels.
 *
 * Since: 0.1
 */

/**
 * SandboxBackendClass:
 * @parent_class: the parent class
 * @check_configured: check, without any network call, that the backend can
 *   work (a program installed, an API key set); fail with
 *   %SANDBOX_ERROR_NOT_CONFIGURED and a message saying what to do
 * @create: create a sandbox from @spec; complete @task with the new
 *   [class@Sandbox.Instance] (`g_task_return_value()` with an object #GValue
 *   in C, `task.return_value(instance)` in Python or JavaScript)
 * @get_instance: find the live sandbox with identifier @id; complete @task
 *   with its [class@Sandbox.Instance], or fail with %SANDBOX_ERROR_NOT_FOUND
 * @list: list the sandboxes of this backend carrying every label in @labels;
 *   complete @task with a [iface@Gio.ListModel] of [class@Sandbox.Instance]
 *   (for example a [class@Gio.ListStore])
 *
 * The virtual methods a backend implements. The asynchronous ones take the
 * #GTask that the public `_async` method created (see
 * [class@Sandbox.Instance] for why).
 *
 * Since: 0.1
 */
struct _SandboxBackendClass
{
  GObjectClass parent_class;

  gboolean (*check_configured) (SandboxBackend  *self,
                                GError         **error);
  void     (*create)           (SandboxBackend  *self,
                                SandboxSpec     *spec,
                                GCancellable    *cancellable,
                                GTask           *task);
  void     (*get_instance)     (SandboxBackend  *self,
                                const char      *id,
                                GCancellable    *cancellable,
                                GTask           *task);
  void     (*list)             (SandboxBackend  *self,
                                GHashTable      *labels,
                                GCancellable    *cancellable,
                                GTask           *task);

  /*< private >*/
  gpointer padding[12];
};

SANDBOX_AVAILABLE_IN_0_1
SandboxBackend   *sandbox_backend_new_for_name        (const char           *name,
                                                       GError              **error);
SANDBOX_AVAILABLE_IN_0_1
char            **sandbox_backend_list_names          (void);
SANDBOX_AVAILABLE_IN_0_1
void              sandbox_backend_register            (const char           *name,
                                                       GType                 backend_type,
                                                       int                   priority);

SANDBOX_AVAILABLE_IN_0_1
const char       *sandbox_backend_get_name            (SandboxBackend       *self);
SANDBOX_AVAILABLE_IN_0_1
gboolean          sandbox_backend_check_configured    (SandboxBackend       *self,
                                                       GError              **error);

SANDBOX_AVAILABLE_IN_0_1
void              sandbox_backend_create_async        (SandboxBackend       *self,
                                                       SandboxSpec          *spec,
                                                       GCancellable         *cancellable,
                                                       GAsyncReadyCallback   callback,
                                                       gpointer              user_data);
SANDBOX_AVAILABLE_IN_0_1
SandboxInstance  *sandbox_backend_create_finish       (SandboxBackend       *self,
                                                       GAsyncResult         *result,
                                                       GError              **error);
SANDBOX_AVAILABLE_IN_0_1
SandboxInstance  *sandbox_backend_create              (SandboxBackend       *self,
                                                       SandboxSpec          *spec,
                                                       GCancellable         *cancellable,
                                                       GError              **error);

SANDBOX_AVAILABLE_IN_0_1
void              sandbox_backend_get_instance_async  (SandboxBackend       *self,
                                                       const char           *id,
                                                       GCancellable         *cancellable,
                                                       GAsyncReadyCallback   callback,
                                                       gpointer              user_data);
SANDBOX_AVAILABLE_IN_0_1
SandboxInstance  *sandbox_backend_get_instance_finish (SandboxBackend       *self,
                                                       GAsyncResult         *result,
                                                       GError              **error);
SANDBOX_AVAILABLE_IN_0_1
SandboxInstance  *sandbox_backend_get_instance        (SandboxBackend       *self,
                                                       const char           *id,
                                                       GCancellable         *cancellable,
                                                       GError              **error);

SANDBOX_AVAILABLE_IN_0_1
void              sandbox_backend_list_async          (SandboxBackend       *self,
                                                       GHashTable           *labels,
                                                       GCancellable         *cancellable,
                                                       GAsyncReadyCallback   callback,
                                                       gpointer              user_data);
SANDBOX_AVAILABLE_IN_0_1
GList            *sandbox_backend_list_finish         (SandboxBackend       *self,
                                                       GAsyncResult         *result,
                                                       GError              **error);
SANDBOX_AVAILABLE_IN_0_1
GList            *sandbox_backend_list                (SandboxBackend       *self,
                                                       GHashTable           *labels,
                                                       GCancellable         *cancellable,
                                                       GError              **error);

G_END_DECLS
