"""The quantizer layers (SF, POW, HPOW, SFPOW) and the quantized ResNet backbones.

Importing registers ``SF``, ``POW``, ``HPOW``, ``SFPOW``, ``ResNetQuant``, ``ResNetSF``,
``ResNetPOW``, ``ResNetHPOW`` and ``ResNetSFPOW`` in MMDetection's ``MODELS`` registry.
"""
from .backbones import (QuantBasicBlock, QuantBottleneck, ResNetHPOW, ResNetPOW, ResNetQuant,
                        ResNetSF, ResNetSFPOW)
from .quantizers import (HPOW, POW, QUANTIZERS, SF, SFPOW, AlphaRegularizer, alpha_penalty,
                         build_alpha_regularizer, build_quant_activation, mark_alpha_reg_handled,
                         pow_quant, regularized_modules, relu_mean, sf_quant)

__all__ = [
    'SF', 'POW', 'HPOW', 'SFPOW', 'QUANTIZERS', 'build_quant_activation', 'alpha_penalty',
    'AlphaRegularizer', 'build_alpha_regularizer', 'mark_alpha_reg_handled', 'regularized_modules',
    'pow_quant', 'sf_quant', 'relu_mean', 'QuantBasicBlock', 'QuantBottleneck',
    'ResNetQuant', 'ResNetSF', 'ResNetPOW', 'ResNetHPOW', 'ResNetSFPOW'
]
