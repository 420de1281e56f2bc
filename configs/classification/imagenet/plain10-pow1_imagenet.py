# Supplement Table 3, "Plain-10 +POW-1" (L2 on alpha). POW-2/4/8 are one-line children.
_base_ = './plain10_imagenet.py'
model = dict(
    backbone=dict(
        quant_cfg=dict(
            type='POW', num_splits=1, split_width=1.0, alpha_reg=dict(type='L2', weight=1e-4))))
custom_hooks = [dict(type='mmdet.AlphaRegularizationHook')]
