/* libsandbox - what to create
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined (__SANDBOX_INSIDE__) && !defined (SANDBOX_COMPILATION)
#error "Only <libsandbox/sandbox.h> can be included directly."
#endif

#include <glib-object.h>
#include "sandbox-version-macros.h"

G_BEGIN_DECLS

/**
 * SandboxMountFlags:
 * @SANDBOX_MOUNT_NONE: a read-write mount with no further rule
 * @SANDBOX_MOUNT_READ_ONLY: the sandbox may only read the mount
 * @SANDBOX_MOUNT_NO_LINKS: the sandbox may create only regular files and
 *   directories in the mount: making a symbolic link, a FIFO, a UNIX socket
 *   or a device node there fails with `EPERM`. Meant for a read-write host
 *   directory that host processes later write to (the Metaflow datastore):
 *   a link planted there would lead them elsewhere on the host. Only
 *   backends with %SANDBOX_BACKEND_CAPABILITY_MOUNT_NO_LINKS honour it;
 *   others refuse the spec. Hard links are not refused (they can only join
 *   files of the same mount), and a mount below this one keeps its own
 *   flags.
 *
 * How a sandbox may use a mount ([method@Sandbox.Spec.add_mount_full]).
 *
 * Since: 0.2
 */
typedef enum /*< flags >*/
{
  SANDBOX_MOUNT_NONE      = 0,
  SANDBOX_MOUNT_READ_ONLY = 1 << 0,
  SANDBOX_MOUNT_NO_LINKS  = 1 << 1,
} SandboxMountFlags;

#define SANDBOX_TYPE_MOUNT_FLAGS (sandbox_mount_flags_get_type ())

SANDBOX_AVAILABLE_IN_0_2
GType sandbox_mount_flags_get_type (void) G_GNUC_CONST;

#define SANDBOX_TYPE_MOUNT (sandbox_mount_get_type ())

/**
 * SandboxMount:
 *
 * A host directory or file made visible inside a sandbox at a given path.
 * Only backends that run on this machine (`local`) honour mounts.
 *
 * Since: 0.1
 */
typedef struct _SandboxMount SandboxMount;

SANDBOX_AVAILABLE_IN_0_1
GType          sandbox_mount_get_type         (void) G_GNUC_CONST;
SANDBOX_AVAILABLE_IN_0_1
SandboxMount  *sandbox_mount_new              (const char   *host_path,
                                               const char   *sandbox_path,
                                               gboolean      read_only);
SANDBOX_AVAILABLE_IN_0_2
SandboxMount  *sandbox_mount_new_full         (const char        *host_path,
                                               const char        *sandbox_path,
                                               SandboxMountFlags  flags);
SANDBOX_AVAILABLE_IN_0_1
SandboxMount  *sandbox_mount_ref              (SandboxMount *self);
SANDBOX_AVAILABLE_IN_0_1
void           sandbox_mount_unref            (SandboxMount *self);
SANDBOX_AVAILABLE_IN_0_1
const char    *sandbox_mount_get_host_path    (SandboxMount *self);
SANDBOX_AVAILABLE_IN_0_1
const char    *sandbox_mount_get_sandbox_path (SandboxMount *self);
SANDBOX_AVAILABLE_IN_0_1
gboolean       sandbox_mount_get_read_only    (SandboxMount *self);
SANDBOX_AVAILABLE_IN_0_2
SandboxMountFlags sandbox_mount_get_flags     (SandboxMount *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SandboxMount, sandbox_mount_unref)

#define SANDBOX_TYPE_SPEC (sandbox_spec_get_type ())

SANDBOX_AVAILABLE_IN_0_1
G_DECLARE_FINAL_TYPE (SandboxSpec, sandbox_spec, SANDBOX, SPEC, GObject)

SANDBOX_AVAILABLE_IN_0_1
SandboxSpec   *sandbox_spec_new            (void);

SANDBOX_AVAILABLE_IN_0_1
const char    *sandbox_spec_get_image      (SandboxSpec *self);
SANDBOX_AVAILABLE_IN_0_1
void           sandbox_spec_set_image      (SandboxSpec *self,
                                            const char  *image);
SANDBOX_AVAILABLE_IN_0_1
const char    *sandbox_spec_get_workdir    (SandboxSpec *self);
SANDBOX_AVAILABLE_IN_0_1
void           sandbox_spec_set_workdir    (SandboxSpec *self,
                                            const char  *workdir);
