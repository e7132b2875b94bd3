/* libsandbox - where sandboxes run, and the registry of backends
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "sandbox-private.h"
#include "sandbox-remote-private.h"

/**
 * SandboxBackend:
 *
 * A place where sandboxes run: `local` (Linux namespaces through
 * bubblewrap), `daytona`, `e2b`, or a third party's.
 *
 * Get one by name with [ctor@Sandbox.Backend.new_for_name], create sandboxes
 * with [method@Sandbox.Backend.create_async], find existing ones with
 * [method@Sandbox.Backend.get_instance_async] and
 * [method@Sandbox.Backend.list_async].
 *
 * This is an abstract type. A new backend subclasses it (and
 * [class@Sandbox.Instance]), in C as a GIO module in the backends directory
 * or in any language with GObject-Introspection, and is made known by name
 * with [func@Sandbox.Backend.register].
 *
 * Since: 0.1
 */

typedef struct
{
  char *name;
} SandboxBackendPrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (SandboxBackend, sandbox_backend, G_TYPE_OBJECT)

#define GET_PRIVATE(o) ((SandboxBackendPrivate *) sandbox_backend_get_instance_private (o))

enum {
  PROP_0,
  PROP_NAME,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
sandbox_backend_finalize (GObject *object)
{
  SandboxBackendPrivate *priv = GET_PRIVATE (SANDBOX_BACKEND (object));

  g_clear_pointer (&priv->name, g_free);

  G_OBJECT_CLASS (sandbox_backend_parent_class)->finalize (object);
}

static void
sandbox_backend_get_property (GObject    *object,
                              guint       prop_id,
                              GValue     *value,
                              GParamSpec *pspec)
{
  SandboxBackendPrivate *priv = GET_PRIVATE (SANDBOX_BACKEND (object));

  switch (prop_id)
    {
    case PROP_NAME: g_value_set_string (value, priv->name); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
sandbox_backend_set_property (GObject      *object,
                              guint         prop_id,
                              const GValue *value,
                              GParamSpec   *pspec)
{
  SandboxBackendPrivate *priv = GET_PRIVATE (SANDBOX_BACKEND (object));

  switch (prop_id)
    {
    case PROP_NAME: priv->name = g_value_dup_string (value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static gboolean
sandbox_backend_real_check_configured (SandboxBackend  *self,
                                       GError         **error)
{
  return TRUE;
}

static SandboxBackendCapabilities
sandbox_backend_real_get_capabilities (SandboxBackend *self)
{
  return SANDBOX_BACKEND_CAPABILITY_NONE;
}

static char *
sandbox_backend_real_dup_default_workdir (SandboxBackend *self)
{
  return NULL;
}

static void sandbox_backend_real_run (SandboxBackend *self,
                                      SandboxSpec    *spec,
                                      SandboxCommand *command,
                                      GCancellable   *cancellable,
                                      GTask          *task);

static void
sandbox_backend_class_init (SandboxBackendClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  _sandbox_init_i18n ();

  object_class->finalize = sandbox_backend_finalize;
  object_class->get_property = sandbox_backend_get_property;
  object_class->set_property = sandbox_backend_set_property;

  klass->check_configured = sandbox_backend_real_check_configured;
  klass->get_capabilities = sandbox_backend_real_get_capabilities;
  klass->dup_default_workdir = sandbox_backend_real_dup_default_workdir;
  klass->run = sandbox_backend_real_run;

  /**
   * SandboxBackend:name:
   *
   * The name the backend was created by, as in
   * [ctor@Sandbox.Backend.new_for_name].
   *
   * Since: 0.1
   */
  properties[PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
sandbox_backend_init (SandboxBackend *self)
{
}

/* ------------------------------------------------------------------ */
/* Registry                                                            */

static GIOExtensionPoint *
ensure_extension_point (void)
{
  static GIOExtensionPoint *point;
  static gsize initialized = 0;

  if (g_once_init_enter (&initialized))
    {
      const char *path = g_getenv ("SANDBOX_BACKEND_PATH");
      g_auto(GStrv) dirs = NULL;

      _sandbox_init_i18n ();

      point = g_io_extension_point_register (SANDBOX_BACKEND_EXTENSION_POINT_NAME);
      g_io_extension_point_set_required_type (point, SANDBOX_TYPE_BACKEND);

      _sandbox_register_builtin_backends ();

      dirs = g_strsplit (path != NULL ? path : SANDBOX_BACKEND_DIR, G_SEARCHPATH_SEPARATOR_S, 0);
      for (guint i = 0; dirs[i] != NULL; i++)
        {
          GIOModuleScope *scope;
          GList *modules;

          if (*dirs[i] == '\0' || !g_file_test (dirs[i], G_FILE_TEST_IS_DIR))
            continue;
          scope = g_io_module_scope_new (G_IO_MODULE_SCOPE_BLOCK_DUPLICATES);
          modules = g_io_modules_load_all_in_directory_with_scope (dirs[i], scope);
          g_debug ("Loaded %u backend module(s) from %s", g_list_length (modules), dirs[i]);
          /* The modules stay loaded for the life of the process. */
          g_list_free (modules);
          g_io_module_scope_free (scope);
        }

      g_once_init_leave (&initialized, 1);
    }

  return point;
}

/**
 * sandbox_backend_register:
 * @name: the name to create the backend by
 * @backend_type: a subtype of #SandboxBackend
 * @priority: used to order [func@Sandbox.Backend.list_names]; higher first,
 *   and the higher one wins when two types claim one name
 *
 * Makes a backend type known by name, so that
 * [ctor@Sandbox.Backend.new_for_name] (and so `sandboxctl` and the Metaflow
 * extension) can create it. This is how a backend written in Python or
 * JavaScript is plugged in:
 *
 * ```python
 * class MyBackend(Sandbox.Backend): ...
 * Sandbox.Backend.register("mine", MyBackend.__gtype__, 0)
 * ```
 *
 * Since: 0.1
 */
void
sandbox_backend_register (const char *name,
                          GType       backend_type,
                          int         priority)
{
  g_return_if_fail (name != NULL && *name != '\0');
  g_return_if_fail (g_type_is_a (backend_type, SANDBOX_TYPE_BACKEND));
  g_return_if_fail (!G_TYPE_IS_ABSTRACT (backend_type));

  g_io_extension_point_implement (ensure_extension_point () ? SANDBOX_BACKEND_EXTENSION_POINT_NAME : NULL,
                                  backend_type, name, priority);
}

/**
 * sandbox_backend_list_names:
 *
 * Lists the names of the backends that can be created: the built-in ones,
 * those in GIO modules of the backends directory (`SANDBOX_BACKEND_PATH`
 * overrides it), and those registered with [func@Sandbox.Backend.register].
 *
 * Returns: (transfer full) (array zero-terminated=1): the names, highest
 *   priority first
 *
 * Since: 0.1
 */
char **
sandbox_backend_list_names (void)
{
  GIOExtensionPoint *point = ensure_extension_point ();
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GError) error = NULL;

  /* daytona and e2b are in a module loaded on demand: load it to list them. */
  if (!_sandbox_ensure_remote_backends (&error))
    g_debug ("Listing the backends without daytona and e2b: %s", error->message);

  for (GList *l = g_io_extension_point_get_extensions (point); l != NULL; l = l->next)
    {
      const char *name = g_io_extension_get_name (l->data);

      if (g_hash_table_add (seen, (gpointer) name))
        g_strv_builder_add (builder, name);
    }

  return g_strv_builder_end (builder);
}

/**
 * sandbox_backend_new_for_name:
 * @name: (nullable): a backend name such as `local`, `daytona` or `e2b`;
 *   %NULL for the value of `SANDBOX_BACKEND`, or `local`
 * @error: return location for a #GError
 *
 * Creates the backend called @name. An unknown name fails with
 * %SANDBOX_ERROR_UNKNOWN_BACKEND and a message that lists the names that
 * exist. Creating a backend makes no network call and does not check its
 * configuration: see [method@Sandbox.Backend.check_configured].
 *
 * Returns: (transfer full): a new #SandboxBackend, or %NULL with @error set
 *
 * Since: 0.1
 */
SandboxBackend *
sandbox_backend_new_for_name (const char  *name,
                              GError     **error)
{
  GIOExtensionPoint *point = ensure_extension_point ();
  GIOExtension *extension;

  if (name == NULL)
    name = g_getenv ("SANDBOX_BACKEND");
  if (name == NULL || *name == '\0')
    name = "local";

  /* daytona and e2b are in a module loaded on demand, before the lookup so
   * that they win over a lower-priority type of the same name, as if they
   * had been registered from the start. */
  if (_sandbox_is_remote_backend_name (name) && !_sandbox_ensure_remote_backends (error))
    return NULL;

  extension = g_io_extension_point_get_extension_by_name (point, name);
  if (extension == NULL)
    {
      g_auto(GStrv) names = sandbox_backend_list_names ();
      g_autofree char *known = g_strjoinv (", ", names);

      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_UNKNOWN_BACKEND,
                   _("Unknown sandbox backend “%s”. Known backends: %s. "
                     "A third-party backend is a GIO module in %s "
                     "(or a directory named by SANDBOX_BACKEND_PATH), or a type "
                     "registered with sandbox_backend_register()."),
                   name, known, SANDBOX_BACKEND_DIR);
      return NULL;
    }

  return g_object_new (g_io_extension_get_type (extension), "name", name, NULL);
}

/**
 * sandbox_backend_get_name:
 * @self: a #SandboxBackend
 *
 * Gets [property@Sandbox.Backend:name].
 *
 * Returns: (nullable): the name
 *
 * Since: 0.1
 */
const char *
sandbox_backend_get_name (SandboxBackend *self)
{
  g_return_val_if_fail (SANDBOX_IS_BACKEND (self), NULL);
  return GET_PRIVATE (self)->name;
}

G_DEFINE_FLAGS_TYPE (SandboxBackendCapabilities, sandbox_backend_capabilities,
                     G_DEFINE_ENUM_VALUE (SANDBOX_BACKEND_CAPABILITY_NONE, "none"),
                     G_DEFINE_ENUM_VALUE (SANDBOX_BACKEND_CAPABILITY_SHARES_HOST_FS, "shares-host-fs"),
                     G_DEFINE_ENUM_VALUE (SANDBOX_BACKEND_CAPABILITY_MOUNTS, "mounts"),
                     G_DEFINE_ENUM_VALUE (SANDBOX_BACKEND_CAPABILITY_CPU_LIMIT, "cpu-limit"),
                     G_DEFINE_ENUM_VALUE (SANDBOX_BACKEND_CAPABILITY_MEMORY_LIMIT, "memory-limit"),
                     G_DEFINE_ENUM_VALUE (SANDBOX_BACKEND_CAPABILITY_DISK_LIMIT, "disk-limit"),
                     G_DEFINE_ENUM_VALUE (SANDBOX_BACKEND_CAPABILITY_GPU, "gpu"),
                     G_DEFINE_ENUM_VALUE (SANDBOX_BACKEND_CAPABILITY_NETWORK_POLICY, "network-policy"),
                     G_DEFINE_ENUM_VALUE (SANDBOX_BACKEND_CAPABILITY_IMAGES, "images"),
                     G_DEFINE_ENUM_VALUE (SANDBOX_BACKEND_CAPABILITY_HOSTNAME_IS_ID, "hostname-is-id"),
                     G_DEFINE_ENUM_VALUE (SANDBOX_BACKEND_CAPABILITY_LIMITS_NEED_IMAGE, "limits-need-image"),
                     G_DEFINE_ENUM_VALUE (SANDBOX_BACKEND_CAPABILITY_PORTS, "ports"),
                     G_DEFINE_ENUM_VALUE (SANDBOX_BACKEND_CAPABILITY_VOLUMES, "volumes"),
                     G_DEFINE_ENUM_VALUE (SANDBOX_BACKEND_CAPABILITY_PAUSE, "pause"),
                     G_DEFINE_ENUM_VALUE (SANDBOX_BACKEND_CAPABILITY_METRICS, "metrics"),
                     G_DEFINE_ENUM_VALUE (SANDBOX_BACKEND_CAPABILITY_TTY, "tty"),
                     G_DEFINE_ENUM_VALUE (SANDBOX_BACKEND_CAPABILITY_PIDS_LIMIT, "pids-limit"),
                     G_DEFINE_ENUM_VALUE (SANDBOX_BACKEND_CAPABILITY_EGRESS_RULES, "egress-rules"),
                     G_DEFINE_ENUM_VALUE (SANDBOX_BACKEND_CAPABILITY_MOUNT_NO_LINKS, "mount-no-links"))

/**
 * sandbox_backend_get_capabilities:
 * @self: a #SandboxBackend
 *
 * Says what the backend's sandboxes can do beyond the contract every
 * backend keeps: whether they share this machine's file system, honour
 * mounts, resource limits and the network switch, run container images,
 * and so on. Ask this instead of comparing backend names; a backend
 * written in Python or JavaScript declares its own.
 *
 * Returns: the backend's #SandboxBackendCapabilities
 *
 * Since: 0.2
 */
SandboxBackendCapabilities
sandbox_backend_get_capabilities (SandboxBackend *self)
{
  SandboxBackendClass *klass;

  g_return_val_if_fail (SANDBOX_IS_BACKEND (self), SANDBOX_BACKEND_CAPABILITY_NONE);

  klass = SANDBOX_BACKEND_GET_CLASS (self);
  if (klass->get_capabilities == NULL)
    return SANDBOX_BACKEND_CAPABILITY_NONE;
  return klass->get_capabilities (self);
}

/**
 * sandbox_backend_dup_default_workdir:
 * @self: a #SandboxBackend
 *
 * Gets the working directory the backend gives a sandbox whose
 * [property@Sandbox.Spec:workdir] is %NULL: a directory its commands can
 * write, where they run unless the command or the image names another.
 * For example `/workspace` for `local` and the user's home, `/home/user`,
 * for `e2b`. A caller that lays out files in a sandbox before creating it
 * asks this instead of comparing backend names; a backend written in
 * Python or JavaScript declares its own.
 *
 * Returns: (nullable) (transfer full): the absolute path, or %NULL when the
 *   backend cannot tell before a sandbox exists (the provider's image
 *   decides); then name a workdir in the spec
 *
 * Since: 0.2
 */
char *
sandbox_backend_dup_default_workdir (SandboxBackend *self)
{
  SandboxBackendClass *klass;

  g_return_val_if_fail (SANDBOX_IS_BACKEND (self), NULL);

  klass = SANDBOX_BACKEND_GET_CLASS (self);
  if (klass->dup_default_workdir == NULL)
    return NULL;
  return klass->dup_default_workdir (self);
}

/**
 * sandbox_backend_check_configured:
 * @self: a #SandboxBackend
 * @error: return location for a #GError
 *
 * Checks, without any network call, that the backend can work here: its
 * program installed, its API key and URL set. On failure the error is
 * %SANDBOX_ERROR_NOT_CONFIGURED and its message says what to do.
 *
 * Returns: %TRUE if the backend is ready to use
 *
 * Since: 0.1
 */
gboolean
sandbox_backend_check_configured (SandboxBackend  *self,
                                  GError         **error)
{
  SandboxBackendClass *klass;

  g_return_val_if_fail (SANDBOX_IS_BACKEND (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  klass = SANDBOX_BACKEND_GET_CLASS (self);
  if (klass->check_configured == NULL)
    return TRUE;
  return klass->check_configured (self, error);
}

static gboolean
start_task (GTask    *task,
            gpointer  vfunc,
            const char *what)
{
  SandboxBackend *self = g_task_get_source_object (task);
  GError *error = NULL;

  if (vfunc == NULL)
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED,
                               _("The %s backend cannot %s"),
                               sandbox_backend_get_name (self), what);
      return FALSE;
    }
  if (!sandbox_backend_check_configured (self, &error))
    {
      g_task_return_error (task, error);
      return FALSE;
    }
  return TRUE;
}

/* What @spec asks for that the backend's capabilities say it cannot do is
 * refused here, for every backend (a backend need not look for it), so that
 * no setting is silently ignored. */
static gboolean
spec_supported (GTask       *task,
                SandboxSpec *spec)
{
  SandboxBackend *self = g_task_get_source_object (task);
  SandboxBackendCapabilities caps = sandbox_backend_get_capabilities (self);
  const char *name = sandbox_backend_get_name (self);
  g_autofree char *asked = NULL;

  if (g_hash_table_size (sandbox_spec_get_volumes (spec)) > 0 && !(caps & SANDBOX_BACKEND_CAPABILITY_VOLUMES))
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED,
                               _("The %s backend has no volumes; create the sandbox without "
                                 "them, or use a backend that has them (local, daytona)."),
                               name);
      return FALSE;
    }
  if ((sandbox_spec_get_egress_allow (spec) != NULL || sandbox_spec_get_egress_deny (spec) != NULL) &&
      !(caps & SANDBOX_BACKEND_CAPABILITY_EGRESS_RULES))
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED,
                               _("The %s backend cannot restrict a sandbox's network to some "
                                 "addresses; create the sandbox without egress rules, or use a "
                                 "backend that has them (local)."),
                               name);
      return FALSE;
    }
  if (sandbox_spec_get_gpu (spec) > 0 && !(caps & SANDBOX_BACKEND_CAPABILITY_GPU))
    asked = g_strdup_printf ("gpu %u", sandbox_spec_get_gpu (spec));
  else if (sandbox_spec_get_cpu (spec) > 0 && !(caps & SANDBOX_BACKEND_CAPABILITY_CPU_LIMIT))
    asked = g_strdup_printf ("cpu %g", sandbox_spec_get_cpu (spec));
  else if (sandbox_spec_get_memory_mb (spec) > 0 && !(caps & SANDBOX_BACKEND_CAPABILITY_MEMORY_LIMIT))
    asked = g_strdup_printf ("memory-mb %u", sandbox_spec_get_memory_mb (spec));
  else if (sandbox_spec_get_disk_mb (spec) > 0 && !(caps & SANDBOX_BACKEND_CAPABILITY_DISK_LIMIT))
    asked = g_strdup_printf ("disk-mb %u", sandbox_spec_get_disk_mb (spec));
  else if (sandbox_spec_get_pids_max (spec) > 0 && !(caps & SANDBOX_BACKEND_CAPABILITY_PIDS_LIMIT))
    asked = g_strdup_printf ("pids-max %u", sandbox_spec_get_pids_max (spec));
  else if (!(caps & SANDBOX_BACKEND_CAPABILITY_MOUNT_NO_LINKS))
    {
      GPtrArray *mounts = sandbox_spec_get_mounts (spec);

      for (guint i = 0; asked == NULL && i < mounts->len; i++)
        if (sandbox_mount_get_flags (g_ptr_array_index (mounts, i)) & SANDBOX_MOUNT_NO_LINKS)
          asked = g_strdup_printf ("mount %s:nolinks",
                                   sandbox_mount_get_sandbox_path (g_ptr_array_index (mounts, i)));
    }
  if (asked != NULL)
    {
      /* TRANSLATORS: the second %s is a setting and its value, e.g. "gpu 1" */
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED,
                               _("The %s backend cannot apply %s to a sandbox (its capabilities "
                                 "do not include it); leave the setting out, or use a backend "
                                 "that applies it (sandboxctl backends lists them)."),
                               name, asked);
      return FALSE;
    }
  return TRUE;
}

/**
 * sandbox_backend_create_async:
 * @self: a #SandboxBackend
 * @spec: what to create
 * @cancellable: (nullable): a #GCancellable; a sandbox already made when it
 *   fires is destroyed
 * @callback: (scope async): called when the sandbox is ready to run commands
 * @user_data: data for @callback
 *
 * Creates a sandbox. The backend's configuration is checked first
 * ([method@Sandbox.Backend.check_configured]), then @spec against the
 * backend's capabilities ([method@Sandbox.Backend.get_capabilities]): a
 * volume, gpu, cpu, memory, disk or pids limit, or a %SANDBOX_MOUNT_NO_LINKS
 * mount, that the backend cannot apply fails with %SANDBOX_ERROR_NOT_SUPPORTED (since 0.2) instead of being
 * ignored.
 *
 * Since: 0.1
 */
void
sandbox_backend_create_async (SandboxBackend      *self,
                              SandboxSpec         *spec,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  SandboxBackendClass *klass;

  g_return_if_fail (SANDBOX_IS_BACKEND (self));
  g_return_if_fail (SANDBOX_IS_SPEC (spec));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = _sandbox_task_new_tagged (self, cancellable, callback, user_data, sandbox_backend_create_async);

  klass = SANDBOX_BACKEND_GET_CLASS (self);
  if (!spec_supported (task, spec))
    return;
  if (start_task (task, klass->create, _("create sandboxes")))
    {
      klass->create (self, spec, cancellable, task);
      _sandbox_task_check_pending (task, "create");
    }
}

/**
 * sandbox_backend_create_finish:
 * @self: a #SandboxBackend
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Completes [method@Sandbox.Backend.create_async].
 *
 * Returns: (transfer full): the new sandbox, or %NULL with @error set
 *
 * Since: 0.1
 */
SandboxInstance *
sandbox_backend_create_finish (SandboxBackend  *self,
                               GAsyncResult    *result,
                               GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == sandbox_backend_create_async, NULL);

