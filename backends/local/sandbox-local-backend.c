/* libsandbox - the local (bubblewrap) backend
 *
 * Each instance is a directory on the host (under $XDG_RUNTIME_DIR, see
 * docs/backends/local.md) holding instance.json and the sandbox's writable
 * directories, and the socket of the server that runs as the sandbox's pid 1
 * (one bwrap process for the instance's whole life; each exec is a
 * connection to it). Because the state is on disk, any process can find an
 * instance again by id or label, and exec in it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox-local-private.h"
#include "sandbox-private.h"

struct _SandboxLocalBackend
{
  SandboxBackend parent_instance;

  char *root_dir;
  char *bwrap_path;
  char *helper_path;
};

G_DEFINE_FINAL_TYPE (SandboxLocalBackend, sandbox_local_backend, SANDBOX_TYPE_BACKEND)

enum {
  PROP_0,
  PROP_ROOT_DIR,
  PROP_BWRAP_PATH,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* ------------------------------------------------------------------ */
/* instance.json                                                       */

const char *
_local_limits_to_string (LocalLimits limits)
{
  switch (limits)
    {
    case LOCAL_LIMITS_RLIMIT: return "rlimit";
    case LOCAL_LIMITS_CGROUP2: return "cgroup2";
    case LOCAL_LIMITS_NONE:
    default: return "none";
    }
}

static LocalLimits
limits_from_string (const char *s)
{
  if (g_strcmp0 (s, "rlimit") == 0)
    return LOCAL_LIMITS_RLIMIT;
  if (g_strcmp0 (s, "cgroup2") == 0)
    return LOCAL_LIMITS_CGROUP2;
  return LOCAL_LIMITS_NONE;
}

void
_local_config_free (LocalConfig *config)
{
  if (config == NULL)
    return;
  g_free (config->id);
  g_free (config->dir);
  g_free (config->rootfs);
  g_free (config->workdir);
  g_free (config->image);
  g_free (config->cwd);
  g_free (config->egress);
  if (config->image_hold >= 0)
    close (config->image_hold);
  g_free (config->cgroup);
  g_strfreev (config->cgroups_v1);
  g_free (config->token);
  g_clear_pointer (&config->env, g_hash_table_unref);
  g_clear_pointer (&config->labels, g_hash_table_unref);
  g_clear_pointer (&config->mounts, g_ptr_array_unref);
  g_free (config);
}

static LocalConfig *
local_config_new (void)
{
  LocalConfig *config = g_new0 (LocalConfig, 1);

  config->env = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  config->labels = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  config->mounts = g_ptr_array_new_with_free_func ((GDestroyNotify) sandbox_mount_unref);
  config->uid = config->gid = -1;
  config->image_hold = -1;
  return config;
}

static void
add_string_map (JsonBuilder *builder,
                const char  *name,
                GHashTable  *map)
{
  GHashTableIter iter;
  gpointer key, value;

  json_builder_set_member_name (builder, name);
  json_builder_begin_object (builder);
  g_hash_table_iter_init (&iter, map);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      json_builder_set_member_name (builder, key);
      json_builder_add_string_value (builder, value);
    }
  json_builder_end_object (builder);
}

static void
read_string_map (JsonObject *object,
                 const char *name,
                 GHashTable *map)
{
  JsonObject *member;
  g_autoptr(GList) names = NULL;

  if (!json_object_has_member (object, name) ||
      (member = json_object_get_object_member (object, name)) == NULL)
    return;
  names = json_object_get_members (member);
  for (GList *l = names; l != NULL; l = l->next)
    {
      const char *value = json_object_get_string_member_with_default (member, l->data, NULL);

      if (value != NULL)
        g_hash_table_insert (map, g_strdup (l->data), g_strdup (value));
    }
}

gboolean
_local_config_save (LocalConfig  *config,
                    GError      **error)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *path = g_build_filename (config->dir, "instance.json", NULL);
  g_autofree char *data = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "id");
  json_builder_add_string_value (builder, config->id);
  json_builder_set_member_name (builder, "rootfs");
  if (config->rootfs != NULL)
    json_builder_add_string_value (builder, config->rootfs);
  else
    json_builder_add_null_value (builder);
  if (config->image != NULL)
    {
      json_builder_set_member_name (builder, "image");
      json_builder_add_string_value (builder, config->image);
    }
  if (config->cwd != NULL)
    {
      json_builder_set_member_name (builder, "cwd");
      json_builder_add_string_value (builder, config->cwd);
    }
  if (config->egress != NULL)
    {
      json_builder_set_member_name (builder, "egress");
      json_builder_add_string_value (builder, config->egress);
    }
  json_builder_set_member_name (builder, "uid");
  json_builder_add_int_value (builder, config->uid);
  json_builder_set_member_name (builder, "gid");
  json_builder_add_int_value (builder, config->gid);
  json_builder_set_member_name (builder, "workdir");
  json_builder_add_string_value (builder, config->workdir);
  json_builder_set_member_name (builder, "network");
  json_builder_add_boolean_value (builder, config->network);
  json_builder_set_member_name (builder, "run_as_root");
  json_builder_add_boolean_value (builder, config->run_as_root);
  json_builder_set_member_name (builder, "cpu");
  json_builder_add_double_value (builder, config->cpu);
  json_builder_set_member_name (builder, "memory_mb");
  json_builder_add_int_value (builder, config->memory_mb);
  json_builder_set_member_name (builder, "disk_mb");
  json_builder_add_int_value (builder, config->disk_mb);
  json_builder_set_member_name (builder, "pids_max");
  json_builder_add_int_value (builder, config->pids_max);
  json_builder_set_member_name (builder, "created");
  json_builder_add_int_value (builder, config->created);
  json_builder_set_member_name (builder, "expires");
  json_builder_add_int_value (builder, config->expires);
  json_builder_set_member_name (builder, "limits");
  json_builder_add_string_value (builder, _local_limits_to_string (config->limits));
  json_builder_set_member_name (builder, "bwrap_pid");
  json_builder_add_int_value (builder, config->bwrap_pid);
  json_builder_set_member_name (builder, "init_pid");
  json_builder_add_int_value (builder, config->init_pid);
  if (config->cgroup != NULL)
    {
      json_builder_set_member_name (builder, "cgroup");
      json_builder_add_string_value (builder, config->cgroup);
    }
  if (config->cgroups_v1 != NULL)
    {
      json_builder_set_member_name (builder, "cgroups_v1");
      json_builder_begin_array (builder);
      for (guint i = 0; config->cgroups_v1[i] != NULL; i++)
        json_builder_add_string_value (builder, config->cgroups_v1[i]);
      json_builder_end_array (builder);
    }
  json_builder_set_member_name (builder, "token");
  json_builder_add_string_value (builder, config->token);
  json_builder_set_member_name (builder, "die_with_owner");
  json_builder_add_boolean_value (builder, config->die_with_owner);
  add_string_map (builder, "env", config->env);
  add_string_map (builder, "labels", config->labels);
  json_builder_set_member_name (builder, "mounts");
  json_builder_begin_array (builder);
  for (guint i = 0; i < config->mounts->len; i++)
    {
      SandboxMount *mount = g_ptr_array_index (config->mounts, i);

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "host");
      json_builder_add_string_value (builder, sandbox_mount_get_host_path (mount));
      json_builder_set_member_name (builder, "sandbox");
      json_builder_add_string_value (builder, sandbox_mount_get_sandbox_path (mount));
      json_builder_set_member_name (builder, "read_only");
      json_builder_add_boolean_value (builder, sandbox_mount_get_read_only (mount));
      if (sandbox_mount_get_flags (mount) & SANDBOX_MOUNT_NO_LINKS)
        {
          json_builder_set_member_name (builder, "no_links");
          json_builder_add_boolean_value (builder, TRUE);
        }
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  json_generator_set_pretty (generator, TRUE);
  data = json_generator_to_data (generator, NULL);

  /* Written once, when the sandbox is up and before anyone knows its id
   * (list skips a file it cannot parse), so in place and not synced: the
   * file describes processes, which do not survive a crash either. A
   * rename would be one more file system operation per create. */
  return g_file_set_contents_full (path, data, -1, G_FILE_SET_CONTENTS_NONE, 0600, error);
}

