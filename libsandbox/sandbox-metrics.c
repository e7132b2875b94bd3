/* libsandbox - what a live sandbox uses
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "sandbox-metrics.h"

/**
 * SandboxMetrics:
 *
 * What a live sandbox uses, as [method@Sandbox.Instance.get_metrics_async]
 * measured it: processor time or load, memory and disk. A figure the
 * backend cannot measure is -1 (the doubles) or 0 (the counts and sizes).
 *
 * Backends written in other languages construct it with its properties,
 * for example `Sandbox.Metrics(cpu_percent=3.5, cpu_count=2,
 * memory_used=..., memory_total=...)`.
 *
 * Since: 0.2
 */
struct _SandboxMetrics
{
  GObject  parent_instance;

  double   cpu_percent;
  double   cpu_seconds;
  guint    cpu_count;
  guint64  memory_used;
  guint64  memory_total;
  guint64  disk_used;
  guint64  disk_total;
};

G_DEFINE_FINAL_TYPE (SandboxMetrics, sandbox_metrics, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_CPU_PERCENT,
  PROP_CPU_SECONDS,
  PROP_CPU_COUNT,
  PROP_MEMORY_USED,
  PROP_MEMORY_TOTAL,
  PROP_DISK_USED,
  PROP_DISK_TOTAL,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
sandbox_metrics_get_property (GObject    *object,
                              guint       prop_id,
                              GValue     *value,
                              GParamSpec *pspec)
{
  SandboxMetrics *self = SANDBOX_METRICS (object);

  switch (prop_id)
    {
    case PROP_CPU_PERCENT: g_value_set_double (value, self->cpu_percent); break;
    case PROP_CPU_SECONDS: g_value_set_double (value, self->cpu_seconds); break;
    case PROP_CPU_COUNT: g_value_set_uint (value, self->cpu_count); break;
    case PROP_MEMORY_USED: g_value_set_uint64 (value, self->memory_used); break;
    case PROP_MEMORY_TOTAL: g_value_set_uint64 (value, self->memory_total); break;
    case PROP_DISK_USED: g_value_set_uint64 (value, self->disk_used); break;
    case PROP_DISK_TOTAL: g_value_set_uint64 (value, self->disk_total); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
sandbox_metrics_set_property (GObject      *object,
                              guint         prop_id,
                              const GValue *value,
                              GParamSpec   *pspec)
{
  SandboxMetrics *self = SANDBOX_METRICS (object);

  switch (prop_id)
    {
    case PROP_CPU_PERCENT: self->cpu_percent = g_value_get_double (value); break;
    case PROP_CPU_SECONDS: self->cpu_seconds = g_value_get_double (value); break;
    case PROP_CPU_COUNT: self->cpu_count = g_value_get_uint (value); break;
    case PROP_MEMORY_USED: self->memory_used = g_value_get_uint64 (value); break;
    case PROP_MEMORY_TOTAL: self->memory_total = g_value_get_uint64 (value); break;
    case PROP_DISK_USED: self->disk_used = g_value_get_uint64 (value); break;
    case PROP_DISK_TOTAL: self->disk_total = g_value_get_uint64 (value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
sandbox_metrics_class_init (SandboxMetricsClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags flags = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;

  object_class->get_property = sandbox_metrics_get_property;
  object_class->set_property = sandbox_metrics_set_property;

  /**
   * SandboxMetrics:cpu-percent:
   *
   * How busy the sandbox's processors are, in percent of all of them
   * (0 to 100), or -1 if the backend does not measure it.
   *
   * Since: 0.2
   */
  properties[PROP_CPU_PERCENT] =
    g_param_spec_double ("cpu-percent", NULL, NULL, -1, G_MAXDOUBLE, -1, flags);

  /**
   * SandboxMetrics:cpu-seconds:
   *
   * The processor time the sandbox's processes have used, in seconds, or -1
   * if the backend does not measure it.
   *
   * Since: 0.2
   */
  properties[PROP_CPU_SECONDS] =
    g_param_spec_double ("cpu-seconds", NULL, NULL, -1, G_MAXDOUBLE, -1, flags);

  /**
   * SandboxMetrics:cpu-count:
   *
   * How many processors the sandbox may use, or 0 if not known.
   *
   * Since: 0.2
   */
  properties[PROP_CPU_COUNT] =
    g_param_spec_uint ("cpu-count", NULL, NULL, 0, G_MAXUINT, 0, flags);

  /**
   * SandboxMetrics:memory-used:
   *
   * The memory the sandbox uses, in bytes, or 0 if not known.
   *
   * Since: 0.2
   */
  properties[PROP_MEMORY_USED] =
    g_param_spec_uint64 ("memory-used", NULL, NULL, 0, G_MAXUINT64, 0, flags);

  /**
   * SandboxMetrics:memory-total:
   *
   * The memory the sandbox may use, in bytes, or 0 if not known.
   *
   * Since: 0.2
   */
  properties[PROP_MEMORY_TOTAL] =
    g_param_spec_uint64 ("memory-total", NULL, NULL, 0, G_MAXUINT64, 0, flags);

  /**
   * SandboxMetrics:disk-used:
   *
   * The disk space the sandbox's files take, in bytes, or 0 if not known.
   *
   * Since: 0.2
   */
  properties[PROP_DISK_USED] =
    g_param_spec_uint64 ("disk-used", NULL, NULL, 0, G_MAXUINT64, 0, flags);

  /**
   * SandboxMetrics:disk-total:
   *
   * The disk space the sandbox may fill, in bytes, or 0 if not known.
   *
   * Since: 0.2
   */
  properties[PROP_DISK_TOTAL] =
    g_param_spec_uint64 ("disk-total", NULL, NULL, 0, G_MAXUINT64, 0, flags);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
sandbox_metrics_init (SandboxMetrics *self)
{
  self->cpu_percent = -1;
  self->cpu_seconds = -1;
}

/**
 * sandbox_metrics_get_cpu_percent:
 * @self: a #SandboxMetrics
 *
 * Gets [property@Sandbox.Metrics:cpu-percent].
 *
 * Returns: the processor load in percent, or -1 if not measured
 *
 * Since: 0.2
 */
double
sandbox_metrics_get_cpu_percent (SandboxMetrics *self)
{
  g_return_val_if_fail (SANDBOX_IS_METRICS (self), -1);
  return self->cpu_percent;
}

/**
 * sandbox_metrics_get_cpu_seconds:
 * @self: a #SandboxMetrics
 *
 * Gets [property@Sandbox.Metrics:cpu-seconds].
 *
 * Returns: the processor time used in seconds, or -1 if not measured
 *
 * Since: 0.2
 */
double
sandbox_metrics_get_cpu_seconds (SandboxMetrics *self)
{
  g_return_val_if_fail (SANDBOX_IS_METRICS (self), -1);
  return self->cpu_seconds;
}

/**
 * sandbox_metrics_get_cpu_count:
 * @self: a #SandboxMetrics
 *
 * Gets [property@Sandbox.Metrics:cpu-count].
 *
 * Returns: the number of processors, or 0 if not known
 *
 * Since: 0.2
 */
guint
sandbox_metrics_get_cpu_count (SandboxMetrics *self)
{
  g_return_val_if_fail (SANDBOX_IS_METRICS (self), 0);
  return self->cpu_count;
}

/**
 * sandbox_metrics_get_memory_used:
 * @self: a #SandboxMetrics
 *
 * Gets [property@Sandbox.Metrics:memory-used].
 *
 * Returns: the memory used in bytes, or 0 if not known
 *
 * Since: 0.2
 */
guint64
sandbox_metrics_get_memory_used (SandboxMetrics *self)
{
  g_return_val_if_fail (SANDBOX_IS_METRICS (self), 0);
  return self->memory_used;
}

/**
 * sandbox_metrics_get_memory_total:
 * @self: a #SandboxMetrics
 *
 * Gets [property@Sandbox.Metrics:memory-total].
 *
 * Returns: the memory available in bytes, or 0 if not known
 *
 * Since: 0.2
 */
guint64
sandbox_metrics_get_memory_total (SandboxMetrics *self)
{
  g_return_val_if_fail (SANDBOX_IS_METRICS (self), 0);
  return self->memory_total;
}

/**
 * sandbox_metrics_get_disk_used:
 * @self: a #SandboxMetrics
 *
 * Gets [property@Sandbox.Metrics:disk-used].
 *
 * Returns: the disk space used in bytes, or 0 if not known
 *
 * Since: 0.2
 */
guint64
sandbox_metrics_get_disk_used (SandboxMetrics *self)
{
  g_return_val_if_fail (SANDBOX_IS_METRICS (self), 0);
  return self->disk_used;
}

/**
 * sandbox_metrics_get_disk_total:
 * @self: a #SandboxMetrics
 *
 * Gets [property@Sandbox.Metrics:disk-total].
 *
 * Returns: the disk space available in bytes, or 0 if not known
 *
 * Since: 0.2
 */
guint64
sandbox_metrics_get_disk_total (SandboxMetrics *self)
{
  g_return_val_if_fail (SANDBOX_IS_METRICS (self), 0);
  return self->disk_total;
}
