"""Training-loop pieces (mmengine hooks) of fq-det."""
from .hooks import AlphaRegularizationHook

__all__ = ['AlphaRegularizationHook']
