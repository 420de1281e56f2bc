# Table 3: ResNet18 +SF-10 (scaled floor after the ReLUs of every stage)
_base_ = './resnet18_imagenet.py'
model = dict(
    backbone=dict(
        type='mmdet.ResNetSF',
        quant_cfg=dict(resolution=10),
        stage_with_quant=(True, True, True, True)))
