# faster_rcnn_r18_pow_synthvoc.py with the alpha recipe (docs/studies.md, "Why the
# exponents stay near 0"): no weight decay on alpha and a 10x learning rate for it.
_base_ = './faster_rcnn_r18_pow_synthvoc.py'

optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'.alpha': dict(lr_mult=10., decay_mult=0.)}))
