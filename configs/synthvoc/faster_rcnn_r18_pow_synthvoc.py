# Small Faster R-CNN with a ResNet-18+POW-1 backbone on the synthetic VOC set
# (faster_rcnn_r18_synthvoc.py + the POW recipe of ../faster_rcnn_r50_pow.py).
_base_ = './faster_rcnn_r18_synthvoc.py'

model = dict(
    backbone=dict(
        type='ResNetPOW',
        quant_cfg=dict(num_splits=1, alpha_reg=dict(type='L1', weight=1e-4)),
        stage_with_quant=(False, True, True, True)))

custom_hooks = [dict(type='AlphaRegularizationHook')]
