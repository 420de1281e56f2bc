# Table 3: ResNet50 +SF-100 (scaled floor after the ReLUs of every stage)
_base_ = './resnet50_imagenet.py'
model = dict(
    backbone=dict(
        type='mmdet.ResNetSF',
        quant_cfg=dict(resolution=100),
        stage_with_quant=(True, True, True, True)))
