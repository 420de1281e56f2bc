# Small Faster R-CNN with a ResNet-18+HPOW-1 backbone on the synthetic VOC set.
_base_ = './faster_rcnn_r18_synthvoc.py'

model = dict(
    backbone=dict(
        type='ResNetHPOW',
        quant_cfg=dict(num_splits=1, reduction=4, alpha_reg=dict(type='L1', weight=1e-4)),
        stage_with_quant=(False, True, True, True)))

custom_hooks = [dict(type='AlphaRegularizationHook')]
