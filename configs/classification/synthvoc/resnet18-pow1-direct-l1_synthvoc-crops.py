# Backbone pretraining for configs/synthvoc/faster_rcnn_r18_pow-direct_synthvoc.py: the crops
# classification with the ResNet-18+POW-1 backbone, direct reading (p = alpha, L1 toward 0).
_base_ = './resnet18-pow1-l1_synthvoc-crops.py'

model = dict(
    backbone=dict(
        quant_cfg=dict(num_splits=1, exponent='direct',
                       alpha_reg=dict(type='L1', weight=1e-4))))