  return _sandbox_task_propagate_object (G_TASK (result), SANDBOX_TYPE_INSTANCE, error);
}

/**
 * sandbox_backend_create:
 * @self: a #SandboxBackend
 * @spec: what to create
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Creates a sandbox and waits until it is ready. See
 * [method@Sandbox.Backend.create_async].
 *
 * Returns: (transfer full): the new sandbox, or %NULL with @error set
 *
 * Since: 0.1
 */
SandboxInstance *
sandbox_backend_create (SandboxBackend  *self,
                        SandboxSpec     *spec,
                        GCancellable    *cancellable,
                        GError         **error)
{
  g_auto(SandboxSyncCall) call = SANDBOX_SYNC_CALL_INIT;

  g_return_val_if_fail (SANDBOX_IS_BACKEND (self), NULL);

  _sandbox_sync_call_init (&call);
  sandbox_backend_create_async (self, spec, cancellable, _sandbox_sync_call_done, &call);
  return sandbox_backend_create_finish (self, _sandbox_sync_call_wait (&call), error);
}

/* run: create, exec, destroy ---------------------------------------- */

typedef struct
{
  SandboxCommand    *command;
  SandboxInstance   *instance;
  SandboxExecResult *result;
  GError            *error;
} RunData;

static void
run_data_free (RunData *data)
{
  g_clear_object (&data->command);
  g_clear_object (&data->instance);
  g_clear_object (&data->result);
  g_clear_error (&data->error);
  g_free (data);
}

