# Faster R-CNN, ResNet-18 + FPN (POW variant), VOC 2007: faster_rcnn_r50_pow.py with the
# ImageNet-pretrained torchvision://resnet18 backbone and FPN inputs sized for it.
_base_ = './faster_rcnn_r50_pow.py'

model = dict(
    backbone=dict(depth=18, init_cfg=dict(checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
