"""ResNet backbones with quantized activations (registered in MMDetection's MODELS)."""
from .resnet_quant import (QuantBasicBlock, QuantBottleneck, ResNetHPOW, ResNetPOW, ResNetQuant,
                           ResNetSF, ResNetSFPOW)

__all__ = [
    'QuantBasicBlock', 'QuantBottleneck', 'ResNetQuant', 'ResNetSF', 'ResNetPOW', 'ResNetHPOW',
    'ResNetSFPOW'
]
