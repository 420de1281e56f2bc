# resnet18-pow1-l1_synthvoc-crops.py with the alpha recipe (docs/studies.md, "Why the
# exponents stay near 0"): no weight decay on alpha and a 10x learning rate for it. The
# exponents then move about 8x further; what moves them is mostly gradient noise.
_base_ = './resnet18-pow1-l1_synthvoc-crops.py'

optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'.alpha': dict(lr_mult=10., decay_mult=0.)}))
