# Supplement Table 1, "+POW-1, L2": power function (1 split) in the middle block, L2 on alpha.
# The other POW-k / L1 cells are one-line children of this file.
_base_ = './smallnet_cifar10.py'
model = dict(
    backbone=dict(
        quant_cfg=dict(
            type='POW', num_splits=1, split_width=1.0, alpha_reg=dict(type='L2', weight=1e-4))))
custom_hooks = [dict(type='mmdet.AlphaRegularizationHook')]
