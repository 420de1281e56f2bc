# ResNet18 +POW-1 (supplement section 3 / Figure 2), L2 on alpha; its backbone is what the
# detection configs start from (export with tools/classification/export_backbone.py).
_base_ = './resnet18_imagenet.py'
model = dict(
    backbone=dict(
        type='mmdet.ResNetPOW',
        stage_with_quant=(True, True, True, True),
        quant_cfg=dict(num_splits=1, split_width=1.0, alpha_reg=dict(type='L2', weight=1e-4))))
custom_hooks = [dict(type='mmdet.AlphaRegularizationHook')]