LocalConfig *
_local_config_load (const char  *dir,
                    GError     **error)
{
  g_autoptr(LocalConfig) config = local_config_new ();
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *path = g_build_filename (dir, "instance.json", NULL);
  g_autoptr(GError) local_error = NULL;
  JsonObject *object;
  JsonArray *mounts;

  if (!json_parser_load_from_mapped_file (parser, path, &local_error))
    {
      g_autofree char *id = g_path_get_basename (dir);

      if (g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                     _("No local sandbox “%s”: it was destroyed or never existed. "
                       "List the live ones with “sandboxctl ls --backend local”."),
                     id);
      else
        g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                     _("The state of local sandbox %s (%s) cannot be read: %s. "
                       "Remove the directory to forget it."),
                     id, path, local_error->message);
      return NULL;
    }

  object = json_node_get_object (json_parser_get_root (parser));
  if (object == NULL)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                   _("The state of a local sandbox (%s) is not a JSON object. "
                     "Remove the directory to forget it."), path);
      return NULL;
    }

  config->dir = g_strdup (dir);
  config->id = g_strdup (json_object_get_string_member_with_default (object, "id", ""));
  config->rootfs = g_strdup (json_object_get_string_member_with_default (object, "rootfs", NULL));
  config->workdir = g_strdup (json_object_get_string_member_with_default (object, "workdir", LOCAL_DEFAULT_WORKDIR));
  config->image = g_strdup (json_object_get_string_member_with_default (object, "image", NULL));
  config->cwd = g_strdup (json_object_get_string_member_with_default (object, "cwd", NULL));
  config->egress = g_strdup (json_object_get_string_member_with_default (object, "egress", NULL));
  config->uid = json_object_get_int_member_with_default (object, "uid", -1);
  config->gid = json_object_get_int_member_with_default (object, "gid", -1);
  config->network = json_object_get_boolean_member_with_default (object, "network", FALSE);
  config->run_as_root = json_object_get_boolean_member_with_default (object, "run_as_root", FALSE);
  config->cpu = json_object_get_double_member_with_default (object, "cpu", 0);
  config->memory_mb = json_object_get_int_member_with_default (object, "memory_mb", 0);
  config->disk_mb = json_object_get_int_member_with_default (object, "disk_mb", 0);
  config->pids_max = json_object_get_int_member_with_default (object, "pids_max", 0);
  config->created = json_object_get_int_member_with_default (object, "created", 0);
  config->expires = json_object_get_int_member_with_default (object, "expires", 0);
  config->limits = limits_from_string (json_object_get_string_member_with_default (object, "limits", NULL));
  config->bwrap_pid = json_object_get_int_member_with_default (object, "bwrap_pid", 0);
  config->init_pid = json_object_get_int_member_with_default (object, "init_pid", 0);
  config->cgroup = g_strdup (json_object_get_string_member_with_default (object, "cgroup", NULL));
  if (json_object_has_member (object, "cgroups_v1") &&
      JSON_NODE_HOLDS_ARRAY (json_object_get_member (object, "cgroups_v1")))
    {
      JsonArray *array = json_object_get_array_member (object, "cgroups_v1");
      g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();

      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          const char *cg = json_node_get_string (json_array_get_element (array, i));

          /* Only what this library makes: never rmdir another path. */
          if (cg != NULL && g_str_has_prefix (cg, "/sys/fs/cgroup/") &&
              g_str_has_suffix (cg, config->id) && strstr (cg, "/..") == NULL)
            g_strv_builder_add (builder, cg);
        }
      config->cgroups_v1 = g_strv_builder_end (builder);
    }
  config->token = g_strdup (json_object_get_string_member_with_default (object, "token", ""));
  config->die_with_owner = json_object_get_boolean_member_with_default (object, "die_with_owner", FALSE);
  read_string_map (object, "env", config->env);
  read_string_map (object, "labels", config->labels);

  mounts = json_object_has_member (object, "mounts") ? json_object_get_array_member (object, "mounts") : NULL;
  for (guint i = 0; mounts != NULL && i < json_array_get_length (mounts); i++)
    {
      JsonObject *m = json_array_get_object_element (mounts, i);
      const char *host, *sandbox;

      if (m == NULL)
        continue;
      host = json_object_get_string_member_with_default (m, "host", NULL);
      sandbox = json_object_get_string_member_with_default (m, "sandbox", NULL);
      if (host != NULL && sandbox != NULL)
        {
          SandboxMountFlags flags = SANDBOX_MOUNT_NONE;

          if (json_object_get_boolean_member_with_default (m, "read_only", TRUE))
            flags |= SANDBOX_MOUNT_READ_ONLY;
          if (json_object_get_boolean_member_with_default (m, "no_links", FALSE))
            flags |= SANDBOX_MOUNT_NO_LINKS;
          g_ptr_array_add (config->mounts, sandbox_mount_new_full (host, sandbox, flags));
        }
    }

  return g_steal_pointer (&config);
}

/* ------------------------------------------------------------------ */

static void
sandbox_local_backend_finalize (GObject *object)
{
  SandboxLocalBackend *self = SANDBOX_LOCAL_BACKEND (object);

  g_clear_pointer (&self->root_dir, g_free);
  g_clear_pointer (&self->bwrap_path, g_free);
  g_clear_pointer (&self->helper_path, g_free);

  G_OBJECT_CLASS (sandbox_local_backend_parent_class)->finalize (object);
}