static void
run_destroyed (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GTask *task = user_data;
  RunData *data = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;

  if (!sandbox_instance_destroy_finish (SANDBOX_INSTANCE (source), result, &error) &&
      data->error == NULL)
    {
      /* The command ran, but its sandbox is left: say so, and how to
       * remove it, rather than lose the command's result silently. */
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                               _("The command ran, but its sandbox %s could not be removed: %s. "
                                 "Remove it with “sandboxctl rm %s”."),
                               sandbox_instance_get_id (data->instance), error->message,
                               sandbox_instance_get_id (data->instance));
    }
  else if (data->error != NULL)
    g_task_return_error (task, g_steal_pointer (&data->error));
  else
    _sandbox_task_return_object (task, data->result);
  g_object_unref (task);
}

static void
run_executed (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GTask *task = user_data;
  RunData *data = g_task_get_task_data (task);

  data->result = sandbox_instance_exec_finish (SANDBOX_INSTANCE (source), result, &data->error);
  /* Whatever happened, and even when cancelled: the sandbox was the
   * command's alone. */
  sandbox_instance_destroy_async (data->instance, NULL, run_destroyed, task);
}

/* Runs the command of TASK (a run task, whose reference this takes) in
 * INSTANCE, made for it, then destroys INSTANCE and completes TASK. For
 * backends that make the sandbox their own way (sandbox-private.h). */
