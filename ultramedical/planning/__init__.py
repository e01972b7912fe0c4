"""`ultramedical plan`: will a preset fit a cluster, and where, before anyone pays for GPUs.

No GPU, no network and no Ray: model shapes come from config.json files or the built-in table, node types
from the autoscaler config, and memory from the formulas in `memory.py`.
"""

from ultramedical.planning.architecture import ArchitectureError, ModelShape, resolve_shape
from ultramedical.planning.plan import format_plan, make_plan

__all__ = ["ArchitectureError", "ModelShape", "format_plan", "make_plan", "resolve_shape"]
