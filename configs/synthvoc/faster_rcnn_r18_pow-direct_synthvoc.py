# Small Faster R-CNN with a ResNet-18+POW-1 backbone, direct reading of the exponent
# (p = alpha, L1 pull toward 0: quantization), on the synthetic VOC set.
_base_ = './faster_rcnn_r18_pow_synthvoc.py'

model = dict(
    backbone=dict(
        quant_cfg=dict(num_splits=1, exponent='direct',
                       alpha_reg=dict(type='L1', weight=1e-4))))
