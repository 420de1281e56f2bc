# Supplement Table 4 network, narrow (base_channels 16; 32 px in, 1x1 final map),
# +POW-1 L2, on the generated set.
_base_ = './resnet18-pow1-l2_synthcls.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='Plain10',
        base_channels=16,
        stem_stride=1,
        quant_cfg=dict(type='POW', num_splits=1, alpha_reg=dict(type='L2', weight=1e-4))),
    head=dict(in_channels=128))