static void
sandbox_local_backend_get_property (GObject    *object,
                                    guint       prop_id,
                                    GValue     *value,
                                    GParamSpec *pspec)
{
  SandboxLocalBackend *self = SANDBOX_LOCAL_BACKEND (object);

  switch (prop_id)
    {
    case PROP_ROOT_DIR: g_value_set_string (value, self->root_dir); break;
    case PROP_BWRAP_PATH: g_value_set_string (value, _sandbox_local_backend_get_bwrap (self)); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
sandbox_local_backend_set_property (GObject      *object,
                                    guint         prop_id,
                                    const GValue *value,
                                    GParamSpec   *pspec)
{
  SandboxLocalBackend *self = SANDBOX_LOCAL_BACKEND (object);

  switch (prop_id)
    {
    case PROP_ROOT_DIR:
      g_free (self->root_dir);
      self->root_dir = g_value_dup_string (value);
      break;
    case PROP_BWRAP_PATH:
      g_free (self->bwrap_path);
      self->bwrap_path = g_value_dup_string (value);
      break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
sandbox_local_backend_constructed (GObject *object)
{
  SandboxLocalBackend *self = SANDBOX_LOCAL_BACKEND (object);
  const char *env;

  G_OBJECT_CLASS (sandbox_local_backend_parent_class)->constructed (object);

  if (self->root_dir == NULL)
    self->root_dir = _sandbox_local_default_root ();

  env = g_getenv ("SANDBOX_EXEC_HELPER");
  if (env != NULL && *env != '\0')
    self->helper_path = g_strdup (env);
  else
    self->helper_path = g_build_filename (SANDBOX_LIBEXECDIR, "sandbox-exec-helper", NULL);
}

const char *
_sandbox_local_backend_get_bwrap (SandboxLocalBackend *self)
{
  if (self->bwrap_path == NULL)
    {
      const char *env = g_getenv ("SANDBOX_BWRAP");

      if (env != NULL && *env != '\0')
        self->bwrap_path = g_strdup (env);
      else
        self->bwrap_path = g_find_program_in_path ("bwrap");
    }
  return self->bwrap_path;
}

const char *
_sandbox_local_backend_get_helper (SandboxLocalBackend *self)
{
  return self->helper_path;
}

static gboolean
sandbox_local_backend_check_configured (SandboxBackend  *backend,
                                        GError         **error)
{
  SandboxLocalBackend *self = SANDBOX_LOCAL_BACKEND (backend);
  const char *bwrap = _sandbox_local_backend_get_bwrap (self);

  if (bwrap == NULL || !g_file_test (bwrap, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED,
                   _("The local backend needs bubblewrap, and “bwrap” was not found on PATH. "
                     "Install it with “sudo apt-get install bubblewrap” (Debian, Ubuntu) or "
                     "“sudo dnf install bubblewrap” (Fedora), or set SANDBOX_BWRAP to its path. "
                     "See docs/backends/local.md."));
      return FALSE;
    }

  if (!g_file_test (self->helper_path, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED,
                   _("The local backend's helper %s is missing: libsandbox is not installed "
                     "completely. Reinstall it, or when running from a build tree set "
                     "SANDBOX_EXEC_HELPER to backends/local/sandbox-exec-helper."),
                   self->helper_path);
      return FALSE;
    }

  return TRUE;
}

static gboolean
valid_id (const char *id)
{
  if (id == NULL || *id == '\0' || strlen (id) > 64)
    return FALSE;
  for (const char *p = id; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_')
      return FALSE;
  return TRUE;
}

static char *
new_id (void)
{
  return g_strdup_printf ("sbx-%08x%04x", g_random_int (), g_random_int_range (0, 0x10000));
}

static LocalLimits
choose_limits (SandboxSpec *spec)
{
  const char *parent = g_getenv ("SANDBOX_CGROUP_PARENT");

  if (sandbox_spec_get_memory_mb (spec) == 0 &&
      sandbox_spec_get_pids_max (spec) == 0 &&
      sandbox_spec_get_cpu (spec) == 0)
    return LOCAL_LIMITS_NONE;

  /* cgroup v2 only where a delegated, writable cgroup is named: creating
   * child groups anywhere else either fails or escapes a manager's control. */
  if (parent != NULL && *parent != '\0')
    {
      g_autofree char *procs = g_build_filename (parent, "cgroup.subtree_control", NULL);

      if (g_file_test (procs, G_FILE_TEST_EXISTS) && g_access (parent, W_OK) == 0)
        return LOCAL_LIMITS_CGROUP2;
      g_debug ("SANDBOX_CGROUP_PARENT=%s is not a writable cgroup v2 directory; using rlimits", parent);
    }
  return LOCAL_LIMITS_RLIMIT;
}

/* bwrap creates a mount point it is missing. Inside a top-level directory
 * of the read-only root (/mnt, /opt, ...) that is impossible; a new
 * top-level directory (/workspace) or an existing path is fine. */
static gboolean
mount_point_ok (const char *root,
                const char *target)
{
  static const char * const writable[] = { "/tmp", "/run", NULL };
  g_auto(GStrv) parts = g_strsplit (target + 1, "/", 2);
  g_autofree char *top = g_build_filename (root, parts[0], NULL);
  g_autofree char *full = g_build_filename (root, target, NULL);

  for (guint i = 0; writable[i] != NULL; i++)
    if (g_str_has_prefix (target, writable[i]) &&
        (target[strlen (writable[i])] == '/' || target[strlen (writable[i])] == '\0'))
      return TRUE;
  /* The host root's /var/tmp is private and writable too (build_bwrap_argv). */
  if (strcmp (root, "/") == 0 && g_str_has_prefix (target, "/var/tmp/"))
    return TRUE;
  return parts[1] == NULL || !g_file_test (top, G_FILE_TEST_EXISTS) ||
         g_file_test (full, G_FILE_TEST_EXISTS);
}

/* The part of the sandbox's own tree that TARGET (canonical) is, or is
 * under, when that cannot be a mount target, else NULL: /proc is the
 * sandbox's proc file system (bwrap fails late and obscurely on a mount
 * over it), /dev its device nodes, and /run a fresh tmpfs holding
 * /run/libsandbox, where the helper is bound in: over a read-write mount at
 * /run, bwrap would make that directory in the user's mount source. (A
 * file bound over one in /proc, as the E2B emulator's boot_id, a mount
 * below /run but /run/libsandbox, and /dev/shm, are fine.) */
static const char *
reserved_mount_target (const char *target)
{
  static const char * const own[] = { "/proc", "/dev", "/run", NULL };
  static const char *helper_dir = "/run/libsandbox";
  gsize len = strlen (helper_dir);

  if (strncmp (target, helper_dir, len) == 0 && (target[len] == '\0' || target[len] == '/'))
    return helper_dir;
  for (guint i = 0; own[i] != NULL; i++)
    if (strcmp (target, own[i]) == 0)
      return own[i];
  return NULL;
}

/* Checks that TARGET is not a reserved mount target. */
static gboolean
mount_target_allowed (const char  *target,
                      GError     **error)
{
  g_autofree char *canonical = g_canonicalize_filename (target, "/");
  const char *reserved = reserved_mount_target (canonical);

  if (reserved != NULL)
    {
      /* TRANSLATORS: the second %s is /proc, /dev, /run or /run/libsandbox */
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                   _("The mount target “%s” is (or is inside) %s, which is the sandbox's own, "
                     "made fresh in every sandbox, and cannot be a mount target. Mount at "
                     "another path, such as /data."), target, reserved);
      return FALSE;
    }
  return TRUE;
}

/* The first of the first @n @mounts whose target is TARGET, or NULL: a
 * second mount there would hide it. */
static SandboxMount *
mount_at (GPtrArray  *mounts,
          guint       n,
          const char *target)
{
  g_autofree char *canonical = g_canonicalize_filename (target, "/");

  for (guint i = 0; i < n && i < mounts->len; i++)
    {
      SandboxMount *mount = g_ptr_array_index (mounts, i);
      g_autofree char *other = g_canonicalize_filename (sandbox_mount_get_sandbox_path (mount), "/");

      if (strcmp (canonical, other) == 0)
        return mount;
    }
  return NULL;
}

/* Whether PATH (existing, on the host) is the sandboxes' directory ROOT or
 * inside it, once both are resolved. */
static gboolean
is_in_sandboxes_dir (const char *path,
                     const char *root)
{
  g_autofree char *real_path = realpath (path, NULL);
  g_autofree char *real_root = realpath (root, NULL);
  gsize len;

  if (real_path == NULL || real_root == NULL)
    return FALSE;
  len = strlen (real_root);
  return strncmp (real_path, real_root, len) == 0 &&
         (real_path[len] == '\0' || real_path[len] == '/' || strcmp (real_root, "/") == 0);
}

/* Whether @target is strictly under the sandbox path of one of the first
 * @n mounts that is a writable directory: bwrap makes the mount point in
 * that mount, after mounting it. */
static gboolean
under_writable_mount (GPtrArray  *mounts,
                      guint       n,
                      const char *target)
{
  for (guint i = 0; i < n && i < mounts->len; i++)
    {
      SandboxMount *mount = g_ptr_array_index (mounts, i);
      const char *path = sandbox_mount_get_sandbox_path (mount);
      gsize len = strlen (path);

      if (!sandbox_mount_get_read_only (mount) &&
          g_file_test (sandbox_mount_get_host_path (mount), G_FILE_TEST_IS_DIR) &&
          strncmp (target, path, len) == 0 && target[len] == '/' &&
          strstr (target + len, "/..") == NULL)
        return TRUE;
    }
  return FALSE;
}

/* Volumes (since 0.2): named directories beside the sandboxes' directory
 * (as the image store is), or under SANDBOX_LOCAL_VOLUMES; a volume is
 * bind-mounted read-write, like a mount. */
char *
_sandbox_local_volumes_dir (const char *root_dir)
{
  const char *env = g_getenv ("SANDBOX_LOCAL_VOLUMES");
  g_autofree char *parent = NULL;

  if (env != NULL && *env != '\0')
    return g_strdup (env);
  parent = _sandbox_local_data_dir (root_dir);
  return g_build_filename (parent, "volumes", NULL);
}

static gboolean
validate_volumes (SandboxSpec  *spec,
                  const char   *root_dir,
                  const char   *rootfs,
                  const char   *workdir,
                  GError      **error)
{
  g_autofree char *dir = _sandbox_local_volumes_dir (root_dir);
  GHashTableIter iter;
  gpointer key, value;

  if (g_hash_table_size (sandbox_spec_get_volumes (spec)) > 0 &&
      !_sandbox_check_private_dir (dir, _("The local volumes' directory"), error))
    return FALSE;
  g_hash_table_iter_init (&iter, sandbox_spec_get_volumes (spec));
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      g_autofree char *path = NULL;
      const char *target = value;
      SandboxMount *mount;
      GHashTableIter other_iter;
      gpointer other_key, other_value;

      if (!sandbox_volume_name_is_valid (key))
        {
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                       _("“%s” is not a volume name: use 1 to 63 letters, digits, “-”, “_” "
                         "or “.”, not starting with “.” (no “/”, no “..”)."), (const char *) key);
          return FALSE;
        }
      path = g_build_filename (dir, key, NULL);
      if (!g_file_test (path, G_FILE_TEST_IS_DIR))
        {
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                       _("There is no local volume “%s”; create it first with "
                         "“sandboxctl volume create %s”."), (const char *) key, (const char *) key);
          return FALSE;
        }
      if (!g_path_is_absolute (target) || g_strcmp0 (target, "/") == 0 ||
          strstr (target, "/../") != NULL || g_str_has_suffix (target, "/.."))
        {
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                       _("The mount path “%s” of volume “%s” must be an absolute path "
                         "other than /, such as /data."), target, (const char *) key);
          return FALSE;
        }
      if (!mount_target_allowed (target, error))
        return FALSE;
      g_hash_table_iter_init (&other_iter, sandbox_spec_get_volumes (spec));
      while (g_hash_table_iter_next (&other_iter, &other_key, &other_value))
        {
          g_autofree char *a = g_canonicalize_filename (target, "/");
          g_autofree char *b = g_canonicalize_filename (other_value, "/");

          if (strcmp (other_key, key) < 0 && strcmp (a, b) == 0)
            {
              g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                           _("The volumes “%s” and “%s” both have the target “%s”: one would "
                             "hide the other. Give each a target of its own."),
                           (const char *) other_key, (const char *) key, target);
              return FALSE;
            }
        }
      if ((mount = mount_at (sandbox_spec_get_mounts (spec), G_MAXUINT, target)) != NULL)
        {
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                       _("The volume “%s” and the mount of “%s” both have the target “%s”: "
                         "one would hide the other. Give each a target of its own."),
                       (const char *) key, sandbox_mount_get_host_path (mount), target);
          return FALSE;
        }
      if (!mount_point_ok (rootfs ? rootfs : "/", target) &&
          !g_str_has_prefix (target, workdir ? workdir : LOCAL_DEFAULT_WORKDIR) &&
          !under_writable_mount (sandbox_spec_get_mounts (spec), G_MAXUINT, target))
        {
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                       _("The mount target “%s” does not exist in the image and cannot be "
                         "created in its read-only directories. Mount at a path that exists, "
                         "under the workdir, under /tmp, or at a new top-level directory "
                         "such as /data."), target);
          return FALSE;
        }
    }
  return TRUE;
}

