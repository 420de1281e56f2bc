# resnet18-pow1-l1_synthvoc-crops.py with the alpha recipe (docs/quantizers.md, "Letting the
# exponents move"): no weight decay on alpha and a 10x learning rate for it, so the
# exponents leave 0 where the data wants them.
_base_ = './resnet18-pow1-l1_synthvoc-crops.py'

optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'.alpha': dict(lr_mult=10., decay_mult=0.)}))
