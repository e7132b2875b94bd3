/* libsandbox - what to create
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "sandbox-spec.h"

struct _SandboxMount
{
  gatomicrefcount  ref_count;
  char            *host_path;
  char            *sandbox_path;
  SandboxMountFlags flags;
};

G_DEFINE_BOXED_TYPE (SandboxMount, sandbox_mount, sandbox_mount_ref, sandbox_mount_unref)

G_DEFINE_FLAGS_TYPE (SandboxMountFlags, sandbox_mount_flags,
                     G_DEFINE_ENUM_VALUE (SANDBOX_MOUNT_NONE, "none"),
                     G_DEFINE_ENUM_VALUE (SANDBOX_MOUNT_READ_ONLY, "read-only"),
                     G_DEFINE_ENUM_VALUE (SANDBOX_MOUNT_NO_LINKS, "no-links"))

/**
 * sandbox_mount_new:
 * @host_path: an absolute path on the host
 * @sandbox_path: the absolute path it appears at inside the sandbox
 * @read_only: whether the sandbox may only read it
 *
 * Creates a mount description.
 *
 * Returns: (transfer full): a new #SandboxMount
 *
 * Since: 0.1
 */
SandboxMount *
sandbox_mount_new (const char *host_path,
                   const char *sandbox_path,
                   gboolean    read_only)
{
  g_return_val_if_fail (host_path != NULL, NULL);
  g_return_val_if_fail (sandbox_path != NULL, NULL);

  return sandbox_mount_new_full (host_path, sandbox_path,
                                 read_only ? SANDBOX_MOUNT_READ_ONLY : SANDBOX_MOUNT_NONE);
}

/**
 * sandbox_mount_new_full:
 * @host_path: an absolute path on the host
 * @sandbox_path: the absolute path it appears at inside the sandbox
 * @flags: how the sandbox may use it
 *
 * Creates a mount description with flags, such as
 * %SANDBOX_MOUNT_NO_LINKS.
 *
 * Returns: (transfer full): a new #SandboxMount
 *
 * Since: 0.2
 */
SandboxMount *
sandbox_mount_new_full (const char        *host_path,
                        const char        *sandbox_path,
                        SandboxMountFlags  flags)
{
  SandboxMount *self;

  g_return_val_if_fail (host_path != NULL, NULL);
  g_return_val_if_fail (sandbox_path != NULL, NULL);

  self = g_new0 (SandboxMount, 1);
  g_atomic_ref_count_init (&self->ref_count);
  self->host_path = g_strdup (host_path);
  self->sandbox_path = g_strdup (sandbox_path);
  self->flags = flags;
  return self;
}

/**
 * sandbox_mount_ref:
 * @self: a #SandboxMount
 *
 * Adds a reference.
 *
 * Returns: (transfer full): @self
 *
 * Since: 0.1
 */
