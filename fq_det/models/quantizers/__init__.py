"""Quantizer layers SF, POW, HPOW (registered in MMDetection's MODELS, usable as plugins)."""
from .builder import QUANTIZERS, build_quant_activation
from .functional import pow_quant, relu_mean, sf_quant
from .hpow import HPOW
from .pow import POW
from .regularizer import (AlphaRegularizer, alpha_penalty, build_alpha_regularizer,
                          mark_alpha_reg_handled, regularized_modules)
from .sf import SF

__all__ = [
    'SF', 'POW', 'HPOW', 'QUANTIZERS', 'build_quant_activation', 'pow_quant', 'sf_quant',
    'relu_mean', 'AlphaRegularizer', 'build_alpha_regularizer', 'alpha_penalty',
    'mark_alpha_reg_handled', 'regularized_modules'
]