static void
volume_task_done (GTask    *task,
                  gboolean  ok,
                  GError   *error)
{
  if (ok)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
sandbox_local_backend_create_volume (SandboxBackend *backend,
                                     const char     *name,
                                     GCancellable   *cancellable,
                                     GTask          *task)
{
  SandboxLocalBackend *self = SANDBOX_LOCAL_BACKEND (backend);
  g_autofree char *dir = _sandbox_local_volumes_dir (self->root_dir);
  g_autofree char *path = g_build_filename (dir, name, NULL);
  GError *error = NULL;

  if (g_mkdir_with_parents (dir, 0700) != 0 ||
      (g_mkdir (path, 0755) != 0 && errno != EEXIST))
    {
      int errsv = errno;
      g_set_error (&error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                   _("Cannot create the local volume directory %s: %s. "
                     "Set SANDBOX_LOCAL_VOLUMES to a writable directory."),
                   path, g_strerror (errsv));
      volume_task_done (task, FALSE, error);
      return;
    }
  if (!_sandbox_check_private_dir (dir, _("The local volumes' directory"), &error))
    {
      volume_task_done (task, FALSE, error);
      return;
    }
  volume_task_done (task, TRUE, NULL);
}

static void
delete_volume_thread (GTask        *task,
                      gpointer      source_object,
                      gpointer      task_data,
                      GCancellable *cancellable)
{
  const char *path = task_data;
  GError *error = NULL;

  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_autofree char *name = g_path_get_basename (path);
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                               _("There is no local volume “%s”; list them with "
                                 "“sandboxctl volume ls”."), name);
      return;
    }
  volume_task_done (task, _local_remove_tree (path, &error), error);
}