void
_sandbox_backend_run_in (GTask           *task,
                         SandboxInstance *instance)
{
  RunData *data = g_task_get_task_data (task);
  const char *id_env = sandbox_command_get_id_env (data->command);

  data->instance = g_object_ref (instance);
  _sandbox_command_set_sandbox_id (data->command, sandbox_instance_get_id (instance));
  if (id_env != NULL)
    sandbox_command_set_env (data->command, id_env, sandbox_instance_get_id (instance));
  sandbox_instance_exec_async (instance, data->command, g_task_get_cancellable (task),
                               run_executed, task);
}

static void
run_created (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  GTask *task = user_data;
  g_autoptr(SandboxInstance) instance = NULL;
  GError *error = NULL;

  instance = sandbox_backend_create_finish (SANDBOX_BACKEND (source), result, &error);
  if (instance == NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  _sandbox_backend_run_in (task, instance);
}

static void
sandbox_backend_real_run (SandboxBackend *self,
                          SandboxSpec    *spec,
                          SandboxCommand *command,
                          GCancellable   *cancellable,
                          GTask          *task)
{
  sandbox_backend_create_async (self, spec, cancellable, run_created, g_object_ref (task));
}

/**
 * sandbox_backend_run_async:
 * @self: a #SandboxBackend
 * @spec: the sandbox to make
 * @command: the one command to run in it
 * @cancellable: (nullable): a #GCancellable: kills the command, and the
 *   sandbox still ends
 * @callback: (scope async): called once the command has ended and its
 *   sandbox is gone
 * @user_data: data for @callback
 *
 * Runs @command in a sandbox made for it alone, which ends with it, as
 * `sandboxctl run` does: the same as [method@Sandbox.Backend.create_async],
 * [method@Sandbox.Instance.exec_async] and
 * [method@Sandbox.Instance.destroy_async] one after the other, and the same
 * isolation, but a backend may do it faster. The local backend starts the
 * sandbox with its command: no connection, request or end request of its
 * own. The sandbox exists while the command runs (other processes can find
 * it by its id, and run more commands in it, which end with it).
 *
 * When [property@Sandbox.Command:id-env] is set, the command gets the sandbox's id in
 * that environment variable; [property@Sandbox.Command:sandbox-id] says it once the
 * sandbox exists.
 *
 * Since: 0.2
 */
void
sandbox_backend_run_async (SandboxBackend      *self,
                           SandboxSpec         *spec,
                           SandboxCommand      *command,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  SandboxBackendClass *klass;
  RunData *data;

  g_return_if_fail (SANDBOX_IS_BACKEND (self));
  g_return_if_fail (SANDBOX_IS_SPEC (spec));
  g_return_if_fail (SANDBOX_IS_COMMAND (command));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = _sandbox_task_new_tagged (self, cancellable, callback, user_data, sandbox_backend_run_async);
  data = g_new0 (RunData, 1);
  data->command = g_object_ref (command);
  g_task_set_task_data (task, data, (GDestroyNotify) run_data_free);

  klass = SANDBOX_BACKEND_GET_CLASS (self);
  if (!spec_supported (task, spec))
    return;
  if (start_task (task, klass->run, _("run commands")))
    {
      klass->run (self, spec, command, cancellable, task);
      _sandbox_task_check_pending (task, "run");
    }
}

/**
 * sandbox_backend_run_finish:
 * @self: a #SandboxBackend
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Completes [method@Sandbox.Backend.run_async].
 *
 * Returns: (transfer full): how the command ended, or %NULL with @error set
 *   (the sandbox could not be made, the command could not start, or it was
 *   cancelled; the sandbox is gone in every case but the one the error
 *   names)
 *
 * Since: 0.2
 */
SandboxExecResult *
sandbox_backend_run_finish (SandboxBackend  *self,
                            GAsyncResult    *result,
                            GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == sandbox_backend_run_async, NULL);

  return _sandbox_task_propagate_object (G_TASK (result), SANDBOX_TYPE_EXEC_RESULT, error);
}

