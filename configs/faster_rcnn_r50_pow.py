# Faster R-CNN, ResNet-50+POW-1 (learnable per-channel exponents after the ReLUs of stages 2-4,
# L1-regularised toward 0), VOC 2007. Fresh alpha = 0 is the identity, so the ImageNet
# weights of torchvision://resnet50 load unchanged.
_base_ = './faster_rcnn_r50.py'

model = dict(
    backbone=dict(
        type='ResNetPOW',
        quant_cfg=dict(num_splits=1, alpha_reg=dict(type='L1', weight=1e-4)),
        stage_with_quant=(False, True, True, True)))

# Adds the alpha penalty to the loss (shown in the log as loss_alpha_reg).
custom_hooks = [dict(type='AlphaRegularizationHook')]
