# Small Faster R-CNN with a ResNet-18+SF-10 backbone on the synthetic VOC set.
_base_ = './faster_rcnn_r18_synthvoc.py'

model = dict(
    backbone=dict(
        type='ResNetSF',
        quant_cfg=dict(resolution=10),
        stage_with_quant=(False, True, True, True)))

custom_hooks = [dict(type='AlphaRegularizationHook')]  # listed in every fq config (no-op for SF)
