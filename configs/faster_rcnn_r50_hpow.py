# Faster R-CNN, ResNet-50+HPOW-1 (exponents predicted per sample and channel by a light
# pool -> 1x1 conv -> ReLU -> 1x1 conv branch, zero-initialised), VOC 2007.
_base_ = './faster_rcnn_r50.py'

model = dict(
    backbone=dict(
        type='ResNetHPOW',
        quant_cfg=dict(num_splits=1, reduction=16, alpha_reg=dict(type='L1', weight=1e-4)),
        stage_with_quant=(False, True, True, True)))

custom_hooks = [dict(type='AlphaRegularizationHook')]
