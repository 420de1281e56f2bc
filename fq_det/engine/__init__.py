"""Training- and test-loop pieces of fq-det: mmengine hooks, schedule length, one training
run (runs.py) and the worker processes that run several (processes.py)."""
from .bn_adapt import BNAdaptHook, adapt_bn, restore_bn
from .hooks import AlphaRegularizationHook

__all__ = ['AlphaRegularizationHook', 'BNAdaptHook', 'adapt_bn', 'restore_bn']
