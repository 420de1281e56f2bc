# Faster R-CNN, ResNet-50+SF-10 (scaled floor y = floor(10 x) / 10 after the ReLUs of
# stages 2-4, straight-through gradient), VOC 2007. Use resolution=100 for SF-100.
# SF has no alpha, so no AlphaRegularizationHook is needed.
_base_ = './faster_rcnn_r50.py'

model = dict(
    backbone=dict(
        type='ResNetSF',
        quant_cfg=dict(resolution=10),
        stage_with_quant=(False, True, True, True)))
