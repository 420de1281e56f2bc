# Backbone pretraining for configs/synthvoc/faster_rcnn_r18_pow_synthvoc.py: the same crops
# classification as resnet18_synthvoc-crops.py with that detector's ResNet-18+POW-1 backbone
# (POW in stages 2-4, L1 alpha regularisation), as the paper pretrains its backbones with POW.
_base_ = './resnet18_synthvoc-crops.py'

model = dict(
    backbone=dict(
        type='mmdet.ResNetPOW',
        quant_cfg=dict(num_splits=1, alpha_reg=dict(type='L1', weight=1e-4)),
        stage_with_quant=(False, True, True, True)))
custom_hooks = [dict(type='mmdet.AlphaRegularizationHook')]