static void
sandbox_local_backend_delete_volume (SandboxBackend *backend,
                                     const char     *name,
                                     GCancellable   *cancellable,
                                     GTask          *task)
{
  SandboxLocalBackend *self = SANDBOX_LOCAL_BACKEND (backend);
  g_autofree char *dir = _sandbox_local_volumes_dir (self->root_dir);
  GError *error = NULL;

  if (!_sandbox_check_private_dir (dir, _("The local volumes' directory"), &error))
    {
      g_task_return_error (task, error);
      return;
    }
  g_task_set_task_data (task, g_build_filename (dir, name, NULL), g_free);
  g_task_run_in_thread (task, delete_volume_thread);
}

static void
sandbox_local_backend_list_volumes (SandboxBackend *backend,
                                    GCancellable   *cancellable,
                                    GTask          *task)
{
  SandboxLocalBackend *self = SANDBOX_LOCAL_BACKEND (backend);
  g_autofree char *dir = _sandbox_local_volumes_dir (self->root_dir);
  g_autoptr(GStrvBuilder) names = g_strv_builder_new ();
  g_autoptr(GDir) gdir = NULL;
  const char *name;
  GError *error = NULL;

  if (!_sandbox_check_private_dir (dir, _("The local volumes' directory"), &error))
    {
      g_task_return_error (task, error);
      return;
    }
  gdir = g_dir_open (dir, 0, NULL);
  while (gdir != NULL && (name = g_dir_read_name (gdir)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);

      if (sandbox_volume_name_is_valid (name) && g_file_test (path, G_FILE_TEST_IS_DIR))
        g_strv_builder_add (names, name);
    }
  _sandbox_task_return_strv (task, g_strv_builder_end (names));
}

/* Whether PATH has a “.” or “..” component. The sandbox's set-up compares
 * mount targets and the workdir as strings (which target hides what, what
 * is under the workdir): /data/../etc would be /etc to bwrap and something
 * else to those checks. */
static gboolean
has_dot_component (const char *path)
{
  g_auto(GStrv) parts = g_strsplit (path, "/", -1);

  for (guint i = 0; parts[i] != NULL; i++)
    if (strcmp (parts[i], ".") == 0 || strcmp (parts[i], "..") == 0)
      return TRUE;
  return FALSE;
}

static gboolean
validate_spec (SandboxSpec    *spec,
               const char     *root_dir,
               char          **rootfs_out,
               SandboxImage  **image_out,
               int            *hold_out,
               GError        **error)
{
  const char *image = sandbox_spec_get_image (spec);
  const char *workdir = sandbox_spec_get_workdir (spec);
  GPtrArray *mounts = sandbox_spec_get_mounts (spec);

  *rootfs_out = NULL;
  *image_out = NULL;
  if (image != NULL && *image != '\0' && g_strcmp0 (image, "host") != 0 &&
      !g_path_is_absolute (image))
    {
      /* NAME:TAG or a digest of an imported image. */
      g_autoptr(SandboxImageStore) store =
        g_object_new (SANDBOX_TYPE_IMAGE_STORE, "sandboxes-dir", root_dir, NULL);

      *image_out = sandbox_image_store_lookup (store, image, NULL, error);
      if (*image_out == NULL)
        return FALSE;
      /* Held until the sandbox is recorded; checked again under it, as an
       * image rm may have finished just before. */
      *hold_out = _sandbox_image_store_hold (store);
      if (!g_file_test (sandbox_image_get_rootfs (*image_out), G_FILE_TEST_IS_DIR))
        {
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                       _("The image “%s” was removed from the image store; import it again "
                         "with “sandboxctl image import FILE --name %s”."), image, image);
          g_clear_object (image_out);
          return FALSE;
        }
      *rootfs_out = g_strdup (sandbox_image_get_rootfs (*image_out));
    }
  else if (image != NULL && *image != '\0' && g_strcmp0 (image, "host") != 0)
    {
      g_autofree char *sh = g_build_filename (image, "bin", "sh", NULL);

      if (!g_path_is_absolute (image) || !g_file_test (image, G_FILE_TEST_IS_DIR))
        {
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                       _("The local backend's image “%s” is not a root file system directory. "
                         "Give the absolute path of an unpacked root file system "
                         "(for example one made by debootstrap), NAME:TAG of an image "
                         "imported with “sandboxctl image import”, or “host” for this "
                         "machine's own root. See docs/backends/local.md."), image);
          return FALSE;
        }
      if (!g_file_test (sh, G_FILE_TEST_EXISTS))
        {
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                       _("The local backend's image “%s” has no /bin/sh, so it is not a "
                         "usable root file system. Unpack a complete one there "
                         "(for example with debootstrap)."), image);
          return FALSE;
        }
      *rootfs_out = g_canonicalize_filename (image, NULL);
    }

  if (workdir != NULL && g_path_is_absolute (workdir) &&
      !mount_point_ok (*rootfs_out ? *rootfs_out : "/", workdir))
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                   _("The workdir “%s” would have to be created inside a read-only directory "
                     "of the image. Use a new top-level directory such as /workspace, or a "
                     "directory that exists in the image."), workdir);
      g_clear_pointer (rootfs_out, g_free);
      g_clear_object (image_out);
      return FALSE;
    }

  if (workdir != NULL && (!g_path_is_absolute (workdir) || g_strcmp0 (workdir, "/") == 0 ||
                          has_dot_component (workdir)))
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                   _("The workdir “%s” must be an absolute path other than /, such as /workspace."),
                   workdir);
      g_clear_pointer (rootfs_out, g_free);
      g_clear_object (image_out);
      return FALSE;
    }
  /* The workdir is bound as a mount is: over /proc bwrap fails late and
   * obscurely, over /dev it hides the device nodes, and at /run (or in
   * /run/libsandbox) the helper's mount point lands in it. */
  if (workdir != NULL)
    {
      g_autofree char *canonical = g_canonicalize_filename (workdir, "/");
      const char *reserved = reserved_mount_target (canonical);

      if (reserved != NULL)
        {
          /* TRANSLATORS: the second %s is /proc, /dev, /run or /run/libsandbox */
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                       _("The workdir “%s” is (or is inside) %s, which is the sandbox's own, "
                         "made fresh in every sandbox, and cannot be the workdir. Use another "
                         "path, such as /workspace."), workdir, reserved);
          g_clear_pointer (rootfs_out, g_free);
          g_clear_object (image_out);
          return FALSE;
        }
    }

  for (guint i = 0; i < mounts->len; i++)
    {
      SandboxMount *mount = g_ptr_array_index (mounts, i);
      const char *host = sandbox_mount_get_host_path (mount);
      const char *target = sandbox_mount_get_sandbox_path (mount);
      SandboxMount *earlier;

      if (!g_path_is_absolute (host) || !g_file_test (host, G_FILE_TEST_EXISTS))
        {
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                       _("The mount source “%s” does not exist on this machine; "
                         "mount sources must be absolute paths that exist."), host);
          g_clear_pointer (rootfs_out, g_free);
          g_clear_object (image_out);
          return FALSE;
        }
      /* Every sandbox's server socket and secret are in there. (A mount
       * of a directory above it gets it hidden instead.) */
      if (is_in_sandboxes_dir (host, root_dir))
        {
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                       _("The mount source “%s” is inside the local sandboxes' directory "
                         "(%s), which no sandbox may see. Mount another directory."),
                       host, root_dir);
          g_clear_pointer (rootfs_out, g_free);
          g_clear_object (image_out);
          return FALSE;
        }
      if (!g_path_is_absolute (target) || g_strcmp0 (target, "/") == 0)
        {
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                       _("The mount target “%s” must be an absolute path other than /."), target);
          g_clear_pointer (rootfs_out, g_free);
          g_clear_object (image_out);
          return FALSE;
        }
      if (has_dot_component (target))
        {
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                       _("The mount target “%s” has a “.” or “..” component; give the path "
                         "it means without them, such as /data."), target);
          g_clear_pointer (rootfs_out, g_free);
          g_clear_object (image_out);
          return FALSE;
        }
      if (!mount_target_allowed (target, error))
        {
          g_clear_pointer (rootfs_out, g_free);
          g_clear_object (image_out);
          return FALSE;
        }
      /* The very same mount twice hides nothing (a caller may add a path
       * twice from two lists); any other second mount there would. */
      if ((earlier = mount_at (mounts, i, target)) != NULL &&
          (strcmp (sandbox_mount_get_host_path (earlier), host) != 0 ||
           sandbox_mount_get_flags (earlier) != sandbox_mount_get_flags (mount)))
        {
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                       _("The mounts of “%s” and “%s” both have the target “%s”: the second "
                         "would hide the first. Give each mount a target of its own."),
                       sandbox_mount_get_host_path (earlier), host, target);
          g_clear_pointer (rootfs_out, g_free);
          g_clear_object (image_out);
          return FALSE;
        }
      if (!mount_point_ok (*rootfs_out ? *rootfs_out : "/", target) &&
          !g_str_has_prefix (target, workdir ? workdir : LOCAL_DEFAULT_WORKDIR) &&
          !under_writable_mount (mounts, i, target))
        {
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                       _("The mount target “%s” does not exist in the image and cannot be "
                         "created in its read-only directories. Mount at a path that exists, "
                         "under the workdir, under /tmp, or at a new top-level directory "
                         "such as /data."), target);
          g_clear_pointer (rootfs_out, g_free);
          g_clear_object (image_out);
          return FALSE;
        }
    }

  if (!validate_volumes (spec, root_dir, *rootfs_out, workdir, error))
    {
      g_clear_pointer (rootfs_out, g_free);
      g_clear_object (image_out);
      return FALSE;
    }

  return TRUE;
}

