/* libsandbox - what a live sandbox uses
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

#define SANDBOX_TYPE_METRICS (sandbox_metrics_get_type ())

SANDBOX_AVAILABLE_IN_0_2
G_DECLARE_FINAL_TYPE (SandboxMetrics, sandbox_metrics, SANDBOX, METRICS, GObject)

SANDBOX_AVAILABLE_IN_0_2
double   sandbox_metrics_get_cpu_percent  (SandboxMetrics *self);
SANDBOX_AVAILABLE_IN_0_2
double   sandbox_metrics_get_cpu_seconds  (SandboxMetrics *self);
SANDBOX_AVAILABLE_IN_0_2
guint    sandbox_metrics_get_cpu_count    (SandboxMetrics *self);
SANDBOX_AVAILABLE_IN_0_2
guint64  sandbox_metrics_get_memory_used  (SandboxMetrics *self);
SANDBOX_AVAILABLE_IN_0_2
guint64  sandbox_metrics_get_memory_total (SandboxMetrics *self);
SANDBOX_AVAILABLE_IN_0_2
guint64  sandbox_metrics_get_disk_used    (SandboxMetrics *self);
SANDBOX_AVAILABLE_IN_0_2
guint64  sandbox_metrics_get_disk_total   (SandboxMetrics *self);

G_END_DECLS