SandboxMount *
sandbox_mount_ref (SandboxMount *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

/**
 * sandbox_mount_unref:
 * @self: (transfer full): a #SandboxMount
 *
 * Drops a reference, freeing the mount when it was the last.
 *
 * Since: 0.1
 */
void
sandbox_mount_unref (SandboxMount *self)
{
  g_return_if_fail (self != NULL);
  if (g_atomic_ref_count_dec (&self->ref_count))
    {
      g_free (self->host_path);
      g_free (self->sandbox_path);
      g_free (self);
    }
}

/**
 * sandbox_mount_get_host_path:
 * @self: a #SandboxMount
 *
 * Gets the path on the host.
 *
 * Returns: the host path
 *
 * Since: 0.1
 */
const char *
sandbox_mount_get_host_path (SandboxMount *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->host_path;
}

/**
 * sandbox_mount_get_sandbox_path:
 * @self: a #SandboxMount
 *
 * Gets the path inside the sandbox.
 *
 * Returns: the sandbox path
 *
 * Since: 0.1
 */
const char *
sandbox_mount_get_sandbox_path (SandboxMount *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->sandbox_path;
}

/**
 * sandbox_mount_get_read_only:
 * @self: a #SandboxMount
 *
 * Gets whether the sandbox may only read the mount.
 *
 * Returns: %TRUE if read-only
 *
 * Since: 0.1
 */
gboolean
sandbox_mount_get_read_only (SandboxMount *self)
{
  g_return_val_if_fail (self != NULL, FALSE);
  return (self->flags & SANDBOX_MOUNT_READ_ONLY) != 0;
}

/**
 * sandbox_mount_get_flags:
 * @self: a #SandboxMount
 *
 * Gets how the sandbox may use the mount.
 *
 * Returns: the flags, %SANDBOX_MOUNT_READ_ONLY among them for a read-only
 *   mount
 *
 * Since: 0.2
 */
SandboxMountFlags
sandbox_mount_get_flags (SandboxMount *self)
{
  g_return_val_if_fail (self != NULL, SANDBOX_MOUNT_NONE);
  return self->flags;
}

/**
 * SandboxSpec:
 *
 * What to create: the image, resources, environment, labels, lifetime and
 * network access of a new sandbox. Pass it to [method@Sandbox.Backend.create_async].
 *
 * Fields a backend cannot honour are ignored by it and documented on the
 * backend's page; zero means "the backend's default" for every number.
 *
 * Since: 0.1
 */
struct _SandboxSpec
{
  GObject     parent_instance;

  char       *image;
  char       *workdir;
  double      cpu;
  guint       memory_mb;
  guint       disk_mb;
  guint       gpu;
  guint       pids_max;
  guint       timeout;
  gboolean    network;
  gboolean    run_as_root;
  gboolean    die_with_owner;
  GHashTable *env;
  GHashTable *labels;
  GPtrArray  *mounts;
  GHashTable *volumes;     /* volume name -> mount path */
  GStrv       egress_allow; /* NULL: none */
  GStrv       egress_deny;
};

G_DEFINE_FINAL_TYPE (SandboxSpec, sandbox_spec, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_IMAGE,
  PROP_WORKDIR,
  PROP_CPU,
  PROP_MEMORY_MB,
  PROP_DISK_MB,
  PROP_GPU,
  PROP_PIDS_MAX,
  PROP_TIMEOUT,
  PROP_NETWORK,
  PROP_RUN_AS_ROOT,
  PROP_DIE_WITH_OWNER,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
sandbox_spec_finalize (GObject *object)
{
  SandboxSpec *self = SANDBOX_SPEC (object);

  g_clear_pointer (&self->image, g_free);
  g_clear_pointer (&self->workdir, g_free);
  g_clear_pointer (&self->env, g_hash_table_unref);
  g_clear_pointer (&self->labels, g_hash_table_unref);
  g_clear_pointer (&self->mounts, g_ptr_array_unref);
  g_clear_pointer (&self->volumes, g_hash_table_unref);
  g_clear_pointer (&self->egress_allow, g_strfreev);
  g_clear_pointer (&self->egress_deny, g_strfreev);

  G_OBJECT_CLASS (sandbox_spec_parent_class)->finalize (object);
}

static void
sandbox_spec_get_property (GObject    *object,
                           guint       prop_id,
                           GValue     *value,
                           GParamSpec *pspec)
{
  SandboxSpec *self = SANDBOX_SPEC (object);

  switch (prop_id)
    {
    case PROP_IMAGE: g_value_set_string (value, self->image); break;
    case PROP_WORKDIR: g_value_set_string (value, self->workdir); break;
    case PROP_CPU: g_value_set_double (value, self->cpu); break;
    case PROP_MEMORY_MB: g_value_set_uint (value, self->memory_mb); break;
    case PROP_DISK_MB: g_value_set_uint (value, self->disk_mb); break;
    case PROP_GPU: g_value_set_uint (value, self->gpu); break;
    case PROP_PIDS_MAX: g_value_set_uint (value, self->pids_max); break;
    case PROP_TIMEOUT: g_value_set_uint (value, self->timeout); break;
    case PROP_NETWORK: g_value_set_boolean (value, self->network); break;
    case PROP_RUN_AS_ROOT: g_value_set_boolean (value, self->run_as_root); break;
    case PROP_DIE_WITH_OWNER: g_value_set_boolean (value, self->die_with_owner); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
sandbox_spec_set_property (GObject      *object,
                           guint         prop_id,
                           const GValue *value,
                           GParamSpec   *pspec)
{
  SandboxSpec *self = SANDBOX_SPEC (object);

  switch (prop_id)
    {
    case PROP_IMAGE: sandbox_spec_set_image (self, g_value_get_string (value)); break;
    case PROP_WORKDIR: sandbox_spec_set_workdir (self, g_value_get_string (value)); break;
    case PROP_CPU: sandbox_spec_set_cpu (self, g_value_get_double (value)); break;
    case PROP_MEMORY_MB: sandbox_spec_set_memory_mb (self, g_value_get_uint (value)); break;
    case PROP_DISK_MB: sandbox_spec_set_disk_mb (self, g_value_get_uint (value)); break;
    case PROP_GPU: sandbox_spec_set_gpu (self, g_value_get_uint (value)); break;
    case PROP_PIDS_MAX: sandbox_spec_set_pids_max (self, g_value_get_uint (value)); break;
    case PROP_TIMEOUT: sandbox_spec_set_timeout (self, g_value_get_uint (value)); break;
    case PROP_NETWORK: sandbox_spec_set_network (self, g_value_get_boolean (value)); break;
    case PROP_RUN_AS_ROOT: sandbox_spec_set_run_as_root (self, g_value_get_boolean (value)); break;
    case PROP_DIE_WITH_OWNER: sandbox_spec_set_die_with_owner (self, g_value_get_boolean (value)); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
sandbox_spec_class_init (SandboxSpecClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags flags = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->finalize = sandbox_spec_finalize;
  object_class->get_property = sandbox_spec_get_property;
  object_class->set_property = sandbox_spec_set_property;

  /**
   * SandboxSpec:image:
   *
   * The image to start from. For `local`, %NULL or `host` is the host's root
   * file system (read-only) and any other value is the path of a root file
   * system directory; for remote backends it names an image, snapshot or template.
   *
   * Since: 0.1
   */
  properties[PROP_IMAGE] = g_param_spec_string ("image", NULL, NULL, NULL, flags);

  /**
   * SandboxSpec:workdir:
   *
   * The writable working directory inside the sandbox, and the default
   * working directory of commands. %NULL picks the backend's default
   * ([method@Sandbox.Backend.dup_default_workdir]: `/workspace` for
   * `local`).
   *
   * Since: 0.1
   */
  properties[PROP_WORKDIR] = g_param_spec_string ("workdir", NULL, NULL, NULL, flags);

  /**
   * SandboxSpec:cpu:
   *
   * The number of CPUs (may be fractional); 0 for the backend's default.
   *
   * Since: 0.1
   */
  properties[PROP_CPU] = g_param_spec_double ("cpu", NULL, NULL, 0, G_MAXDOUBLE, 0, flags);

  /**
   * SandboxSpec:memory-mb:
   *
   * The memory limit in MiB; 0 for the backend's default.
   *
   * Since: 0.1
   */
  properties[PROP_MEMORY_MB] = g_param_spec_uint ("memory-mb", NULL, NULL, 0, G_MAXUINT, 0, flags);

  /**
   * SandboxSpec:disk-mb:
   *
   * The disk size in MiB; 0 for the backend's default.
   *
   * Since: 0.1
   */
  properties[PROP_DISK_MB] = g_param_spec_uint ("disk-mb", NULL, NULL, 0, G_MAXUINT, 0, flags);

  /**
   * SandboxSpec:gpu:
   *
   * The number of GPUs; 0 for none.
   *
   * Since: 0.1
   */
  properties[PROP_GPU] = g_param_spec_uint ("gpu", NULL, NULL, 0, G_MAXUINT, 0, flags);

  /**
   * SandboxSpec:pids-max:
   *
   * The largest number of processes the sandbox may run at once; 0 for no limit.
   *
   * Since: 0.1
   */
  properties[PROP_PIDS_MAX] = g_param_spec_uint ("pids-max", NULL, NULL, 0, G_MAXUINT, 0, flags);

  /**
   * SandboxSpec:timeout:
   *
   * The sandbox's time to live in seconds, after which a remote provider
   * removes it even if nobody destroys it; 0 for the backend's default.
   *
   * Since: 0.1
   */
  properties[PROP_TIMEOUT] = g_param_spec_uint ("timeout", NULL, NULL, 0, G_MAXUINT, 0, flags);

  /**
   * SandboxSpec:network:
   *
   * Whether the sandbox may use the network. Off by default.
   *
   * Since: 0.1
   */
  properties[PROP_NETWORK] = g_param_spec_boolean ("network", NULL, NULL, FALSE, flags);

  /**
   * SandboxSpec:run-as-root:
   *
   * Whether commands run as root (uid 0) inside the sandbox. Off by default:
   * `local` then runs them as uid and gid 1000, and the remote backends as
   * their provider's unprivileged user (`daytona`, `user`). Root inside a
   * `local` sandbox is still confined to its user namespace and has no
   * capabilities on the host.
   *
   * Since: 0.1
   */
  properties[PROP_RUN_AS_ROOT] = g_param_spec_boolean ("run-as-root", NULL, NULL, FALSE, flags);

  /**
   * SandboxSpec:die-with-owner:
   *
   * Whether the sandbox ends when the process that created it ends, for
   * whatever reason (even `SIGKILL`), as `sandboxctl run` and the Metaflow
   * extension want for the sandboxes they make for one command or task.
   * Off by default: a sandbox then lives until it is destroyed or reaches
   * its [property@Sandbox.Spec:timeout], and other processes may find it
   * again by id.
   *
   * `local` ends the sandbox within moments of its owner's death. The
   * remote backends cannot watch a process of this machine: there the
   * sandbox's timeout bounds how long it outlives its owner (see
   * docs/security.md).
   *
   * Since: 0.2
   */
  properties[PROP_DIE_WITH_OWNER] = g_param_spec_boolean ("die-with-owner", NULL, NULL, FALSE, flags);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
sandbox_spec_init (SandboxSpec *self)
{
  self->env = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->labels = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->mounts = g_ptr_array_new_with_free_func ((GDestroyNotify) sandbox_mount_unref);
  self->volumes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
}

/**
 * sandbox_spec_new:
 *
 * Creates an empty spec: the backend's default image and resources, no
 * network, no labels.
 *
 * Returns: (transfer full): a new #SandboxSpec
 *
 * Since: 0.1
 */
SandboxSpec *
sandbox_spec_new (void)
{
  return g_object_new (SANDBOX_TYPE_SPEC, NULL);
}

static void
set_string (SandboxSpec  *self,
            char        **field,
            const char   *value,
            guint         prop)
{
  if (g_strcmp0 (*field, value) == 0)
    return;
  g_free (*field);
  *field = g_strdup (value);
  g_object_notify_by_pspec (G_OBJECT (self), properties[prop]);
}

#define DEFINE_NUMBER_ACCESSORS(type, field, PROP)                              \
  type                                                                          \
  sandbox_spec_get_##field (SandboxSpec *self)                                  \
  {                                                                             \
    g_return_val_if_fail (SANDBOX_IS_SPEC (self), 0);                           \
    return self->field;                                                         \
  }                                                                             \
  void                                                                          \
  sandbox_spec_set_##field (SandboxSpec *self,                                  \
                            type         field)                                 \
  {                                                                             \
    g_return_if_fail (SANDBOX_IS_SPEC (self));                                  \
    if (self->field != field)                                                   \
      {                                                                         \
        self->field = field;                                                    \
        g_object_notify_by_pspec (G_OBJECT (self), properties[PROP]);           \
      }                                                                         \
  }

/**
 * sandbox_spec_get_image:
 * @self: a #SandboxSpec
 *
 * Gets [property@Sandbox.Spec:image].
 *
 * Returns: (nullable): the image
 *
 * Since: 0.1
 */
const char *
sandbox_spec_get_image (SandboxSpec *self)
{
  g_return_val_if_fail (SANDBOX_IS_SPEC (self), NULL);
  return self->image;
}

/**
 * sandbox_spec_set_image:
 * @self: a #SandboxSpec
 * @image: (nullable): the image
 *
 * Sets [property@Sandbox.Spec:image].
 *
 * Since: 0.1
 */
void
sandbox_spec_set_image (SandboxSpec *self,
                        const char  *image)
{
  g_return_if_fail (SANDBOX_IS_SPEC (self));
  set_string (self, &self->image, image, PROP_IMAGE);
}

/**
 * sandbox_spec_get_workdir:
 * @self: a #SandboxSpec
 *
 * Gets [property@Sandbox.Spec:workdir].
 *
 * Returns: (nullable): the working directory
 *
 * Since: 0.1
 */
const char *
sandbox_spec_get_workdir (SandboxSpec *self)
{
  g_return_val_if_fail (SANDBOX_IS_SPEC (self), NULL);
  return self->workdir;
}

/**
 * sandbox_spec_set_workdir:
 * @self: a #SandboxSpec
 * @workdir: (nullable): an absolute path inside the sandbox
 *
 * Sets [property@Sandbox.Spec:workdir].
 *
 * Since: 0.1
 */
void
sandbox_spec_set_workdir (SandboxSpec *self,
                          const char  *workdir)
{
  g_return_if_fail (SANDBOX_IS_SPEC (self));
  set_string (self, &self->workdir, workdir, PROP_WORKDIR);
}

/**
 * sandbox_spec_get_cpu:
 * @self: a #SandboxSpec
 *
 * Gets [property@Sandbox.Spec:cpu].
 *
 * Returns: the number of CPUs, 0 for the default
 *
 * Since: 0.1
 */
/**
 * sandbox_spec_set_cpu:
 * @self: a #SandboxSpec
 * @cpu: the number of CPUs, 0 for the default
 *
 * Sets [property@Sandbox.Spec:cpu].
 *
 * Since: 0.1
 */
DEFINE_NUMBER_ACCESSORS (double, cpu, PROP_CPU)

/**
 * sandbox_spec_get_memory_mb:
 * @self: a #SandboxSpec
 *
 * Gets [property@Sandbox.Spec:memory-mb].
 *
 * Returns: the memory limit in MiB, 0 for the default
 *
 * Since: 0.1
 */
/**
 * sandbox_spec_set_memory_mb:
 * @self: a #SandboxSpec
 * @memory_mb: the memory limit in MiB, 0 for the default
 *
 * Sets [property@Sandbox.Spec:memory-mb].
 *
 * Since: 0.1
 */
DEFINE_NUMBER_ACCESSORS (guint, memory_mb, PROP_MEMORY_MB)

/**
 * sandbox_spec_get_disk_mb:
 * @self: a #SandboxSpec
 *
 * Gets [property@Sandbox.Spec:disk-mb].
 *
 * Returns: the disk size in MiB, 0 for the default
 *
 * Since: 0.1
 */
/**
 * sandbox_spec_set_disk_mb:
 * @self: a #SandboxSpec
 * @disk_mb: the disk size in MiB, 0 for the default
 *
 * Sets [property@Sandbox.Spec:disk-mb].
 *
 * Since: 0.1
 */
DEFINE_NUMBER_ACCESSORS (guint, disk_mb, PROP_DISK_MB)

/**
 * sandbox_spec_get_gpu:
 * @self: a #SandboxSpec
 *
 * Gets [property@Sandbox.Spec:gpu].
 *
 * Returns: the number of GPUs
 *
 * Since: 0.1
 */
/**
 * sandbox_spec_set_gpu:
 * @self: a #SandboxSpec
 * @gpu: the number of GPUs
 *
 * Sets [property@Sandbox.Spec:gpu].
 *
 * Since: 0.1
 */
DEFINE_NUMBER_ACCESSORS (guint, gpu, PROP_GPU)

/**
 * sandbox_spec_get_pids_max:
 * @self: a #SandboxSpec
 *
 * Gets [property@Sandbox.Spec:pids-max].
 *
 * Returns: the process limit, 0 for none
 *
 * Since: 0.1
 */
/**
 * sandbox_spec_set_pids_max:
 * @self: a #SandboxSpec
 * @pids_max: the process limit, 0 for none
 *
 * Sets [property@Sandbox.Spec:pids-max].
 *
 * Since: 0.1
 */
DEFINE_NUMBER_ACCESSORS (guint, pids_max, PROP_PIDS_MAX)

/**
 * sandbox_spec_get_timeout:
 * @self: a #SandboxSpec
 *
 * Gets [property@Sandbox.Spec:timeout].
 *
 * Returns: the time to live in seconds, 0 for the default
 *
 * Since: 0.1
 */
/**
 * sandbox_spec_set_timeout:
 * @self: a #SandboxSpec
 * @timeout: the time to live in seconds, 0 for the default
 *
 * Sets [property@Sandbox.Spec:timeout].
 *
 * Since: 0.1
 */
DEFINE_NUMBER_ACCESSORS (guint, timeout, PROP_TIMEOUT)

/**
 * sandbox_spec_get_network:
 * @self: a #SandboxSpec
 *
 * Gets [property@Sandbox.Spec:network].
 *
 * Returns: whether the sandbox may use the network
 *
 * Since: 0.1
 */
/**
 * sandbox_spec_set_network:
 * @self: a #SandboxSpec
 * @network: whether the sandbox may use the network
 *
 * Sets [property@Sandbox.Spec:network].
 *
 * Since: 0.1
 */
DEFINE_NUMBER_ACCESSORS (gboolean, network, PROP_NETWORK)

/**
 * sandbox_spec_get_run_as_root:
 * @self: a #SandboxSpec
 *
 * Gets [property@Sandbox.Spec:run-as-root].
 *
 * Returns: whether commands run as root inside the sandbox
 *
 * Since: 0.1
 */
/**
 * sandbox_spec_set_run_as_root:
 * @self: a #SandboxSpec
 * @run_as_root: whether commands run as root inside the sandbox
 *
 * Sets [property@Sandbox.Spec:run-as-root].
 *
 * Since: 0.1
 */
DEFINE_NUMBER_ACCESSORS (gboolean, run_as_root, PROP_RUN_AS_ROOT)

/**
 * sandbox_spec_get_die_with_owner:
 * @self: a #SandboxSpec
 *
 * Gets [property@Sandbox.Spec:die-with-owner].
 *
 * Returns: whether the sandbox ends with the process that created it
 *
 * Since: 0.2
 */
/**
 * sandbox_spec_set_die_with_owner:
 * @self: a #SandboxSpec
 * @die_with_owner: whether the sandbox ends with the process that created it
 *
 * Sets [property@Sandbox.Spec:die-with-owner].
 *
 * Since: 0.2
 */
DEFINE_NUMBER_ACCESSORS (gboolean, die_with_owner, PROP_DIE_WITH_OWNER)

/**
 * sandbox_spec_set_env:
 * @self: a #SandboxSpec
 * @name: a variable name
 * @value: (nullable): its value, or %NULL to remove it
 *
 * Sets an environment variable that every command in the sandbox sees.
 * Nothing of the caller's own environment reaches the sandbox unless set here
 * or on the [class@Sandbox.Command].
 *
 * Since: 0.1
 */
void
sandbox_spec_set_env (SandboxSpec *self,
                      const char  *name,
                      const char  *value)
{
  g_return_if_fail (SANDBOX_IS_SPEC (self));
  g_return_if_fail (name != NULL && *name != '\0' && strchr (name, '=') == NULL);

  if (value == NULL)
    g_hash_table_remove (self->env, name);
  else
    g_hash_table_insert (self->env, g_strdup (name), g_strdup (value));
}

/**
 * sandbox_spec_get_env:
 * @self: a #SandboxSpec
 *
 * Gets the environment set with [method@Sandbox.Spec.set_env].
 *
 * Returns: (transfer none) (element-type utf8 utf8): the variables
 *
 * Since: 0.1
 */
GHashTable *
sandbox_spec_get_env (SandboxSpec *self)
{
  g_return_val_if_fail (SANDBOX_IS_SPEC (self), NULL);
  return self->env;
}

/**
 * sandbox_spec_set_label:
 * @self: a #SandboxSpec
 * @key: a label key
 * @value: (nullable): its value, or %NULL to remove it
 *
 * Sets a label on the sandbox to be created. Labels find sandboxes again
 * ([method@Sandbox.Backend.list_async]) and let `sandboxctl gc` clean up.
 *
 * Since: 0.1
 */
void
sandbox_spec_set_label (SandboxSpec *self,
                        const char  *key,
                        const char  *value)
{
  g_return_if_fail (SANDBOX_IS_SPEC (self));
  g_return_if_fail (key != NULL && *key != '\0');

  if (value == NULL)
    g_hash_table_remove (self->labels, key);
  else
    g_hash_table_insert (self->labels, g_strdup (key), g_strdup (value));
}

/**
 * sandbox_spec_get_labels:
 * @self: a #SandboxSpec
 *
 * Gets the labels set with [method@Sandbox.Spec.set_label].
 *
 * Returns: (transfer none) (element-type utf8 utf8): the labels
 *
 * Since: 0.1
 */
GHashTable *
sandbox_spec_get_labels (SandboxSpec *self)
{
  g_return_val_if_fail (SANDBOX_IS_SPEC (self), NULL);
  return self->labels;
}

/**
 * sandbox_spec_add_mount:
 * @self: a #SandboxSpec
 * @host_path: an absolute path on the host
 * @sandbox_path: (nullable): where it appears in the sandbox; %NULL for the same path
 * @read_only: whether the sandbox may only read it
 *
 * Makes a host path visible inside the sandbox. Honoured by backends that run
 * on this machine; the Metaflow executor binds the local datastore this way.
 *
 * Since: 0.1
 */
void
sandbox_spec_add_mount (SandboxSpec *self,
                        const char  *host_path,
                        const char  *sandbox_path,
                        gboolean     read_only)
{
  g_return_if_fail (SANDBOX_IS_SPEC (self));
  g_return_if_fail (host_path != NULL);

  sandbox_spec_add_mount_full (self, host_path, sandbox_path,
                               read_only ? SANDBOX_MOUNT_READ_ONLY : SANDBOX_MOUNT_NONE);
}

/**
 * sandbox_spec_add_mount_full:
 * @self: a #SandboxSpec
 * @host_path: an absolute path on the host
 * @sandbox_path: (nullable): where it appears in the sandbox; %NULL for the same path
 * @flags: how the sandbox may use it
 *
 * Makes a host path visible inside the sandbox, as
 * [method@Sandbox.Spec.add_mount] does, with flags. A read-write mount
 * that host processes later use should have %SANDBOX_MOUNT_NO_LINKS, so
 * that the sandbox cannot plant a symbolic link or a FIFO there for them
 * to follow; a backend without %SANDBOX_BACKEND_CAPABILITY_MOUNT_NO_LINKS
 * refuses such a spec.
 *
 * Since: 0.2
 */
void
sandbox_spec_add_mount_full (SandboxSpec       *self,
                             const char        *host_path,
                             const char        *sandbox_path,
                             SandboxMountFlags  flags)
{
  g_return_if_fail (SANDBOX_IS_SPEC (self));
  g_return_if_fail (host_path != NULL);

  g_ptr_array_add (self->mounts,
                   sandbox_mount_new_full (host_path,
                                           sandbox_path ? sandbox_path : host_path,
                                           flags));
}

/**
 * sandbox_spec_get_mounts:
 * @self: a #SandboxSpec
 *
 * Gets the mounts added with [method@Sandbox.Spec.add_mount].
 *
 * Returns: (transfer none) (element-type SandboxMount): the mounts
 *
 * Since: 0.1
 */
GPtrArray *
sandbox_spec_get_mounts (SandboxSpec *self)
{
  g_return_val_if_fail (SANDBOX_IS_SPEC (self), NULL);
  return self->mounts;
}

/**
 * sandbox_spec_add_volume:
 * @self: a #SandboxSpec
 * @name: the name of a volume made with
 *   [method@Sandbox.Backend.create_volume_async]
 * @mount_path: the absolute path in the sandbox where the volume appears
 *
 * Mounts the named volume, read-write, into the sandbox at @mount_path.
 * Files written there outlive the sandbox and are seen by every other
 * sandbox that mounts the volume. Only backends with
 * %SANDBOX_BACKEND_CAPABILITY_VOLUMES honour volumes; the others refuse to
 * create a sandbox whose spec has one. Adding the same name again replaces
 * its mount path.
 *
 * Since: 0.2
 */
void
sandbox_spec_add_volume (SandboxSpec *self,
                         const char  *name,
                         const char  *mount_path)
{
  g_return_if_fail (SANDBOX_IS_SPEC (self));
  g_return_if_fail (name != NULL);
  g_return_if_fail (mount_path != NULL);

  g_hash_table_insert (self->volumes, g_strdup (name), g_strdup (mount_path));
}

/**
 * sandbox_spec_get_volumes:
 * @self: a #SandboxSpec
 *
 * Gets the volumes added with [method@Sandbox.Spec.add_volume].
 *
 * Returns: (transfer none) (element-type utf8 utf8): volume names mapped to
 *   their mount paths in the sandbox
 *
 * Since: 0.2
 */
GHashTable *
sandbox_spec_get_volumes (SandboxSpec *self)
{
  g_return_val_if_fail (SANDBOX_IS_SPEC (self), NULL);
  return self->volumes;
}

/**
 * sandbox_spec_set_egress_rules:
 * @self: a #SandboxSpec
 * @allow: (nullable) (array zero-terminated=1): destinations the sandbox may
 *   connect to even when @deny names them
 * @deny: (nullable) (array zero-terminated=1): destinations the sandbox may
 *   not connect to
 *
 * Restricts where a sandbox with [property@Sandbox.Spec:network] may
 * connect and send. Each entry is an IPv4 or IPv6 address (“1.1.1.1”) or a
 * CIDR block (“10.0.0.0/8”, “2001:db8::/32”); “0.0.0.0/0” stands for every
 * destination, IPv6 ones included. A destination that an @allow entry
 * matches is reached; one that only a @deny entry matches is refused; any
 * other is reached. So @deny “0.0.0.0/0” with an @allow list lets the
 * sandbox reach only what @allow names. Names (domains) are not resolved:
 * give their addresses.
 *
 * Only backends with %SANDBOX_BACKEND_CAPABILITY_EGRESS_RULES honour the
 * rules; the others refuse to create a sandbox whose spec has some, and
 * a backend refuses an entry that is not an address or a block. Setting
 * both to %NULL or empty removes the rules.
 *
 * Since: 0.2
 */
void
sandbox_spec_set_egress_rules (SandboxSpec        *self,
                               const char * const *allow,
                               const char * const *deny)
{
  g_return_if_fail (SANDBOX_IS_SPEC (self));

  g_clear_pointer (&self->egress_allow, g_strfreev);
  g_clear_pointer (&self->egress_deny, g_strfreev);
  if (allow != NULL && allow[0] != NULL)
    self->egress_allow = g_strdupv ((char **) allow);
  if (deny != NULL && deny[0] != NULL)
    self->egress_deny = g_strdupv ((char **) deny);
}

/**
 * sandbox_spec_get_egress_allow:
 * @self: a #SandboxSpec
 *
 * Gets the @allow list of [method@Sandbox.Spec.set_egress_rules].
 *
 * Returns: (transfer none) (nullable) (array zero-terminated=1): the
 *   entries, or %NULL when there are none
 *
 * Since: 0.2
 */
const char * const *
sandbox_spec_get_egress_allow (SandboxSpec *self)
{
  g_return_val_if_fail (SANDBOX_IS_SPEC (self), NULL);
  return (const char * const *) self->egress_allow;
}

/**
 * sandbox_spec_get_egress_deny:
 * @self: a #SandboxSpec
 *
 * Gets the @deny list of [method@Sandbox.Spec.set_egress_rules].
 *
 * Returns: (transfer none) (nullable) (array zero-terminated=1): the
 *   entries, or %NULL when there are none
 *
 * Since: 0.2
 */
const char * const *
sandbox_spec_get_egress_deny (SandboxSpec *self)
{
  g_return_val_if_fail (SANDBOX_IS_SPEC (self), NULL);
  return (const char * const *) self->egress_deny;
}