/* Makes the sandbox of SPEC and completes TASK with it once it runs. ONCE
 * (or NULL): a one-shot sandbox for this command of sandbox_backend_run
 * (see _sandbox_local_instance_start). */
/* Egress rules as pid 1 takes them (sandbox-exec-helper --egress): each
 * entry "+ADDR/LEN" (allow) or "-ADDR/LEN" (deny), comma separated,
 * "0.0.0.0/0" kept as it is (every destination); "" for none. */
gboolean
_local_encode_egress (const char * const  *allow,
                      const char * const  *deny,
                      gboolean             network,
                      char               **out,
                      GError             **error)
{
  const char * const *lists[2] = { allow, deny };
  g_autoptr(GString) rules = g_string_new (NULL);

  *out = NULL;
  if (!network && ((allow != NULL && allow[0] != NULL) || (deny != NULL && deny[0] != NULL)))
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                   _("Egress rules restrict a sandbox's network, and this sandbox has none; "
                     "create it with the network on (the spec's network property) or drop the "
                     "rules."));
      return FALSE;
    }
  for (guint l = 0; l < 2; l++)
    for (guint i = 0; lists[l] != NULL && lists[l][i] != NULL; i++)
      {
        g_autoptr(GInetAddressMask) mask = g_inet_address_mask_new_from_string (lists[l][i], NULL);
        g_autofree char *address = NULL;

        if (mask == NULL)
          {
            g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                         _("The egress rule “%s” is not an IPv4 or IPv6 address or CIDR block "
                           "(such as 10.0.0.0/8); resolve a name to its addresses first."),
                         lists[l][i]);
            return FALSE;
          }
        address = g_inet_address_to_string (g_inet_address_mask_get_address (mask));
        g_string_append_printf (rules, "%s%c%s/%u", rules->len > 0 ? "," : "", l == 0 ? '+' : '-',
                                address, g_inet_address_mask_get_length (mask));
      }
  if (rules->len > 8000)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                   _("Too many egress rules (at most 200); merge addresses into CIDR blocks."));
      return FALSE;
    }
  *out = g_string_free (g_steal_pointer (&rules), FALSE);
  return TRUE;
}

