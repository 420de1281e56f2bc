# Faster R-CNN, ResNet-50+POW-1 (learnable per-channel exponents after the ReLUs of stages 2-4,
# L1-regularised toward 0), VOC 2007. Fresh alpha = 0 is the identity, so the ImageNet
# weights of torchvision://resnet50 load unchanged.
_base_ = ['./faster_rcnn_r50.py', './_base_/models/pow1_recipe.py']

model = dict(backbone={{_base_._pow1_backbone}})
custom_hooks = {{_base_._pow1_hooks}}  # adds the alpha penalty to the loss