/**
 * sandbox_backend_run:
 * @self: a #SandboxBackend
 * @spec: the sandbox to make
 * @command: the one command to run in it
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Runs @command in a sandbox made for it alone and waits until both are
 * gone. See [method@Sandbox.Backend.run_async].
 *
 * Returns: (transfer full): how the command ended, or %NULL with @error set
 *
 * Since: 0.2
 */
SandboxExecResult *
sandbox_backend_run (SandboxBackend  *self,
                     SandboxSpec     *spec,
                     SandboxCommand  *command,
                     GCancellable    *cancellable,
                     GError         **error)
{
  g_auto(SandboxSyncCall) call = SANDBOX_SYNC_CALL_INIT;

  g_return_val_if_fail (SANDBOX_IS_BACKEND (self), NULL);

  _sandbox_sync_call_init (&call);
  sandbox_backend_run_async (self, spec, command, cancellable, _sandbox_sync_call_done, &call);
  return sandbox_backend_run_finish (self, _sandbox_sync_call_wait (&call), error);
}

/**
 * sandbox_backend_get_instance_async:
 * @self: a #SandboxBackend
 * @id: the identifier of a sandbox
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the result
 * @user_data: data for @callback
 *
 * Finds a live sandbox by its identifier, which may have been created by
 * another process. A sandbox that does not exist is %SANDBOX_ERROR_NOT_FOUND.
 *
 * Since: 0.1
 */