static void
local_create (SandboxLocalBackend *self,
              SandboxSpec         *spec,
              SandboxCommand      *once,
              GTask               *task)
{
  g_autoptr(LocalConfig) config = local_config_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(SandboxImage) image = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *work = NULL;
  g_autofree char *tmp = NULL;
  g_autofree char *var_tmp = NULL;
  GHashTableIter iter;
  gpointer key, value;
  GPtrArray *mounts;

  if (g_task_return_error_if_cancelled (task))
    return;

  if (!_local_encode_egress (sandbox_spec_get_egress_allow (spec), sandbox_spec_get_egress_deny (spec),
                             sandbox_spec_get_network (spec), &config->egress, &error) ||
      !validate_spec (spec, self->root_dir, &config->rootfs, &image, &config->image_hold, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  /* An imported image's config: its user (unless the spec asks for
   * root), its environment under the spec's, and its working directory
   * as the commands' default unless the spec names a workdir. */
  if (image != NULL)
    {
      const char * const *image_env = sandbox_image_get_env (image);

      config->image = g_strdup (sandbox_image_get_id (image));
      if (!sandbox_spec_get_run_as_root (spec) && sandbox_image_get_user (image) != NULL &&
          !_sandbox_image_resolve_user (image, &config->uid, &config->gid, &error))
        {
          if (error != NULL)
            {
              g_task_return_error (task, g_steal_pointer (&error));
              return;
            }
          config->uid = config->gid = -1;
        }
      for (guint i = 0; image_env[i] != NULL; i++)
        {
          const char *eq = strchr (image_env[i], '=');
          if (eq != NULL && eq != image_env[i])
            g_hash_table_insert (config->env, g_strndup (image_env[i], eq - image_env[i]),
                                 g_strdup (eq + 1));
        }
      if (sandbox_spec_get_workdir (spec) == NULL && sandbox_image_get_workdir (image) != NULL)
        config->cwd = g_strdup (sandbox_image_get_workdir (image));
    }

  if (g_mkdir_with_parents (self->root_dir, 0700) != 0)
    {
      int errsv = errno;
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED,
                               _("Cannot create the local sandboxes' directory %s: %s. "
                                 "Set SANDBOX_LOCAL_ROOT to a writable directory."),
                               self->root_dir, g_strerror (errsv));
      return;
    }
  if (!_sandbox_check_private_dir (self->root_dir, _("The local sandboxes' directory"), &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  /* Pick an id that no other instance has. */
  for (guint tries = 0; ; tries++)
    {
      g_free (config->id);
      g_free (config->dir);
      config->id = new_id ();
      config->dir = g_build_filename (self->root_dir, config->id, NULL);
      if (g_mkdir (config->dir, 0700) == 0)
        break;
      if (errno != EEXIST || tries > 16)
        {
          int errsv = errno;
          g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                                   _("Cannot create the sandbox directory %s: %s"),
                                   config->dir, g_strerror (errsv));
          return;
        }
    }

  config->workdir = g_strdup (sandbox_spec_get_workdir (spec) ? sandbox_spec_get_workdir (spec)
                                                              : LOCAL_DEFAULT_WORKDIR);
  config->network = sandbox_spec_get_network (spec);
  config->run_as_root = sandbox_spec_get_run_as_root (spec);
  config->cpu = sandbox_spec_get_cpu (spec);
  config->memory_mb = sandbox_spec_get_memory_mb (spec);
  config->disk_mb = sandbox_spec_get_disk_mb (spec);
  config->pids_max = sandbox_spec_get_pids_max (spec);
  config->created = g_get_real_time () / G_USEC_PER_SEC;
  config->expires = sandbox_spec_get_timeout (spec) ? config->created + sandbox_spec_get_timeout (spec) : 0;
  config->limits = choose_limits (spec);
  config->die_with_owner = sandbox_spec_get_die_with_owner (spec);

  g_hash_table_iter_init (&iter, sandbox_spec_get_env (spec));
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_hash_table_insert (config->env, g_strdup (key), g_strdup (value));
  g_hash_table_iter_init (&iter, sandbox_spec_get_labels (spec));
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_hash_table_insert (config->labels, g_strdup (key), g_strdup (value));
  mounts = sandbox_spec_get_mounts (spec);
  for (guint i = 0; i < mounts->len; i++)
    g_ptr_array_add (config->mounts, sandbox_mount_ref (g_ptr_array_index (mounts, i)));
  {
    g_autofree char *vdir = _sandbox_local_volumes_dir (self->root_dir);

    g_hash_table_iter_init (&iter, sandbox_spec_get_volumes (spec));
    while (g_hash_table_iter_next (&iter, &key, &value))
      {
        g_autofree char *host = g_build_filename (vdir, key, NULL);
        g_ptr_array_add (config->mounts, sandbox_mount_new (host, value, FALSE));
      }
  }

  work = g_build_filename (config->dir, "work", NULL);
  tmp = g_build_filename (config->dir, "tmp", NULL);
  var_tmp = g_build_filename (config->dir, "var-tmp", NULL);
  /* instance.json is written once the sandbox runs (see
   * _sandbox_local_instance_start): until then nobody sees the instance. */
  if (g_mkdir (work, 0755) != 0 || g_mkdir (tmp, 01777) != 0 ||
      g_chmod (tmp, 01777) != 0 || g_mkdir (var_tmp, 01777) != 0 ||
      g_chmod (var_tmp, 01777) != 0)
    {
      int errsv = errno;
      _local_remove_tree (config->dir, NULL);
      if (error != NULL)
        g_task_return_error (task, g_steal_pointer (&error));
      else
        g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                                 _("Cannot lay out the sandbox directory %s: %s"),
                                 config->dir, g_strerror (errsv));
      return;
    }

  g_debug ("Created local sandbox %s in %s (limits: %s)",
           config->id, config->dir, _local_limits_to_string (config->limits));

  /* The command is sent at start: it gets the id now. */
  if (once != NULL)
    {
      _sandbox_command_set_sandbox_id (once, config->id);
      if (sandbox_command_get_id_env (once) != NULL)
        sandbox_command_set_env (once, sandbox_command_get_id_env (once), config->id);
    }
  instance = _sandbox_local_instance_new (self, g_steal_pointer (&config));
  _sandbox_local_instance_start (SANDBOX_LOCAL_INSTANCE (instance), once, g_object_ref (task));
}

static void
sandbox_local_backend_create (SandboxBackend *backend,
                              SandboxSpec    *spec,
                              GCancellable   *cancellable,
                              GTask          *task)
{
  local_create (SANDBOX_LOCAL_BACKEND (backend), spec, NULL, task);
}

static void
run_created (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  GTask *task = user_data;
  g_autoptr(SandboxInstance) instance = NULL;
  GError *error = NULL;

  instance = _sandbox_task_propagate_object (G_TASK (result), SANDBOX_TYPE_INSTANCE, &error);
  if (instance == NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  /* The generic exec and destroy: exec takes the connection pid 1 got at
   * start, and destroy finds pid 1 ending already. */
  _sandbox_backend_run_in (task, instance);
}

/* sandbox_backend_run: a one-shot sandbox, whose pid 1 starts with the
 * command's connection (no connect, and the sandbox ends by itself with
 * the command); everything else is a normal create. */
static void
sandbox_local_backend_run (SandboxBackend *backend,
                           SandboxSpec    *spec,
                           SandboxCommand *command,
                           GCancellable   *cancellable,
                           GTask          *task)
{
  GTask *create_task = g_task_new (backend, cancellable, run_created, g_object_ref (task));

  g_task_set_source_tag (create_task, sandbox_local_backend_run);
  local_create (SANDBOX_LOCAL_BACKEND (backend), spec, command, create_task);
  g_object_unref (create_task);
}

static gboolean
expired (LocalConfig *config)
{
  return config->expires != 0 && config->expires <= g_get_real_time () / G_USEC_PER_SEC;
}

/* A sandbox's directory is made before its bwrap starts, its instance.json
 * written once pid 1 is ready: a creator killed in between (SIGKILL, the
 * machine's end) left a directory that nothing listed, found or removed
 * (rm said it never existed, gc skipped it), with whatever the sandbox's
 * workdir held. One without instance.json, without a live server, and
 * unchanged for a minute (a creation takes milliseconds, and each step
 * adds to the directory) is such a leftover: removed. Returns whether
 * DIR was. */
static gboolean
remove_if_abandoned (const char *dir)
{
  struct stat st;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  g_autoptr(GError) error = NULL;

  if (g_lstat (dir, &st) != 0 || !S_ISDIR (st.st_mode) || st.st_uid != geteuid () ||
      now - (gint64) st.st_mtime < 60 || _local_server_alive (dir))
    return FALSE;
  g_debug ("Local sandbox directory %s has no instance.json and no server; removing it", dir);
  if (!_local_destroy_dir (dir, &error))
    {
      g_debug ("Cannot remove %s: %s", dir, error->message);
      return FALSE;
    }
  return TRUE;
}

/* Loads an instance; one past its time to live is destroyed, as a remote
 * provider would have done, and reported as not found. */
static SandboxInstance *
load_instance (SandboxLocalBackend  *self,
               const char           *id,
               GError              **error)
{
  g_autofree char *dir = g_build_filename (self->root_dir, id, NULL);
  g_autoptr(LocalConfig) config = _local_config_load (dir, error);
  SandboxInstance *instance;
  gboolean alive;

  if (config == NULL)
    {
      if (error != NULL && g_error_matches (*error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND) &&
          remove_if_abandoned (dir))
        {
          g_clear_error (error);
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                       _("The local sandbox %s was left unfinished by a creator that ended before "
                         "it was ready, and was removed."), id);
        }
      return NULL;
    }
  if (expired (config))
    {
      g_debug ("Local sandbox %s outlived its timeout; removing it", id);
      _local_destroy_dir (dir, NULL);
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                   _("The local sandbox %s reached the end of its timeout and was removed."), id);
      return NULL;
    }
  alive = _local_server_alive (dir);
  if (!alive && config->die_with_owner)
    {
      /* It ended with its owner (whose death left nobody to remove the
       * directory): what is left goes now. */
      g_debug ("Local sandbox %s ended with its owner; removing it", id);
      _local_destroy_dir (dir, NULL);
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                   _("The local sandbox %s ended with the process that created it."), id);
      return NULL;
    }
  instance = _sandbox_local_instance_new (self, g_steal_pointer (&config));
  /* Its processes were killed, or the machine restarted. */
  if (!alive)
    sandbox_instance_set_state (instance, SANDBOX_INSTANCE_STATE_STOPPED);
  return instance;
}

