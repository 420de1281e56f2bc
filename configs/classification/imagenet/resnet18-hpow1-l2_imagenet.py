_base_ = './resnet18-pow1-l2_imagenet.py'  # ResNet18 +HPOW-1 (data-dependent exponents)
model = dict(backbone=dict(type='mmdet.ResNetHPOW', quant_cfg=dict(reduction=16)))