void
sandbox_backend_get_instance_async (SandboxBackend      *self,
                                    const char          *id,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  SandboxBackendClass *klass;

  g_return_if_fail (SANDBOX_IS_BACKEND (self));
  g_return_if_fail (id != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = _sandbox_task_new_tagged (self, cancellable, callback, user_data, sandbox_backend_get_instance_async);

  klass = SANDBOX_BACKEND_GET_CLASS (self);
  if (start_task (task, klass->get_instance, _("look up sandboxes")))
    {
      klass->get_instance (self, id, cancellable, task);
      _sandbox_task_check_pending (task, "get_instance");
    }
}

/**
 * sandbox_backend_get_instance_finish:
 * @self: a #SandboxBackend
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Completes [method@Sandbox.Backend.get_instance_async].
 *
 * Returns: (transfer full): the sandbox, or %NULL with @error set
 *
 * Since: 0.1
 */
SandboxInstance *
sandbox_backend_get_instance_finish (SandboxBackend  *self,
                                     GAsyncResult    *result,
                                     GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == sandbox_backend_get_instance_async, NULL);

  return _sandbox_task_propagate_object (G_TASK (result), SANDBOX_TYPE_INSTANCE, error);
}

/**
 * sandbox_backend_get_instance:
 * @self: a #SandboxBackend
 * @id: the identifier of a sandbox
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Finds a live sandbox by its identifier and waits. See
 * [method@Sandbox.Backend.get_instance_async].
 *
 * Returns: (transfer full): the sandbox, or %NULL with @error set
 *
 * Since: 0.1
 */
SandboxInstance *
sandbox_backend_get_instance (SandboxBackend  *self,
                              const char      *id,
                              GCancellable    *cancellable,
                              GError         **error)
{
  g_auto(SandboxSyncCall) call = SANDBOX_SYNC_CALL_INIT;

  g_return_val_if_fail (SANDBOX_IS_BACKEND (self), NULL);

  _sandbox_sync_call_init (&call);
  sandbox_backend_get_instance_async (self, id, cancellable, _sandbox_sync_call_done, &call);
  return sandbox_backend_get_instance_finish (self, _sandbox_sync_call_wait (&call), error);
}

/**
 * sandbox_backend_list_async:
 * @self: a #SandboxBackend
 * @labels: (nullable) (element-type utf8 utf8): only sandboxes carrying all
 *   of these labels; %NULL for all
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the result
 * @user_data: data for @callback
 *
 * Lists the live sandboxes of this backend, whichever process created them.
 *
 * Since: 0.1
 */
