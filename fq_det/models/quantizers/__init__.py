"""Quantizer layers SF, POW, HPOW (registered in MMDetection's MODELS, usable as plugins)."""
from .builder import POSITIONS, QUANTIZERS, build_quant_activation
from .exponents import READINGS, ExponentReadingError
from .functional import channel_std, pow_quant, relu_mean, sf_quant
from .hpow import HPOW
from .pow import POW
from .regularizer import (AlphaRegularizer, alpha_penalty, build_alpha_regularizer,
                          mark_alpha_reg_handled, regularized_modules)
from .sf import SF
from .sfpow import SFPOW

__all__ = [
    'SF', 'POW', 'HPOW', 'SFPOW', 'QUANTIZERS', 'POSITIONS', 'READINGS', 'ExponentReadingError',
    'build_quant_activation', 'pow_quant', 'sf_quant', 'relu_mean', 'channel_std', 'AlphaRegularizer', 'build_alpha_regularizer', 'alpha_penalty',
    'mark_alpha_reg_handled', 'regularized_modules'
]
