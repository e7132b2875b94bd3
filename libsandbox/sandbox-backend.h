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

/**
 * SandboxBackendCapabilities:
 * @SANDBOX_BACKEND_CAPABILITY_NONE: nothing beyond what every backend does
 * @SANDBOX_BACKEND_CAPABILITY_SHARES_HOST_FS: sandboxes run on this machine
 *   and see its file system (read-only, some directories hidden): programs
 *   and interpreters installed here can run in them, and an image of “host”
 *   means this machine's root
 * @SANDBOX_BACKEND_CAPABILITY_MOUNTS: honours
 *   [method@Sandbox.Spec.add_mount]; without it, files must be uploaded
 * @SANDBOX_BACKEND_CAPABILITY_CPU_LIMIT: honours [property@Sandbox.Spec:cpu]
 * @SANDBOX_BACKEND_CAPABILITY_MEMORY_LIMIT: honours
 *   [property@Sandbox.Spec:memory-mb]
 * @SANDBOX_BACKEND_CAPABILITY_DISK_LIMIT: honours
 *   [property@Sandbox.Spec:disk-mb]
 * @SANDBOX_BACKEND_CAPABILITY_GPU: honours [property@Sandbox.Spec:gpu]
 * @SANDBOX_BACKEND_CAPABILITY_NETWORK_POLICY: honours
 *   [property@Sandbox.Spec:network] (a sandbox without network has none)
 * @SANDBOX_BACKEND_CAPABILITY_IMAGES: runs container images named in
 *   [property@Sandbox.Spec:image] (for example “python:3.12-slim”)
 * @SANDBOX_BACKEND_CAPABILITY_HOSTNAME_IS_ID: a sandbox's host name is its
 *   [property@Sandbox.Instance:id]
 * @SANDBOX_BACKEND_CAPABILITY_LIMITS_NEED_IMAGE: the cpu, memory, disk and
 *   gpu limits can only be chosen together with an image; without one the
 *   provider's default size applies and asking for limits is an error
 * @SANDBOX_BACKEND_CAPABILITY_PAUSE: sandboxes can be paused and resumed
 *   ([method@Sandbox.Instance.pause_async]) with their files kept. Since: 0.2
 * @SANDBOX_BACKEND_CAPABILITY_METRICS: reports what a live sandbox uses
 *   ([method@Sandbox.Instance.get_metrics_async]). Since: 0.2
 * @SANDBOX_BACKEND_CAPABILITY_PORTS: a server listening on a port inside a
 *   sandbox can be reached from outside through the URL
 *   [method@Sandbox.Instance.dup_port_url_async] gives (since 0.2)
 * @SANDBOX_BACKEND_CAPABILITY_VOLUMES: named volumes
 *   ([method@Sandbox.Backend.create_volume_async]) outlive sandboxes and are
 *   mounted into new ones with [method@Sandbox.Spec.add_volume] (since 0.2)
 * @SANDBOX_BACKEND_CAPABILITY_TTY: runs commands on a terminal
 *   ([property@Sandbox.Command:tty]) with a window size, input and signals
 *   while they run (since 0.2)
 * @SANDBOX_BACKEND_CAPABILITY_PIDS_LIMIT: honours
 *   [property@Sandbox.Spec:pids-max] (since 0.2)
 * @SANDBOX_BACKEND_CAPABILITY_EGRESS_RULES: honours the address rules of
 *   [method@Sandbox.Spec.set_egress_rules] (since 0.2)
 * @SANDBOX_BACKEND_CAPABILITY_MOUNT_NO_LINKS: honours
 *   %SANDBOX_MOUNT_NO_LINKS on mounts ([method@Sandbox.Spec.add_mount_full]):
 *   the sandbox cannot make symbolic links, FIFOs, sockets or device nodes
 *   in such a mount (since 0.2)
 *
 * What a backend's sandboxes can do beyond the contract every backend
 * keeps (run commands, move files, time-outs, cancellation, labels). A
 * caller asks [method@Sandbox.Backend.get_capabilities] instead of
 * comparing backend names.
 *
 * Since: 0.2
 */