SANDBOX_AVAILABLE_IN_0_1
double         sandbox_spec_get_cpu        (SandboxSpec *self);
SANDBOX_AVAILABLE_IN_0_1
void           sandbox_spec_set_cpu        (SandboxSpec *self,
                                            double       cpu);
SANDBOX_AVAILABLE_IN_0_1
guint          sandbox_spec_get_memory_mb  (SandboxSpec *self);
SANDBOX_AVAILABLE_IN_0_1
void           sandbox_spec_set_memory_mb  (SandboxSpec *self,
                                            guint        memory_mb);
SANDBOX_AVAILABLE_IN_0_1
guint          sandbox_spec_get_disk_mb    (SandboxSpec *self);
SANDBOX_AVAILABLE_IN_0_1
void           sandbox_spec_set_disk_mb    (SandboxSpec *self,
                                            guint        disk_mb);
SANDBOX_AVAILABLE_IN_0_1
guint          sandbox_spec_get_gpu        (SandboxSpec *self);
SANDBOX_AVAILABLE_IN_0_1
void           sandbox_spec_set_gpu        (SandboxSpec *self,
                                            guint        gpu);
SANDBOX_AVAILABLE_IN_0_1
guint          sandbox_spec_get_pids_max   (SandboxSpec *self);
SANDBOX_AVAILABLE_IN_0_1
void           sandbox_spec_set_pids_max   (SandboxSpec *self,
                                            guint        pids_max);
SANDBOX_AVAILABLE_IN_0_1
guint          sandbox_spec_get_timeout    (SandboxSpec *self);
SANDBOX_AVAILABLE_IN_0_1
void           sandbox_spec_set_timeout    (SandboxSpec *self,
                                            guint        timeout);
SANDBOX_AVAILABLE_IN_0_1
gboolean       sandbox_spec_get_network    (SandboxSpec *self);
SANDBOX_AVAILABLE_IN_0_1
void           sandbox_spec_set_network    (SandboxSpec *self,
                                            gboolean     network);
SANDBOX_AVAILABLE_IN_0_1
gboolean       sandbox_spec_get_run_as_root (SandboxSpec *self);
SANDBOX_AVAILABLE_IN_0_1
void           sandbox_spec_set_run_as_root (SandboxSpec *self,
                                             gboolean     run_as_root);
SANDBOX_AVAILABLE_IN_0_2
gboolean       sandbox_spec_get_die_with_owner (SandboxSpec *self);
SANDBOX_AVAILABLE_IN_0_2
void           sandbox_spec_set_die_with_owner (SandboxSpec *self,
                                                gboolean     die_with_owner);

SANDBOX_AVAILABLE_IN_0_1
void           sandbox_spec_set_env        (SandboxSpec *self,
                                            const char  *name,
                                            const char  *value);
SANDBOX_AVAILABLE_IN_0_1
GHashTable    *sandbox_spec_get_env        (SandboxSpec *self);
SANDBOX_AVAILABLE_IN_0_1
void           sandbox_spec_set_label      (SandboxSpec *self,
                                            const char  *key,
                                            const char  *value);
SANDBOX_AVAILABLE_IN_0_1
GHashTable    *sandbox_spec_get_labels     (SandboxSpec *self);
SANDBOX_AVAILABLE_IN_0_1
void           sandbox_spec_add_mount      (SandboxSpec *self,
                                            const char  *host_path,
                                            const char  *sandbox_path,
                                            gboolean     read_only);
SANDBOX_AVAILABLE_IN_0_2
void           sandbox_spec_add_mount_full (SandboxSpec       *self,
                                            const char        *host_path,
                                            const char        *sandbox_path,
                                            SandboxMountFlags  flags);
SANDBOX_AVAILABLE_IN_0_1
GPtrArray     *sandbox_spec_get_mounts     (SandboxSpec *self);

SANDBOX_AVAILABLE_IN_0_2
void           sandbox_spec_add_volume     (SandboxSpec *self,
                                            const char  *name,
                                            const char  *mount_path);
SANDBOX_AVAILABLE_IN_0_2
GHashTable    *sandbox_spec_get_volumes    (SandboxSpec *self);

SANDBOX_AVAILABLE_IN_0_2
void           sandbox_spec_set_egress_rules (SandboxSpec        *self,
                                              const char * const *allow,
                                              const char * const *deny);
SANDBOX_AVAILABLE_IN_0_2
const char * const *sandbox_spec_get_egress_allow (SandboxSpec *self);
SANDBOX_AVAILABLE_IN_0_2
const char * const *sandbox_spec_get_egress_deny  (SandboxSpec *self);

G_END_DECLS
