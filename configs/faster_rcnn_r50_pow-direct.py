# Faster R-CNN, ResNet-50+POW-1 with the direct reading of the exponent (p = alpha, starts at
# 1 = the identity, so the ImageNet weights of torchvision://resnet50 load unchanged; the L1
# penalty pulls p toward 0, where POW quantizes: docs/quantizers.md), VOC 2007.
_base_ = './faster_rcnn_r50_pow.py'

model = dict(
    backbone=dict(
        quant_cfg=dict(num_splits=1, exponent='direct',
                       alpha_reg=dict(type='L1', weight=1e-4))))