typedef enum /*< flags >*/
{
  SANDBOX_BACKEND_CAPABILITY_NONE              = 0,
  SANDBOX_BACKEND_CAPABILITY_SHARES_HOST_FS    = 1 << 0,
  SANDBOX_BACKEND_CAPABILITY_MOUNTS            = 1 << 1,
  SANDBOX_BACKEND_CAPABILITY_CPU_LIMIT         = 1 << 2,
  SANDBOX_BACKEND_CAPABILITY_MEMORY_LIMIT      = 1 << 3,
  SANDBOX_BACKEND_CAPABILITY_DISK_LIMIT        = 1 << 4,
  SANDBOX_BACKEND_CAPABILITY_GPU               = 1 << 5,
  SANDBOX_BACKEND_CAPABILITY_NETWORK_POLICY    = 1 << 6,
  SANDBOX_BACKEND_CAPABILITY_IMAGES            = 1 << 7,
  SANDBOX_BACKEND_CAPABILITY_HOSTNAME_IS_ID    = 1 << 8,
  SANDBOX_BACKEND_CAPABILITY_LIMITS_NEED_IMAGE = 1 << 9,
  SANDBOX_BACKEND_CAPABILITY_PAUSE             = 1 << 10,
  SANDBOX_BACKEND_CAPABILITY_METRICS           = 1 << 11,
  SANDBOX_BACKEND_CAPABILITY_PORTS             = 1 << 12,
  SANDBOX_BACKEND_CAPABILITY_VOLUMES           = 1 << 13,
  SANDBOX_BACKEND_CAPABILITY_TTY               = 1 << 14,
  SANDBOX_BACKEND_CAPABILITY_PIDS_LIMIT        = 1 << 15,
  SANDBOX_BACKEND_CAPABILITY_EGRESS_RULES      = 1 << 16,
  SANDBOX_BACKEND_CAPABILITY_MOUNT_NO_LINKS    = 1 << 17,
} SandboxBackendCapabilities;

#define SANDBOX_TYPE_BACKEND_CAPABILITIES (sandbox_backend_capabilities_get_type ())

SANDBOX_AVAILABLE_IN_0_2
GType sandbox_backend_capabilities_get_type (void) G_GNUC_CONST;

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
 * SandboxBackendClass::get_capabilities:
 * @self: a #SandboxBackend
 *
 * Says what the backend's sandboxes can do. The default returns
 * %SANDBOX_BACKEND_CAPABILITY_NONE. Called by
 * [method@Sandbox.Backend.get_capabilities].
 *
 * Returns: the backend's capabilities
 *
 * Since: 0.2
 */

/**
 * SandboxBackendClass::dup_default_workdir:
 * @self: a #SandboxBackend
 *
 * Says where the backend's sandboxes work when their spec names no
 * workdir. The default returns %NULL. Called by
 * [method@Sandbox.Backend.dup_default_workdir].
 *
 * Returns: (nullable) (transfer full): an absolute path, or %NULL
 *
 * Since: 0.2
 */

/**
 * SandboxBackendClass::create_volume:
 * @self: a #SandboxBackend
 * @name: the name of the volume to create
 * @cancellable: (nullable): a #GCancellable
 * @task: the #GTask to complete with `g_task_return_boolean()`; a volume
 *   that already exists is a success
 *
 * Creates the named volume. Called by
 * [method@Sandbox.Backend.create_volume_async].
 *
 * Since: 0.2
 */

/**
 * SandboxBackendClass::delete_volume:
 * @self: a #SandboxBackend
 * @name: the name of the volume to delete
 * @cancellable: (nullable): a #GCancellable
 * @task: the #GTask to complete with `g_task_return_boolean()`, or to fail
 *   with %SANDBOX_ERROR_NOT_FOUND
 *
 * Deletes the named volume and its files. Called by
 * [method@Sandbox.Backend.delete_volume_async].
 *
 * Since: 0.2
 */

/**
 * SandboxBackendClass::list_volumes:
 * @self: a #SandboxBackend
 * @cancellable: (nullable): a #GCancellable
 * @task: the #GTask to complete with the names of the volumes, a
 *   %NULL-terminated array of strings (`g_task_return_value()` with a
 *   %G_TYPE_STRV #GValue)
 *
 * Lists the backend's volumes. Called by
 * [method@Sandbox.Backend.list_volumes_async].
 *
 * Since: 0.2
 */