static void
sandbox_local_backend_get_instance (SandboxBackend *backend,
                                    const char     *id,
                                    GCancellable   *cancellable,
                                    GTask          *task)
{
  SandboxLocalBackend *self = SANDBOX_LOCAL_BACKEND (backend);
  g_autoptr(SandboxInstance) instance = NULL;
  GError *error = NULL;

  if (!valid_id (id))
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                               _("“%s” is not a local sandbox id (ids look like sbx-0123456789ab). "
                                 "List the live ones with “sandboxctl ls --backend local”."), id);
      return;
    }

  if (!_sandbox_check_private_dir (self->root_dir, _("The local sandboxes' directory"), &error))
    {
      g_task_return_error (task, error);
      return;
    }
  instance = load_instance (self, id, &error);
  if (instance == NULL)
    g_task_return_error (task, error);
  else
    _sandbox_task_return_object (task, instance);
}

static void
sandbox_local_backend_list (SandboxBackend *backend,
                            GHashTable     *labels,
                            GCancellable   *cancellable,
                            GTask          *task)
{
  SandboxLocalBackend *self = SANDBOX_LOCAL_BACKEND (backend);
  g_autoptr(GListStore) store = g_list_store_new (SANDBOX_TYPE_INSTANCE);
  g_autoptr(GDir) dir = NULL;
  const char *name;
  GError *unsafe = NULL;

  if (!_sandbox_check_private_dir (self->root_dir, _("The local sandboxes' directory"), &unsafe))
    {
      g_task_return_error (task, unsafe);
      return;
    }
  dir = g_dir_open (self->root_dir, 0, NULL);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autoptr(SandboxInstance) instance = NULL;
      g_autoptr(GError) error = NULL;

      if (!valid_id (name))
        continue;
      instance = load_instance (self, name, &error);
      if (instance == NULL)
        {
          g_debug ("Skipping %s: %s", name, error->message);
          continue;
        }
      if (sandbox_instance_matches_labels (instance, labels))
        g_list_store_append (store, instance);
    }

  _sandbox_task_return_object (task, store);
}

static SandboxBackendCapabilities
sandbox_local_backend_get_capabilities (SandboxBackend *backend)
{
  return SANDBOX_BACKEND_CAPABILITY_SHARES_HOST_FS | SANDBOX_BACKEND_CAPABILITY_MOUNTS |
         SANDBOX_BACKEND_CAPABILITY_CPU_LIMIT | SANDBOX_BACKEND_CAPABILITY_MEMORY_LIMIT |
         SANDBOX_BACKEND_CAPABILITY_DISK_LIMIT | SANDBOX_BACKEND_CAPABILITY_NETWORK_POLICY |
         SANDBOX_BACKEND_CAPABILITY_HOSTNAME_IS_ID |
         SANDBOX_BACKEND_CAPABILITY_PORTS | SANDBOX_BACKEND_CAPABILITY_VOLUMES |
         SANDBOX_BACKEND_CAPABILITY_EGRESS_RULES |
         SANDBOX_BACKEND_CAPABILITY_PAUSE | SANDBOX_BACKEND_CAPABILITY_METRICS |
         SANDBOX_BACKEND_CAPABILITY_TTY | SANDBOX_BACKEND_CAPABILITY_PIDS_LIMIT |
         SANDBOX_BACKEND_CAPABILITY_MOUNT_NO_LINKS;
}

static char *
sandbox_local_backend_dup_default_workdir (SandboxBackend *backend)
{
  return g_strdup (LOCAL_DEFAULT_WORKDIR);
}

static void
sandbox_local_backend_class_init (SandboxLocalBackendClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  SandboxBackendClass *backend_class = SANDBOX_BACKEND_CLASS (klass);

  object_class->finalize = sandbox_local_backend_finalize;
  object_class->get_property = sandbox_local_backend_get_property;
  object_class->set_property = sandbox_local_backend_set_property;
  object_class->constructed = sandbox_local_backend_constructed;

  backend_class->check_configured = sandbox_local_backend_check_configured;
  backend_class->get_capabilities = sandbox_local_backend_get_capabilities;
  backend_class->dup_default_workdir = sandbox_local_backend_dup_default_workdir;
  backend_class->create = sandbox_local_backend_create;
  backend_class->run = sandbox_local_backend_run;
  backend_class->get_instance = sandbox_local_backend_get_instance;
  backend_class->list = sandbox_local_backend_list;
  backend_class->create_volume = sandbox_local_backend_create_volume;
  backend_class->delete_volume = sandbox_local_backend_delete_volume;
  backend_class->list_volumes = sandbox_local_backend_list_volumes;

  properties[PROP_ROOT_DIR] =
    g_param_spec_string ("root-dir", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_BWRAP_PATH] =
    g_param_spec_string ("bwrap-path", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
sandbox_local_backend_init (SandboxLocalBackend *self)
{
}
