# Small Faster R-CNN with a ResNet-18+POW-1 backbone on the synthetic VOC set
# (faster_rcnn_r18_synthvoc.py + the POW-1 recipe of the VOC detectors).
_base_ = ['./faster_rcnn_r18_synthvoc.py', '../_base_/models/pow1_recipe.py']

model = dict(backbone={{_base_._pow1_backbone}})
custom_hooks = {{_base_._pow1_hooks}}