/**
 * SandboxBackendClass::run:
 * @self: a #SandboxBackend
 * @spec: the sandbox to make
 * @command: the one command to run in it
 * @cancellable: (nullable): a #GCancellable
 * @task: the #GTask to complete with the command's
 *   [class@Sandbox.ExecResult] once the command has ended and its sandbox
 *   is gone
 *
 * Runs @command in a sandbox made for it alone. Called by
 * [method@Sandbox.Backend.run_async]. The default creates, execs and
 * destroys; a backend that can start a sandbox with its command overrides
 * it, keeping the same isolation.
 *
 * Since: 0.2
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
 * @get_capabilities: say what the backend's sandboxes can do (since 0.2; a
 *   Python or JavaScript subclass overrides `do_get_capabilities` /
 *   `vfunc_get_capabilities`)
 * @dup_default_workdir: say where the backend's sandboxes work when their
 *   spec names no workdir, or %NULL when only the provider's image can tell
 *   (since 0.2; `do_dup_default_workdir` / `vfunc_dup_default_workdir`)
 * @create_volume: create a named volume; complete @task with
 *   `g_task_return_boolean()` (since 0.2)
 * @delete_volume: delete a named volume; complete @task with
 *   `g_task_return_boolean()` (since 0.2)
 * @list_volumes: list the volumes' names; complete @task with a %G_TYPE_STRV
 *   value (since 0.2)
 * @run: make a sandbox from @spec for @command alone, run it, and end the
 *   sandbox; complete @task with the [class@Sandbox.ExecResult]. The default
 *   creates, execs and destroys; a backend overrides it when it can start a
 *   sandbox with its command (since 0.2)
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
  SandboxBackendCapabilities
           (*get_capabilities) (SandboxBackend  *self);
  char    *(*dup_default_workdir) (SandboxBackend *self);
  void     (*create_volume)    (SandboxBackend  *self,
                                const char      *name,
                                GCancellable    *cancellable,
                                GTask           *task);
  void     (*delete_volume)    (SandboxBackend  *self,
                                const char      *name,
                                GCancellable    *cancellable,
                                GTask           *task);
  void     (*list_volumes)     (SandboxBackend  *self,
                                GCancellable    *cancellable,
                                GTask           *task);
  void     (*run)              (SandboxBackend  *self,
                                SandboxSpec     *spec,
                                SandboxCommand  *command,
                                GCancellable    *cancellable,
                                GTask           *task);

  /*< private >*/
  gpointer padding[6];
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
SANDBOX_AVAILABLE_IN_0_2
SandboxBackendCapabilities
                  sandbox_backend_get_capabilities    (SandboxBackend       *self);
SANDBOX_AVAILABLE_IN_0_2
char             *sandbox_backend_dup_default_workdir (SandboxBackend       *self);

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

SANDBOX_AVAILABLE_IN_0_2
void              sandbox_backend_run_async           (SandboxBackend       *self,
                                                       SandboxSpec          *spec,
                                                       SandboxCommand       *command,
                                                       GCancellable         *cancellable,
                                                       GAsyncReadyCallback   callback,
                                                       gpointer              user_data);
SANDBOX_AVAILABLE_IN_0_2
SandboxExecResult *sandbox_backend_run_finish         (SandboxBackend       *self,
                                                       GAsyncResult         *result,
                                                       GError              **error);
SANDBOX_AVAILABLE_IN_0_2
SandboxExecResult *sandbox_backend_run                (SandboxBackend       *self,
                                                       SandboxSpec          *spec,
                                                       SandboxCommand       *command,
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

SANDBOX_AVAILABLE_IN_0_2
gboolean          sandbox_volume_name_is_valid         (const char          *name);
SANDBOX_AVAILABLE_IN_0_2
void              sandbox_backend_create_volume_async  (SandboxBackend      *self,
                                                        const char          *name,
                                                        GCancellable        *cancellable,
                                                        GAsyncReadyCallback  callback,
                                                        gpointer             user_data);
SANDBOX_AVAILABLE_IN_0_2
gboolean          sandbox_backend_create_volume_finish (SandboxBackend      *self,
                                                        GAsyncResult        *result,
                                                        GError             **error);
SANDBOX_AVAILABLE_IN_0_2
gboolean          sandbox_backend_create_volume        (SandboxBackend      *self,
                                                        const char          *name,
                                                        GCancellable        *cancellable,
                                                        GError             **error);
SANDBOX_AVAILABLE_IN_0_2
void              sandbox_backend_delete_volume_async  (SandboxBackend      *self,
                                                        const char          *name,
                                                        GCancellable        *cancellable,
                                                        GAsyncReadyCallback  callback,
                                                        gpointer             user_data);
SANDBOX_AVAILABLE_IN_0_2
gboolean          sandbox_backend_delete_volume_finish (SandboxBackend      *self,
                                                        GAsyncResult        *result,
                                                        GError             **error);
SANDBOX_AVAILABLE_IN_0_2
gboolean          sandbox_backend_delete_volume        (SandboxBackend      *self,
                                                        const char          *name,
                                                        GCancellable        *cancellable,
                                                        GError             **error);
SANDBOX_AVAILABLE_IN_0_2
void              sandbox_backend_list_volumes_async   (SandboxBackend      *self,
                                                        GCancellable        *cancellable,
                                                        GAsyncReadyCallback  callback,
                                                        gpointer             user_data);
SANDBOX_AVAILABLE_IN_0_2
char            **sandbox_backend_list_volumes_finish  (SandboxBackend      *self,
                                                        GAsyncResult        *result,
                                                        GError             **error);
SANDBOX_AVAILABLE_IN_0_2
char            **sandbox_backend_list_volumes         (SandboxBackend      *self,
                                                        GCancellable        *cancellable,
                                                        GError             **error);

G_END_DECLS
