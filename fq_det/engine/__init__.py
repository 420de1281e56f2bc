"""Training- and test-loop pieces (mmengine hooks) of fq-det."""
from .bn_adapt import BNAdaptHook, adapt_bn, restore_bn
from .hooks import AlphaRegularizationHook

__all__ = ['AlphaRegularizationHook', 'BNAdaptHook', 'adapt_bn', 'restore_bn']