void
sandbox_backend_list_async (SandboxBackend      *self,
                            GHashTable          *labels,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  SandboxBackendClass *klass;

  g_return_if_fail (SANDBOX_IS_BACKEND (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = _sandbox_task_new_tagged (self, cancellable, callback, user_data, sandbox_backend_list_async);

  klass = SANDBOX_BACKEND_GET_CLASS (self);
  if (start_task (task, klass->list, _("list sandboxes")))
    {
      klass->list (self, labels, cancellable, task);
      _sandbox_task_check_pending (task, "list");
    }
}

/**
 * sandbox_backend_list_finish:
 * @self: a #SandboxBackend
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Completes [method@Sandbox.Backend.list_async].
 *
 * Returns: (transfer full) (element-type SandboxInstance): the sandboxes
 *   (%NULL is also the empty list: check @error)
 *
 * Since: 0.1
 */
GList *
sandbox_backend_list_finish (SandboxBackend  *self,
                             GAsyncResult    *result,
                             GError         **error)
{
  g_autoptr(GListModel) model = NULL;
  GList *list = NULL;
  guint n;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == sandbox_backend_list_async, NULL);

  model = _sandbox_task_propagate_object (G_TASK (result), G_TYPE_LIST_MODEL, error);
  if (model == NULL)
    return NULL;

  n = g_list_model_get_n_items (model);
  for (guint i = n; i > 0; i--)
    {
      g_autoptr(GObject) item = g_list_model_get_item (model, i - 1);

      if (SANDBOX_IS_INSTANCE (item))
        list = g_list_prepend (list, g_steal_pointer (&item));
    }
  return list;
}

/**
 * sandbox_backend_list:
 * @self: a #SandboxBackend
 * @labels: (nullable) (element-type utf8 utf8): only sandboxes carrying all
 *   of these labels; %NULL for all
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Lists the live sandboxes of this backend and waits. See
 * [method@Sandbox.Backend.list_async].
 *
 * Returns: (transfer full) (element-type SandboxInstance): the sandboxes
 *
 * Since: 0.1
 */
GList *
sandbox_backend_list (SandboxBackend  *self,
                      GHashTable      *labels,
                      GCancellable    *cancellable,
                      GError         **error)
{
  g_auto(SandboxSyncCall) call = SANDBOX_SYNC_CALL_INIT;

  g_return_val_if_fail (SANDBOX_IS_BACKEND (self), NULL);

  _sandbox_sync_call_init (&call);
  sandbox_backend_list_async (self, labels, cancellable, _sandbox_sync_call_done, &call);
  return sandbox_backend_list_finish (self, _sandbox_sync_call_wait (&call), error);
}

/* Volumes (since 0.2) */

static int
volume_name_cmp (const void *a,
                 const void *b)
{
  return strcmp (*(char * const *) a, *(char * const *) b);
}

static gboolean
volumes_supported (GTask    *task,
                   gpointer  vfunc)
{
  SandboxBackend *self = g_task_get_source_object (task);

  if (vfunc != NULL)
    return TRUE;
  g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED,
                           _("The %s backend has no named volumes; use a backend that has "
                             "them (local, daytona), or upload the files into each sandbox."),
                           sandbox_backend_get_name (self));
  return FALSE;
}

static gboolean
volume_name_ok (GTask      *task,
                const char *name)
{
  if (sandbox_volume_name_is_valid (name))
    return TRUE;
  g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                           _("“%s” is not a volume name: use 1 to 63 letters, digits, “-”, “_” "
                             "or “.”, not starting with “.” (no “/”, no “..”)."),
                           name);
  return FALSE;
}

/* The vfuncs that take a volume's name: create_volume, delete_volume. */
typedef void (*VolumeVfunc) (SandboxBackend *self,
                             const char     *name,
                             GCancellable   *cancellable,
                             GTask          *task);

/* The body of their _async wrappers: hands the class slot at VFUNC_OFFSET
 * (named VFUNC_NAME) a task tagged SOURCE_TAG, once the backend has
 * volumes, is configured and NAME is a volume name. */
static void
call_volume_vfunc (SandboxBackend      *self,
                   const char          *name,
                   gsize                vfunc_offset,
                   const char          *vfunc_name,
                   GCancellable        *cancellable,
                   GAsyncReadyCallback  callback,
                   gpointer             user_data,
                   gpointer             source_tag)
{
  g_autoptr(GTask) task = _sandbox_task_new_tagged (self, cancellable, callback, user_data, source_tag);
  VolumeVfunc vfunc = G_STRUCT_MEMBER (VolumeVfunc, SANDBOX_BACKEND_GET_CLASS (self), vfunc_offset);

  if (volumes_supported (task, vfunc) && start_task (task, vfunc, NULL) && volume_name_ok (task, name))
    {
      vfunc (self, name, cancellable, task);
      _sandbox_task_check_pending (task, vfunc_name);
    }
}

/**
 * sandbox_volume_name_is_valid:
 * @name: a volume name
 *
 * Checks that @name can name a volume on every backend: 1 to 63 ASCII
 * letters, digits, `-`, `_` or `.`, not starting with `.` (so never `/`
 * or `..`).
 *
 * Returns: whether @name is a valid volume name
 *
 * Since: 0.2
 */
gboolean
sandbox_volume_name_is_valid (const char *name)
{
  gsize len;

  if (name == NULL || name[0] == '\0' || name[0] == '.')
    return FALSE;
  len = strlen (name);
  if (len > 63)
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_' && *p != '.')
      return FALSE;
  return TRUE;
}

/**
 * sandbox_backend_create_volume_async:
 * @self: a #SandboxBackend
 * @name: the name of the volume (see [func@Sandbox.volume_name_is_valid])
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the volume exists
 * @user_data: data for @callback
 *
 * Creates a named volume: storage that outlives sandboxes and that
 * [method@Sandbox.Spec.add_volume] mounts into new ones. A volume that
 * already exists is a success. A backend without
 * %SANDBOX_BACKEND_CAPABILITY_VOLUMES fails with
 * %SANDBOX_ERROR_NOT_SUPPORTED.
 *
 * Since: 0.2
 */
void
sandbox_backend_create_volume_async (SandboxBackend      *self,
                                     const char          *name,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  g_return_if_fail (SANDBOX_IS_BACKEND (self));
  g_return_if_fail (name != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  call_volume_vfunc (self, name, G_STRUCT_OFFSET (SandboxBackendClass, create_volume), "create_volume",
                     cancellable, callback, user_data, sandbox_backend_create_volume_async);
}

/**
 * sandbox_backend_create_volume_finish:
 * @self: a #SandboxBackend
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Completes [method@Sandbox.Backend.create_volume_async].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.2
 */
gboolean
sandbox_backend_create_volume_finish (SandboxBackend  *self,
                                      GAsyncResult    *result,
                                      GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == sandbox_backend_create_volume_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * sandbox_backend_create_volume:
 * @self: a #SandboxBackend
 * @name: the name of the volume
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Creates a named volume and waits. See
 * [method@Sandbox.Backend.create_volume_async].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.2
 */
gboolean
sandbox_backend_create_volume (SandboxBackend  *self,
                               const char      *name,
                               GCancellable    *cancellable,
                               GError         **error)
{
  g_auto(SandboxSyncCall) call = SANDBOX_SYNC_CALL_INIT;

  g_return_val_if_fail (SANDBOX_IS_BACKEND (self), FALSE);

  _sandbox_sync_call_init (&call);
  sandbox_backend_create_volume_async (self, name, cancellable, _sandbox_sync_call_done, &call);
  return sandbox_backend_create_volume_finish (self, _sandbox_sync_call_wait (&call), error);
}

/**
 * sandbox_backend_delete_volume_async:
 * @self: a #SandboxBackend
 * @name: the name of the volume
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the volume is gone
 * @user_data: data for @callback
 *
 * Deletes a named volume and every file in it. A volume that does not
 * exist fails with %SANDBOX_ERROR_NOT_FOUND.
 *
 * Since: 0.2
 */
void
sandbox_backend_delete_volume_async (SandboxBackend      *self,
                                     const char          *name,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  g_return_if_fail (SANDBOX_IS_BACKEND (self));
  g_return_if_fail (name != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  call_volume_vfunc (self, name, G_STRUCT_OFFSET (SandboxBackendClass, delete_volume), "delete_volume",
                     cancellable, callback, user_data, sandbox_backend_delete_volume_async);
}

/**
 * sandbox_backend_delete_volume_finish:
 * @self: a #SandboxBackend
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Completes [method@Sandbox.Backend.delete_volume_async].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.2
 */
gboolean
sandbox_backend_delete_volume_finish (SandboxBackend  *self,
                                      GAsyncResult    *result,
                                      GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == sandbox_backend_delete_volume_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * sandbox_backend_delete_volume:
 * @self: a #SandboxBackend
 * @name: the name of the volume
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Deletes a named volume and waits. See
 * [method@Sandbox.Backend.delete_volume_async].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.2
 */
gboolean
sandbox_backend_delete_volume (SandboxBackend  *self,
                               const char      *name,
                               GCancellable    *cancellable,
                               GError         **error)
{
  g_auto(SandboxSyncCall) call = SANDBOX_SYNC_CALL_INIT;

  g_return_val_if_fail (SANDBOX_IS_BACKEND (self), FALSE);

  _sandbox_sync_call_init (&call);
  sandbox_backend_delete_volume_async (self, name, cancellable, _sandbox_sync_call_done, &call);
  return sandbox_backend_delete_volume_finish (self, _sandbox_sync_call_wait (&call), error);
}

/**
 * sandbox_backend_list_volumes_async:
 * @self: a #SandboxBackend
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the list
 * @user_data: data for @callback
 *
 * Lists the names of the backend's volumes.
 *
 * Since: 0.2
 */
void
sandbox_backend_list_volumes_async (SandboxBackend      *self,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  SandboxBackendClass *klass;

  g_return_if_fail (SANDBOX_IS_BACKEND (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = _sandbox_task_new_tagged (self, cancellable, callback, user_data, sandbox_backend_list_volumes_async);

  klass = SANDBOX_BACKEND_GET_CLASS (self);
  if (volumes_supported (task, klass->list_volumes) && start_task (task, klass->list_volumes, NULL))
    {
      klass->list_volumes (self, cancellable, task);
      _sandbox_task_check_pending (task, "list_volumes");
    }
}

/**
 * sandbox_backend_list_volumes_finish:
 * @self: a #SandboxBackend
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Completes [method@Sandbox.Backend.list_volumes_async].
 *
 * Returns: (transfer full) (array zero-terminated=1): the volumes' names,
 *   sorted, or %NULL with @error set
 *
 * Since: 0.2
 */
char **
sandbox_backend_list_volumes_finish (SandboxBackend  *self,
                                     GAsyncResult    *result,
                                     GError         **error)
{
  char **names;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == sandbox_backend_list_volumes_async, NULL);

  names = _sandbox_task_propagate_strv (G_TASK (result), error);
  if (names != NULL)
    qsort (names, g_strv_length (names), sizeof (char *), volume_name_cmp);
  return names;
}

/**
 * sandbox_backend_list_volumes:
 * @self: a #SandboxBackend
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Lists the names of the backend's volumes and waits. See
 * [method@Sandbox.Backend.list_volumes_async].
 *
 * Returns: (transfer full) (array zero-terminated=1): the volumes' names,
 *   sorted, or %NULL with @error set
 *
 * Since: 0.2
 */
char **
sandbox_backend_list_volumes (SandboxBackend  *self,
                              GCancellable    *cancellable,
                              GError         **error)
{
  g_auto(SandboxSyncCall) call = SANDBOX_SYNC_CALL_INIT;

  g_return_val_if_fail (SANDBOX_IS_BACKEND (self), NULL);

  _sandbox_sync_call_init (&call);
  sandbox_backend_list_volumes_async (self, cancellable, _sandbox_sync_call_done, &call);
  return sandbox_backend_list_volumes_finish (self, _sandbox_sync_call_wait (&call), error);
}
